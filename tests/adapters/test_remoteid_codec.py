"""The Remote ID message codec: every scaling at its boundaries, round trips of every
message type, the batch decoder against the scalar one, and bad input."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from skyfence.adapters.base import Rejected
from skyfence.adapters.remoteid_codec import (
    MESSAGE_SIZE,
    ODID_EPOCH_UNIX_S,
    Authentication,
    BasicId,
    IdType,
    Location,
    MessagePack,
    OperatorId,
    RemoteIdError,
    SelfId,
    System,
    UaType,
    assemble_authentication,
    decode,
    decode_altitude,
    decode_basic_ids,
    decode_locations,
    decode_single,
    decode_speed,
    decode_timestamp,
    decode_track,
    decode_vertical_speed,
    encode,
    encode_altitude,
    encode_pack,
    encode_speed,
    encode_timestamp,
    encode_track,
    encode_vertical_speed,
    parse,
)

FUZZ = settings(max_examples=200, deadline=None)


def location_bytes(*, flags: int = 0x20, track: int = 0, speed: int = 0, vspeed: int = 0,
                   lat: int = 455457468, lon: int = -1229681496, baro: int = 0,
                   geo: int = 2474, height: int = 2200, vh_acc: int = 0x39,
                   bs_acc: int = 0x41, ts: int = 0, ts_acc: int = 10) -> bytes:
    """A Location message laid out by hand from the F3411 table, independent of the codec."""
    return struct.pack("<BBBBbiiHHHBBHBB", 0x12, flags, track, speed, vspeed, lat, lon, baro,
                       geo, height, vh_acc, bs_acc, ts, ts_acc, 0)


# --- scalings, boundary by boundary ----------------------------------------------------

@pytest.mark.parametrize(("enc", "mult", "mps"), [
    (0, 0, 0.0), (1, 0, 0.25), (82, 0, 20.5), (254, 0, 63.5), (255, 0, 63.75),
    (0, 1, 63.75), (1, 1, 64.5), (253, 1, 253.5), (254, 1, 254.25)])
def test_speed_decodes_in_quarter_then_three_quarter_steps(enc: int, mult: int, mps: float
                                                          ) -> None:
    assert decode_speed(enc, mult) == mps
    loc = decode_single(location_bytes(flags=0x20 | mult, speed=enc))
    assert isinstance(loc, Location)
    assert loc.speed_mps == mps


def test_speed_255_with_multiplier_is_unknown_but_without_it_is_63_75() -> None:
    assert math.isnan(decode_speed(255, 1))
    assert decode_speed(255, 0) == 63.75


@pytest.mark.parametrize(("mps", "enc", "mult"), [
    (0.0, 0, 0), (0.25, 1, 0), (63.75, 255, 0), (63.76, 0, 1), (64.5, 1, 1),
    (254.25, 254, 1), (254.6, 254, 1), (1000.0, 254, 1), (math.nan, 255, 1)])
def test_speed_encoding_boundaries(mps: float, enc: int, mult: int) -> None:
    assert encode_speed(mps) == (enc, mult)


def test_negative_speed_is_refused() -> None:
    with pytest.raises(RemoteIdError, match="speed_mps"):
        encode_speed(-1.0)


@pytest.mark.parametrize(("enc", "ew", "deg"), [
    (0, 0, 0.0), (92, 0, 92.0), (179, 0, 179.0), (0, 1, 180.0), (92, 1, 272.0),
    (179, 1, 359.0), (180, 1, 0.0)])
def test_track_east_west_bit_adds_180_degrees(enc: int, ew: int, deg: float) -> None:
    assert decode_track(enc, ew) == pytest.approx(math.radians(deg), abs=1e-12)
    loc = decode_single(location_bytes(flags=0x20 | (ew << 1), track=enc))
    assert isinstance(loc, Location)
    assert math.degrees(loc.track_rad) == pytest.approx(deg, abs=1e-9)


def test_track_361_and_beyond_is_unknown() -> None:
    assert math.isnan(decode_track(181, 1))  # 361°, the standard's "unknown"
    assert math.isnan(decode_track(255, 1))
    assert encode_track(math.nan) == (181, 1)


@pytest.mark.parametrize(("deg", "enc", "ew"), [
    (0.0, 0, 0), (179.4, 179, 0), (180.0, 0, 1), (271.6, 92, 1), (359.4, 179, 1),
    (359.6, 0, 0), (-90.0, 90, 1), (450.0, 90, 0)])
def test_track_encoding(deg: float, enc: int, ew: int) -> None:
    assert encode_track(math.radians(deg)) == (enc, ew)


@pytest.mark.parametrize(("raw", "mps"), [
    (0, 0.0), (1, 0.5), (-1, -0.5), (124, 62.0), (-124, -62.0)])
def test_vertical_speed_is_signed_half_metres(raw: int, mps: float) -> None:
    assert decode_vertical_speed(raw) == mps
    loc = decode_single(location_bytes(vspeed=raw))
    assert isinstance(loc, Location)
    assert loc.vertical_speed_mps == mps


def test_vertical_speed_byte_0xff_is_a_slow_descent_not_127_5() -> None:
    data = bytearray(location_bytes())
    data[4] = 0xFF
    loc = decode_single(bytes(data))
    assert isinstance(loc, Location)
    assert loc.vertical_speed_mps == -0.5


@pytest.mark.parametrize("raw", [126, 125, 127, -125, -128])
def test_vertical_speed_63_and_invalid_codes_are_unknown(raw: int) -> None:
    assert math.isnan(decode_vertical_speed(raw))


@pytest.mark.parametrize(("mps", "enc"), [
    (62.0, 124), (70.0, 124), (-62.0, -124), (-70.0, -124), (1.0, 2), (math.nan, 126)])
def test_vertical_speed_encoding_clamps_to_62(mps: float, enc: int) -> None:
    assert encode_vertical_speed(mps) == enc


@pytest.mark.parametrize(("enc", "m"), [
    (1, -999.5), (2000, 0.0), (2200, 100.0), (2474, 237.0), (65535, 31767.5)])
def test_altitude_is_half_metres_from_minus_1000(enc: int, m: float) -> None:
    assert decode_altitude(enc) == m
    assert encode_altitude(m) == enc


def test_altitude_zero_is_unknown_and_out_of_range_is_refused() -> None:
    assert math.isnan(decode_altitude(0))
    assert encode_altitude(math.nan) == 0
    assert encode_altitude(-1000.0) == 0  # −1000 m is the standard's "unknown" marker
    for bad in (-1000.5, 31768.0):
        with pytest.raises(RemoteIdError):
            encode_altitude(bad)


def test_latitude_longitude_are_signed_1e7_degrees_and_zero_zero_is_unknown() -> None:
    loc = decode_single(location_bytes())
    assert isinstance(loc, Location)
    assert (loc.lat_deg, loc.lon_deg) == (45.5457468, -122.9681496)
    loc = decode_single(location_bytes(lat=900_000_000, lon=-1_800_000_000))
    assert isinstance(loc, Location)
    assert (loc.lat_deg, loc.lon_deg) == (90.0, -180.0)
    unknown = decode_single(location_bytes(lat=0, lon=0))
    assert isinstance(unknown, Location)
    assert math.isnan(unknown.lat_deg) and math.isnan(unknown.lon_deg)


def test_latitude_out_of_range_is_an_error_with_the_offset() -> None:
    with pytest.raises(RemoteIdError) as err:
        decode_single(location_bytes(lat=900_000_001), offset=100)
    assert err.value.offset == 105


@pytest.mark.parametrize(("enc", "s"), [(0, 0.0), (1, 0.1), (36000, 3600.0)])
def test_timestamp_is_tenths_since_the_hour(enc: int, s: float) -> None:
    assert decode_timestamp(enc) == pytest.approx(s)
    assert encode_timestamp(s) == enc


def test_timestamp_unknown_and_out_of_range() -> None:
    assert math.isnan(decode_timestamp(0xFFFF))
    assert math.isnan(decode_timestamp(36001))
    assert encode_timestamp(math.nan) == 0xFFFF
    with pytest.raises(RemoteIdError):
        encode_timestamp(3600.1)


def test_accuracy_codes_decode_to_their_95_percent_bounds() -> None:
    loc = decode_single(location_bytes(vh_acc=0x39, bs_acc=0x41, ts_acc=10))
    assert isinstance(loc, Location)
    assert (loc.horizontal_accuracy, loc.vertical_accuracy) == (9, 3)
    assert (loc.speed_accuracy, loc.baro_accuracy) == (1, 4)
    assert loc.horizontal_accuracy_m == 30.0
    assert loc.vertical_accuracy_m == 25.0
    assert loc.baro_accuracy_m == 10.0
    assert loc.speed_accuracy_mps == 10.0
    assert loc.timestamp_accuracy_s == pytest.approx(1.0)
    bounds = [Location(horizontal_accuracy=c).horizontal_accuracy_m for c in range(1, 13)]
    # 10, 4, 2, 1, 0.5, 0.3, 0.1, 0.05 NM (1852 m), then 30, 10, 3, 1 m.
    assert bounds == pytest.approx([18520, 7408, 3704, 1852, 926, 555.6, 185.2, 92.6,
                                    30, 10, 3, 1])
    assert math.isnan(Location(horizontal_accuracy=0).horizontal_accuracy_m)
    assert math.isnan(Location(timestamp_accuracy=0).timestamp_accuracy_s)


def test_location_flags_byte() -> None:
    # status 2 (airborne), height above ground, E/W set, speed multiplier set
    loc = decode_single(location_bytes(flags=0x27, track=10, speed=4))
    assert isinstance(loc, Location)
    assert (loc.status, loc.height_type) == (2, 1)
    assert math.degrees(loc.track_rad) == pytest.approx(190.0)
    assert loc.speed_mps == 66.75
    assert encode(loc)[1] == 0x27


def test_system_fields() -> None:
    raw = struct.pack("<BBiiHBHHBHIB", 0x42, 0x04 | 0x01, 455443876, -1229726866, 3, 50,
                      2200, 2000, 0x15, 2100, 123456, 0)
    m = decode_single(raw)
    assert isinstance(m, System)
    assert (m.operator_location_type, m.classification_type) == (1, 1)
    assert (m.operator_lat_deg, m.operator_lon_deg) == (45.5443876, -122.9726866)
    assert (m.area_count, m.area_radius_m) == (3, 500.0)
    assert (m.area_ceiling_m, m.area_floor_m) == (100.0, 0.0)
    assert (m.category_eu, m.class_eu) == (1, 5)
    assert m.operator_altitude_m == 50.0
    assert m.timestamp_unix_s == ODID_EPOCH_UNIX_S + 123456
    assert encode(m) == raw


def test_basic_id_and_operator_id_layout() -> None:
    raw = bytes((0x02, 0x12)) + b"MFG1A0123456789".ljust(20, b"\0") + b"\0\0\0"
    m = decode_single(raw)
    assert m == BasicId(id_type=IdType.SERIAL_NUMBER, ua_type=UaType.HELICOPTER_OR_MULTIROTOR,
                        uas_id="MFG1A0123456789", protocol_version=2)
    assert encode(m) == raw
    raw = bytes((0x52, 0x00)) + b"GBR-OP-123ABCD".ljust(20, b"\0") + b"\0\0\0"
    assert decode_single(raw) == OperatorId(operator_id="GBR-OP-123ABCD")
    assert encode(OperatorId(operator_id="GBR-OP-123ABCD")) == raw


def test_authentication_pages() -> None:
    page0 = Authentication(auth_type=1, page=0, last_page_index=1, length_bytes=30,
                           timestamp_unix_s=float(ODID_EPOCH_UNIX_S + 1000),
                           auth_data=bytes(range(17)))
    page1 = Authentication(auth_type=1, page=1, auth_data=bytes(range(17, 40)))
    raw0, raw1 = encode(page0), encode(page1)
    assert raw0[:8] == bytes((0x22, 0x10, 1, 30)) + (1000).to_bytes(4, "little")
    assert raw1[:2] == bytes((0x22, 0x11))
    assert decode_single(raw0) == page0
    assert decode_single(raw1) == page1
    assert assemble_authentication([page1, page0]) == bytes(range(30))
    assert assemble_authentication([page0]) is None
    with pytest.raises(RemoteIdError):
        encode(Authentication(page=0, auth_data=bytes(18)))


def test_self_id() -> None:
    m = SelfId(desc_type=0, description="Recreational")
    raw = encode(m)
    assert raw == bytes((0x32, 0)) + b"Recreational".ljust(23, b"\0")
    assert decode_single(raw) == m


def test_message_pack_layout_and_round_trip() -> None:
    pack = MessagePack((BasicId(uas_id="X"), Location(lat_deg=1.0, lon_deg=2.0),
                        OperatorId(operator_id="OP")))
    raw = encode(pack)
    assert raw[:3] == bytes((0xF2, 25, 3))
    assert len(raw) == 3 + 3 * MESSAGE_SIZE
    assert decode(raw).to_json() == pack.to_json()


# --- round trips ------------------------------------------------------------------------

@st.composite
def locations(draw: st.DrawFn) -> Location:
    lat = draw(st.floats(-90, 90))
    lon = draw(st.floats(-180, 180))
    assume(abs(lat) > 1e-7 or abs(lon) > 1e-7)  # (0, 0) is "unknown"
    alt = st.one_of(st.just(math.nan), st.floats(-999.7, 31767.5))
    return Location(
        status=draw(st.integers(0, 15)), height_type=draw(st.integers(0, 1)),
        track_rad=draw(st.one_of(st.just(math.nan), st.floats(0, 2 * math.pi,
                                                              exclude_max=True))),
        speed_mps=draw(st.one_of(st.just(math.nan), st.floats(0, 254.25))),
        vertical_speed_mps=draw(st.one_of(st.just(math.nan), st.floats(-62, 62))),
        lat_deg=lat, lon_deg=lon, pressure_altitude_m=draw(alt),
        geodetic_altitude_m=draw(alt), height_m=draw(alt),
        horizontal_accuracy=draw(st.integers(0, 15)), vertical_accuracy=draw(st.integers(0, 15)),
        baro_accuracy=draw(st.integers(0, 15)), speed_accuracy=draw(st.integers(0, 15)),
        timestamp_s=draw(st.one_of(st.just(math.nan), st.floats(0, 3600))),
        timestamp_accuracy=draw(st.integers(0, 15)), protocol_version=draw(st.integers(0, 15)))


def _close(a: float, b: float, tol: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


@FUZZ
@given(locations())
def test_location_round_trips_within_the_quantisation(m: Location) -> None:
    raw = encode(m)
    assert len(raw) == MESSAGE_SIZE
    d = decode_single(raw)
    assert isinstance(d, Location)
    eps = 1e-9
    speed_step = 0.25 if m.speed_mps <= 63.75 else 0.75
    assert _close(d.speed_mps, m.speed_mps, speed_step / 2 + eps)
    if math.isnan(m.track_rad):
        assert math.isnan(d.track_rad)
    else:
        diff = (math.degrees(d.track_rad - m.track_rad) + 180) % 360 - 180
        assert abs(diff) <= 0.5 + eps
    assert _close(d.vertical_speed_mps, m.vertical_speed_mps, 0.25 + eps)
    assert _close(d.lat_deg, m.lat_deg, 0.5e-7 + 1e-12)
    assert _close(d.lon_deg, m.lon_deg, 0.5e-7 + 1e-12)
    for name in ("pressure_altitude_m", "geodetic_altitude_m", "height_m"):
        assert _close(getattr(d, name), getattr(m, name), 0.25 + eps)
    assert _close(d.timestamp_s, m.timestamp_s, 0.05 + eps)
    for name in ("status", "height_type", "horizontal_accuracy", "vertical_accuracy",
                 "baro_accuracy", "speed_accuracy", "timestamp_accuracy", "protocol_version"):
        assert getattr(d, name) == getattr(m, name)


text20 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=20)


@FUZZ
@given(st.one_of(
    st.builds(BasicId, id_type=st.integers(0, 15), ua_type=st.integers(0, 15), uas_id=text20),
    st.builds(OperatorId, operator_id=text20, operator_id_type=st.integers(0, 255)),
    st.builds(SelfId, desc_type=st.integers(0, 255),
              description=st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF),
                                  max_size=23)),
    st.builds(Authentication, auth_type=st.integers(0, 15), page=st.integers(1, 15),
              auth_data=st.binary(min_size=23, max_size=23)),
    st.builds(Authentication, auth_type=st.integers(0, 15), page=st.just(0),
              last_page_index=st.integers(0, 15), length_bytes=st.integers(0, 255),
              timestamp_unix_s=st.integers(ODID_EPOCH_UNIX_S + 1,
                                           ODID_EPOCH_UNIX_S + 2**32 - 1).map(float),
              auth_data=st.binary(min_size=17, max_size=17))))
def test_identity_messages_round_trip_exactly(m: BasicId | OperatorId | SelfId | Authentication
                                              ) -> None:
    assert decode_single(encode(m)) == m


@FUZZ
@given(st.builds(
    System, operator_location_type=st.integers(0, 3), classification_type=st.integers(0, 7),
    operator_lat_deg=st.floats(1e-6, 90), operator_lon_deg=st.floats(-180, 180),
    area_count=st.integers(0, 65535), area_radius_m=st.floats(0, 2550),
    area_ceiling_m=st.floats(-999.7, 31767.5), area_floor_m=st.floats(-999.7, 31767.5),
    category_eu=st.integers(0, 15), class_eu=st.integers(0, 15),
    operator_altitude_m=st.one_of(st.just(math.nan), st.floats(-999.7, 31767.5)),
    timestamp_unix_s=st.floats(ODID_EPOCH_UNIX_S + 1, ODID_EPOCH_UNIX_S + 2**31)))
def test_system_round_trips_within_the_quantisation(m: System) -> None:
    d = decode_single(encode(m))
    assert isinstance(d, System)
    assert _close(d.operator_lat_deg, m.operator_lat_deg, 0.5e-7 + 1e-12)
    assert _close(d.operator_lon_deg, m.operator_lon_deg, 0.5e-7 + 1e-12)
    assert abs(d.area_radius_m - m.area_radius_m) <= 5.0
    for name in ("area_ceiling_m", "area_floor_m", "operator_altitude_m"):
        assert _close(getattr(d, name), getattr(m, name), 0.25 + 1e-9)
    assert abs(d.timestamp_unix_s - m.timestamp_unix_s) <= 0.5
    for name in ("operator_location_type", "classification_type", "area_count",
                 "category_eu", "class_eu"):
        assert getattr(d, name) == getattr(m, name)


@FUZZ
@given(st.integers(0, 5), st.binary(min_size=24, max_size=24))
def test_decode_encode_decode_is_stable_on_any_valid_bytes(mtype: int, body: bytes) -> None:
    raw = bytes(((mtype << 4) | (body[0] & 0xF),)) + body[1:] + b"\0"
    try:
        first = decode_single(raw)
    except RemoteIdError:
        return
    assert decode_single(encode(first)).to_json() == first.to_json()


# --- batch path = scalar path -------------------------------------------------------------

@FUZZ
@given(st.lists(st.binary(min_size=25, max_size=25), min_size=1, max_size=40),
       st.integers(0, 2**32 - 1))
def test_batch_locations_equal_the_scalar_decoder(rows: list[bytes], seed: int) -> None:
    rng = np.random.default_rng(seed)
    raw = np.frombuffer(b"".join(rows), np.uint8).reshape(-1, 25).copy()
    # Mostly Location headers, some other types, a few unknown-position rows.
    kinds = rng.choice([0x1, 0x1, 0x1, 0x0, 0x4, 0xF], size=len(raw))
    raw[:, 0] = (kinds << 4) | (raw[:, 0] & 0xF)
    raw[rng.random(len(raw)) < 0.2, 5:13] = 0
    arrays = decode_locations(raw)
    assert len(arrays) == len(raw)
    for i, row in enumerate(raw):
        try:
            scalar = decode_single(row.tobytes())
        except RemoteIdError:
            assert not arrays.valid[i]
            continue
        if not isinstance(scalar, Location):
            assert not arrays.valid[i]
            continue
        assert arrays.valid[i]
        assert arrays.row(i).to_json() == scalar.to_json()


@FUZZ
@given(st.lists(st.binary(min_size=25, max_size=25), min_size=1, max_size=20))
def test_batch_basic_ids_equal_the_scalar_decoder(rows: list[bytes]) -> None:
    raw = np.frombuffer(b"".join(rows), np.uint8).reshape(-1, 25).copy()
    raw[::2, 0] &= 0x0F  # every other row a Basic ID
    arrays = decode_basic_ids(raw)
    for i, row in enumerate(raw):
        scalar = decode_single(row.tobytes()) if row[0] >> 4 == 0 else None
        assert bool(arrays.valid[i]) == (scalar is not None)
        if scalar is not None:
            assert arrays.row(i) == scalar


def test_batch_decoder_refuses_a_wrong_shape() -> None:
    with pytest.raises(RemoteIdError):
        decode_locations(np.zeros((3, 24), np.uint8))


# --- bad input ----------------------------------------------------------------------------

def test_unknown_message_type_is_rejected_with_its_offset() -> None:
    raw = bytes((0x62,)) + bytes(24)
    with pytest.raises(RemoteIdError, match="unknown message type: 0x6"):
        decode_single(raw)
    [r] = parse(raw, offset=40)
    assert isinstance(r, Rejected)
    assert r.offset == 40 and "unknown message type" in r.reason


def test_wrong_length_single_message() -> None:
    [r] = parse(bytes(24), offset=7)
    assert isinstance(r, Rejected) and r.offset == 7


@pytest.mark.parametrize(("header", "extra", "offset", "what"), [
    (bytes((0xF2, 24, 1)), 25, 101, "message size"),
    (bytes((0xF2, 25, 0)), 0, 102, "count 0"),
    (bytes((0xF2, 25, 10)), 250, 102, "count 10"),
    (bytes((0xF2, 25, 3)), 50, 100, "need 78 bytes, got 53"),
    (bytes((0xF2, 25, 1)), 50, 100, "need 28 bytes, got 53"),
])
def test_message_pack_with_a_wrong_size_or_count_is_rejected(header: bytes, extra: int,
                                                             offset: int, what: str) -> None:
    data = header + encode(BasicId(uas_id="A")) * (extra // 25)
    [r] = parse(data, offset=100)
    assert isinstance(r, Rejected)
    assert r.offset == offset
    assert what in r.reason
    with pytest.raises(RemoteIdError):
        decode(data)


def test_bad_message_inside_a_good_pack_is_rejected_alone() -> None:
    good = encode(OperatorId(operator_id="OP"))
    bad = bytes((0x72,)) + bytes(24)
    nested = bytes((0xF2,)) + bytes(24)
    out = parse(bytes((0xF2, 25, 4)) + good + bad + nested + good, offset=1000)
    assert [type(x).__name__ for x in out] == ["OperatorId", "Rejected", "Rejected",
                                               "OperatorId"]
    assert [x.offset for x in out if isinstance(x, Rejected)] == [1028, 1053]
    assert "nested message pack" in str(out[2])


def test_encoder_refuses_what_the_standard_cannot_carry() -> None:
    for bad in (BasicId(uas_id="X" * 21), BasicId(id_type=16), OperatorId(operator_id="€"),
                Location(status=16), Location(lat_deg=91.0, lon_deg=0.0),
                System(area_radius_m=2560.0), SelfId(description="d" * 24)):
        with pytest.raises(RemoteIdError):
            encode(bad)
    with pytest.raises(RemoteIdError):
        encode_pack([])
    with pytest.raises(RemoteIdError):  # a pack inside a pack
        encode_pack([bytes((0xF2,)) + bytes(24)])
    with pytest.raises(TypeError):
        encode("not a message")  # type: ignore[arg-type]


@FUZZ
@given(st.binary(max_size=300), st.integers(0, 10**6))
def test_parse_never_raises_on_random_bytes(data: bytes, offset: int) -> None:
    for item in parse(data, offset=offset):
        if isinstance(item, Rejected):
            assert offset <= item.offset <= offset + max(len(data), 1)
