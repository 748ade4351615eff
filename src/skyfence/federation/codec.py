"""What one node sends another: the picture released to a partner, as one message.

One message per picture (at most one a period), JSON, columnar so that a thousand
tracks stay a few hundred kilobytes::

    {"v": 1, "from": "police", "to": "army", "node": "police-hq", "t": 1764252000.0,
     "tracks": {"id": [...], "x": [[X, Y, Z, VX, VY, VZ], ...],
                "P": [[21 numbers: the upper triangle of the 6×6 covariance, row by
                       row], ...],
                "class": [...], "identity": [...]}}

States are ECEF (metres, m/s; WGS84), so that two nodes with different local
origins need agree on nothing but the datum; the receiver rotates them into its own
frame. ``t`` is the picture's time (Unix s) and names the message: the publisher
gives it as the JetStream message id, so a repeat is dropped by the broker, and the
receiver refuses a message not newer than the last it took from that sender
(a replay, or one that overtook another).

Field-level release (:class:`FieldPolicy`): for a partner that may have positions
only to the nearest kilometre and no identities, the positions are snapped to a
grid of that size (its variance, size²/12, added to the covariance, so the
receiver weighs them for what they are) and identities are left empty.

:class:`PictureDecoder` is the receiving side's stream decoder (each NATS message
is one ``feed``): it checks the version, the sender (the source's ``partner``
option: a message claiming another sender is forged), the recipient, sizes, finite
numbers, positive definite covariances, the order of times, and, when the source
has an ``area``, that every track lies in it. A bad message is rejected whole with
the reason; nothing accepted before is touched.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skyfence.adapters.base import Message, Rejected
from skyfence.classify import CLASSES
from skyfence.geo import Origin, ecef_to_geodetic
from skyfence.picture import Frame
from skyfence.scenario import Scenario
from skyfence.types import F64, Detections, PartnerTracks

VERSION = 1
#: Largest message accepted (bytes): 10,000 tracks fit.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
_IU = np.triu_indices(6)
#: Carrying a partner's track forward to its arrival: white-acceleration noise
#: (m²/s³; a manoeuvring drone), and the longest carry (s).
RETIME_Q = 10.0
RETIME_MAX_S = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldPolicy:
    """What of each track a partner receives: positions snapped to ``round_m`` (0:
    as they are), identities or not."""

    round_m: float = 0.0
    identity: bool = True


def encode_picture(frame: Frame, origin: Origin, *, sender: str, recipient: str,
                   node: str, policy: FieldPolicy | None = None) -> bytes:
    """The shown tracks of ``frame`` (ENU at ``origin``) as a message for ``recipient``."""
    return picture_message(encode_tracks(frame, origin, policy), sender=sender,
                           recipient=recipient, node=node, t=frame.t)


def encode_tracks(frame: Frame, origin: Origin, policy: FieldPolicy | None = None) -> bytes:
    """The ``tracks`` object of a message: all of the encoding's work, and the same for
    every recipient with the same ``policy``, so that a node sending one picture to
    several partners encodes it once (:func:`picture_message` adds the envelope)."""
    pol = policy or FieldPolicy()
    tr = frame.tracks
    shown = (tr.status != 0) & np.isfinite(tr.x[:, :6]).all(axis=1)
    x = tr.x[shown, :6]
    P = tr.P[shown, :6, :6]
    R = origin.rotation  # ENU rows in ECEF axes: v_ecef = v_enu @ R
    pos = origin.enu_to_ecef(x[:, :3])
    vel = x[:, 3:6] @ R
    T = np.zeros((6, 6))
    T[:3, :3] = T[3:, 3:] = R.T  # ECEF = T @ ENU
    Pe = T @ P @ T.T
    if pol.round_m > 0:
        pos, Pe = _snap(pos, Pe, pol.round_m)
    Pe = 0.5 * (Pe + np.swapaxes(Pe, 1, 2))
    names = np.asarray(CLASSES)[frame.classes.label[shown].astype(np.intp)]
    ident = tr.identity[shown] if pol.identity else np.full(int(shown.sum()), "")
    tracks = {
        "id": tr.id[shown].tolist(),
        "x": np.hstack([pos, vel]).tolist(),
        "P": Pe[:, _IU[0], _IU[1]].tolist(),
        "class": names.tolist(),
        "identity": ident.tolist(),
    }
    return json.dumps(tracks, separators=(",", ":"), allow_nan=False).encode()


def picture_message(tracks: bytes, *, sender: str, recipient: str, node: str,
                    t: float) -> bytes:
    """A whole message: the envelope around ``tracks`` (from :func:`encode_tracks`)."""
    head = json.dumps({"v": VERSION, "from": sender, "to": recipient, "node": node, "t": t},
                      separators=(",", ":"), allow_nan=False).encode()
    return b"".join((head[:-1], b',"tracks":', tracks, b"}"))


def _snap(pos: F64, P: F64, size_m: float) -> tuple[F64, F64]:
    """Positions to the nearest grid point of ``size_m`` on the ground (latitude and
    longitude cells of that size), the grid's variance added."""
    lat, lon, h = ecef_to_geodetic(pos)
    dlat = math.degrees(size_m / 6_371_000.0)
    dlon = dlat / np.maximum(np.cos(np.radians(lat)), 1e-3)
    lat = np.round(lat / dlat) * dlat
    lon = np.round(lon / dlon) * dlon
    h = np.round(h / size_m) * size_m
    from skyfence.geo import geodetic_to_ecef

    snapped = geodetic_to_ecef(lat, lon, h)
    P = P.copy()
    P[:, [0, 1, 2], [0, 1, 2]] += size_m**2 / 12.0
    return snapped, P


@dataclass(frozen=True, slots=True)
class PartnerPicture:
    """A decoded message: who sent it, its time, and its tracks (ECEF)."""

    sender: str
    recipient: str
    node: str
    t: float
    id: NDArray[np.int64]
    x: F64  # (n, 6) ECEF
    P: F64  # (n, 6, 6) ECEF
    klass: NDArray[np.str_]
    identity: NDArray[np.str_]

    def to_json(self) -> dict[str, Any]:
        return {"from": self.sender, "to": self.recipient, "node": self.node, "t": self.t,
                "tracks": int(self.id.size)}

    def detections(self, scenario: Scenario, sensor: int, t_receive: float | None = None
                   ) -> Detections:
        """The tracks as partner-track rows of ``sensor``, in ``scenario``'s frame.

        With ``t_receive`` (when the node received the message), each state is
        predicted to that time — constant velocity, with ``RETIME_Q`` process noise
        — and the rows carry it: a partner's picture is always some hundreds of
        milliseconds old when it arrives (the sender's reorder window, the
        transport), so at its own time it would fall behind the receiver's window
        and be dropped as late; a track estimate, unlike a measurement, can be
        carried forward. Not beyond ``RETIME_MAX_S``: older pictures keep their time.
        """
        origin = scenario.origin
        n = self.id.size
        R = origin.rotation
        T = np.zeros((6, 6))
        T[:3, :3] = T[3:, 3:] = R  # ENU = T @ ECEF
        x = np.hstack([origin.ecef_to_enu(self.x[:, :3]), self.x[:, 3:6] @ R.T])
        P = T @ self.P @ T.T
        t = self.t
        if t_receive is not None and 0.0 < t_receive - self.t <= RETIME_MAX_S:
            dt, t = t_receive - self.t, t_receive
            F = np.eye(6)
            F[:3, 3:] = dt * np.eye(3)
            Q = np.zeros((6, 6))
            Q[:3, :3] = dt**3 / 3.0 * np.eye(3)
            Q[:3, 3:] = Q[3:, :3] = dt**2 / 2.0 * np.eye(3)
            Q[3:, 3:] = dt * np.eye(3)
            x = x @ F.T
            P = F @ P @ F.T + RETIME_Q * Q
        P = 0.5 * (P + np.swapaxes(P, 1, 2))
        ref = np.array([f"{self.sender}:{i}" for i in self.id.tolist()], dtype=np.str_)
        return Detections(t=np.full(n, t), sensor=np.full(n, sensor, dtype=np.int32),
                          z=x[:, :3].copy(), R=P[:, :3, :3].copy(), identity=self.identity,
                          reported=PartnerTracks(x=x, P=P, ref=ref))


@dataclass(frozen=True, slots=True)
class Area:
    """A box a sender may report tracks in (WGS84 degrees)."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float

    def contains(self, lat: F64, lon: F64) -> NDArray[np.bool_]:
        return np.asarray((lat >= self.lat_min) & (lat <= self.lat_max)
                          & (lon >= self.lon_min) & (lon <= self.lon_max))


class PictureDecoder:
    """Messages of one sender (``partner``) to this node's ``recipient`` (see the module
    docstring). Each ``feed`` is one whole message."""

    def __init__(self, *, partner: str, recipient: str = "", area: Any = None,
                 max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.partner, self.recipient = partner, recipient
        self.area = _area(area)
        self.max_message_bytes = max_message_bytes
        self.last_t = -math.inf
        self.offset = 0
        self.counters: dict[str, int] = {"accepted": 0}

    def feed(self, data: bytes) -> list[Message | Rejected]:
        start, self.offset = self.offset, self.offset + len(data)
        try:
            msg = self._decode(data)
        except _Bad as bad:
            key = bad.reason.split(":")[0]
            self.counters[key] = self.counters.get(key, 0) + 1
            return [Rejected(offset=start, reason=bad.reason, data=data[:64])]
        self.counters["accepted"] += 1
        self.last_t = msg.t
        return [msg]

    def close(self) -> list[Message | Rejected]:
        return []

    def _decode(self, data: bytes) -> PartnerPicture:
        if len(data) > self.max_message_bytes:
            raise _Bad(f"oversize: {len(data)} bytes, more than {self.max_message_bytes}")
        try:
            body = json.loads(data, parse_constant=_no_constant)
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as err:
            raise _Bad(f"not JSON: {err}") from None
        if not isinstance(body, dict) or body.get("v") != VERSION:
            raise _Bad(f"not a version {VERSION} picture message")
        sender, recipient = body.get("from"), body.get("to")
        if sender != self.partner:
            raise _Bad(f"forged sender: {sender!r} on the feed of {self.partner!r}")
        if self.recipient and recipient != self.recipient:
            raise _Bad(f"wrong recipient: {recipient!r}, this node is {self.recipient!r}")
        t = body.get("t")
        if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t):
            raise _Bad("bad time: 't' is not a number")
        if t <= self.last_t:
            raise _Bad(f"replayed or reordered: t {t} is not after {self.last_t}")
        tracks = body.get("tracks")
        if not isinstance(tracks, dict):
            raise _Bad("bad tracks: not an object")
        try:
            ids = np.asarray(tracks["id"], dtype=np.int64).reshape(-1)
            n = ids.size
            x = np.asarray(tracks["x"], dtype=np.float64).reshape(n, 6)
            tri = np.asarray(tracks["P"], dtype=np.float64).reshape(n, 21)
            klass = np.asarray(tracks["class"], dtype=np.str_).reshape(n)
            ident = np.asarray(tracks["identity"], dtype=np.str_).reshape(n)
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise _Bad(f"bad tracks: {err}") from None
        if not (np.isfinite(x).all() and np.isfinite(tri).all()):
            raise _Bad("bad tracks: a number is not finite")
        if not np.isin(klass, CLASSES).all():
            raise _Bad("bad tracks: an unknown class")
        P = np.zeros((n, 6, 6))
        P[:, _IU[0], _IU[1]] = tri
        P = P + np.swapaxes(P, 1, 2) - P * np.eye(6)
        if n and not np.all(np.linalg.eigvalsh(P)[:, 0] > 0):
            raise _Bad("bad tracks: a covariance is not positive definite")
        if self.area is not None and n:
            lat, lon, _ = ecef_to_geodetic(x[:, :3])
            outside = ~self.area.contains(lat, lon)
            if outside.any():
                raise _Bad(f"outside the sender's area: {int(outside.sum())} of {n} tracks")
        return PartnerPicture(sender=str(sender), recipient=str(recipient or ""),
                              node=str(body.get("node", "")), t=float(t), id=ids, x=x, P=P,
                              klass=klass, identity=ident)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number (RFC 8259)")


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _area(value: Any) -> Area | None:
    if value is None:
        return None
    if isinstance(value, Area):
        return value
    if isinstance(value, dict):
        try:
            return Area(**{k: float(value[k]) for k in ("lat_min", "lat_max", "lon_min",
                                                        "lon_max")})
        except (KeyError, TypeError, ValueError):
            pass
    from skyfence.errors import InputError

    raise InputError(f"area {value!r} is not a box", field="area",
                     fix="give { lat_min, lat_max, lon_min, lon_max } in degrees")
