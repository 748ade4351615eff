"""SAPIENT sensor nodes as a source of a node (``skyfence serve``), sans I/O.

Each sensor node that may connect is declared beforehand as a sensor of the node
(``[[sensors]]`` with its ``sapient_node_id``): the trackers keep a fixed list of
sensors, and the partners' release lists apply to it like to any other. A source
serves some of them; with ``partner`` set (the partner its connections authenticate
as, by their TLS certificate), only that partner's.

``SapientSource`` is a :class:`FusionNode` that registers only those nodes, and the
turn of what they report into detections of their declared sensors: a node must
report the kind of measurement its sensor is declared with, from within
``max_offset_m`` of the sensor's declared position (the tracker measures from that
position).

The node runs two of them on the same input, so that a journal replays to the same
detections: one on the connections, for the replies (``RegistrationAck``, …), and one
in the source's decoder (:class:`SapientSourceDecoder`), fed what the first accepted,
tagged with its connection. That record is the journal payload:

    b"SAPC", u32 connection number (little-endian), u8 event (0: frames follow,
    1: the connection closed), then SAPIENT frames as on the wire.
"""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skyfence.adapters.base import Rejected
from skyfence.adapters.jsonl import JsonDetection
from skyfence.adapters.sapient.codec import SapientDecoder, SapientFrame
from skyfence.adapters.sapient.node import FusionNode, FusionNodeConfig, NodeBatch
from skyfence.adapters.sapient.proto.sapient_message_pb2 import SapientMessage
from skyfence.errors import InputError
from skyfence.scenario import Scenario, SensorSpec

MAGIC = b"SAPC"
_HEAD = struct.Struct("<4sIB")
_FRAMES, _CLOSED = 0, 1
#: Our node id in SAPIENT messages, unless the source gives one.
DEFAULT_FUSION_NODE_ID = "5b1f6f39-6b8e-4a57-9a49-6b3f0d7c2a10"
#: Sensor kinds a SAPIENT node's reports can be measurements of.
SAPIENT_KINDS = ("radar", "radar2d", "bearing", "position")


def node_key(node_id: str) -> str:
    """A node id as it is compared: a UUID in its canonical lower-case form."""
    try:
        return str(uuid.UUID(node_id))
    except ValueError:
        return node_id.strip().lower()


def envelope(conn: int, frames: bytes = b"", *, closed: bool = False) -> bytes:
    """The journal payload of what connection ``conn`` sent (whole frames), or of its
    end."""
    return _HEAD.pack(MAGIC, conn, _CLOSED if closed else _FRAMES) + frames


@dataclass(frozen=True, slots=True)
class SourceRules:
    """Who may register with a SAPIENT source. ``nodes``: every declared node id
    (canonical) → its sensor; ``owners``: node id → the partner owning that sensor;
    ``serves``: the sensors this source takes; ``partner``: the partner its
    connections authenticate as (None: any declared owner)."""

    nodes: Mapping[str, str]
    serves: frozenset[str]
    owners: Mapping[str, str] = field(default_factory=dict)
    partner: str | None = None
    fusion_node_id: str = DEFAULT_FUSION_NODE_ID
    max_offset_m: float = 50.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SourceRules:
        """From a source's ``options`` (as the configuration writes them)."""
        known = {"nodes", "serves", "owners", "partner", "fusion_node_id", "max_offset_m"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"unknown SAPIENT source option {unknown[0]!r}",
                             field=f"options.{unknown[0]}", fix=f"use {', '.join(sorted(known))}")
        nodes = options.get("nodes")
        if not isinstance(nodes, Mapping) or not nodes:
            raise InputError("a SAPIENT source needs its declared nodes", field="options.nodes",
                             fix="declare each sensor node as a [[sensors]] entry with "
                                 "sapient_node_id")
        offset = float(options.get("max_offset_m", 50.0))
        if not offset > 0:
            raise InputError(f"max_offset_m {offset} is not > 0", field="options.max_offset_m",
                             fix="give the metres a node may report itself from its declared "
                                 "position")
        return cls(nodes={node_key(k): str(v) for k, v in nodes.items()},
                   serves=frozenset(options.get("serves") or nodes.values()),
                   owners={node_key(k): str(v) for k, v in
                           dict(options.get("owners") or {}).items()},
                   partner=options.get("partner"),
                   fusion_node_id=str(options.get("fusion_node_id", DEFAULT_FUSION_NODE_ID)),
                   max_offset_m=offset)

    def to_options(self) -> dict[str, Any]:
        return {"nodes": dict(self.nodes), "serves": sorted(self.serves),
                "owners": dict(self.owners), "partner": self.partner,
                "fusion_node_id": self.fusion_node_id, "max_offset_m": self.max_offset_m}

    def admit(self, node_id: str) -> str | None:
        """Why the node may not register here (None: it may)."""
        key = node_key(node_id)
        sensor = self.nodes.get(key)
        if sensor is None:
            return (f"node {node_id} is not declared on this node (no [[sensors]] entry has "
                    "this sapient_node_id)")
        if sensor not in self.serves:
            return f"node {node_id} is sensor {sensor!r}, which this source does not serve"
        owner = self.owners.get(key)
        if self.partner is not None and owner != self.partner:
            return (f"node {node_id} is registered to {owner!r}, not to {self.partner!r}, "
                    "the partner this source's connections authenticate as")
        return None


@dataclass(frozen=True, slots=True)
class Step:
    """What one chunk of a connection gave: ``replies`` for the node; the frames
    ``accepted`` (what the journal records); ``rejected`` frames (counted);
    ``refused`` registrations of nodes that may not register here (an authentication
    failure, not a malformed message); the ``detections`` of the declared sensors and
    the rows ``dropped`` for not matching their declaration."""

    replies: tuple[SapientMessage, ...] = ()
    accepted: tuple[SapientFrame, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    refused: tuple[str, ...] = ()
    detections: tuple[JsonDetection, ...] = ()
    dropped: tuple[Rejected, ...] = ()


class SapientSource:
    """The fusion node of one SAPIENT source, its nodes mapped to declared sensors."""

    def __init__(self, scenario: Scenario, rules: SourceRules) -> None:
        self.scenario, self.rules = scenario, rules
        self.fusion = FusionNode(FusionNodeConfig(node_id=rules.fusion_node_id,
                                                  origin=scenario.origin), admit=rules.admit)
        self._index = scenario.sensor_index()
        for sensor in rules.nodes.values():
            if sensor not in self._index:
                raise InputError(f"SAPIENT node of sensor {sensor!r}, which the node does not "
                                 "have", field="options.nodes", fix="declare the sensor")
        #: Declared sensor → the connection its node is registered on.
        self.registered: dict[str, int] = {}

    def handle(self, conn: int, frames: Sequence[SapientFrame], received_s: float) -> Step:
        """Frames that connection ``conn`` sent, in order, received at ``received_s``."""
        peer = f"#{conn}"
        replies: list[SapientMessage] = []
        accepted: list[SapientFrame] = []
        rejected: list[Rejected] = []
        refused: list[str] = []
        for f in frames:
            out = self.fusion.handle(f, peer=peer, received_s=received_s)
            replies.extend(out.replies)
            node_id = f.message.node_id
            if out.rejected is None:
                accepted.append(f)
                if f.kind == "registration":
                    self.registered[self.rules.nodes[node_key(node_id)]] = conn
            elif f.kind == "registration" and (why := self.rules.admit(node_id)) is not None:
                refused.append(why)
            else:
                rejected.append(out.rejected)
        detections, dropped = self._detections(self.fusion.take_detections())
        return Step(tuple(replies), tuple(accepted), tuple(rejected), tuple(refused),
                    tuple(detections), tuple(dropped))

    def close(self, conn: int) -> Step:
        """Connection ``conn`` has gone: its nodes must register again."""
        self.fusion.disconnect(f"#{conn}")
        for sensor in [s for s, c in self.registered.items() if c == conn]:
            del self.registered[sensor]
        detections, dropped = self._detections(self.fusion.take_detections())
        return Step(detections=tuple(detections), dropped=tuple(dropped))

    def _detections(self, batches: list[NodeBatch]
                    ) -> tuple[list[JsonDetection], list[Rejected]]:
        out: list[JsonDetection] = []
        dropped: list[Rejected] = []
        for b in batches:
            sensor = self.rules.nodes[node_key(b.node_id)]
            k = self._index[sensor]
            why = self._mismatch(b, self.scenario.sensors[k])
            if why is not None:
                dropped.extend([Rejected(0, why)] * len(b))
                continue
            det = b.detections
            var = np.diagonal(det.R, axis1=1, axis2=2)
            z, t, cat = det.z.tolist(), det.t.tolist(), det.category.tolist()
            out.extend(JsonDetection(t=t[i], sensor=k, sensor_id=sensor, z=tuple(z[i]),
                                     var=tuple(var[i].tolist()), category=cat[i])
                       for i in range(len(b)))
        return out, dropped

    def _mismatch(self, b: NodeBatch, spec: SensorSpec) -> str | None:
        got = b.spec
        same = got.kind == spec.kind and (spec.kind != "bearing"
                                          or got.bearing_dim == spec.bearing_dim)
        if not same:
            what = (f"bearing ({got.bearing_dim} angles)" if got.kind == "bearing"
                    else got.kind)
            return (f"kind: node {b.node_id} reports {what} measurements; sensor {spec.id!r} "
                    f"is declared kind = {spec.kind!r}")
        if spec.kind != "position":
            offset = math.dist(got.position_enu_m, spec.position_enu_m)
            if offset > self.rules.max_offset_m:
                return (f"moved: node {b.node_id} reports its location {offset:.0f} m from "
                        f"the position_enu_m of sensor {spec.id!r} (more than "
                        f"{self.rules.max_offset_m:g} m)")
        return None


class SapientSourceDecoder:
    """The decoder of a SAPIENT source's journal records (see the module's
    docstring): the detections of its declared sensors, and rejections."""

    def __init__(self, scenario: Scenario, **options: Any) -> None:
        self.source = SapientSource(scenario, SourceRules.from_options(options))
        self._streams: dict[int, SapientDecoder] = {}

    def feed(self, payload: bytes, t: float = 0.0) -> list[Any]:
        if len(payload) < _HEAD.size or payload[:4] != MAGIC:
            return [Rejected(0, "envelope: not a SAPIENT source record (no SAPC mark)")]
        _, conn, event = _HEAD.unpack_from(payload)
        if event == _CLOSED:
            self._streams.pop(conn, None)
            step = self.source.close(conn)
            return [*step.detections, *step.dropped]
        stream = self._streams.setdefault(conn, SapientDecoder())
        records = stream.feed(payload[_HEAD.size:])
        frames = [r for r in records if isinstance(r, SapientFrame)]
        step = self.source.handle(conn, frames, t)
        return [*(r for r in records if isinstance(r, Rejected)), *step.rejected,
                *(Rejected(0, f"refused: {why}") for why in step.refused),
                *step.detections, *step.dropped]

    def close(self) -> list[Any]:
        return []


def decoder(*, scenario: Scenario, **options: Any) -> SapientSourceDecoder | SapientDecoder:
    """The ``sapient`` wire format's decoder: a source's (with its declared ``nodes``),
    else the frames of a recording (``skyfence decode sapient``)."""
    if "nodes" in options:
        return SapientSourceDecoder(scenario, **options)
    return SapientDecoder(**options)
