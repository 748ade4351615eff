"""The command line: the documented options exist, user errors exit 2 without a traceback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from skyfence.cli import build_parser, main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _subcommands() -> dict[str, list[str]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    out = {}
    for name, p in sub.choices.items():  # type: ignore[union-attr]
        out[name] = [o for a in p._actions for o in a.option_strings if o.startswith("--")
                     and o != "--help"]
    return out


def test_every_command_and_option_is_documented_in_the_readme() -> None:
    for name, options in _subcommands().items():
        assert f"skyfence {name}" in README, name
        for opt in options:
            assert re.search(rf"skyfence {name}[^\n]*{opt}\b", README), (name, opt)


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    commands = re.findall(r"^(python3 -m venv .*)$", README, flags=re.M)
    assert len(commands) == 2
    assert commands[1] in ci


def test_simulate_track_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(tmp_path), "--preset", "spread", "--targets", "5",
                 "--duration-s", "20", "--seed", "4"]) == 0
    assert main(["track", str(tmp_path), "--out", str(tmp_path / "tracks.csv"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["score", str(tmp_path), str(tmp_path / "tracks.csv"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_truths"] == 5
    assert report["gospa_m"] < 100


def test_user_errors_exit_2_with_the_place(tmp_path: Path) -> None:
    main(["simulate", str(tmp_path), "--preset", "spread", "--targets", "2", "--duration-s",
          "5"])
    lines = (tmp_path / "detections.csv").read_text().splitlines()
    head, first = lines[0], lines[1].split(",")
    first[6] = "123.0"  # an azimuth in degrees
    (tmp_path / "detections.csv").write_text("\n".join([head, ",".join(first), *lines[2:]]))
    proc = subprocess.run(
        [sys.executable, "-m", "skyfence.cli", "track", str(tmp_path), "--out",
         str(tmp_path / "t.csv")], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "detections.csv, line 2, field 'azimuth_rad'" in proc.stderr
    assert "degrees" in proc.stderr


def test_score_without_truth_is_a_clear_error(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tracks.csv").write_text("t,track\n")
    assert main(["score", str(tmp_path), str(tmp_path / "tracks.csv")]) == 2
    assert "truth.csv" in capsys.readouterr().err


def test_demo_serves_the_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The main job: the demo node starts, serves the API, and stops when told."""
    assert main(["demo", "--headless", "--port", "0", "--speed", "20", "--stop-after-s",
                 "12", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "map and API at http://127.0.0.1:" in out
    assert (tmp_path / "demo.db").is_file()


