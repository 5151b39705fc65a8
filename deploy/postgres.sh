#!/usr/bin/env bash
# Start (or reuse) the Debian PostgreSQL 15 cluster on this machine and create the
# campaign's role and database idempotently. Prints the storage URL on stdout.
#
# The password never appears in argv, the URL or the shell history: it is taken from
# $PGPASSWORD, else from a matching ~/.pgpass line, else generated and stored in
# ~/.pgpass (mode 600), where libpq/psycopg2 find it themselves. SQL goes to psql on stdin.
#
# Usage: deploy/postgres.sh [--role NAME] [--db NAME] [--port N]
#        deploy/postgres.sh --stop | --restart        (fault tests)
set -euo pipefail

VERSION=15
CLUSTER=main
ROLE=wsad
DB=wsad_hpo
PORT=""
ACTION=create

die() { echo "deploy/postgres.sh: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --role) ROLE="${2:?--role needs a name}"; shift 2 ;;
        --db) DB="${2:?--db needs a name}"; shift 2 ;;
        --port) PORT="${2:?--port needs a number}"; shift 2 ;;
        --stop) ACTION=stop; shift ;;
        --restart) ACTION=restart; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (expected --role NAME, --db NAME, --port N, --stop, --restart)" ;;
    esac
done

for name in "$ROLE" "$DB"; do
    [[ "$name" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] \
        || die "role/database name must match [a-z_][a-z0-9_]*, got '$name'"
done
[[ -z "$PORT" || "$PORT" =~ ^[0-9]+$ ]] || die "--port must be a number, got '$PORT'"

command -v pg_ctlcluster >/dev/null || die "pg_ctlcluster not found: install postgresql-$VERSION"
SUDO=()
[[ $(id -u) -eq 0 ]] || SUDO=(sudo)

cluster_status() { pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $4}'; }
cluster_port() { pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $3}'; }

[[ -n "$(cluster_status)" ]] || die "cluster $VERSION/$CLUSTER does not exist (pg_createcluster $VERSION $CLUSTER)"

case "$ACTION" in
    stop)
        if [[ "$(cluster_status)" == online* ]]; then
            "${SUDO[@]}" pg_ctlcluster "$VERSION" "$CLUSTER" stop
        fi
        echo "PostgreSQL $VERSION/$CLUSTER stopped" >&2
        exit 0 ;;
    restart)
        "${SUDO[@]}" pg_ctlcluster "$VERSION" "$CLUSTER" restart
        echo "PostgreSQL $VERSION/$CLUSTER restarted on port $(cluster_port)" >&2
        exit 0 ;;
esac

if [[ -n "$PORT" && "$PORT" != "$(cluster_port)" ]]; then
    echo "setting port of $VERSION/$CLUSTER to $PORT" >&2
    [[ "$(cluster_status)" == online* ]] && "${SUDO[@]}" pg_ctlcluster "$VERSION" "$CLUSTER" stop
    "${SUDO[@]}" pg_conftool "$VERSION" "$CLUSTER" set port "$PORT"
fi
PORT="$(cluster_port)"
if [[ "$(cluster_status)" != online* ]]; then
    "${SUDO[@]}" pg_ctlcluster "$VERSION" "$CLUSTER" start
fi

# Password: $PGPASSWORD > ~/.pgpass entry > a new random one stored in ~/.pgpass.
PGPASS_FILE="${PGPASSFILE:-$HOME/.pgpass}"
PASSWORD="${PGPASSWORD:-}"
if [[ -z "$PASSWORD" && -f "$PGPASS_FILE" ]]; then
    PASSWORD="$(awk -F: -v p="$PORT" -v r="$ROLE" \
        '($1=="127.0.0.1" || $1=="*") && ($2==p || $2=="*") && $4==r {print $5; exit}' "$PGPASS_FILE")"
fi
if [[ -z "$PASSWORD" ]]; then
    PASSWORD="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    umask 077
    touch "$PGPASS_FILE"
    chmod 600 "$PGPASS_FILE"
    printf '127.0.0.1:%s:*:%s:%s\n' "$PORT" "$ROLE" "$PASSWORD" >>"$PGPASS_FILE"
    echo "generated a password for role $ROLE and stored it in $PGPASS_FILE" >&2
fi

# psql variable quoting: backslash and single quote escaped for a '...' \set argument.
pw_escaped="${PASSWORD//\\/\\\\}"
pw_escaped="${pw_escaped//\'/\'\'}"

# printf is a shell builtin: the password goes to psql's stdin, never into any argv.
printf '%s\n' \
    "\\set role '$ROLE'" \
    "\\set db '$DB'" \
    "\\set pw '$pw_escaped'" \
    "SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \\gexec" \
    "SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'role', :'pw') \\gexec" \
    "SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \\gexec" \
    | (cd / && "${SUDO[@]}" runuser -u postgres -- psql -X -q -p "$PORT" -d postgres -v ON_ERROR_STOP=1 >/dev/null)

echo "postgresql+psycopg2://$ROLE@127.0.0.1:$PORT/$DB"
