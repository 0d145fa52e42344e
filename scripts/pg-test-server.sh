#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite, listening on 127.0.0.1 and a free port only.
#
#   scripts/pg-test-server.sh run -- CMD...   start, run CMD with SPINEHIP_TEST_PG_URL set, stop
#   scripts/pg-test-server.sh start           start; print the URL on stdout
#   scripts/pg-test-server.sh stop            stop and delete the data directory
#   scripts/pg-test-server.sh halt            stop the server, keep its data (an outage)
#   scripts/pg-test-server.sh resume          start a halted server again on the same port
#
# State lives in $SPINEHIP_PG_STATE: for `run`, a fresh directory of its own by default, so two runs
# on one machine never share or delete each other's server; for start/stop, the default is
# /tmp/spinehip-pg-test-$UID. When run as root the
# Debian package is installed if missing and the server runs as the unprivileged user
# $SPINEHIP_PG_USER (default nobody), since PostgreSQL refuses to run as root.
set -euo pipefail

if [[ ${1:-} == run && -z ${SPINEHIP_PG_STATE:-} ]]; then
    STATE=$(mktemp -d /tmp/spinehip-pg-test.XXXXXX)
    rmdir "$STATE"
else
    STATE=${SPINEHIP_PG_STATE:-/tmp/spinehip-pg-test-$(id -u)}
fi
RUN_AS=${SPINEHIP_PG_USER:-nobody}

log() { echo "pg-test-server: $*" >&2; }

pg_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then echo "$dir"; return 0; fi
    done
    return 1
}

ensure_installed() {
    pg_bindir >/dev/null && return 0
    if [[ $(id -u) -ne 0 ]]; then
        log "PostgreSQL is not installed; install the Debian package 'postgresql' (as root)"
        exit 1
    fi
    log "installing PostgreSQL"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    pg_bindir >/dev/null || { log "PostgreSQL binaries still missing after install"; exit 1; }
}

# Run a PostgreSQL program as the server's owner: ourselves, or RUN_AS when we are root.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u "$RUN_AS" -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    ensure_installed
    local bin port data
    bin=$(pg_bindir)
    if [[ -f $STATE/url ]]; then
        if as_owner "$bin/pg_ctl" -D "$STATE/data" status >/dev/null 2>&1; then
            log "already running ($STATE)"; cat "$STATE/url"; return 0
        fi
        log "removing the leftovers of a server that is no longer running"
        rm -rf "$STATE"
    fi
    mkdir -p "$STATE"
    data=$STATE/data
    [[ $(id -u) -eq 0 ]] && chown "$RUN_AS" "$STATE"
    as_owner "$bin/initdb" -D "$data" -U spinehip --auth=trust --encoding=UTF8 --no-locale >"$STATE/initdb.log" 2>&1 \
        || { log "initdb failed:"; cat "$STATE/initdb.log" >&2; exit 1; }
    port=$(free_port)
    echo "postgresql+psycopg://spinehip@127.0.0.1:$port/spinehip" >"$STATE/url"
    # No Unix socket outside the data directory, TCP on loopback only, fsync off: test data only.
    serve "$bin" || { log "server did not start:"; cat "$STATE/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U spinehip spinehip
    log "running on 127.0.0.1:$port ($STATE)"
    cat "$STATE/url"
}

stop() {
    [[ -d $STATE ]] || return 0
    local bin
    if [[ -d $STATE/data ]] && bin=$(pg_bindir); then
        as_owner "$bin/pg_ctl" -D "$STATE/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$STATE"
}

# The options a server is started with, on the port its URL names.
serve() {
    local bin=$1 data=$STATE/data port
    port=$(sed -E 's|.*:([0-9]+)/.*|\1|' "$STATE/url")
    as_owner "$bin/pg_ctl" -D "$data" -l "$STATE/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off -c max_connections=200" >&2
}

halt() {
    [[ -d $STATE/data ]] || { log "no server in $STATE"; exit 1; }
    as_owner "$(pg_bindir)/pg_ctl" -D "$STATE/data" -m fast -w stop >&2
}

resume() {
    [[ -f $STATE/url ]] || { log "no server in $STATE"; exit 1; }
    serve "$(pg_bindir)" || { log "server did not start:"; cat "$STATE/server.log" >&2; exit 1; }
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    halt) halt ;;
    resume) resume ;;
    run)
        shift
        [[ ${1:-} == -- ]] && shift
        [[ $# -gt 0 ]] || { log "usage: $0 run -- CMD..."; exit 2; }
        url=$(start)
        trap stop EXIT
        SPINEHIP_TEST_PG_URL=$url "$@"
        ;;
    *) echo "usage: $0 start|stop|halt|resume|run -- CMD..." >&2; exit 2 ;;
esac
