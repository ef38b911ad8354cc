#!/usr/bin/env bash
# Stand-in for build/bin/thinksteer that implements the CLI contract slurm/*.sbatch and slurm/submit.sh
# rely on, in a few seconds and without a model (select it with THINKSTEER_BIN=tests/slurm/fake_thinksteer.sh):
#   sweep plan --config C [--section.key v ...]  -> <run.dir>/sweep/manifest.jsonl, stdout "--array=0-<N-1>"
#   sweep run --config C --task-id N [...]       -> <run.dir>/sweep/tasks/task-<NNNNNN>.h5 + .done; exit 0 (done or
#                                                   already done), 2 bad input, 75 stopped by SIGUSR1/SIGTERM with
#                                                   progress saved (the rerun goes on from there)
#   reduce --config C [--reduce.allow_partial true] -> <run.dir>/sweep/summary.csv (+ summary.h5); missing tasks:
#                                                   stdout "missing: --array=LIST", missing.txt, exit 3 (0 if partial)
#   any other stage                              -> <run.dir>/<stage>.done, exit 0
# Config keys (INI, overridable as --section.key value): run.dir, fake.tasks (4), fake.seconds (1: the
# work of one task, in steps of 0.1 s), fake.resume_seconds (the work left after a restart; default: the rest),
# fake.fail_task (a task that exits 2). Every task appends what happened
# (start with SLURM_JOB_ID and SLURM_RESTART_COUNT, the signal, stop, done) to tasks/task-<NNNNNN>.log.
set -euo pipefail

die2() { echo "fake thinksteer: $*" >&2; exit 2; }
[[ $# -ge 1 ]] || die2 "usage: thinksteer <subcommand> --config FILE [--section.key value ...]"
cmd=$1; shift
if [[ $cmd == sweep ]]; then
  [[ $# -ge 1 ]] || die2 "sweep: plan or run"
  cmd="sweep $1"; shift
fi

config="" task_id=${SLURM_ARRAY_TASK_ID:-}
declare -A opt=()
while (($#)); do
  case $1 in
    --help) echo "fake thinksteer $cmd"; exit 0 ;;
    --config) config=${2:?}; shift 2 ;;
    --task-id) task_id=${2:?}; shift 2 ;;
    --*.*) [[ $# -ge 2 ]] || die2 "$1 needs a value"; opt[${1#--}]=$2; shift 2 ;;
    *) die2 "unexpected argument '$1'" ;;
  esac
done
[[ -n $config && -f $config ]] || die2 "--config: no such file '$config'"

# value SECTION.KEY DEFAULT: command line beats file beats default.
value() {
  local key=$1 default=$2 v
  if [[ -n ${opt[$key]+x} ]]; then echo "${opt[$key]}"; return; fi
  v=$(awk -v sec="${key%%.*}" -v k="${key#*.}" '
    /^[ \t]*[#;]/ { next }
    /^[ \t]*\[/ { gsub(/[][ \t]/, ""); cur = $0; next }
    cur == sec && index($0, "=") {
      name = substr($0, 1, index($0, "=") - 1); val = substr($0, index($0, "=") + 1)
      gsub(/^[ \t]+|[ \t]+$/, "", name); gsub(/^[ \t]+|[ \t]+$/, "", val)
      if (name == k) found = val
    }
    END { if (found != "") print found }' "$config")
  echo "${v:-$default}"
}

run_dir=$(value run.dir "")
[[ -n $run_dir ]] || die2 "$config: [run] dir is required"
sweep=$run_dir/sweep
tasks=$(value fake.tasks 4)
[[ $tasks =~ ^[1-9][0-9]*$ ]] || die2 "fake.tasks: not a positive integer: '$tasks'"
now() { date +%H:%M:%S.%N; }

# "1,2,3,5,7,8" -> "1-3,5,7-8"
ranges() {
  awk -v RS=, 'NF { v = $1 + 0
    if (n && v == last + 1) { last = v; next }
    if (n) { out = out sep (first == last ? first : first "-" last); sep = "," }
    first = last = v; n = 1 }
    END { if (n) out = out sep (first == last ? first : first "-" last); print out }' <<< "$1"
}

case $cmd in
  "sweep plan")
    mkdir -p "$sweep/tasks"
    tmp=$sweep/manifest.jsonl.tmp.$$
    for ((k = 0; k < tasks; k++)); do
      printf '{"task": %d, "key": "point-%d", "coef": %d}\n' "$k" "$k" "$((k - tasks / 2))"
    done > "$tmp"
    mv "$tmp" "$sweep/manifest.jsonl"
    echo "fake thinksteer: sweep plan: $tasks tasks in $sweep/manifest.jsonl" >&2
    echo "--array=0-$((tasks - 1))"
    ;;

  "sweep run")
    [[ -f $sweep/manifest.jsonl ]] || die2 "$sweep/manifest.jsonl: missing (run sweep plan first)"
    [[ $task_id =~ ^[0-9]+$ ]] || die2 "--task-id: give the manifest row (got '$task_id')"
    row=$(grep -E "^\{\"task\": $task_id," "$sweep/manifest.jsonl") || die2 "--task-id $task_id: no such manifest row"
    [[ $task_id == "$(value fake.fail_task -1)" ]] && die2 "task $task_id: bad input (fake.fail_task)"
    name=$(printf 'task-%06d' "$task_id")
    out=$sweep/tasks/$name.h5 log=$sweep/tasks/$name.log progress=$sweep/tasks/$name.progress
    mkdir -p "$sweep/tasks"
    stop=""
    trap 'stop=USR1; echo "$(now) got SIGUSR1" >> "$log"' USR1
    trap 'stop=TERM; echo "$(now) got SIGTERM" >> "$log"' TERM
    echo "$(now) start task=$task_id job=${SLURM_JOB_ID:-none} restart=${SLURM_RESTART_COUNT:-0}" >> "$log"
    if [[ -f $out.done ]]; then echo "$(now) skipped: already done" >> "$log"; exit 0; fi
    steps=$(awk -v s="$(value fake.seconds 1)" 'BEGIN { printf "%d", s * 10 }')
    done_steps=0
    if [[ -f $progress ]]; then
      done_steps=$(cat "$progress")
      resume=$(value fake.resume_seconds "")
      [[ -n $resume ]] && steps=$((done_steps + $(awk -v s="$resume" 'BEGIN { printf "%d", s * 10 }')))
      echo "$(now) resuming at step $done_steps/$steps" >> "$log"
    fi
    while ((done_steps < steps)); do
      if [[ -n $stop ]]; then
        echo "$done_steps" > "$progress"
        echo "$(now) stopped early at step $done_steps/$steps ($stop): exit 75" >> "$log"
        echo "fake thinksteer: task $task_id stopped early ($stop), progress saved" >&2
        exit 75
      fi
      sleep 0.1 || true   # srun signals every process of the task, this sleep too
      done_steps=$((done_steps + 1))
    done
    coef=$(sed -E 's/.*"coef": (-?[0-9]+).*/\1/' <<< "$row")
    printf 'task,key,coef,value\n%d,point-%d,%d,%d\n' "$task_id" "$task_id" "$coef" "$((coef * coef + task_id))" > "$out.tmp.$$"
    mv "$out.tmp.$$" "$out"
    echo "fake-config-hash" > "$out.done"
    rm -f "$progress"
    echo "$(now) done" >> "$log"
    ;;

  reduce)
    [[ -f $sweep/manifest.jsonl ]] || die2 "$sweep/manifest.jsonl: missing (run sweep plan first)"
    n=$(wc -l < "$sweep/manifest.jsonl")
    missing=""
    for ((k = 0; k < n; k++)); do
      [[ -f $(printf '%s/tasks/task-%06d.h5.done' "$sweep" "$k") ]] || missing+="$k,"
    done
    list=$(ranges "$missing")
    echo "$list" > "$sweep/missing.txt"
    partial=$(value reduce.allow_partial false)
    if [[ -n $list ]]; then
      echo "missing: --array=$list"
      if [[ $partial != true ]]; then
        rm -f "$sweep/summary.csv" "$sweep/summary.h5"
        echo "fake thinksteer: reduce: tasks missing: --array=$list" >&2
        exit 3
      fi
    fi
    {
      echo "task,key,coef,value"
      for ((k = 0; k < n; k++)); do
        f=$(printf '%s/tasks/task-%06d.h5' "$sweep" "$k")
        [[ -f $f.done ]] && tail -n +2 "$f"
      done
    } > "$sweep/summary.csv.tmp.$$"
    mv "$sweep/summary.csv.tmp.$$" "$sweep/summary.csv"
    echo "partial=$([[ -n $list ]] && echo 1 || echo 0)" > "$sweep/summary.h5"
    echo "fake thinksteer: reduce: $n tasks -> $sweep/summary.csv" >&2
    ;;

  *)
    mkdir -p "$run_dir"
    echo "$(now) job=${SLURM_JOB_ID:-none} ranks=${SLURM_NTASKS:-1}" > "$run_dir/${cmd// /_}.done"
    echo "fake thinksteer: $cmd done" >&2
    ;;
esac
