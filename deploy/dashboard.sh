#!/usr/bin/env bash
# Serve a campaign's Optuna storage with optuna-dashboard (0.21), in the background.
#
#   deploy/dashboard.sh STORAGE [--port N] [--host H] [--artifact-dir DIR] [--state-dir DIR]
#   deploy/dashboard.sh --stop [--port N] [--state-dir DIR]
#
# STORAGE is one of
#   journal:///abs/path/optuna.journal | journal:rel/path.journal (relative to the current
#   directory) | a plain path to an existing journal file  -> JournalFileStorage
#   postgresql+psycopg2://user@host:port/db                  -> RDBStorage
# A PostgreSQL password is never accepted in the URL (it would show in `ps`): libpq
# reads it from $PGPASSWORD or ~/.pgpass, which this script leaves to the environment.
# --artifact-dir: the run's artifact store (<run_dir>/artifacts), so study artifacts
# (e.g. SIC plots) show up; optional.
#
# Listens on 127.0.0.1:8080 by default; waits until the HTTP API answers, then prints
# the URL on stdout. The pid and log files are <state-dir>/dashboard-<port>.{pid,log}
# (default state dir <repo>/.deploy). If a dashboard from this script already runs
# on that port it is reused. --stop ends it.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=8080
HOST=127.0.0.1
ARTIFACT_DIR=""
STATE_DIR=${WSAD_DEPLOY_DIR:-$REPO/.deploy}
STORAGE=""
ACTION=start

die() { echo "deploy/dashboard.sh: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --port) PORT="${2:?--port needs a number}"; shift 2 ;;
        --host) HOST="${2:?--host needs an address}"; shift 2 ;;
        --artifact-dir) ARTIFACT_DIR="${2:?--artifact-dir needs a directory}"; shift 2 ;;
        --state-dir) STATE_DIR="${2:?--state-dir needs a directory}"; shift 2 ;;
        --stop) ACTION=stop; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        -*) die "unknown option '$1' (expected --port N, --host H, --artifact-dir DIR, --state-dir DIR, --stop)" ;;
        *) [[ -z "$STORAGE" ]] || die "only one STORAGE argument, got '$STORAGE' and '$1'"
           STORAGE=$1; shift ;;
    esac
done

[[ "$PORT" =~ ^[0-9]+$ ]] || die "--port must be a number, got '$PORT'"
PID_FILE=$STATE_DIR/dashboard-$PORT.pid
LOG_FILE=$STATE_DIR/dashboard-$PORT.log

alive() { [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

if [[ $ACTION == stop ]]; then
    if alive; then
        pid=$(cat "$PID_FILE")
        kill -TERM "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        echo "deploy/dashboard.sh: stopped dashboard on port $PORT (pid $pid)" >&2
    fi
    rm -f "$PID_FILE"
    exit 0
fi

[[ -n "$STORAGE" ]] || die "missing STORAGE (journal:///path/optuna.journal or postgresql+psycopg2://user@host:port/db)"

case "$STORAGE" in
    journal://*)
        path=${STORAGE#journal://}
        [[ "$path" == /* ]] || die "storage '$STORAGE': 'journal://' must be followed by an absolute path (journal:///abs/path.journal)"
        STORAGE_ARGS=("$path" --storage-class JournalFileStorage) ;;
    journal:*)
        path=$(realpath -m -- "${STORAGE#journal:}")
        STORAGE_ARGS=("$path" --storage-class JournalFileStorage) ;;
    postgresql*://*)
        if [[ "$STORAGE" =~ ^[^:]+://[^/@]*:[^/@]*@ ]]; then
            die "storage URL must not contain a password (it would be visible in ps); put it in \$PGPASSWORD or ~/.pgpass"
        fi
        path=""
        STORAGE_ARGS=("$STORAGE" --storage-class RDBStorage) ;;
    *://*) die "storage '$STORAGE': unsupported scheme (expected journal:... or postgresql+psycopg2://...)" ;;
    *)
        path=$(realpath -m -- "$STORAGE")
        STORAGE_ARGS=("$path" --storage-class JournalFileStorage) ;;
esac
if [[ -n "$path" && ! -f "$path" ]]; then
    die "journal file $path does not exist (create the campaign's studies first)"
fi
if [[ -n "$ARTIFACT_DIR" ]]; then
    [[ -d "$ARTIFACT_DIR" ]] || die "--artifact-dir $ARTIFACT_DIR is not a directory"
    STORAGE_ARGS+=(--artifact-dir "$(realpath -- "$ARTIFACT_DIR")")
fi

DASHBOARD=${OPTUNA_DASHBOARD:-}
if [[ -z "$DASHBOARD" ]]; then
    if [[ -x "$REPO/.venv/bin/optuna-dashboard" ]]; then
        DASHBOARD=$REPO/.venv/bin/optuna-dashboard
    else
        DASHBOARD=$(command -v optuna-dashboard) || die "optuna-dashboard not found: pip install 'optuna-dashboard>=0.21'"
    fi
fi
PY=$(dirname "$DASHBOARD")/python
[[ -x "$PY" ]] || PY=python3

URL="http://$HOST:$PORT"
answers() {
    "$PY" - "$URL/api/meta" <<'PYEOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PYEOF
}

if alive && answers; then
    echo "deploy/dashboard.sh: reusing the dashboard on port $PORT (pid $(cat "$PID_FILE"))" >&2
    echo "$URL/dashboard"
    exit 0
fi
if answers; then
    die "port $PORT on $HOST is already in use by another server; pick another with --port"
fi

mkdir -p "$STATE_DIR"
# setsid: own session, so the dashboard outlives this script and the caller's Ctrl-C.
setsid "$DASHBOARD" "${STORAGE_ARGS[@]}" --host "$HOST" --port "$PORT" --server wsgiref \
    >"$LOG_FILE" 2>&1 </dev/null &
echo $! >"$PID_FILE"

for _ in $(seq 1 150); do
    if answers; then
        echo "deploy/dashboard.sh: optuna-dashboard (pid $(cat "$PID_FILE")) serves $URL/dashboard; log $LOG_FILE" >&2
        echo "$URL/dashboard"
        exit 0
    fi
    if ! alive; then
        rm -f "$PID_FILE"
        die "optuna-dashboard exited during start-up; its log $LOG_FILE ends with:
$(tail -n 15 "$LOG_FILE")"
    fi
    sleep 0.2
done
die "optuna-dashboard did not answer on $URL within 30 s; see $LOG_FILE"
