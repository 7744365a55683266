"""Benchmark helpers: every benchmark records rows; at the end a table is printed and ``bench-results/`` gets
``results.json`` and one PNG plot per benchmark. Benchmarks print figures; they never fail on time."""
from __future__ import annotations

import json
import os
import platform
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

RESULTS: dict[str, list[dict]] = defaultdict(list)
OUT = Path(os.environ.get("BENCH_RESULTS_DIR", "bench-results"))


@pytest.fixture
def record():
    """``record(benchmark, x=..., **figures)``: one measured point of a benchmark (``x`` is its size)."""
    def add(benchmark: str, **row):
        RESULTS[benchmark].append(row)
    return add


def pytest_sessionfinish(session, exitstatus):
    if not RESULTS:
        return
    OUT.mkdir(exist_ok=True)
    meta = {"at": datetime.now(timezone.utc).isoformat(), "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count()}
    targets = evaluate_targets(RESULTS)
    (OUT / "results.json").write_text(json.dumps({"meta": meta, "benchmarks": RESULTS, "targets": targets},
                                                 indent=2) + "\n")
    lines = ["", "benchmark results (" + str(OUT / "results.json") + ")"]
    for name, rows in RESULTS.items():
        keys = list(rows[0])
        lines.append(f"\n{name}")
        lines.append("  " + "  ".join(f"{k:>14}" for k in keys))
        for row in rows:
            lines.append("  " + "  ".join(f"{_fmt(row.get(k)):>14}" for k in keys))
        _plot(name, rows)
    if targets:
        lines.append("\ntargets (issue #13) beside this run's figures")
        lines.append(f"  {'target':<58} {'limit':>10} {'figure':>10}  met")
        for t in targets:
            met = "-" if t["met"] is None else ("yes" if t["met"] else "NO")
            lines.append(f"  {t['target']:<58} {t['limit']:>10} {_fmt(t['figure']):>10}  {met}")
    print("\n".join(lines))


def _row(results: dict, name: str, **where) -> dict | None:
    rows = [r for r in results.get(name, []) if all(r.get(k) == v for k, v in where.items())]
    return max(rows, key=lambda r: r["x"]) if rows else None


def evaluate_targets(results: dict) -> list[dict]:
    """Each target of the performance issue with the figure measured for it (missing workloads are left out)."""
    out: list[dict] = []

    def add(target: str, limit: str, figure, met) -> None:
        out.append({"target": target, "limit": limit, "figure": figure, "met": met})

    full = _row(results, "user_sync_full", db="sqlite")
    if full:
        n = f"{full['x'] // 1000}k"
        for row in filter(None, (full, _row(results, "user_sync_full", db="postgres"))):
            add(f"full sync of {row['x'] // 1000}k users vs fetch limit + write limit ({row['db']})", "<= 1.5x",
                row["vs_limits"], row["vs_limits"] <= 1.5)
            if "vs_users_limits" in row:
                add("  the same, the write limit of the PBX users' rows alone", "figure", row["vs_users_limits"], None)
            if "vs_bare_limits" in row:
                add("  the same, the bare write limit (7 narrow columns)", "figure", row["vs_bare_limits"], None)
        rss = full["worker_rss_mb"] + full["job_rss_mb"]
        add(f"peak RSS at {n} (worker + job)", "<= 300 MB", rss, rss <= 300)
        ratio = round(full["requests"] / full["min_requests"], 3)
        add(f"Graph requests vs the minimum ({n} full read)", "<= 1.05x", ratio, ratio <= 1.05)
        add("emulator, one 999-user page (ms)", "<= 50 ms", full["emulator_page_ms"], full["emulator_page_ms"] <= 50)
        small = next((r for r in results.get("user_sync_full", []) if r["db"] == "sqlite" and r["x"] == 10000), None)
        if small and full["x"] > small["x"]:
            drift = round((full["run_s"] / full["x"]) / (small["run_s"] / small["x"]) - 1, 3)
            add(f"per-user cost from 10k to {n} (change)", "within ±20%", drift, abs(drift) <= 0.2)
    for latency in sorted(results.get("user_sync_latency", []), key=lambda r: r["x"]):
        add(f"with 300 ms per page, full sync of {latency['x'] // 1000}k vs fetch limit", "<= 1.1x",
            latency["vs_fetch_limit"], latency["vs_fetch_limit"] <= 1.1)
    for changed, limit in ((0, 1.0), (None, 3.0)):
        rows = [r for r in results.get("user_sync_delta", []) if (r["changed"] == 0) == (changed == 0)]
        if rows:
            row = max(rows, key=lambda r: r["x"])
            what = "no change" if changed == 0 else f"{row['changed']} changed (1%)"
            add(f"delta with {what} at {row['x'] // 1000}k (s)", f"<= {limit:g} s", row["run_s"], row["run_s"] <= limit)
    edit = _row(results, "edit_to_pbx")
    if edit:
        add(f"an edit visible in the PBX at {edit['x'] // 1000}k users (s)", "<= 5 s", edit["seconds_s"],
            edit["seconds_s"] <= 5)
    teams = _row(results, "teams_poll")
    if teams:
        add(f"Teams → PBX poll of {teams['x']} users: requests", f"<= {teams['min_requests']} (ceil(N/650))",
            teams["requests"], teams["requests"] <= teams["min_requests"])
        add(f"Teams → PBX poll of {teams['x']} users, nothing changed (s)", "figure", teams["quiet_run_s"], True)
    calls = _row(results, "teams_calls")
    if calls:
        fewest = -(-calls["x"] // 20)
        add(f"{calls['x']} PBX calls within a second: Graph requests", f"<= {fewest + 5} ($batch of 20)",
            calls["batch_requests"], calls["batch_requests"] <= fewest + 5)
    return out


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


#: Figures in the table but not on the plots (they would crowd them): the process start, the job's CPU, the
#: lesser write limits.
NOT_PLOTTED = {"wall_s", "job_cpu_s", "users_write_limit_s", "bare_write_limit_s"}


def _plot(name: str, rows: list[dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    groups: dict[str, list[dict]] = {}
    for r in rows:  # one line per database where a workload ran on several
        groups.setdefault(str(r.get("db", "")), []).append(r)
    for db, group in groups.items():
        group = sorted(group, key=lambda r: r["x"])
        for key in group[0]:
            if key != "x" and key.endswith("_s") and not key.endswith("_per_s") and key not in NOT_PLOTTED:
                ax.plot([r["x"] for r in group], [r[key] for r in group], marker="o",
                        label=f"{key} ({db})" if db else key)
    ax.set_xlabel("size")
    ax.set_ylabel("seconds")
    ax.set_title(name)
    if ax.lines:
        ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / f"{name}.png")
    plt.close(fig)
