from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from skyfence.scenario import read_scenario
from skyfence.sim import PRESETS
from skyfence.sim.cli import add_arguments, main, run


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    args = _parse(["out"])
    assert (args.out_dir, args.preset, args.targets, args.seed) == ("out", "spread", None, 0)
    assert args.duration_s is None and args.clutter is None and args.pd is None


def test_run_writes_and_summarises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scn"
    args = _parse([str(out), "--preset", "swarm", "--targets", "8", "--seed", "4",
                   "--duration-s", "5", "--clutter", "2", "--pd", "0.8"])
    assert run(args) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("swarm: 8 targets, 5 scans, ") and "clutter" in line
    assert "\n" not in line
    sc = read_scenario(out)
    assert sc.sensors[0].pd == 0.8 and sc.sensors[0].clutter_per_scan == 2.0
    assert {p.name for p in out.iterdir()} == {"scenario.json", "detections.csv", "truth.csv"}


def test_bad_value_is_reported_not_raised(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "x"), "--pd", "3"]) == 2
    assert "pd" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_help_lists_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in PRESETS:
        assert name in text
    for option in ("--preset", "--targets", "--seed", "--duration-s", "--clutter", "--pd"):
        assert option in text
