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
# (mlflow), MLFLOW_DB_USER (mlflow), MLFLOW_DB_PORT (5432), MLFLOW_TEAM_WORKERS (2),
# MLFLOW_SQLALCHEMYSTORE_POOL_SIZE (5) and MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW (5), MLFLOW_TEAM_START_S (120).
# Sizing (docs/team.md, "Sizing the server"): a worker per core; each worker holds two
# connection pools (tracking, registry) of up to POOL_SIZE + MAX_OVERFLOW connections, and
# the server's job processes about 10 more, all within PostgreSQL's max_connections: past it
# PostgreSQL refuses connections and MLflow answers 503 (checked at start).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
team_dir=${MLFLOW_TEAM_DIR:-$here/.team}
port=${MLFLOW_TEAM_PORT:-5001}
db=${MLFLOW_DB_NAME:-mlflow}
db_user=${MLFLOW_DB_USER:-mlflow}
db_port=${MLFLOW_DB_PORT:-5432}
workers=${MLFLOW_TEAM_WORKERS:-2}
pool_size=${MLFLOW_SQLALCHEMYSTORE_POOL_SIZE:-5}
pool_overflow=${MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW:-5}
start_s=${MLFLOW_TEAM_START_S:-120}
graceful_s=10
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
    cluster=$(pg_lsclusters --no-header | awk -v p="$db_port" '$3 == p {print $1, $2; exit}')
    [ -n "$cluster" ] || fail "no PostgreSQL cluster on port $db_port (pg_lsclusters lists them)"
    if ! pg_lsclusters --no-header | awk -v p="$db_port" '$3 == p && $4 == "online" {found=1} END {exit !found}'; then
        say "starting PostgreSQL $cluster on 127.0.0.1:$db_port"
        # shellcheck disable=SC2086 # version and name
        pg_ctlcluster $cluster start
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

# The connections this server can open, against what PostgreSQL allows (its superusers keep a
# few, and other databases on the cluster use some): too many means 503s under load.
connections_fit() {
    local max used wanted
    max=$(as_postgres psql -p "$db_port" -tAc "SHOW max_connections") || fail "could not read max_connections"
    used=$(as_postgres psql -p "$db_port" -tAc "SELECT count(*) FROM pg_stat_activity WHERE datname IS DISTINCT FROM '$db'")
    wanted=$((workers * 2 * (pool_size + pool_overflow) + 10))
    if [ $((wanted + used + 3)) -gt "$max" ]; then
        fail "$workers worker(s) with pools of $pool_size + $pool_overflow may open $wanted connections, and $used are open to other databases, but PostgreSQL allows $max (max_connections): lower MLFLOW_TEAM_WORKERS or the pool, or raise max_connections"
    fi
}

running() { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }
# The server's process group (setsid): the mlflow command, uvicorn and its workers.
group_alive() { [ -f "$pid_file" ] && kill -0 -- "-$(cat "$pid_file")" 2>/dev/null; }

start() {
    postgres_up
    database_ready
    connections_fit
    mkdir -p "$team_dir/artifacts"
    if running; then say "already running (pid $(cat "$pid_file")) at http://127.0.0.1:$port"; return; fi
    # Each worker's connection pools (tracking and registry) stay within PostgreSQL's
    # max_connections; uvicorn stops within a bound, in-flight requests finished or cut.
    MLFLOW_SQLALCHEMYSTORE_POOL_SIZE=$pool_size MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW=$pool_overflow \
    PGPASSWORD=$MLFLOW_DB_PASSWORD setsid "$mlflow" server \
        --backend-store-uri "postgresql+psycopg2://$db_user@127.0.0.1:$db_port/$db" \
        --artifacts-destination "$team_dir/artifacts" \
        --host 127.0.0.1 --port "$port" --workers "$workers" \
        --uvicorn-opts "--timeout-graceful-shutdown $graceful_s --timeout-keep-alive 30" \
        >>"$team_dir/mlflow-server.log" 2>&1 < /dev/null &
    echo $! > "$pid_file"
    local deadline=$((SECONDS + start_s))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if curl -fsS --max-time 5 "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
            say "MLflow at http://127.0.0.1:$port (PostgreSQL database $db on 127.0.0.1:$db_port, artifacts in $team_dir/artifacts)"
            say "log there with: export MLFLOW_TRACKING_URI=http://127.0.0.1:$port"
            return
        fi
        running || fail "mlflow server exited; see $team_dir/mlflow-server.log"
        sleep 0.5
    done
    fail "mlflow server did not answer on port $port within $start_s s; see $team_dir/mlflow-server.log"
}

stop() {
    if group_alive; then
        local pid deadline
        pid=$(cat "$pid_file")
        kill -- "-$pid" 2>/dev/null || kill "$pid"
        deadline=$((SECONDS + graceful_s + 10))
        while group_alive && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
        if group_alive; then kill -KILL -- "-$pid" 2>/dev/null; say "the MLflow server did not stop within $((graceful_s + 10)) s: killed"; fi
        say "stopped the MLflow server"
    else
        say "no MLflow server running from $team_dir"
    fi
    rm -f "$pid_file"
}

# Both halves, as after an upgrade or a reboot: clients that answered before wait for it
# (publish waits up to 90 s for a server that stops answering mid-publish).
restart() {
    stop
    postgres_up
    say "restarting PostgreSQL $cluster on 127.0.0.1:$db_port"
    # shellcheck disable=SC2086 # version and name
    pg_ctlcluster $cluster restart
    start
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    restart) restart ;;
    status) if running; then say "running (pid $(cat "$pid_file")) at http://127.0.0.1:$port"; else say "not running"; exit 3; fi ;;
    *) echo "usage: MLFLOW_DB_PASSWORD=... $0 start | stop | restart | status" >&2; exit 2 ;;
esac
