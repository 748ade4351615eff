"""Remote ID (ASTM F3411-22a / ASD-STAN prEN 4709-002) in: captures → position reports.

``RemoteIdDecoder`` is a ``StreamDecoder`` over the bytes of a pcap or pcapng capture
(802.11 with or without radiotap, Bluetooth LE link layer with or without the
pseudo-header); ``feed_frames`` takes Remote ID payloads already taken out of their
carrier (``Frame``, e.g. from a Bluetooth HCI advertising report). It remembers per
transmitter address the Basic ID(s), Operator ID, Self ID, System message and
authentication pages, and turns every Location message into a ``RemoteIdPosition``:
a ``PositionReport`` plus what the drone says of itself.

How a Location message becomes a ``PositionReport``:

* ``identity`` ``rid:<UAS ID>``, from the Basic ID of the best kind seen from that
  transmitter so far: serial number (ID type 1) first, then CAA registration (2),
  UTM UUID (3), specific session ID (4), and last a non-empty ID whose type the sender
  left undeclared (0; F3411-19 senders such as the reference capture do). Text IDs as
  they are; a session ID, a UUID or any ID that is not printable ASCII in hex. ``""``
  while no Basic ID has been heard. ``category`` is that Basic ID's UA type, decimal.
* ``height_m`` above the WGS84 ellipsoid is the geodetic altitude (WGS84 HAE by the
  standard), 1σ = vertical-accuracy bound / 1.96. Without it, the pressure altitude
  is taken for height above mean sea level (EGM96) and converted with
  ``skyfence.geoid.amsl_to_ellipsoid_m``; its 1σ is the baro-accuracy bound / 1.96
  widened in quadrature by ``pressure_altitude_std_m`` (default 100 m, the spread of
  sea-level pressure about the standard 1013.25 hPa, ~8 m/hPa). With neither,
  ``height_m`` is NaN and ``std_v_m`` infinite.
* ``std_h_m`` = horizontal-accuracy bound / 2.448 (the code is a 95 % bound on the
  horizontal radial error; 2.448 = √χ²₂(0.95)). Unknown or reserved codes take the
  standard's own worst bound (18.52 km horizontal, 150 m vertical).
* ``velocity_enu_mps`` from speed and track (clockwise from true north) and the
  vertical speed; unknown parts NaN (a zero speed with an unknown track is (0, 0)).
* ``t`` is the capture time; the message's own timestamp (tenths of a second since
  the full hour, UTC) replaces it when, placed in the hour nearest the capture time,
  it lies within ``message_time_tolerance_s`` (default 2 s) of it: the position was
  valid then, and reception only adds latency. A farther timestamp is a sender's clock
  or a placeholder (the reference captures send 0) and is not believed.

A Location message without a horizontal position (latitude and longitude 0, the
standard's "unknown") is counted as accepted but gives no report.

Many Location messages in one ``feed`` (``batch_min_messages``, default 32) go through
the vectorised ``decode_locations``; fewer through the scalar decoder. Both give the
same reports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skyfence.adapters.base import Counters, Message, PositionReport, Rejected
from skyfence.adapters.pcap import (
    LINKTYPE_BLUETOOTH_LE_LL,
    LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
    LINKTYPE_IEEE802_11,
    LINKTYPE_IEEE802_11_RADIOTAP,
    Packet,
    PcapDecoder,
)
from skyfence.adapters.remoteid_carriers import Carrier, Frame, parse_packet
from skyfence.adapters.remoteid_codec import (
    HORIZONTAL_ACCURACY_M,
    VERTICAL_ACCURACY_M,
    Authentication,
    BasicId,
    IdType,
    Location,
    LocationArrays,
    MessageType,
    OperatorId,
    RemoteIdError,
    SelfId,
    SingleMessage,
    System,
    decode_locations,
    decode_single,
    split_pack,
)
from skyfence.geoid import amsl_to_ellipsoid_m

F64 = NDArray[np.float64]

SUPPORTED_LINKTYPES = frozenset({LINKTYPE_IEEE802_11, LINKTYPE_IEEE802_11_RADIOTAP,
                                 LINKTYPE_BLUETOOTH_LE_LL, LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR})
#: 95 % → 1σ for a 2-D circular normal (√χ²₂(0.95)) and for a 1-D normal.
HORIZONTAL_95_TO_SIGMA = 2.4477468306808166
VERTICAL_95_TO_SIGMA = 1.959963984540054
UNKNOWN_HORIZONTAL_BOUND_M = 18520.0
UNKNOWN_VERTICAL_BOUND_M = 150.0

_H_BOUND_M = np.array([UNKNOWN_HORIZONTAL_BOUND_M if math.isnan(v) else v
                       for v in HORIZONTAL_ACCURACY_M])
_V_BOUND_M = np.array([UNKNOWN_VERTICAL_BOUND_M if math.isnan(v) else v
                       for v in VERTICAL_ACCURACY_M])
_ID_PREFERENCE = (IdType.SERIAL_NUMBER, IdType.CAA_REGISTRATION, IdType.UTM_UUID,
                  IdType.SPECIFIC_SESSION, IdType.NONE)


def select_basic_id(basic_ids: Iterable[BasicId]) -> BasicId | None:
    """The Basic ID that names a drone best: serial, registration, UTM UUID, session ID,
    then an undeclared kind; empty IDs never."""
    by_type = {b.id_type: b for b in basic_ids if b.uas_id.strip("\0 ")}
    for kind in _ID_PREFERENCE:
        if kind in by_type:
            return by_type[kind]
    return None


def uas_id_text(basic: BasicId) -> str:
    """The UAS ID as text: itself for printable-ASCII serials and registrations, hex
    for session IDs, UUIDs and anything else."""
    raw = basic.uas_id_bytes
    if basic.id_type in (IdType.NONE, IdType.SERIAL_NUMBER, IdType.CAA_REGISTRATION) and \
            raw.isascii() and raw.decode("ascii").isprintable():
        return raw.decode("ascii")
    return raw.hex()


@dataclass(frozen=True, slots=True)
class _Identity:
    """What a transmitter has said of itself, frozen at the moment of a Location."""

    identity: str = ""
    category: str = ""
    uas_id: str = ""
    uas_id_type: int = -1
    operator_id: str = ""
    operator_lat_deg: float = math.nan
    operator_lon_deg: float = math.nan
    operator_altitude_m: float = math.nan


_NOBODY = _Identity()


@dataclass(slots=True)
class _Drone:
    basic_ids: dict[int, BasicId] = field(default_factory=dict)
    operator: OperatorId | None = None
    system: System | None = None
    self_id: SelfId | None = None
    auth: dict[int, Authentication] = field(default_factory=dict)
    ident: _Identity = _NOBODY
    #: The last raw bytes of each identity message kind, to skip decoding repeats.
    last_raw: dict[int, bytes] = field(default_factory=dict)

    def update(self, msg: SingleMessage) -> None:
        match msg:
            case BasicId():
                self.basic_ids[msg.id_type] = msg
            case OperatorId():
                self.operator = msg
            case System():
                self.system = msg
            case SelfId():
                self.self_id = msg
                return
            case Authentication():
                self.auth[msg.page] = msg
                return
            case _:
                return
        basic = select_basic_id(self.basic_ids.values())
        sysm = self.system
        self.ident = _Identity(
            identity=f"rid:{uas_id_text(basic)}" if basic else "",
            category=str(basic.ua_type) if basic else "",
            uas_id=uas_id_text(basic) if basic else "",
            uas_id_type=basic.id_type if basic else -1,
            operator_id=self.operator.operator_id if self.operator else "",
            operator_lat_deg=sysm.operator_lat_deg if sysm else math.nan,
            operator_lon_deg=sysm.operator_lon_deg if sysm else math.nan,
            operator_altitude_m=sysm.operator_altitude_m if sysm else math.nan)


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass(frozen=True, slots=True)
class RemoteIdPosition:
    """One Location message as a ``PositionReport`` (``report``), with the transmitter
    address and carrier, the UAS ID and its kind (``uas_id_type``, −1 before any Basic
    ID), the operator's ID and position (System message; NaN until heard), the UA
    status, and where time and height came from (``time_source`` "capture" or
    "message"; ``altitude_source`` "geodetic", "pressure" or "none")."""

    report: PositionReport
    transmitter: str
    carrier: str
    uas_id: str = ""
    uas_id_type: int = -1
    operator_id: str = ""
    operator_lat_deg: float = math.nan
    operator_lon_deg: float = math.nan
    operator_altitude_m: float = math.nan
    status: int = 0
    time_source: str = "capture"
    altitude_source: str = "geodetic"

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {"type": "remoteid_position", "t": _none_if_nan(r.t), "lat_deg": r.lat_deg,
                "lon_deg": r.lon_deg, "height_m": _none_if_nan(r.height_m),
                "std_h_m": r.std_h_m,
                "std_v_m": r.std_v_m if math.isfinite(r.std_v_m) else None,
                "identity": r.identity, "category": r.category,
                "velocity_enu_mps": [_none_if_nan(v) for v in r.velocity_enu_mps],
                "transmitter": self.transmitter, "carrier": str(self.carrier),
                "uas_id": self.uas_id, "uas_id_type": self.uas_id_type,
                "operator_id": self.operator_id,
                "operator_lat_deg": _none_if_nan(self.operator_lat_deg),
                "operator_lon_deg": _none_if_nan(self.operator_lon_deg),
                "operator_altitude_m": _none_if_nan(self.operator_altitude_m),
                "status": self.status, "time_source": self.time_source,
                "altitude_source": self.altitude_source}


def position_reports(items: Iterable[object]) -> list[PositionReport]:
    """The ``PositionReport`` of every ``RemoteIdPosition`` among decoder output."""
    return [x.report for x in items if isinstance(x, RemoteIdPosition)]


@dataclass(slots=True)
class _Pending:
    slot: int
    frame: Frame
    ident: _Identity
    offset: int
    raw: bytes


class RemoteIdDecoder:
    """Capture bytes (pcap/pcapng) in; ``RemoteIdPosition`` and ``Rejected`` out.

    ``counters.accepted`` counts Remote ID messages decoded (any type); rejections
    by reason include the capture's own (truncated or corrupt records). A link type
    that carries no Remote ID is rejected once per interface and its packets are then
    counted in ``unsupported_packets``; frames that are not Remote ID (other beacons,
    data frames) in ``ignored_packets``.
    """

    def __init__(self, *, batch_min_messages: int = 32, message_time_tolerance_s: float = 2.0,
                 pressure_altitude_std_m: float = 100.0, max_transmitters: int = 100_000
                 ) -> None:
        self.counters = Counters()
        self.batch_min_messages = batch_min_messages
        self.message_time_tolerance_s = message_time_tolerance_s
        self.pressure_altitude_std_m = pressure_altitude_std_m
        self.max_transmitters = max_transmitters
        self.ignored_packets = 0
        self.unsupported_packets = 0
        self._pcap = PcapDecoder()
        self._drones: dict[str, _Drone] = {}
        self._bad_links: set[tuple[int, int]] = set()

    # --- StreamDecoder --------------------------------------------------------------

    def feed(self, data: bytes) -> list[Message | Rejected]:
        self.counters.bytes_in += len(data)
        return self.feed_frames(self._frames(self._pcap.feed(data)))

    def close(self) -> list[Message | Rejected]:
        return self.feed_frames(self._frames(self._pcap.close()))

    # --- state ------------------------------------------------------------------

    def transmitter_identity(self, transmitter: str) -> str:
        """The ``rid:`` identity a transmitter address has given itself so far, or ""."""
        drone = self._drones.get(transmitter)
        return drone.ident.identity if drone else ""

    def operator_id(self, transmitter: str) -> str:
        drone = self._drones.get(transmitter)
        return drone.ident.operator_id if drone else ""

    def system(self, transmitter: str) -> System | None:
        drone = self._drones.get(transmitter)
        return drone.system if drone else None

    def _drone(self, transmitter: str) -> _Drone:
        drone = self._drones.get(transmitter)
        if drone is None:
            if len(self._drones) >= self.max_transmitters:  # forget the longest unheard
                del self._drones[next(iter(self._drones))]
            drone = self._drones[transmitter] = _Drone()
        else:  # keep the dict in least-recently-heard order
            del self._drones[transmitter]
            self._drones[transmitter] = drone
        return drone

    # --- capture → frames -------------------------------------------------------------

    def _frames(self, items: Sequence[Message | Rejected]) -> list[Frame | Rejected]:
        out: list[Frame | Rejected] = []
        for it in items:
            if not isinstance(it, Packet):
                if isinstance(it, Rejected):
                    out.append(it)
                continue
            if it.linktype not in SUPPORTED_LINKTYPES:
                key = (it.interface, it.linktype)
                if key in self._bad_links:
                    self.unsupported_packets += 1
                    continue
                self._bad_links.add(key)
            r = parse_packet(it)
            if r is None:
                self.ignored_packets += 1
            else:
                out.append(r)
        return out

    # --- frames → messages → reports -----------------------------------------------------

    def feed_frames(self, frames: Iterable[Frame | Rejected]) -> list[Message | Rejected]:
        """Remote ID frames (already out of their carrier) in; positions and rejections
        out, in order. Rejections passed in are counted and passed on."""
        slots: list[Message | Rejected | None] = []
        pending: list[_Pending] = []
        for item in frames:
            if isinstance(item, Rejected):
                self._reject(slots, item)
                continue
            drone = self._drone(item.transmitter)
            payload = item.payload
            try:
                if payload[:1] and payload[0] >> 4 == MessageType.MESSAGE_PACK:
                    parts = split_pack(payload, offset=item.offset)
                else:
                    parts = [(item.offset, bytes(payload))]
            except RemoteIdError as err:
                self._reject(slots, Rejected(err.offset, err.reason, bytes(payload)))
                continue
            locations = []
            for off, raw in parts:
                if len(raw) == 25 and raw[0] >> 4 == MessageType.LOCATION:
                    locations.append((off, raw))
                    continue
                # Senders repeat their identity messages unchanged: decode each once.
                kind = _identity_kind(raw)
                if kind >= 0 and drone.last_raw.get(kind) == raw:
                    self.counters.accepted += 1
                    continue
                try:
                    msg = decode_single(raw, offset=off)
                except RemoteIdError as err:
                    self._reject(slots, Rejected(err.offset, err.reason, raw))
                    continue
                self.counters.accepted += 1
                drone.update(msg)
                drone.last_raw[kind] = raw
            for off, raw in locations:  # after the frame's identity messages
                pending.append(_Pending(len(slots), item, drone.ident, off, raw))
                slots.append(None)
        if len(pending) >= self.batch_min_messages:
            self._resolve_batch(pending, slots)
        else:
            self._resolve_scalar(pending, slots)
        return [s for s in slots if s is not None]

    def _reject(self, slots: list[Message | Rejected | None], r: Rejected) -> None:
        self.counters.reject(r.reason)
        slots.append(r)

    def _resolve_scalar(self, pending: list[_Pending], slots: list[Message | Rejected | None]
                        ) -> None:
        for p in pending:
            try:
                loc = decode_single(p.raw, offset=p.offset)
            except RemoteIdError as err:
                self.counters.reject(err.reason)
                slots[p.slot] = Rejected(err.offset, err.reason, p.raw)
                continue
            self.counters.accepted += 1
            assert isinstance(loc, Location)  # the type nibble said so
            slots[p.slot] = self._position(loc, p)

    def _position(self, loc: Location, p: _Pending) -> RemoteIdPosition | None:
        if math.isnan(loc.lat_deg):
            return None
        t, time_source = _message_time(p.frame.t, loc.timestamp_s,
                                       self.message_time_tolerance_s)
        if not math.isnan(loc.geodetic_altitude_m):
            h = loc.geodetic_altitude_m
            std_v = float(_V_BOUND_M[loc.vertical_accuracy]) / VERTICAL_95_TO_SIGMA
            alt_source = "geodetic"
        elif not math.isnan(loc.pressure_altitude_m):
            h = float(amsl_to_ellipsoid_m(loc.pressure_altitude_m, loc.lat_deg, loc.lon_deg))
            std_v = math.hypot(float(_V_BOUND_M[loc.baro_accuracy]) / VERTICAL_95_TO_SIGMA,
                               self.pressure_altitude_std_m)
            alt_source = "pressure"
        else:
            h, std_v, alt_source = math.nan, math.inf, "none"
        s, trk = loc.speed_mps, loc.track_rad
        if s == 0.0:
            ve = vn = 0.0
        else:
            ve, vn = s * math.sin(trk), s * math.cos(trk)
        ident = p.ident
        report = PositionReport(
            t=t, lat_deg=loc.lat_deg, lon_deg=loc.lon_deg, height_m=h,
            std_h_m=float(_H_BOUND_M[loc.horizontal_accuracy]) / HORIZONTAL_95_TO_SIGMA,
            std_v_m=std_v, identity=ident.identity, category=ident.category,
            velocity_enu_mps=(ve, vn, loc.vertical_speed_mps))
        return RemoteIdPosition(
            report=report, transmitter=p.frame.transmitter, carrier=p.frame.carrier,
            uas_id=ident.uas_id, uas_id_type=ident.uas_id_type,
            operator_id=ident.operator_id, operator_lat_deg=ident.operator_lat_deg,
            operator_lon_deg=ident.operator_lon_deg,
            operator_altitude_m=ident.operator_altitude_m, status=loc.status,
            time_source=time_source, altitude_source=alt_source)

    def _resolve_batch(self, pending: list[_Pending], slots: list[Message | Rejected | None]
                       ) -> None:
        n = len(pending)
        raw = np.frombuffer(b"".join(p.raw for p in pending), np.uint8).reshape(n, 25)
        a = decode_locations(raw)
        for i in np.flatnonzero(~a.valid).tolist():  # rare: let the scalar path say why
            self._resolve_scalar([pending[i]], slots)
        ok = a.valid & ~np.isnan(a.lat_deg)
        self.counters.accepted += int(a.valid.sum())
        cols = _batch_columns(a, np.array([p.frame.t for p in pending]), ok,
                              tolerance_s=self.message_time_tolerance_s,
                              pressure_std_m=self.pressure_altitude_std_m)
        rows = zip(*(c.tolist() for c in cols), strict=True)
        for i, (t, msg_time, lat, lon, h, alt_src, sh, sv, ve, vn, vu, status) in \
                enumerate(rows):
            if not ok[i]:
                continue
            p = pending[i]
            ident = p.ident
            report = PositionReport(t=t, lat_deg=lat, lon_deg=lon, height_m=h, std_h_m=sh,
                                    std_v_m=sv, identity=ident.identity,
                                    category=ident.category, velocity_enu_mps=(ve, vn, vu))
            slots[p.slot] = RemoteIdPosition(
                report=report, transmitter=p.frame.transmitter, carrier=p.frame.carrier,
                uas_id=ident.uas_id, uas_id_type=ident.uas_id_type,
                operator_id=ident.operator_id, operator_lat_deg=ident.operator_lat_deg,
                operator_lon_deg=ident.operator_lon_deg,
                operator_altitude_m=ident.operator_altitude_m, status=status,
                time_source="message" if msg_time else "capture",
                altitude_source=_ALT_SOURCES[alt_src])


_ALT_SOURCES = ("geodetic", "pressure", "none")


def _identity_kind(raw: bytes) -> int:
    """A key for "the same kind of message": type, and the ID type of a Basic ID or the
    page of an authentication message; −1 for what is not a whole message."""
    if len(raw) != 25:
        return -1
    mtype = raw[0] >> 4
    sub = raw[1] >> 4 if mtype == 0 else raw[1] & 0xF if mtype == 2 else 0
    return mtype << 8 | sub


def _message_time(t_capture: float, timestamp_s: float, tolerance_s: float
                  ) -> tuple[float, str]:
    if math.isnan(timestamp_s) or not math.isfinite(t_capture):
        return t_capture, "capture"
    t = math.floor(t_capture / 3600.0) * 3600.0 + timestamp_s
    d = t - t_capture
    if d > 1800.0:
        t -= 3600.0
    elif d < -1800.0:
        t += 3600.0
    if abs(t - t_capture) <= tolerance_s:
        return t, "message"
    return t_capture, "capture"


def _batch_columns(a: LocationArrays, t_capture: F64, ok: NDArray[np.bool_], *,
                   tolerance_s: float, pressure_std_m: float) -> list[NDArray[Any]]:
    """The report fields of every row, as arrays, in the order ``_resolve_batch`` reads."""
    finite_t = np.isfinite(t_capture)
    t0 = np.where(finite_t, t_capture, 0.0)
    cand = np.floor(t0 / 3600.0) * 3600.0 + a.timestamp_s
    d = cand - t0
    cand = np.where(d > 1800.0, cand - 3600.0, np.where(d < -1800.0, cand + 3600.0, cand))
    use_msg = finite_t & ~np.isnan(cand) & (np.abs(cand - t0) <= tolerance_s)
    t = np.where(use_msg, cand, t_capture)

    lat = np.where(ok, a.lat_deg, np.nan)
    lon = np.where(ok, a.lon_deg, np.nan)
    geo_ok = ~np.isnan(a.geodetic_altitude_m)
    baro_ok = ~geo_ok & ~np.isnan(a.pressure_altitude_m) & ok
    baro_h = np.full(len(a), np.nan)
    if baro_ok.any():
        baro_h[baro_ok] = amsl_to_ellipsoid_m(a.pressure_altitude_m[baro_ok], lat[baro_ok],
                                              lon[baro_ok])
    h = np.where(geo_ok, a.geodetic_altitude_m, baro_h)
    alt_src = np.where(geo_ok, 0, np.where(baro_ok, 1, 2))
    std_v = np.where(geo_ok, _V_BOUND_M[a.vertical_accuracy] / VERTICAL_95_TO_SIGMA,
                     np.where(baro_ok, np.hypot(_V_BOUND_M[a.baro_accuracy]
                                                / VERTICAL_95_TO_SIGMA, pressure_std_m),
                              np.inf))
    std_h = _H_BOUND_M[a.horizontal_accuracy] / HORIZONTAL_95_TO_SIGMA
    s, trk = a.speed_mps, a.track_rad
    still = s == 0.0
    ve = np.where(still, 0.0, s * np.sin(trk))
    vn = np.where(still, 0.0, s * np.cos(trk))
    return [t, use_msg, lat, lon, h, alt_src, std_h, std_v, ve, vn, a.vertical_speed_mps,
            a.status]


__all__ = ["Carrier", "Frame", "PositionReport", "RemoteIdDecoder", "RemoteIdPosition",
           "position_reports", "select_basic_id", "uas_id_text"]
