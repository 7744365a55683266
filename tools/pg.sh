#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests.
#
#   tools/pg.sh start DIR PORT   initdb into DIR/data (if new), start on 127.0.0.1:PORT
#                                with trust auth, create database pbx365_test, print its
#                                SQLAlchemy URL (also written to DIR/url)
#   tools/pg.sh stop DIR         stop the server started in DIR (no-op when not running)
#
# As root, PostgreSQL refuses to run: the server runs as the `postgres` user
# (or a created unprivileged `pbx365pg` user) via runuser, and owns DIR.
# Durability is switched off: the data is thrown away after the run.
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 1; }

find_bindir() {
    local d best=""
    # The highest installed major version wins.
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V); do
        [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && best="$d"
    done
    if [ -z "$best" ] && command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir)"
        [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && best="$d"
    fi
    [ -n "$best" ] || die "no PostgreSQL server binaries (initdb/postgres); run tools/ensure-deps.sh postgres"
    echo "$best"
}

# The unprivileged account the server runs as when we are root.
server_user() {
    if id postgres >/dev/null 2>&1; then echo postgres; return; fi
    if ! id pbx365pg >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin pbx365pg >/dev/null 2>&1 \
            || die "cannot create the unprivileged user pbx365pg to run PostgreSQL as"
    fi
    echo pbx365pg
}

# Runs a command as the server's owner.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$OWNER" -- "$@"
    else
        "$@"
    fi
}

cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: pg.sh start DIR PORT | pg.sh stop DIR"
dir="$(mkdir -p "$dir" && cd "$dir" && pwd)"
BIN="$(find_bindir)"
OWNER="$(id -un)"
[ "$(id -u)" -ne 0 ] || OWNER="$(server_user)"

case "$cmd" in
    start)
        port="${3:-}"
        [[ "$port" =~ ^[0-9]+$ ]] || die "usage: pg.sh start DIR PORT (PORT must be a number)"
        if [ "$(id -u)" -eq 0 ]; then
            chown "$OWNER" "$dir"
            chmod 700 "$dir"
            as_owner test -w "$dir" \
                || die "$OWNER cannot write $dir (is a parent directory private to root?)"
        fi
        if [ ! -f "$dir/data/PG_VERSION" ]; then
            as_owner "$BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale \
                --no-sync >"$dir/initdb.log" 2>&1 \
                || die "initdb failed; see $dir/initdb.log: $(tail -n 1 "$dir/initdb.log")"
        fi
        opts="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir"
        opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        opts+=" -c max_connections=200 -c shared_buffers=64MB"
        as_owner "$BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 \
            || as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null \
            || die "server did not start on 127.0.0.1:$port; see $dir/server.log: $(tail -n 1 "$dir/server.log" 2>/dev/null)"
        if ! as_owner "$BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAq \
                -c "SELECT 1 FROM pg_database WHERE datname = 'pbx365_test'" | grep -q 1; then
            as_owner "$BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres pbx365_test \
                || die "createdb pbx365_test failed on 127.0.0.1:$port"
        fi
        url="postgresql+psycopg://postgres@127.0.0.1:$port/pbx365_test"
        echo "$url" >"$dir/url"
        echo "$url"
        ;;
    stop)
        if [ -f "$dir/data/postmaster.pid" ]; then
            as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null \
                || as_owner "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null \
                || die "could not stop the server in $dir"
        fi
        ;;
    *) die "unknown command '$cmd' (start DIR PORT | stop DIR)" ;;
esac
