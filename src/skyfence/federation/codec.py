"""What one node sends another: the picture released to a partner, as one message.

One message per picture (at most one a period). Version 2, what a node sends: a
small JSON envelope and tracks header, then the tracks as little-endian arrays, so
that neither side turns a thousand tracks into text and back (with JSON, encoding
and decoding cost a node more CPU than its own tracker)::

    b"SKYF" | u8 version (2) | u32 length | envelope, JSON:
        {"from": "police", "to": "army", "node": "police-hq", "t": 1764252000.0}
    u32 length | tracks header, JSON:
        {"n": N, "classes": [names], "identity_rows": [...], "identity": [...]}
    id int64 (N) | x float64 (N, 6): X, Y, Z, VX, VY, VZ |
    P float64 (N, 21): the upper triangle of the 6×6 covariance, row by row |
    class uint8 (N): an index into the header's ``classes``

Identities are sparse (cooperative targets only): the rows that have one, and theirs.
Version 1, all JSON (``{"v": 1, "from": …, "tracks": {"id": [...], "x": [[…]],
"P": [[21 numbers]], "class": [...], "identity": [...]}}``), is still read: a
journal recorded before version 2 replays as it was, and a partner node not yet
upgraded is still heard.

States are ECEF (metres, m/s; WGS84), so that two nodes with different local
origins need agree on nothing but the datum; the receiver rotates them into its own
frame. ``t`` is the picture's time (Unix s) and names the message: the publisher
gives it as the JetStream message id, so a repeat is dropped by the broker, and the
receiver refuses a message not newer than the last it took from that sender
(a replay, or one that overtook another).

Field-level release (:class:`FieldPolicy`, from ``skyfence.release``): for a partner
that may have positions only to the nearest kilometre and no identities, the
positions are snapped to a grid of that size (its variance, size²/12, added to the
covariance, so the receiver weighs them for what they are) and identities are left
empty.

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
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skyfence.adapters.base import Message, Rejected
from skyfence.classify import CLASSES
from skyfence.geo import Origin, ecef_to_geodetic
from skyfence.picture import Frame
from skyfence.release import FieldPolicy, release_ecef
from skyfence.scenario import Scenario
from skyfence.types import F64, Detections, PartnerTracks

VERSION = 2
#: The all-JSON version, still read.
JSON_VERSION = 1
MAGIC = b"SKYF"
_START = struct.Struct("<4sBI")  # magic, version, length of the envelope
_U32 = struct.Struct("<I")
#: Bytes per track of a version 2 message: id, x, P's upper triangle, class.
ROW_BYTES = 8 + 6 * 8 + 21 * 8 + 1
#: Largest message accepted (bytes): 10,000 tracks fit.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
_IU = np.triu_indices(6)
#: Carrying a partner's track forward to its arrival: white-acceleration noise
#: (m²/s³; a manoeuvring drone), and the longest carry (s).
RETIME_Q = 10.0
RETIME_MAX_S = 10.0


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
    pos, vel, Pe = release_ecef(pos, vel, Pe, pol)
    Pe = 0.5 * (Pe + np.swapaxes(Pe, 1, 2))
    n = int(shown.sum())
    rows = (np.flatnonzero(tr.identity[shown] != "") if pol.identity
            else np.empty(0, dtype=np.intp))
    head = json.dumps({"n": n, "classes": list(CLASSES), "identity_rows": rows.tolist(),
                       "identity": tr.identity[shown][rows].tolist()},
                      separators=(",", ":")).encode()
    return b"".join((
        _U32.pack(len(head)), head,
        tr.id[shown].astype("<i8").tobytes(),
        np.ascontiguousarray(np.hstack([pos, vel]), dtype="<f8").tobytes(),
        np.ascontiguousarray(Pe[:, _IU[0], _IU[1]], dtype="<f8").tobytes(),
        frame.classes.label[shown].astype(np.uint8).tobytes(),
    ))


def picture_message(tracks: bytes, *, sender: str, recipient: str, node: str,
                    t: float) -> bytes:
    """A whole message: the envelope around ``tracks`` (from :func:`encode_tracks`)."""
    head = json.dumps({"from": sender, "to": recipient, "node": node, "t": t},
                      separators=(",", ":"), allow_nan=False).encode()
    return b"".join((_START.pack(MAGIC, VERSION, len(head)), head, tracks))


def message_time(data: bytes) -> float | None:
    """The picture time a message claims (its envelope's ``t``), without decoding its
    tracks or checking anything; None if it names none."""
    try:
        if data[:len(MAGIC)] == MAGIC:
            _, _, n_env = _START.unpack_from(data)
            env = json.loads(data[_START.size:_START.size + n_env])
        else:
            env = json.loads(data)
        t = env.get("t") if isinstance(env, dict) else None
    except (ValueError, struct.error, RecursionError):
        return None
    return float(t) if isinstance(t, int | float) and not isinstance(t, bool) else None


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
    #: The rows are carried to this many seconds before their receipt (the receiving
    #: node's reorder window; see ``detections``).
    carry_back_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"from": self.sender, "to": self.recipient, "node": self.node, "t": self.t,
                "tracks": int(self.id.size)}

    def detections(self, scenario: Scenario, sensor: int, t_receive: float | None = None
                   ) -> Detections:
        """The tracks as partner-track rows of ``sensor``, in ``scenario``'s frame.

        With ``t_receive`` (when the node received the message), each state is
        predicted to ``t_receive − carry_back_s`` — constant velocity, with
        ``RETIME_Q`` process noise — and the rows carry that time: a partner's
        picture is always some hundreds of milliseconds old when it arrives (the
        sender's reorder window, the transport), so at its own time it would fall
        behind the receiver's window and be dropped as late; a track estimate, unlike
        a measurement, can be carried. At the receipt itself the rows would wait out
        the receiver's whole reorder window for nothing (a picture is complete and in
        order as it comes); ``carry_back_s`` set to that window puts them at its edge,
        where they pass at once. Not across more than ``RETIME_MAX_S``: pictures older
        than that keep their time.
        """
        origin = scenario.origin
        n = self.id.size
        R = origin.rotation
        T = np.zeros((6, 6))
        T[:3, :3] = T[3:, 3:] = R  # ENU = T @ ECEF
        x = np.hstack([origin.ecef_to_enu(self.x[:, :3]), self.x[:, 3:6] @ R.T])
        P = T @ self.P @ T.T
        t = self.t
        target = t if t_receive is None else t_receive - self.carry_back_s
        age = 0.0 if t_receive is None else t_receive - t
        if target != t and age <= RETIME_MAX_S and abs(target - t) <= RETIME_MAX_S:
            dt, t = target - t, target
            F = np.eye(6)
            F[:3, 3:] = dt * np.eye(3)
            # Carried back as well as forward, the uncertainty grows with |dt|.
            Q = np.zeros((6, 6))
            Q[:3, :3] = abs(dt) ** 3 / 3.0 * np.eye(3)
            Q[:3, 3:] = Q[3:, :3] = dt * abs(dt) / 2.0 * np.eye(3)
            Q[3:, 3:] = abs(dt) * np.eye(3)
            x = x @ F.T
            P = F @ P @ F.T + RETIME_Q * Q
        P = 0.5 * (P + np.swapaxes(P, 1, 2))
        ref = np.char.add(f"{self.sender}:", self.id.astype(np.str_))
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
                 max_message_bytes: int = MAX_MESSAGE_BYTES, carry_back_s: float = 0.0
                 ) -> None:
        if not (math.isfinite(carry_back_s) and 0.0 <= carry_back_s <= RETIME_MAX_S):
            raise ValueError(f"carry_back_s is {carry_back_s}: give the receiving node's "
                             f"reorder window, 0 to {RETIME_MAX_S} s")
        self.carry_back_s = float(carry_back_s)
        self.partner, self.recipient = partner, recipient
        self.area = _area(area)
        self.max_message_bytes = max_message_bytes
        self.last_t = -math.inf
        self.offset = 0
        self.counters: dict[str, int] = {"accepted": 0}
        #: Called with each picture accepted, before ``feed`` returns: the node's
        #: federation keeps ``last_t`` across a restart through it
        #: (``skyfence.federation.nats.LastTaken``).
        self.on_accept: Callable[[PartnerPicture], None] | None = None

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
        if self.on_accept is not None:
            self.on_accept(msg)
        return [msg]

    def close(self) -> list[Message | Rejected]:
        return []

    def _decode(self, data: bytes) -> PartnerPicture:
        if len(data) > self.max_message_bytes:
            raise _Bad(f"oversize: {len(data)} bytes, more than {self.max_message_bytes}")
        if data[:len(MAGIC)] == MAGIC:
            return self._decode_binary(data)
        if data[:64].lstrip()[:1] in (b"{", b"["):
            return self._decode_json(data)
        raise _Bad(f"not a picture message: it starts with {bytes(data[:8])!r}, neither "
                   f"{MAGIC!r} (version {VERSION}) nor JSON (version {JSON_VERSION})")

    def _decode_binary(self, data: bytes) -> PartnerPicture:
        size = len(data)
        if size < _START.size:
            raise _Bad(f"truncated: {size} bytes, a version {VERSION} message starts with "
                       f"{_START.size}")
        _, version, n_env = _START.unpack_from(data)
        if version != VERSION:
            raise _Bad(f"unknown version {version}: this node reads versions {JSON_VERSION} "
                       f"and {VERSION}")
        at = _START.size
        env = _json_object(data, at, n_env, "envelope")
        at += n_env
        sender, recipient, t = self._envelope(env)
        if size < at + _U32.size:
            raise _Bad(f"truncated: {size} bytes, the tracks header is missing")
        (n_head,) = _U32.unpack_from(data, at)
        at += _U32.size
        head = _json_object(data, at, n_head, "tracks header")
        at += n_head
        n = head.get("n")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise _Bad(f"bad tracks: 'n' is {n!r}, not a count")
        if size - at != n * ROW_BYTES:
            kind = "truncated" if size - at < n * ROW_BYTES else "bad size"
            raise _Bad(f"{kind}: {size - at} bytes of tracks, {n} tracks take "
                       f"{n * ROW_BYTES}")
        classes = head.get("classes")
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise _Bad("bad tracks: 'classes' is not a list of class names")
        ids = np.frombuffer(data, "<i8", n, at).astype(np.int64)
        at += 8 * n
        x = np.frombuffer(data, "<f8", 6 * n, at).astype(np.float64).reshape(n, 6)
        at += 48 * n
        tri = np.frombuffer(data, "<f8", 21 * n, at).astype(np.float64).reshape(n, 21)
        at += 168 * n
        label = np.frombuffer(data, np.uint8, n, at).astype(np.intp)
        if n and int(label.max()) >= len(classes):
            raise _Bad(f"bad tracks: a class index beyond the header's {len(classes)} classes")
        klass = np.asarray(classes, dtype=np.str_).reshape(-1)[label]
        return self._checked(sender, recipient, env.get("node", ""), t, ids, x, tri, klass,
                             _identities(head, n))

    def _decode_json(self, data: bytes) -> PartnerPicture:
        try:
            body = json.loads(data, parse_constant=_no_constant)
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as err:
            raise _Bad(f"not JSON: {err}") from None
        if not isinstance(body, dict) or body.get("v") != JSON_VERSION:
            raise _Bad(f"not a version {JSON_VERSION} picture message")
        sender, recipient, t = self._envelope(body)
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
        return self._checked(sender, recipient, body.get("node", ""), t, ids, x, tri, klass,
                             ident)

    def _envelope(self, body: dict[str, Any]) -> tuple[str, str, float]:
        """Sender, recipient and time of a message, each checked."""
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
        return str(sender), str(recipient or ""), float(t)

    def _checked(self, sender: str, recipient: str, node: Any, t: float,
                 ids: NDArray[np.int64], x: F64, tri: F64, klass: NDArray[np.str_],
                 ident: NDArray[np.str_]) -> PartnerPicture:
        """The picture, once its numbers, classes, covariances and area pass."""
        n = ids.size
        if not (np.isfinite(x).all() and np.isfinite(tri).all()):
            raise _Bad("bad tracks: a number is not finite")
        if not np.isin(klass, CLASSES).all():
            raise _Bad("bad tracks: an unknown class")
        P = np.zeros((n, 6, 6))
        P[:, _IU[0], _IU[1]] = tri
        P = P + np.swapaxes(P, 1, 2) - P * np.eye(6)
        if n:
            try:
                np.linalg.cholesky(P)
            except np.linalg.LinAlgError:
                raise _Bad("bad tracks: a covariance is not positive definite") from None
        if self.area is not None and n:
            lat, lon, _ = ecef_to_geodetic(x[:, :3])
            outside = ~self.area.contains(lat, lon)
            if outside.any():
                raise _Bad(f"outside the sender's area: {int(outside.sum())} of {n} tracks")
        return PartnerPicture(sender=sender, recipient=recipient, node=str(node), t=t, id=ids,
                              x=x, P=P, klass=klass, identity=ident,
                              carry_back_s=self.carry_back_s)


def _json_object(data: bytes, at: int, length: int, what: str) -> dict[str, Any]:
    """The JSON object of ``length`` bytes at ``at`` (a version 2 message's headers)."""
    if at + length > len(data):
        raise _Bad(f"truncated: {len(data)} bytes, the {what} runs to {at + length}")
    try:
        value = json.loads(data[at:at + length], parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as err:
        raise _Bad(f"bad {what}: not JSON: {err}") from None
    if not isinstance(value, dict):
        raise _Bad(f"bad {what}: not a JSON object")
    return value


def _identities(head: dict[str, Any], n: int) -> NDArray[np.str_]:
    """The (n,) identities of a version 2 tracks header ('' where none)."""
    rows, values = head.get("identity_rows", []), head.get("identity", [])
    if not (isinstance(rows, list) and isinstance(values, list) and len(rows) == len(values)
            and all(type(r) is int and 0 <= r < n for r in rows)
            and all(isinstance(v, str) for v in values)):
        raise _Bad("bad tracks: 'identity_rows' and 'identity' are not rows of this "
                   "picture and their identities")
    ident = np.zeros(n, dtype=np.asarray(values, dtype=np.str_).dtype if values else "<U1")
    ident[rows] = values
    return ident


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
