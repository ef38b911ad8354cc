# Sourced by slurm/stage.sbatch and slurm/sweep.sbatch (bash): run one job step, pass Slurm's warning
# signal on to it, and apply thinksteer's exit-code contract.
#
#   thinksteer_step [srun options] -- COMMAND [ARGS...]     never returns: exits with the step's code
#
# - The step runs as `srun --kill-on-bad-exit=1 [srun options] COMMAND ...` in the background, so the
#   batch shell stays free to handle signals. With `#SBATCH --signal=B:USR1@T` only the batch shell gets
#   SIGUSR1; the trap here sends it to srun, which forwards it to every task (rank) of the step. By hand:
#   `scancel --signal=USR1 --batch JOBID` (array task: JOBID_K) does the same as the time-limit warning.
# - `wait` returns early (status > 128) when a trapped signal arrives; the step is then waited for again.
# - Exit codes of the step: 0 done (or already complete), 2 bad input (never retried), 75 stopped early
#   with progress saved: `scontrol requeue` of this job (for an array task: this task only; same job id,
#   the script starts again from the top and the program continues where it stopped), at most
#   MAX_RESTARTS times (default 3, counted by SLURM_RESTART_COUNT); anything else is a failure.
#   A requeued job waits before it is eligible again (Slurm: AuthInfo cred_expire, 120 s by default).

thinksteer_step() {
  local srun_opts=()
  while (($#)) && [[ $1 != -- ]]; do srun_opts+=("$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  (($#)) || { echo "thinksteer_step: no command" >&2; exit 2; }

  _ts_forwarded=0 _ts_pid=""
  # shellcheck disable=SC2317  # invoked by the trap
  _ts_forward_usr1() {
    _ts_forwarded=$((_ts_forwarded + 1))
    [[ -n $_ts_pid ]] || return 0   # before srun started: forwarded right after the start
    echo "thinksteer: $(date '+%F %T') batch shell got SIGUSR1: forwarding it to the step (srun pid $_ts_pid)"
    kill -USR1 "$_ts_pid" 2>/dev/null || true
  }
  trap _ts_forward_usr1 USR1

  echo "thinksteer: $(date '+%F %T') job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID})}" \
       "restart ${SLURM_RESTART_COUNT:-0} on ${SLURMD_NODENAME:-$(hostname)}: $*"
  srun --kill-on-bad-exit=1 "${srun_opts[@]}" "$@" &
  _ts_pid=$!
  if ((_ts_forwarded)); then _ts_forwarded=0; _ts_forward_usr1; fi

  local rc seen=0
  while :; do
    rc=0
    wait "$_ts_pid" || rc=$?
    # Interrupted by the trap (not the step's own end): wait for the step again.
    if ((rc > 128 && _ts_forwarded != seen)); then seen=$_ts_forwarded; continue; fi
    break
  done
  trap - USR1

  local max=${MAX_RESTARTS:-3} restarts=${SLURM_RESTART_COUNT:-0}
  case $rc in
    0) echo "thinksteer: $(date '+%F %T') done" ;;
    2) echo "thinksteer: bad input (exit 2): not retried; fix the config or inputs and resubmit" ;;
    75)
      if ((restarts < max)); then
        echo "thinksteer: stopped early with progress saved (exit 75): requeueing job ${SLURM_JOB_ID} (restart $((restarts + 1)) of $max)"
        scontrol requeue "${SLURM_JOB_ID}"
      else
        echo "thinksteer: stopped early (exit 75) and MAX_RESTARTS=$max restarts used: not requeued; resubmit to continue"
      fi ;;
    *) echo "thinksteer: failed (exit $rc)" ;;
  esac
  exit "$rc"
}
