#!/usr/bin/env bash
# Submit thinksteer work to Slurm (run on a login node; works from any directory, jobs run in the
# repository root).
#
#   slurm/submit.sh sweep CONFIG.ini [--array=LIST] [--section.key value ...]
#       `thinksteer sweep plan` (cheap, here) writes <run.dir>/sweep/manifest.jsonl and prints the array
#       spec; slurm/sweep.sbatch is submitted as that array (one task per manifest row; --array=LIST
#       instead, e.g. the list `reduce` reported missing), then slurm/reduce.sbatch with
#       --dependency=afterany:<array job>.
#   slurm/submit.sh reduce CONFIG.ini [--section.key value ...]        slurm/reduce.sbatch alone
#   slurm/submit.sh STAGE CONFIG.ini [--section.key value ...]         slurm/stage.sbatch (generate, collect,
#                                                                      annotate, vectors, attribute, ...)
# Prints one line per job: "<what>: submitted job <id> ...".
#
# Environment:
#   SBATCH_ARGS         extra sbatch options for every job, space-separated, no quoting
#                       (e.g. "--partition=gpu --time=02:00:00 --ntasks=4 --gpus-per-node=4"); they override
#                       the #SBATCH lines. Slurm's own SBATCH_PARTITION, SBATCH_TIMELIMIT, ... work too.
#   SBATCH_REDUCE_ARGS  extra sbatch options for the reduce job only (after SBATCH_ARGS)
#   CLUSTER             slurm/env/$CLUSTER.sh is sourced in the jobs (default: example)
#   THINKSTEER_BIN      the executable (default: build/bin/thinksteer in the repository)
#   MAX_RESTARTS        requeues of a job that stopped early with its progress saved (default 3)
#   THINKSTEER_LOG_DIR  directory of the job logs (default: logs in the repository root);
#                       sweep tasks log to <dir>/thinksteer-sweep-<array job>_<task>.out, others to
#                       <dir>/<job name>-<job id>.out
# The jobs inherit this environment (sbatch --export=ALL, Slurm's default).
# Exit: 0 submitted; 2 usage or bad input (the plan's own exit code); otherwise sbatch's failure.
set -euo pipefail

die() { echo "submit.sh: $*" >&2; exit "${2:-1}"; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

(($# >= 2)) || usage
stage=$1 config=$2
shift 2
[[ -f $config ]] || die "no config file '$config'" 2
config=$(realpath -- "$config")
# A THINKSTEER_BIN given relative to the caller's directory, resolved before moving to the repository root.
if [[ -n ${THINKSTEER_BIN:-} && $THINKSTEER_BIN == */* && -e $THINKSTEER_BIN ]]; then
  THINKSTEER_BIN=$(realpath -- "$THINKSTEER_BIN")
  export THINKSTEER_BIN
fi
[[ -n ${THINKSTEER_LOG_DIR:-} ]] && THINKSTEER_LOG_DIR=$(realpath -m -- "$THINKSTEER_LOG_DIR")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=${THINKSTEER_BIN:-build/bin/thinksteer}
[[ -x $bin ]] || command -v "$bin" >/dev/null || die "no executable '$bin' (build it: scripts/build.sh, or set THINKSTEER_BIN)" 2
command -v sbatch >/dev/null || die "sbatch not found: not a Slurm login node (or slurm-client not installed)"

read -r -a extra <<< "${SBATCH_ARGS:-}"
read -r -a extra_reduce <<< "${SBATCH_REDUCE_ARGS:-}"

# Slurm opens a job's output file before the script runs: its directory must exist.
logs=${THINKSTEER_LOG_DIR:-logs}
mkdir -p "$logs"

submit() {  # submit SBATCH_ARGS... -> prints the job id
  local id
  id=$(sbatch --parsable "$@") || die "sbatch $* failed"
  echo "${id%%;*}"   # --parsable prints "id" or "id;cluster"
}

case $stage in
  sweep)
    array="" overrides=()
    while (($#)); do
      case $1 in
        --array=*) array=${1#--array=} ;;
        --array) (($# >= 2)) || die "--array needs a value" 2; array=$2; shift ;;
        *) overrides+=("$1") ;;
      esac
      shift
    done
    rc=0
    plan=$("$bin" sweep plan --config "$config" "${overrides[@]}") || rc=$?
    ((rc == 0)) || die "'$bin sweep plan --config $config ${overrides[*]}' failed (exit $rc)" "$rc"
    spec=$(grep -E '^--array=[0-9]' <<< "$plan" | tail -n 1 || true)
    [[ -n $spec ]] || die "sweep plan printed no --array=... line (stdout: '$plan')"
    array=${array:-${spec#--array=}}
    [[ $array =~ ^[0-9][0-9,%:-]*$ ]] || die "--array=$array: not an array list like 0-9 or 3,7-9" 2
    jid=$(submit --array="$array" --output="$logs/%x-%A_%a.out" "${extra[@]}" slurm/sweep.sbatch "$config" "${overrides[@]}")
    echo "sweep: submitted job $jid (array --array=$array)"
    rid=$(submit --dependency="afterany:$jid" --kill-on-invalid-dep=yes --output="$logs/%x-%j.out" "${extra[@]}" "${extra_reduce[@]}" \
                 slurm/reduce.sbatch "$config" "${overrides[@]}")
    echo "reduce: submitted job $rid (--dependency=afterany:$jid)"
    ;;
  reduce)
    rid=$(submit --output="$logs/%x-%j.out" "${extra[@]}" "${extra_reduce[@]}" slurm/reduce.sbatch "$config" "$@")
    echo "reduce: submitted job $rid"
    ;;
  -*|"") usage ;;
  *)
    jid=$(submit --job-name="thinksteer-$stage" --output="$logs/%x-%j.out" "${extra[@]}" slurm/stage.sbatch "$stage" "$config" "$@")
    echo "$stage: submitted job $jid"
    ;;
esac
