"""Reading zone files: detection, file-level problems, duplicates, strict loading, and
mutated real files that must never raise anything but a SkyfenceError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skyfence.errors import SkyfenceError
from skyfence.zones.geojson import to_geojson
from skyfence.zones.io import ZoneLoad, detect_format, load_zones, load_zones_strict
from skyfence.zones.model import ZoneError

DATA = Path(__file__).resolve().parents[1] / "data" / "zones"
EXAMPLES = DATA / "ed318" / "examples"
ED269 = DATA / "interuss_cis_source_sample_ed269.json"
ED318 = DATA / "interuss_cis_source_sample_ed318.json"
ALL_FILES = sorted(DATA.rglob("*.json"))

EXPECTED = {  # file: (format, zone ids)
    ED269.name: ("ed269", ["LSXX"]),
    ED318.name: ("ed318", ["LSZB003", "BLns058", "LSTB002"]),
    "Example_Collection.json": ("ed318", ["NFZ6547", "ABC1234"]),
    "Example_GeoZone_2_Layers.json": ("ed318", ["NFZ6547"]),
    "Example_GeoZone_Circle.json": ("ed318", ["ABC1234"]),
    "Example_GeoZone_with_extension.json": ("ed318", ["ABC1234"]),
    "InvalidExample_GeoZone_2_Layers.json": ("ed318", []),
}


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_real_file(path: Path) -> None:
    load = load_zones(path)
    assert isinstance(load, ZoneLoad)
    if path.name.startswith("PartialExample"):  # fragments, not files: refused clearly
        assert load.zones == () and load.problems
        assert all(p.file == str(path) for p in load.problems)
        return
    fmt, ids = EXPECTED[path.name]
    assert load.format == fmt
    assert [z.id for z in load.zones] == ids
    assert all(z.source == f"{path} ({fmt})" for z in load.zones)
    assert bool(load.problems) == (not ids)


def test_forcing_a_format() -> None:
    load = load_zones(ED318, format="geojson")
    assert load.format == "geojson" and load.zones == ()
    assert "the feature has no id" in load.problems[0].problem
    assert "unknown property 'identifier'" in load.problems[1].problem
    assert load_zones(ED269, format="ed269").zones[0].id == "LSXX"
    with pytest.raises(ZoneError, match="unknown zone file format 'kml'"):
        load_zones(ED269, format="kml")


def test_detection() -> None:
    assert detect_format({"UASZoneList": []}) == "ed269"
    assert detect_format({"features": [{"geometry": [{}]}]}) == "ed269"
    assert detect_format({"features": [{"restriction": "X", "applicability": []}]}) == "ed269"
    assert detect_format({"type": "FeatureCollection",
                          "features": [{"properties": {"identifier": "A"}}]}) == "ed318"
    assert detect_format({"type": "FeatureCollection", "features": [
        {"geometry": {"type": "GeometryCollection", "geometries": [{"layer": {}}]}}]}) == "ed318"
    assert detect_format({"type": "FeatureCollection",
                          "features": [{"properties": {"id": "A"}}]}) == "geojson"
    assert detect_format({}) == "geojson"


def write(tmp_path: Path, text: str | bytes, name: str = "zones.json") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_file_level_problems(tmp_path: Path) -> None:
    missing = load_zones(tmp_path / "nope.json")
    assert missing.format == "unknown" and "cannot read the file" in missing.problems[0].problem

    truncated = ED318.read_text(encoding="utf-8")[:5000]
    [p] = load_zones(write(tmp_path, truncated)).problems
    assert p.problem.startswith("not valid JSON at line ")
    assert "column" in p.problem and "cut short" in str(p.fix)

    [p] = load_zones(write(tmp_path, '{"a": 1,\n "b": }')).problems
    assert "line 2, column 7" in p.problem

    [p] = load_zones(write(tmp_path, "[1, 2]")).problems
    assert "JSON array, not an object" in p.problem

    [p] = load_zones(write(tmp_path, '{"x": NaN}')).problems
    assert "NaN is not a JSON number" in p.problem

    [p] = load_zones(write(tmp_path, b"\xff\xfe{}")).problems
    assert "not UTF-8" in p.problem

    [p] = load_zones(write(tmp_path, "[" * 100_000)).problems
    assert "not valid JSON" in p.problem

    bom = load_zones(write(tmp_path, b"\xef\xbb\xbf" + ED269.read_bytes()))
    assert [z.id for z in bom.zones] == ["LSXX"]


def test_duplicate_identifiers_keep_the_first(tmp_path: Path) -> None:
    doc = json.loads(ED269.read_text())
    second = json.loads(json.dumps(doc["UASZoneList"][0]))
    second["name"] = "the second"
    doc["UASZoneList"].append(second)
    load = load_zones(write(tmp_path, json.dumps(doc)))
    [z] = load.zones
    assert z.name == "LSXX City Sample"
    [p] = load.problems
    assert p.zone == "LSXX" and "first is kept" in p.problem


def test_one_bad_zone_and_numbers_that_are_not(tmp_path: Path) -> None:
    doc = json.loads(ED269.read_text())
    bad = json.loads(json.dumps(doc["UASZoneList"][0]))
    bad["identifier"] = "LSBAD"
    bad["geometry"][0]["lowerLimit"] = "zero"
    doc["UASZoneList"].insert(0, bad)
    load = load_zones(write(tmp_path, json.dumps(doc)))
    assert [z.id for z in load.zones] == ["LSXX"]
    [p] = load.problems
    assert p.field == "UASZoneList[0].geometry[0].lowerLimit" and p.zone == "LSBAD"


def test_strict_loading(tmp_path: Path) -> None:
    assert [z.id for z in load_zones_strict(ED318)] == ["LSZB003", "BLns058", "LSTB002"]
    with pytest.raises(ZoneError) as err:
        load_zones_strict(EXAMPLES / "InvalidExample_GeoZone_2_Layers.json")
    assert err.value.field == "metadata.validFrom"
    assert "(and 2 more problems;" in str(err.value)
    with pytest.raises(ZoneError, match="not valid JSON") as err:
        load_zones_strict(write(tmp_path, "{"))
    assert "more problem" not in str(err.value)


# -- mutated real files ------------------------------------------------------------

DOCS = {p.name: p.read_bytes() for p in ALL_FILES}
# The GeoJSON reader gets the same treatment, from real zones written by to_geojson.
DOCS["converted.geojson"] = json.dumps(to_geojson(
    load_zones(ED318).zones + load_zones(EXAMPLES / "Example_Collection.json").zones
    + load_zones(ED269).zones)).encode()

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
              st.sampled_from(["0", "abc", "Polygon", "Point", "Circle", "GeometryCollection",
                               "AGL", "ft", "ANY", "16:00:00Z", "2018-12-31T15:59:59Z",
                               "REQ_AUTHORISATION", "USPACE", "YES", "NO", "24:00", "SR"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8)


def _nodes(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_nodes(v, (*path, k)))
    elif isinstance(doc, list):
        for k, v in enumerate(doc):
            out.extend(_nodes(v, (*path, k)))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def _load_never_raises(path: Path) -> None:
    try:
        load = load_zones(path)
    except SkyfenceError:  # allowed by contract, though load_zones reports instead
        return
    for p in load.problems:
        assert isinstance(p, ZoneError) and str(p)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(DOCS)), data=st.data())
def test_mutated_values_never_crash(tmp_path: Path, name: str, data: st.DataObject) -> None:
    doc = json.loads(DOCS[name])
    for _ in range(data.draw(st.integers(1, 4))):
        nodes = _nodes(doc)
        where = data.draw(st.sampled_from(nodes))
        delete = bool(where) and data.draw(st.booleans())
        doc = _replace(doc, where, data.draw(json_values), delete)
    path = tmp_path / "mutated.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    _load_never_raises(path)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(DOCS)), data=st.data())
def test_mutated_bytes_never_crash(tmp_path: Path, name: str, data: st.DataObject) -> None:
    raw = bytearray(DOCS[name])
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw)))
        kind = data.draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        if kind == "truncate":
            del raw[at:]
        elif kind == "flip" and at < len(raw):
            raw[at] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            raw[at:at] = data.draw(st.sampled_from([b"0", b'"', b",", b"]", b"{", b"null",
                                                    b"-", b"1e999", b"\xc3"]))
        else:
            del raw[at:at + data.draw(st.integers(1, 40))]
    path = tmp_path / "mutated.json"
    path.write_bytes(bytes(raw))
    _load_never_raises(path)
