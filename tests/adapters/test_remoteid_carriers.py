"""Remote ID carriers: Wi-Fi Beacon and NAN, Bluetooth legacy and extended advertising,
radiotap and the BLE link layer, both ways, against the real captures' own frames."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.adapters.base import Rejected
from skyfence.adapters.pcap import (
    LINKTYPE_BLUETOOTH_LE_LL,
    LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
    LINKTYPE_IEEE802_11,
    LINKTYPE_IEEE802_11_RADIOTAP,
    Packet,
    parse_capture,
)
from skyfence.adapters.remoteid_carriers import (
    NAN_SERVICE_ID,
    Carrier,
    Frame,
    ble_crc,
    encode_beacon_element,
    encode_beacon_frame,
    encode_ble_adv,
    encode_ble_phdr,
    encode_bt_service_data,
    encode_nan_frame,
    encode_radiotap,
    mac_bytes,
    parse_80211,
    parse_ble_ll,
    parse_bt_adv_data,
    parse_packet,
    parse_radiotap,
)
from skyfence.adapters.remoteid_codec import (
    BasicId,
    Location,
    MessagePack,
    OperatorId,
    encode,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "remoteid"
MAC = "84:cc:a8:60:43:24"
PACK = encode(MessagePack((BasicId(uas_id="SN1"), Location(lat_deg=1.0, lon_deg=2.0),
                           OperatorId(operator_id="OP1"))))
SINGLE = encode(Location(lat_deg=1.0, lon_deg=2.0))
FUZZ = settings(max_examples=200, deadline=None)


def captured_frames(name: str) -> list[bytes]:
    """The 802.11 frames of a capture, radiotap stripped by its own length field."""
    out = []
    for p in parse_capture((DATA / name).read_bytes()):
        assert isinstance(p, Packet)
        out.append(p.data[int.from_bytes(p.data[2:4], "little"):])
    return out


def test_nan_service_id_is_the_hash_of_the_service_name() -> None:
    assert hashlib.sha256(b"org.opendroneid.remoteid").digest()[:6] == NAN_SERVICE_ID
    assert bytes.fromhex("8869199d9209") == NAN_SERVICE_ID


# --- Wi-Fi -------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [PACK, SINGLE])
def test_beacon_round_trip(payload: bytes) -> None:
    frame = encode_beacon_frame(payload, transmitter=MAC, counter=7, ssid=b"drone")
    f = parse_80211(frame, t=5.0, offset=100)
    assert f == Frame(5.0, MAC, Carrier.WIFI_BEACON, 7, payload,
                      100 + frame.index(payload))


@pytest.mark.parametrize("payload", [PACK, SINGLE])
def test_nan_round_trip(payload: bytes) -> None:
    frame = encode_nan_frame(payload, transmitter=MAC, counter=200)
    f = parse_80211(frame, t=5.0)
    assert isinstance(f, Frame)
    assert (f.transmitter, f.carrier, f.counter, f.payload) == (MAC, "wifi-nan", 200, payload)
    assert frame[f.offset:f.offset + len(payload)] == payload


def test_nan_encoder_matches_the_real_capture_byte_for_byte() -> None:
    frames = captured_frames("odid_wifi_sample.pcap")
    action = next(f for f in frames if f[0] == 0xD0)
    found = parse_80211(action, t=0.0)
    assert isinstance(found, Frame)
    ours = encode_nan_frame(found.payload, transmitter=MAC, counter=found.counter)
    # The body after the MAC header is the reference layout; the capture's cluster ID
    # (address 3) predates the one F3411-22a fixes.
    assert ours[24:] == action[24:]
    assert ours[4:16] == action[4:16]


def test_beacon_element_matches_the_real_capture() -> None:
    beacon = captured_frames("odid_wifi_bcn_sample.pcap")[0]
    found = parse_80211(beacon, t=0.0)
    assert isinstance(found, Frame)
    assert (found.transmitter, found.carrier, found.counter) == (MAC, "wifi-beacon", 0xD0)
    assert len(found.payload) == 3 + 5 * 25
    assert encode_beacon_element(found.payload, counter=found.counter) in beacon


def test_nan_synchronisation_beacon_is_not_remote_id() -> None:
    sync = captured_frames("odid_wifi_sample.pcap")[0]
    assert sync[0] == 0x80
    assert parse_80211(sync, t=0.0) is None


def test_radiotap_with_and_without_fcs() -> None:
    frame = encode_beacon_frame(PACK, transmitter=MAC, counter=1)
    for fcs in (False, True):
        f = parse_radiotap(encode_radiotap(frame, fcs=fcs), t=1.0, offset=10)
        assert isinstance(f, Frame) and f.payload == PACK
        assert f.offset == 10 + 10 + frame.index(PACK)
    corrupt = bytearray(encode_radiotap(frame, fcs=True))
    corrupt[40] ^= 0xFF
    r = parse_radiotap(bytes(corrupt), t=1.0, offset=10)
    assert isinstance(r, Rejected) and r.reason == "802.11 FCS error" and r.offset == 20


def test_raw_80211_with_a_trailing_fcs() -> None:
    frame = encode_beacon_frame(PACK, transmitter=MAC, counter=1)
    with_fcs = encode_radiotap(frame, fcs=True)[10:]
    for data in (frame, with_fcs):
        f = parse_packet(Packet(0, 1.0, LINKTYPE_IEEE802_11, data, len(data)))
        assert isinstance(f, Frame) and f.payload == PACK


def test_other_80211_frames_are_not_remote_id() -> None:
    ack = bytes((0xD4, 0)) + bytes(8)
    data = bytes((0x08, 0)) + bytes(40)
    probe_req = bytes((0x40, 0)) + bytes(40)
    protected_action = bytes((0xD0, 0x40)) + bytes(40)
    plain_beacon = encode_beacon_frame(PACK, transmitter=MAC, counter=1)[:-len(PACK) - 7]
    for frame in (ack, data, probe_req, protected_action, plain_beacon):
        assert parse_80211(frame, t=0.0) is None


def test_broken_remote_id_frames_are_rejected_with_offsets() -> None:
    beacon = encode_beacon_frame(PACK, transmitter=MAC, counter=1)
    r = parse_80211(beacon[:-10], t=0.0, offset=1000)
    assert isinstance(r, Rejected) and "overruns" in r.reason
    assert r.offset == 1000 + beacon.index(b"\xdd")
    short_mgmt = parse_80211(beacon[:20], t=0.0)
    assert isinstance(short_mgmt, Rejected)
    nan = encode_nan_frame(PACK, transmitter=MAC, counter=1)
    r = parse_80211(nan[:60], t=0.0)
    assert isinstance(r, Rejected) and "NAN service descriptor" in r.reason
    no_info = bytearray(nan)
    no_info[24 + 6 + 3 + 8] = 0x00  # service control without "service info present"
    r = parse_80211(bytes(no_info), t=0.0)
    assert isinstance(r, Rejected) and "without service info" in r.reason
    r = parse_radiotap(b"\x00\x00\x40\x00" + bytes(8), t=0.0)
    assert isinstance(r, Rejected) and "radiotap" in r.reason


# --- Bluetooth -----------------------------------------------------------------------------

def test_ble_crc_matches_a_known_advertising_packet() -> None:
    # An ADV_IND with its CRC, as transmitted by Ubertooth's firmware test.
    pdu = bytes.fromhex("0015" "3156af50a000" "020106" "0709636170" "6c6564" "03030080")
    assert ble_crc(pdu) == bytes.fromhex("11c0cb")


def test_bt_legacy_round_trip_through_the_link_layer() -> None:
    ad = encode_bt_service_data(SINGLE, counter=9)
    assert ad[:5] == bytes((30, 0x16, 0xFA, 0xFF, 0x0D))
    ll = encode_ble_adv(ad, advertiser="11:22:33:44:55:66")
    for data, phdr in ((ll, False), (encode_ble_phdr(ll), True)):
        f = parse_ble_ll(data, t=3.0, offset=50, phdr=phdr)
        assert isinstance(f, Frame)
        assert (f.transmitter, f.carrier, f.counter, f.payload) == (
            "11:22:33:44:55:66", "bt-legacy", 9, SINGLE)
        assert data[f.offset - 50:f.offset - 50 + 25] == SINGLE


def test_bt5_extended_round_trip_including_coded_phy() -> None:
    ad = encode_bt_service_data(PACK, counter=3)
    ll = encode_ble_adv(ad, advertiser="11:22:33:44:55:66", extended=True)
    for data, lt in ((ll, LINKTYPE_BLUETOOTH_LE_LL),
                     (encode_ble_phdr(ll, coded=True), LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR)):
        f = parse_packet(Packet(0, 3.0, lt, data, len(data)))
        assert isinstance(f, Frame)
        assert (f.transmitter, f.carrier, f.counter, f.payload) == (
            "11:22:33:44:55:66", "bt-extended", 3, PACK)


def test_ble_crc_errors_and_bad_lengths_are_rejected() -> None:
    ll = bytearray(encode_ble_adv(encode_bt_service_data(SINGLE, counter=1),
                                  advertiser="11:22:33:44:55:66"))
    ll[20] ^= 1
    r = parse_ble_ll(bytes(ll), t=0.0, offset=10)
    assert isinstance(r, Rejected) and r.reason == "BLE CRC error" and r.offset == 14
    good = encode_ble_adv(encode_bt_service_data(SINGLE, counter=1),
                          advertiser="11:22:33:44:55:66")
    r = parse_ble_ll(good[:-1], t=0.0)
    assert isinstance(r, Rejected) and "length" in r.reason
    bad_phdr = bytearray(encode_ble_phdr(good))
    bad_phdr[8:10] = (0x0401).to_bytes(2, "little")  # CRC checked, not valid
    r = parse_ble_ll(bytes(bad_phdr), t=0.0, phdr=True)
    assert isinstance(r, Rejected) and r.reason == "BLE CRC error"


def test_ble_non_remote_id_packets() -> None:
    data_channel = (0x12345678).to_bytes(4, "little") + bytes(10)
    assert parse_ble_ll(data_channel, t=0.0) is None
    other = encode_ble_adv(bytes((2, 1, 6)), advertiser="11:22:33:44:55:66")
    assert parse_ble_ll(other, t=0.0) is None


def test_advertising_data_with_other_structures_first() -> None:
    ad = bytes((2, 1, 6)) + bytes((3, 0x03, 0xFA, 0xFF)) + encode_bt_service_data(
        SINGLE, counter=4)
    f = parse_bt_adv_data(ad, t=1.0, transmitter=MAC, offset=0)
    assert isinstance(f, Frame) and f.payload == SINGLE and f.offset == 13
    r = parse_bt_adv_data(ad[:-3], t=1.0, transmitter=MAC)
    assert isinstance(r, Rejected) and "overruns" in r.reason
    assert parse_bt_adv_data(bytes((2, 1, 6, 0, 0)), t=1.0, transmitter=MAC) is None


def test_unsupported_link_type_is_rejected() -> None:
    r = parse_packet(Packet(33, 0.0, 1, bytes(60), 60))
    assert isinstance(r, Rejected) and r.offset == 33 and "link type 1" in r.reason


def test_mac_helpers() -> None:
    assert mac_bytes(MAC) == bytes.fromhex("84cca8604324")
    with pytest.raises(ValueError):
        mac_bytes("84:cc")


@FUZZ
@given(st.sampled_from([LINKTYPE_IEEE802_11, LINKTYPE_IEEE802_11_RADIOTAP,
                        LINKTYPE_BLUETOOTH_LE_LL, LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR]),
       st.binary(max_size=300), st.data())
def test_carrier_parsers_never_raise(linktype: int, noise: bytes, data: st.DataObject
                                     ) -> None:
    # Random bytes, and real frames cut or corrupted at random.
    frames = {
        LINKTYPE_IEEE802_11: encode_nan_frame(PACK, transmitter=MAC, counter=1),
        LINKTYPE_IEEE802_11_RADIOTAP: encode_radiotap(
            encode_beacon_frame(PACK, transmitter=MAC, counter=1)),
        LINKTYPE_BLUETOOTH_LE_LL: encode_ble_adv(encode_bt_service_data(PACK, counter=1),
                                                 advertiser=MAC, extended=True),
        LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR: encode_ble_phdr(encode_ble_adv(
            encode_bt_service_data(SINGLE, counter=1), advertiser=MAC)),
    }
    good = frames[linktype]
    cut = data.draw(st.integers(0, len(good)))
    flip = data.draw(st.integers(0, len(good) - 1))
    mutated = bytearray(good[:cut] + good[cut:])
    mutated[flip] ^= data.draw(st.integers(1, 255))
    for payload in (noise, good[:cut], bytes(mutated)):
        r = parse_packet(Packet(500, 0.0, linktype, payload, len(payload)))
        if isinstance(r, Rejected):
            assert 500 <= r.offset <= 500 + len(payload)
        elif isinstance(r, Frame):
            assert 500 <= r.offset <= 500 + len(payload)
            assert not math.isnan(r.t)
