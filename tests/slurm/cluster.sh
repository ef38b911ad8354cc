#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, from Debian's slurm-wlm and munge (scripts/setup.sh
# installs them), for the tests of slurm/*.sbatch and slurm/submit.sh. Everything lives under DIR:
# its own munge key, slurm.conf (free ports, this host as the only node with its real CPUs and memory),
# state, spool, pid and log files. No systemd and no files outside DIR, except a short directory
# /tmp/ts-slurm.XXXXXX for the Unix sockets (munge's and slurmstepd's; socket paths are limited to
# 108 bytes) that DIR/sockets points to. Works as root (SlurmUser=root) and as a normal user.
#
#   tests/slurm/cluster.sh start DIR    start munged, slurmctld, slurmd; wait for the node to be idle;
#                                       print `export SLURM_CONF=DIR/slurm.conf` on stdout
#   tests/slurm/cluster.sh env DIR      print the same export line (clients need only SLURM_CONF: the
#                                       munge socket is AuthInfo=socket=... in slurm.conf)
#   tests/slurm/cluster.sh status DIR   daemons and sinfo; exit 0 when all three daemons run
#   tests/slurm/cluster.sh stop DIR     cancel all jobs, stop the daemons and any slurmstepd (and its
#                                       tasks) this cluster started; remove the socket directory
#   tests/slurm/cluster.sh logs DIR     print the munged, slurmctld and slurmd logs
#
# Usage from a shell:  eval "$(tests/slurm/cluster.sh start /tmp/c)"; sbatch ...; tests/slurm/cluster.sh stop /tmp/c
# Exit codes: 0 ok, 1 failure (the logs are printed), 2 usage or slurm-wlm/munge not installed.
# Environment: CLUSTER_START_TIMEOUT (seconds to wait for the idle node, default 60), CLUSTER_CRED_EXPIRE
# (credential lifetime = the wait before a requeued job starts again, default 10 s; Slurm's is 120 s).
set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

[[ $# -eq 2 ]] || usage
cmd=$1
DIR=$(realpath -m -- "$2")
CONF=$DIR/slurm.conf
MARK="THINKSTEER_TEST_CLUSTER=$DIR"     # in the daemons' environment, inherited by slurmstepd

# Debian puts the daemons in /usr/sbin, which a normal user's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
require_slurm() {
  local missing=() c
  for c in munged munge unmunge slurmctld slurmd sinfo sbatch scontrol squeue scancel srun; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
  done
  if ((${#missing[@]})); then
    echo "cluster.sh: slurm-wlm/munge not installed (missing: ${missing[*]}); scripts/setup.sh installs them" >&2
    exit 2
  fi
}

pid_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# A TCP port nobody listens on (bind to port 0 and give it back; python3 is part of the set-up).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

print_logs() {
  local f
  for f in "$DIR"/log/munged.log "$DIR"/log/slurmctld.log "$DIR"/log/slurmd.log "$DIR"/log/*.stderr; do
    [[ -s $f ]] || continue
    echo "===== $f (last 80 lines) =====" >&2
    tail -n 80 "$f" >&2
  done
}

# Processes whose environment carries this cluster's mark (daemons and the slurmstepd they fork).
marked_pids() {
  local e pid
  for e in /proc/[0-9]*/environ; do
    pid=${e#/proc/}; pid=${pid%/environ}
    [[ $pid == "$$" ]] && continue
    { tr '\0' '\n' < "$e" | grep -qxF "$MARK" && echo "$pid"; } 2>/dev/null
  done
  return 0
}

# pid and all its descendants, children first.
tree_pids() {
  local pid=$1 child
  for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do tree_pids "$child"; done
  echo "$pid"
}

stop_pidfile() {  # stop_pidfile FILE NAME: TERM, wait up to 10 s, KILL
  local f=$1 name=$2 pid i
  pid_alive "$f" || return 0
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "cluster.sh: $name ($pid) ignored SIGTERM; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

start() {
  require_slurm
  if [[ -f $CONF ]] && status >/dev/null 2>&1; then
    echo "cluster.sh: already running in $DIR" >&2
    echo "export SLURM_CONF=$CONF"
    return 0
  fi
  if [[ -f $CONF ]]; then stop >/dev/null 2>&1 || true; fi   # remains of an earlier run in the same DIR

  local user host sockdir port_ctld port_d node_line mem cpus
  user=$(id -un)
  host=$(hostname -s)
  rm -rf -- "$DIR/state" "$DIR/log"
  mkdir -p "$DIR"/{munge,state,log,run}
  chmod 700 "$DIR/munge"
  sockdir=$(mktemp -d /tmp/ts-slurm.XXXXXX)
  chmod 755 "$sockdir"
  mkdir -p "$sockdir/spool"
  ln -sfn "$sockdir" "$DIR/sockets"

  # munged: own key, socket, pid, seed and log files. --force accepts directories that other users
  # may read (a test's tmp dir) and a root-run daemon.
  head -c 1024 /dev/urandom > "$DIR/munge/munge.key"
  chmod 400 "$DIR/munge/munge.key"
  env "$MARK" munged --force --key-file="$DIR/munge/munge.key" --socket="$sockdir/munge.socket" \
    --pid-file="$DIR/run/munged.pid" --seed-file="$DIR/munge/munged.seed" --log-file="$DIR/log/munged.log" \
    2> "$DIR/log/munged.stderr" || { print_logs; die "munged did not start"; }
  munge -n -S "$sockdir/munge.socket" | unmunge -S "$sockdir/munge.socket" >/dev/null ||
    { print_logs; die "munge credentials do not round-trip through $sockdir/munge.socket"; }

  # The node as slurmd sees it (sockets, cores, threads, memory), named after this host.
  if node_line=$(slurmd -C 2>/dev/null | head -n 1) && [[ $node_line == NodeName=* ]]; then
    node_line=${node_line#NodeName=* }
  else
    cpus=$(nproc)
    mem=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    node_line="CPUs=$cpus RealMemory=$mem"
  fi
  port_ctld=$(free_port)
  port_d=$(free_port)
  while [[ $port_d == "$port_ctld" ]]; do port_d=$(free_port); done
  : > "$DIR/plugstack.conf"   # no site SPANK plugins from /etc/slurm

  cat > "$CONF" <<EOF
# Generated by tests/slurm/cluster.sh: a one-node test cluster. Not for production.
ClusterName=thinksteer-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port_ctld
SlurmdPort=$port_d
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
# cred_expire: also how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket=$sockdir/munge.socket,cred_expire=${CLUSTER_CRED_EXPIRE:-10}
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$sockdir/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/plugstack.conf
MailProg=/bin/true
# No cgroups: processes tracked through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
# One CPU per task by default: several array tasks at once.
SchedulerType=sched/backfill
# Test all pending jobs every second (defaults: 60 s and 30 s), so a released, requeued or newly
# eligible job starts within a second or two.
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
# Keep finished jobs visible to scontrol for 10 minutes (no accounting database, so no sacct).
MinJobAge=600
KillWait=10
SlurmdTimeout=60
InactiveLimit=0
NodeName=$host NodeAddr=127.0.0.1 $node_line State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

  export SLURM_CONF=$CONF
  # Both daemons fork into the background and write their pid files; -c: start with no saved state.
  env "$MARK" slurmctld -c -f "$CONF" 2> "$DIR/log/slurmctld.stderr" || { print_logs; die "slurmctld did not start"; }
  env "$MARK" slurmd -f "$CONF" -N "$host" 2> "$DIR/log/slurmd.stderr" || { print_logs; die "slurmd did not start"; }

  local timeout=${CLUSTER_START_TIMEOUT:-60} t0=$SECONDS state=""
  while ((SECONDS - t0 < timeout)); do
    pid_alive "$DIR/run/slurmctld.pid" || { sleep 0.5; pid_alive "$DIR/run/slurmctld.pid" || { print_logs; die "slurmctld exited"; }; }
    state=$(sinfo -h -N -n "$host" -o '%T' 2>/dev/null || true)
    [[ $state == idle ]] && break
    sleep 0.3
  done
  if [[ $state != idle ]]; then
    print_logs
    die "node $host not idle after ${timeout}s (state: ${state:-unknown})"
  fi
  echo "cluster.sh: cluster up in $DIR (node $host, $node_line, ports $port_ctld/$port_d)" >&2
  echo "export SLURM_CONF=$CONF"
}

status() {
  local ok=0 d
  for d in munged slurmctld slurmd; do
    if pid_alive "$DIR/run/$d.pid"; then echo "$d: running ($(cat "$DIR/run/$d.pid"))"
    else echo "$d: not running"; ok=1; fi
  done
  if [[ -f $CONF ]] && command -v sinfo >/dev/null; then
    SLURM_CONF=$CONF sinfo -N -o '%N %T %C' 2>&1 || ok=1
  fi
  return $ok
}

stop() {
  [[ -d $DIR ]] || return 0
  local jobs i pid sockdir
  if [[ -f $CONF ]] && pid_alive "$DIR/run/slurmctld.pid" && command -v squeue >/dev/null; then
    export SLURM_CONF=$CONF
    jobs=$(squeue -h -o '%A' 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        [[ -z $(squeue -h -t RUNNING,COMPLETING,CONFIGURING -o '%A' 2>/dev/null || true) ]] && break
        sleep 0.2
      done
    fi
  fi
  stop_pidfile "$DIR/run/slurmd.pid" slurmd
  stop_pidfile "$DIR/run/slurmctld.pid" slurmctld
  # Whatever is left of this cluster: slurmstepd and the tasks under them.
  for pid in $(marked_pids); do
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == munged ]] && continue
    # shellcheck disable=SC2046  # one pid per word
    kill -KILL $(tree_pids "$pid") 2>/dev/null || true
  done
  stop_pidfile "$DIR/run/munged.pid" munged
  for pid in $(marked_pids); do kill -KILL "$pid" 2>/dev/null || true; done
  if [[ -L $DIR/sockets ]]; then
    sockdir=$(readlink "$DIR/sockets")
    [[ $sockdir == /tmp/ts-slurm.* ]] && rm -rf -- "$sockdir"
    rm -f -- "$DIR/sockets"
  fi
  echo "cluster.sh: stopped $DIR" >&2
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) [[ -f $CONF ]] || die "no cluster in $DIR"; echo "export SLURM_CONF=$CONF" ;;
  logs) print_logs 2>&1 ;;
  *) usage ;;
esac
