#!/usr/bin/env bash
# A team's MLflow tracking server: PostgreSQL (Debian's package) as the backend store and
# `mlflow server` serving the artifacts, both bound to 127.0.0.1.
#
#   MLFLOW_DB_PASSWORD=... team/server.sh start    # then: export MLFLOW_TRACKING_URI=http://127.0.0.1:5001
#   team/server.sh stop | status
#
# The database password comes from MLFLOW_DB_PASSWORD only. It is handed to PostgreSQL on
# psql's standard input and to the server as PGPASSWORD (libpq reads it), so it never appears
# in a command line, a URI, a log or this script's output.
# Settings (environment): MLFLOW_TEAM_DIR (.team), MLFLOW_TEAM_PORT (5001), MLFLOW_DB_NAME
# (mlflow), MLFLOW_DB_USER (mlflow), MLFLOW_DB_PORT (5432), MLFLOW_TEAM_WORKERS (2).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
team_dir=${MLFLOW_TEAM_DIR:-$here/.team}
port=${MLFLOW_TEAM_PORT:-5001}
db=${MLFLOW_DB_NAME:-mlflow}
db_user=${MLFLOW_DB_USER:-mlflow}
db_port=${MLFLOW_DB_PORT:-5432}
workers=${MLFLOW_TEAM_WORKERS:-2}
mlflow=${MLFLOW_BIN:-$here/.venv/bin/mlflow}
pid_file=$team_dir/mlflow-server.pid

say() { printf 'team-server: %s\n' "$*"; }
fail() { printf 'team-server: error: %s\n' "$*" >&2; exit 1; }

as_postgres() { runuser -u postgres -- "$@"; }

postgres_up() {
    command -v pg_lsclusters >/dev/null || {
        [ "$(id -u)" = 0 ] || fail "PostgreSQL is not installed: sudo apt-get install postgresql"
        say "installing PostgreSQL (Debian's package)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    }
    local version
    version=$(pg_lsclusters --no-header | awk -v p="$db_port" '$3 == p {print $1; exit}')
    [ -n "$version" ] || fail "no PostgreSQL cluster on port $db_port (pg_lsclusters lists them)"
    if ! pg_lsclusters --no-header | awk -v p="$db_port" '$3 == p && $4 == "online" {found=1} END {exit !found}'; then
        say "starting PostgreSQL $version on 127.0.0.1:$db_port"
        pg_ctlcluster "$version" main start
    fi
}

database_ready() {
    [ -n "${MLFLOW_DB_PASSWORD:-}" ] || fail "set MLFLOW_DB_PASSWORD (the database password; it is never printed)"
    # The password travels on standard input, as a psql variable: not on any command line.
    local sql
    sql=$(mktemp)
    chmod 644 "$sql"
    cat > "$sql" <<'SQL'
\set pw `cat`
SELECT format('CREATE ROLE %I LOGIN', :'user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
ALTER ROLE :"user" WITH LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
    printf '%s' "$MLFLOW_DB_PASSWORD" | as_postgres psql -q -p "$db_port" -v ON_ERROR_STOP=1 \
        -v user="$db_user" -v db="$db" -f "$sql" >/dev/null || { rm -f "$sql"; fail "could not prepare database $db"; }
    rm -f "$sql"
}

running() { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

start() {
    postgres_up
    database_ready
    mkdir -p "$team_dir/artifacts"
    if running; then say "already running (pid $(cat "$pid_file")) at http://127.0.0.1:$port"; return; fi
    PGPASSWORD=$MLFLOW_DB_PASSWORD setsid "$mlflow" server \
        --backend-store-uri "postgresql+psycopg2://$db_user@127.0.0.1:$db_port/$db" \
        --artifacts-destination "$team_dir/artifacts" \
        --host 127.0.0.1 --port "$port" --workers "$workers" \
        >"$team_dir/mlflow-server.log" 2>&1 < /dev/null &
    echo $! > "$pid_file"
    for _ in $(seq 1 120); do
        if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
            say "MLflow at http://127.0.0.1:$port (PostgreSQL database $db on 127.0.0.1:$db_port, artifacts in $team_dir/artifacts)"
            say "log there with: export MLFLOW_TRACKING_URI=http://127.0.0.1:$port"
            return
        fi
        running || fail "mlflow server exited; see $team_dir/mlflow-server.log"
        sleep 0.5
    done
    fail "mlflow server did not answer on port $port within 60 s; see $team_dir/mlflow-server.log"
}

stop() {
    if running; then
        kill -- "-$(cat "$pid_file")" 2>/dev/null || kill "$(cat "$pid_file")"
        for _ in $(seq 1 60); do running || break; sleep 0.5; done
        say "stopped the MLflow server"
    else
        say "no MLflow server running from $team_dir"
    fi
    rm -f "$pid_file"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if running; then say "running (pid $(cat "$pid_file")) at http://127.0.0.1:$port"; else say "not running"; exit 3; fi ;;
    *) echo "usage: MLFLOW_DB_PASSWORD=... $0 start | stop | status" >&2; exit 2 ;;
esac
