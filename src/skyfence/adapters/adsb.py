"""ADS-B and Mode S in: Beast binary, AVR hex lines and SBS-1 BaseStation CSV, as
dump1090 and readsb serve them on TCP ports 30005, 30002 and 30003, decoded with
pyModeS 3 (tested with 3.6.1).

Three layers, as in every skyfence adapter (see ``skyfence.adapters.base``):

- **pure framing**: ``parse_beast`` and ``parse_avr`` cut bytes into ``RawFrame``s
  (the Mode S reply, its stream offset, the receiver's MLAT counter, the signal
  byte) and return the unfinished tail; ``parse_sbs`` reads one BaseStation line;
- **stateful decoders**, one per framing, each a ``StreamDecoder``: ``BeastDecoder``
  and ``AvrDecoder`` (both ``ModeSDecoder``s: CRC and address checks, per-aircraft
  state, CPR position decoding) and ``SbsDecoder``;
- **transport**: ``stream_tcp``, a reconnecting asyncio client.

Out come, in stream order, one small frozen message per accepted frame
(``AllCall``, ``Surveillance``, ``Identification``, ``Position``, ``Velocity``,
``AircraftStatus``, ``TargetState``, ``OperationalStatus``, ``SbsMessage``; their
JSON fields are declared in ``MESSAGE_SCHEMAS``) and a ``Rejected`` for everything
refused. A ``Position`` or ``SbsMessage`` whose position is known carries a
``PositionReport`` (``position_reports`` collects them for ``position_detections``).

Frames are accepted by their parity: DF17/18 need a zero CRC remainder; DF11 a
remainder below 0x80 (the interrogator code overlaid on the parity); DF0/4/5/16/20/21
overlay the aircraft address on the parity, so any frame "decodes" to some address,
and we accept one only when that address was heard in a DF11 or DF17/18 (DF18 with
an ICAO address) within ``address_ttl_s`` — the rule dump1090 and readsb follow. Not
decoded, and rejected as ``unsupported``: Mode A/C replies, DF19/22/24, DF18 coarse
TIS-B and management messages, ADS-B type codes 0 and 23–27 and 30, and the Comm-B
MB field of DF20/21 (only their altitude or squawk is read).

Times: ``feed(data, t=...)`` takes the receive time (UTC Unix seconds) of the chunk;
every message completed by that chunk carries it (NaN when not given). Intervals —
CPR pair windows, position ages, the speed check, address expiry — are measured in
receive times. Without them (a recording replayed with no times) they are measured
with the Beast/AVR MLAT counter (``mlat_clock_hz``, 12 MHz for dump1090/readsb), which
only orders frames and gives their spacing: its epoch is arbitrary, and an aggregating
readsb forwards frames with the counters of several receivers, so it is no substitute
for a receive time. With neither, no even/odd pair can be matched, and positions come
only from the receiver reference.

Heights (``PositionReport.height_m``, WGS84 ellipsoid): the GNSS height of TC20–22
(HAE); else the barometric altitude plus the GNSS−baro difference of TC19 (≤ 30 s
old); else the barometric altitude taken as height above mean sea level (EGM96), with
``std_v_m`` widened for the difference between pressure and true altitude (100 m and
4 % of the height, 1σ). Surface positions, and airborne ones without an altitude, use
the aircraft's last barometric altitude (≤ 60 s old, from any reply); with none, 0 m
above mean sea level with a σ of 1 km.

Horizontal 1σ (``std_h_m``): the 95 % bound of NACp (TC29/31) divided by 2.448; else
the containment radius of NIC (type code and supplements; NUCp for ADS-B version 0)
divided by 2.448; else, for a position whose aircraft vouches for nothing, NIC 1's
20 NM / 2.448. SBS lines carry no accuracy: 50 m.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import dataclasses
import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any, Final, NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# pyModeS 3 keeps its CRC and its altitude- and identity-code decoders in private
# modules (the public Message wraps them, at twice the cost per frame); they are plain
# functions, and the package is pinned.
from pyModeS._altcode import altcode_to_altitude
from pyModeS._bits import crc_remainder
from pyModeS._idcode import idcode_to_squawk
from pyModeS.decoder.bds.bds05 import decode_bds05
from pyModeS.decoder.bds.bds06 import decode_bds06
from pyModeS.decoder.bds.bds08 import decode_bds08
from pyModeS.decoder.bds.bds09 import decode_bds09
from pyModeS.decoder.bds.bds61 import decode_bds61
from pyModeS.decoder.bds.bds62 import decode_bds62
from pyModeS.decoder.bds.bds65 import decode_bds65
from pyModeS.position import (
    airborne_position_pair,
    airborne_position_with_ref,
    surface_position_pair,
    surface_position_with_ref,
)

from skyfence.adapters.base import SHOWN_BYTES, Counters, Message, PositionReport, Rejected
from skyfence.errors import InputError
from skyfence.geoid import geoid_height_m
from skyfence.types import Field, Schema

__all__ = [
    "MESSAGE_SCHEMAS",
    "AircraftStatus",
    "AllCall",
    "AvrDecoder",
    "BeastDecoder",
    "Garbage",
    "Identification",
    "ModeSDecoder",
    "OperationalStatus",
    "Position",
    "RawFrame",
    "SbsDecoder",
    "SbsMessage",
    "Surveillance",
    "TargetState",
    "TimedStreamDecoder",
    "Velocity",
    "parse_avr",
    "parse_beast",
    "parse_sbs",
    "position_reports",
    "stream_tcp",
]

log = logging.getLogger("skyfence.adapters.adsb")

NAN: Final = math.nan
_NAN3: Final = (NAN, NAN, NAN)
_FT_M: Final = 0.3048
_KT_MPS: Final = 1852.0 / 3600.0
_FPM_MPS: Final = 0.3048 / 60.0
_NM_M: Final = 1852.0
_EARTH_RADIUS_M: Final = 6_371_008.8
#: A 95 % radius of a circular 2-D Gaussian is sqrt(-2 ln 0.05) = 2.448 σ.
_K95_2D: Final = 2.448
#: A 95 % two-sided bound of a 1-D Gaussian is 1.96 σ.
_K95_1D: Final = 1.96

# --------------------------------------------------------------------------- messages


def _field_json(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, tuple):
        return [_field_json(v) for v in value]
    if isinstance(value, PositionReport):
        return {f.name: _field_json(getattr(value, f.name))
                for f in dataclasses.fields(PositionReport)}
    return value


def _to_json(message: Any, kind: str) -> dict[str, Any]:
    """A message as JSON: its kind, then its fields; non-finite floats become null."""
    out: dict[str, Any] = {"type": kind}
    for f in dataclasses.fields(message):
        out[f.name] = _field_json(getattr(message, f.name))
    return out


@dataclass(frozen=True, slots=True)
class AllCall:
    """DF11 all-call reply: the aircraft's address and transponder capability (0–7)."""

    t: float
    icao: str
    df: int
    capability: int

    def to_json(self) -> dict[str, Any]:
        return _to_json(self, "all_call")


@dataclass(frozen=True, slots=True)
class Surveillance:
    """DF0/4/16/20 (altitude) or DF5/21 (identity) reply; ``altitude_ft`` is the
    barometric (pressure) altitude, None when the reply has an identity or the
    altitude is unavailable; ``squawk`` four octal digits, None on altitude replies."""

    t: float
    icao: str
    df: int
    altitude_ft: int | None
    squawk: str | None

    def to_json(self) -> dict[str, Any]:
        return _to_json(self, "surveillance")


@dataclass(frozen=True, slots=True)
class Identification:
    """TC1–4: callsign and emitter category (set letter A for TC4 … D for TC1, then the
    category digit; "A0" means the aircraft gives no category)."""

    t: float
    icao: str
    df: int
    tc: int
    callsign: str
    category: str

    def to_json(self) -> dict[str, Any]:
        return _to_json(self, "identification")


@dataclass(frozen=True, slots=True)
class Position:
    """TC5–8 (surface) or TC9–18/20–22 (airborne) position frame.

    ``altitude_ft`` barometric (TC9–18), ``gnss_height_ft`` above the WGS84 ellipsoid
    (TC20–22); ``lat_deg``/``lon_deg`` once the CPR position is resolved (None while
    waiting for a pair or when it failed the speed check); ``groundspeed_kt`` and
    ``track_deg`` from the surface movement field; ``nic`` the navigation integrity
    category and ``rc_m`` its horizontal containment radius (for ADS-B version 0,
    None and the NUCp protection limit); ``report`` the position as a PositionReport.
    """

    t: float
    icao: str
    df: int
    tc: int
    surface: bool
    cpr_odd: bool
    altitude_ft: int | None
    gnss_height_ft: int | None
    lat_deg: float | None
    lon_deg: float | None
    groundspeed_kt: float | None
    track_deg: float | None
    nic: int | None
    rc_m: float | None
    report: PositionReport | None

    def to_json(self) -> dict[str, Any]:
        return _to_json(self, "position")


@dataclass(frozen=True, slots=True)
class Velocity:
    """TC19 airborne velocity.

    Subtypes 1–2 give the ground velocity (``groundspeed_kt``, ``track_deg`` true, and
    ``velocity_enu_mps``); subtypes 3–4 the airspeed (``airspeed_kt``, ``airspeed_type``
    "IAS"/"TAS") and ``heading_deg``, and no ground velocity. ``vertical_rate_fpm`` from
    ``vertical_rate_source`` "baro" or "gnss"; ``gnss_minus_baro_ft`` the GNSS height
    minus the barometric altitude; ``nacv`` the velocity accuracy category.
    """

    t: float
    icao: str
    df: int
    tc: int
    subtype: int
    groundspeed_kt: float | None
    track_deg: float | None
    airspeed_kt: int | None
    airspeed_type: str | None
    heading_deg: float | None
    vertical_rate_fpm: int | None
    vertical_rate_source: str
    gnss_minus_baro_ft: int | None
    nacv: int
    velocity_enu_mps: tuple[float, float, float] | None

    def to_json(self) -> dict[str, Any]:
        return _to_json(self, "velocity")


@dataclass(frozen=True, slots=True)
class AircraftStatus:
    """TC28: subtype 1 emergency state (0 none … 6 downed) and squawk; subtype 2 is an
    ACAS resolution advisory (not decoded further)."""

    t: float
    icao: str
    df: int
    tc: int
    subtype: int
    emergency_state: int | None
    squawk: str | None

    def to_json(self) -> dict[str, Any]:
        return _to_json(self, "aircraft_status")


@dataclass(frozen=True, slots=True)
class TargetState:
    """TC29 target state and status: selected altitude (ft) and heading (deg), the
    barometric setting (hPa), NACp, SIL and NIC-baro."""

    t: float
    icao: str
    df: int
    tc: int
    selected_altitude_ft: int | None
    selected_heading_deg: float | None
    baro_setting_hpa: float | None
    nacp: int
    sil: int
    nic_baro: int

    def to_json(self) -> dict[str, Any]:
        return _to_json(self, "target_state")


@dataclass(frozen=True, slots=True)
class OperationalStatus:
    """TC31 operational status: ADS-B version (0 DO-260, 1 DO-260A, 2 DO-260B),
    NACp, NIC supplements A and C, GVA (geometric vertical accuracy code) and SIL;
    subtype 0 airborne, 1 surface."""

    t: float
    icao: str
    df: int
    tc: int
    subtype: int
    version: int
    nacp: int
    nic_supplement_a: int
    nic_supplement_c: int
    gva: int
    sil: int

    def to_json(self) -> dict[str, Any]:
        return _to_json(self, "operational_status")


@dataclass(frozen=True, slots=True)
class SbsMessage:
    """One SBS-1 BaseStation ``MSG`` line: transmission type 1–8 and the fields it
    filled (None when empty), straight from the CSV. ``t`` is its generated date and
    time; ``altitude_ft`` barometric; ``report`` set when it has a position."""

    t: float
    icao: str
    msg_type: int
    callsign: str | None
    altitude_ft: float | None
    groundspeed_kt: float | None
    track_deg: float | None
    lat_deg: float | None
    lon_deg: float | None
    vertical_rate_fpm: float | None
    squawk: str | None
    on_ground: bool | None
    report: PositionReport | None = None

    def to_json(self) -> dict[str, Any]:
        return _to_json(self, "sbs")


def _schema(name: str, *fields: Field) -> Schema:
    common = (Field("type", "str", "", "message kind: " + name),
              Field("t", "float64", "s", "receive time (SBS: generated time), UTC Unix "
                    "epoch; null when the feed gave none"),
              Field("icao", "str", "", "24-bit address, 6 upper-case hex digits; '~' "
                    "first for a non-ICAO (anonymous, TIS-B) address"))
    return Schema(name, common + fields)


_DF = Field("df", "int64", "", "Mode S downlink format")
_TC = Field("tc", "int64", "", "ADS-B type code")

#: The JSON fields of every message kind (``to_json()["type"]``), with units.
MESSAGE_SCHEMAS: Final[dict[str, Schema]] = {
    "all_call": _schema("all_call", _DF, Field("capability", "int64", "", "CA field 0–7")),
    "surveillance": _schema(
        "surveillance", _DF,
        Field("altitude_ft", "int64", "ft", "barometric altitude (DF0/4/16/20)"),
        Field("squawk", "str", "", "Mode A code, 4 octal digits (DF5/21)")),
    "identification": _schema(
        "identification", _DF, _TC, Field("callsign", "str", "", "flight id, stripped"),
        Field("category", "str", "", "emitter category: A–D (TC4–1) and digit 0–7")),
    "position": _schema(
        "position", _DF, _TC,
        Field("surface", "bool", "", "surface (TC5–8) rather than airborne position"),
        Field("cpr_odd", "bool", "", "odd CPR format"),
        Field("altitude_ft", "int64", "ft", "barometric altitude (TC9–18)"),
        Field("gnss_height_ft", "int64", "ft", "GNSS height above the ellipsoid (TC20–22)"),
        Field("lat_deg", "float64", "deg", "WGS84 latitude once resolved"),
        Field("lon_deg", "float64", "deg", "WGS84 longitude once resolved"),
        Field("groundspeed_kt", "float64", "kt", "surface movement"),
        Field("track_deg", "float64", "deg", "surface ground track, clockwise from true north"),
        Field("nic", "int64", "", "navigation integrity category (null for ADS-B v0)"),
        Field("rc_m", "float64", "m", "horizontal containment radius (v0: NUCp HPL)"),
        Field("report", "PositionReport", "", "the resolved position report, or null")),
    "velocity": _schema(
        "velocity", _DF, _TC, Field("subtype", "int64", "", "1–2 ground speed, 3–4 airspeed"),
        Field("groundspeed_kt", "float64", "kt", "ground speed"),
        Field("track_deg", "float64", "deg", "ground track, clockwise from true north"),
        Field("airspeed_kt", "int64", "kt", "indicated or true airspeed"),
        Field("airspeed_type", "str", "", "IAS or TAS"),
        Field("heading_deg", "float64", "deg", "heading (magnetic or true, see HRD)"),
        Field("vertical_rate_fpm", "int64", "ft/min", "vertical rate, up positive"),
        Field("vertical_rate_source", "str", "", "baro or gnss"),
        Field("gnss_minus_baro_ft", "int64", "ft", "GNSS height minus barometric altitude"),
        Field("nacv", "int64", "", "velocity accuracy category"),
        Field("velocity_enu_mps", "float64", "m/s", "east, north, up ground velocity", (3,))),
    "aircraft_status": _schema(
        "aircraft_status", _DF, _TC, Field("subtype", "int64", "", "1 emergency, 2 ACAS RA"),
        Field("emergency_state", "int64", "", "0 none, 1 general, 2 medical, 3 fuel, "
              "4 no comms, 5 unlawful interference, 6 downed"),
        Field("squawk", "str", "", "Mode A code, 4 octal digits")),
    "target_state": _schema(
        "target_state", _DF, _TC,
        Field("selected_altitude_ft", "int64", "ft", "MCP/FCU or FMS selected altitude"),
        Field("selected_heading_deg", "float64", "deg", "selected heading"),
        Field("baro_setting_hpa", "float64", "hPa", "barometric pressure setting"),
        Field("nacp", "int64", "", "position accuracy category"),
        Field("sil", "int64", "", "source integrity level"),
        Field("nic_baro", "int64", "", "barometric altitude integrity")),
    "operational_status": _schema(
        "operational_status", _DF, _TC, Field("subtype", "int64", "", "0 airborne, 1 surface"),
        Field("version", "int64", "", "ADS-B version"),
        Field("nacp", "int64", "", "position accuracy category"),
        Field("nic_supplement_a", "int64", "", "NIC supplement A"),
        Field("nic_supplement_c", "int64", "", "NIC supplement C (surface, version 2)"),
        Field("gva", "int64", "", "geometric vertical accuracy code (version 2)"),
        Field("sil", "int64", "", "source integrity level")),
    "sbs": _schema(
        "sbs", Field("msg_type", "int64", "", "transmission type 1–8"),
        Field("callsign", "str", "", "callsign"),
        Field("altitude_ft", "float64", "ft", "barometric altitude"),
        Field("groundspeed_kt", "float64", "kt", "ground speed"),
        Field("track_deg", "float64", "deg", "ground track"),
        Field("lat_deg", "float64", "deg", "WGS84 latitude"),
        Field("lon_deg", "float64", "deg", "WGS84 longitude"),
        Field("vertical_rate_fpm", "float64", "ft/min", "vertical rate"),
        Field("squawk", "str", "", "Mode A code"),
        Field("on_ground", "bool", "", "on the ground"),
        Field("report", "PositionReport", "", "the position as a report, or null")),
}


def position_reports(outputs: Iterable[Message | Rejected]) -> list[PositionReport]:
    """The PositionReports carried by a decoder's outputs, in order."""
    return [m.report for m in outputs
            if isinstance(m, Position | SbsMessage) and m.report is not None]


# --------------------------------------------------------------------------- pure framing


class RawFrame(NamedTuple):
    """One reply cut from a byte stream (a NamedTuple: a parser makes one per frame).

    ``offset``: where its framing starts, in bytes from the start of the stream;
    ``data``: the Mode S reply (7 or 14 bytes) or Mode A/C reply (2 bytes);
    ``mlat_ticks``: the receiver's 48-bit MLAT counter (−1 when the framing has none);
    ``signal``: the Beast signal byte (−1 when none).
    """

    offset: int
    data: bytes
    mlat_ticks: int = -1
    signal: int = -1


class Garbage(NamedTuple):
    """Bytes that start no frame, from ``offset``; a run cut by the end of a buffer
    continues in the next one (stream decoders join them)."""

    offset: int
    data: bytes


_ESC: Final = 0x1A
_ESC_BYTE: Final = b"\x1a"
#: Beast body length after the type byte: 6 MLAT counter + 1 signal + the reply.
_BEAST_BODY: Final = {0x31: 9, 0x32: 14, 0x33: 21}
#: dump1090 and readsb stamp frames they synthesise from MLAT results with this counter.
_MAGIC_MLAT: Final = 0xFF004D4C4154


def _unescape(buf: bytes, start: int, need: int) -> tuple[bytes | None, int]:
    """``need`` body bytes from ``buf[start:]`` with 0x1a 0x1a read as one 0x1a.

    (body, end) when complete; (None, -1) when the buffer ends first; (None, j) when an
    unpaired 0x1a at j — the start of the next frame — cuts the body short.
    """
    out = bytearray()
    j, n = start, len(buf)
    while len(out) < need:
        if j >= n:
            return None, -1
        b = buf[j]
        if b == _ESC:
            if j + 1 >= n:
                return None, -1
            if buf[j + 1] != _ESC:
                return None, j
            j += 1
        out.append(b)
        j += 1
    return bytes(out), j


def parse_beast(buf: bytes, *, offset: int = 0
                ) -> tuple[list[RawFrame | Garbage | Rejected], bytes]:
    """Beast binary frames (0x1a, type '1' Mode A/C, '2' Mode S short, '3' Mode S long,
    a 6-byte MLAT counter, a signal byte, the reply; 0x1a doubled inside) from ``buf``.

    ``offset`` is the stream offset of ``buf[0]``. Returns the records in order —
    frames, runs of bytes that start no frame, and frames cut short by the next frame
    marker — and the unfinished tail, to be prepended to the next buffer.
    """
    out: list[RawFrame | Garbage | Rejected] = []
    n = len(buf)
    i = 0
    g = -1  # start of the current garbage run
    find = buf.find
    while i < n:
        if buf[i] != _ESC:
            if g < 0:
                g = i
            j = find(_ESC_BYTE, i)
            i = n if j < 0 else j
            continue
        if i + 1 >= n:
            break
        need = _BEAST_BODY.get(buf[i + 1], 0)
        if not need:
            if g < 0:
                g = i
            i += 1
            continue
        end = i + 2 + need
        body: bytes | None = buf[i + 2:end]
        if end > n or find(_ESC_BYTE, i + 2, end) >= 0:
            body, end = _unescape(buf, i + 2, need)
            if body is None:
                if end < 0:
                    break
                if g >= 0:
                    out.append(Garbage(offset + g, buf[g:i]))
                    g = -1
                out.append(Rejected(offset + i, "truncated: Beast frame cut short by a "
                                    "frame marker", buf[i:end]))
                i = end
                continue
        if g >= 0:
            out.append(Garbage(offset + g, buf[g:i]))
            g = -1
        assert body is not None
        out.append(RawFrame(offset + i, body[7:], int.from_bytes(body[:6], "big"), body[6]))
        i = end
    if g >= 0:
        out.append(Garbage(offset + g, buf[g:i]))
    return out, buf[i:]


#: Longest AVR line we read: '<', 12 + 2 + 28 hex digits, ';' and some slack.
_AVR_MAX_LINE: Final = 128
_AVR_TOKEN: Final = re.compile(rb"([*@<])([0-9A-Fa-f]*);")
#: Hex digits before the reply: '*' none, '@' a 12-digit MLAT counter, '<' counter + signal.
_AVR_PREFIX: Final = {ord("*"): 0, ord("@"): 12, ord("<"): 14}
_REPLY_HEX: Final = frozenset((4, 14, 28))


def _avr_token(out: list[RawFrame | Rejected], at: int, kind: int, digits: bytes) -> None:
    skip = _AVR_PREFIX[kind]
    if len(digits) - skip not in _REPLY_HEX:
        out.append(Rejected(at, f"bad AVR: {len(digits)} hex digits after {chr(kind)!r}",
                            digits[:SHOWN_BYTES]))
        return
    data = binascii.unhexlify(digits[skip:])
    mlat = int(digits[:12], 16) if skip else -1
    signal = int(digits[12:14], 16) if skip == 14 else -1
    out.append(RawFrame(at, data, mlat, signal))


def _avr_line(out: list[RawFrame | Rejected], line: bytes, at: int) -> None:
    if len(line) > _AVR_MAX_LINE:
        out.append(Rejected(at, f"bad AVR: line longer than {_AVR_MAX_LINE} bytes",
                            line[:SHOWN_BYTES]))
        return
    s = line.strip()
    if not s:
        return
    at += line.find(s[:1])
    # The usual line: '*', 14 or 28 hex digits, ';'.
    if s[0] == 42 and s[-1] == 59 and (len(s) == 16 or len(s) == 30):
        with contextlib.suppress(binascii.Error):
            out.append(RawFrame(at, binascii.unhexlify(s[1:-1])))
            return
    pos = 0
    for m in _AVR_TOKEN.finditer(s):
        gap = s[pos:m.start()]
        if gap.strip():
            out.append(Rejected(at + pos, "bad AVR: not a frame", gap[:SHOWN_BYTES]))
        _avr_token(out, at + m.start(), s[m.start()], m.group(2))
        pos = m.end()
    if s[pos:].strip():
        out.append(Rejected(at + pos, "bad AVR: not a frame", s[pos:pos + SHOWN_BYTES]))


def parse_avr(buf: bytes, *, offset: int = 0) -> tuple[list[RawFrame | Rejected], bytes]:
    """AVR hex lines — ``*<reply>;``, ``@<12-digit MLAT counter><reply>;``,
    ``<<counter><2-digit signal><reply>;`` — from the complete lines of ``buf``.

    ``offset`` is the stream offset of ``buf[0]``. Text that is no frame is rejected
    (with its offset); a line longer than 128 bytes is rejected whole. Returns the
    records and the unfinished last line.
    """
    out: list[RawFrame | Rejected] = []
    start = 0
    find = buf.find
    while (nl := find(b"\n", start)) >= 0:
        _avr_line(out, buf[start:nl], offset + start)
        start = nl + 1
    return out, buf[start:]


#: BaseStation records other than MSG that SBS-1 feeds carry.
_SBS_OTHER: Final = frozenset(("SEL", "ID", "AIR", "STA", "CLK"))
_SBS_ICAO: Final = re.compile(r"~?[0-9A-F]{6}")
_SBS_SQUAWK: Final = re.compile(r"[0-7]{4}")
_SBS_DATE: Final = re.compile(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})", re.ASCII)
_SBS_TIME: Final = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?", re.ASCII)
_SBS_FIELDS: Final = 22


class _SbsFieldError(ValueError):
    pass


def _sbs_number(fields: list[str], i: int, name: str) -> float | None:
    text = fields[i].strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise _SbsFieldError(f"field {i + 1} ({name}) {text[:20]!r} is not a number") from None
    if not math.isfinite(value):
        raise _SbsFieldError(f"field {i + 1} ({name}) {text[:20]!r} is not finite")
    return value


def _sbs_time(date: str, clock: str, tz: tzinfo) -> float:
    d = _SBS_DATE.fullmatch(date.strip())
    c = _SBS_TIME.fullmatch(clock.strip())
    if d is None or c is None:
        raise _SbsFieldError(f"date/time {date[:12]!r} {clock[:16]!r} is not "
                             "YYYY/MM/DD HH:MM:SS.fff")
    micro = int((c.group(4) or "0").ljust(6, "0"))
    try:
        when = datetime(int(d.group(1)), int(d.group(2)), int(d.group(3)), int(c.group(1)),
                        int(c.group(2)), int(c.group(3)), micro, tzinfo=tz)
    except ValueError as err:
        raise _SbsFieldError(f"date/time {date[:12]!r} {clock[:16]!r}: {err}") from None
    return when.timestamp()


def parse_sbs(line: str, *, offset: int = 0, tz: tzinfo | None = None, t: float = NAN
              ) -> SbsMessage | Rejected:
    """One SBS-1 BaseStation line (without its line end) as an SbsMessage, or why not.

    Times are read in ``tz`` (UTC when None); a line with an empty date/time gets
    ``t``. ``offset`` is the line's stream offset, for the rejection.
    """
    raw = line.encode("utf-8", "replace")[:SHOWN_BYTES]
    f = line.split(",")
    kind = f[0].strip()
    if kind != "MSG":
        if kind in _SBS_OTHER:
            return Rejected(offset, f"unsupported: SBS {kind} record", raw)
        return Rejected(offset, "bad SBS: not a BaseStation record", raw)
    if len(f) < _SBS_FIELDS:
        return Rejected(offset, f"bad SBS: {len(f)} fields, expected {_SBS_FIELDS}", raw)
    try:
        kind_text = f[1].strip()
        if kind_text not in ("1", "2", "3", "4", "5", "6", "7", "8"):
            raise _SbsFieldError(f"transmission type {kind_text[:8]!r} is not 1–8")
        msg_type = int(kind_text)
        icao = f[4].strip().upper()
        if _SBS_ICAO.fullmatch(icao) is None:
            raise _SbsFieldError(f"hex ident {f[4][:10]!r} is not 6 hex digits")
        when = t if not (f[6].strip() or f[7].strip()) else _sbs_time(
            f[6], f[7], tz if tz is not None else ZoneInfo("UTC"))
        lat = _sbs_number(f, 14, "latitude")
        lon = _sbs_number(f, 15, "longitude")
        if (lat is None) != (lon is None):
            raise _SbsFieldError("a latitude without a longitude, or the reverse")
        if lat is not None and lon is not None and (abs(lat) > 90.0 or abs(lon) > 180.0):
            raise _SbsFieldError(f"position {lat}, {lon} is off the globe")
        squawk = f[17].strip() or None
        if squawk is not None and _SBS_SQUAWK.fullmatch(squawk) is None:
            raise _SbsFieldError(f"squawk {squawk[:8]!r} is not 4 octal digits")
        ground = f[21].strip()
        if ground not in ("", "0", "1", "-1"):
            raise _SbsFieldError(f"on-ground flag {ground[:8]!r} is not 0 or -1")
        return SbsMessage(
            t=when, icao=icao, msg_type=msg_type, callsign=f[10].strip() or None,
            altitude_ft=_sbs_number(f, 11, "altitude"),
            groundspeed_kt=_sbs_number(f, 12, "ground speed"),
            track_deg=_sbs_number(f, 13, "track"), lat_deg=lat, lon_deg=lon,
            vertical_rate_fpm=_sbs_number(f, 16, "vertical rate"), squawk=squawk,
            on_ground=None if not ground else ground != "0")
    except _SbsFieldError as err:
        return Rejected(offset, f"bad SBS: {err}", raw)


# --------------------------------------------------------------------------- accuracy tables

#: NACp → estimated position uncertainty (95 % horizontal bound), metres (DO-260B).
_EPU_M: Final = (NAN, 10 * _NM_M, 4 * _NM_M, 2 * _NM_M, _NM_M, 0.5 * _NM_M, 0.3 * _NM_M,
                 0.1 * _NM_M, 0.05 * _NM_M, 30.0, 10.0, 3.0, NAN, NAN, NAN, NAN)
#: GVA → geometric vertical accuracy (95 % bound), metres (DO-260B; 0 unknown, 3 reserved).
_GVA_M: Final = (NAN, 150.0, 45.0, NAN)
#: ADS-B version 0 reports NUCp through the type code: its horizontal protection limit, m.
_HPL_V0_M: Final = {5: 7.5, 6: 25.0, 7: 185.2, 8: 370.4, 9: 7.5, 10: 25.0, 11: 185.2,
                    12: 370.4, 13: 926.0, 14: 1852.0, 15: 3704.0, 16: 18520.0, 17: 37040.0,
                    20: 7.5, 21: 25.0}


def _nic(tc: int, version: int, a: int, b: int, c: int) -> tuple[int | None, float]:
    """(NIC, containment radius Rc in metres; NaN unknown) from the type code and the
    NIC supplements (A from TC31, B from the position frame in version 2, C from a
    surface TC31), per DO-260B tables 2-14 and 2-15 and DO-260A for version 1."""
    if version == 0:
        return None, _HPL_V0_M.get(tc, NAN)
    if version == 1:
        b, c = a, 0  # version 1 has one supplement; its position bit 8 is the SAF
    if tc in (9, 20, 5):
        return 11, 7.5
    if tc in (10, 21, 6):
        return 10, 25.0
    if tc == 11 or tc == 7:
        return (9, 75.0) if a and (b or tc == 7) else (8, 185.2)
    if tc == 12:
        return 7, 370.4
    if tc == 13:
        return 6, (1111.2 if a and b else 555.6 if b else 926.0)
    if tc == 14:
        return 5, 1852.0
    if tc == 15:
        return 4, 3704.0
    if tc == 16:
        return (3, 7408.0) if a and b else (2, 14816.0)
    if tc == 17:
        return 1, 37040.0
    if tc == 8:
        if a and c:
            return 7, 370.4
        if a or c:
            return 6, 555.6 if c else 1111.2
    return 0, NAN


#: A position whose aircraft vouches for no accuracy (NIC 0, NACp 0) is given NIC 1's
#: 20 NM containment radius as its 95 % bound: usable for association, not for much else.
_NO_INTEGRITY_STD_M: Final = 20 * _NM_M / _K95_2D
#: SBS carries no accuracy. Most transponders report NACp 8–10 (EPU ≤ 93 m, σ ≤ 38 m);
#: we assume somewhat worse.
_SBS_STD_H_M: Final = 50.0
#: Vertical σ of a GNSS height whose GVA is unknown: GVA 2's 45 m bound.
_GNSS_STD_V_M: Final = 45.0 / _K95_1D
#: Quantisation σ of a barometric altitude: 25 ft steps (Q bit set) or 100 ft (Gillham).
_Q25_STD_M: Final = 25 * _FT_M / math.sqrt(12)
_Q100_STD_M: Final = 100 * _FT_M / math.sqrt(12)
#: Pressure altitude read as height above mean sea level is off by the QNH deviation
#: from 1013.25 hPa (≈ 8.4 m per hPa; σ ≈ 12 hPa → 100 m) and by the temperature
#: deviation from ISA (≈ 4 % of the height per 10 °C): hundreds of feet. The same
#: figures as the ASTERIX adapter's pressure_altitude_std_m and _fraction.
_QNH_STD_M: Final = 100.0
_ISA_TEMP_FRACTION: Final = 0.04
#: Height unknown (a surface position with no recent altitude): 0 m AMSL, this σ.
_UNKNOWN_HEIGHT_STD_M: Final = 1000.0
#: How long the state used to complete a position stays usable, in seconds.
_ALTITUDE_MAX_AGE_S: Final = 60.0
_GNSS_BARO_MAX_AGE_S: Final = 30.0
_VELOCITY_MAX_AGE_S: Final = 10.0
#: The speed check allows this much on top of max_speed_mps × elapsed time: position
#: noise of two reports (up to NACp 6) and receive-time jitter when there is no counter.
_JUMP_SLACK_M: Final = 500.0
_SWEEP_INTERVAL_S: Final = 10.0
_NON_ICAO: Final = 1 << 24
_ME_MASK: Final = (1 << 56) - 1
#: DF18 CF2 (fine TIS-B) and CF6 (ADS-R) flag a non-ICAO address with the IMF bit,
#: whose place depends on the type code (shift within the 56-bit ME; as readsb reads it).
_IMF_SHIFT: Final = {**dict.fromkeys(range(5, 9), 35), **dict.fromkeys(range(9, 19), 48),
                     19: 47, **dict.fromkeys(range(20, 23), 48), 28: 0, 29: 5, 31: 0}
_CF_UNSUPPORTED: Final = {3: "coarse TIS-B", 4: "TIS-B/ADS-R management", 7: "reserved"}
_DF_NAMES: Final = {19: "military extended squitter", 22: "military", 24: "Comm-D"}


@lru_cache(maxsize=4096)
def _geoid_cell_m(lat_key: int, lon_key: int) -> float:
    return float(geoid_height_m(lat_key * 0.05, lon_key * 0.05))


def _geoid_m(lat_deg: float, lon_deg: float) -> float:
    """EGM96 geoid height, cached on a 0.05° grid: the geoid changes by well under a
    metre over 3 km, and a grid lookup per report is too slow for a busy feed."""
    return _geoid_cell_m(round(lat_deg * 20.0), round(lon_deg * 20.0))


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: exact enough for a speed check at any range."""
    dlat = math.radians(lat2 - lat1)
    dlon = math.radians((lon2 - lon1 + 180.0) % 360.0 - 180.0)
    return _EARTH_RADIUS_M * math.hypot(dlat, dlon * math.cos(math.radians(lat1 + lat2) * 0.5))


def _ac12_ft(ac12: int) -> int | None:
    """The 12-bit altitude field of an airborne position (no M bit) in feet."""
    return altcode_to_altitude(((ac12 >> 6) << 7) | (ac12 & 0x3F))


# --------------------------------------------------------------------------- stateful decoding


@dataclass(slots=True)
class _Aircraft:
    """What one address has told us; clocks in the decoder's interval clock (s)."""

    identity: str
    category: str = ""
    last_seen: float = NAN
    version: int = 0
    nic_a: int = 0
    nic_c: int = 0
    nacp: int = 0
    gva: int = 0
    alt_ft: float = NAN
    alt_q25: bool = True
    alt_clock: float = NAN
    gmb_ft: float = NAN
    gmb_clock: float = NAN
    velocity: tuple[float, float, float] = _NAN3
    velocity_clock: float = NAN
    # last even and odd CPR frame: (lat_cpr, lon_cpr, clock, surface)
    even: tuple[int, int, float, bool] | None = None
    odd: tuple[int, int, float, bool] | None = None
    # the last accepted position that local decoding and the speed check start from
    anchor_lat: float = NAN
    anchor_lon: float = NAN
    anchor_clock: float = NAN


def _finite(name: str, value: float, *, positive: bool = True) -> float:
    v = float(value)
    if not math.isfinite(v) or (v <= 0.0 if positive else v < 0.0):
        raise InputError(f"{name} = {value!r} must be a finite number above 0"
                         if positive else f"{name} = {value!r} must be finite and ≥ 0",
                         field=name)
    return v


class ModeSDecoder:
    """Mode S replies (7- or 14-byte frames) in, messages and rejections out, keeping
    per-aircraft state: callsign, category, accuracy, altitudes, velocity, CPR frames.

    Positions: an airborne frame is decoded globally with the aircraft's frame of the
    other parity if that came at most ``pair_window_s`` earlier; otherwise locally from
    the aircraft's last accepted position if it is at most ``local_max_age_s`` old;
    otherwise locally from the receiver reference (``reference_lat_deg``,
    ``reference_lon_deg``) if given, which is unambiguous within 180 NM — such a
    position is reported but never used as the start for later frames, since a rare
    aircraft beyond 180 NM would alias. A surface frame needs a reference even in a
    pair (to pick its 90° quadrant): it is decoded locally from the aircraft's recent
    position, else as a pair with the receiver reference, else locally from the
    receiver reference (unambiguous within 45 NM). Each new position must lie within
    ``max_speed_mps`` × elapsed time + 500 m of the last accepted one, or it is
    rejected ("implausible position") and the frame's message carries no position; a
    global position that fails also drops the last one, so that a wrong start cannot
    lock out the truth.

    ``mlat_clock_hz``: rate of the receiver MLAT counter, used for intervals when
    frames come without a receive time (0: never); ``address_ttl_s``: how long an
    address heard in DF11/17/18 vouches for address-parity replies;
    ``aircraft_ttl_s``: state of an address silent this long is dropped.
    """

    def __init__(self, *, reference_lat_deg: float | None = None,
                 reference_lon_deg: float | None = None, max_speed_mps: float = 600.0,
                 pair_window_s: float = 10.0, local_max_age_s: float = 30.0,
                 address_ttl_s: float = 60.0, aircraft_ttl_s: float = 300.0,
                 mlat_clock_hz: float = 12e6) -> None:
        if (reference_lat_deg is None) != (reference_lon_deg is None):
            raise InputError("give both reference_lat_deg and reference_lon_deg, or neither",
                             field="reference_lat_deg")
        self._ref: tuple[float, float] | None = None
        if reference_lat_deg is not None and reference_lon_deg is not None:
            lat, lon = float(reference_lat_deg), float(reference_lon_deg)
            if not (abs(lat) <= 90.0 and abs(lon) <= 180.0):
                raise InputError(f"receiver reference {lat}, {lon} is off the globe",
                                 field="reference_lat_deg",
                                 fix="give WGS84 degrees, latitude first")
            self._ref = (lat, lon)
        self._max_speed_mps = _finite("max_speed_mps", max_speed_mps)
        self._pair_window_s = _finite("pair_window_s", pair_window_s)
        self._local_max_age_s = _finite("local_max_age_s", local_max_age_s, positive=False)
        self._address_ttl_s = _finite("address_ttl_s", address_ttl_s)
        self._aircraft_ttl_s = _finite("aircraft_ttl_s", aircraft_ttl_s)
        self._mlat_hz = _finite("mlat_clock_hz", mlat_clock_hz, positive=False)
        self.counters = Counters()
        self._aircraft: dict[int, _Aircraft] = {}
        self._known: dict[int, float] = {}  # address → clock when last heard in DF11/17/18
        self._last_sweep = NAN
        self._start_stream()

    def _start_stream(self) -> None:
        """Set up the framing state of a subclass (a byte buffer, a line splitter)."""

    # ---- public

    def decode_frame(self, data: bytes, *, t: float = NAN, mlat_ticks: int = -1,
                     offset: int = 0) -> list[Message | Rejected]:
        """One reply: ``data`` 7 or 14 bytes (2 for Mode A/C), received at ``t`` (UTC
        Unix s), with the receiver's ``mlat_ticks`` if known, ``offset`` in the stream."""
        out: list[Message | Rejected] = []
        self._frame(out, offset, data, mlat_ticks, t)
        return out

    # ---- per frame

    def _reject(self, out: list[Message | Rejected], offset: int, reason: str,
                data: bytes) -> None:
        self.counters.reject(reason)
        out.append(Rejected(offset, reason, data))

    def _frame(self, out: list[Message | Rejected], offset: int, data: bytes, mlat: int,
               t: float) -> None:
        try:
            self._decode(out, offset, data, mlat, t)
        except Exception as err:
            # A decoder bug (ours or pyModeS's) costs this frame, never the stream.
            self._reject(out, offset, f"decode error: {type(err).__name__}: {err}", data)

    def _decode(self, out: list[Message | Rejected], offset: int, data: bytes, mlat: int,
                t: float) -> None:
        size = len(data)
        if size == 2:
            self._reject(out, offset, "unsupported: Mode A/C reply", data)
            return
        if size != 7 and size != 14:
            self._reject(out, offset, f"bad length: a {size}-byte reply", data)
            return
        n = int.from_bytes(data, "big")
        df = n >> (size * 8 - 5)
        if (df < 16) != (size == 7):
            self._reject(out, offset, f"bad length: DF{df} in a {size}-byte reply", data)
            return
        clock = t
        if clock != clock and 0 < mlat != _MAGIC_MLAT and self._mlat_hz:
            clock = mlat / self._mlat_hz
        remainder = crc_remainder(n, size * 8)
        if df == 17 or df == 18:
            if remainder:
                self._reject(out, offset, f"bad CRC: DF{df} remainder {remainder:06X}", data)
                return
            self._extended_squitter(out, offset, data, n, df, clock, t)
        elif df == 11:
            if remainder & 0xFFFF80:
                self._reject(out, offset, f"bad CRC: DF11 remainder {remainder:06X}", data)
                return
            aa = (n >> 24) & 0xFFFFFF
            self._known[aa] = clock
            self._seen(aa, clock)
            self.counters.accepted += 1
            out.append(AllCall(t, f"{aa:06X}", 11, (n >> 48) & 7))
        elif df in (0, 4, 5, 16, 20, 21):
            seen = self._known.get(remainder)
            if seen is None or clock - seen > self._address_ttl_s:
                self._reject(out, offset, f"unknown address: DF{df} parity gives "
                             f"{remainder:06X}, not heard in DF11/17/18", data)
                return
            ac = self._seen(remainder, clock)
            code = (n >> (size * 8 - 32)) & 0x1FFF
            self.counters.accepted += 1
            if df == 5 or df == 21:
                out.append(Surveillance(t, f"{remainder:06X}", df, None, idcode_to_squawk(code)))
                return
            altitude = altcode_to_altitude(code)
            if altitude is not None:
                ac.alt_ft, ac.alt_q25, ac.alt_clock = altitude, bool(code & 0x10), clock
            out.append(Surveillance(t, f"{remainder:06X}", df, altitude, None))
        else:
            name = _DF_NAMES.get(min(df, 24), "reserved")
            self._reject(out, offset, f"unsupported: DF{df} ({name})", data)

    def _seen(self, key: int, clock: float) -> _Aircraft:
        """The state of an address whose frame was accepted (only those move the clock
        that expires state: a corrupt frame's counter could be anything)."""
        if abs(clock - self._last_sweep) >= _SWEEP_INTERVAL_S or (
                clock == clock and self._last_sweep != self._last_sweep):
            self._sweep(clock)
        ac = self._aircraft.get(key)
        if ac is None:
            ident = f"~{key & 0xFFFFFF:06X}" if key & _NON_ICAO else f"{key:06X}"
            ac = self._aircraft[key] = _Aircraft("icao:" + ident)
        ac.last_seen = clock
        return ac

    def _sweep(self, clock: float) -> None:
        self._last_sweep = clock
        ttl = self._aircraft_ttl_s
        for key in [k for k, a in self._aircraft.items() if abs(clock - a.last_seen) > ttl]:
            del self._aircraft[key]
        ttl = self._address_ttl_s
        for key in [k for k, c in self._known.items() if abs(clock - c) > ttl]:
            del self._known[key]

    def _extended_squitter(self, out: list[Message | Rejected], offset: int, data: bytes,
                           n: int, df: int, clock: float, t: float) -> None:
        aa = (n >> 80) & 0xFFFFFF
        me = (n >> 24) & _ME_MASK
        tc = me >> 51
        key = aa
        if df == 17:
            self._known[aa] = clock
        else:
            cf = (n >> 104) & 7
            if cf in _CF_UNSUPPORTED:
                self._reject(out, offset, f"unsupported: DF18 CF{cf} ({_CF_UNSUPPORTED[cf]})",
                             data)
                return
            if cf == 0:
                self._known[aa] = clock
            elif cf == 1 or cf == 5 or (tc in _IMF_SHIFT and (me >> _IMF_SHIFT[tc]) & 1):
                key = aa | _NON_ICAO
        if 9 <= tc <= 22 and tc != 19:
            ac = self._seen(key, clock)
            self._airborne_position(out, offset, data, ac, df, tc, me, clock, t)
        elif tc == 19:
            ac = self._seen(key, clock)
            self._velocity(out, ac, df, me, clock, t)
        elif 5 <= tc <= 8:
            ac = self._seen(key, clock)
            self._surface_position(out, offset, data, ac, df, tc, me, clock, t)
        elif 1 <= tc <= 4:
            ac = self._seen(key, clock)
            d = decode_bds08(me)
            digit = (me >> 48) & 7
            category = "DCBA"[tc - 1] + str(digit)
            ac.category = category if digit else ""
            self.counters.accepted += 1
            out.append(Identification(t, ac.identity[5:], df, tc, d["callsign"], category))
        elif tc == 29:
            ac = self._seen(key, clock)
            d = decode_bds62(me)
            ac.nacp = d["nac_p"]
            self.counters.accepted += 1
            out.append(TargetState(t, ac.identity[5:], df, tc, d["selected_altitude"],
                                   d["selected_heading"], d["baro_pressure_setting"],
                                   d["nac_p"], d["sil"], d["nic_baro"]))
        elif tc == 31:
            ac = self._seen(key, clock)
            d = decode_bds65(me)
            subtype = d["subtype"]
            if subtype > 1:
                self._reject(out, offset, f"unsupported: TC31 subtype {subtype}", data)
                return
            version = d["version"]
            ac.version = min(version, 2)
            ac.nacp = d["nac_p"]
            ac.nic_a = d["nic_supplement_a"]
            # NIC-C: surface capability class bit 20 (ME bit 20), version 2 only
            ac.nic_c = (me >> 36) & 1 if subtype == 1 and version == 2 else 0
            ac.gva = (me >> 6) & 3 if version == 2 else 0
            self.counters.accepted += 1
            out.append(OperationalStatus(t, ac.identity[5:], df, tc, subtype, version,
                                         ac.nacp, ac.nic_a, ac.nic_c, ac.gva, d["sil"]))
        elif tc == 28:
            ac = self._seen(key, clock)
            d = decode_bds61(me)
            self.counters.accepted += 1
            out.append(AircraftStatus(t, ac.identity[5:], df, tc, d["subtype"],
                                      d.get("emergency_state"), d.get("squawk")))
        else:
            self._reject(out, offset, f"unsupported: DF{df} TC{tc}", data)

    def _airborne_position(self, out: list[Message | Rejected], offset: int, data: bytes,
                           ac: _Aircraft, df: int, tc: int, me: int, clock: float,
                           t: float) -> None:
        d = decode_bds05(me, tc=tc)
        ac12 = (me >> 36) & 0xFFF
        baro: int | None = None
        gnss: int | None = None
        if tc <= 18:
            baro = d["altitude"]
            if baro is not None:
                ac.alt_ft, ac.alt_q25, ac.alt_clock = baro, bool(ac12 & 0x10), clock
        else:
            # pyModeS 3.6 reads this field as whole metres; DO-260B, readsb and rs1090
            # code GNSS height like the barometric altitude, in feet.
            gnss = _ac12_ft(ac12)
        odd = bool(d["cpr_format"])
        nic, rc_m = _nic(tc, ac.version, ac.nic_a, d["nic_b"], 0)
        where = self._locate(ac, False, odd, d["cpr_lat"], d["cpr_lon"], clock)
        lat = lon = None
        report = None
        if isinstance(where, tuple):
            lat, lon = where
            h, std_v = self._height(ac, lat, lon, baro, bool(ac12 & 0x10), gnss, clock)
            velocity = (ac.velocity if abs(clock - ac.velocity_clock) <= _VELOCITY_MAX_AGE_S
                        else _NAN3)
            report = PositionReport(t, lat, lon, h, self._std_h(ac, rc_m), std_v,
                                    ac.identity, ac.category, velocity)
        self.counters.accepted += 1
        out.append(Position(t, ac.identity[5:], df, tc, False, odd, baro, gnss, lat, lon,
                            None, None, nic, None if rc_m != rc_m else rc_m, report))
        if isinstance(where, str):
            self._reject(out, offset, where, data)

    def _surface_position(self, out: list[Message | Rejected], offset: int, data: bytes,
                          ac: _Aircraft, df: int, tc: int, me: int, clock: float,
                          t: float) -> None:
        d = decode_bds06(me)
        speed_kt: float | None = d["groundspeed"]
        track_deg: float | None = d["track"]
        odd = bool(d["cpr_format"])
        nic, rc_m = _nic(tc, ac.version, ac.nic_a, 0, ac.nic_c)
        where = self._locate(ac, True, odd, d["cpr_lat"], d["cpr_lon"], clock)
        lat = lon = None
        report = None
        if isinstance(where, tuple):
            lat, lon = where
            h, std_v = self._height(ac, lat, lon, None, True, None, clock)
            velocity = _NAN3
            if speed_kt is not None and (track_deg is not None or speed_kt == 0.0):
                v = speed_kt * _KT_MPS
                trk = math.radians(track_deg or 0.0)
                velocity = (v * math.sin(trk), v * math.cos(trk), 0.0)
            report = PositionReport(t, lat, lon, h, self._std_h(ac, rc_m), std_v,
                                    ac.identity, ac.category, velocity)
        self.counters.accepted += 1
        out.append(Position(t, ac.identity[5:], df, tc, True, odd, None, None, lat, lon,
                            speed_kt, track_deg, nic, None if rc_m != rc_m else rc_m,
                            report))
        if isinstance(where, str):
            self._reject(out, offset, where, data)

    def _velocity(self, out: list[Message | Rejected], ac: _Aircraft, df: int, me: int,
                  clock: float, t: float) -> None:
        d = decode_bds09(me)
        subtype = d["subtype"]
        vertical_fpm: int | None = d["vertical_rate"]
        gmb: int | None = d["geo_minus_baro"]
        if gmb is not None:
            ac.gmb_ft, ac.gmb_clock = gmb, clock
        speed_kt = track_deg = None
        enu = None
        if subtype == 1 or subtype == 2:
            # The components themselves: pyModeS truncates the speed to whole knots.
            ew, ns = (me >> 32) & 0x3FF, (me >> 21) & 0x3FF
            if ew and ns:
                scale = 4 if subtype == 2 else 1
                v_e = (ew - 1) * scale * (-1 if (me >> 42) & 1 else 1)
                v_n = (ns - 1) * scale * (-1 if (me >> 31) & 1 else 1)
                speed_kt = math.hypot(v_e, v_n)
                track_deg = math.degrees(math.atan2(v_e, v_n)) % 360.0
                enu = (v_e * _KT_MPS, v_n * _KT_MPS,
                       NAN if vertical_fpm is None else vertical_fpm * _FPM_MPS)
                ac.velocity, ac.velocity_clock = enu, clock
        self.counters.accepted += 1
        out.append(Velocity(t, ac.identity[5:], df, 19, subtype, speed_kt, track_deg,
                            d.get("airspeed"), d.get("airspeed_type"), d.get("heading"),
                            vertical_fpm, "baro" if d["vr_source"] == "BARO" else "gnss",
                            gmb, d["nac_v"], enu))

    # ---- positions

    def _locate(self, ac: _Aircraft, surface: bool, odd: bool, lat_cpr: int, lon_cpr: int,
                clock: float) -> tuple[float, float] | str | None:
        """This frame's position, None if it cannot be resolved yet, or why it is
        implausible. Keeps the frame for pairing and moves the anchor."""
        this = (lat_cpr, lon_cpr, clock, surface)
        if odd:
            other, ac.odd = ac.even, this
        else:
            other, ac.even = ac.odd, this
        anchored = abs(clock - ac.anchor_clock) <= self._local_max_age_s
        pos: tuple[float, float] | None = None
        is_global = False
        anchors = True
        with_ref = surface_position_with_ref if surface else airborne_position_with_ref
        # A surface pair needs a reference anyway (to pick among four quadrants); a
        # recent position of the aircraft itself is as good and decodes one frame alone.
        if surface and anchored:
            pos = with_ref(int(odd), lat_cpr, lon_cpr, ac.anchor_lat, ac.anchor_lon)
        # Global: a pair of the same kind, this frame the newer one.
        elif (other is not None and other[3] == surface
                and 0.0 <= clock - other[2] <= self._pair_window_s):
            e, o = (other, this) if odd else (this, other)
            if not surface:
                pos = airborne_position_pair(e[0], e[1], o[0], o[1], even_is_newer=not odd)
            elif self._ref is not None:
                pos = surface_position_pair(e[0], e[1], o[0], o[1], lat_ref=self._ref[0],
                                            lon_ref=self._ref[1], even_is_newer=not odd)
            is_global = pos is not None
        if pos is None and anchored:
            pos = with_ref(int(odd), lat_cpr, lon_cpr, ac.anchor_lat, ac.anchor_lon)
        if pos is None and self._ref is not None:
            pos = with_ref(int(odd), lat_cpr, lon_cpr, self._ref[0], self._ref[1])
            anchors = surface
        if pos is None:
            return None
        lat, lon = pos[0], (pos[1] + 180.0) % 360.0 - 180.0
        dt = abs(clock - ac.anchor_clock)
        if dt == dt:
            dist = _distance_m(ac.anchor_lat, ac.anchor_lon, lat, lon)
            if dist > self._max_speed_mps * dt + _JUMP_SLACK_M:
                if is_global:
                    ac.anchor_clock = NAN
                return (f"implausible position: {dist / 1000:.1f} km from the last one "
                        f"{dt:.1f} s earlier, faster than max_speed_mps "
                        f"{self._max_speed_mps:g}")
        if anchors:
            ac.anchor_lat, ac.anchor_lon, ac.anchor_clock = lat, lon, clock
        return lat, lon

    def _height(self, ac: _Aircraft, lat: float, lon: float, baro_ft: int | None,
                q25: bool, gnss_ft: int | None, clock: float) -> tuple[float, float]:
        """(height above the WGS84 ellipsoid, its 1σ), metres; see the module docstring."""
        gnss_std = _GVA_M[ac.gva] / _K95_1D if ac.gva in (1, 2) else _GNSS_STD_V_M
        if gnss_ft is not None:
            return gnss_ft * _FT_M, gnss_std
        alt: float
        if baro_ft is not None:
            alt = baro_ft
        elif abs(clock - ac.alt_clock) <= _ALTITUDE_MAX_AGE_S:
            alt, q25 = ac.alt_ft, ac.alt_q25
        else:
            return _geoid_m(lat, lon), _UNKNOWN_HEIGHT_STD_M
        quantum = _Q25_STD_M if q25 else _Q100_STD_M
        if abs(clock - ac.gmb_clock) <= _GNSS_BARO_MAX_AGE_S:
            return (alt + ac.gmb_ft) * _FT_M, math.hypot(gnss_std, quantum, _Q25_STD_M)
        amsl = alt * _FT_M
        return amsl + _geoid_m(lat, lon), math.hypot(
            quantum, _QNH_STD_M, _ISA_TEMP_FRACTION * max(amsl, 0.0))

    @staticmethod
    def _std_h(ac: _Aircraft, rc_m: float) -> float:
        """Horizontal 1σ, m: from NACp's EPU, else NIC's Rc, both 95 % radii."""
        epu = _EPU_M[ac.nacp]
        if epu == epu:
            return epu / _K95_2D
        if rc_m == rc_m:
            return rc_m / _K95_2D
        return _NO_INTEGRITY_STD_M


# --------------------------------------------------------------------------- stream decoders

#: A garbage run is reported when it ends, and at least every this many bytes.
_GARBAGE_REPORT_BYTES: Final = 1 << 16


class BeastDecoder(ModeSDecoder):
    """Beast binary (dump1090/readsb port 30005) in; see ``ModeSDecoder`` for the
    options. Bytes that start no frame are reported as one ``garbage`` rejection per
    run (at least every 64 KiB), wherever the chunks happen to split them."""

    def _start_stream(self) -> None:
        self._buf = b""
        self._offset = 0  # stream offset of _buf[0]
        self._garbage_at = -1
        self._garbage_len = 0
        self._garbage_head = b""

    def feed(self, data: bytes, *, t: float = NAN) -> list[Message | Rejected]:
        """Bytes received at ``t`` (UTC Unix s) → messages and rejections, in order."""
        self.counters.bytes_in += len(data)
        buf = self._buf + data if self._buf else data
        records, rest = parse_beast(buf, offset=self._offset)
        self._offset += len(buf) - len(rest)
        self._buf = rest
        out: list[Message | Rejected] = []
        frame = self._frame
        for r in records:
            if type(r) is RawFrame:
                if self._garbage_at >= 0:
                    self._end_garbage(out)
                frame(out, r.offset, r.data, r.mlat_ticks, t)
            elif type(r) is Garbage:
                self._add_garbage(out, r)
            else:
                assert isinstance(r, Rejected)
                if self._garbage_at >= 0:
                    self._end_garbage(out)
                self.counters.reject(r.reason)
                out.append(r)
        return out

    def close(self) -> list[Message | Rejected]:
        """End of this byte stream: what is left is reported; aircraft state is kept, so
        the decoder can go on with a new connection."""
        out: list[Message | Rejected] = []
        if self._garbage_at >= 0:
            self._end_garbage(out)
        if self._buf:
            self._reject(out, self._offset, "truncated: the stream ended inside a Beast "
                         "frame", self._buf)
            self._offset += len(self._buf)
            self._buf = b""
        return out

    def _add_garbage(self, out: list[Message | Rejected], g: Garbage) -> None:
        at, data = g.offset, g.data
        if self._garbage_at >= 0 and self._garbage_at + self._garbage_len != at:
            self._end_garbage(out)
        while data:
            if self._garbage_at < 0:
                self._garbage_at, self._garbage_len, self._garbage_head = at, 0, b""
            take = min(len(data), _GARBAGE_REPORT_BYTES - self._garbage_len)
            if len(self._garbage_head) < SHOWN_BYTES:
                self._garbage_head += data[:SHOWN_BYTES - len(self._garbage_head)]
            self._garbage_len += take
            at += take
            data = data[take:]
            if self._garbage_len >= _GARBAGE_REPORT_BYTES:
                self._end_garbage(out)

    def _end_garbage(self, out: list[Message | Rejected]) -> None:
        self._reject(out, self._garbage_at, f"garbage: {self._garbage_len} bytes that start "
                     "no frame", self._garbage_head)
        self._garbage_at = -1


class _LineFeed:
    """Lines out of a byte stream, with overlong lines rejected whole."""

    def __init__(self, max_line: int, what: str) -> None:
        self._buf = b""
        self._offset = 0
        self._skipping = False
        self._max = max_line
        self._what = what

    def take(self, data: bytes, out: list[Rejected]) -> tuple[bytes, int]:
        """Complete lines in ``data`` (joined to what was held): (bytes, their offset)."""
        if self._skipping:
            nl = data.find(b"\n")
            if nl < 0:
                self._offset += len(data)
                return b"", self._offset
            self._skipping = False
            self._offset += nl + 1
            data = data[nl + 1:]
        buf = self._buf + data if self._buf else data
        last = buf.rfind(b"\n") + 1
        lines, self._buf = buf[:last], buf[last:]
        at = self._offset
        self._offset += last
        if len(self._buf) > self._max:
            out.append(Rejected(self._offset, f"bad {self._what}: line longer than "
                                f"{self._max} bytes", self._buf[:SHOWN_BYTES]))
            self._offset += len(self._buf)
            self._buf = b""
            self._skipping = True
        return lines, at

    def close(self, out: list[Rejected]) -> None:
        if self._buf:
            out.append(Rejected(self._offset, f"truncated: the stream ended inside an "
                                f"{self._what} line", self._buf[:SHOWN_BYTES]))
            self._offset += len(self._buf)
        self._buf = b""
        self._skipping = False


class AvrDecoder(ModeSDecoder):
    """AVR hex lines (dump1090/readsb port 30002: ``*…;``, ``@…;``, ``<…;``) in; see
    ``ModeSDecoder`` for the options."""

    def _start_stream(self) -> None:
        self._lines = _LineFeed(_AVR_MAX_LINE, "AVR")

    def feed(self, data: bytes, *, t: float = NAN) -> list[Message | Rejected]:
        """Bytes received at ``t`` (UTC Unix s) → messages and rejections, in order."""
        self.counters.bytes_in += len(data)
        early: list[Rejected] = []
        lines, at = self._lines.take(data, early)
        records, _ = parse_avr(lines, offset=at)
        out: list[Message | Rejected] = []
        for r in records:
            if type(r) is RawFrame:
                self._frame(out, r.offset, r.data, r.mlat_ticks, t)
            else:
                assert isinstance(r, Rejected)
                self.counters.reject(r.reason)
                out.append(r)
        for r in early:  # an overlong unfinished line comes after the complete ones
            self.counters.reject(r.reason)
            out.append(r)
        return out

    def close(self) -> list[Message | Rejected]:
        """End of this byte stream (see ``BeastDecoder.close``)."""
        rest: list[Rejected] = []
        self._lines.close(rest)
        for r in rest:
            self.counters.reject(r.reason)
        return list(rest)


@dataclass(slots=True)
class _SbsAircraft:
    last_seen: float = NAN
    alt_ft: float = NAN
    alt_t: float = NAN
    velocity: tuple[float, float, float] = _NAN3
    velocity_t: float = NAN


#: Longest SBS line we read (dump1090's are under 200 bytes).
_SBS_MAX_LINE: Final = 512


class SbsDecoder:
    """SBS-1 BaseStation CSV (dump1090/readsb port 30003) in.

    The fields are dump1090's own decode and are used as they are (no CPR, no speed
    check). ``timezone`` (an IANA name) is the zone of the date/time fields: dump1090
    and readsb write the host's local time, so give the receiver's zone unless it
    runs on UTC. Heights: the barometric altitude (this line's, or the last one of
    this address within 60 s) as above mean sea level, σ widened as for Mode S.
    """

    def __init__(self, *, timezone: str = "UTC", aircraft_ttl_s: float = 300.0) -> None:
        try:
            self._tz: tzinfo = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise InputError(f"unknown time zone {timezone!r}", field="timezone",
                             fix="give an IANA zone name such as 'UTC' or "
                             "'Europe/Paris'") from err
        self._aircraft_ttl_s = _finite("aircraft_ttl_s", aircraft_ttl_s)
        self.counters = Counters()
        self._lines = _LineFeed(_SBS_MAX_LINE, "SBS")
        self._aircraft: dict[str, _SbsAircraft] = {}
        self._last_sweep = NAN

    def feed(self, data: bytes, *, t: float = NAN) -> list[Message | Rejected]:
        """Bytes received at ``t`` (used for lines without a date/time) → messages."""
        self.counters.bytes_in += len(data)
        early: list[Rejected] = []
        lines, at = self._lines.take(data, early)
        out: list[Message | Rejected] = []
        start = 0
        while (nl := lines.find(b"\n", start)) >= 0:
            self._line(out, lines[start:nl], at + start, t)
            start = nl + 1
        for r in early:
            self.counters.reject(r.reason)
            out.append(r)
        return out

    def close(self) -> list[Message | Rejected]:
        """End of this byte stream (see ``BeastDecoder.close``)."""
        rest: list[Rejected] = []
        self._lines.close(rest)
        for r in rest:
            self.counters.reject(r.reason)
        return list(rest)

    def _line(self, out: list[Message | Rejected], raw: bytes, at: int, t: float) -> None:
        if len(raw) > _SBS_MAX_LINE:
            reason = f"bad SBS: line longer than {_SBS_MAX_LINE} bytes"
            self.counters.reject(reason)
            out.append(Rejected(at, reason, raw[:SHOWN_BYTES]))
            return
        text = raw.strip()
        if not text:
            return
        at += raw.find(text[:1])
        try:
            line = text.decode("ascii")
        except UnicodeDecodeError:
            self.counters.reject("bad SBS: not ASCII")
            out.append(Rejected(at, "bad SBS: not ASCII", text[:SHOWN_BYTES]))
            return
        m = parse_sbs(line, offset=at, tz=self._tz, t=t)
        if isinstance(m, Rejected):
            self.counters.reject(m.reason)
            out.append(m)
            return
        self.counters.accepted += 1
        out.append(self._state(m))

    def _state(self, m: SbsMessage) -> SbsMessage:
        now = m.t
        if abs(now - self._last_sweep) >= _SWEEP_INTERVAL_S or (
                now == now and self._last_sweep != self._last_sweep):
            self._last_sweep = now
            ttl = self._aircraft_ttl_s
            for key in [k for k, a in self._aircraft.items() if abs(now - a.last_seen) > ttl]:
                del self._aircraft[key]
        ac = self._aircraft.get(m.icao)
        if ac is None:
            ac = self._aircraft[m.icao] = _SbsAircraft()
        ac.last_seen = now
        if m.altitude_ft is not None:
            ac.alt_ft, ac.alt_t = m.altitude_ft, now
        if m.groundspeed_kt is not None and m.track_deg is not None and m.msg_type == 4:
            v = m.groundspeed_kt * _KT_MPS
            trk = math.radians(m.track_deg)
            up = NAN if m.vertical_rate_fpm is None else m.vertical_rate_fpm * _FPM_MPS
            ac.velocity, ac.velocity_t = (v * math.sin(trk), v * math.cos(trk), up), now
        if m.lat_deg is None or m.lon_deg is None:
            return m
        lat, lon = m.lat_deg, m.lon_deg
        if abs(now - ac.alt_t) <= _ALTITUDE_MAX_AGE_S:
            amsl = ac.alt_ft * _FT_M
            h = amsl + _geoid_m(lat, lon)
            std_v = math.hypot(_Q25_STD_M, _QNH_STD_M, _ISA_TEMP_FRACTION * max(amsl, 0.0))
        else:
            h, std_v = _geoid_m(lat, lon), _UNKNOWN_HEIGHT_STD_M
        velocity = ac.velocity if abs(now - ac.velocity_t) <= _VELOCITY_MAX_AGE_S else _NAN3
        if m.msg_type == 2 and m.groundspeed_kt is not None and m.track_deg is not None:
            v = m.groundspeed_kt * _KT_MPS
            trk = math.radians(m.track_deg)
            velocity = (v * math.sin(trk), v * math.cos(trk), 0.0)
        report = PositionReport(now, lat, lon, h, _SBS_STD_H_M, std_v, "icao:" + m.icao, "",
                                velocity)
        return dataclasses.replace(m, report=report)


# --------------------------------------------------------------------------- transport


class TimedStreamDecoder(Protocol):
    """A StreamDecoder whose ``feed`` also takes the receive time."""

    counters: Counters

    def feed(self, data: bytes, *, t: float = ...) -> list[Message | Rejected]: ...

    def close(self) -> list[Message | Rejected]: ...


async def stream_tcp(host: str, port: int, decoder: TimedStreamDecoder,
                     on_output: Callable[[list[Message | Rejected]], object], *,
                     reconnect_backoff_s: float = 1.0, max_backoff_s: float = 30.0,
                     connect_timeout_s: float = 10.0, read_bytes: int = 1 << 16,
                     clock: Callable[[], float] = time.time) -> None:
    """Read a dump1090/readsb port (30005 Beast, 30002 AVR, 30003 SBS) into ``decoder``
    until cancelled, calling ``on_output`` with each non-empty batch of its outputs.

    Each chunk is fed with its receive time ``clock()`` (UTC Unix s). On a refused or
    dropped connection the decoder's ``close()`` reports a cut frame, and we reconnect
    after ``reconnect_backoff_s``, doubled after each attempt that brings no data, up to
    ``max_backoff_s``. Bad data never stops it; an exception from ``on_output`` does.
    """
    backoff = reconnect_backoff_s
    while True:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), connect_timeout_s)
        except (OSError, TimeoutError) as err:
            log.info("ADS-B feed %s:%d: cannot connect (%s); retrying in %.1f s",
                     host, port, err, backoff)
        else:
            log.info("ADS-B feed %s:%d: connected", host, port)
            try:
                while data := await reader.read(read_bytes):
                    out = decoder.feed(data, t=clock())
                    backoff = reconnect_backoff_s
                    if out:
                        on_output(out)
                log.info("ADS-B feed %s:%d: closed by the server", host, port)
            except OSError as err:
                log.info("ADS-B feed %s:%d: connection lost (%s)", host, port, err)
            finally:
                writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            out = decoder.close()
            if out:
                on_output(out)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2.0, max_backoff_s)
