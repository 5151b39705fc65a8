#!/usr/bin/env bash
# Serve a campaign's studies with optuna-dashboard in the background (`hpo dashboard`).
#
#   deploy/dashboard.sh CAMPAIGN.toml [--port N] [--host H] [--expose] [--state-dir DIR]
#   deploy/dashboard.sh --stop [--port N] [--state-dir DIR]
#
# The storage (journal file or PostgreSQL), its password rules and the artifact store
# all come from the campaign, through `hpo dashboard` (the same rules as every hpo
# command); this script only runs it detached, waits until its HTTP API answers and
# prints the URL on stdout. Listens on 127.0.0.1:8080 by default; a non-loopback
# --host needs --expose (the dashboard has no authentication).
# The pid and log files are <state-dir>/dashboard-<port>.{pid,log} (default state dir
# <repo>/.deploy). A dashboard from this script already running on that port is reused.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=8080
HOST=127.0.0.1
EXPOSE=()
STATE_DIR=${WSAD_DEPLOY_DIR:-$REPO/.deploy}
CAMPAIGN=""
ACTION=start

die() { echo "deploy/dashboard.sh: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --port) PORT="${2:?--port needs a number}"; shift 2 ;;
        --host) HOST="${2:?--host needs an address}"; shift 2 ;;
        --expose) EXPOSE=(--expose); shift ;;
        --state-dir) STATE_DIR="${2:?--state-dir needs a directory}"; shift 2 ;;
        --stop) ACTION=stop; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        -*) die "unknown option '$1' (expected --port N, --host H, --expose, --state-dir DIR, --stop)" ;;
        *) [[ -z "$CAMPAIGN" ]] || die "only one CAMPAIGN argument, got '$CAMPAIGN' and '$1'"
           CAMPAIGN=$1; shift ;;
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

[[ -n "$CAMPAIGN" ]] || die "missing CAMPAIGN (the campaign TOML file whose studies to serve)"

HPO=${WSAD_HPO:-}
if [[ -z "$HPO" ]]; then
    if [[ -x "$REPO/.venv/bin/hpo" ]]; then HPO=$REPO/.venv/bin/hpo
    else HPO=$(command -v hpo) || die "hpo not found: run 'make setup' or pip install -e ."; fi
fi
PY=$(dirname "$HPO")/python
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

mkdir -p "$STATE_DIR"
# setsid: own session, so the dashboard outlives this script and the caller's Ctrl-C.
setsid "$HPO" dashboard "$CAMPAIGN" --host "$HOST" --port "$PORT" "${EXPOSE[@]}" \
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
        die "hpo dashboard exited during start-up: $(tail -n 3 "$LOG_FILE")"
    fi
    sleep 0.2
done
die "optuna-dashboard did not answer on $URL within 30 s; see $LOG_FILE"
