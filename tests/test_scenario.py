"""Scenario files: round trips, and every kind of bad input named by file, line and field."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skyfence.errors import InputError
from skyfence.geo import Origin
from skyfence.scenario import (
    Region,
    Scenario,
    SensorSpec,
    StateTable,
    read_detections,
    read_scenario,
    read_truth,
    write_detections,
    write_scenario,
    write_truth,
)
from skyfence.types import Detections

SCENARIO = Scenario(
    name="files",
    origin=Origin(47.45, 8.56, 420.0),
    sensors=(
        SensorSpec(id="r1", kind="radar", position_enu_m=(0.0, 0.0, 10.0), pd=0.9,
                   noise_std=(10.0, 0.002, 0.003), clutter_per_scan=4.0, max_range_m=30_000.0),
        SensorSpec(id="p1", kind="position", position_enu_m=(5.0, 5.0, 0.0), pd=0.8,
                   noise_std=(3.0, 3.0, 6.0), extra={"vendor": "kept as is"}),
    ),
    region=Region(east_m=(-5000.0, 5000.0), north_m=(-5000.0, 5000.0), up_m=(0.0, 1000.0)),
    scan_period_s=1.0,
)

GOOD_CSV = """t,sensor,east_m,north_m,up_m,range_m,azimuth_rad,elevation_rad
100.0,r1,,,,1500.5,0.5,0.1
100.0,p1,10.0,20.0,30.0,,,
101.0,r1,,,,1490.0,-0.5,0.12
"""


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    write_scenario(tmp_path, SCENARIO)
    (tmp_path / "detections.csv").write_text(GOOD_CSV)
    return tmp_path


def test_round_trip(tmp_path: Path) -> None:
    write_scenario(tmp_path, SCENARIO)
    assert read_scenario(tmp_path) == SCENARIO
    det = Detections(t=np.array([1.0, 1.0, 2.5]), sensor=np.array([0, 1, 0], np.int32),
                     z=np.array([[100.0, 0.1, 0.2], [1.0, 2.0, 3.0], [101.0, -3.0, 0.0]]),
                     R=np.zeros((3, 3, 3)))
    write_detections(tmp_path, SCENARIO, det)
    back = read_detections(tmp_path, SCENARIO)
    assert np.array_equal(back.t, det.t) and np.array_equal(back.z, det.z)
    assert np.array_equal(back.sensor, det.sensor)
    assert np.allclose(back.R[0], np.diag([100.0, 0.002**2, 0.003**2]))
    truth = StateTable(t=np.array([1.0, 2.0]), id=np.array([7, 7]),
                       x=np.arange(12, dtype=float).reshape(2, 6))
    write_truth(tmp_path, truth)
    t2 = read_truth(tmp_path)
    assert t2 is not None and np.array_equal(t2.x, truth.x) and t2.id.tolist() == [7, 7]


def test_reads_the_contract_example(scenario_dir: Path) -> None:
    det = read_detections(scenario_dir, read_scenario(scenario_dir))
    assert det.sensor.tolist() == [0, 1, 0]
    assert det.z[1].tolist() == [10.0, 20.0, 30.0]
    assert det.z[2].tolist() == [1490.0, -0.5, 0.12]


def test_unknown_fields_are_ignored_and_kept(tmp_path: Path) -> None:
    doc = SCENARIO.to_json()
    doc["future_field"] = {"x": 1}
    doc["sensors"][0]["doppler"] = True
    (tmp_path / "scenario.json").write_text(json.dumps(doc))
    sc = read_scenario(tmp_path)
    assert sc.extra["future_field"] == {"x": 1}
    assert sc.to_json()["sensors"][0]["doppler"] is True


def _error(scenario_dir: Path, csv: str) -> InputError:
    (scenario_dir / "detections.csv").write_text(csv)
    with pytest.raises(InputError) as info:
        read_detections(scenario_dir, read_scenario(scenario_dir))
    return info.value


HEADER = GOOD_CSV.splitlines()[0]


@pytest.mark.parametrize(
    ("csv", "line", "field", "words"),
    [
        ("t,sensor,east_m,north_m,up_m,range_m,azimuth_rad\n1,r1,,,,1,1\n", 1, None,
         "missing column(s) elevation_rad"),
        (HEADER + ",colour\n1,r1,,,,1,1,1,red\n", 1, None, "unknown column(s) colour"),
        (HEADER + "\n1,r1,,,,1500,0.5,nan\n", 2, "elevation_rad", "not a finite number"),
        (HEADER + "\n2,r1,,,,1500,0.5,0.1\n1,r1,,,,1500,0.5,0.1\n", 3, "t", "earlier"),
        (HEADER + "\n1,r9,,,,1500,0.5,0.1\n", 2, "sensor", "unknown sensor 'r9'"),
        (HEADER + "\n1,r1,,,,1500,0.5,0.1\n1,r1,,,,1500,45.0,0.1\n", 3, "azimuth_rad",
         "looks like degrees"),
        (HEADER + "\n1,r1,,,,1500,0.5,3.0\n", 2, "elevation_rad", "beyond ±π/2"),
        (HEADER + "\n1,r1,,,,-5,0.5,0.1\n", 2, "range_m", "negative range"),
        (HEADER + "\n1,p1,1,,3,,,\n", 2, "north_m", "empty for position sensor"),
        (HEADER + "\n1,r1,,,,1500,abc,0.1\n", 2, "azimuth_rad", "'abc' is not a number"),
        (HEADER + "\n1,r1,,,,1500,0.5\n", 2, None, "7 fields where the header has 8"),
        ("", 1, None, "empty file"),
    ],
)
def test_bad_detections_name_line_and_field(scenario_dir: Path, csv: str, line: int,
                                            field: str | None, words: str) -> None:
    err = _error(scenario_dir, csv)
    assert err.line == line
    assert err.field == field
    assert words in str(err)
    assert str(err).startswith(str(scenario_dir / "detections.csv"))
    assert err.fix


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda d: d.pop("origin"), "origin", "missing"),
        (lambda d: d["origin"].update(lat_deg=123.0), "origin.lat_deg", "above 90"),
        (lambda d: d["sensors"][0].update(kind="sonar"), "sensors[0].kind", "unknown kind"),
        (lambda d: d["sensors"][0].update(pd=1.5), "sensors[0].pd", "above 1.0"),
        (lambda d: d["sensors"][0]["noise_std"].update(azimuth_rad=2.0), "sensors[0].noise_std",
         "radians"),
        (lambda d: d["sensors"][1].update(noise_std_m=[1, 2]), "sensors[1].noise_std_m",
         "list of 3"),
        (lambda d: d["sensors"][1].update(id="r1"), "sensors[1].id", "duplicate"),
        (lambda d: d["region"].update(up_m=[5, 1]), "region.up_m", "not above"),
        (lambda d: d["sensors"][0].update(position_enu_m=[0, "x", 0]),
         "sensors[0].position_enu_m[1]", "expected a number"),
    ],
)
def test_bad_scenario_json_names_the_field(tmp_path: Path, mutate, field: str,  # type: ignore[no-untyped-def]
                                          words: str) -> None:
    doc = SCENARIO.to_json()
    mutate(doc)
    (tmp_path / "scenario.json").write_text(json.dumps(doc))
    with pytest.raises(InputError) as info:
        read_scenario(tmp_path)
    assert info.value.field == field
    assert words in str(info.value)


def test_malformed_json_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "scenario.json").write_text('{"name": "x",\n "origin": }\n')
    with pytest.raises(InputError, match="line 2") as info:
        read_scenario(tmp_path)
    assert "not valid JSON" in str(info.value)


def test_missing_scenario(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"scenario\.json"):
        read_scenario(tmp_path / "nowhere")


def test_infinite_range_is_not_written() -> None:
    assert "max_range_m" not in SCENARIO.sensors[1].to_json()
    assert math.isinf(SCENARIO.sensors[1].max_range_m)


# --------------------------------------------------------------------------- fuzzing

_CELL = st.one_of(
    st.sampled_from(["", "r1", "p1", "nan", "inf", "-1", "1e308", "7", "0.5", " 3 ", "x", "1,2"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=6),
)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_CELL, min_size=6, max_size=10), max_size=6),
       header_cut=st.integers(0, 8))
def test_fuzzed_detections_give_input_errors_only(scenario_dir: Path, rows: list[list[str]],
                                                  header_cut: int) -> None:
    cols = HEADER.split(",")
    header = ",".join(cols[: len(cols) - header_cut]) if header_cut < len(cols) else ""
    text = header + "\n" + "\n".join(",".join(r) for r in rows) + "\n"
    (scenario_dir / "detections.csv").write_text(text, encoding="utf-8")
    try:
        det = read_detections(scenario_dir, SCENARIO)
    except InputError as err:
        assert str(err)
    else:  # whatever was accepted is finite and in range
        assert np.isfinite(det.t).all()
        assert np.all(np.diff(det.t) >= 0)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(data=st.binary(max_size=300))
def test_fuzzed_bytes_as_scenario_json_give_input_errors_only(
        tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    d = tmp_path_factory.mktemp("fuzz")
    (d / "scenario.json").write_bytes(data)
    with pytest.raises(InputError):
        read_scenario(d)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(doc=st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "origin", "sensors", "lat_deg", "lon_deg", "alt_m", "id",
                         "kind", "pd", "position_enu_m", "noise_std", "noise_std_m", "region",
                         "range_m", "azimuth_rad", "elevation_rad", "east_m"]), kids, max_size=6),
    max_leaves=20))
def test_fuzzed_json_documents_give_input_errors_only(doc: object) -> None:
    from skyfence.scenario import parse_scenario

    try:
        parse_scenario(doc)
    except InputError as err:
        assert err.field is not None or "JSON" in str(err)


# --------------------------------------------------------------------------- fusion sensor kinds

FUSION = Scenario(
    name="fusion",
    origin=Origin(47.45, 8.56, 420.0),
    sensors=(
        SensorSpec(id="r2", kind="radar2d", position_enu_m=(0.0, 0.0, 10.0), pd=0.9,
                   noise_std=(20.0, 0.01, 0.0), max_range_m=20_000.0),
        SensorSpec(id="df1", kind="bearing", position_enu_m=(1000.0, 0.0, 5.0), pd=0.8,
                   noise_std=(0.02, 0.0, 0.0), bearing_dim=1, modality="rf",
                   max_range_m=5000.0),
        SensorSpec(id="eo1", kind="bearing", position_enu_m=(-1000.0, 0.0, 5.0), pd=0.7,
                   noise_std=(0.003, 0.004, 0.0), bearing_dim=2, modality="eo"),
        SensorSpec(id="rid", kind="cooperative", position_enu_m=(0.0, 0.0, 2.0), pd=1.0,
                   noise_std=(math.nan, math.nan, math.nan)),
        SensorSpec(id="adsb", kind="cooperative", position_enu_m=(0.0, 0.0, 2.0), pd=1.0,
                   noise_std=(15.0, 15.0, 30.0)),
    ),
)

FUSION_CSV = """\
t,sensor,east_m,north_m,up_m,range_m,azimuth_rad,elevation_rad,identity,std_h_m,std_v_m,category
10.0,r2,,,,1500.5,0.5,,,,,
10.0,df1,,,,,-1.25,,,,,
10.5,eo1,,,,,0.75,0.05,,,,
10.5,rid,100.0,200.0,50.0,,,,rid:MFG1A0123456789,3.0,4.0,2
11.0,adsb,-3000.0,9000.0,1200.0,,,,icao:4840D6,,,A3
"""


def test_fusion_kinds_read_with_their_columns(tmp_path: Path) -> None:
    write_scenario(tmp_path, FUSION)
    assert read_scenario(tmp_path) == FUSION
    (tmp_path / "detections.csv").write_text(FUSION_CSV)
    det = read_detections(tmp_path, FUSION)
    assert [s.dim for s in FUSION.sensors] == [2, 1, 2, 3, 3]
    assert det.z.tolist() == [[1500.5, 0.5, 0.0], [-1.25, 0.0, 0.0], [0.75, 0.05, 0.0],
                              [100.0, 200.0, 50.0], [-3000.0, 9000.0, 1200.0]]
    assert det.identity.tolist() == ["", "", "", "rid:MFG1A0123456789", "icao:4840D6"]
    assert det.category.tolist() == ["", "", "", "2", "A3"]
    # Reported accuracy for Remote ID; the sensor's default noise for the ADS-B row.
    assert np.allclose(np.diagonal(det.R[3]), [9.0, 9.0, 16.0])
    assert np.allclose(np.diagonal(det.R[4]), [225.0, 225.0, 900.0])
    # Unused components: unit variance, so every R stays invertible.
    assert np.allclose(np.diagonal(det.R[1]), [0.02**2, 1.0, 1.0])
    write_detections(tmp_path, FUSION, det)
    back = read_detections(tmp_path, FUSION)
    for name in ("t", "sensor", "z", "R", "identity", "category"):
        assert np.array_equal(getattr(back, name), getattr(det, name)), name


def test_files_without_cooperative_sensors_keep_their_columns(tmp_path: Path) -> None:
    write_scenario(tmp_path, SCENARIO)
    (tmp_path / "detections.csv").write_text(GOOD_CSV)
    write_detections(tmp_path, SCENARIO, read_detections(tmp_path, SCENARIO))
    lines = (tmp_path / "detections.csv").read_text().splitlines()
    assert lines[0] == GOOD_CSV.splitlines()[0]
    assert all(line.count(",") == 7 for line in lines)


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ("10.5,rid,100.0,200.0,50.0,,,,,3.0,4.0,", "identity", "empty for a cooperative"),
        ("10.5,rid,100.0,200.0,50.0,,,,MFG1A0123456789,3.0,4.0,", "identity",
         "not scheme:value"),
        ("10.5,adsb,100.0,200.0,50.0,,,,icao:4840G6,,,", "identity", "24-bit ICAO"),
        ("10.5,rid,100.0,200.0,50.0,,,,rid:X1,,4.0,", "std_h_m", "no accuracy"),
        ("10.5,rid,100.0,200.0,50.0,,,,rid:X1,-3,4.0,", "std_h_m", "positive accuracy"),
        ("10.5,df1,,,,,95.0,,,,,", "azimuth_rad", "degrees"),
        ("10.5,eo1,,,,,0.5,,,,,", "elevation_rad", "empty for bearing sensor"),
        ("10.5,r2,,,,,0.5,,,,,", "range_m", "empty for radar2d sensor"),
    ],
)
def test_bad_fusion_rows_name_line_and_field(tmp_path: Path, row: str, field: str,
                                             words: str) -> None:
    write_scenario(tmp_path, FUSION)
    (tmp_path / "detections.csv").write_text(FUSION_CSV.splitlines()[0] + "\n" + row + "\n")
    with pytest.raises(InputError) as info:
        read_detections(tmp_path, FUSION)
    assert info.value.line == 2 and info.value.field == field
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("sensor", "field", "words"),
    [
        ({"id": "df", "kind": "bearing", "pd": 0.9, "modality": "rf",
          "noise_std": {"azimuth_rad": 0.02}}, "sensors[0].position_enu_m", "position_enu_m"),
        ({"id": "df", "kind": "bearing", "pd": 0.9, "position_enu_m": [0, 0, 0],
          "noise_std": {"azimuth_rad": 0.02}}, "sensors[0].modality", "modality"),
        ({"id": "df", "kind": "bearing", "pd": 0.9, "position_enu_m": [0, 0, 0],
          "modality": "rf", "noise_std": {"azimuth_rad": 2.0}}, "sensors[0].noise_std",
         "radians"),
        ({"id": "r", "kind": "radar2d", "pd": 0.9, "position_enu_m": [0, 0, 0],
          "noise_std": {"azimuth_rad": 0.01}}, "sensors[0].noise_std.range_m", "range_m"),
    ],
)
def test_bad_fusion_sensors_name_the_field(tmp_path: Path, sensor: dict[str, object],
                                           field: str, words: str) -> None:
    doc = {"name": "x", "origin": {"lat_deg": 1, "lon_deg": 2, "alt_m": 3}, "sensors": [sensor]}
    (tmp_path / "scenario.json").write_text(json.dumps(doc))
    with pytest.raises(InputError) as info:
        read_scenario(tmp_path)
    assert info.value.field == field or field in str(info.value)
    assert words in str(info.value)


# --------------------------------------------------------------------------- partner tracks

PARTNER = Scenario(
    name="partner",
    origin=Origin(47.45, 8.56, 420.0),
    sensors=(
        SensorSpec(id="r1", kind="radar", position_enu_m=(0.0, 0.0, 10.0), pd=0.9,
                   noise_std=(10.0, 0.002, 0.003)),
        SensorSpec(id="nodeB", kind="track", position_enu_m=(20_000.0, 0.0, 0.0), pd=1.0,
                   noise_std=(math.nan, math.nan, math.nan)),
    ),
)
_COV = " ".join(["100", "0", "0", "1", "0", "0", "100", "0", "0", "1", "0", "400", "0", "0",
                 "2", "25", "0", "0", "25", "0", "9"])
PARTNER_CSV = (
    "t,sensor,east_m,north_m,up_m,range_m,azimuth_rad,elevation_rad,identity,std_h_m,"
    "std_v_m,category,v_east_mps,v_north_mps,v_up_mps,cov,partner_track\n"
    "5.0,r1,,,,1500.0,0.5,0.1,,,,,,,,,\n"
    f"5.5,nodeB,100.0,200.0,300.0,,,,icao:4840D6,,,,10.0,-5.0,0.5,{_COV},B-17\n"
    f"6.0,nodeB,150.0,200.0,300.0,,,,,,,,10.0,-5.0,0.5,{_COV},B-18\n"
)


def test_partner_tracks_read_with_state_and_covariance(tmp_path: Path) -> None:
    write_scenario(tmp_path, PARTNER)
    assert read_scenario(tmp_path) == PARTNER
    (tmp_path / "detections.csv").write_text(PARTNER_CSV)
    det = read_detections(tmp_path, PARTNER)
    assert det.reported is not None
    np.testing.assert_array_equal(det.reported.x[1], [100.0, 200.0, 300.0, 10.0, -5.0, 0.5])
    P = det.reported.P[1]
    assert np.array_equal(P, P.T) and P[0, 3] == 1.0 and P[2, 5] == 2.0 and P[5, 5] == 9.0
    np.testing.assert_array_equal(det.R[1], P[:3, :3])
    assert det.reported.ref.tolist() == ["", "B-17", "B-18"]
    assert det.identity.tolist() == ["", "icao:4840D6", ""]
    write_detections(tmp_path, PARTNER, det)
    back = read_detections(tmp_path, PARTNER)
    assert back.reported is not None
    for name in ("x", "P", "ref"):
        assert np.array_equal(getattr(back.reported, name), getattr(det.reported, name))
    assert np.array_equal(back.z, det.z) and np.array_equal(back.identity, det.identity)


@pytest.mark.parametrize(
    ("cov", "words"),
    [
        (" ".join(["1"] * 20), "20 numbers"),
        (_COV.replace("400", "x"), "not a number"),
        (_COV.replace("100", "-100", 1), "not positive definite"),
        (_COV.replace(" 1 ", " 50 ", 1), "not positive definite"),
    ],
)
def test_bad_partner_covariance_is_named(tmp_path: Path, cov: str, words: str) -> None:
    write_scenario(tmp_path, PARTNER)
    lines = PARTNER_CSV.splitlines()
    lines[2] = lines[2].replace(_COV, cov)
    (tmp_path / "detections.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_detections(tmp_path, PARTNER)
    assert info.value.line == 3 and info.value.field == "cov"
    assert words in str(info.value)


def test_a_partner_track_needs_its_reference(tmp_path: Path) -> None:
    write_scenario(tmp_path, PARTNER)
    (tmp_path / "detections.csv").write_text(PARTNER_CSV.replace(",B-18", ","))
    with pytest.raises(InputError) as info:
        read_detections(tmp_path, PARTNER)
    assert info.value.line == 4 and info.value.field == "partner_track"


_FUSION_CELL = st.one_of(
    st.sampled_from(["", "r2", "df1", "eo1", "rid", "adsb", "nodeB", "icao:4840D6", "rid:X",
                     "icao:zz", "A3", "2", "nan", "-1", "0.5", "7", _COV, "1 2 3", "B-1"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=6),
)
_ALL_KINDS = Scenario(name="all", origin=FUSION.origin,
                      sensors=(*FUSION.sensors, PARTNER.sensors[1]))
_ALL_HEADER = ("t,sensor,east_m,north_m,up_m,range_m,azimuth_rad,elevation_rad,identity,"
               "std_h_m,std_v_m,category,v_east_mps,v_north_mps,v_up_mps,cov,partner_track")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(rows=st.lists(st.lists(_FUSION_CELL, min_size=15, max_size=18), max_size=5))
def test_fuzzed_fusion_detections_give_input_errors_only(
        tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]]) -> None:
    """Every sensor kind at once, cells drawn from near-valid values: an InputError or a
    batch whose accepted values are finite, with positive definite covariances."""
    d = tmp_path_factory.mktemp("fuzz")
    write_scenario(d, _ALL_KINDS)
    text = _ALL_HEADER + "\n" + "\n".join(",".join(r) for r in rows) + "\n"
    (d / "detections.csv").write_text(text, encoding="utf-8")
    try:
        det = read_detections(d, _ALL_KINDS)
    except InputError as err:
        assert str(err)
    else:
        assert np.isfinite(det.t).all() and np.isfinite(det.z).all()
        assert np.all(np.linalg.eigvalsh(det.R) > 0)
