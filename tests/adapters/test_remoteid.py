"""The Remote ID stream decoder: the real captures, identities per transmitter, how a
Location becomes a PositionReport, the batch path against the scalar one, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.adapters.base import (
    PositionReport,
    Rejected,
    StreamDecoder,
    decode_file,
    position_detections,
)
from skyfence.adapters.pcap import (
    LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
    LINKTYPE_IEEE802_11,
    LINKTYPE_IEEE802_11_RADIOTAP,
    encode_pcap,
    encode_pcapng,
)
from skyfence.adapters.remoteid import (
    HORIZONTAL_95_TO_SIGMA,
    VERTICAL_95_TO_SIGMA,
    RemoteIdDecoder,
    RemoteIdPosition,
    position_reports,
    select_basic_id,
)
from skyfence.adapters.remoteid_carriers import (
    Frame,
    encode_beacon_frame,
    encode_ble_adv,
    encode_ble_phdr,
    encode_bt_service_data,
    encode_nan_frame,
    encode_radiotap,
)
from skyfence.adapters.remoteid_codec import (
    BasicId,
    IdType,
    Location,
    MessagePack,
    OperatorId,
    System,
    encode,
)
from skyfence.geo import Origin
from skyfence.geoid import geoid_height_m

DATA = Path(__file__).resolve().parent.parent / "data" / "remoteid"
BEACONS = DATA / "odid_wifi_bcn_sample.pcap"
NAN = DATA / "odid_wifi_sample.pcap"
MAC = "84:cc:a8:60:43:24"
FUZZ = settings(max_examples=200, deadline=None)
T0 = 1_700_000_000.0  # 22:13:20 UTC, 800 s after the hour


def decode_path(path: Path, **kw: object) -> tuple[RemoteIdDecoder, list[object]]:
    d = RemoteIdDecoder(**kw)  # type: ignore[arg-type]
    return d, list(decode_file(d, path, chunk_bytes=333))


def decode_bytes(data: bytes, **kw: object) -> tuple[RemoteIdDecoder, list[object]]:
    d = RemoteIdDecoder(**kw)  # type: ignore[arg-type]
    return d, [*d.feed(data), *d.close()]


def positions(items: list[object]) -> list[RemoteIdPosition]:
    return [x for x in items if isinstance(x, RemoteIdPosition)]


def rejections(items: list[object]) -> list[Rejected]:
    return [x for x in items if isinstance(x, Rejected)]


def same_json(a: list[object], b: list[object]) -> None:
    """Two decoder outputs agree, floats to 1e-9 relative (sin/cos may differ in an ulp)."""
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        jx, jy = x.to_json(), y.to_json()  # type: ignore[attr-defined]
        assert jx.keys() == jy.keys()
        for k in jx:
            if isinstance(jx[k], str):
                assert jx[k] == jy[k], k
            else:  # numbers, None (NaN) and lists of them
                np.testing.assert_allclose(np.array(jx[k], dtype=float),
                                           np.array(jy[k], dtype=float), rtol=1e-9,
                                           atol=1e-9, err_msg=k)


def test_is_a_stream_decoder() -> None:
    assert isinstance(RemoteIdDecoder(), StreamDecoder)


# --- the real captures ---------------------------------------------------------------

@pytest.mark.parametrize("batch_min", [1, 10**9])
def test_beacon_capture(batch_min: int) -> None:
    d, out = decode_path(BEACONS, batch_min_messages=batch_min)
    assert not rejections(out)
    got = positions(out)
    assert len(got) == 21 and len(out) == 21
    assert d.counters.accepted == 21 * 5
    first = got[0]
    r = first.report
    assert (r.lat_deg, r.lon_deg) == (45.5457468, -122.9681496)
    assert r.identity == "rid:MFG1A0123456789"
    assert first.uas_id == "MFG1A0123456789"
    assert first.uas_id_type == IdType.NONE  # the capture leaves the ID type undeclared
    assert r.category == "0"
    assert first.operator_id == "GBR-OP-123ABCD"
    assert (first.operator_lat_deg, first.operator_lon_deg) == (45.5443876, -122.9726866)
    assert (first.transmitter, first.carrier) == (MAC, "wifi-beacon")
    assert r.height_m == 237.0 and first.altitude_source == "geodetic"
    assert r.std_h_m == pytest.approx(30.0 / HORIZONTAL_95_TO_SIGMA)  # code 9: < 30 m
    assert r.std_v_m == pytest.approx(25.0 / VERTICAL_95_TO_SIGMA)  # code 3: < 25 m
    # 20.5 m/s (82 quarter-metres) on a track of 92°; vertical speed unknown (63 m/s).
    ve, vn, vu = r.velocity_enu_mps
    assert (ve, vn) == pytest.approx((20.5 * math.sin(math.radians(92)),
                                      20.5 * math.cos(math.radians(92))))
    assert math.isnan(vu)
    # The capture's timestamps are all 0 (8 minutes from the capture time): not believed.
    assert r.t == pytest.approx(1621633931.161999)
    assert first.time_source == "capture"
    assert all(p.report.identity == "rid:MFG1A0123456789" for p in got)
    lat = np.array([p.report.lat_deg for p in got])
    lon = np.array([p.report.lon_deg for p in got])
    assert np.all(np.abs(lat - 45.5457468) < 0.01) and np.all(np.abs(lon + 122.968) < 0.01)
    assert np.all(np.diff([p.report.t for p in got]) > 0)
    assert d.transmitter_identity(MAC) == "rid:MFG1A0123456789"
    assert d.operator_id(MAC) == "GBR-OP-123ABCD"
    system = d.system(MAC)
    assert system is not None and (system.category_eu, system.class_eu) == (1, 5)


def test_nan_capture() -> None:
    d, out = decode_path(NAN)
    assert not rejections(out)
    got = positions(out)
    assert len(got) == 31
    assert {p.carrier for p in got} == {"wifi-nan", "wifi-beacon"}
    assert sum(p.carrier == "wifi-nan" for p in got) == 16
    assert d.ignored_packets == 21  # the NAN synchronisation beacons
    assert d.operator_id(MAC) == "GBR-OP-123ABCD"
    # This capture has no Basic ID: the positions carry the transmitter but no identity.
    assert {p.report.identity for p in got} == {""}
    assert all(p.transmitter == MAC for p in got)
    assert got[-1].operator_id == "GBR-OP-123ABCD"
    assert all(abs(p.report.lat_deg - 45.545) < 0.01 for p in got)
    assert all(abs(p.report.lon_deg + 122.972) < 0.01 for p in got)


@pytest.mark.parametrize("path", [BEACONS, NAN])
def test_chunking_and_the_batch_path_do_not_change_the_output(path: Path) -> None:
    data = path.read_bytes()
    _, whole = decode_bytes(data)
    for chunk in (1, 50, 4096):
        d = RemoteIdDecoder(batch_min_messages=2)
        out: list[object] = []
        for i in range(0, len(data), chunk):
            out += d.feed(data[i:i + chunk])
        out += d.close()
        same_json(out, whole)
    _, scalar = decode_bytes(data, batch_min_messages=10**9)
    _, batch = decode_bytes(data, batch_min_messages=1)
    same_json(scalar, batch)


def test_reports_become_detections() -> None:
    _, out = decode_path(BEACONS)
    reports = position_reports(out)
    assert len(reports) == 21 and all(isinstance(r, PositionReport) for r in reports)
    det = position_detections(reports, Origin(45.5443876, -122.9726866, 200.0), sensor=3)
    assert det.z.shape == (21, 3)
    assert np.all(np.linalg.norm(det.z[:, :2], axis=1) < 1000)
    assert set(det.identity.tolist()) == {"rid:MFG1A0123456789"}


# --- synthetic captures: identity, height, accuracy, velocity, time --------------------

def beacon(t: float, mac: str, *messages: object, counter: int = 0) -> tuple[float, bytes]:
    pack = encode(MessagePack(tuple(messages)))  # type: ignore[arg-type]
    return t, encode_radiotap(encode_beacon_frame(pack, transmitter=mac, counter=counter))


def run(packets: list[tuple[float, bytes]], **kw: object) -> tuple[RemoteIdDecoder,
                                                                      list[object]]:
    return decode_bytes(encode_pcap(packets, linktype=LINKTYPE_IEEE802_11_RADIOTAP), **kw)


LOC = Location(lat_deg=47.0, lon_deg=8.0, geodetic_altitude_m=500.0, speed_mps=10.0,
               track_rad=math.radians(90), vertical_speed_mps=-1.5, horizontal_accuracy=10,
               vertical_accuracy=4)


def test_identity_prefers_the_serial_and_is_kept_per_transmitter() -> None:
    a, b = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
    session = BasicId(id_type=IdType.SPECIFIC_SESSION, ua_type=2, uas_id="\x01\x02\xab")
    serial = BasicId(id_type=IdType.SERIAL_NUMBER, ua_type=2, uas_id="1596A123456789")
    packets = [
        beacon(T0, a, LOC),  # nothing known yet
        beacon(T0 + 1, a, session, LOC),
        beacon(T0 + 2, b, BasicId(id_type=IdType.CAA_REGISTRATION, ua_type=1,
                                  uas_id="FIN87astrdge12k8"), LOC),
        beacon(T0 + 3, a, serial, LOC),
        beacon(T0 + 4, a, session, LOC),  # a later session ID does not displace the serial
        beacon(T0 + 5, b, LOC),
    ]
    for batch_min in (1, 10**9):
        _, out = run(packets, batch_min_messages=batch_min)
        got = positions(out)
        assert [p.report.identity for p in got] == [
            "", "rid:0102ab", "rid:FIN87astrdge12k8", "rid:1596A123456789",
            "rid:1596A123456789", "rid:FIN87astrdge12k8"]
        assert [p.report.category for p in got] == ["", "2", "1", "2", "2", "1"]
        assert [p.uas_id_type for p in got] == [-1, 4, 2, 1, 1, 2]


def test_select_basic_id_skips_empty_ids() -> None:
    assert select_basic_id([BasicId(id_type=1, uas_id=""), BasicId(id_type=0, uas_id="X")]
                           ) == BasicId(id_type=0, uas_id="X")
    assert select_basic_id([]) is None


def test_geodetic_height_accuracy_and_velocity() -> None:
    _, out = run([beacon(T0, MAC, LOC)])
    [p] = positions(out)
    r = p.report
    assert (r.lat_deg, r.lon_deg, r.height_m) == (47.0, 8.0, 500.0)
    assert r.std_h_m == pytest.approx(10.0 / 2.448, rel=2e-4)  # 2.4477 = √χ²₂(0.95)
    assert r.std_v_m == pytest.approx(10.0 / 1.96, rel=1e-4)
    assert r.velocity_enu_mps == pytest.approx((10.0, 0.0, -1.5), abs=1e-12)


def test_pressure_altitude_is_taken_as_amsl_and_widened() -> None:
    loc = Location(lat_deg=47.0, lon_deg=8.0, pressure_altitude_m=600.0, baro_accuracy=4)
    for batch_min in (1, 10**9):
        _, out = run([beacon(T0, MAC, loc)], batch_min_messages=batch_min,
                     pressure_altitude_std_m=80.0)
        [p] = positions(out)
        n = float(geoid_height_m(47.0, 8.0))
        assert p.report.height_m == pytest.approx(600.0 + n)
        assert p.report.std_v_m == pytest.approx(math.hypot(10.0 / VERTICAL_95_TO_SIGMA, 80.0))
        assert p.altitude_source == "pressure"


def test_no_altitude_and_unknown_accuracy() -> None:
    loc = Location(lat_deg=47.0, lon_deg=8.0, speed_mps=0.0)
    _, out = run([beacon(T0, MAC, loc)])
    [p] = positions(out)
    r = p.report
    assert math.isnan(r.height_m) and r.std_v_m == math.inf
    assert p.altitude_source == "none"
    assert r.std_h_m == pytest.approx(18520.0 / HORIZONTAL_95_TO_SIGMA)
    ve, vn, vu = r.velocity_enu_mps
    assert (ve, vn) == (0.0, 0.0)  # standing still: the unknown track does not matter
    assert math.isnan(vu)
    assert p.to_json()["std_v_m"] is None


def test_location_without_a_position_gives_no_report() -> None:
    d, out = run([beacon(T0, MAC, Location(geodetic_altitude_m=100.0))])
    assert out == [] and d.counters.accepted == 1


@pytest.mark.parametrize(("capture_s", "stamp_s", "expected_s", "source"), [
    (800.5, 799.8, 799.8, "message"),  # same hour, 0.7 s latency
    (3600.4, 3599.9, 3599.9, "message"),  # the message is from the previous hour
    (3599.9, 0.3, 3600.3, "message"),  # a fast capture clock just before the hour
    (800.5, 790.0, 800.5, "capture"),  # 10.5 s away: not believed
    (800.5, math.nan, 800.5, "capture"),
])
def test_message_timestamp_refines_the_capture_time(capture_s: float, stamp_s: float,
                                                    expected_s: float, source: str) -> None:
    hour = 3600.0 * 472_000
    loc = Location(lat_deg=47.0, lon_deg=8.0, timestamp_s=stamp_s)
    for batch_min in (1, 10**9):
        _, out = run([beacon(hour + capture_s, MAC, loc)], batch_min_messages=batch_min)
        [p] = positions(out)
        assert p.report.t == pytest.approx(hour + expected_s, abs=1e-6)
        assert p.time_source == source


def test_mixed_carriers_in_pcapng_and_bluetooth() -> None:
    loc = encode(LOC)
    basic = encode(BasicId(id_type=1, ua_type=2, uas_id="BT5SERIAL"))
    pack = encode(MessagePack((BasicId(id_type=1, ua_type=2, uas_id="BT5SERIAL"), LOC)))
    ble = "11:22:33:44:55:66"
    legacy_id = encode_ble_phdr(encode_ble_adv(encode_bt_service_data(basic, counter=1),
                                               advertiser=ble))
    legacy_loc = encode_ble_phdr(encode_ble_adv(encode_bt_service_data(loc, counter=2),
                                                advertiser=ble))
    extended = encode_ble_phdr(encode_ble_adv(encode_bt_service_data(pack, counter=3),
                                              advertiser=ble, extended=True), coded=True)
    data = encode_pcapng([(T0, legacy_id), (T0 + 1, legacy_loc), (T0 + 2, extended)],
                         linktype=LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR, big_endian=True)
    data += encode_pcapng([(T0 + 3, encode_nan_frame(pack, transmitter=MAC, counter=4))],
                          linktype=LINKTYPE_IEEE802_11)
    _, out = decode_bytes(data)
    assert not rejections(out)
    got = positions(out)
    assert [(p.carrier, p.transmitter, p.report.identity) for p in got] == [
        ("bt-legacy", ble, "rid:BT5SERIAL"), ("bt-extended", ble, "rid:BT5SERIAL"),
        ("wifi-nan", MAC, "rid:BT5SERIAL")]


def test_feed_frames_takes_payloads_already_out_of_their_carrier() -> None:
    d = RemoteIdDecoder()
    pack = encode(MessagePack((OperatorId(operator_id="OP-9"), LOC)))
    out = d.feed_frames([Frame(T0, "hci:1", "bt-extended", 0, pack),
                         Rejected(5, "from upstream")])
    [p, r] = out
    assert isinstance(p, RemoteIdPosition) and p.operator_id == "OP-9"
    assert isinstance(r, Rejected) and d.counters.rejected["from upstream"] == 1


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x20", b"\x12", bytes(24), bytes(26),
                                     b"\x12" * 26, b"\xf2\x19\x01"])
@pytest.mark.parametrize("batch_min", [1, 10**9])
def test_frames_with_short_or_long_payloads_are_rejected(payload: bytes, batch_min: int
                                                         ) -> None:
    d = RemoteIdDecoder(batch_min_messages=batch_min)
    [r] = d.feed_frames([Frame(T0, MAC, "wifi-beacon", 0, payload, 77)])
    assert isinstance(r, Rejected) and r.offset == 77


def test_beacon_element_with_a_counter_and_no_message() -> None:
    frame = encode_beacon_frame(b"", transmitter=MAC, counter=1)
    _, out = decode_bytes(encode_pcap([(T0, frame)], linktype=LINKTYPE_IEEE802_11))
    [r] = out
    assert isinstance(r, Rejected) and "bad message length" in r.reason


def test_system_message_gives_the_operator_position() -> None:
    system = System(operator_lat_deg=47.001, operator_lon_deg=8.002, operator_altitude_m=480.0)
    _, out = run([beacon(T0, MAC, system, LOC)])
    [p] = positions(out)
    assert (p.operator_lat_deg, p.operator_lon_deg, p.operator_altitude_m) == (
        47.001, 8.002, 480.0)


# --- bad input ---------------------------------------------------------------------------

def test_truncated_capture() -> None:
    data = BEACONS.read_bytes()
    d, out = decode_bytes(data[:-50])
    assert len(positions(out)) == 20
    [r] = rejections(out)
    assert "truncated" in r.reason and r.offset == len(data) - 207 - 16
    assert d.counters.n_rejected == 1


def test_wrong_link_type_is_rejected_once() -> None:
    data = encode_pcap([(T0 + i, bytes(60)) for i in range(5)], linktype=1)
    d, out = decode_bytes(data)
    [r] = out
    assert isinstance(r, Rejected) and "link type 1" in r.reason and r.offset == 40
    assert d.unsupported_packets == 4


def test_bad_pack_and_unknown_message_type_are_rejected_with_stream_offsets() -> None:
    good = encode(MessagePack((OperatorId(operator_id="OP"), LOC)))
    wrong_count = bytes((0xF2, 25, 3)) + good[3:]
    wrong_size = bytes((0xF2, 24, 2)) + good[3:]
    unknown = bytes((0xF2, 25, 2)) + bytes((0x72,)) + bytes(24) + encode(LOC)
    frames = [encode_radiotap(encode_beacon_frame(p, transmitter=MAC, counter=1))
              for p in (wrong_count, wrong_size, unknown)]
    data = encode_pcap([(T0 + i, f) for i, f in enumerate(frames)],
                       linktype=LINKTYPE_IEEE802_11_RADIOTAP)
    d, out = decode_bytes(data)
    kinds = [type(x).__name__ for x in out]
    assert kinds == ["Rejected", "Rejected", "Rejected", "RemoteIdPosition"]
    r1, r2, r3 = rejections(out)
    starts = [data.index(f) for f in frames]
    assert "need 78 bytes, got 53" in r1.reason
    assert r1.offset == starts[0] + frames[0].index(wrong_count)
    assert "message size 24" in r2.reason
    assert r2.offset == starts[1] + frames[1].index(wrong_size) + 1
    assert "unknown message type: 0x7" in r3.reason
    assert r3.offset == starts[2] + frames[2].index(unknown) + 3
    assert d.counters.n_rejected == 3
    assert d.counters.rejected == {"bad message pack": 2, "unknown message type": 1}


def test_random_bytes_never_raise() -> None:
    rng = np.random.default_rng(7)
    _, out = decode_bytes(rng.bytes(5000))
    assert all(isinstance(x, Rejected) for x in out) and out


@FUZZ
@given(st.sampled_from([BEACONS, NAN]), st.data())
def test_corrupted_real_captures_never_raise(path: Path, data: st.DataObject) -> None:
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(raw) // 2, len(raw)))
    d = RemoteIdDecoder(batch_min_messages=data.draw(st.sampled_from([1, 10**9])))
    chunk = data.draw(st.integers(1, 2000))
    blob = bytes(raw[:cut])
    out: list[object] = []
    for i in range(0, len(blob), chunk):
        out += d.feed(blob[i:i + chunk])
    out += d.close()
    for x in out:
        assert isinstance(x, RemoteIdPosition | Rejected)
        if isinstance(x, Rejected):
            assert 0 <= x.offset <= len(blob)
        else:
            assert -90 <= x.report.lat_deg <= 90
    assert d.counters.n_rejected == len(rejections(out))
