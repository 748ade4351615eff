"""Golden scenarios: the tracker's output on fixed simulated scenarios, and quality floors.

Regenerate with ``python tests/golden/regenerate.py`` when a change is meant
to alter the output; the quality floors below must hold either way.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
_spec = importlib.util.spec_from_file_location("regenerate", GOLDEN / "regenerate.py")
assert _spec is not None and _spec.loader is not None
regenerate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regenerate)

#: Quality floors per case, from the scenarios' physics: c = 100 m GOSPA, false tracks.
FLOORS = {
    "spread": {"gospa_m": 60.0, "false_tracks": 0, "truths_never_tracked": 0},
    "swarm": {"gospa_m": 135.0, "false_tracks": 2, "truths_never_tracked": 0},
    "crewed": {"gospa_m": 145.0, "false_tracks": 1, "truths_never_tracked": 0},
    "long_range": {"gospa_m": 300.0, "false_tracks": 10, "truths_never_tracked": 1},
    "mixed": {"gospa_m": 210.0, "false_tracks": 3, "truths_never_tracked": 0},
}


def _rows(text: str) -> tuple[list[str], np.ndarray]:
    lines = text.splitlines()
    keys = [",".join(line.split(",")[:2]) for line in lines[1:]]
    values = np.array([[float(v) for v in line.split(",")[2:8]] for line in lines[1:]])
    return keys, values.reshape(-1, 6)


@pytest.mark.parametrize("name", sorted(regenerate.CASES))
def test_golden_scenario(name: str, tmp_path: Path) -> None:
    tracks, report = regenerate.run_case(name, tmp_path)
    floor = FLOORS[name]
    assert report["gospa_m"] <= floor["gospa_m"], report
    assert report["false_tracks"] <= floor["false_tracks"], report
    assert report["truths_never_tracked"] <= floor["truths_never_tracked"], report

    want_keys, want = _rows((GOLDEN / name / "tracks.csv").read_text())
    got_keys, got = _rows(tracks)
    assert got_keys == want_keys, "track ids or times differ from the golden file"
    # Written with millimetre precision: allow the last digit to differ between platforms.
    np.testing.assert_allclose(got, want, atol=2e-3, rtol=0)
    stored = json.loads((GOLDEN / name / "score.json").read_text())
    assert report["gospa_m"] == pytest.approx(stored["gospa_m"], abs=1e-3)
