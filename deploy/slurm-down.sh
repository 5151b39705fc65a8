#!/usr/bin/env bash
# Stop one-node SLURM clusters started by deploy/slurm-up.sh (slurmd, slurmctld, munged).
#   deploy/slurm-down.sh [RUN_DIR]   the cluster of RUN_DIR (default <repo>/.deploy/slurm)
#   deploy/slurm-down.sh --all       every cluster slurm-up.sh started on this machine,
#                                    whichever checkout it came from
#   deploy/slurm-down.sh --all --dry-run   print those clusters' run dirs, stop nothing
# A cluster is recognised by its daemons' command lines (the slurm.conf or munge key of
# a RUN_DIR holding slurm-up.sh's files); a system SLURM is never touched. State and
# logs are kept (slurm-up.sh starts slurmctld with a clean state anyway). Safe to run twice.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

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
        echo "slurm-down: stopped $name ($pid) of $(dirname "$pidfile")" >&2
    fi
    rm -f "$pidfile"
}

stop_dir() {
    local dir=$1
    [[ -d "$dir" ]] || return 0
    stop slurmd "$dir/slurmd.pid"
    stop slurmctld "$dir/slurmctld.pid"
    stop munged "$dir/munged.pid"
}

if [[ "${1:-}" == "--all" ]]; then
    # run dirs named on the daemons' command lines: -f RUN_DIR/slurm.conf, --pid-file=RUN_DIR/...
    mapfile -t dirs < <(
        ps -eo args= | grep -oE '(-f |--pid-file=)/[^ ]+' | sed -E 's#^(-f |--pid-file=)##' \
            | xargs -r -n1 dirname | sort -u
    )
    for dir in "${dirs[@]}"; do
        # only run dirs of slurm-up.sh: its slurm.conf names the run dir's own pid file
        if [[ -f "$dir/slurm.conf" ]] && grep -qF "SlurmctldPidFile=$dir/slurmctld.pid" "$dir/slurm.conf"; then
            if [[ "${2:-}" == "--dry-run" ]]; then echo "$dir"; else stop_dir "$dir"; fi
        fi
    done
    exit 0
fi
stop_dir "${1:-${WSAD_SLURM_DIR:-$REPO/.deploy/slurm}}"
