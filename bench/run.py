"""Benchmark skyfence's tracker against Stone Soup's on the same scenario files.

``python bench/run.py [--quick] [--sizes 10,100,1000,10000] [--out bench/out]``

Run it with the bench environment (``.venv-bench/bin/python``, which has Stone Soup).
For each preset and size it writes a scenario directory with ``skyfence.sim``, runs each
tracker on the files read back from disk in a fresh single-threaded process, scores the
estimates with GOSPA against the truth, and writes ``bench/RESULTS.md`` and
``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness import read_rows
from skyfence.scenario import read_truth

BENCH = Path(__file__).resolve().parent
PRESETS = ("spread", "swarm")
SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100)
QUICK_DURATION_S = 30.0
#: Stone Soup's cost grows with tracks × detections; beyond this it is not run at all.
STONESOUP_MAX_N = 1_000
#: Tracking time allowed to one Stone Soup run, s: it stops after the scan that crosses it.
#: With its k-d tree associator the 60-scan spread at N = 1,000 takes about 4 minutes and
#: the 90-scan swarm about 27 (its drones crowd each other's search radius); the budget
#: only guards against a scenario that makes it crawl.
STONESOUP_BUDGET_S = 2400.0
#: A child that has not finished by budget × this + the grace is killed (one huge scan).
KILL_FACTOR, KILL_GRACE_S = 3.0, 300.0
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TRACKER_NAMES = {"skyfence": "skyfence", "stonesoup": "Stone Soup 1.9.1"}


@dataclass(frozen=True, slots=True)
class Case:
    preset: str
    n: int
    seed: int
    duration_s: float | None

    @property
    def name(self) -> str:
        return f"{self.preset}-{self.n}"


# --------------------------------------------------------------------------- running


def write_scenario(case: Case, directory: Path) -> None:
    from skyfence import sim  # imported late: it is optional until it exists

    result = sim.build(case.preset, n_targets=case.n, seed=case.seed,
                       duration_s=case.duration_s, pd=0.9)
    sim.write(directory, result)


def run_child(tracker: str, scenario_dir: Path, out_dir: Path, budget_s: float) -> dict[str, Any]:
    """One tracker in a fresh process; its JSON measurements, or an ``error``."""
    cmd = [sys.executable, str(BENCH / "child.py"), tracker, str(scenario_dir), str(out_dir)]
    if math.isfinite(budget_s):
        cmd += ["--budget-s", str(budget_s)]
    timeout = budget_s * KILL_FACTOR + KILL_GRACE_S if math.isfinite(budget_s) else None
    env = {**os.environ, **ONE_THREAD}
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"tracker": tracker, "error": f"killed after {timeout:.0f} s inside one scan"}
    if proc.returncode != 0:
        return {"tracker": tracker, "error": proc.stderr.strip().splitlines()[-1:] or ["?"]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def warm_up(out: Path) -> None:
    """Run skyfence once, untimed, so that no measured run pays numba's compilation.

    Its kernels are compiled with ``cache=True``: later processes load them from disk
    (that load stays in their first scan, as it would in service).
    """
    import handmade

    directory = out / "scenarios" / "warm-up"
    handmade.write(directory, n_targets=5, duration_s=10.0)
    rec = run_child("skyfence", directory, out / "tracks" / "warm-up", math.inf)
    if "error" in rec:
        print(f"warm-up failed: {rec['error']}", flush=True)


def report_dict(report: Any) -> dict[str, Any]:
    """The fields of a ``skyfence.metrics.ScoreReport``, JSON-ready (NaN → None)."""
    fields: dict[str, Any] = report.as_dict()
    return fields


def score(scenario_dir: Path, rows_path: Path, t_last: float) -> dict[str, Any]:
    """GOSPA (c = 100 m, p = 2, α = 2) of the estimates against the truth up to ``t_last``."""
    from skyfence.metrics import score as gospa_score

    truth = read_truth(scenario_dir)
    if truth is None:
        raise SystemExit(f"{scenario_dir} has no truth.csv")
    rows = read_rows(rows_path)
    keep = truth.t <= t_last
    report = gospa_score(truth.t[keep], truth.id[keep], truth.x[keep, :3],
                         rows[:, 0], rows[:, 1].astype(np.int64), rows[:, 2:5])
    return report_dict(report)


def run_case(case: Case, out: Path, budget_s: float) -> list[dict[str, Any]]:
    scenario_dir = out / "scenarios" / case.name
    print(f"== {case.name}: writing the scenario", flush=True)
    write_scenario(case, scenario_dir)
    trackers = ["skyfence"] + (["stonesoup"] if case.n <= STONESOUP_MAX_N else [])
    records = []
    for tracker in trackers:
        est_dir = out / "tracks" / case.name / tracker
        budget = budget_s if tracker == "stonesoup" else math.inf
        print(f"   {tracker} …", flush=True)
        rec = {"preset": case.preset, "n": case.n, "seed": case.seed,
               **run_child(tracker, scenario_dir, est_dir, budget)}
        if "error" not in rec:
            rec["score"] = score(scenario_dir, est_dir / "rows.f64", rec["t_last"])
        records.append(rec)
        print(f"   {tracker}: {summary(rec)}", flush=True)
    add_common_window_score(records, scenario_dir, out / "tracks" / case.name)
    return records


def add_common_window_score(records: list[dict[str, Any]], scenario_dir: Path,
                            tracks_dir: Path) -> None:
    """When Stone Soup stopped early, score skyfence over the same scans too (fair ratio)."""
    by = {r["tracker"]: r for r in records if "error" not in r}
    if "skyfence" in by and "stonesoup" in by and not by["stonesoup"]["complete"]:
        by["skyfence"]["score_in_stonesoup_window"] = score(
            scenario_dir, tracks_dir / "skyfence" / "rows.f64", by["stonesoup"]["t_last"])


def summary(rec: dict[str, Any]) -> str:
    if "error" in rec:
        return f"FAILED: {rec['error']}"
    return (f"{rec['detections_per_s']:.0f} det/s, {rec['n_batches']}/{rec['n_batches_total']} "
            f"scans, GOSPA {rec['score'].get('gospa_m', float('nan')):.1f} m")


# --------------------------------------------------------------------------- the table


def machine() -> str:
    model = "?"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"nproc {len(os.sched_getaffinity(0))}, CPU {model}, Python "
            f"{platform.python_version()}, numpy {np.__version__}")


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, spec)


def table_row(rec: dict[str, Any]) -> str:
    name = TRACKER_NAMES[rec["tracker"]]
    if "error" in rec:
        return f"| {rec['preset']} | {rec['n']:,} | {name} | failed: {rec['error']} |||||"
    scans = f"{rec['n_batches']:,}/{rec['n_batches_total']:,}"
    if not rec["complete"]:
        scans += f" (time-bounded, {rec['tracking_s']:.0f} s)"
    gospa = rec["score"].get("gospa_m")
    return (f"| {rec['preset']} | {rec['n']:,} | {name} | {fmt(rec['detections_per_s'], ',.0f')} "
            f"| {fmt(rec['mean_scan_ms'], ',.2f')} | {fmt(rec['worst_scan_ms'], ',.1f')} "
            f"| {fmt(rec['peak_mib'], ',.0f')} ({fmt(rec['peak_mib_before_tracking'], ',.0f')}) "
            f"| {fmt(gospa, '.1f')} | {scans} |")


def ratio_line(sky: dict[str, Any], ss: dict[str, Any]) -> str:
    speed = sky["detections_per_s"] / ss["detections_per_s"]
    window = "score_in_stonesoup_window" if "score_in_stonesoup_window" in sky else "score"
    g_sky, g_ss = sky[window].get("gospa_m"), ss["score"].get("gospa_m")
    over = " (both over Stone Soup's scans)" if window != "score" else ""
    return (f"- {sky['preset']}, N = {sky['n']:,}: skyfence/Stone Soup detections/s = "
            f"{speed:,.1f}×, GOSPA {fmt(g_sky, '.1f')} m vs {fmt(g_ss, '.1f')} m{over}")


def ratio_lines(records: list[dict[str, Any]]) -> list[str]:
    ok = {(r["preset"], r["n"], r["tracker"]): r for r in records if "error" not in r}
    return [ratio_line(ok[(p, n, "skyfence")], ok[(p, n, "stonesoup")])
            for (p, n, tracker) in ok
            if tracker == "stonesoup" and (p, n, "skyfence") in ok]


def commit() -> str:
    proc = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=BENCH,
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "?"


def markdown(records: list[dict[str, Any]], command: str, when: str, budget_s: float) -> str:
    from stonesoup_runner import wiring

    head = [
        "# skyfence vs Stone Soup", "",
        f"Command: `{command}`  ", f"Date: {when}  ", f"Machine: {machine()}  ",
        f"skyfence commit: {commit()}  ", f"Stone Soup 1.9.1: {wiring()}.", "",
        "Each tracker runs in its own process with OMP/OPENBLAS/MKL_NUM_THREADS=1, on the "
        "scenario files read back from disk; detections/s and scan times count tracking "
        "only (no file reading, no conversion to Stone Soup objects). Peak MiB is the "
        "process's high-water resident memory, VmHWM (interpreter, libraries and input "
        "included; ru_maxrss would include the parent's, which Linux carries across exec), "
        "in brackets the peak reached before tracking started (reading the files). "
        "GOSPA: c = 100 m, p = 2, α = 2, mean over scans, confirmed and coasting tracks. "
        f"Stone Soup runs to N = {STONESOUP_MAX_N:,}, each run stopping after the scan that passes "
        f"{budget_s:.0f} s of tracking; its GOSPA then covers the scans it ran.", "",
        "| scenario | N | tracker | detections/s | mean scan ms | worst scan ms "
        "| peak MiB (before) | GOSPA m | scans run |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    return "\n".join([*head, *map(table_row, records), "", *ratio_lines(records), ""])


# --------------------------------------------------------------------------- main


def cases(args: argparse.Namespace) -> list[Case]:
    duration = QUICK_DURATION_S if args.quick else args.duration_s
    return [Case(p, n, args.seed, duration) for p in args.presets for n in args.sizes]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"sizes {QUICK_SIZES} and {QUICK_DURATION_S:.0f} s scenarios")
    ap.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=None,
                    help="comma-separated target counts (default 10,100,1000,10000)")
    ap.add_argument("--presets", type=lambda s: s.split(","), default=list(PRESETS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration-s", type=float, default=None,
                    help="scenario duration (default: the preset's)")
    ap.add_argument("--stonesoup-budget-s", type=float, default=STONESOUP_BUDGET_S,
                    help="tracking time allowed to each Stone Soup run")
    ap.add_argument("--out", type=Path, default=BENCH / "out")
    ap.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    args = ap.parse_args(argv)
    if args.sizes is None:
        args.sizes = list(QUICK_SIZES if args.quick else SIZES)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join([Path(sys.executable).name, *sys.argv])
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    warm_up(args.out)
    records = [rec for case in cases(args)
               for rec in run_case(case, args.out, args.stonesoup_budget_s)]
    text = markdown(records, command, when, args.stonesoup_budget_s)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps({"command": command, "date": when, "machine": machine(),
                    "records": records}, indent=2) + "\n", encoding="utf-8")
    args.results.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
