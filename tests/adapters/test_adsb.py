"""ADS-B / Mode S in: Beast, AVR and SBS framing, CRC and address checks, CPR against a
reference decode of a real flight, bad input, the TCP transport, Detections."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pymap3d
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyModeS._bits import crc_remainder
from pyModeS.position import cprNL

from skyfence.adapters.adsb import (
    MESSAGE_SCHEMAS,
    AllCall,
    AvrDecoder,
    BeastDecoder,
    Identification,
    Position,
    RawFrame,
    SbsDecoder,
    SbsMessage,
    Surveillance,
    Velocity,
    parse_beast,
    parse_sbs,
    position_reports,
    stream_tcp,
)
from skyfence.adapters.base import (
    Message,
    PositionReport,
    Rejected,
    StreamDecoder,
    decode_file,
    position_detections,
)
from skyfence.errors import InputError
from skyfence.geo import Origin
from skyfence.geoid import amsl_to_ellipsoid_m

DATA = Path(__file__).resolve().parents[1] / "data" / "adsb"
SAMPLE_PATH = DATA / "sample_dump1090.bin"
SAMPLE = SAMPLE_PATH.read_bytes()
FLIGHT = [json.loads(line) for line in
          (DATA / "full_flight_short_first3000.jsonl").read_text().splitlines()]
#: Paris-CDG aerodrome reference point: the flight starts on its apron.
LFPG = (49.0097, 2.5479)
FT = 0.3048

Output = Message | Rejected


# --------------------------------------------------------------------------- helpers


def beast(data: bytes, mlat: int = 0, signal: int = 0x80) -> bytes:
    """One Beast frame around a reply, 0x1a doubled."""
    kind = {2: b"1", 7: b"2", 14: b"3"}[len(data)]
    body = mlat.to_bytes(6, "big") + bytes([signal]) + data
    return b"\x1a" + kind + body.replace(b"\x1a", b"\x1a\x1a")


def squitter(icao: int, me: int, *, df: int = 17, ca: int = 5) -> bytes:
    """A DF17/18 frame with a valid CRC."""
    n = (df << 107) | (ca << 104) | (icao << 80) | (me << 24)
    return (n | crc_remainder(n, 112)).to_bytes(14, "big")


def all_call(icao: int, *, iid: int = 0) -> bytes:
    n = (11 << 51) | (5 << 48) | (icao << 24)
    return (n | (crc_remainder(n, 56) ^ iid)).to_bytes(7, "big")


def altitude_reply(icao: int, altitude_ft: int) -> bytes:
    """DF4 with a 25-ft altitude code, the address overlaid on the parity."""
    q = (altitude_ft + 1000) // 25
    ac13 = ((q >> 5) << 7) | (((q >> 4) & 1) << 5) | 0x10 | (q & 0xF)
    n = (4 << 51) | (ac13 << 24)
    return (n | (crc_remainder(n, 56) ^ icao)).to_bytes(7, "big")


def cpr(lat: float, lon: float, odd: bool) -> tuple[int, int]:
    """Airborne CPR encoding (DO-260B A.1.7)."""
    i = int(odd)
    dlat = 360.0 / (60 - i)
    yz = math.floor(2**17 * (lat % dlat) / dlat + 0.5)
    rlat = dlat * (yz / 2**17 + math.floor(lat / dlat))
    nl = cprNL(rlat) - i
    dlon = 360.0 / nl if nl > 0 else 360.0
    xz = math.floor(2**17 * (lon % dlon) / dlon + 0.5)
    return yz % 2**17, xz % 2**17


def airborne(lat: float, lon: float, *, odd: bool, altitude_ft: int = 10_000, tc: int = 11
             ) -> int:
    """The ME of an airborne position, altitude in 25-ft steps."""
    q = (altitude_ft + 1000) // 25
    ac12 = ((q >> 4) << 5) | 0x10 | (q & 0xF)
    yz, xz = cpr(lat, lon, odd)
    return (tc << 51) | (ac12 << 36) | (int(odd) << 34) | (yz << 17) | xz


def feed_chunks(decoder: Any, data: bytes, size: int, t: float = math.nan) -> list[Output]:
    out: list[Output] = []
    for i in range(0, len(data), size):
        out += decoder.feed(data[i:i + size], t=t)
    return out + decoder.close()


def as_json(outputs: Sequence[Output]) -> list[dict[str, Any]]:
    return [o.to_json() for o in outputs]


def without_t(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_t(v) for k, v in value.items() if k != "t"}
    if isinstance(value, list):
        return [without_t(v) for v in value]
    return value


def messages(outputs: Sequence[Output]) -> list[Message]:
    return [o for o in outputs if not isinstance(o, Rejected)]


def rejections(outputs: Sequence[Output]) -> list[Rejected]:
    return [o for o in outputs if isinstance(o, Rejected)]


def flight_frame(row: dict[str, Any]) -> str:
    """The reply's hex: the file pads 56-bit replies to 28 digits (see the README)."""
    return row["frame"] if int(row["df"]) >= 16 else row["frame"][:14]


def decode_flight(**options: Any) -> list[list[Output]]:
    """The flight as AVR lines, one feed per frame at its timestamp: outputs per row."""
    decoder = AvrDecoder(**options)
    return [decoder.feed(f"*{flight_frame(r)};\n".encode(), t=r["timestamp"])
            for r in FLIGHT]


@pytest.fixture(scope="module")
def flight() -> list[list[Output]]:
    return decode_flight(reference_lat_deg=LFPG[0], reference_lon_deg=LFPG[1])


def sample_outputs() -> list[Output]:
    decoder = BeastDecoder()
    return decoder.feed(SAMPLE) + decoder.close()


# --------------------------------------------------------------------------- Beast, the sample


def test_sample_frames_types_and_addresses() -> None:
    records, rest = parse_beast(SAMPLE)
    assert rest == b""
    assert all(type(r) is RawFrame for r in records)
    assert len(records) == 239
    assert Counter(r.data[0] >> 3 for r in records) == {
        11: 90, 0: 44, 4: 39, 17: 23, 20: 16, 21: 14, 5: 12, 16: 1}
    assert all(r.mlat_ticks > 0 and 0 <= r.signal <= 255 for r in records)

    decoder = BeastDecoder()
    out = decoder.feed(SAMPLE) + decoder.close()
    got = messages(out)
    assert len(got) + len(rejections(out)) == 239
    # DF0/4/5 replies before their aircraft's first DF11/17 cannot be attributed.
    assert Counter(type(m).__name__ for m in got) == {
        "Surveillance": 120, "AllCall": 90, "Velocity": 8, "Position": 4,
        "OperationalStatus": 4, "TargetState": 4, "AircraftStatus": 2, "Identification": 1}
    assert Counter(m.to_json()["df"] for m in got) == {
        11: 90, 0: 43, 4: 35, 17: 23, 20: 16, 21: 14, 5: 11, 16: 1}
    assert Counter(m.to_json()["icao"] for m in got) == {
        "48520A": 143, "3981E4": 88, "440062": 1, "44CE69": 1}
    assert [r.reason.split(":")[0] for r in rejections(out)] == ["unknown address"] * 6
    assert decoder.counters.accepted == 233
    assert decoder.counters.rejected == {"unknown address": 6}
    assert decoder.counters.bytes_in == len(SAMPLE)


def test_sample_positions_heights_and_accuracy() -> None:
    out = sample_outputs()
    ident = [m for m in out if isinstance(m, Identification)]
    assert [(m.icao, m.callsign, m.category) for m in ident] == [("48520A", "TRA89M", "A3")]
    reports = position_reports(out)
    assert len(reports) == 3
    for r in reports:
        assert r.identity == "icao:48520A"
        assert 43.64 < r.lat_deg < 43.66 and 1.22 < r.lon_deg < 1.24
        # FL380 plus the GNSS−baro difference (+250 ft) of TC19: the GNSS height.
        assert r.height_m == pytest.approx((38_000 + 250) * FT)
        assert r.std_h_m == pytest.approx(30.0 / 2.448)  # NACp 9: EPU 30 m
        assert 22.0 < r.std_v_m < 25.0  # GVA 2: 45 m, and the 25-ft quantisation
        assert r.velocity_enu_mps[1] == pytest.approx(202.18, abs=0.01)
    # The category arrives with the identification, between the second and third.
    assert [r.category for r in reports] == ["", "", "A3"]
    velocity = next(m for m in out if isinstance(m, Velocity))
    assert velocity.groundspeed_kt == pytest.approx(math.hypot(43, 393))
    assert velocity.gnss_minus_baro_ft == 250


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_sample_chunking_does_not_change_the_output(size: int) -> None:
    assert as_json(feed_chunks(BeastDecoder(), SAMPLE, size)) == as_json(sample_outputs())


def test_decode_file_and_protocol() -> None:
    assert as_json(list(decode_file(BeastDecoder(), SAMPLE_PATH, chunk_bytes=100))) == \
        as_json(sample_outputs())
    for decoder in (BeastDecoder(), AvrDecoder(), SbsDecoder()):
        assert isinstance(decoder, StreamDecoder)


def test_receive_time_is_stamped() -> None:
    decoder = BeastDecoder()
    out = decoder.feed(SAMPLE[:2000], t=1_720_000_000.0) + decoder.feed(SAMPLE[2000:], t=5.0)
    assert {m.to_json()["t"] for m in messages(out)} == {1_720_000_000.0, 5.0}
    reports = [m.report for m in out if isinstance(m, Position) and m.report]
    assert reports and all(r.t == m.t for m in out if isinstance(m, Position) and (r := m.report))


# --------------------------------------------------------------------------- AVR


def sample_avr(kind: str) -> bytes:
    lines = []
    for r in parse_beast(SAMPLE)[0]:
        assert isinstance(r, RawFrame)
        stamp = {"*": "", "@": f"{r.mlat_ticks:012X}",
                 "<": f"{r.mlat_ticks:012X}{r.signal:02X}"}[kind]
        lines.append(f"{kind}{stamp}{r.data.hex().upper()};\r\n")
    return "".join(lines).encode()


@pytest.mark.parametrize("kind", ["@", "<"])
def test_avr_with_mlat_counter_decodes_like_beast(kind: str) -> None:
    avr = feed_chunks(AvrDecoder(), sample_avr(kind), 64)
    ref = sample_outputs()
    assert as_json(messages(avr)) == as_json(messages(ref))
    assert [r.reason for r in rejections(avr)] == [r.reason for r in rejections(ref)]


def test_avr_star_lines_without_time_give_no_pairs() -> None:
    # '*' lines carry no counter: without receive times no even/odd pair can be matched.
    out = feed_chunks(AvrDecoder(), sample_avr("*"), 4096)
    assert len(messages(out)) == 233
    assert position_reports(out) == []


def test_avr_bad_lines() -> None:
    text = (b"*8D4852 0A;\n"            # not hex
            b"hello *20000000000000;\n"  # text before a frame
            b"*8D48;\n"                 # 4 digits: Mode A/C
            b"@00000000000102;\n"        # a counter and no reply
            b"*" + b"0" * 200 + b";\n"  # overlong
            b"\n  \r\n"                 # blank lines are fine
            b"*8D4852")                 # cut by the end of the stream
    decoder = AvrDecoder()
    out = decoder.feed(text) + decoder.close()
    assert all(isinstance(o, Rejected) for o in out)
    assert [(o.offset, o.reason) for o in out if isinstance(o, Rejected)] == [
        (0, "bad AVR: not a frame"),
        (12, "bad AVR: not a frame"),
        (18, "unknown address: DF4 parity gives 80665F, not heard in DF11/17/18"),
        (35, "unsupported: Mode A/C reply"),
        (42, "bad AVR: 14 hex digits after '@'"),
        (59, "bad AVR: line longer than 128 bytes"),
        (267, "truncated: the stream ended inside an AVR line"),
    ]


# --------------------------------------------------------------------------- a real flight


def test_flight_agrees_with_the_reference_decode(flight: list[list[Output]]) -> None:
    assert all(len(o) == 1 and not isinstance(o[0], Rejected) for o in flight)
    n_pos = n_alt = n_call = n_vel = n_surface_speed = 0
    worst_m = 0.0
    for row, (m,) in zip(FLIGHT, flight, strict=True):
        assert m.to_json()["icao"] == row["icao24"].upper()
        if "latitude" in row:
            assert isinstance(m, Position) and m.lat_deg is not None and m.lon_deg is not None
            d_north = (m.lat_deg - row["latitude"]) * 111_195.0
            d_east = (m.lon_deg - row["longitude"]) * 111_195.0 * math.cos(math.radians(49.0))
            worst_m = max(worst_m, math.hypot(d_north, d_east))
            n_pos += 1
        if "altitude" in row:
            assert m.to_json()["altitude_ft"] == row["altitude"]
            n_alt += 1
        if "callsign" in row and row["df"] == "17":
            assert isinstance(m, Identification) and m.callsign == row["callsign"]
            n_call += 1
        if row.get("bds") == "09":
            assert isinstance(m, Velocity) and m.groundspeed_kt is not None
            assert m.groundspeed_kt == pytest.approx(row["groundspeed"], abs=1e-9)
            assert m.track_deg == pytest.approx(row["track"], abs=1e-9)
            assert m.vertical_rate_fpm == row["vertical_rate"]
            assert m.gnss_minus_baro_ft == row["geo_minus_baro"]
            n_vel += 1
        if row.get("bds") == "06" and row.get("groundspeed") is not None:
            assert isinstance(m, Position)
            code = (int(row["frame"][8:10], 16) & 7) << 4 | int(row["frame"][10], 16)
            if 13 <= code <= 38:
                # DO-260B (and pyModeS, readsb) step 0.5 kt here; the reference 0.25 kt.
                assert m.groundspeed_kt == 2.0 + (code - 13) * 0.5
                assert row["groundspeed"] == 2.0 + (code - 13) * 0.25
            else:
                assert m.groundspeed_kt == row["groundspeed"]
                n_surface_speed += 1
            assert m.track_deg == pytest.approx(row["track"], abs=1e-9)
    # Every reference position, from the first frame on (the receiver reference
    # resolves single surface frames), to within a micrometre; measured 1e-9 m.
    assert (n_pos, n_alt, n_call, n_vel) == (1424, 1224, 172, 73)
    assert n_surface_speed == 846
    assert worst_m < 1e-6


def test_flight_without_reference(flight: list[list[Output]]) -> None:
    outputs = decode_flight()
    assert all(not isinstance(o[0], Rejected) for o in outputs)
    surface = [o[0] for o in outputs if isinstance(o[0], Position) and o[0].surface]
    assert surface and all(m.lat_deg is None for m in surface)
    airborne = [(r, o[0]) for r, o in zip(FLIGHT, outputs, strict=True)
                if r.get("bds") == "05"]
    assert len(airborne) == 75
    resolved = [(r, m) for r, m in airborne if isinstance(m, Position) and m.lat_deg]
    # The first six wait for an airborne even/odd pair within 10 s; then all agree.
    assert resolved == airborne[6:]
    for r, m in resolved:
        assert isinstance(m, Position)
        assert m.lat_deg == pytest.approx(r["latitude"], abs=1e-9)
        assert m.lon_deg == pytest.approx(r["longitude"], abs=1e-9)


def test_flight_reports(flight: list[list[Output]]) -> None:
    positions = [m for (m,) in flight if isinstance(m, Position) and m.report is not None]
    assert len(positions) == 1424
    assert {m.report.identity for m in positions if m.report} == {"icao:393322"}
    surface = [m.report for m in positions if m.surface and m.report]
    assert len(surface) == 1349
    # The first comes before any altitude: 0 m above mean sea level, σ 1 km.
    first, second = surface[:2]
    assert first.height_m == pytest.approx(
        float(amsl_to_ellipsoid_m(0.0, first.lat_deg, first.lon_deg)), abs=0.3)
    assert first.std_v_m == 1000.0
    # Then the last DF4/20 altitude (575 ft) read as above mean sea level.
    assert second.height_m == pytest.approx(
        float(amsl_to_ellipsoid_m(575 * FT, second.lat_deg, second.lon_deg)), abs=0.3)
    assert 100.0 < second.std_v_m < 101.0
    moving = [r for r in surface if np.isfinite(r.velocity_enu_mps).all()]
    assert moving and all(r.velocity_enu_mps[2] == 0.0 for r in moving)


# --------------------------------------------------------------------------- synthetic frames


def test_implausible_jump_is_rejected_and_the_track_recovers() -> None:
    icao = 0x4840D6
    a, b = (52.0, 4.0), (53.0, 4.0)  # 111 km apart
    frames = [(a, False), (a, True), (b, False), (b, True), (b, False), (b, True)]
    data = b"".join(beast(squitter(icao, airborne(*p, odd=odd)), mlat=int((1 + k * 0.5) * 12e6))
                    for k, (p, odd) in enumerate(frames))
    out = BeastDecoder().feed(data)
    positions = [m for m in out if isinstance(m, Position)]
    where = [None if m.lat_deg is None else round(m.lat_deg) for m in positions]
    assert where == [None, 52, None, None, 53, 53]
    jumps = [r.reason for r in rejections(out)]
    assert len(jumps) == 2 and all(j.startswith("implausible position: 111.") for j in jumps)
    assert positions[-1].lat_deg == pytest.approx(53.0, abs=1e-4)


def test_receiver_reference_resolves_single_frames_and_gnss_height() -> None:
    icao = 0x3C6586
    me = airborne(50.1, 8.6, odd=False, altitude_ft=1_000, tc=20)
    out = BeastDecoder(reference_lat_deg=50.0, reference_lon_deg=8.5).feed(
        beast(squitter(icao, me), mlat=12_000_000))
    (m,) = out
    assert isinstance(m, Position) and m.report is not None
    assert (m.altitude_ft, m.gnss_height_ft, m.nic) == (None, 1_000, None)
    assert m.lat_deg == pytest.approx(50.1, abs=1e-4) and m.lon_deg == pytest.approx(8.6, abs=1e-4)
    # TC20 is a GNSS height above the ellipsoid, 25-ft coded: no geoid, no baro widening.
    assert m.report.height_m == pytest.approx(1_000 * FT)
    assert m.report.std_v_m == pytest.approx(45.0 / 1.96)
    assert m.report.std_h_m == pytest.approx(7.5 / 2.448)  # version 0: NUCp 9, HPL 7.5 m
    # Without the reference, one frame is not enough.
    assert messages(BeastDecoder().feed(beast(squitter(icao, me), mlat=1)))[0].to_json()[
        "lat_deg"] is None


def test_barometric_height_without_gnss_difference() -> None:
    icao = 0x3C6586
    data = b"".join(beast(squitter(icao, airborne(50.1, 8.6, odd=odd, altitude_ft=30_000)),
                          mlat=12_000_000 * (k + 1)) for k, odd in enumerate((False, True)))
    (report,) = position_reports(BeastDecoder().feed(data))
    amsl = 30_000 * FT
    assert report.height_m == pytest.approx(
        float(amsl_to_ellipsoid_m(amsl, report.lat_deg, report.lon_deg)), abs=0.3)
    # Pressure vs true altitude: 100 m of QNH and 4 % of the height for temperature.
    assert report.std_v_m == pytest.approx(math.hypot(100.0, 0.04 * amsl), rel=1e-3)
    assert report.std_h_m == pytest.approx(185.2 / 2.448)  # TC11, version 0: NUCp 7
    assert report.velocity_enu_mps == pytest.approx((math.nan,) * 3, nan_ok=True)


def test_address_parity_needs_a_recent_all_call() -> None:
    icao = 0x4840D6
    frames = [beast(altitude_reply(icao, 5_000), mlat=1 * 12_000_000),
              beast(all_call(icao, iid=3), mlat=2 * 12_000_000),
              beast(altitude_reply(icao, 5_000), mlat=3 * 12_000_000),
              beast(altitude_reply(icao, 5_000), mlat=200 * 12_000_000)]
    out = BeastDecoder().feed(b"".join(frames))
    assert [type(o).__name__ for o in out] == ["Rejected", "AllCall", "Surveillance", "Rejected"]
    assert isinstance(out[1], AllCall) and out[1].icao == "4840D6"
    assert isinstance(out[2], Surveillance) and out[2].altitude_ft == 5_000
    assert all(r.reason.startswith("unknown address: DF4 parity gives 4840D6")
               for r in rejections(out))
    # An interrogator code above 0x7F is no DF11 parity.
    (bad,) = BeastDecoder().feed(beast(all_call(icao, iid=0x80)))
    assert isinstance(bad, Rejected) and bad.reason == "bad CRC: DF11 remainder 000080"


def test_df18_addresses() -> None:
    ident = (4 << 51) | (3 << 48) | 0x04C0_0000_0000
    anonymous = squitter(0xABCDEF, ident, df=18, ca=1)
    tisb = squitter(0xABCDEF, ident, df=18, ca=3)
    out = BeastDecoder().feed(beast(anonymous) + beast(tisb))
    assert isinstance(out[0], Identification)
    assert (out[0].icao, out[0].category) == ("~ABCDEF", "A3")
    assert isinstance(out[1], Rejected)
    assert out[1].reason == "unsupported: DF18 CF3 (coarse TIS-B)"


# --------------------------------------------------------------------------- bad input


def frame_spans() -> list[tuple[int, int]]:
    records = parse_beast(SAMPLE)[0]
    starts = [r.offset for r in records] + [len(SAMPLE)]
    return list(itertools.pairwise(starts))


def test_bad_crc_costs_one_frame() -> None:
    spans = frame_spans()
    k = next(i for i, (s, e) in enumerate(spans) if SAMPLE[s + 1] == 0x33
             and SAMPLE[e - 14] >> 3 == 17 and b"\x1a\x1a" not in SAMPLE[s + 2:e])
    start, end = spans[k]
    bad = bytearray(SAMPLE)
    bad[end - 5] ^= 0x01
    # A corrupt frame's counter can be anything: it must not expire anyone's state.
    bad[start + 2:start + 8] = b"\x7f\xff\xff\xff\xff\xff"
    out = BeastDecoder().feed(bytes(bad))
    rejected = [r for r in rejections(out) if r.reason.startswith("bad CRC")]
    assert len(rejected) == 1 and rejected[0].offset == start
    assert rejected[0].reason.startswith("bad CRC: DF17 remainder ")
    assert len(messages(out)) == 233 - 1


def test_garbage_between_frames_resynchronises() -> None:
    spans = frame_spans()
    cut = spans[100][0]
    junk = b"\x00\xffjunk\x1a\x34status\x1a"  # a Beast type-4 frame reads as garbage too
    truncated = b"\x1a\x33\x00\x00"          # a long frame cut by the next marker
    data = SAMPLE[:cut] + junk + truncated + SAMPLE[cut:]
    out = feed_chunks(BeastDecoder(), data, 5)
    assert as_json(messages(out)) == as_json(messages(sample_outputs()))
    extra = [r for r in rejections(out) if not r.reason.startswith("unknown address")]
    assert [(r.offset, r.reason) for r in extra] == [
        (cut, f"garbage: {len(junk)} bytes that start no frame"),
        (cut + len(junk), "truncated: Beast frame cut short by a frame marker"),
    ]
    assert extra[0].data == junk
    # The frames after the junk keep their stream offsets.
    later = rejections(feed_chunks(BeastDecoder(), data, 4096))
    assert later[-1].offset == rejections(sample_outputs())[-1].offset + len(junk) + 4


def test_escape_at_the_end_of_a_chunk() -> None:
    at = SAMPLE.index(b"\x1a\x1a") + 1  # between the two bytes of an escaped 0x1a
    decoder = BeastDecoder()
    out = decoder.feed(SAMPLE[:at]) + decoder.feed(SAMPLE[at:]) + decoder.close()
    assert as_json(out) == as_json(sample_outputs())


def test_truncated_frame_at_the_end_and_the_decoder_goes_on() -> None:
    start, _ = frame_spans()[-1]
    decoder = BeastDecoder()
    out = decoder.feed(SAMPLE[:-3]) + decoder.close()
    assert isinstance(out[-1], Rejected)
    assert (out[-1].offset, out[-1].reason) == (
        start, "truncated: the stream ended inside a Beast frame")
    assert decoder.counters.rejected["truncated"] == 1
    # A new connection: state is kept, offsets go on.
    again = decoder.feed(SAMPLE[start:])
    assert len(messages(again)) == 1


def test_unknown_and_unsupported_types() -> None:
    test_message = squitter(0x4840D6, 23 << 51)
    comm_d = ((24 << 107) | 1).to_bytes(14, "big")
    mode_ac = b"\x02\x10"
    data = beast(test_message) + beast(comm_d) + beast(mode_ac)
    out = BeastDecoder().feed(data)
    assert [r.reason for r in rejections(out)] == [
        "unsupported: DF17 TC23", "unsupported: DF24 (Comm-D)", "unsupported: Mode A/C reply"]
    records = parse_beast(data)[0]
    assert [r.offset for r in rejections(out)] == [r.offset for r in records]


def test_text_on_the_beast_port_is_reported_every_64_kib() -> None:
    text = sample_avr("*") * 40  # an AVR feed on the Beast port: no 0x1a at all
    whole = feed_chunks(BeastDecoder(), text, len(text))
    assert as_json(feed_chunks(BeastDecoder(), text, 1000)) == as_json(whole)
    full, rest = divmod(len(text), 1 << 16)
    assert [(r.offset, r.reason) for r in rejections(whole)] == [
        (k << 16, "garbage: 65536 bytes that start no frame") for k in range(full)] + [
        (full << 16, f"garbage: {rest} bytes that start no frame")]
    assert rejections(whole)[1].data == text[1 << 16:(1 << 16) + 32]
    assert len(whole) == full + 1


@pytest.mark.parametrize("make", [BeastDecoder, AvrDecoder, SbsDecoder])
def test_a_megabyte_of_random_bytes(make: Any) -> None:
    noise = random.Random(1090).randbytes(1 << 20)
    decoder = make()
    out = feed_chunks(decoder, noise, 65_536)
    assert out and all(isinstance(o, Rejected) for o in out)
    offsets = [o.offset for o in out if isinstance(o, Rejected)]
    assert offsets == sorted(offsets) and offsets[0] >= 0 and offsets[-1] < len(noise)
    assert "decode error" not in decoder.counters.rejected
    # ... and the stream goes on.
    clean = {BeastDecoder: SAMPLE, AvrDecoder: sample_avr("@"),
             SbsDecoder: SBS_GOOD}[make]
    after = messages(decoder.feed(clean) + decoder.close())
    fresh = messages(feed_chunks(make(), clean, len(clean)))
    assert as_json(after) == as_json(fresh)


# --------------------------------------------------------------------------- fuzzing

SAMPLE_FRAMES = [SAMPLE[s:e] for s, e in frame_spans()]


def assert_well_behaved(make: Any, data: bytes, cuts: list[int]) -> None:
    whole = make()
    out = whole.feed(data) + whole.close()
    for o in out:
        assert isinstance(o, Message | Rejected)
        json.dumps(o.to_json(), allow_nan=False)
        if isinstance(o, Rejected):
            assert 0 <= o.offset < len(data)
    assert "decode error" not in whole.counters.rejected
    chunked = make()
    pieces, start = [], 0
    for c in sorted(set(cuts)):
        if 0 < c < len(data):
            pieces.append(data[start:c])
            start = c
    pieces.append(data[start:])
    again = [o for p in pieces for o in chunked.feed(p)] + chunked.close()
    assert as_json(again) == as_json(out)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.one_of(st.sampled_from(SAMPLE_FRAMES), st.binary(max_size=24),
                                st.sampled_from([b"\x1a", b"\x1a\x1a", b"\x1a3", b"\x1a2"])),
                      max_size=40),
       cuts=st.lists(st.integers(0, 2_000), max_size=12))
def test_fuzz_beast(parts: list[bytes], cuts: list[int]) -> None:
    assert_well_behaved(BeastDecoder, b"".join(parts), cuts)


AVR_LINES = sample_avr("@").splitlines(keepends=True)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.one_of(
    st.sampled_from(AVR_LINES),
    st.text(alphabet="*@<;\n\r 0123456789abcdefABCDEFxyz", max_size=40).map(str.encode),
    st.binary(max_size=20)), max_size=30),
    cuts=st.lists(st.integers(0, 1_500), max_size=12))
def test_fuzz_avr(parts: list[bytes], cuts: list[int]) -> None:
    assert_well_behaved(AvrDecoder, b"".join(parts), cuts)


SBS_FIELD = st.one_of(st.just(""), st.sampled_from(
    ["MSG", "3", "4CA2D6", "2024/07/06", "07:23:09.525", "36000", "-1", "0", "51.5", "7000",
     "~ABCDEF", "abc", "nan", "1e999", "95.0"]), st.text(max_size=8))


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.one_of(
    st.lists(SBS_FIELD, min_size=1, max_size=24).map(lambda f: ",".join(f) + "\n"),
    st.text(max_size=60)), max_size=12).map(lambda ls: "".join(ls).encode()),
    cuts=st.lists(st.integers(0, 1_500), max_size=12))
def test_fuzz_sbs(lines: bytes, cuts: list[int]) -> None:
    assert_well_behaved(SbsDecoder, lines, cuts)


# --------------------------------------------------------------------------- SBS

SBS_GOOD = (
    b"MSG,1,1,1,4CA2D6,1,2024/07/06,07:23:09.525,2024/07/06,07:23:09.563,RYR4KG  ,,,,,,,,,,,0\n"
    b"MSG,4,1,1,4CA2D6,1,2024/07/06,07:23:09.900,2024/07/06,07:23:09.910,,,452,90.0,,,-640,,,,,0\n"
    b"MSG,3,1,1,4CA2D6,1,2024/07/06,07:23:10.000,2024/07/06,07:23:10.010,,36000,,,51.45735,"
    b"-1.02826,,,0,0,0,0\n"
    b"MSG,6,1,1,4CA2D6,1,2024/07/06,07:23:11,2024/07/06,07:23:11,,36000,,,,,,7000,0,0,0,0\r\n"
    b"MSG,2,1,1,~0A1B2C,1,2024/07/06,07:23:12.5,2024/07/06,07:23:12.5,,,12,180.0,51.1,-1.2,,,,,,-1\n"
    b"MSG,8,1,1,3C6586,1,,,,,,,,,,,,,,,,0\n"
)


def test_sbs_fields_times_and_reports() -> None:
    out = feed_chunks(SbsDecoder(), SBS_GOOD, 17, t=1234.5)
    assert all(isinstance(o, SbsMessage) for o in out)
    ident, velocity, position, squawk, surface, all_call_ = out
    assert isinstance(ident, SbsMessage) and ident.callsign == "RYR4KG"
    assert ident.t == pytest.approx(1_720_250_589.525)  # 2024-07-06 07:23:09.525 UTC
    assert isinstance(velocity, SbsMessage)
    assert (velocity.groundspeed_kt, velocity.track_deg, velocity.vertical_rate_fpm) == (
        452.0, 90.0, -640.0)
    assert isinstance(position, SbsMessage) and position.report is not None
    r = position.report
    assert (r.lat_deg, r.lon_deg, r.identity, r.t) == (51.45735, -1.02826, "icao:4CA2D6",
                                                        position.t)
    assert r.height_m == pytest.approx(
        float(amsl_to_ellipsoid_m(36_000 * FT, 51.45735, -1.02826)), abs=0.3)
    assert r.velocity_enu_mps[0] == pytest.approx(452 * 1852 / 3600)
    assert r.velocity_enu_mps[2] == pytest.approx(-640 * FT / 60)
    assert isinstance(squawk, SbsMessage) and squawk.squawk == "7000" and squawk.report is None
    assert isinstance(surface, SbsMessage) and surface.on_ground is True
    assert surface.report is not None and surface.report.identity == "icao:~0A1B2C"
    assert surface.report.std_v_m == 1000.0  # no altitude on the ground: unknown height
    assert surface.report.velocity_enu_mps == pytest.approx((0.0, -12 * 1852 / 3600, 0.0),
                                                            abs=1e-9)
    assert isinstance(all_call_, SbsMessage) and all_call_.t == 1234.5  # no date: receive time


def test_sbs_time_zone() -> None:
    line = SBS_GOOD.splitlines()[0].decode()
    utc = parse_sbs(line)
    paris = parse_sbs(line, tz=ZoneInfo("Europe/Paris"))
    assert isinstance(utc, SbsMessage) and isinstance(paris, SbsMessage)
    assert utc.t - paris.t == pytest.approx(2 * 3600)


def test_sbs_malformed_lines() -> None:
    good = SBS_GOOD.splitlines(keepends=True)[2]
    bad = [
        b"MSG,3,1,1,4CA2D6,1\n",
        b"MSG,9,1,1,4CA2D6,1,,,,,,,,,,,,,,,,0\n",
        b"MSG,3,1,1,XYZ123,1,,,,,,,,,,,,,,,,0\n",
        b"MSG,3,1,1,4CA2D6,1,,,,,,FL360,,,,,,,,,,0\n",
        b"MSG,3,1,1,4CA2D6,1,,,,,,,,,51.5,,,,,,,0\n",
        b"MSG,3,1,1,4CA2D6,1,,,,,,,,,95.5,1.0,,,,,,0\n",
        b"MSG,6,1,1,4CA2D6,1,,,,,,,,,,,,8888,,,,0\n",
        b"MSG,3,1,1,4CA2D6,1,2024/13/45,07:23:10,,,,,,,,,,,,,,0\n",
        b"MSG,8,1,1,4CA2D6,1,,,,,,,,,,,,,,,,yes\n",
        b"AIR,,333,1234,4CA2D6,1234,2024/07/06,07:23:09.525,2024/07/06,07:23:09.525\n",
        b"\xff\xfe not text\n",
        b"hello\n",
        b"x" * 600 + b"\n",
    ]
    data = b"".join(line + good for line in bad)
    decoder = SbsDecoder()
    out = feed_chunks(decoder, data, 50)
    assert [type(o).__name__ for o in out] == ["Rejected", "SbsMessage"] * len(bad)
    reasons = [o.reason for o in out if isinstance(o, Rejected)]
    assert reasons == [
        "bad SBS: 6 fields, expected 22",
        "bad SBS: transmission type '9' is not 1–8",
        "bad SBS: hex ident 'XYZ123' is not 6 hex digits",
        "bad SBS: field 12 (altitude) 'FL360' is not a number",
        "bad SBS: a latitude without a longitude, or the reverse",
        "bad SBS: position 95.5, 1.0 is off the globe",
        "bad SBS: squawk '8888' is not 4 octal digits",
        "bad SBS: date/time '2024/13/45' '07:23:10': month must be in 1..12",
        "bad SBS: on-ground flag 'yes' is not 0 or -1",
        "unsupported: SBS AIR record",
        "bad SBS: not ASCII",
        "bad SBS: not a BaseStation record",
        "bad SBS: line longer than 512 bytes",
    ]
    starts = np.cumsum([0] + [len(b) + len(good) for b in bad[:-1]])
    assert [o.offset for o in out if isinstance(o, Rejected)] == starts.tolist()
    assert decoder.counters.rejected == {"bad SBS": 12, "unsupported": 1}


# --------------------------------------------------------------------------- transport


def test_stream_tcp_reconnects_and_decodes_like_the_file() -> None:
    cut = frame_spans()[120][0]
    halves = [SAMPLE[:cut], SAMPLE[cut:]]

    async def main() -> list[Output]:
        served: list[int] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            part = halves[min(len(served), 1)]
            served.append(len(part))
            for i in range(0, len(part), 500):  # a few writes, then hang up
                writer.write(part[i:i + 500])
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        got: list[Output] = []
        decoder = BeastDecoder()
        task = asyncio.create_task(stream_tcp("127.0.0.1", port, decoder, got.extend,
                                              reconnect_backoff_s=0.01))
        async with asyncio.timeout(10.0):
            while len(got) < 239:
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        server.close()
        await server.wait_closed()
        assert served[:2] == [len(halves[0]), len(halves[1])]
        return got

    got = asyncio.run(main())
    # Live, intervals come from receive times, and the recording arrives within
    # milliseconds: the same as decoding the file at one receive time.
    file = BeastDecoder()
    assert without_t(as_json(got)) == without_t(as_json(file.feed(SAMPLE, t=0.0)))
    assert len(position_reports(got)) == 2
    assert all(math.isfinite(m.to_json()["t"]) for m in messages(got))


def test_stream_tcp_keeps_trying_a_closed_port() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        task = asyncio.create_task(stream_tcp("127.0.0.1", port, BeastDecoder(),
                                              lambda out: None, reconnect_backoff_s=0.01,
                                              max_backoff_s=0.02))
        await asyncio.sleep(0.1)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


# --------------------------------------------------------------------------- detections, schema


def test_position_detections_round_trip(flight: list[list[Output]]) -> None:
    reports = position_reports([o for out in flight for o in out])
    origin = Origin(lat_deg=LFPG[0], lon_deg=LFPG[1], alt_m=100.0)
    det = position_detections(reports, origin, sensor=3)
    assert len(det) == len(reports) == 1424
    lat = np.array([r.lat_deg for r in reports])
    lon = np.array([r.lon_deg for r in reports])
    h = np.array([r.height_m for r in reports])
    e, n, u = pymap3d.geodetic2enu(lat, lon, h, origin.lat_deg, origin.lon_deg, origin.alt_m)
    np.testing.assert_allclose(det.z, np.column_stack([e, n, u]), atol=1e-6)
    np.testing.assert_allclose(det.R[:, 0, 0], [r.std_h_m**2 for r in reports])
    np.testing.assert_allclose(det.R[:, 2, 2], [r.std_v_m**2 for r in reports])
    assert (det.sensor == 3).all() and set(det.identity) == {"icao:393322"}
    assert np.array_equal(det.t, [r.t for r in reports])
    # The apron is within a few kilometres of the reference point, at about 575 ft.
    assert np.abs(det.z[:1349, :2]).max() < 5_000.0


def test_messages_follow_their_declared_schema(flight: list[list[Output]]) -> None:
    outputs = [o for out in flight for o in out] + sample_outputs() + \
        feed_chunks(SbsDecoder(), SBS_GOOD, 4096)
    seen = set()
    report_fields = [f for f in PositionReport.__dataclass_fields__]
    for m in messages(outputs):
        doc = m.to_json()
        assert list(doc) == list(MESSAGE_SCHEMAS[doc["type"]].names)
        if doc.get("report") is not None:
            assert list(doc["report"]) == report_fields
        json.dumps(doc, allow_nan=False)
        seen.add(doc["type"])
    assert seen == set(MESSAGE_SCHEMAS)


@pytest.mark.parametrize("options", [
    {"reference_lat_deg": 50.0},
    {"reference_lat_deg": 95.0, "reference_lon_deg": 0.0},
    {"max_speed_mps": -1.0},
    {"pair_window_s": math.nan},
    {"mlat_clock_hz": -12e6},
])
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        BeastDecoder(**options)
    with pytest.raises(InputError):
        SbsDecoder(timezone="Mars/Olympus_Mons")
