"""One tracker on one scenario directory, in its own process (``run.py`` starts it).

``python bench/child.py {skyfence,stonesoup} SCENARIO_DIR OUT_DIR [--budget-s S]``

Writes ``OUT_DIR/rows.f64`` (estimate rows, see ``harness.ROW_COLUMNS``) and prints one
JSON object of measurements on stdout. Its own process so that its peak memory is this
tracker's alone; the parent sets the BLAS thread variables to one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import time
from pathlib import Path
from typing import Any

from harness import RowSink, Runner, run_timed
from skyfence.scenario import read_detections, read_scenario

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
TRACKERS = ("skyfence", "stonesoup")


def peak_mib() -> float:
    """This process's peak resident memory since it started (MiB).

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` across ``execve``, so a
    child started by a large parent reports the parent's peak (vfork/posix_spawn share it).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return ru_maxrss_mib()


def ru_maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def make_runner(tracker: str, scenario_dir: Path) -> Runner:
    scenario = read_scenario(scenario_dir)
    det = read_detections(scenario_dir, scenario)
    # Imported here so that each process loads only its own tracker (peak memory).
    if tracker == "stonesoup":
        from stonesoup_runner import StoneSoupRunner

        return StoneSoupRunner(scenario, det)
    from skyfence_runner import SkyfenceRunner

    return SkyfenceRunner(scenario, det)


def measure(tracker: str, scenario_dir: Path, out_dir: Path, budget_s: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    runner = make_runner(tracker, scenario_dir)
    setup_s = time.perf_counter() - t0
    mib_before = peak_mib()
    sink = RowSink(out_dir / "rows.f64")
    try:
        timing = run_timed(runner, sink, budget_s=budget_s)
    finally:
        sink.close()
    scan_s = timing.scan_s
    tracking_s = float(scan_s.sum())
    done = len(scan_s)
    return {
        "tracker": tracker,
        "threads": {k: os.environ.get(k) for k in THREAD_VARS},
        "n_batches": done,
        "n_batches_total": timing.n_batches_total,
        "n_detections": timing.n_detections,
        "n_detections_total": int(runner.sizes.sum()),
        "complete": done == timing.n_batches_total,
        "t_last": timing.t_last,
        "tracking_s": tracking_s,
        "detections_per_s": timing.n_detections / tracking_s if tracking_s else None,
        "mean_scan_ms": 1e3 * tracking_s / done if done else None,
        "worst_scan_ms": 1e3 * float(scan_s.max()) if done else None,
        # The first scan also pays one-off loading (skyfence: numba kernels from cache).
        "worst_scan_after_first_ms": 1e3 * float(scan_s[1:].max()) if done > 1 else None,
        "read_and_setup_s": setup_s,
        "peak_mib_before_tracking": mib_before,
        "peak_mib": peak_mib(),
        "ru_maxrss_mib": ru_maxrss_mib(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tracker", choices=TRACKERS)
    ap.add_argument("scenario_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--budget-s", type=float, default=math.inf,
                    help="stop after this much tracking time (s); the rest is not run")
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    print(json.dumps(measure(args.tracker, args.scenario_dir, args.out_dir, args.budget_s)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
