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
    (OUT / "results.json").write_text(json.dumps({"meta": meta, "benchmarks": RESULTS}, indent=2) + "\n")
    lines = ["", "benchmark results (" + str(OUT / "results.json") + ")"]
    for name, rows in RESULTS.items():
        keys = list(rows[0])
        lines.append(f"\n{name}")
        lines.append("  " + "  ".join(f"{k:>14}" for k in keys))
        for row in rows:
            lines.append("  " + "  ".join(f"{_fmt(row.get(k)):>14}" for k in keys))
        _plot(name, rows)
    print("\n".join(lines))


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _plot(name: str, rows: list[dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    xs = [r["x"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in rows[0]:
        if key != "x" and key.endswith("_s"):
            ax.plot(xs, [r[key] for r in rows], marker="o", label=key)
    ax.set_xlabel("size")
    ax.set_ylabel("seconds")
    ax.set_title(name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / f"{name}.png")
    plt.close(fig)
