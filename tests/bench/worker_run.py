"""One real RQ worker in burst mode, in its own process, for the benchmarks: prints its peak RSS as JSON.

``BENCH_APP_CONFIG`` holds the demo portal's config (JSON). RQ forks a work horse per job; the horse's peak RSS
is the largest waited-for child's (``RUSAGE_CHILDREN``). The worker's own is its ``VmHWM``: ``ru_maxrss`` of
``RUSAGE_SELF`` survives ``execve``, so it would report the benchmark's pytest process that spawned this one.
"""
from __future__ import annotations

import json
import os
import resource


def _peak_rss_since_exec_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from demo_app import create_app
    from flask_pbx365.runs.queue import make_worker

    app = create_app(json.loads(os.environ["BENCH_APP_CONFIG"]))
    make_worker(app).work(burst=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"worker_rss_mb": _peak_rss_since_exec_mb(), "job_rss_mb": children.ru_maxrss / 1024,
                      "job_cpu_s": round(children.ru_utime + children.ru_stime, 2)}))


if __name__ == "__main__":
    main()
