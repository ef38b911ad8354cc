# Cluster environment for slurm/*.sbatch, sourced in every job (copy to slurm/env/<cluster>.sh and select
# it with CLUSTER=<cluster>; slurm/submit.sh passes CLUSTER on to the jobs).
# module load cuda/13.0 openmpi/4.1          # EDIT: your site's modules
# export NCCL_DEBUG=INFO                     # turn on when debugging collectives
# export NCCL_SOCKET_IFNAME=ib0              # EDIT if NCCL picks the wrong interface
# Open MPI ranks started by srun need Slurm's PMIx plugin (`srun --mpi=list`); without it MPI_Init fails
# ("OMPI was not built with SLURM's PMI support"). Sites whose MpiDefault is already pmix can drop this.
export SLURM_MPI_TYPE=${SLURM_MPI_TYPE:-pmix}   # EDIT: pmix, pmix_v4, pmi2, ...
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export HDF5_USE_FILE_LOCKING=FALSE           # Lustre/NFS without flock
# export THINKSTEER_BIN=/path/to/thinksteer  # another build than build/bin/thinksteer
