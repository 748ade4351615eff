"""``skyfence zones check`` and ``skyfence zones convert``, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skyfence.cli import main
from skyfence.zones.geojson import parse_geojson
from skyfence.zones.io import load_zones

DATA = Path(__file__).resolve().parents[1] / "data" / "zones"
ED269 = DATA / "interuss_cis_source_sample_ed269.json"
ED318 = DATA / "interuss_cis_source_sample_ed318.json"
COLLECTION = DATA / "ed318" / "examples" / "Example_Collection.json"
INVALID = DATA / "ed318" / "examples" / "InvalidExample_GeoZone_2_Layers.json"


def test_check_summarises_a_good_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zones", "check", str(COLLECTION)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [
        f"{COLLECTION} (ed318): 2 good zones, 3 volumes",
        "  by restriction: authorisation_required 1, prohibited 1",
        "  height references: AGL",
        "  time-limited: 1 zone (NFZ6547)",
        "  problems: 0",
    ]


def test_check_lists_every_problem_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zones", "check", str(INVALID)]) == 1
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{INVALID}, ") for line in lines)
    assert "field 'metadata.validFrom'" in lines[0]
    assert "field 'features[0].properties.name[0].lang'" in lines[1]
    assert "REQ_AUTHORISATION" in lines[2]
    assert "0 good zones" in out and "problems: 3" in out


def test_check_with_a_forced_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zones", "check", str(ED269), "--format", "ed269"]) == 0
    assert "(ed269): 1 good zone, 1 volume" in capsys.readouterr().out
    assert main(["zones", "check", str(ED269), "--format", "ed318"]) == 1


def test_check_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cut.json").write_text('{"UASZoneList": [')
    assert main(["zones", "check", str(tmp_path / "cut.json")]) == 1
    err = capsys.readouterr().err
    assert "not valid JSON at line 1, column 18" in err and "Traceback" not in err


def test_convert_to_stdout_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zones", "convert", str(ED318), "--to", "geojson"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    zones, problems = parse_geojson(json.loads(out), file=None)
    assert problems == []
    assert [z.id for z in zones] == ["LSZB003", "BLns058", "LSTB002"]
    assert zones[0].volumes == load_zones(ED318).zones[0].volumes


def test_convert_to_a_file_keeps_the_good_zones(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(ED269.read_text())
    bad = json.loads(json.dumps(doc["UASZoneList"][0]))
    bad["identifier"] = "BAD"
    bad["geometry"][0]["upperLimit"] = "high"
    doc["UASZoneList"].append(bad)
    src = tmp_path / "mixed.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "out.geojson"
    assert main(["zones", "convert", str(src), "--to", "geojson", "--out", str(out)]) == 1
    printed, err = capsys.readouterr()
    assert "zone 'BAD', field 'UASZoneList[1].geometry[0].upperLimit'" in err
    assert printed.strip() == f"1 zone (ed269) → {out}"
    written = json.loads(out.read_text())
    [f] = written["features"]
    assert f["properties"]["id"] == "LSXX" and f["properties"]["upper_limit"] is None
    assert main(["zones", "check", str(out)]) == 0  # the output reads back cleanly


def test_convert_to_an_unwritable_place_exits_2(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "no" / "such" / "dir.geojson"
    assert main(["zones", "convert", str(ED269), "--to", "geojson", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "skyfence zones: error:" in err and "cannot write" in err


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["zones", "convert", str(ED269)])  # --to is required
    assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        main(["zones"])
    capsys.readouterr()
