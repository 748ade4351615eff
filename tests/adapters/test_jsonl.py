"""The generic JSON Lines detection format: every sensor kind, units, rejections."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.adapters.base import Rejected
from skyfence.adapters.jsonl import JsonDetection, JsonlDecoder, jsonl_detections
from skyfence.geo import Origin
from skyfence.scenario import Scenario, SensorSpec

SCENARIO = Scenario(name="jsonl", origin=Origin(47.0, 8.0, 500.0), sensors=(
    SensorSpec(id="r3", kind="radar", position_enu_m=(0, 0, 10), pd=0.9,
               noise_std=(5.0, 0.003, 0.004)),
    SensorSpec(id="r2", kind="radar2d", position_enu_m=(0, 0, 10), pd=0.9,
               noise_std=(20.0, 0.01, 0.0)),
    SensorSpec(id="df", kind="bearing", position_enu_m=(100, 0, 5), pd=0.8,
               noise_std=(0.02, 0.0, 0.0), bearing_dim=1, modality="rf"),
    SensorSpec(id="cam", kind="bearing", position_enu_m=(0, 100, 5), pd=0.8,
               noise_std=(0.003, 0.003, 0.0), bearing_dim=2, modality="eo"),
    SensorSpec(id="pos", kind="position", position_enu_m=(0, 0, 0), pd=0.9,
               noise_std=(3.0, 3.0, 5.0)),
    SensorSpec(id="rid", kind="cooperative", position_enu_m=(0, 0, 0), pd=1.0,
               noise_std=(math.nan, math.nan, math.nan)),
))


def _decode(*lines: object, chunk: int | None = None) -> list[JsonDetection | Rejected]:
    dec = JsonlDecoder(SCENARIO)
    data = b"".join((ln if isinstance(ln, bytes) else json.dumps(ln).encode()) + b"\n"
                    for ln in lines)
    out = []
    step = chunk or len(data) or 1
    for k in range(0, len(data), step):
        out += dec.feed(data[k:k + step])
    return out + dec.close()  # type: ignore[return-value]


def test_every_sensor_kind() -> None:
    out = _decode(
        {"t": 10.0, "sensor": "r3", "range_m": 1200.0, "azimuth_deg": 90.0,
         "elevation_rad": 0.05},
        {"t": "1970-01-01T00:00:11Z", "sensor": "r2", "range_m": 5000, "azimuth_rad": 1.0,
         "std_range_m": 30.0},
        {"t": 12, "sensor": "df", "azimuth_deg": -45},
        {"t": 13, "sensor": "cam", "azimuth_deg": 10, "elevation_deg": 2},
        {"t": 14, "sensor": "pos", "east_m": 1.0, "north_m": 2.0, "up_m": 3.0},
        {"t": 15, "sensor": "rid", "lat_deg": 47.0, "lon_deg": 8.0, "height_m": 600.0,
         "identity": "rid:MFG1A0123456789", "category": 2, "std_h_m": 10, "std_v_m": 15},
    )
    assert all(isinstance(m, JsonDetection) for m in out)
    r3, r2, df, cam, pos, rid = out
    assert isinstance(r3, JsonDetection) and r3.z == pytest.approx((1200.0, math.pi / 2, 0.05))
    assert r3.var == pytest.approx((25.0, 0.003**2, 0.004**2))
    assert isinstance(r2, JsonDetection) and r2.t == 11.0 and r2.var[0] == pytest.approx(900.0)
    assert isinstance(df, JsonDetection) and df.z[0] == pytest.approx(-math.pi / 4)
    assert isinstance(cam, JsonDetection) and cam.z[1] == pytest.approx(math.radians(2))
    assert isinstance(pos, JsonDetection) and pos.z == (1.0, 2.0, 3.0)
    assert isinstance(rid, JsonDetection) and rid.identity == "rid:MFG1A0123456789"
    assert rid.z == pytest.approx((0.0, 0.0, 100.0), abs=1e-6)
    assert rid.var == pytest.approx((100.0, 100.0, 225.0)) and rid.category == "2"
    det = jsonl_detections([m for m in out if isinstance(m, JsonDetection)])
    assert det.sensor.tolist() == [0, 1, 2, 3, 4, 5]
    assert np.allclose(det.R[0].diagonal(), [25.0, 0.003**2, 0.004**2])


@pytest.mark.parametrize(("line", "needle"), [
    ({"t": 1, "sensor": "nope", "east_m": 0}, "not one of this node's sensors"),
    ({"t": 1, "sensor": "r3", "range_m": 10, "azimuth_deg": 1, "azimuth_rad": 0.1,
      "elevation_deg": 1}, "give the angle once"),
    ({"t": 1, "sensor": "r3", "range_m": -10, "azimuth_deg": 1, "elevation_deg": 1},
     "not a positive range"),
    ({"t": "yesterday", "sensor": "pos", "east_m": 0, "north_m": 0, "up_m": 0},
     "not ISO 8601"),
    ({"t": "2026-01-01T00:00:00", "sensor": "pos", "east_m": 0, "north_m": 0, "up_m": 0},
     "no time zone"),
    ({"t": 1, "sensor": "rid", "lat_deg": 47, "lon_deg": 8, "height_m": 1,
      "identity": "MFG1"}, "not an identity"),
    ({"t": 1, "sensor": "rid", "lat_deg": 47, "lon_deg": 8, "height_m": 1,
      "identity": "rid:X"}, "no usable noise"),
    ({"t": 1, "sensor": "pos", "east_m": "1", "north_m": 0, "up_m": 0}, "not a finite number"),
    ([1, 2, 3], "not a JSON object"),
    (b"{not json", "not JSON"),
])
def test_bad_lines_are_rejected_with_line_and_field(line: object, needle: str) -> None:
    good = {"t": 1, "sensor": "pos", "east_m": 0, "north_m": 0, "up_m": 0}
    out = _decode(good, line, good)
    assert isinstance(out[0], JsonDetection) and isinstance(out[2], JsonDetection)
    bad = out[1]
    assert isinstance(bad, Rejected) and needle in bad.reason and "line 2" in bad.reason
    first = json.dumps(good).encode() + b"\n"
    assert bad.offset == len(first)


def test_chunking_and_a_missing_last_newline() -> None:
    lines = [{"t": k, "sensor": "pos", "east_m": k, "north_m": 0, "up_m": 0}
             for k in range(20)]
    whole = _decode(*lines)
    for chunk in (1, 3, 17):
        assert _decode(*lines, chunk=chunk) == whole
    dec = JsonlDecoder(SCENARIO)
    assert dec.feed(b'{"t": 1, "sensor": "pos", "east_m": 0, "north_m": 0, "up_m": 0}') == []
    (last,) = dec.close()
    assert isinstance(last, JsonDetection)


def test_an_endless_line_is_rejected_once_and_the_stream_goes_on() -> None:
    dec = JsonlDecoder(SCENARIO)
    out = dec.feed(b"x" * 70_000)
    out += dec.feed(b"y" * 70_000 + b"\n")
    out += dec.feed(b'{"t": 1, "sensor": "pos", "east_m": 0, "north_m": 0, "up_m": 0}\n')
    assert [type(m).__name__ for m in out] == ["Rejected", "JsonDetection"]
    assert dec.counters.accepted == 1 and dec.counters.n_rejected == 1


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400), chunk=st.integers(1, 64))
def test_fuzz_never_raises(data: bytes, chunk: int) -> None:
    dec = JsonlDecoder(SCENARIO)
    out = []
    for k in range(0, len(data), chunk):
        out += dec.feed(data[k:k + chunk])
    out += dec.close()
    assert all(isinstance(m, JsonDetection | Rejected) for m in out)
