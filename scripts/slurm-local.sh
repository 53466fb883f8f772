#!/usr/bin/env bash
# A throwaway one-node Slurm for det's tests: munged, slurmctld and slurmd
# (Debian's slurmctld, slurmd, munge) in a fresh temporary folder with a
# generated slurm.conf, on free loopback ports; nothing under /etc is used.
#
#   scripts/slurm-local.sh start STATE [CPUS]  # prints the SLURM_CONF path
#   scripts/slurm-local.sh stop STATE          # stops it, removes the folder
#
# Commands (sbatch, squeue, scancel) find this cluster through
# SLURM_CONF=<printed path>. Needs root (slurmd runs jobs as their user).
set -euo pipefail
cmd=${1:-}; state=${2:-}
if [[ -z "$cmd" || -z "$state" ]]; then
  echo "usage: $0 start|stop STATE [CPUS]" >&2; exit 2
fi

free_port() {
  python3 - 2>/dev/null <<'PY' || echo $(( 20000 + RANDOM % 20000 ))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])
PY
}

case "$cmd" in
  start)
    for b in munged slurmctld slurmd sbatch; do
      command -v $b >/dev/null || {
        echo "slurm-local: $b not found (apt-get install slurmctld slurmd slurm-client munge)" >&2
        exit 1; }
    done
    [[ $(id -u) -eq 0 ]] || { echo "slurm-local: needs root" >&2; exit 1; }
    dir=$(mktemp -d /tmp/det-slurm.XXXXXX)
    printf '%s\n' "$dir" > "$state"
    mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
    chmod 700 "$dir/munge"
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2>/dev/null
    chmod 400 "$dir/munge/munge.key"
    munged --force --key-file="$dir/munge/munge.key" \
      --socket="$dir/munge/munge.sock" --pid-file="$dir/munge/munged.pid" \
      --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munge.seed"
    host=$(hostname -s)
    cpus=${3:-$(nproc)}
    cat > "$dir/slurm.conf" <<CONF
ClusterName=dettest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=dettest1 NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -f "$SLURM_CONF" || { cat "$dir/slurmctld.log" >&2; exit 1; }
    slurmd -f "$SLURM_CONF" -N dettest1 || { cat "$dir/slurmd.log" >&2; exit 1; }
    for _ in $(seq 1 60); do
      if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
        printf '%s\n' "$SLURM_CONF" >> "$state"
        echo "$SLURM_CONF"
        exit 0
      fi
      sleep 0.5
    done
    echo "slurm-local: the node did not come up" >&2
    sinfo >&2 || true; tail -20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
    exit 1
    ;;
  stop)
    [[ -f "$state" ]] || exit 0
    dir=$(sed -n 1p "$state")
    if [[ -n "$dir" && "$dir" == /tmp/det-slurm.* && -d "$dir" ]]; then
      # This cluster's jobs first (their det-workers), then the daemons.
      export SLURM_CONF="$dir/slurm.conf"
      jobs=$(squeue -h -o %i 2>/dev/null || true)
      if [[ -n "$jobs" ]]; then
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 1 20); do
          [[ -z "$(squeue -h -o %i 2>/dev/null || true)" ]] && break
          sleep 0.5
        done
      fi
      for pidfile in slurmd.pid slurmctld.pid munge/munged.pid; do
        if [[ -f "$dir/$pidfile" ]]; then
          kill "$(cat "$dir/$pidfile")" 2>/dev/null || true
        fi
      done
      sleep 1
      # Jobs' processes (det-workers) of this cluster are children of
      # slurmstepd, which exits with slurmd; anything left is killed by pid.
      for pidfile in slurmd.pid slurmctld.pid munge/munged.pid; do
        if [[ -f "$dir/$pidfile" ]]; then
          kill -9 "$(cat "$dir/$pidfile")" 2>/dev/null || true
        fi
      done
      rm -rf "$dir"
    fi
    rm -f "$state"
    ;;
  *) echo "slurm-local: unknown command $cmd" >&2; exit 2 ;;
esac
