# Cluster environment for slurm/*.sbatch (copy to slurm/env/<cluster>.sh and select with CLUSTER=<cluster>).
# module load cuda/13.0 openmpi/4.1          # EDIT: your site's modules
# export NCCL_DEBUG=INFO                     # turn on when debugging collectives
# export NCCL_SOCKET_IFNAME=ib0              # EDIT if NCCL picks the wrong interface
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export HDF5_USE_FILE_LOCKING=FALSE           # Lustre/NFS without flock
