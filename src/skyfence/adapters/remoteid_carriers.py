"""How Remote ID messages travel (F3411-22a §5.4.5 / prEN 4709-002 §4): pure parsers
from captured frames to ``Frame`` records, and encoders back.

* Wi-Fi Beacon: a vendor-specific element (221) with OUI FA:0B:BC (ASD-STAN; the
  pre-standard Parrot OUI 90:3A:E6 is accepted too), OUI type 0x0D, a message counter,
  then a message pack.
* Wi-Fi NAN: a Service Discovery Frame (public action frame, category 4, action 9, OUI
  50:6F:9A type 0x13) whose Service Descriptor Attribute has the service ID
  ``sha256("org.opendroneid.remoteid")[:6]`` = 88:69:19:9D:92:09 and a service info of
  a message counter and a message pack.
* Bluetooth 4 legacy advertising: AD type 0x16 (service data, 16-bit UUID) with UUID
  0xFFFA, application code 0x0D, a message counter and one 25-byte message.
* Bluetooth 5 long range / extended advertising: the same header, then a message pack.

Captures come as 802.11 frames with or without a radiotap header (LINKTYPE 127 and
105) or as Bluetooth LE link-layer packets with or without the 10-byte pseudo-header
(LINKTYPE 256 and 251). The transmitter address (802.11 address 2, the BLE AdvA)
names the drone between messages. A frame that is not Remote ID parses to ``None``;
a Remote ID frame that is broken parses to ``Rejected``.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from skyfence.adapters.base import Rejected
from skyfence.adapters.pcap import (
    LINKTYPE_BLUETOOTH_LE_LL,
    LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
    LINKTYPE_IEEE802_11,
    LINKTYPE_IEEE802_11_RADIOTAP,
    Packet,
)

ASD_STAN_OUI = b"\xfa\x0b\xbc"
PARROT_OUI = b"\x90\x3a\xe6"
ODID_OUI_TYPE = 0x0D
WFA_OUI = b"\x50\x6f\x9a"
NAN_OUI_TYPE = 0x13
NAN_SERVICE_ID = hashlib.sha256(b"org.opendroneid.remoteid").digest()[:6]
#: NAN Network ID (destination) and the cluster ID F3411 fixes (address 3).
NAN_NETWORK_ID = b"\x51\x6f\x9a\x01\x00\x00"
NAN_CLUSTER_ID = b"\x50\x6f\x9a\x01\x00\xff"
BT_SERVICE_DATA = 0x16
ASTM_UUID = 0xFFFA
ODID_APP_CODE = 0x0D
BLE_ADV_ACCESS_ADDRESS = 0x8E89BED6
_BLE_CRC_INIT = 0xAAAAAA  # 0x555555 bit-reversed: the LFSR below runs LSB first


class Carrier(StrEnum):
    WIFI_BEACON = "wifi-beacon"
    WIFI_NAN = "wifi-nan"
    BT_LEGACY = "bt-legacy"
    BT_EXTENDED = "bt-extended"


@dataclass(frozen=True, slots=True)
class Frame:
    """Remote ID bytes one carrier frame brought: a single message or a message pack
    (``payload``, starting at stream ``offset``), from ``transmitter`` (MAC address,
    ``aa:bb:cc:dd:ee:ff``) over ``carrier``, with the sender's message ``counter`` and
    the capture time ``t`` (s since the Unix epoch)."""

    t: float
    transmitter: str
    carrier: str
    counter: int
    payload: bytes
    offset: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"type": "remoteid_frame", "t": None if math.isnan(self.t) else self.t,
                "transmitter": self.transmitter, "carrier": str(self.carrier),
                "counter": self.counter, "payload": self.payload.hex(),
                "offset": self.offset}


def mac_str(raw: bytes) -> str:
    return raw.hex(":")


def mac_bytes(mac: str) -> bytes:
    raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"{mac!r} is not a 6-byte MAC address")
    return raw


# --- Wi-Fi --------------------------------------------------------------------------

def parse_packet(packet: Packet) -> Frame | Rejected | None:
    """A captured packet of a supported link type → its Remote ID frame, if any."""
    lt, data, t, off = packet.linktype, packet.data, packet.t, packet.offset
    if lt == LINKTYPE_IEEE802_11_RADIOTAP:
        return parse_radiotap(data, t=t, offset=off)
    if lt == LINKTYPE_IEEE802_11:
        return parse_80211(_strip_fcs_if_valid(data), t=t, offset=off)
    if lt == LINKTYPE_BLUETOOTH_LE_LL:
        return parse_ble_ll(data, t=t, offset=off)
    if lt == LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR:
        return parse_ble_ll(data, t=t, offset=off, phdr=True)
    return Rejected(off, f"unsupported link type: link type {lt} carries no Remote ID "
                         "(read from 802.11, 105 and 127, and BLE link layer, 251 and 256)")


def _fcs_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and zlib.crc32(frame[:-4]) == int.from_bytes(frame[-4:], "little")


def _strip_fcs_if_valid(frame: bytes) -> bytes:
    # LINKTYPE 105 may or may not carry the FCS; a matching CRC-32 says it does.
    return frame[:-4] if len(frame) > 28 and _fcs_ok(frame) else frame


def parse_radiotap(data: bytes, *, t: float, offset: int = 0) -> Frame | Rejected | None:
    """radiotap header + 802.11 frame → Remote ID frame. The radiotap length field says
    where the frame starts; its Flags field, when present, says whether an FCS ends it."""
    if len(data) < 8:
        return Rejected(offset, f"radiotap header cut short: {len(data)} bytes", data)
    version, _, rt_len, present = struct.unpack_from("<BBHI", data)
    if version != 0 or rt_len < 8 or rt_len > len(data):
        return Rejected(offset, f"bad radiotap header: version {version}, length {rt_len} "
                                f"of {len(data)}", data)
    pos = 4
    word = present
    while word & 0x80000000:  # more present words follow
        pos += 4
        if pos + 4 > rt_len:
            return Rejected(offset, "radiotap present bitmaps overrun the header", data)
        (word,) = struct.unpack_from("<I", data, pos)
    pos += 4
    flags = 0
    if present & 0x1:  # TSFT, 8 bytes aligned to 8
        pos += -pos % 8 + 8
    if present & 0x2 and pos < rt_len:
        flags = data[pos]
    frame = data[rt_len:]
    if flags & 0x10:  # FCS at the end
        if flags & 0x40 or not _fcs_ok(frame):
            return Rejected(offset + rt_len, "802.11 FCS error", frame)
        frame = frame[:-4]
    elif flags & 0x40:
        return Rejected(offset + rt_len, "802.11 FCS error", frame)
    return parse_80211(frame, t=t, offset=offset + rt_len)


def parse_80211(frame: bytes, *, t: float, offset: int = 0) -> Frame | Rejected | None:
    """An 802.11 frame (no FCS) → Remote ID frame from a beacon, probe response or NAN
    service discovery frame; ``None`` for anything else."""
    if len(frame) < 2:
        return Rejected(offset, f"short 802.11 frame: {len(frame)} bytes", frame)
    fc0, fc1 = frame[0], frame[1]
    if (fc0 >> 2) & 3 != 0 or fc1 & 0x40:  # not management, or protected
        return None
    if fc0 & 3:
        return Rejected(offset, f"bad 802.11 protocol version: {fc0 & 3}", frame)
    subtype = fc0 >> 4
    if subtype not in (5, 8, 13, 14):  # probe response, beacon, action, action no ack
        return None
    hdr = 28 if fc1 & 0x80 else 24  # +HTC
    if len(frame) < hdr:
        return Rejected(offset, f"short 802.11 frame: management frame of {len(frame)} bytes",
                        frame)
    transmitter = mac_str(frame[10:16])
    if subtype in (5, 8):
        return _parse_beacon_body(frame, hdr + 12, transmitter, t, offset)
    return _parse_nan(frame, hdr, transmitter, t, offset)


def _parse_beacon_body(frame: bytes, pos: int, transmitter: str, t: float, offset: int
                       ) -> Frame | Rejected | None:
    end = len(frame)
    while pos + 2 <= end:
        eid, elen = frame[pos], frame[pos + 1]
        if eid == 221 and frame[pos + 2:pos + 5] in (ASD_STAN_OUI, PARROT_OUI) and \
                frame[pos + 5:pos + 6] == bytes((ODID_OUI_TYPE,)):
            if pos + 2 + elen > end:
                return Rejected(offset + pos, f"Remote ID element overruns the frame: {elen} "
                                              "bytes", frame[pos:])
            if elen < 5:
                return Rejected(offset + pos, f"short Remote ID element: {elen} bytes, no "
                                              "counter", frame[pos:pos + 2 + elen])
            return Frame(t, transmitter, Carrier.WIFI_BEACON, frame[pos + 6],
                         frame[pos + 7:pos + 2 + elen], offset + pos + 7)
        pos += 2 + elen
    return None


def _parse_nan(frame: bytes, pos: int, transmitter: str, t: float, offset: int
               ) -> Frame | Rejected | None:
    if frame[pos:pos + 6] != b"\x04\x09" + WFA_OUI + bytes((NAN_OUI_TYPE,)):
        return None
    pos += 6
    end = len(frame)
    while pos + 3 <= end:
        aid = frame[pos]
        (alen,) = struct.unpack_from("<H", frame, pos + 1)
        body, body_end = pos + 3, pos + 3 + alen
        if aid == 0x03 and frame[body:body + 6] == NAN_SERVICE_ID:
            if body_end > end:
                return Rejected(offset + pos, f"NAN service descriptor overruns the frame: "
                                              f"{alen} bytes", frame[pos:])
            return _parse_sda(frame, body, body_end, transmitter, t, offset)
        pos = body_end
    return None


def _parse_sda(frame: bytes, pos: int, end: int, transmitter: str, t: float, offset: int
               ) -> Frame | Rejected:
    start = pos
    if end - pos < 9:
        return Rejected(offset + pos, "NAN service descriptor too short", frame[pos:end])
    control = frame[pos + 8]
    pos += 9  # service ID, instance ID, requestor instance ID, service control
    if control & 0x40:  # binding bitmap
        pos += 2
    for bit in (0x04, 0x08):  # matching filter, service response filter: length + data
        if control & bit:
            if pos >= end:
                break
            pos += 1 + frame[pos]
    if not control & 0x10 or pos >= end:
        return Rejected(offset + start, "Remote ID NAN service descriptor without service "
                                        "info", frame[start:end])
    info_len = frame[pos]
    info = pos + 1
    if info + info_len > end or info_len < 1:
        return Rejected(offset + pos, f"bad NAN service info length: {info_len} bytes do "
                                      "not fit the attribute", frame[start:end])
    return Frame(t, transmitter, Carrier.WIFI_NAN, frame[info],
                 frame[info + 1:info + info_len], offset + info + 1)


# --- Bluetooth ----------------------------------------------------------------------

def ble_crc(pdu: bytes, init: int = _BLE_CRC_INIT) -> bytes:
    """BLE CRC-24 of a PDU (header + payload), in air order (3 bytes)."""
    state = init
    for byte in pdu:
        for _ in range(8):
            bit = (state ^ byte) & 1
            byte >>= 1
            state >>= 1
            if bit:
                state = (state | 0x800000) ^ 0x5A6000
    return state.to_bytes(3, "little")


def parse_ble_ll(data: bytes, *, t: float, offset: int = 0, phdr: bool = False
                 ) -> Frame | Rejected | None:
    """A BLE link-layer packet (access address, PDU, CRC), after the LINKTYPE 256
    pseudo-header when ``phdr`` → Remote ID frame from its advertising data. The CRC is
    checked (or the pseudo-header's verdict taken); legacy ADV_IND, ADV_NONCONN_IND,
    SCAN_RSP and ADV_SCAN_IND and extended (ADV_EXT_IND/AUX_*) PDUs are read."""
    pos, crc_verdict, coded = 0, None, False
    if phdr:
        if len(data) < 10:
            return Rejected(offset, f"BLE pseudo-header cut short: {len(data)} bytes", data)
        (flags,) = struct.unpack_from("<H", data, 8)
        if flags & 0x0400:
            crc_verdict = bool(flags & 0x0800)
        coded = (flags >> 14) & 3 == 2
        pos = 10
    if len(data) - pos < 4:
        return Rejected(offset, "BLE packet cut short", data)
    (aa,) = struct.unpack_from("<I", data, pos)
    if aa != BLE_ADV_ACCESS_ADDRESS:
        return None  # a data-channel packet
    pos += 5 if coded else 4  # the coded PHY's coding indicator byte
    pdu = pos
    if len(data) - pdu < 5 or pdu + 2 + data[pdu + 1] + 3 != len(data):
        return Rejected(offset + pdu, f"bad BLE PDU length: the packet has "
                                      f"{len(data) - pdu} bytes from the PDU on", data[pdu:])
    plen = data[pdu + 1]
    if crc_verdict is None:
        crc_verdict = ble_crc(data[pdu:pdu + 2 + plen]) == data[pdu + 2 + plen:]
    if not crc_verdict:
        return Rejected(offset + pdu, "BLE CRC error", data[pdu:])
    ptype = data[pdu] & 0xF
    payload = data[pdu + 2:pdu + 2 + plen]
    poff = offset + pdu + 2
    if ptype in (0, 2, 4, 6):
        if plen < 6:
            return Rejected(poff, f"short BLE advertising PDU: {plen} bytes", payload)
        return parse_bt_adv_data(payload[6:], t=t, transmitter=mac_str(payload[5::-1]),
                                 carrier=Carrier.BT_LEGACY, offset=poff + 6)
    if ptype != 7 or plen < 1:
        return None
    ehl = payload[0] & 0x3F
    if 1 + ehl > plen:
        return Rejected(poff, f"bad BLE extended header: {ehl} bytes overrun the PDU", payload)
    transmitter = ""
    if ehl and payload[1] & 0x01:
        if ehl < 7:
            return Rejected(poff, "BLE extended header too short for AdvA", payload)
        transmitter = mac_str(payload[7:1:-1])
    return parse_bt_adv_data(payload[1 + ehl:], t=t, transmitter=transmitter,
                             carrier=Carrier.BT_EXTENDED, offset=poff + 1 + ehl)


def parse_bt_adv_data(adv: bytes, *, t: float, transmitter: str,
                      carrier: str = Carrier.BT_LEGACY, offset: int = 0
                      ) -> Frame | Rejected | None:
    """Advertising data (AD structures, e.g. from an HCI advertising report) → the
    Remote ID frame in its ASTM service data, if any."""
    pos, end = 0, len(adv)
    while pos < end:
        ad_len = adv[pos]
        if ad_len == 0:  # padding to the end
            return None
        body = pos + 1
        if adv[body:body + 4] == bytes((BT_SERVICE_DATA,)) + ASTM_UUID.to_bytes(2, "little") \
                + bytes((ODID_APP_CODE,)):
            if body + ad_len > end:
                return Rejected(offset + pos, f"Remote ID service data overruns the advertising "
                                              f"data: {ad_len} bytes", adv[pos:])
            if ad_len < 5:
                return Rejected(offset + pos, "Remote ID service data has no counter",
                                adv[pos:body + ad_len])
            return Frame(t, transmitter, carrier, adv[body + 4], adv[body + 5:body + ad_len],
                         offset + body + 5)
        pos = body + ad_len
    return None


# --- encoders -----------------------------------------------------------------------

def encode_beacon_element(payload: bytes, *, counter: int) -> bytes:
    """The vendor-specific element (221) that carries Remote ID in a beacon."""
    n = 5 + len(payload)
    if n > 255:
        raise ValueError(f"Remote ID payload of {len(payload)} bytes does not fit an element")
    return bytes((221, n)) + ASD_STAN_OUI + bytes((ODID_OUI_TYPE, counter & 0xFF)) + payload


def encode_beacon_frame(payload: bytes, *, transmitter: str, counter: int,
                        ssid: bytes = b"", interval_tu: int = 100, timestamp_us: int = 0
                        ) -> bytes:
    """An 802.11 beacon (no FCS) broadcasting ``payload`` (a message pack)."""
    mac = mac_bytes(transmitter)
    header = struct.pack("<BBH6s6s6sH", 0x80, 0, 0, b"\xff" * 6, mac, mac, 0)
    fixed = struct.pack("<QHH", timestamp_us, interval_tu, 0x0420)
    ies = bytes((0, len(ssid))) + ssid + bytes((1, 1, 0x8C))
    return header + fixed + ies + encode_beacon_element(payload, counter=counter)


def encode_nan_frame(payload: bytes, *, transmitter: str, counter: int) -> bytes:
    """A NAN service discovery (public action) frame carrying ``payload``, laid out as
    the opendroneid reference does (service descriptor + its extension attribute)."""
    mac = mac_bytes(transmitter)
    header = struct.pack("<BBH6s6s6sH", 0xD0, 0, 0, NAN_NETWORK_ID, mac, NAN_CLUSTER_ID, 0)
    sdf = b"\x04\x09" + WFA_OUI + bytes((NAN_OUI_TYPE,))
    info = bytes((counter & 0xFF,)) + payload
    if len(info) > 255:
        raise ValueError(f"Remote ID payload of {len(payload)} bytes does not fit NAN")
    sda_body = NAN_SERVICE_ID + bytes((0x01, 0x00, 0x10, len(info))) + info
    sda = struct.pack("<BH", 0x03, len(sda_body)) + sda_body
    sdea = struct.pack("<BHBHB", 0x0E, 4, 0x01, 0x0200, counter & 0xFF)
    return header + sdf + sda + sdea


def encode_radiotap(frame: bytes, *, fcs: bool = False) -> bytes:
    """A radiotap header (with the Flags field) before ``frame``; with ``fcs`` the
    frame's CRC-32 is appended and flagged."""
    if fcs:
        frame = frame + zlib.crc32(frame).to_bytes(4, "little")
    return struct.pack("<BBHIBx", 0, 0, 10, 0x2, 0x10 if fcs else 0) + frame


def encode_bt_service_data(payload: bytes, *, counter: int) -> bytes:
    """The AD structure (service data, UUID 0xFFFA, app code 0x0D) carrying ``payload``."""
    n = 5 + len(payload)
    if n > 255:
        raise ValueError(f"Remote ID payload of {len(payload)} bytes does not fit an AD")
    return (bytes((n, BT_SERVICE_DATA)) + ASTM_UUID.to_bytes(2, "little")
            + bytes((ODID_APP_CODE, counter & 0xFF)) + payload)


def encode_ble_adv(adv_data: bytes, *, advertiser: str, extended: bool = False) -> bytes:
    """A BLE link-layer advertising packet (access address, PDU, CRC): ADV_NONCONN_IND
    (legacy, ≤ 31 bytes of data) or AUX_ADV_IND with AdvA and ADI (extended)."""
    adv_a = mac_bytes(advertiser)[::-1]
    if extended:
        ext = bytes((0x01 | 0x08,)) + adv_a + b"\x01\x00"  # flags: AdvA, ADI
        body = bytes((len(ext),)) + ext + adv_data  # AdvMode 0: non-connectable
        header = bytes((0x40 | 7, len(body)))
    else:
        if len(adv_data) > 31:
            raise ValueError("legacy advertising carries at most 31 bytes")
        body = adv_a + adv_data
        header = bytes((0x40 | 2, len(body)))  # TxAdd: random address
    if len(body) > 255:
        raise ValueError("advertising PDU too long")
    pdu = header + body
    return BLE_ADV_ACCESS_ADDRESS.to_bytes(4, "little") + pdu + ble_crc(pdu)


def encode_ble_phdr(ll_packet: bytes, *, channel: int = 37, rssi_dbm: int = -60,
                    coded: bool = False) -> bytes:
    """The LINKTYPE 256 pseudo-header before a link-layer packet (CRC checked and valid);
    ``coded`` marks the LE Coded PHY and inserts its coding indicator byte."""
    flags = 0x0001 | 0x0002 | 0x0010 | 0x0400 | 0x0800 | ((2 << 14) if coded else 0)
    head = struct.pack("<BbbBIH", channel, rssi_dbm, -128, 0, BLE_ADV_ACCESS_ADDRESS, flags)
    if coded:
        ll_packet = ll_packet[:4] + b"\x00" + ll_packet[4:]
    return head + ll_packet
