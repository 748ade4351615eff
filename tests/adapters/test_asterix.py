"""ASTERIX: the real CAT048 recordings that ship with asterix_decoder decoded and
compared value by value with it (an independent C++ decoder with its own
specification files); CAT021 records built from drawn values compared with it too (it
ships no CAT021 recording); our CAT062 read back by it and checked against the track
states, the geodesy against pymap3d; framing errors, resynchronisation and fuzzing; the
UDP transport on the loopback."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import math
import os
import socket
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asterix.generated as gen
import numpy as np
import pymap3d
import pytest
from asterix.base import Bits, ParsingMode
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from skyfence.adapters.asterix import (
    CATEGORY_ECAT,
    ECAT_CATEGORY,
    FL_M,
    FT_M,
    FT_PER_MIN_MPS,
    KNOWN_CATEGORIES,
    NM_M,
    UNKNOWN_STD_H_M,
    AdsbReport,
    AsterixDecoder,
    RadarPlot,
    data_source_id,
    decode_block,
    encode_cat062,
    listen_udp,
    plot_detections,
    position_reports,
    resolve_time_of_day,
)
from skyfence.adapters.base import Rejected, StreamDecoder, position_detections
from skyfence.errors import InputError, SkyfenceError
from skyfence.geo import Origin
from skyfence.geoid import geoid_height_m
from skyfence.scenario import Scenario, SensorSpec
from skyfence.types import Tracks

ORACLE_DIST = "asterix_decoder"
ORIGIN = Origin(45.0, 15.0, 200.0)
T_REF = 1_462_433_756.0  # 2016-05-05 07:35:56 UTC
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------- the oracle


class Oracle:
    """asterix_decoder through its C extension, so that the ``asterix`` package name it
    shares with libasterix does not matter."""

    def __init__(self) -> None:
        dist = importlib.metadata.distribution(ORACLE_DIST)
        import _asterix  # the oracle's extension module

        self._ext: Any = _asterix
        config = Path(str(dist.locate_file("asterix/config")))
        for f in sorted(config.glob("*.xml")):
            _asterix.init(str(f))
        self.samples = Path(str(dist.locate_file("asterix/sample_data")))

    def parse(self, data: bytes) -> list[dict[str, Any]]:
        return list(self._ext.parse(bytes(data), 0))


@pytest.fixture(scope="module")
def oracle() -> Oracle:
    try:
        importlib.metadata.distribution(ORACLE_DIST)
    except importlib.metadata.PackageNotFoundError:
        why = f"{ORACLE_DIST} is not installed (the test extra has it)"
        if os.environ.get("CI"):  # CI installs the test extra: there it is a failure
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    return Oracle()


def udp_payloads(path: Path) -> list[tuple[float, bytes]]:
    """(capture time, UDP payload) of a classic pcap of Ethernet/IPv4/UDP frames."""
    data = path.read_bytes()
    end = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = data[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    assert struct.unpack(end + "I", data[20:24])[0] == 1, "Ethernet link type"
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        p = 14
        eth = struct.unpack(">H", pkt[12:14])[0]
        if eth == 0x8100:
            eth, p = struct.unpack(">H", pkt[16:18])[0], 18
        assert eth == 0x0800 and pkt[p + 9] == 17, "IPv4/UDP"
        ihl = (pkt[p] & 15) * 4
        ulen = struct.unpack(">H", pkt[p + ihl + 4:p + ihl + 6])[0]
        out.append((sec + frac * (1e-9 if nano else 1e-6), pkt[p + ihl + 8:p + ihl + ulen]))
    return out


def val(rec: dict[str, Any], item: str, field: str) -> Any:
    return rec[item][field]["val"]


# --------------------------------------------------------------------------- CAT048


def _check_plot(ours: RadarPlot, ref: dict[str, Any], t_ref: float) -> None:
    assert ref["category"] == 48
    assert (ours.sac, ours.sic) == (val(ref, "I010", "SAC"), val(ref, "I010", "SIC"))
    tod = val(ref, "I140", "ToD")
    assert ours.time_of_day_s == tod
    assert ours.t == resolve_time_of_day(tod, t_ref)
    if "I040" in ref:
        assert ours.range_m == pytest.approx(val(ref, "I040", "RHO") * NM_M, abs=1e-6)
        assert ours.azimuth_rad == pytest.approx(math.radians(val(ref, "I040", "THETA")),
                                                 abs=1e-12)
    else:
        assert math.isnan(ours.range_m) and math.isnan(ours.azimuth_rad)
    assert ours.report_type == val(ref, "I020", "TYP")
    assert ours.simulated == bool(val(ref, "I020", "SIM"))
    assert ours.fixed_transponder == bool(val(ref, "I020", "RAB"))
    assert ours.spi == bool(val(ref, "I020", "SPI"))
    assert ours.test == bool(ref["I020"].get("TST", {"val": 0})["val"])
    if "I070" in ref:
        assert ours.mode3a == val(ref, "I070", "Mode3A")
        assert ours.mode3a_valid == (val(ref, "I070", "V") == 0 and val(ref, "I070", "G") == 0)
    else:
        assert ours.mode3a == ""
    if "I090" in ref:
        assert ours.pressure_altitude_m == pytest.approx(val(ref, "I090", "FL") * FL_M)
        assert ours.pressure_altitude_valid == (
            val(ref, "I090", "V") == 0 and val(ref, "I090", "G") == 0)
    else:
        assert math.isnan(ours.pressure_altitude_m)
    assert ours.icao_address == (val(ref, "I220", "ACAddr") if "I220" in ref else "")
    assert ours.callsign == (val(ref, "I240", "TId").strip() if "I240" in ref else "")
    assert ours.track_number == (val(ref, "I161", "Tn") if "I161" in ref else -1)
    if "I200" in ref:
        # The oracle gives this one in knots (its scale is 2⁻¹⁴ NM/s × 3 600).
        assert ours.ground_speed_mps == pytest.approx(val(ref, "I200", "CGS") * NM_M / 3600)
        assert ours.heading_rad == pytest.approx(math.radians(val(ref, "I200", "CHdg")))
    else:
        assert math.isnan(ours.ground_speed_mps)


def test_cat048_recording_matches_the_oracle(oracle: Oracle) -> None:
    packets = udp_payloads(oracle.samples / "cat_034_048.pcap")
    dec = AsterixDecoder()
    ours: list[tuple[float, Any]] = []
    for t, payload in packets:
        ours += [(t, m) for m in dec.feed_datagram(payload, t=t)]
    ours_plots = [(t, m) for t, m in ours if isinstance(m, RadarPlot)]
    refs = [(t, r) for t, p in packets for r in oracle.parse(p) if r["category"] == 48]
    assert len(refs) == 128 and len(ours_plots) == len(ours) == len(refs)
    for (t, plot), (t2, ref) in zip(ours_plots, refs, strict=True):
        assert t == t2
        _check_plot(plot, ref, t)
        # The day comes out right, and the report is seconds old (a coasted track
        # report among them, 20 s).
        assert datetime.fromtimestamp(plot.t, UTC).date().isoformat() == "2016-05-05"
        assert 0.0 <= t - plot.t < 30.0
    assert dec.counters.accepted == 128 and dec.counters.n_rejected == 0
    assert dec.skipped == {34: 34}
    assert dec.counters.bytes_in == sum(len(p) for _, p in packets)


def test_cat048_raw_file_and_any_chunking(oracle: Oracle) -> None:
    data = (oracle.samples / "cat048.raw").read_bytes()
    (ref,) = oracle.parse(data)
    dec = AsterixDecoder(clock=lambda: T_REF)
    out = [m for b in data for m in dec.feed(bytes([b]))] + dec.close()
    assert len(out) == 1 and isinstance(out[0], RadarPlot)
    _check_plot(out[0], ref, T_REF)
    assert out[0].callsign == "DLH65A" and out[0].icao_address == "3C660C"
    assert out[0].sensor_id == data_source_id(25, 201) == "asterix:25/201"
    json.dumps(out[0].to_json(), allow_nan=False)


def test_plots_become_radar2d_detections(oracle: Oracle) -> None:
    packets = udp_payloads(oracle.samples / "cat_034_048.pcap")
    dec = AsterixDecoder()
    plots = [m for t, p in packets for m in dec.feed_datagram(p, t=t)
             if isinstance(m, RadarPlot)]
    radar = SensorSpec(id="asterix:25/201", kind="radar2d", position_enu_m=(0.0, 0.0, 30.0),
                       pd=0.9, noise_std=(60.0, 0.002, 0.0))
    other = SensorSpec(id="asterix:25/202", kind="radar2d", position_enu_m=(0.0, 0.0, 30.0),
                       pd=0.9, noise_std=(10.0, 0.001, 0.0))
    scenario = Scenario(name="a", origin=ORIGIN, sensors=(other, radar))
    det = plot_detections(plots, scenario)
    kept = [p for p in plots if p.is_measurement and p.sensor_id == radar.id]
    assert len(det) == len(kept) > 0
    assert np.all(det.sensor == 1)
    np.testing.assert_array_equal(det.z[:, 0], [p.range_m for p in kept])
    np.testing.assert_array_equal(det.z[:, 1], [p.azimuth_rad for p in kept])
    np.testing.assert_array_equal(det.z[:, 2], 0.0)
    np.testing.assert_array_equal(det.R, np.broadcast_to(radar.R, det.R.shape))
    np.testing.assert_array_equal(det.t, [p.t for p in kept])
    as_3d = Scenario(name="a", origin=ORIGIN, sensors=(SensorSpec(
        id="asterix:25/201", kind="radar", position_enu_m=(0.0, 0.0, 30.0), pd=0.9,
        noise_std=(60.0, 0.002, 0.01)),))
    with pytest.raises(InputError, match="radar2d"):
        plot_detections(plots, as_3d)
    none = Scenario(name="a", origin=ORIGIN, sensors=(other,))
    assert len(plot_detections(plots, none)) == 0


# --------------------------------------------------------------------------- CAT021

ICAO_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "


@st.composite
def cat021_items(draw: st.DrawFn) -> dict[str, Any]:
    """The arguments of a libasterix CAT021 2.6 record, raw values drawn."""
    items: dict[str, Any] = {"010": (("SAC", draw(st.integers(0, 255))),
                                     ("SIC", draw(st.integers(0, 255))))}
    opt = draw(st.sets(st.sampled_from(
        ["040", "040x", "071", "073", "130", "131", "140", "145", "080", "170", "020", "090",
         "090x", "090xx", "210", "160", "157", "155"])))
    if "040" in opt:
        first = (("ATP", draw(st.integers(0, 3))), ("ARC", 0), ("RC", 0), ("RAB", 0), None)
        groups: tuple[Any, ...] = (first,)
        if "040x" in opt:
            groups += ((("DCR", 0), ("GBS", draw(st.integers(0, 1))),
                        ("SIM", draw(st.integers(0, 1))), ("TST", draw(st.integers(0, 1))),
                        ("SAA", 0), ("CL", 0), None),)
        items["040"] = groups
    for k in ("071", "073"):
        if k in opt:
            items[k] = draw(st.integers(0, 86400 * 128 - 1))
    if "130" in opt:
        items["130"] = (("LAT", draw(st.integers(-(2**22), 2**22))),
                        ("LON", draw(st.integers(-(2**23), 2**23 - 1))))
    if "131" in opt:
        items["131"] = (("LAT", draw(st.integers(-(2**29), 2**29))),
                        ("LON", draw(st.integers(-(2**30), 2**30 - 1))))
    if "140" in opt:
        items["140"] = draw(st.integers(-240, 24000) | st.just(0x7FFF))
    if "145" in opt:
        items["145"] = draw(st.integers(-60, 6000))
    if "080" in opt:
        items["080"] = draw(st.integers(0, 2**24 - 1))
    if "170" in opt:
        items["170"] = draw(st.text(ICAO_CHARS, min_size=8, max_size=8))
    if "020" in opt:
        items["020"] = draw(st.integers(0, 24))
    if "090" in opt:
        groups = ((("NUCRNACV", draw(st.integers(0, 7))),
                   ("NUCPNIC", draw(st.integers(0, 15))), None),)
        if "090x" in opt:
            groups += ((("NICBARO", draw(st.integers(0, 1))), ("SIL", draw(st.integers(0, 3))),
                        ("NACP", draw(st.integers(0, 15))), None),)
            if "090xx" in opt:
                groups += ((0, ("SILS", 0), ("SDA", draw(st.integers(0, 3))),
                            ("GVA", draw(st.integers(0, 3))), None),)
        items["090"] = groups
    if "210" in opt:
        items["210"] = (0, ("VNS", 0), ("VN", draw(st.integers(0, 3))), ("LTT", 2))
    if "160" in opt:
        items["160"] = (("RE", draw(st.integers(0, 1))), ("GS", draw(st.integers(0, 2**15 - 1))),
                        ("TA", draw(st.integers(0, 2**16 - 1))))
    for k, name in (("157", "GVR"), ("155", "BVR")):
        if k in opt:
            items[k] = (("RE", draw(st.integers(0, 1))),
                        (name, draw(st.integers(-(2**14), 2**14 - 1))))
    return items


def _cat021(items: list[dict[str, Any]]) -> bytes:
    recs = [gen.Cat_021_2_6.cv_record.create(dict(i)) for i in items]
    return bytes(gen.Cat_021_2_6.create(recs).unparse().to_bytes())


def _check_adsb(ours: AdsbReport, ref: dict[str, Any], t_ref: float) -> None:
    assert ref["category"] == 21
    assert (ours.sac, ours.sic) == (val(ref, "I010", "SAC"), val(ref, "I010", "SIC"))
    if "I071" in ref:
        assert ours.t == resolve_time_of_day(val(ref, "I071", "time_applicability_position"),
                                             t_ref)
    elif "I073" in ref:
        assert ours.t == resolve_time_of_day(val(ref, "I073", "time_reception_position"),
                                             t_ref)
    else:
        assert ours.t == t_ref
    pos = "I131" if "I131" in ref else ("I130" if "I130" in ref else None)
    if pos:
        assert ours.lat_deg == pytest.approx(val(ref, pos, "Lat"), abs=1e-12)
        assert ours.lon_deg == pytest.approx(val(ref, pos, "Lon"), abs=1e-12)
    else:
        assert math.isnan(ours.lat_deg) and math.isnan(ours.lon_deg)
    if "I140" in ref and val(ref, "I140", "geometric_height") != 0x7FFF * 6.25:
        assert ours.geometric_height_m == pytest.approx(
            val(ref, "I140", "geometric_height") * FT_M, abs=1e-9)
    else:
        assert math.isnan(ours.geometric_height_m)
    if "I145" in ref:
        assert ours.pressure_altitude_m == pytest.approx(val(ref, "I145", "FL") * FL_M,
                                                         abs=1e-9)
    else:
        assert math.isnan(ours.pressure_altitude_m)
    assert ours.icao_address == (val(ref, "I080", "TAddr") if "I080" in ref else "")
    assert ours.callsign == (val(ref, "I170", "TId").strip() if "I170" in ref else "")
    ecat = val(ref, "I020", "ECAT") if "I020" in ref else 0
    assert ours.ecat == ecat and ours.category == ECAT_CATEGORY.get(ecat, "")
    q = ref.get("I090", {})
    assert ours.nucp_nic == q.get("NUCp_or_NIC", {"val": -1})["val"]
    assert ours.nacp == q.get("NACp", {"val": -1})["val"]
    assert ours.gva == q.get("GVA", {"val": -1})["val"]
    assert ours.sil == q.get("SIL", {"val": -1})["val"]
    assert ours.mops_version == (val(ref, "I210", "VN") if "I210" in ref else -1)
    d = ref.get("I040", {})
    assert ours.address_type == d.get("ATP", {"val": -1})["val"]
    assert ours.simulated == bool(d.get("SIM", {"val": 0})["val"])
    assert ours.test == bool(d.get("TST", {"val": 0})["val"])
    assert ours.on_ground == bool(d.get("GBS", {"val": 0})["val"])
    ve, vn, vu = ours.velocity_enu_mps
    if "I160" in ref and val(ref, "I160", "RE") == 0:
        gs, ta = val(ref, "I160", "GS") * NM_M, math.radians(val(ref, "I160", "TA"))
        assert (ve, vn) == pytest.approx((gs * math.sin(ta), gs * math.cos(ta)), abs=1e-9)
    else:
        assert math.isnan(ve) and math.isnan(vn)
    rate = next((val(ref, k, f) for k, f in (("I157", "GVR"), ("I155", "BVR"))
                 if k in ref and val(ref, k, "RE") == 0), None)
    if rate is None:
        assert math.isnan(vu)
    else:
        assert vu == pytest.approx(rate * FT_PER_MIN_MPS, abs=1e-12)


@FUZZ
@given(st.lists(cat021_items(), min_size=1, max_size=4),
       st.floats(1.0e9, 2.0e9, allow_nan=False))
def test_cat021_matches_the_oracle(oracle: Oracle, items: list[dict[str, Any]],
                                   t_ref: float) -> None:
    block = _cat021(items)
    refs = oracle.parse(block)
    ours = decode_block(block, t=t_ref)
    assert len(ours) == len(refs) == len(items)
    for m, ref in zip(ours, refs, strict=True):
        assert isinstance(m, AdsbReport)
        _check_adsb(m, ref, t_ref)
        json.dumps(m.to_json(), allow_nan=False)


@FUZZ
@given(st.lists(cat021_items(), min_size=1, max_size=3), st.data())
def test_fuzz_damaged_cat021(items: list[dict[str, Any]], data: st.DataObject) -> None:
    block = bytearray(_cat021(items))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(3, len(block) - 1))
        block[at] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(4, len(block)))
    block[1:3] = cut.to_bytes(2, "big")
    out = decode_block(bytes(block[:cut]), t=T_REF, offset=100)
    assert all(isinstance(m, AdsbReport) for m in out[:-1])
    if out and isinstance(out[-1], Rejected):
        assert 103 <= out[-1].offset < 100 + cut
    for m in out:
        json.dumps(m.to_json(), allow_nan=False)


def test_cat021_hand_built_record() -> None:
    """A record assembled byte by byte from the specification, not by a codec."""
    # FRN 1, 2, 5, 6, 7 | 11 | 16, 17, 21 | 26 | 30: 010, 040, 071, 130, 131 | 080 |
    # 140, 090, 145 | 160 | 020 (ed. 2.6 UAP), FX set on all octets but the last.
    fspec = bytes([0b1100_1111, 0b0001_0001, 0b0110_0011, 0b0000_1001, 0b0100_0000])
    rec = (fspec + bytes([25, 201])  # 010 SAC/SIC
           + bytes([0b0000_0000])  # 040: ICAO address, no extension
           + round(43_200.5 * 128).to_bytes(3, "big")  # 071: 12:00:00.5
           + round(47.25 * 2**23 / 180).to_bytes(3, "big", signed=True)  # 130
           + round(-8.5 * 2**23 / 180).to_bytes(3, "big", signed=True)
           + round(47.2512 * 2**30 / 180).to_bytes(4, "big", signed=True)  # 131
           + round(-8.4987 * 2**30 / 180).to_bytes(4, "big", signed=True)
           + bytes.fromhex("4840D6")  # 080
           + (1000).to_bytes(2, "big", signed=True)  # 140: 6 250 ft
           # 090: NUCr 0, NIC 7 | NICbaro 0, SIL 3, NACp 11 | GVA 2
           + bytes([0b0000_1111, 0b0111_0111, 0b0000_0100])
           + (4 * 60).to_bytes(2, "big", signed=True)  # 145: FL 60
           + round(250 / 3600 * 2**14).to_bytes(2, "big")  # 160: 250 kt
           + round(90 * 2**16 / 360).to_bytes(2, "big")  # … due east
           + bytes([3]))  # 020: ECAT 3
    block = bytes([21]) + (3 + len(rec)).to_bytes(2, "big") + rec
    t_ref = datetime(2026, 11, 27, 12, 0, 3, tzinfo=UTC).timestamp()
    (m,) = decode_block(block, t=t_ref)
    assert isinstance(m, AdsbReport)
    assert m.t == t_ref - 2.5
    assert (m.lat_deg, m.lon_deg) == pytest.approx((47.2512, -8.4987), abs=2e-7)
    assert m.geometric_height_m == pytest.approx(6250 * FT_M)
    assert m.pressure_altitude_m == pytest.approx(6000 * FT_M)
    assert m.identity == "icao:4840D6" and m.category == "A3"
    assert (m.nucp_nic, m.sil, m.nacp, m.gva) == (7, 3, 11, 2)
    assert m.std_h_m == pytest.approx(3.0 / 2.4477, rel=1e-4)
    assert m.std_v_m == pytest.approx(45.0 / 1.96)
    assert m.velocity_enu_mps[0] == pytest.approx(250 * NM_M / 3600, abs=NM_M / 2**15)
    assert m.velocity_enu_mps[1] == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(m.velocity_enu_mps[2])


@pytest.mark.parametrize(("nucp_nic", "nacp", "gva", "version", "std_h", "std_v"), [
    (7, 9, 2, 2, 30.0 / 2.4477, 45.0 / 1.96),  # NACp and GVA
    (7, 10, -1, 2, 10.0 / 2.4477, 15.0 / 1.96),  # NACp's vertical bound
    (7, 8, 0, 1, 0.05 * NM_M / 2.4477, 150.0 / 1.96),  # no vertical bound: the worst GVA
    (3, 4, -1, 1, NM_M / 2.4477, NM_M / 2.4477),  # … or as horizontally, if worse
    (7, -1, -1, 0, 0.05 * NM_M / 2.4477, 150.0 / 1.96),  # DO-260: NUCp
    (8, -1, -1, -1, 10.0 / 2.4477, 150.0 / 1.96),  # no version, no NACp: NUCp
    (7, -1, -1, 2, UNKNOWN_STD_H_M, UNKNOWN_STD_H_M),  # version 2 without NACp
    (7, 0, -1, 2, UNKNOWN_STD_H_M, UNKNOWN_STD_H_M),  # NACp 0: unknown
])
def test_accuracy_from_quality_indicators(nucp_nic: int, nacp: int, gva: int, version: int,
                                          std_h: float, std_v: float) -> None:
    g: tuple[Any, ...] = ((("NUCRNACV", 0), ("NUCPNIC", nucp_nic), None),)
    if nacp >= 0:
        g += ((("NICBARO", 0), ("SIL", 0), ("NACP", nacp), None),)
        if gva >= 0:
            g += ((0, ("SILS", 0), ("SDA", 0), ("GVA", gva), None),)
    items: dict[str, Any] = {"010": (("SAC", 1), ("SIC", 2)), "090": g}
    if version >= 0:
        items["210"] = (0, ("VNS", 0), ("VN", version), ("LTT", 2))
    (m,) = decode_block(_cat021([items]), t=T_REF)
    assert isinstance(m, AdsbReport)
    assert m.std_h_m == pytest.approx(std_h, rel=1e-4)
    assert m.std_v_m == pytest.approx(std_v, rel=1e-4)


def test_reports_become_cooperative_detections() -> None:
    base = {"010": (("SAC", 1), ("SIC", 2)), "080": 0x4840D6, "020": 13,
            "131": (("LAT", round(45.01 * 2**30 / 180)), ("LON", round(15.02 * 2**30 / 180))),
            "090": ((("NUCRNACV", 0), ("NUCPNIC", 8), None),
                    (("NICBARO", 0), ("SIL", 3), ("NACP", 9), None),
                    (0, ("SILS", 0), ("SDA", 0), ("GVA", 2), None)),
            "160": (("RE", 0), ("GS", round(30 / NM_M * 2**14)), ("TA", 0))}
    geometric = {**base, "140": 160, "145": 40}  # 1 000 ft; FL 10
    baro = {**base, "145": 40}
    no_height = dict(base)
    simulated = {**geometric, "040": ((("ATP", 0), ("ARC", 0), ("RC", 0), ("RAB", 0), None),
                                      (("DCR", 0), ("GBS", 0), ("SIM", 1), ("TST", 0),
                                       ("SAA", 0), ("CL", 0), None))}
    out = decode_block(_cat021([geometric, baro, no_height, simulated]), t=T_REF)
    reports = position_reports([*out, Rejected(0, "x")])
    assert len(reports) == 2
    geo, bar = reports
    assert geo.height_m == pytest.approx(1000 * FT_M)
    assert geo.std_h_m == pytest.approx(30 / 2.4477, rel=1e-4)
    assert geo.std_v_m == pytest.approx(45 / 1.96, rel=1e-4)
    assert geo.identity == "icao:4840D6" and geo.category == "B6"
    assert geo.velocity_enu_mps[1] == pytest.approx(30.0, abs=NM_M / 2**15)
    # FL 10 taken as 1 000 ft above mean sea level, lifted onto the ellipsoid by N.
    n = float(geoid_height_m(45.01, 15.02))
    assert bar.height_m == pytest.approx(10 * FL_M + n, abs=1e-6)
    assert bar.std_v_m > 100.0 > geo.std_v_m
    det = position_detections(reports, ORIGIN, sensor=3)
    assert list(det.identity) == ["icao:4840D6"] * 2 and list(det.category) == ["B6"] * 2
    expected = pymap3d.geodetic2enu(45.01, 15.02, 1000 * FT_M, ORIGIN.lat_deg,
                                     ORIGIN.lon_deg, ORIGIN.alt_m)
    np.testing.assert_allclose(det.z[0], expected, atol=0.05)  # 131 is 1.7e-7° a step


def test_address_types_other_than_icao_give_no_identity() -> None:
    items = {"010": (("SAC", 1), ("SIC", 2)), "080": 0xABCDEF,
             "040": ((("ATP", 3), ("ARC", 0), ("RC", 0), ("RAB", 0), None),)}
    (m,) = decode_block(_cat021([items]), t=T_REF)
    assert isinstance(m, AdsbReport)
    assert m.icao_address == "ABCDEF" and m.address_type == 3 and m.identity == ""


def test_ecat_mapping_is_one_to_one() -> None:
    assert {CATEGORY_ECAT[v] for v in ECAT_CATEGORY.values()} == set(ECAT_CATEGORY)
    assert ECAT_CATEGORY[13] == "B6" and ECAT_CATEGORY[10] == "A7"
    assert ECAT_CATEGORY[3] == "A3" and 0 not in ECAT_CATEGORY


# --------------------------------------------------------------------------- time of day


def test_time_of_day_around_midnight() -> None:
    midnight = datetime(2026, 11, 27, tzinfo=UTC).timestamp()
    # Just after midnight, a report stamped just before it is from yesterday…
    assert resolve_time_of_day(86399.5, midnight + 2.0) == midnight - 0.5
    # … and just before midnight, one stamped just after it is from tomorrow.
    assert resolve_time_of_day(1.0, midnight - 3.0) == midnight + 1.0
    assert resolve_time_of_day(43200.0, midnight + 40000.0) == midnight + 43200.0


@given(st.floats(0.0, 86400.0, exclude_max=True), st.floats(0.0, 4.0e9))
def test_time_of_day_resolves_to_the_nearest_day(tod: float, t_ref: float) -> None:
    t = resolve_time_of_day(tod, t_ref)
    assert abs(t - t_ref) <= 43200.0 + 1e-6
    assert (t % 86400.0) == pytest.approx(tod, abs=1e-5) or abs(tod - 86400.0) < 1e-5


def test_decoder_takes_the_day_from_the_receive_time(oracle: Oracle) -> None:
    data = (oracle.samples / "cat048.raw").read_bytes()  # ToD 07:35:54.6
    dec = AsterixDecoder(clock=lambda: 0.0)
    (plot,) = dec.feed_datagram(data, t=datetime(2030, 1, 2, 7, 36, tzinfo=UTC).timestamp())
    assert isinstance(plot, RadarPlot)
    assert datetime.fromtimestamp(plot.t, UTC) == datetime(2030, 1, 2, 7, 35, 54, 601562,
                                                           tzinfo=UTC)
    # Without t, the clock decides.
    (plot,) = dec.feed_datagram(data)
    assert isinstance(plot, RadarPlot) and plot.t == 27354.6015625


# --------------------------------------------------------------------------- CAT062 out


@st.composite
def tracks(draw: st.DrawFn) -> Tracks:
    n = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = np.column_stack([rng.uniform(-60e3, 60e3, (n, 2)), rng.uniform(-100, 12000, n),
                         rng.uniform(-300, 300, (n, 2)), rng.uniform(-30, 30, n)])
    a = rng.normal(size=(n, 6, 6)) * rng.uniform(0.1, 40, (n, 1, 6))
    P = a @ a.transpose(0, 2, 1) + np.eye(6) * 0.01
    ident = draw(st.lists(st.sampled_from(["", "icao:4840D6", "icao:ABC123", "rid:XYZ1"]),
                          min_size=n, max_size=n))
    cat = draw(st.lists(st.sampled_from(["", "A3", "B6", "A7", "C3", "D1"]),
                        min_size=n, max_size=n))
    return Tracks(
        id=np.asarray(draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n,
                                    unique=True)), dtype=np.int64),
        x=x, P=P, status=rng.integers(0, 3, n).astype(np.int8),
        t_first=np.zeros(n), t_last=np.zeros(n),
        hits=np.ones(n, np.int32), misses=np.zeros(n, np.int32),
        identity=np.array(ident, dtype=np.str_), category=np.array(cat, dtype=np.str_),
        sources=rng.integers(1, 16, n).astype(np.uint64),
        flags=rng.integers(0, 16, n).astype(np.uint16), manoeuvre_p=rng.uniform(0, 1, n))


def _sigma_deg_per_m(lat: float, lon: float, h: float) -> tuple[float, float]:
    """Degrees of latitude per metre north and of longitude per metre east, by pymap3d."""
    la, _, _ = pymap3d.enu2geodetic(0.0, 1.0, 0.0, lat, lon, h)
    _, lo, _ = pymap3d.enu2geodetic(1.0, 0.0, 0.0, lat, lon, h)
    return la - lat, lo - lon


def _check_track(ref: dict[str, Any], tr: Tracks, i: int, t: float,
                 callsigns: dict[str, str]) -> None:
    x, P = tr.x[i], tr.P[i]
    assert (val(ref, "I010", "SAC"), val(ref, "I010", "SIC"), val(ref, "I015", "SID")) == (
        7, 42, 3)
    assert val(ref, "I070", "ToT") == pytest.approx(t % 86400.0, abs=1 / 256 + 1e-9)
    lat, lon, h = pymap3d.enu2geodetic(x[0], x[1], x[2], ORIGIN.lat_deg, ORIGIN.lon_deg,
                                       ORIGIN.alt_m)
    lsb105 = 180 / 2**25
    assert val(ref, "I105", "Lat") == pytest.approx(lat, abs=lsb105 / 2 + 1e-9)
    assert val(ref, "I105", "Lon") == pytest.approx(lon, abs=lsb105 / 2 + 1e-9)
    assert (val(ref, "I100", "X"), val(ref, "I100", "Y")) == pytest.approx(
        (x[0], x[1]), abs=0.25 + 1e-9)
    assert (val(ref, "I185", "Vx"), val(ref, "I185", "Vy")) == pytest.approx(
        (x[3], x[4]), abs=0.125 + 1e-9)
    assert val(ref, "I040", "TrkN") == int(tr.id[i]) % 65536
    s = ref["I080"]
    assert s["MON"]["val"] == (1 if int(tr.sources[i]).bit_count() == 1 else 0)
    assert s["CNF"]["val"] == (1 if tr.status[i] == 0 else 0)
    assert s["CST"]["val"] == (1 if tr.status[i] == 2 else 0)
    assert s["AFF"]["val"] == int(tr.flags[i]) & 1
    ident = str(tr.identity[i])
    assert s["SDS"]["val"] == (2 if not ident else (1 if int(tr.flags[i]) & 4 else 0))
    assert s["SRC"]["val"] == (1 if ident else 0) and s["MRH"]["val"] == 1
    assert ref["I200"]["TRANSA"]["val"] == (0 if tr.manoeuvre_p[i] < 0.5 else 3)
    vert = ref["I200"]["VERTA"]["val"]
    sd = np.sqrt(np.diag(P))
    if abs(x[5]) >= max(1.0, 2 * sd[5]):
        assert vert == (1 if x[5] > 0 else 2)
    elif abs(x[5]) < 1.0 and 2 * sd[5] <= 1.0:
        assert vert == 0
    else:
        assert vert == 3
    assert val(ref, "I130", "Alt") * FT_M == pytest.approx(h, abs=3.125 * FT_M + 1e-6)
    assert val(ref, "I220", "RoC") * FT_PER_MIN_MPS == pytest.approx(
        x[5], abs=3.125 * FT_PER_MIN_MPS + 1e-9)
    if ident.startswith("icao:"):
        adr = ref["I380"]
        assert adr["ADR"]["ADR"]["val"] == ident[5:]
        if ident in callsigns:
            assert adr["ID"]["ACID"]["val"].strip() == callsigns[ident]
        cat = str(tr.category[i])
        if cat in CATEGORY_ECAT:
            assert adr["EMC"]["ECAT"]["val"] == CATEGORY_ECAT[cat]
        else:
            assert "EMC" not in adr
    else:
        assert "I380" not in ref
    acc = ref["I500"]

    def at_least(got: float, want: float, lsb: float, cap: float) -> None:
        if want >= cap:
            assert got == cap
        else:
            assert want - 1e-9 <= got < want + lsb + 1e-9

    at_least(acc["APC"]["APC_X"]["val"], sd[0], 0.5, 65535 * 0.5)
    at_least(acc["APC"]["APC_Y"]["val"], sd[1], 0.5, 65535 * 0.5)
    cov = P[0, 1]
    assert acc["COV"]["COV_XY"]["val"] == pytest.approx(
        math.copysign(math.sqrt(abs(cov)), cov), abs=0.25 + 1e-9)
    dlat, dlon = _sigma_deg_per_m(lat, lon, h)
    apw_lsb = 180 / 2**25
    at_least(acc["APW"]["APW_Lat"]["val"], sd[1] * dlat * (1 - 1e-6), apw_lsb * 1.001,
             65535 * apw_lsb)
    at_least(acc["APW"]["APW_Long"]["val"], sd[0] * dlon * (1 - 1e-6), apw_lsb * 1.001,
             65535 * apw_lsb)
    at_least(acc["AGA"]["AGA_Acc"]["val"] * FT_M, sd[2], 6.25 * FT_M, 255 * 6.25 * FT_M)
    at_least(acc["ATV"]["ATV_X"]["val"], sd[3], 0.25, 255 * 0.25)
    at_least(acc["ATV"]["ATV_Y"]["val"], sd[4], 0.25, 255 * 0.25)
    at_least(acc["ARC"]["ARC_Acc"]["val"] * FT_PER_MIN_MPS, sd[5], 6.25 * FT_PER_MIN_MPS,
             255 * 6.25 * FT_PER_MIN_MPS)


@settings(max_examples=100, deadline=None)
@given(tracks(), st.floats(1.0e9, 2.0e9))
def test_cat062_reads_back_through_the_oracle(oracle: Oracle, tr: Tracks, t: float) -> None:
    callsigns = {"icao:4840D6": "SWR123", "icao:ABC123": "bad/char"}
    blocks = encode_cat062(tr, t=t, origin=ORIGIN, sac=7, sic=42, service_id=3,
                           callsigns=callsigns)
    refs = [r for b in blocks for r in oracle.parse(b)]
    assert all(r["category"] == 62 for r in refs) and len(refs) == len(tr)
    for i, ref in enumerate(refs):
        _check_track(ref, tr, i, t, {"icao:4840D6": "SWR123"})
        if str(tr.identity[i]) == "icao:ABC123":
            assert "ID" not in ref["I380"]  # not in the ICAO character set: left out


def test_cat062_splits_into_datagrams_and_saturates(oracle: Oracle) -> None:
    n = 40
    x = np.zeros((n, 6))
    x[:, 0] = np.arange(n) * 100.0
    x[0] = (1e7, -1e7, 1e6, 1e4, -1e4, 1e3)  # far outside every item's range
    P = np.broadcast_to(np.diag([4.0, 9.0, 25.0, 1.0, 1.0, 1.0]), (n, 6, 6)).copy()
    P[0] = np.eye(6) * 1e12
    tr = Tracks(id=np.arange(n, dtype=np.int64) + 65530, x=x, P=P,
                status=np.ones(n, np.int8), t_first=np.zeros(n), t_last=np.zeros(n),
                hits=np.ones(n, np.int32), misses=np.zeros(n, np.int32),
                identity=np.full(n, "", dtype=np.str_), category=np.full(n, "", dtype=np.str_),
                sources=np.full(n, 3, np.uint64), flags=np.zeros(n, np.uint16),
                manoeuvre_p=np.zeros(n))
    blocks = encode_cat062(tr, t=T_REF, origin=ORIGIN, sac=1, sic=2, max_block_bytes=300)
    with pytest.raises(SkyfenceError, match="max_block_bytes"):
        encode_cat062(tr, t=T_REF, origin=ORIGIN, sac=1, sic=2, max_block_bytes=100)
    with pytest.raises(SkyfenceError, match="SAC/SIC"):
        encode_cat062(tr, t=T_REF, origin=ORIGIN, sac=256, sic=2)
    assert len(blocks) > 1 and all(len(b) <= 300 for b in blocks)
    assert all(int.from_bytes(b[1:3], "big") == len(b) for b in blocks)
    refs = [r for b in blocks for r in oracle.parse(b)]
    assert [val(r, "I040", "TrkN") for r in refs] == [(65530 + k) % 65536 for k in range(n)]
    far = refs[0]
    assert val(far, "I100", "X") == (2**23 - 1) * 0.5
    assert val(far, "I185", "Vy") == -(2**15) * 0.25
    assert val(far, "I130", "Alt") == 150000.0
    assert far["I500"]["ATV"]["ATV_X"]["val"] == 255 * 0.25
    assert far["I200"]["VERTA"]["val"] == 3  # 1 000 m/s ± 1 000 m/s: undetermined
    assert refs[1]["I200"]["VERTA"]["val"] == 3  # 0 ± 1 m/s: not sure it is level
    assert encode_cat062(Tracks.empty(), t=T_REF, origin=ORIGIN, sac=1, sic=2) == []
    nan = tr.take(np.arange(3))
    nan.x[1, 0] = np.nan
    assert len(oracle.parse(encode_cat062(nan, t=T_REF, origin=ORIGIN, sac=1, sic=2)[0])) == 2


def test_cat062_level_flight() -> None:
    tr = Tracks(id=np.array([5]), x=np.array([[0.0, 0, 100, 10, 0, 0.2]]),
                P=np.eye(6)[None] * 0.04, status=np.array([1], np.int8),
                t_first=np.zeros(1), t_last=np.zeros(1), hits=np.ones(1, np.int32),
                misses=np.zeros(1, np.int32), identity=np.array([""]),
                category=np.array([""]), sources=np.array([1], np.uint64),
                flags=np.zeros(1, np.uint16), manoeuvre_p=np.zeros(1))
    (block,) = encode_cat062(tr, t=T_REF, origin=ORIGIN, sac=1, sic=2)
    rec = gen.Cat_062_1_20.cv_record.parse(ParsingMode.StrictParsing, Bits.from_bytes(block[3:]))
    assert not isinstance(rec, ValueError)
    i200 = rec[0].get_item("200")
    assert i200 is not None and i200.variation.get_item("VERT").as_uint() == 0


# --------------------------------------------------------------------------- framing


@pytest.fixture(scope="module")
def stream(oracle: Oracle) -> list[bytes]:
    """The CAT048/CAT034 recording as its data blocks."""
    data = b"".join(p for _, p in udp_payloads(oracle.samples / "cat_034_048.pcap"))
    blocks, p = [], 0
    while p < len(data):
        n = int.from_bytes(data[p + 1:p + 3], "big")
        blocks.append(data[p:p + n])
        p += n
    return blocks


def _decode(data: bytes, chunks: list[int] | None = None) -> tuple[list[Any], AsterixDecoder]:
    dec = AsterixDecoder(clock=lambda: T_REF)
    out: list[Any] = []
    p = 0
    for c in chunks or []:
        out += dec.feed(data[p:p + c])
        p += c
    out += dec.feed(data[p:])
    out += dec.close()
    return out, dec


def _plots(out: list[Any]) -> list[RadarPlot]:
    return [m for m in out if isinstance(m, RadarPlot)]


def _rejections(out: list[Any]) -> list[Rejected]:
    return [m for m in out if isinstance(m, Rejected)]


def test_decoder_is_a_stream_decoder() -> None:
    assert isinstance(AsterixDecoder(), StreamDecoder)


def test_garbage_before_and_between_blocks(stream: list[bytes]) -> None:
    good = b"".join(stream[:10])
    clean = _plots(_decode(good)[0])
    junk = bytes([0x00, 0x99, 0x05, 0xEE]) * 3
    head = b"".join(stream[:4])
    out, dec = _decode(junk + head + junk + b"".join(stream[4:10]))
    assert _plots(out) == clean
    rej = _rejections(out)
    assert [(r.offset, r.reason.split(":")[0]) for r in rej] == [
        (0, "garbage"), (len(junk) + len(head), "garbage")]
    assert "12 bytes skipped" in rej[0].reason and rej[0].data == junk
    assert dec.counters.rejected == {"garbage": 2}
    assert dec.counters.accepted == len(clean)


def test_plausible_header_with_a_huge_len_does_not_swallow_the_stream(
        stream: list[bytes]) -> None:
    good = b"".join(stream[:10])
    clean = _plots(_decode(good)[0])
    # After garbage: a LEN beyond what a resynchronisation believes, or past the data;
    # the fake header joins the garbage before it.
    for fake in (bytes([48, 0xFF, 0xF0]), bytes([48, 0x1F, 0x00])):  # 65 520, 7 936
        out, _ = _decode(b"\x00" + fake + good)
        assert _plots(out) == clean
        (rej,) = _rejections(out)
        assert rej.offset == 0 and rej.reason.startswith("garbage") and "4 bytes" in rej.reason
    # In step (a damaged LEN): held until the data ends, then the stream is recovered.
    out, _ = _decode(bytes([48, 0xFF, 0xF0]) + good)
    assert _plots(out) == clean
    (rej,) = _rejections(out)
    assert rej.offset == 0 and rej.reason.startswith("truncated block: CAT048 LEN 65520")


def test_bad_len_truncation_and_unsupported_category(stream: list[bytes]) -> None:
    cat062 = bytes.fromhex("3e000a" "b0" "0102" "00" "000100")  # 010, 015, 070
    bad_len = bytes([48, 0x00, 0x02])
    head = b"".join(stream[:3])  # in step from here on
    data = head + bad_len + stream[3] + cat062 + stream[4] + stream[5][:-5]
    out, dec = _decode(data)
    rej = _rejections(out)
    o1 = len(head)
    o2 = o1 + 3 + len(stream[3])
    o3 = o2 + len(cat062) + len(stream[4])
    assert [(r.offset, r.reason.split(":")[0]) for r in rej] == [
        (o1, "bad length"), (o2, "unsupported category"), (o3, "truncated block")]
    assert "LEN 2" in rej[0].reason and "CAT062" in rej[1].reason
    assert rej[2].data == stream[5][:-5][:32]
    assert _plots(out) == _plots(_decode(b"".join(stream[:5]))[0])
    assert dec.counters.n_rejected == 3


def test_a_bad_record_loses_only_the_rest_of_its_block(stream: list[bytes]) -> None:
    big = next(b for b in stream if b[0] == 48 and len(_plots(_decode(b)[0])) >= 2)
    first = _plots(_decode(big)[0])[0]
    parsed = gen.Cat_048_1_32.cv_record.parse(ParsingMode.StrictParsing,
                                              Bits.from_bytes(big[3:]))
    assert not isinstance(parsed, ValueError)
    second = len(big) - len(parsed[1]) // 8  # where the second record starts
    broken = bytearray(big)
    broken[second:second + 5] = b"\xff" * 5  # an FSPEC running past the UAP
    out, _ = _decode(bytes(broken) + stream[0])
    plots = _plots(out)
    assert plots[0] == first and plots[1:] == _plots(_decode(stream[0])[0])
    (rej,) = _rejections(out)
    assert rej.reason.startswith("bad record: CAT048 record 1") and rej.offset == second


def test_datagrams_do_not_run_into_each_other(stream: list[bytes]) -> None:
    dec = AsterixDecoder(clock=lambda: T_REF)
    cut = dec.feed_datagram(stream[0][:-4], t=T_REF)
    assert [r.reason.split(":")[0] for r in _rejections(cut)] == ["truncated block"]
    whole = dec.feed_datagram(stream[1], t=T_REF)
    assert not _rejections(whole) and whole == _decode(stream[1])[0]
    assert _rejections(dec.feed_datagram(b"\x30\x00", t=T_REF))[0].offset == (
        len(stream[0]) - 4 + len(stream[1]))


@FUZZ
@given(st.binary(max_size=3000), st.lists(st.integers(1, 400), max_size=12))
def test_fuzz_random_bytes(data: bytes, chunks: list[int]) -> None:
    whole, dec = _decode(data)
    chunked, _ = _decode(data, chunks)
    assert chunked == whole  # the chunking never changes the outcome
    last = -1
    for m in whole:
        assert isinstance(m, (RadarPlot, AdsbReport, Rejected))
        if isinstance(m, Rejected):
            assert last <= m.offset < max(len(data), 1)
            last = m.offset
        json.dumps(m.to_json(), allow_nan=False)
    assert dec.counters.accepted + dec.counters.n_rejected == len(whole)
    assert dec.counters.bytes_in == len(data)


@FUZZ
@given(st.data())
def test_fuzz_damaged_recording(stream: list[bytes], data: st.DataObject) -> None:
    blocks = stream[:14]
    good = b"".join(blocks)
    kind = data.draw(st.sampled_from(["flip", "insert", "delete"]))
    at = data.draw(st.integers(0, len(good) - 1))
    if kind == "flip":
        damaged = good[:at] + bytes([good[at] ^ data.draw(st.integers(1, 255))]) + good[at + 1:]
    elif kind == "insert":
        damaged = good[:at] + data.draw(st.binary(min_size=1, max_size=40)) + good[at:]
    else:
        damaged = good[:at] + good[at + data.draw(st.integers(1, 40)):]
    chunks = data.draw(st.lists(st.integers(1, 300), max_size=8))
    out, _ = _decode(damaged, chunks)
    assert out == _decode(damaged)[0]
    # Every block wholly before the damage decodes as it did.
    before, p = [], 0
    for b in blocks:
        if p + len(b) > at:
            break
        before += _decode(b)[0]
        p += len(b)
    assert out[:len(before)] == before


@FUZZ
@given(st.data())
def test_fuzz_garbage_between_blocks_is_skipped(stream: list[bytes],
                                                data: st.DataObject) -> None:
    """Garbage that names no ASTERIX category, anywhere between blocks: every block is
    still read, and the garbage is one rejection at its offset."""
    blocks = stream[:14]
    k = data.draw(st.integers(0, len(blocks)))
    junk = data.draw(st.binary(min_size=1, max_size=60).filter(
        lambda b: not any(c in KNOWN_CATEGORIES for c in b)))
    assume(junk)
    damaged = b"".join(blocks[:k]) + junk + b"".join(blocks[k:])
    out, _ = _decode(damaged, data.draw(st.lists(st.integers(1, 300), max_size=8)))
    assert _plots(out) == _plots(_decode(b"".join(blocks))[0])
    (rej,) = _rejections(out)
    assert rej.offset == sum(len(b) for b in blocks[:k])


# --------------------------------------------------------------------------- UDP


def test_listen_udp_on_the_loopback(stream: list[bytes]) -> None:
    got: list[Any] = []

    async def main() -> None:
        ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        dec = AsterixDecoder()
        task = asyncio.create_task(listen_udp("127.0.0.1", 0, dec, got.extend,
                                              on_ready=ready.set_result))
        addr = await asyncio.wait_for(ready, 5.0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for b in stream[:6]:
                tx.sendto(b, addr)
            tx.sendto(stream[6][:-3], addr)
        for _ in range(200):
            if dec.counters.n_rejected:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    expected = [m for b in stream[:6] for m in _decode(b)[0]]
    assert [(p.sac, p.sic, p.range_m) for p in _plots(got)] == [
        (p.sac, p.sic, p.range_m) for p in _plots(expected)]
    assert [r.reason.split(":")[0] for r in _rejections(got)] == ["truncated block"]

