"""Cursor-on-Target (CoT) for TAK: the picture as CoT events, in XML and TAK protobuf.

One event per shown track and one per swarm group, re-sent every picture update
with the same ``uid`` (``skyfence.<node>.track.<id>``, ``skyfence.<node>.group.<id>``)
so that a TAK client moves one marker. :func:`frame_events` turns a
:class:`~skyfence.picture.Frame` into :class:`CotEvent` rows (the numbers vectorised
over the frame); :func:`encode_xml` and :func:`encode_proto` are the pure encoders,
:func:`parse_xml` and :class:`CotXmlDecoder` the pure parsers, and
:class:`UdpSender` / :class:`TcpSender` the thin asyncio transports.

**type** ``a-<affiliation>-<function>``. Functions follow the MITRE CoT type table
``CoTtypes.xml`` (v1.80, 2009; upper case from MIL-STD-2525, lower case CoT
extensions), whose ``uav`` predicate is ``^a-f-A-(M-F-Q|C-F-q)`` and ``urw`` (unmanned
rotor wing) ``^a-f-A-M-H-Q``:

==================  ====================================================================
class               function (``drone_symbols="civil"``, the default)
==================  ====================================================================
drone_fixed_wing    ``A-C-F-q`` Air/Civ/fixed/rpv, drone, uav (in the table)
drone_multirotor    ``A-C-H-q`` the table's lower-case drone extension on ``A-C-H``
                    (Air/Civ/rotary); not itself in the 2009 table, so a consumer that
                    matches prefixes shows a civil rotary wing
crewed_aircraft     ``A-C-F`` (ADS-B A1–A6, B1 glider, B4 ultralight), ``A-C-H`` (A7
                    rotorcraft), ``A-C-L`` (B2 lighter than air), else ``A-C`` (civil
                    aircraft, form unknown)
fast_low_flyer      ``A-M-F`` Air/Mil/Fixed: 180–300 m/s below 150 m is a military jet
                    or a cruise missile, fixed wing either way
bird, unknown       ``A`` (air track)
==================  ====================================================================

``drone_symbols="military"`` gives the MIL-STD-2525B drone codes ``A-M-F-Q`` and
``A-M-H-Q`` instead, which every 2525 renderer draws with the UAV symbol but which
claim a military platform; ``CotConfig.functions`` overrides any class.

**affiliation** (:class:`AffiliationPolicy`): ``u`` unknown unless the user says
otherwise. ``f`` friend, ``n`` neutral and ``h`` hostile only for identities the user
lists; hostile is never inferred. ``s`` suspect (MIL-STD-2525: potentially hostile by
its characteristics or behaviour) for a spoof suspect, and for a dark drone the zone
watch has inside a prohibited zone; each rule can be turned off. A spoof suspect
never takes the affiliation of a listed identity: its claim is what is in doubt.
Joker ``j`` and faker ``k`` are exercise roles (friends playing suspect or hostile)
and are never used. A group is hostile if a member is, else suspect if a member is,
friend or neutral if every member is, else unknown.

**how** (the XSD's list, and the table's ``how`` section): ``m-p`` for a coasting
track (predicted/propagated: missed at its last look); ``m-g`` for a track only
cooperative reports hold (an ADS-B or Remote ID position is the target's own GNSS
fix); ``m-f`` (fused) when two or more sensors contributed, and for groups; ``m-a``
("tracker" in the table) for a track of one non-cooperative sensor. ``m-r`` is
avoided: the XSD reads it "relayed", the table "radio".

**time/start/stale**: the picture's time, to the millisecond (what TAK protobuf
keeps), ISO 8601 with ``Z``; stale ``stale_s`` later (5 s: a few radar scans, so a
lost track greys out quickly).

**point**: WGS84 latitude/longitude and height above the ellipsoid at full float
precision (the shortest repr that round-trips; positional, as xs:decimal wants).
``ce`` and ``le`` are 1σ, as the XSD defines them: ``ce`` is the standard deviation
along the worst horizontal axis (√ of the larger eigenvalue of the east/north
covariance; equal to σ for a circular error), ``le`` the vertical standard deviation.
For a group, ``ce`` = ``le`` = its extent (the radius holding every member: the XSD
lets ce describe an area). ``9999999.0`` is CoT's "unknown".

**detail**: ``contact callsign`` (the identity, or ``skyfence-<id>``,
``skyfence-swarm-<id>``), ``track`` course (degrees true, from the north at the
track, not at the origin) and speed (horizontal, m/s), ``remarks`` for people, and a
``skyfence`` element for machines (class, class_p, identity, flags, group, status;
count, extent_m and members for groups). TAK protobuf carries the last two in
``xmlDetail``, written exactly as TAK's converters re-serialise them.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import math
import random
import re
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import ip_address
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Final, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from takproto.proto import TakMessage

from skyfence.adapters.base import Counters, Message, Rejected
from skyfence.classify import CLASSES, CREWED
from skyfence.errors import InputError
from skyfence.geo import Origin
from skyfence.picture import Frame
from skyfence.types import TrackFlag, TrackStatus

__all__ = [
    "CIVIL_FUNCTIONS",
    "DEFAULT_MULTICAST_GROUP",
    "DEFAULT_MULTICAST_PORT",
    "MILITARY_DRONE_FUNCTIONS",
    "TAK_TCP_PORT",
    "TAK_TLS_PORT",
    "UNKNOWN_M",
    "AffiliationPolicy",
    "CotConfig",
    "CotError",
    "CotEvent",
    "CotXmlDecoder",
    "SendStats",
    "TcpSender",
    "UdpSender",
    "encode_proto",
    "encode_xml",
    "frame_events",
    "parse_xml",
    "tls_context",
]

logger = logging.getLogger("skyfence.cot")

#: TAK's situational-awareness multicast group and port.
DEFAULT_MULTICAST_GROUP: Final = "239.2.3.1"
DEFAULT_MULTICAST_PORT: Final = 6969
#: TAK server streaming ports: plain TCP and TLS.
TAK_TCP_PORT: Final = 8087
TAK_TLS_PORT: Final = 8089
#: CoT's value for an unknown ce, le or hae (m).
UNKNOWN_M: Final = 9999999.0

CIVIL_FUNCTIONS: Final[Mapping[str, str]] = MappingProxyType({
    "drone_multirotor": "A-C-H-q",
    "drone_fixed_wing": "A-C-F-q",
    "crewed_aircraft": "A-C",
    "bird": "A",
    "fast_low_flyer": "A-M-F",
    "unknown": "A",
})
MILITARY_DRONE_FUNCTIONS: Final[Mapping[str, str]] = MappingProxyType({
    **CIVIL_FUNCTIONS, "drone_multirotor": "A-M-H-Q", "drone_fixed_wing": "A-M-F-Q"})

#: Crewed aircraft by ADS-B emitter category (``10·set + number``, see
#: ``skyfence.classify.ADSB_CATEGORIES``).
_CREWED_BY_CATEGORY: Final = {11: "A-C-F", 12: "A-C-F", 13: "A-C-F", 14: "A-C-F",
                              15: "A-C-F", 16: "A-C-F", 17: "A-C-H", 21: "A-C-F",
                              22: "A-C-L", 24: "A-C-F"}
_STATUS: Final = ("tentative", "confirmed", "coasting")
_XML_DECL: Final = '<?xml version="1.0" encoding="UTF-8"?>'
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_FUNCTION = re.compile(r"[A-Za-z](-\w+)*")
_QOS = re.compile(r"\d-\w-\w")
_OPEX = re.compile(r"[oes](-.*)?")
_MAX_UDP_BYTES: Final = 65507


class CotError(InputError):
    """Bad CoT input or configuration: the place, the problem and the fix."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True, kw_only=True)
class AffiliationPolicy:
    """Which affiliation a track's CoT type gets (see the module docstring).

    ``friendly``, ``neutral``, ``hostile``: identities as tracks carry them
    (``icao:4840D6``, ``rid:MFG1A0123456789``); an identity in no list is unknown.
    ``suspect_spoof``: a spoof suspect is ``s`` (else ``u``). ``suspect_dark_breach``:
    a dark drone that :func:`frame_events` is told is inside a prohibited zone is ``s``.
    """

    friendly: tuple[str, ...] = ()
    neutral: tuple[str, ...] = ()
    hostile: tuple[str, ...] = ()
    suspect_spoof: bool = True
    suspect_dark_breach: bool = True

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for name in ("friendly", "neutral", "hostile"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
                raise CotError(f"{name} must be a list of identities", field=name,
                               fix='give e.g. ["icao:4840D6", "rid:MFG1A0123456789"]')
            for ident in value:
                if ident in seen and seen[ident] != name:
                    raise CotError(f"{ident!r} is listed both {seen[ident]} and {name}",
                                   field=name, fix="list each identity once")
                seen[ident] = name

    def listed(self) -> dict[str, str]:
        """Identity → affiliation letter of every listed identity."""
        return {**dict.fromkeys(self.friendly, "f"), **dict.fromkeys(self.neutral, "n"),
                **dict.fromkeys(self.hostile, "h")}


@dataclass(frozen=True, slots=True, kw_only=True)
class CotConfig:
    """What :func:`frame_events` writes.

    ``node`` names this skyfence in every uid (letters, digits, ``_``, ``-``).
    ``stale_s``: an event's validity after its time (s). ``drone_symbols``: ``civil``
    (``A-C-F-q``/``A-C-H-q``) or ``military`` (``A-M-F-Q``/``A-M-H-Q``).
    ``functions``: class → CoT function overriding those (e.g. ``{"bird": "A"}``).
    ``crewed_by_category``: refine crewed aircraft by their ADS-B emitter category.
    ``omit_classes``: classes not sent (e.g. ``("bird",)``). ``groups``: send swarm
    groups. ``qos`` (e.g. ``1-r-c``) and ``opex`` (``o``, ``e-<name>``, ``s`` for a
    simulation): the CoT attributes, left out when empty.
    """

    node: str = "local"
    stale_s: float = 5.0
    affiliation: AffiliationPolicy = field(default_factory=AffiliationPolicy)
    drone_symbols: Literal["civil", "military"] = "civil"
    functions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}),
                                         hash=False)
    crewed_by_category: bool = True
    omit_classes: tuple[str, ...] = ()
    groups: bool = True
    qos: str = ""
    opex: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.node, str) or not _NAME.fullmatch(self.node):
            raise CotError(f"node {self.node!r} cannot go in a uid", field="node",
                           fix="use letters, digits, '_' and '-' only, e.g. 'site-a'")
        if not (isinstance(self.stale_s, int | float) and math.isfinite(self.stale_s)
                and self.stale_s > 0):
            raise CotError(f"stale_s {self.stale_s!r} is not a positive number of seconds",
                           field="stale_s", fix="give e.g. 5.0")
        if self.drone_symbols not in ("civil", "military"):
            raise CotError(f"drone_symbols {self.drone_symbols!r} is unknown",
                           field="drone_symbols", fix="use civil or military")
        for name, function in self.functions.items():
            if name not in CLASSES:
                raise CotError(f"{name!r} is not a class", field="functions",
                               fix=f"use one of {', '.join(CLASSES)}")
            if not isinstance(function, str) or not _FUNCTION.fullmatch(function) \
                    or not function.startswith("A"):
                raise CotError(f"{function!r} is not an air function", field="functions",
                               fix="give the type after a-<affiliation>-, e.g. A-C-F-q")
        for name in self.omit_classes:
            if name not in CLASSES:
                raise CotError(f"{name!r} is not a class", field="omit_classes",
                               fix=f"use one of {', '.join(CLASSES)}")
        if self.qos and not _QOS.fullmatch(self.qos):
            raise CotError(f"qos {self.qos!r} is not digit-letter-letter", field="qos",
                           fix="give e.g. 1-r-c (priority, overtaking, assurance), or ''")
        if self.opex and not _OPEX.fullmatch(self.opex):
            raise CotError(f"opex {self.opex!r} is not o, e or s", field="opex",
                           fix="give o (operations), e-<name> (exercise), s (simulation)")

    def function_table(self) -> dict[str, str]:
        """Class → CoT function, overrides applied."""
        base = CIVIL_FUNCTIONS if self.drone_symbols == "civil" else MILITARY_DRONE_FUNCTIONS
        return {**base, **self.functions}


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class CotEvent:
    """One CoT event. Times are milliseconds since the Unix epoch (UTC), as TAK
    protobuf carries them; ``lat_deg``/``lon_deg`` WGS84, ``hae_m`` above the
    ellipsoid, ``ce_m``/``le_m`` 1σ (``UNKNOWN_M``: unknown). ``course_deg`` (true)
    and ``speed_mps`` are the ``track`` element, None when absent. ``remarks`` is the
    text of ``<remarks>``; ``extra`` the further ``<detail>`` children as XML, written
    as it is (it must be well-formed; :func:`parse_xml` makes it so)."""

    uid: str
    type: str
    how: str
    time_ms: int
    start_ms: int
    stale_ms: int
    lat_deg: float
    lon_deg: float
    hae_m: float = UNKNOWN_M
    ce_m: float = UNKNOWN_M
    le_m: float = UNKNOWN_M
    course_deg: float | None = None
    speed_mps: float | None = None
    callsign: str = ""
    remarks: str = ""
    extra: str = ""
    access: str = ""
    qos: str = ""
    opex: str = ""

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def frame_events(frame: Frame, origin: Origin, config: CotConfig | None = None, *,
                 breaching: ArrayLike = ()) -> list[CotEvent]:
    """The picture as CoT events: one per shown track (frame order), then one per group.

    ``breaching``: ids of tracks the zone watch has inside a prohibited zone (e.g. the
    tracks of active ``zone_breach`` alerts on prohibited zones); a dark one among them
    is suspect. Tracks with a non-finite position are left out.
    """
    cfg = config or CotConfig()
    tr = frame.tracks
    t_ms = round(frame.t * 1000.0)
    stale_ms = t_ms + round(cfg.stale_s * 1000.0)
    label = frame.classes.label.astype(np.intp)
    omit = np.isin(label, [CLASSES.index(c) for c in cfg.omit_classes])
    keep = np.isfinite(tr.x[:, :3]).all(axis=1) & ~omit
    aff = _affiliations(frame, cfg.affiliation, np.asarray(breaching, dtype=np.int64))
    events: list[CotEvent] = []
    if keep.any():
        events.extend(_track_events(frame, origin, cfg, np.flatnonzero(keep), aff,
                                    t_ms, stale_ms))
    if cfg.groups and len(frame.groups):
        events.extend(_group_events(frame, origin, cfg, aff, t_ms, stale_ms))
    return events


def _affiliations(frame: Frame, policy: AffiliationPolicy, breaching: NDArray[np.int64]
                  ) -> NDArray[np.str_]:
    tr = frame.tracks
    n = len(tr)
    aff = np.full(n, "u", dtype="<U1")
    if n == 0:
        return aff
    lookup = policy.listed()
    if lookup:
        names, inverse = np.unique(tr.identity, return_inverse=True)
        listed = np.array([lookup.get(str(s), "u") for s in names], dtype="<U1")[inverse]
        aff = listed
    spoof = (tr.flags & np.uint16(TrackFlag.SPOOF_SUSPECT)) != 0
    dark = (tr.flags & np.uint16(TrackFlag.DARK)) != 0
    aff = np.where(spoof, "s" if policy.suspect_spoof else "u", aff)
    if policy.suspect_dark_breach and breaching.size:
        aff = np.where(~spoof & dark & np.isin(tr.id, breaching) & (aff == "u"), "s", aff)
    return aff.astype("<U1")


def _geodetic(origin: Origin, enu: NDArray[np.float64], vel: NDArray[np.float64]
              ) -> tuple[NDArray[np.float64], ...]:
    """Latitude, longitude, height above the ellipsoid, course (degrees true at the
    point) and horizontal speed of ENU positions (k, 3) and velocities (k, 3)."""
    # A non-finite velocity gives a NaN course and speed, which callers leave out.
    with np.errstate(invalid="ignore", over="ignore"):
        lat, lon, hae = origin.enu_to_geodetic(enu)
        v = origin.enu_velocity_to_ecef(vel)
        la, lo = np.radians(lat), np.radians(lon)
        east = -np.sin(lo) * v[:, 0] + np.cos(lo) * v[:, 1]
        north = (-np.sin(la) * np.cos(lo) * v[:, 0] - np.sin(la) * np.sin(lo) * v[:, 1]
                 + np.cos(la) * v[:, 2])
        course = np.degrees(np.arctan2(east, north)) % 360.0
        course = np.where(course >= 360.0, 0.0, course)
        return lat, lon, hae, course, np.hypot(east, north)


def _unknown_where_bad(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.where(np.isfinite(x) & (x >= 0.0), x, UNKNOWN_M)


def _track_events(frame: Frame, origin: Origin, cfg: CotConfig, rows: NDArray[np.intp],
                  aff: NDArray[np.str_], t_ms: int, stale_ms: int) -> list[CotEvent]:
    tr = frame.tracks
    x = tr.x[rows]
    P = tr.P[rows]
    lat, lon, hae, course, speed = _geodetic(origin, x[:, :3], x[:, 3:6])
    a, b, c = P[:, 0, 0], P[:, 0, 1], P[:, 1, 1]
    with np.errstate(invalid="ignore"):
        ce = _unknown_where_bad(np.sqrt(0.5 * (a + c) + np.hypot(0.5 * (a - c), b)))
        le = _unknown_where_bad(np.sqrt(P[:, 2, 2]))
    velocity_ok = np.all(np.isfinite(x[:, 3:6]), axis=1).astype(np.bool_)

    label = frame.classes.label[rows].astype(np.intp)
    table = cfg.function_table()
    function = np.array([table[c] for c in CLASSES])[label]
    if cfg.crewed_by_category:
        category = frame.classes.adsb_category[rows].astype(np.intp)
        crewed = (label == CREWED) & np.isin(category, list(_CREWED_BY_CATEGORY))
        if crewed.any() and "crewed_aircraft" not in cfg.functions:
            function = function.astype(object)
            function[crewed] = [_CREWED_BY_CATEGORY[k] for k in category[crewed].tolist()]
    flags = tr.flags[rows]
    sources = tr.sources[rows]
    n_sources = np.bitwise_count(sources)
    status = tr.status[rows]
    how = np.where(status == TrackStatus.COASTING, "m-p",
                   np.where((flags & np.uint16(TrackFlag.COOPERATIVE_ONLY)) != 0, "m-g",
                            np.where(n_sources >= 2, "m-f", "m-a")))

    prefix = f"skyfence.{cfg.node}.track."
    names = frame.class_names()[rows].tolist()
    class_p = frame.class_p()[rows].tolist()
    flag_text = tr.flag_names()[rows].tolist()
    group = frame.group[rows].tolist()
    events = []
    for (ident, identity, name, p, flagset, g, st, ty_aff, fn, hw, la, lo, h, e_c, e_l, co,
         sp, v_ok) in zip(
            tr.id[rows].tolist(), tr.identity[rows].tolist(), names, class_p, flag_text,
            group, status.tolist(), aff[rows].tolist(), function.tolist(), how.tolist(),
            lat.tolist(), lon.tolist(), hae.tolist(), ce.tolist(), le.tolist(),
            course.tolist(), speed.tolist(), velocity_ok.tolist(), strict=True):
        status_name = _STATUS[st]
        in_group = f"; swarm group {g}" if g >= 0 else ""
        remarks = (f"{name} (p {p:.2f}); {status_name}; flags {flagset or 'none'}"
                   f"{in_group}" + (f"; identity {identity}" if identity else ""))
        extra = (f'<skyfence kind="track" id="{ident}" class="{name}" class_p="{p!r}" '
                 f'identity="{_attr(identity)}" flags="{flagset}" '
                 f'group="{g if g >= 0 else ""}" status="{status_name}" />')
        events.append(CotEvent(
            uid=f"{prefix}{ident}", type=f"a-{ty_aff}-{fn}", how=hw, time_ms=t_ms,
            start_ms=t_ms, stale_ms=stale_ms, lat_deg=la, lon_deg=lo, hae_m=h, ce_m=e_c,
            le_m=e_l, course_deg=co if v_ok else None, speed_mps=sp if v_ok else None,
            callsign=identity or f"skyfence-{ident}", remarks=remarks, extra=extra,
            qos=cfg.qos, opex=cfg.opex))
    return events


def _group_events(frame: Frame, origin: Origin, cfg: CotConfig, aff: NDArray[np.str_],
                  t_ms: int, stale_ms: int) -> list[CotEvent]:
    g = frame.groups
    ok = np.isfinite(g.centroid).all(axis=1)
    if not ok.any():
        return []
    lat, lon, hae, course, speed = _geodetic(origin, g.centroid, g.velocity)
    velocity_ok = np.all(np.isfinite(g.velocity), axis=1).astype(np.bool_)
    extent = _unknown_where_bad(g.extent_m)
    # A group's class: its members' most common class (members without identity
    # already share the group's class; see skyfence.picture).
    row = np.searchsorted(g.id, frame.group)
    member = (frame.group >= 0) & (row < len(g))
    member[member] &= g.id[row[member]] == frame.group[member]
    counts = np.zeros((len(g), len(CLASSES)), dtype=np.int64)
    np.add.at(counts, (row[member], frame.classes.label[member].astype(np.intp)), 1)
    group_label = np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1),
                           CLASSES.index("unknown"))
    table = cfg.function_table()
    prefix = f"skyfence.{cfg.node}.group."
    events = []
    for k in np.flatnonzero(ok).tolist():
        gid = int(g.id[k])
        members = g.member_ids[g.member_start[k]:g.member_start[k + 1]].tolist()
        letters = set(aff[member & (row == k)].tolist())
        group_aff = ("h" if "h" in letters else "s" if "s" in letters
                     else letters.pop() if len(letters) == 1 else "u")
        name = CLASSES[int(group_label[k])]
        count = int(g.count[k])
        extent_k = float(extent[k])
        v_ok = bool(velocity_ok[k])
        members_text = " ".join(map(str, members))
        events.append(CotEvent(
            uid=f"{prefix}{gid}", type=f"a-{group_aff}-{table[name]}", how="m-f",
            time_ms=t_ms, start_ms=t_ms, stale_ms=stale_ms, lat_deg=float(lat[k]),
            lon_deg=float(lon[k]), hae_m=float(hae[k]), ce_m=extent_k, le_m=extent_k,
            course_deg=float(course[k]) if v_ok else None,
            speed_mps=float(speed[k]) if v_ok else None,
            callsign=f"skyfence-swarm-{gid}",
            remarks=f"swarm of {count} ({name}); extent {float(g.extent_m[k]):.0f} m",
            extra=(f'<skyfence kind="group" id="{gid}" class="{name}" count="{count}" '
                   f'extent_m="{float(g.extent_m[k])!r}" members="{members_text}" />'),
            qos=cfg.qos, opex=cfg.opex))
    return events


# --------------------------------------------------------------------------- XML out

# ElementTree's escaping, so that TAK's converters (which re-serialise unknown
# <detail> children with ElementTree) give back exactly what we wrote; everything
# outside printable ASCII as a character reference, as ElementTree does too.
_ATTR_SPECIAL = re.compile(r'[&<>"\t\n\r]|[^\x20-\x7e]')
_TEXT_SPECIAL = re.compile(r"[&<>]|[^\x20-\x7e\t\n\r]")
#: Characters XML 1.0 cannot carry at all, not even as references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _attr(s: str) -> str:
    """``s`` as an attribute value between double quotes."""
    if _ATTR_SPECIAL.search(s) is None:
        return s
    s = (_NOT_XML.sub("\ufffd", s).replace("&", "&amp;").replace("<", "&lt;")
         .replace(">", "&gt;").replace('"', "&quot;").replace("\r", "&#13;")
         .replace("\n", "&#10;").replace("\t", "&#09;"))
    return s.encode("ascii", "xmlcharrefreplace").decode("ascii")


def _text(s: str) -> str:
    """``s`` as element text."""
    if _TEXT_SPECIAL.search(s) is None:
        return s
    s = _NOT_XML.sub("\ufffd", s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.encode("ascii", "xmlcharrefreplace").decode("ascii")


def _dec(x: float, name: str) -> str:
    """A float as xs:decimal: the shortest repr that round-trips, without exponent."""
    s = float.__repr__(float(x))
    if "e" in s or "n" in s:
        if not math.isfinite(x):
            raise CotError(f"{name} is {s}, which CoT cannot carry", field=name,
                           fix=f"give a finite number (ce, le, hae: {UNKNOWN_M} for unknown)")
        s = np.format_float_positional(x, unique=True, trim="0")
    return s


@lru_cache(maxsize=4096)
def _iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC: ``2024-06-01T12:00:00.250Z``."""
    s, m = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(s))}.{m:03d}Z"


def _xml_detail(ev: CotEvent) -> str:
    """The ``<detail>`` children TAK protobuf keeps as ``xmlDetail``."""
    if ev.remarks:
        return f"<remarks>{_text(ev.remarks)}</remarks>{ev.extra}"
    return ev.extra


def encode_xml(ev: CotEvent) -> bytes:
    """One event as a CoT 2.0 XML document (UTF-8, with the XML declaration), valid
    against ``CoT_Event_v2.xsd``. Raises CotError for a non-finite number."""
    opt = ""
    if ev.access:
        opt += f' access="{_attr(ev.access)}"'
    if ev.qos:
        opt += f' qos="{_attr(ev.qos)}"'
    if ev.opex:
        opt += f' opex="{_attr(ev.opex)}"'
    contact = f'<contact callsign="{_attr(ev.callsign)}"/>' if ev.callsign else ""
    track = ""
    if ev.course_deg is not None and ev.speed_mps is not None:
        track = (f'<track course="{_dec(ev.course_deg, "course_deg")}" '
                 f'speed="{_dec(ev.speed_mps, "speed_mps")}"/>')
    return (
        f'{_XML_DECL}<event version="2.0" uid="{_attr(ev.uid)}" type="{_attr(ev.type)}" '
        f'how="{_attr(ev.how)}" time="{_iso(ev.time_ms)}" start="{_iso(ev.start_ms)}" '
        f'stale="{_iso(ev.stale_ms)}"{opt}>'
        f'<point lat="{_dec(ev.lat_deg, "lat_deg")}" lon="{_dec(ev.lon_deg, "lon_deg")}" '
        f'hae="{_dec(ev.hae_m, "hae_m")}" ce="{_dec(ev.ce_m, "ce_m")}" '
        f'le="{_dec(ev.le_m, "le_m")}"/>'
        f"<detail>{contact}{track}{_xml_detail(ev)}</detail></event>"
    ).encode()


# --------------------------------------------------------------------------- protobuf out


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_proto(ev: CotEvent, *, framing: Literal["mesh", "stream", "none"] = "mesh"
                 ) -> bytes:
    """One event as TAK protocol version 1: a ``TakMessage`` (takproto's generated
    classes) framed for ``mesh`` (UDP: ``bf 01 bf`` then the message), ``stream``
    (TCP: ``bf``, the length as a varint, the message) or ``none`` (the bare message)."""
    for name in ("lat_deg", "lon_deg", "hae_m", "ce_m", "le_m"):
        if not math.isfinite(getattr(ev, name)):
            raise CotError(f"{name} is not finite", field=name,
                           fix=f"give a finite number (ce, le, hae: {UNKNOWN_M} for unknown)")
    msg = TakMessage()
    e = msg.cotEvent
    e.type = ev.type
    if ev.access:
        e.access = ev.access
    if ev.qos:
        e.qos = ev.qos
    if ev.opex:
        e.opex = ev.opex
    e.uid = ev.uid
    e.sendTime = ev.time_ms
    e.startTime = ev.start_ms
    e.staleTime = ev.stale_ms
    e.how = ev.how
    e.lat = ev.lat_deg
    e.lon = ev.lon_deg
    e.hae = ev.hae_m
    e.ce = ev.ce_m
    e.le = ev.le_m
    if ev.callsign:
        e.detail.contact.callsign = _NOT_XML.sub("\ufffd", ev.callsign)
    if ev.course_deg is not None and ev.speed_mps is not None:
        e.detail.track.speed = ev.speed_mps
        e.detail.track.course = ev.course_deg
    xml_detail = _xml_detail(ev)
    if xml_detail:
        e.detail.xmlDetail = xml_detail
    body: bytes = msg.SerializeToString()
    if framing == "mesh":
        return b"\xbf\x01\xbf" + body
    if framing == "stream":
        return b"\xbf" + _varint(len(body)) + body
    if framing == "none":
        return body
    raise CotError(f"framing {framing!r} is unknown", field="framing",
                   fix="use mesh (UDP), stream (TCP) or none")


# --------------------------------------------------------------------------- XML in

_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
                   r"(Z|[+-]\d\d:\d\d)?")
_REQUIRED = ("uid", "type", "how", "time", "start", "stale")


def _local(tag: str) -> str:
    """A tag or attribute name without its namespace."""
    return tag.rpartition("}")[2]


def _parse_ms(value: str, name: str) -> int:
    m = _TIME.fullmatch(value.strip())
    if m is None:
        raise CotError(f"{value!r} is not an ISO 8601 time", field=name,
                       fix="give e.g. 2024-06-01T12:00:00.250Z")
    y, mo, d, h, mi, s = (int(v) for v in m.groups()[:6])
    fraction, zone = m.group(7) or "", m.group(8) or "Z"
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1] and h <= 24
            and mi <= 59 and s <= 60):
        raise CotError(f"{value!r} is not a valid time", field=name,
                       fix="give e.g. 2024-06-01T12:00:00.250Z")
    seconds = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    # Truncated to the millisecond, as TAK protobuf keeps times.
    return seconds * 1000 + int((fraction + "000")[:3])


def _number(attrs: Mapping[str, str], name: str, field_name: str, default: float | None
            ) -> float:
    value = attrs.get(name)
    if value is None or not value.strip():
        if default is None:
            raise CotError(f"point has no {name}", field=f"point/@{name}",
                           fix=f"give {name} in decimal degrees")
        return default
    try:
        x = float(value)
    except ValueError:
        raise CotError(f"{value!r} is not a number", field=field_name,
                       fix="give a decimal number") from None
    if not math.isfinite(x):
        raise CotError(f"{value!r} is not finite", field=field_name,
                       fix="give a decimal number")
    return x


def parse_xml(data: bytes | str) -> CotEvent:
    """One CoT event from XML, tolerant of surrounding whitespace, a byte-order mark,
    namespaces and prefixes. Unknown ``<detail>`` children are kept in ``extra`` as
    ElementTree writes them; other attributes of ``contact`` and ``track`` are not
    kept. Times are truncated to the millisecond. Raises CotError; a document type
    declaration is refused (CoT has none, and it is how entity bombs come in)."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    raw = raw.lstrip(b"\xef\xbb\xbf \t\r\n")
    if b"<!DOCTYPE" in raw[:4096].upper():
        raise CotError("the document has a DOCTYPE", field="event",
                       fix="send CoT events without a document type declaration")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise CotError(f"not well-formed XML: {exc}", field="event",
                       fix="send one complete <event> element") from None
    if _local(root.tag) != "event":
        raise CotError(f"the root element is <{_local(root.tag)}>, not <event>",
                       field="event", fix="send CoT <event> elements")
    attrs = {_local(k): v for k, v in root.attrib.items()}
    for name in _REQUIRED:
        if not attrs.get(name, "").strip():
            raise CotError(f"the event has no {name}", field=f"event/@{name}",
                           fix=f"give the {name} attribute")
    point = detail = None
    for child in root:
        tag = _local(child.tag)
        if tag == "point" and point is None:
            point = {_local(k): v for k, v in child.attrib.items()}
        elif tag == "detail" and detail is None:
            detail = child
    if point is None:
        raise CotError("the event has no <point>", field="event/point",
                       fix="give <point lat=… lon=… hae=… ce=… le=…/>")
    lat = _number(point, "lat", "point/@lat", None)
    lon = _number(point, "lon", "point/@lon", None)
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise CotError(f"lat {lat!r}, lon {lon!r} is off the earth", field="point",
                       fix="give WGS84 degrees, latitude first")
    callsign = remarks = ""
    course = speed = None
    extra: list[str] = []
    if detail is not None:
        for child in detail:
            tag = _local(child.tag)
            child_attrs = {_local(k): v for k, v in child.attrib.items()}
            if tag == "contact" and not callsign:
                callsign = child_attrs.get("callsign", "")
            elif tag == "track" and course is None and "course" in child_attrs \
                    and "speed" in child_attrs:
                course = _number(child_attrs, "course", "track/@course", None)
                speed = _number(child_attrs, "speed", "track/@speed", None)
            elif tag == "remarks" and not child.attrib and len(child) == 0 and not remarks:
                remarks = child.text or ""
            else:
                for e in child.iter():
                    e.tag = _local(e.tag)
                    e.attrib = {_local(k): v for k, v in e.attrib.items()}
                child.tail = None
                extra.append(ET.tostring(child).decode("ascii"))
    return CotEvent(
        uid=attrs["uid"].strip(), type=attrs["type"].strip(), how=attrs["how"].strip(),
        time_ms=_parse_ms(attrs["time"], "event/@time"),
        start_ms=_parse_ms(attrs["start"], "event/@start"),
        stale_ms=_parse_ms(attrs["stale"], "event/@stale"),
        lat_deg=lat, lon_deg=lon,
        hae_m=_number(point, "hae", "point/@hae", UNKNOWN_M),
        ce_m=_number(point, "ce", "point/@ce", UNKNOWN_M),
        le_m=_number(point, "le", "point/@le", UNKNOWN_M),
        course_deg=course, speed_mps=speed, callsign=callsign, remarks=remarks,
        extra="".join(extra), access=attrs.get("access", ""), qos=attrs.get("qos", ""),
        opex=attrs.get("opex", ""))


_EVENT_END = re.compile(rb"</(?:[\w.-]+:)?event\s*>")
_EVENT_START = re.compile(rb"<\?xml|<(?:[\w.-]+:)?event[\s>/]")


class CotXmlDecoder:
    """CoT XML events back to back (a TAK server stream, a file) in any chunking:
    events and rejections out, in stream order (see ``skyfence.adapters.base``).

    Bytes before an event's start that are not whitespace are rejected on their own;
    an event longer than ``max_event_bytes`` without its end tag is rejected and the
    decoder resynchronises on the next end tag.
    """

    def __init__(self, *, max_event_bytes: int = 1 << 20) -> None:
        self.counters = Counters()
        self.max_event_bytes = max_event_bytes
        self._buf = bytearray()
        self._offset = 0  # stream offset of _buf[0]
        self._scanned = 0  # _buf[:_scanned] holds no end tag
        self._skipping = False  # inside an over-long event: drop up to its end

    def feed(self, data: bytes) -> list[Message | Rejected]:
        self.counters.bytes_in += len(data)
        self._buf += data
        out: list[Message | Rejected] = []
        while (m := _EVENT_END.search(self._buf, max(0, self._scanned - 16))) is not None:
            chunk = bytes(self._buf[:m.end()])
            start = self._offset
            del self._buf[:m.end()]
            self._offset += m.end()
            self._scanned = 0
            if self._skipping:
                self._skipping = False
                continue
            out.extend(self._decode(chunk, start))
        self._scanned = len(self._buf)
        if len(self._buf) > self.max_event_bytes:
            if not self._skipping:
                out.append(self._reject(self._offset, "event too long: no end tag within "
                                        f"{self.max_event_bytes} bytes", bytes(self._buf)))
            self._skipping = True
            self._offset += len(self._buf)
            self._buf.clear()
            self._scanned = 0
        return out

    def close(self) -> list[Message | Rejected]:
        rest, self._buf = bytes(self._buf), bytearray()
        start, self._offset = self._offset, self._offset + len(rest)
        self._scanned = 0
        if rest.strip() and not self._skipping:
            return [self._reject(start + len(rest) - len(rest.lstrip()),
                                 "truncated event: the stream ended inside it", rest.lstrip())]
        self._skipping = False
        return []

    def _decode(self, chunk: bytes, offset: int) -> list[Message | Rejected]:
        out: list[Message | Rejected] = []
        m = _EVENT_START.search(chunk)
        begin = m.start() if m is not None else 0
        head = chunk[:begin]
        if head.strip():
            lead = len(head) - len(head.lstrip())
            out.append(self._reject(offset + lead, "not an event: bytes between events",
                                    head.lstrip()))
        body = chunk[begin:]
        lead = len(body) - len(body.lstrip())
        try:
            event = parse_xml(body)
        except CotError as exc:
            out.append(self._reject(offset + begin + lead, f"bad event: {exc}",
                                    body.lstrip()))
        else:
            self.counters.accepted += 1
            out.append(event)
        return out

    def _reject(self, offset: int, reason: str, data: bytes) -> Rejected:
        self.counters.reject(reason)
        return Rejected(offset=offset, reason=reason, data=data[:64])


# --------------------------------------------------------------------------- transports


def tls_context(*, certfile: str | Path, keyfile: str | Path | None = None,
                cafile: str | Path, password: str | None = None,
                check_hostname: bool = True) -> ssl.SSLContext:
    """A client TLS context for a TAK server (8089): our certificate (PEM; the key in
    ``keyfile`` or in ``certfile``) and the CA that signed the server's certificate.
    ``check_hostname=False`` still verifies the chain; use it only when the server's
    certificate does not name the host you connect to. TAK ``.p12`` files must be
    converted to PEM first (``openssl pkcs12 -in user.p12 -out user.pem -nodes``)."""
    for name, path in (("certfile", certfile), ("keyfile", keyfile), ("cafile", cafile)):
        if path is not None and not Path(path).is_file():
            raise CotError(f"{path} does not exist", file=str(path), field=name,
                           fix="give the path of a PEM file")
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cafile))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = check_hostname
        ctx.load_cert_chain(str(certfile), None if keyfile is None else str(keyfile),
                            password)
    except ssl.SSLError as exc:
        raise CotError(f"cannot load the certificates: {exc}", file=str(certfile),
                       fix="give PEM files: the client certificate and key, and the CA "
                           "certificate") from None
    return ctx


@dataclass(slots=True)
class SendStats:
    """Payloads handed to ``send``, sent, dropped because the queue was full (the
    oldest go), and lost to a failed write; connections made; bytes sent; exceptions
    raised by ``on_receive``."""

    queued: int = 0
    sent: int = 0
    dropped: int = 0
    failed: int = 0
    connects: int = 0
    bytes_sent: int = 0
    receive_errors: int = 0


class _Sender:
    """A bounded queue in front of a writer task: ``send`` never waits."""

    def __init__(self, *, queue_size: int) -> None:
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise CotError(f"queue_size {queue_size!r} is not a positive integer",
                           field="queue_size", fix="give e.g. 10000")
        self.queue_size = queue_size
        self.stats = SendStats()
        self.last_error = ""
        self._queue: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def send(self, payload: bytes) -> None:
        """Queue one payload (an encoded event); call from the event loop's thread."""
        if len(self._queue) >= self.queue_size:
            self._queue.popleft()
            self.stats.dropped += 1
        self._queue.append(payload)
        self.stats.queued += 1
        self._wake.set()

    def send_many(self, payloads: Iterable[bytes]) -> None:
        for p in payloads:
            self.send(p)

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until the queue is empty (True) or ``timeout_s`` passes (False)."""
        deadline = time.monotonic() + timeout_s
        while self._queue or self._busy():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def close(self) -> None:
        """Stop the writer; what is still queued is dropped."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_transport()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def _run(self) -> None:
        raise NotImplementedError

    def _busy(self) -> bool:
        return False

    async def _close_transport(self) -> None:
        return None


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, sender: UdpSender) -> None:
        self.sender = sender
        self.writable = asyncio.Event()
        self.writable.set()

    def error_received(self, exc: Exception) -> None:
        self.sender.stats.failed += 1
        self.sender.last_error = repr(exc)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


class UdpSender(_Sender):
    """Datagrams to a multicast group (TAK SA: 239.2.3.1:6969) or a unicast address,
    one payload each (XML or ``encode_proto(..., framing="mesh")``).

    ``ttl``: multicast hops (1 stays on the local network). ``interface``: the local
    IPv4 address whose interface sends the multicast (empty: the routing table's
    choice). ``loopback``: this host's own multicast listeners hear it too.
    """

    def __init__(self, host: str = DEFAULT_MULTICAST_GROUP, port: int = DEFAULT_MULTICAST_PORT,
                 *, ttl: int = 1, interface: str = "", loopback: bool = True,
                 queue_size: int = 10_000) -> None:
        super().__init__(queue_size=queue_size)
        try:
            self._multicast = ip_address(host).is_multicast
        except ValueError:
            self._multicast = False
        if not (isinstance(ttl, int) and 0 <= ttl <= 255):
            raise CotError(f"ttl {ttl!r} is not 0–255", field="ttl", fix="give e.g. 1")
        self.host, self.port, self.ttl = host, port, ttl
        self.interface, self.loopback = interface, loopback
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Datagrams | None = None
        self._address: tuple[Any, ...] = (host, port)

    async def start(self) -> None:
        if self._transport is None:
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM,
                                           family=socket.AF_INET)
            self._address = infos[0][4]
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                if self._multicast:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.ttl)
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP,
                                    int(self.loopback))
                    if self.interface:
                        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                        socket.inet_aton(self.interface))
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: _Datagrams(self), sock=sock)
            except BaseException:
                sock.close()
                raise
            self._transport, self._protocol = transport, protocol
        await super().start()

    async def _run(self) -> None:
        transport, protocol = self._transport, self._protocol
        if transport is None or protocol is None:
            return
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                if not protocol.writable.is_set():
                    await protocol.writable.wait()
                payload = self._queue.popleft()
                if len(payload) > _MAX_UDP_BYTES:
                    self.stats.failed += 1
                    self.last_error = f"a payload of {len(payload)} bytes exceeds a datagram"
                    continue
                transport.sendto(payload, self._address)
                self.stats.sent += 1
                self.stats.bytes_sent += len(payload)

    async def _close_transport(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = self._protocol = None
            await asyncio.sleep(0)


class TcpSender(_Sender):
    """A streaming client of a TAK server: events back to back over TCP (8087), or
    TLS (8089) with an ``ssl`` context from :func:`tls_context`.

    Reconnects after a failure with exponential backoff and full jitter (the wait is
    drawn below ``backoff_s``, doubled per failure up to ``backoff_max_s``). What the
    server sends is read so its socket never stalls, and handed to ``on_receive``
    (e.g. a :class:`CotXmlDecoder`'s ``feed``) when given. Payloads whose write fails
    are counted ``failed``; like any TCP sender it cannot know of those the kernel
    had accepted just before the peer went away.
    """

    def __init__(self, host: str, port: int = TAK_TCP_PORT, *,
                 ssl: ssl.SSLContext | None = None, server_hostname: str | None = None,
                 queue_size: int = 10_000, backoff_s: float = 0.5,
                 backoff_max_s: float = 30.0, connect_timeout_s: float = 10.0,
                 on_receive: Callable[[bytes], object] | None = None) -> None:
        super().__init__(queue_size=queue_size)
        for name, value in (("backoff_s", backoff_s), ("backoff_max_s", backoff_max_s),
                            ("connect_timeout_s", connect_timeout_s)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise CotError(f"{name} {value!r} is not a positive number of seconds",
                               field=name, fix="give e.g. 0.5")
        self.host, self.port = host, port
        self.ssl, self.server_hostname = ssl, server_hostname
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self.connect_timeout_s = connect_timeout_s
        self.on_receive = on_receive
        self.connected = asyncio.Event()
        self._writing = False

    def _busy(self) -> bool:
        return self._writing

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, ssl=self.ssl,
                                            server_hostname=self.server_hostname
                                            if self.ssl is not None else None),
                    self.connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                self.last_error = repr(exc)
                failures += 1
                cap = min(self.backoff_max_s, self.backoff_s * 2 ** min(failures - 1, 30))
                await asyncio.sleep(random.uniform(0.0, cap))
                continue
            failures = 0
            self.stats.connects += 1
            self.connected.set()
            broken = asyncio.Event()
            reading = asyncio.get_running_loop().create_task(self._read(reader, broken))
            try:
                await self._pump(writer, broken)
            finally:
                self.connected.clear()
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
            failures = 1
            await asyncio.sleep(random.uniform(0.0, self.backoff_s))

    async def _read(self, reader: asyncio.StreamReader, broken: asyncio.Event) -> None:
        try:
            while data := await reader.read(1 << 16):
                if self.on_receive is not None:
                    try:
                        self.on_receive(data)
                    except Exception:  # the reader's bug must not stall the sender
                        self.stats.receive_errors += 1
                        if self.stats.receive_errors == 1:
                            logger.exception("on_receive failed; later failures are "
                                             "only counted")
        except (OSError, ssl.SSLError) as exc:
            self.last_error = repr(exc)
        finally:
            broken.set()
            self._wake.set()

    async def _pump(self, writer: asyncio.StreamWriter, broken: asyncio.Event) -> None:
        while not broken.is_set():
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            # Many events per write: one system call for a whole picture.
            batch = []
            size = 0
            while self._queue and size < (1 << 20):
                batch.append(self._queue.popleft())
                size += len(batch[-1])
            self._writing = True
            try:
                writer.write(b"".join(batch))
                await writer.drain()
            except (OSError, ssl.SSLError) as exc:
                self.last_error = repr(exc)
                self.stats.failed += len(batch)
                return
            finally:
                self._writing = False
            self.stats.sent += len(batch)
            self.stats.bytes_sent += size

