#!/usr/bin/env bash
# Stop the one-node SLURM cluster started by deploy/slurm-up.sh (slurmd, slurmctld, munged).
#   deploy/slurm-down.sh [RUN_DIR]     default RUN_DIR: <repo>/.deploy/slurm
# Only the processes whose pid files live in RUN_DIR are stopped. State and logs are kept
# (slurm-up.sh starts slurmctld with a clean state anyway). Safe to run twice.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${1:-${WSAD_SLURM_DIR:-$REPO/.deploy/slurm}}
[[ -d "$RUN_DIR" ]] || exit 0

stop() {  # stop NAME PIDFILE: SIGTERM, wait up to 10 s, then SIGKILL
    local name=$1 pidfile=$2 pid
    [[ -f "$pidfile" ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slurm-down: $name ($pid) did not stop, killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "slurm-down: stopped $name ($pid)" >&2
    fi
    rm -f "$pidfile"
}

stop slurmd "$RUN_DIR/slurmd.pid"
stop slurmctld "$RUN_DIR/slurmctld.pid"
stop munged "$RUN_DIR/munged.pid"
