#!/usr/bin/env bash
# Runs the test suite twice, side by side: on SQLite and on a throwaway PostgreSQL server.
# Exit 0 only when every pass passed (an empty collection counts as a failure).
#
# Environment:
#   PYTEST_ARGS               extra pytest arguments (shell-quoted), e.g. PYTEST_ARGS='-k sync -x'
#   PBX365_TEST_PASSES        passes to run, default "sqlite postgres"
#   PBX365_TEST_SERIAL        1: run the passes one after the other (default: in parallel)
#   PBX365_TEST_DATABASE_URL  use this PostgreSQL server for the postgres pass instead of starting one
#   PBX365_TEST_REDIS_URL     use this Redis instead of a private server per pass
#   PYTEST_TIMEOUT            per-test timeout in seconds, default 300
#   PBX365_TEST_PYTHON        interpreter with the test deps, default .venv/bin/python
set -uo pipefail
cd "$(dirname "$0")/.."

PY="${PBX365_TEST_PYTHON:-.venv/bin/python}"
PASSES="${PBX365_TEST_PASSES:-sqlite postgres}"
EXTERNAL_PG="${PBX365_TEST_DATABASE_URL:-}"
# Under CI the services were just installed: a missing one is an error, not a skip.
if [ "${CI:-}" = "true" ]; then export PBX365_TEST_REQUIRE_SERVICES="${PBX365_TEST_REQUIRE_SERVICES:-1}"; fi
# PYTEST_ARGS is typed by the person running the tests; eval keeps their quoting.
eval "extra=(${PYTEST_ARGS:-})"

work="$(mktemp -d /tmp/pbx365-tests.XXXXXX)"
chmod 711 "$work"  # the PostgreSQL server user must reach $work/pg
pg_started=0
pytest_pid=""
interrupted=0

cleanup() {
    if [ -n "$pytest_pid" ]; then kill -TERM -- "-$pytest_pid" 2>/dev/null; fi
    if [ "$pg_started" = 1 ]; then bash tools/pg.sh stop "$work/pg" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "run-tests: interrupted" >&2; exit 130' INT TERM

banner() {
    local line="=================================================================="
    printf '\n%s\n  %s\n%s\n' "$line" "$*" "$line"
}

# PIDs still running in process group $1 (what a test left behind).
group_members() {
    local group="$1" p s fields
    for p in /proc/[0-9]*; do
        s="$(cat "$p/stat" 2>/dev/null)" || continue
        read -ra fields <<<"${s##*) }"   # drop "pid (comm) ": comm may contain spaces
        # fields: state ppid pgrp ...; a zombie is already gone, it only awaits reaping.
        [ "${fields[2]}" = "$group" ] && [ "${fields[0]}" != Z ] && echo "${p#/proc/}"
    done
    return 0
}

# Runs pytest in its own process group so anything a test leaves running can be
# found and stopped afterwards. Sets $rc.
run_pytest() {
    local name="$1"
    # Background jobs inherit an ignored SIGINT; restore it so Ctrl-C still runs teardowns.
    setsid "$PY" -c 'import signal, sys, pytest
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.exit(pytest.main())' -p tests.fixtures_services -p no:cacheprovider \
        --timeout="${PYTEST_TIMEOUT:-300}" --durations=10 \
        --junitxml="$work/$name.xml" -o junit_family=xunit2 "${pass_args[@]}" "${extra[@]}" </dev/null &
    pytest_pid=$!
    trap 'interrupted=1; kill -INT -- "-$pytest_pid" 2>/dev/null' INT TERM
    wait "$pytest_pid"; rc=$?
    while kill -0 "$pytest_pid" 2>/dev/null; do wait "$pytest_pid"; rc=$?; done  # wait was interrupted
    trap 'echo "run-tests: interrupted" >&2; exit 130' INT TERM
    local left
    left="$(group_members "$pytest_pid" | tr '\n' ' ')"
    if [ -n "$left" ]; then
        echo "run-tests: WARNING: tests left processes running (pids $left); stopping them" >&2
        kill -TERM -- "-$pytest_pid" 2>/dev/null; sleep 1; kill -KILL -- "-$pytest_pid" 2>/dev/null
    fi
    pytest_pid=""
    if [ "$interrupted" = 1 ]; then echo "run-tests: interrupted" >&2; exit 130; fi
}

# One line of counts from the pass's JUnit XML.
counts() {
    "$PY" - "$1" <<'EOF' 2>/dev/null || echo "no report"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
s = root if root.tag == "testsuite" else root.find("testsuite")
n, f, e, k = (int(s.get(a, 0)) for a in ("tests", "failures", "errors", "skipped"))
print(f"{n - f - e - k} passed, {f} failed, {e} errors, {k} skipped in {float(s.get('time', 0)):.1f}s")
EOF
}

# Suites whose outcome does not depend on the portal's database run in one pass only: the emulator, the Graph client
# and the host kit in the SQLite pass; the installed-wheel smoke test (its own portal and database) and the browser
# journey (the same pages whatever the database) in the PostgreSQL pass, which keeps the two passes of about equal
# length when they run side by side.
SQLITE_ONLY_SUITES=(tests/emulator tests/emulator_outlook tests/graph tests/hosts)
POSTGRES_ONLY_SUITES=(tests/wheel tests/journey)

# One pass: prepares its database, runs pytest, writes its result line to $work/$pass.result and its exit status
# to $work/$pass.rc.
run_pass() {
    local pass="$1" line
    pass_args=()
    case "$pass" in
        sqlite)
            unset PBX365_TEST_DATABASE_URL
            if [[ " $PASSES " == *" postgres "* ]]; then
                for suite in "${POSTGRES_ONLY_SUITES[@]}"; do pass_args+=(--ignore="$suite"); done
            fi
            banner "Test pass: SQLite"
            ;;
        postgres)
            if [ -n "$EXTERNAL_PG" ]; then
                export PBX365_TEST_DATABASE_URL="$EXTERNAL_PG"
            else
                port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
                pg_started=1
                if ! url="$(bash tools/pg.sh start "$work/pg" "$port")"; then
                    echo "FAILED (PostgreSQL did not start)" >"$work/$pass.result"; echo 1 >"$work/$pass.rc"
                    return
                fi
                export PBX365_TEST_DATABASE_URL="$url"
            fi
            if [[ " $PASSES " == *" sqlite "* ]]; then
                for suite in "${SQLITE_ONLY_SUITES[@]}"; do pass_args+=(--ignore="$suite"); done
            fi
            banner "Test pass: PostgreSQL ($PBX365_TEST_DATABASE_URL; without ${SQLITE_ONLY_SUITES[*]})"
            ;;
        *) echo "run-tests: unknown pass '$pass' (sqlite, postgres)" >&2; exit 2 ;;
    esac
    run_pytest "$pass"
    case "$rc" in
        0) line="PASSED  ($(counts "$work/$pass.xml"))" ;;
        5) line="FAILED  (no tests were collected)" ;;
        *) line="FAILED  (pytest exit $rc; $(counts "$work/$pass.xml"))" ;;
    esac
    echo "$line" >"$work/$pass.result"; echo "$rc" >"$work/$pass.rc"
    if [ "$pass" = postgres ] && [ "$pg_started" = 1 ]; then
        bash tools/pg.sh stop "$work/pg" && pg_started=0
    fi
}

for pass in $PASSES; do
    case "$pass" in sqlite|postgres) ;; *) echo "run-tests: unknown pass '$pass' (sqlite, postgres)" >&2; exit 2 ;; esac
done
set -- $PASSES
if [ "$#" -gt 1 ] && [ "${PBX365_TEST_SERIAL:-0}" != 1 ]; then
    # The passes share nothing (each has its own database, Redis, emulator and ports), so they run side by side,
    # one per core; each one's output follows when it is done.
    pass_pids=()
    for pass in $PASSES; do
        ( trap 'if [ -n "$pytest_pid" ]; then kill -TERM -- "-$pytest_pid" 2>/dev/null; fi
                if [ "$pg_started" = 1 ]; then bash tools/pg.sh stop "$work/pg" || true; fi' EXIT
          run_pass "$pass" ) >"$work/$pass.log" 2>&1 &
        pass_pids+=($!)
    done
    trap 'echo "run-tests: interrupted" >&2; kill -INT "${pass_pids[@]}" 2>/dev/null; wait; exit 130' INT TERM
    wait "${pass_pids[@]}"
    for pass in $PASSES; do cat "$work/$pass.log"; done
else
    for pass in $PASSES; do run_pass "$pass"; done
fi

declare -A result
overall=0
for pass in $PASSES; do
    result[$pass]="$(cat "$work/$pass.result" 2>/dev/null || echo "FAILED (did not finish)")"
    if [ "$(cat "$work/$pass.rc" 2>/dev/null || echo 1)" != 0 ]; then overall=1; fi
done

banner "Test summary"
for pass in $PASSES; do printf '  %-9s %s\n' "$pass:" "${result[$pass]}"; done
if [ "$overall" = 0 ]; then echo "  ALL PASSES PASSED"; else echo "  SOME PASSES FAILED"; fi
exit "$overall"
