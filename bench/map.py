"""The web map with 10,000 tracks updating once a second: frame times in the browser.

``python bench/map.py [--runs 3] [--out FILE]`` runs the browser test that measures
them (``tests/server/test_browser.py::test_ten_thousand_tracks_at_1hz_stay_smooth``:
a node whose stream carries 10,000 synthetic tracks, all moving, one update a second;
Debian's Chromium headless at 1280×800; 6 s of ``requestAnimationFrame`` intervals)
``--runs`` times, one after the other, and prints a markdown table of what each run
measured: frames drawn, the median, p95, p99 and longest frame, updates applied and
map repaints. The test itself asserts only what a shared machine cannot upset; the
figures come from here.

``--ref DIR`` also runs the same test from another checkout (a worktree of an earlier
commit, say), alternating with this one, so that both are measured under the same
conditions: the README quotes the two side by side.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/server/test_browser.py::test_ten_thousand_tracks_at_1hz_stay_smooth"
COLUMNS = ("frames", "median_ms", "p95_ms", "p99_ms", "max_ms", "updates", "renders")


def measure(checkout: Path) -> dict[str, float]:
    """One run of the frame test in ``checkout``: its recorded properties."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        env = {**os.environ, "SKYFENCE_MEASURE_FRAMES": "1",
               "PYTHONPATH": str(checkout / "src")}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST,
             f"--junitxml={report}", "-o", "junit_family=xunit1"],
            cwd=checkout, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{checkout}: the frame test failed:\n{done.stdout[-3000:]}")
        props = ET.parse(report).getroot().iter("property")
        return {p.get("name", ""): float(p.get("value", "nan")) for p in props}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ref", type=Path, default=None,
                    help="another checkout to measure alternately (e.g. a git worktree)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    checkouts = [("this checkout", ROOT)]
    if args.ref is not None:
        checkouts.append((f"{args.ref}", args.ref.resolve()))
    lines = ["| map | run | " + " | ".join(COLUMNS) + " |",
             "|---|---:|" + "---:|" * len(COLUMNS)]
    for k in range(args.runs):
        for name, path in checkouts:
            got = measure(path)
            cells = [f"{got[c]:.1f}" if c.endswith("_ms") else
                     (f"{got[c]:.0f}" if c in got else "–") for c in COLUMNS]
            lines.append(f"| {name} | {k + 1} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    print()
    print(table)
    if args.out is not None:
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
