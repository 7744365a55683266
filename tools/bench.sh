#!/usr/bin/env bash
# `make bench`: the benchmarks in tests/bench against the emulator, on SQLite and on a throwaway PostgreSQL.
# Writes bench-results/results.json and PNG plots; prints each figure beside its target. Never fails on time.
#   BENCH_SIZES=1000,10000   user counts of the full-sync workload (default 1k, 10k, 50k, 100k)
#   BENCH_PG_URL=...         use this PostgreSQL server instead of starting one
#   BENCH_PROFILE=dir        record each worker run with py-spy (collapsed stacks, dir/worker-<size>-<time>.txt)
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PBX365_TEST_PYTHON:-.venv/bin/python}"
work="$(mktemp -d /tmp/pbx365-bench.XXXXXX)"
chmod 711 "$work"
pg_started=0
cleanup() {
    if [ "$pg_started" = 1 ]; then bash tools/pg.sh stop "$work/pg" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${BENCH_PG_URL:-}" ]; then
    port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    if url="$(bash tools/pg.sh start "$work/pg" "$port")"; then
        pg_started=1
        export BENCH_PG_URL="$url"
    else
        echo "bench: PostgreSQL did not start; the PostgreSQL rows are skipped" >&2
    fi
fi
"$PY" -m pytest tests/bench -q -s -p tests.fixtures_services -p no:cacheprovider \
    --timeout="${BENCH_TIMEOUT:-1800}" -o log_cli=false "$@" 2>&1 | grep -v -E '^[0-9]{2}:[0-9]{2}:[0-9]{2} '
exit "${PIPESTATUS[0]}"
