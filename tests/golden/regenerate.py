"""Regenerate the golden tracker outputs: ``python tests/golden/regenerate.py``.

Each golden case is a simulator preset with fixed arguments; the scenario is
simulated, tracked with the default configuration, and the resulting
``tracks.csv`` and score are stored beside this file. Run it after a change
that is meant to alter tracker output, and review the score differences in
the diff before committing.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name → simulator arguments. Short runs: the suite replays every one of them.
CASES: dict[str, dict[str, object]] = {
    "spread": {"preset": "spread", "n_targets": 12, "seed": 1, "duration_s": 40.0},
    "swarm": {"preset": "swarm", "n_targets": 20, "seed": 2, "duration_s": 50.0},
    "crewed": {"preset": "crewed", "seed": 3},
    "long_range": {"preset": "long_range", "n_targets": 8, "seed": 4, "duration_s": 80.0},
    "mixed": {"preset": "mixed", "seed": 5, "duration_s": 60.0},
}


def run_case(name: str, workdir: Path) -> tuple[str, dict[str, object]]:
    """Simulate and track one case; return tracks.csv text and the score as a dict."""
    from skyfence import sim
    from skyfence.metrics import score
    from skyfence.pipeline import track_directory
    from skyfence.scenario import read_tracks_csv, read_truth

    args = dict(CASES[name])
    preset = str(args.pop("preset"))
    result = sim.build(preset, **args)  # type: ignore[arg-type]
    sim.write(workdir, result)
    track_directory(workdir, workdir / "tracks.csv")
    truth = read_truth(workdir)
    assert truth is not None
    est = read_tracks_csv(workdir / "tracks.csv")
    report = score(truth.t, truth.id, truth.x[:, :3], est.t, est.id, est.x[:, :3])
    return (workdir / "tracks.csv").read_text(), report.as_dict()


def main() -> int:
    for name in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            tracks, report = run_case(name, Path(tmp))
        (HERE / name).mkdir(exist_ok=True)
        (HERE / name / "tracks.csv").write_text(tracks)
        (HERE / name / "score.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"{name}: GOSPA {report['gospa_m']:.1f} m, {report['false_tracks']} false tracks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
