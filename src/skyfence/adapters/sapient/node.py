"""skyfence as a SAPIENT fusion node: a pure state machine over decoded frames.

``FusionNode.handle(frame, peer=…, received_s=…)`` takes one message from a sensor
node (an ASM, in the ICD's words) and returns the replies to send back on the same
connection and, when the message is refused, a counted :class:`Rejected` (an
``Error`` message goes back to the sender as well). Nothing here touches a socket;
``skyfence.adapters.sapient.transport`` does.

What it does with each message:

- ``Registration`` → ``RegistrationAck``. Accepted unless the node declares an
  effector type (kinetic, jammer, laser or RF directed energy, cyber): skyfence is
  an awareness node and takes no part in effector control. The node's types,
  capabilities, modes and declared coordinate conventions are kept.
- ``StatusReport`` → kept per node: location, field of view, coverage, obscuration,
  system state, mode, status entries. No reply (the ICD acknowledges none).
- ``DetectionReport`` → one detection row (below); no reply.
- ``Alert`` → ``AlertAck`` (accepted; kept for :meth:`FusionNode.take_alerts`).
- ``Error`` → logged and counted.
- ``Task`` → ``TaskAck``: accepted only for sensing (a mode change to a declared
  mode, a look-at, regions of interest/ignore/boundary, stopping an accepted task);
  anything that moves a platform or is not a sensing command is rejected, with a
  reason.
- Anything from a node id that has not registered (or registered on another
  connection) is rejected and counted.

Detections. Each report becomes a row of a ``Detections`` batch for one skyfence
sensor per node and kind (see :class:`NodeBatch`):

- range, azimuth and elevation → ``radar`` (range_m, azimuth_rad, elevation_rad);
  range and azimuth → ``radar2d``; azimuth (and elevation) without range →
  ``bearing``. These are measured from the node's location (from its last
  ``StatusReport.node_location``; reports before one are rejected) and are turned
  from the node's own frame (azimuth clockwise from the datum's north, elevation
  above the node's horizon) into skyfence's: the same angles in the ENU frame of
  the deployment origin. Datum: true north as is; grid north as UTM grid north of
  the zone the node reports its location in; magnetic north and platform heading
  only with a declination or heading configured for the node. Units per the
  report's ``coordinate_system`` (degrees or radians, metres or kilometres; when
  unspecified, the node's registration), the ``*_error`` fields as 1σ in the same
  units; R is diagonal.
- a ``Location`` → ``position`` (east_m, north_m, up_m): longitude/latitude (x/y) in
  degrees or radians, or UTM easting/northing (zone from ``utm_zone``, else the
  registration's); heights above the ellipsoid (datum WGS84_E) or the geoid (WGS84_G,
  EGM96). The ``x_error``/``y_error`` of latitude/longitude are read as metres (the
  registration's geometric error is in metres; an error in degrees is meaningless
  east–west) unless ``location_errors_in_coordinate_units`` is set. A missing
  height becomes the origin's height with ``unknown_height_std_m``. R is diagonal
  in the origin's ENU axes: the local axes at a report within tens of kilometres
  differ from them by well under a degree.
- Errors the report leaves out take the configured defaults (counted in ``notes``).
- ``classification`` → ``category`` ``sapient:<class>/<sub-class>/…`` along the most
  confident branch, its top-level confidence in ``class_p`` and the whole tree in
  ``class_tree``; ``object_id`` is kept per row (not as ``identity``, which skyfence
  keeps for cooperative identities: a track refuses reports of another identity).

Times: the message's ``timestamp`` (when the node sent it; the ICD has no separate
detection time) in UTC seconds.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from google.protobuf.message import Message
from numpy.typing import NDArray

from skyfence.adapters.base import Counters, Rejected
from skyfence.adapters.sapient.codec import SapientError, SapientFrame
from skyfence.adapters.sapient.frames import (
    grid_convergence_rad,
    local_to_origin_angles,
    parse_utm_zone,
    utm_to_geodetic,
)
from skyfence.adapters.sapient.proto import (
    alert_ack_pb2,
    error_pb2,
    location_pb2,
    range_bearing_pb2,
    registration_ack_pb2,
    registration_pb2,
    sapient_message_pb2,
    status_report_pb2,
    task_ack_pb2,
    task_pb2,
    velocity_pb2,
)
from skyfence.geo import WGS84_A_M, WGS84_E2, Origin
from skyfence.geoid import amsl_to_ellipsoid_m
from skyfence.scenario import SensorSpec
from skyfence.types import Detections

log = logging.getLogger("skyfence.adapters.sapient")

F64 = NDArray[np.float64]
SapientMessage = sapient_message_pb2.SapientMessage
Registration = registration_pb2.Registration
LCS = location_pb2.LocationCoordinateSystem
LD = location_pb2.LocationDatum
RBCS = range_bearing_pb2.RangeBearingCoordinateSystem
RBD = range_bearing_pb2.RangeBearingDatum

#: The ICD version skyfence speaks (and states in its own registration).
ICD_VERSION = "BSI Flex 335 v2.0"
#: Node types that act on targets rather than sense them: never registered here.
EFFECTOR_NODE_TYPES = frozenset({
    Registration.NODE_TYPE_KINETIC, Registration.NODE_TYPE_JAMMER,
    Registration.NODE_TYPE_LDEW, Registration.NODE_TYPE_RFDEW,
    Registration.NODE_TYPE_CYBER,  # "detect or effect": the ICD does not say which
})
#: Region types of a task that concern sensing (the rest direct mobile platforms).
SENSING_REGION_TYPES = frozenset({
    task_pb2.Task.REGION_TYPE_AREA_OF_INTEREST, task_pb2.Task.REGION_TYPE_IGNORE,
    task_pb2.Task.REGION_TYPE_BOUNDARY,
})

_DEG = math.pi / 180.0
#: Range-bearing coordinate system → (radians per angle unit, metres per range unit).
_RB_SCALE: dict[int, tuple[float, float]] = {
    RBCS.RANGE_BEARING_COORDINATE_SYSTEM_DEGREES_M: (_DEG, 1.0),
    RBCS.RANGE_BEARING_COORDINATE_SYSTEM_RADIANS_M: (1.0, 1.0),
    RBCS.RANGE_BEARING_COORDINATE_SYSTEM_DEGREES_KM: (_DEG, 1000.0),
    RBCS.RANGE_BEARING_COORDINATE_SYSTEM_RADIANS_KM: (1.0, 1000.0),
}
_LOCATION_SYSTEMS = frozenset({
    LCS.LOCATION_COORDINATE_SYSTEM_LAT_LNG_DEG_M, LCS.LOCATION_COORDINATE_SYSTEM_LAT_LNG_RAD_M,
    LCS.LOCATION_COORDINATE_SYSTEM_UTM_M,
})
_DATUMS = frozenset({LD.LOCATION_DATUM_WGS84_E, LD.LOCATION_DATUM_WGS84_G})
_BEARING_MODALITY: dict[int, str] = {
    Registration.NODE_TYPE_PASSIVE_RF: "rf", Registration.NODE_TYPE_ACOUSTIC: "acoustic",
    Registration.NODE_TYPE_CAMERA: "eo", Registration.NODE_TYPE_HUMAN: "eo",
}


@dataclass(frozen=True, slots=True)
class FusionNodeConfig:
    """How skyfence behaves as a fusion node.

    ``node_id``: our UUID in SAPIENT messages. ``origin``: the deployment's ENU frame.
    Defaults stand in for errors a report leaves out (1σ). ``declination_deg`` and
    ``platform_heading_deg`` map a node id to the bearing of magnetic north or of its
    platform's heading, clockwise from true north, for nodes reporting with those
    datums. ``max_nodes`` bounds the registered nodes; ``modes`` are the modes this
    node declares (a mode-change task must name one).
    """

    node_id: str
    origin: Origin
    default_range_std_m: float = 10.0
    default_angle_std_deg: float = 1.0
    default_position_std_m: float = 10.0
    unknown_height_std_m: float = 500.0
    default_pd: float = 0.9
    location_errors_in_coordinate_units: bool = False
    declination_deg: Mapping[str, float] = field(default_factory=dict)
    platform_heading_deg: Mapping[str, float] = field(default_factory=dict)
    max_nodes: int = 256
    max_alerts: int = 10_000
    modes: tuple[str, ...] = ("default",)

    def __post_init__(self) -> None:
        if not self.node_id:
            raise SapientError("a fusion node needs a node_id (a UUID)")
        for name in ("default_range_std_m", "default_angle_std_deg", "default_position_std_m",
                     "unknown_height_std_m"):
            if not getattr(self, name) > 0:
                raise SapientError(f"{name} must be > 0")


@dataclass(frozen=True, slots=True)
class Cone:
    """A range-bearing cone (field of view, coverage) in the node's frame: pointing
    azimuth and elevation, full horizontal and vertical extents (radians), range (m,
    NaN when not given)."""

    azimuth_rad: float
    elevation_rad: float
    horizontal_extent_rad: float
    vertical_extent_rad: float
    range_m: float

    def to_json(self) -> dict[str, float]:
        return {"azimuth_rad": self.azimuth_rad, "elevation_rad": self.elevation_rad,
                "horizontal_extent_rad": self.horizontal_extent_rad,
                "vertical_extent_rad": self.vertical_extent_rad, "range_m": self.range_m}


@dataclass(frozen=True, slots=True)
class Area:
    """A ``LocationOrRangeBearing``: a cone, or a polygon of (lat_deg, lon_deg, h_m)."""

    cone: Cone | None = None
    polygon: tuple[tuple[float, float, float], ...] = ()

    def to_json(self) -> dict[str, Any]:
        if self.cone is not None:
            return {"cone": self.cone.to_json()}
        return {"polygon": [list(p) for p in self.polygon]}


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a node said of itself when it registered."""

    node_id: str
    node_types: tuple[str, ...]
    node_sub_types: tuple[str, ...]
    name: str
    short_name: str
    icd_version: str
    capabilities: tuple[tuple[str, str, str, str], ...]  # category, type, value, units
    modes: tuple[str, ...]
    location_system: int
    location_datum: int
    range_bearing_system: int
    range_bearing_datum: int
    utm_zone: str
    speed_scale_mps: float  # m/s per unit of its reported velocities
    registered_s: float

    def to_json(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "node_types": list(self.node_types),
                "node_sub_types": list(self.node_sub_types), "name": self.name,
                "short_name": self.short_name, "icd_version": self.icd_version,
                "capabilities": [list(c) for c in self.capabilities],
                "modes": list(self.modes), "registered_s": self.registered_s}


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A node's last ``StatusReport``; location NaN until one gives it."""

    t: float
    system: str
    mode: str
    active_task_id: str
    lat_deg: float
    lon_deg: float
    height_m: float
    field_of_view: Area | None
    coverage: tuple[Area, ...]
    obscuration: tuple[Area, ...]
    status: tuple[tuple[str, str, str], ...]  # level, type, value
    power_level: int | None

    @property
    def located(self) -> bool:
        return not math.isnan(self.lat_deg)

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "system": self.system, "mode": self.mode,
                "active_task_id": self.active_task_id, "lat_deg": self.lat_deg,
                "lon_deg": self.lon_deg, "height_m": self.height_m,
                "field_of_view": None if self.field_of_view is None
                else self.field_of_view.to_json(),
                "coverage": [a.to_json() for a in self.coverage],
                "obscuration": [a.to_json() for a in self.obscuration],
                "status": [list(s) for s in self.status], "power_level": self.power_level}


@dataclass(frozen=True, slots=True)
class NodeAlert:
    node_id: str
    t: float
    alert_id: str
    alert_type: str
    status: str
    priority: str
    description: str

    def to_json(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "t": self.t, "alert_id": self.alert_id,
                "alert_type": self.alert_type, "status": self.status,
                "priority": self.priority, "description": self.description}


@dataclass(frozen=True, slots=True)
class NodeBatch:
    """Detections of one skyfence sensor (one node, one kind), ready for the tracker.

    ``sensor_index`` is the row of ``spec`` in :meth:`FusionNode.sensor_specs` and the
    value of ``detections.sensor``. Beside the detections, row-aligned: the node's
    ``object_id``; ``class_p`` (NaN when unclassified) and ``class_tree``
    (``type=confidence`` pairs joined by ``;``, paths with ``/``); the reported
    velocity ``velocity_enu_mps`` (n, 3), local ENU at the object, NaN when absent.
    """

    node_id: str
    sensor_index: int
    spec: SensorSpec
    detections: Detections
    object_id: NDArray[np.str_]
    class_p: F64
    class_tree: NDArray[np.str_]
    velocity_enu_mps: F64

    def __len__(self) -> int:
        return len(self.detections)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What handling one message gives: replies for the sender, and the rejection
    when it was refused."""

    replies: tuple[SapientMessage, ...] = ()
    rejected: Rejected | None = None


@dataclass(frozen=True, slots=True)
class TaskDecision:
    accepted: bool
    reasons: tuple[str, ...]


def task_decision(task: task_pb2.Task, *, modes: tuple[str, ...],
                  accepted_tasks: Mapping[str, task_pb2.Task] = MappingProxyType({})
                  ) -> TaskDecision:
    """Whether an awareness-only node accepts a task, and why not.

    Sensing tasks are accepted: a mode change to one of ``modes``, a look-at, regions
    of interest, ignore or boundary; stopping or pausing a task accepted before.
    Everything else is rejected with a reason: commands that move a platform (move
    to, patrol, follow), mobile-node regions, thresholds and report rates and free
    requests (not supported), and effector actions of any kind (out of scope).
    """
    reasons: list[str] = []
    if not task.task_id:
        reasons.append("task_id missing")
    control = task.control
    if control in (task_pb2.Task.CONTROL_STOP, task_pb2.Task.CONTROL_PAUSE):
        if task.task_id not in accepted_tasks:
            reasons.append(f"no accepted task {task.task_id!r} to stop or pause")
        return TaskDecision(not reasons, tuple(reasons))
    if control != task_pb2.Task.CONTROL_START:
        reasons.append("control must be START, STOP or PAUSE")
    command = task.command.WhichOneof("command") if task.HasField("command") else None
    if command is None and not task.region:
        reasons.append("no command and no region: nothing to do")
    elif command == "mode_change":
        if task.command.mode_change not in modes:
            reasons.append(f"unknown mode {task.command.mode_change!r}; modes: "
                           f"{', '.join(modes)}")
    elif command == "look_at":
        if task.command.look_at.WhichOneof("fov_oneof") is None:
            reasons.append("look_at without a location or range-bearing")
    elif command in ("move_to", "patrol", "follow"):
        reasons.append(f"{command} moves a platform: out of scope for an awareness-only "
                       "fusion node")
    elif command is not None:
        reasons.append(f"{command} is not supported by this node")
    for region in task.region:
        if region.type not in SENSING_REGION_TYPES:
            name = task_pb2.Task.RegionType.Name(region.type)
            reasons.append(f"region type {name} is not a sensing region")
    return TaskDecision(not reasons, tuple(reasons))


# --------------------------------------------------------------------------- per-node state


class _Rows:
    """Raw rows of one (node, kind, location) bucket, converted to arrays in one go."""

    __slots__ = ("dim", "kind", "location", "rows")

    def __init__(self, kind: str, dim: int, location: tuple[float, float, float]) -> None:
        self.kind = kind
        self.dim = dim
        self.location = location
        self.rows: list[tuple[Any, ...]] = []


class _Node:
    __slots__ = ("buckets", "info", "peer", "status", "version")

    def __init__(self, info: NodeInfo, peer: str) -> None:
        self.info = info
        self.peer = peer
        self.status: NodeStatus | None = None
        self.version = 0  # bumps when the node's location changes
        self.buckets: dict[tuple[str, int, int], _Rows] = {}


def _short(enum_name: str, prefix: str) -> str:
    return enum_name[len(prefix):] if enum_name.startswith(prefix) else enum_name


def _opt(msg: Any, name: str) -> float:
    """An optional float field, NaN when absent."""
    return float(getattr(msg, name)) if msg.HasField(name) else math.nan


def _class_tree(classes: Any) -> tuple[str, float, str]:
    """(category path of the most confident branch, its top-level confidence, the whole
    tree as ``path=confidence`` pairs)."""
    pairs: list[str] = []

    def walk(items: Any, prefix: str) -> None:
        for c in items:
            path = f"{prefix}/{c.type}" if prefix else c.type
            conf = f"{c.confidence:.3g}" if c.HasField("confidence") else ""
            pairs.append(f"{path}={conf}")
            walk(c.sub_class, path)

    walk(classes, "")

    def best(items: Any) -> Any:
        return max(items, key=lambda c: c.confidence if c.HasField("confidence") else -1.0)

    top = best(classes)
    path, node = top.type, top
    while node.sub_class:
        node = best(node.sub_class)
        path += f"/{node.type}"
    p = float(top.confidence) if top.HasField("confidence") else math.nan
    return "sapient:" + path, p, ";".join(pairs)


class FusionNode:
    """The state of a SAPIENT fusion node over all its connections."""

    def __init__(self, config: FusionNodeConfig, *,
                 admit: Callable[[str], str | None] | None = None) -> None:
        """``admit(node_id)``: why a node may not register here (None: it may), on top
        of the rules above, e.g. only nodes declared beforehand."""
        self.config = config
        self._admit = admit
        self.counters = Counters()
        #: Things worth knowing that are not rejections: defaulted errors, goodbyes, …
        self.notes: Counter[str] = Counter()
        self._nodes: dict[str, _Node] = {}
        self._spec_index: dict[str, int] = {}
        self._specs: list[SensorSpec] = []
        self._alerts: list[NodeAlert] = []
        self._orphans: list[tuple[_Node, _Rows]] = []
        self.accepted_tasks: dict[str, task_pb2.Task] = {}

    # ------------------------------------------------------------------ views

    @property
    def nodes(self) -> dict[str, tuple[NodeInfo, NodeStatus | None]]:
        """Registered nodes: their registration and last status."""
        return {k: (n.info, n.status) for k, n in self._nodes.items()}

    def sensor_specs(self) -> list[SensorSpec]:
        """Every sensor the nodes have given detections for, in ``sensor`` index order;
        indices never change (a moved node's spec is replaced at its index)."""
        return list(self._specs)

    def take_alerts(self) -> list[NodeAlert]:
        out, self._alerts = self._alerts, []
        return out

    # ------------------------------------------------------------------ messages

    def _reply(self, to: str, now_s: float, content: str, body: Message) -> SapientMessage:
        msg = SapientMessage(node_id=self.config.node_id, destination_id=to)
        getattr(msg, content).CopyFrom(body)
        msg.timestamp.FromNanoseconds(int(now_s * 1e9))
        return msg

    def _reject(self, frame: SapientFrame, reason: str, now_s: float,
                replies: tuple[SapientMessage, ...] = ()) -> Outcome:
        self.counters.reject(reason)
        packet = frame.message.SerializeToString()[:4096]
        err = error_pb2.Error(packet=packet, error_message=[reason])
        to = frame.message.node_id
        return Outcome((*replies, self._reply(to, now_s, "error", err)),
                       Rejected(frame.offset, reason))

    def handle(self, frame: SapientFrame, *, peer: str, received_s: float) -> Outcome:
        """One message from the node connected as ``peer`` (any stable label of the
        connection), received at ``received_s`` (UTC seconds, used for our replies)."""
        msg = frame.message
        kind = msg.WhichOneof("content")
        node_id = msg.node_id
        if not node_id:
            return self._reject(frame, "missing: node_id", received_s)
        if kind is None:
            return self._reject(frame, "missing: no message content", received_s)
        if kind == "registration":
            return self._registration(frame, peer, received_s)
        node = self._nodes.get(node_id)
        if node is None:
            return self._reject(frame, f"unregistered: node {node_id} has not registered",
                                received_s)
        if node.peer != peer:
            return self._reject(frame, f"unregistered: node {node_id} registered on "
                                "another connection", received_s)
        if kind == "detection_report":
            return self._detection(frame, node, received_s)
        if kind == "status_report":
            return self._status(frame, node, received_s)
        if kind == "alert":
            return self._alert(frame, node, received_s)
        if kind == "task":
            return self._task(frame, received_s)
        if kind == "error":
            self.counters.accepted += 1
            self.notes["error_from_node"] += 1
            log.warning("SAPIENT node %s reports an error: %s", node_id,
                        "; ".join(msg.error.error_message) or "(no description)")
            return Outcome()
        return self._reject(frame, f"unexpected: {kind} (this node sends no "
                            "registrations, tasks or alerts to its children)", received_s)

    def disconnect(self, peer: str) -> None:
        """The connection ``peer`` has gone: its nodes must register again."""
        for node_id in [k for k, n in self._nodes.items() if n.peer == peer]:
            self._forget(node_id)

    def _forget(self, node_id: str) -> None:
        node = self._nodes.pop(node_id)
        # Rows already received stay deliverable.
        self._orphans.extend((node, b) for b in node.buckets.values())
        node.buckets = {}

    # ------------------------------------------------------------------ registration

    def _registration(self, frame: SapientFrame, peer: str, now_s: float) -> Outcome:
        msg = frame.message
        reg = msg.registration
        node_id = msg.node_id
        reasons: list[str] = []
        types = [d.node_type for d in reg.node_definition]
        if not types:
            reasons.append("node_definition missing: say what kind of node this is")
        effectors = sorted({Registration.NodeType.Name(t) for t in types}
                           & {Registration.NodeType.Name(t) for t in EFFECTOR_NODE_TYPES})
        if effectors:
            reasons.append(f"effector node types ({', '.join(effectors)}) are out of scope: "
                           "skyfence is an awareness-only fusion node")
        version = "".join(ch for ch in reg.icd_version.lower() if ch.isalnum())
        if "flex335v2" not in version:
            reasons.append(f"icd_version {reg.icd_version!r} is not {ICD_VERSION}")
        if self._admit is not None and (why := self._admit(node_id)) is not None:
            reasons.append(why)
        existing = self._nodes.get(node_id)
        if existing is not None and existing.peer != peer:
            reasons.append("node_id already registered on another connection")
        if existing is None and len(self._nodes) >= self.config.max_nodes:
            reasons.append(f"this fusion node already serves {self.config.max_nodes} nodes")
        if reasons:
            ack = registration_ack_pb2.RegistrationAck(acceptance=False,
                                                       ack_response_reason=reasons)
            reason = "refused: " + "; ".join(reasons)
            return self._reject(frame, reason, now_s,
                                (self._reply(node_id, now_s, "registration_ack", ack),))
        info = self._node_info(node_id, reg, now_s)
        if existing is not None:
            existing.info = info
        else:
            self._nodes[node_id] = _Node(info, peer)
        self.counters.accepted += 1
        ack = registration_ack_pb2.RegistrationAck(acceptance=True)
        return Outcome((self._reply(node_id, now_s, "registration_ack", ack),))

    def _node_info(self, node_id: str, reg: Any, now_s: float) -> NodeInfo:
        loc_sys = loc_datum = rb_sys = rb_datum = 0
        zone = ""
        speed = 1.0
        status_def = reg.status_definition.location_definition
        definitions = [d for m in reg.mode_definition for d in m.detection_definition]
        for lt in [*(d.location_type for d in definitions), status_def]:
            loc_sys = loc_sys or lt.location_units
            loc_datum = loc_datum or lt.location_datum
            rb_sys = rb_sys or lt.range_bearing_units
            rb_datum = rb_datum or lt.range_bearing_datum
            zone = zone or lt.zone
        for d in definitions:
            units = d.velocity_type.enu_velocity_units.east_north_rate_units
            if units:
                speed = 1.0 / 3.6 if units == velocity_pb2.SPEED_UNITS_KPH else 1.0
                break
        return NodeInfo(
            node_id=node_id,
            node_types=tuple(_short(Registration.NodeType.Name(d.node_type), "NODE_TYPE_")
                             for d in reg.node_definition),
            node_sub_types=tuple(s for d in reg.node_definition for s in d.node_sub_type),
            name=reg.name, short_name=reg.short_name, icd_version=reg.icd_version,
            capabilities=tuple((c.category, c.type, c.value, c.units)
                               for c in reg.capabilities),
            modes=tuple(m.mode_name for m in reg.mode_definition),
            location_system=loc_sys, location_datum=loc_datum, range_bearing_system=rb_sys,
            range_bearing_datum=rb_datum, utm_zone=zone, speed_scale_mps=speed,
            registered_s=now_s)

    # ------------------------------------------------------------------ status

    def _geodetic(self, loc: Any, info: NodeInfo) -> tuple[float, float, float] | str:
        """(lat_deg, lon_deg, h_m) of a single Location, or why not."""
        arr = self._locations([loc], info)
        if isinstance(arr, str):
            return arr
        lat, lon, h, _, _, _ = arr
        return float(lat[0]), float(lon[0]), float(h[0])

    def _area(self, area: Any, info: NodeInfo) -> Area | None:
        which = area.WhichOneof("fov_oneof")
        if which == "range_bearing":
            c = area.range_bearing
            system = c.coordinate_system or info.range_bearing_system
            ang, rng = _RB_SCALE.get(system, (_DEG, 1.0))
            return Area(cone=Cone(_opt(c, "azimuth") * ang, _opt(c, "elevation") * ang,
                                  _opt(c, "horizontal_extent") * ang,
                                  _opt(c, "vertical_extent") * ang, _opt(c, "range") * rng))
        if which == "location_list":
            points = []
            for loc in area.location_list.locations:
                g = self._geodetic(loc, info)
                if not isinstance(g, str):
                    points.append(g)
            return Area(polygon=tuple(points))
        return None

    def _status(self, frame: SapientFrame, node: _Node, now_s: float) -> Outcome:
        msg = frame.message
        if not msg.HasField("timestamp"):
            return self._reject(frame, "missing: timestamp", now_s)
        sr = msg.status_report
        info = node.info
        prev = node.status
        lat = lon = h = math.nan
        if prev is not None:
            lat, lon, h = prev.lat_deg, prev.lon_deg, prev.height_m
        if sr.HasField("node_location"):
            g = self._geodetic(sr.node_location, info)
            if isinstance(g, str):
                return self._reject(frame, f"bad node_location: {g}", now_s)
            if g != (lat, lon, h):
                node.version += 1
            lat, lon, h = g
        status = NodeStatus(
            t=msg.timestamp.ToNanoseconds() * 1e-9,
            system=_short(status_report_pb2.StatusReport.System.Name(sr.system), "SYSTEM_"),
            mode=sr.mode, active_task_id=sr.active_task_id, lat_deg=lat, lon_deg=lon,
            height_m=h,
            field_of_view=self._area(sr.field_of_view, info) if sr.HasField("field_of_view")
            else None,
            coverage=tuple(a for a in (self._area(c, info) for c in sr.coverage) if a),
            obscuration=tuple(a for a in (self._area(c, info) for c in sr.obscuration) if a),
            status=tuple((_short(status_report_pb2.StatusReport.StatusLevel.Name(s.status_level),
                                 "STATUS_LEVEL_"),
                          _short(status_report_pb2.StatusReport.StatusType.Name(s.status_type),
                                 "STATUS_TYPE_"), s.status_value) for s in sr.status),
            power_level=sr.power.level if sr.power.HasField("level") else None,
        )
        node.status = status
        self.counters.accepted += 1
        if sr.system == status_report_pb2.StatusReport.SYSTEM_GOODBYE:
            self.notes["goodbye"] += 1
            self._forget(msg.node_id)
        return Outcome()

    # ------------------------------------------------------------------ alerts, tasks

    def _alert(self, frame: SapientFrame, node: _Node, now_s: float) -> Outcome:
        msg = frame.message
        a = msg.alert
        if not a.alert_id:
            return self._reject(frame, "missing: alert_id", now_s)
        if len(self._alerts) < self.config.max_alerts:
            self._alerts.append(NodeAlert(
                node_id=msg.node_id, t=msg.timestamp.ToNanoseconds() * 1e-9,
                alert_id=a.alert_id,
                alert_type=_short(a.AlertType.Name(a.alert_type), "ALERT_TYPE_"),
                status=_short(a.AlertStatus.Name(a.status), "ALERT_STATUS_"),
                priority=_short(a.DiscretePriority.Name(a.priority), "DISCRETE_PRIORITY_"),
                description=a.description))
        else:
            self.notes["alerts_dropped"] += 1
        self.counters.accepted += 1
        ack = alert_ack_pb2.AlertAck(alert_id=a.alert_id,
                                     alert_ack_status=alert_ack_pb2.AlertAck.ALERT_ACK_STATUS_ACCEPTED)
        return Outcome((self._reply(msg.node_id, now_s, "alert_ack", ack),))

    def _task(self, frame: SapientFrame, now_s: float) -> Outcome:
        msg = frame.message
        task = msg.task
        if msg.destination_id and msg.destination_id != self.config.node_id:
            decision = TaskDecision(False, (f"addressed to {msg.destination_id}, "
                                            f"not to this node ({self.config.node_id})",))
        else:
            decision = task_decision(task, modes=self.config.modes,
                                     accepted_tasks=self.accepted_tasks)
        reply = self._reply(msg.node_id, now_s, "task_ack",
                             task_ack(task.task_id, decision))
        if not decision.accepted:
            self.counters.reject("task refused: " + "; ".join(decision.reasons))
            self.notes["task_refused"] += 1
            return Outcome((reply,), Rejected(frame.offset,
                                              "task refused: " + "; ".join(decision.reasons)))
        if task.control == task_pb2.Task.CONTROL_START:
            self.accepted_tasks[task.task_id] = task
        else:
            self.accepted_tasks.pop(task.task_id, None)
        self.counters.accepted += 1
        return Outcome((reply,))

    # ------------------------------------------------------------------ detections

    def _detection(self, frame: SapientFrame, node: _Node, now_s: float) -> Outcome:
        msg = frame.message
        if not msg.HasField("timestamp"):
            return self._reject(frame, "missing: timestamp", now_s)
        t = msg.timestamp.seconds + msg.timestamp.nanos * 1e-9
        dr = msg.detection_report
        where = dr.WhichOneof("location_oneof")
        info = node.info
        if dr.classification:
            category, class_p, tree = _class_tree(dr.classification)
        else:
            category, class_p, tree = "", math.nan, ""
        if dr.HasField("enu_velocity"):
            v = dr.enu_velocity
            s = info.speed_scale_mps
            vel = (_opt(v, "east_rate") * s, _opt(v, "north_rate") * s, _opt(v, "up_rate") * s)
        else:
            vel = (math.nan, math.nan, math.nan)
        tail = (dr.object_id, category, class_p, tree, *vel)
        if where == "range_bearing":
            rb = dr.range_bearing
            status = node.status
            if status is None or not status.located:
                return self._reject(frame, "unlocated: range-bearing detection from a node "
                                    "whose StatusReport has not given its node_location yet",
                                    now_s)
            system = rb.coordinate_system or info.range_bearing_system
            scale = _RB_SCALE.get(system)
            if scale is None:
                return self._reject(frame, "units: range_bearing coordinate_system "
                                    "unspecified here and at registration", now_s)
            north = self._north_offset(rb.datum or info.range_bearing_datum, node)
            if isinstance(north, str):
                return self._reject(frame, north, now_s)
            has_r, has_az, has_el = (rb.HasField("range"), rb.HasField("azimuth"),
                                     rb.HasField("elevation"))
            if not has_az:
                return self._reject(frame, "incomplete: range_bearing without azimuth", now_s)
            ang, rng = scale
            if has_r:
                kind, dim = ("radar", 3) if has_el else ("radar2d", 2)
            else:
                kind, dim = "bearing", 2 if has_el else 1
            errors = (rb.range_error * rng if rb.HasField("range_error") else math.nan,
                      rb.azimuth_error * ang if rb.HasField("azimuth_error") else math.nan,
                      rb.elevation_error * ang if rb.HasField("elevation_error") else math.nan)
            row: tuple[Any, ...] = (t, rb.range * rng, rb.azimuth * ang + north,
                   rb.elevation * ang if has_el else 0.0, *errors, *tail)
            key = (kind, dim, node.version)
            bucket = node.buckets.get(key)
            if bucket is None:
                bucket = node.buckets[key] = _Rows(
                    kind, dim, (status.lat_deg, status.lon_deg, status.height_m))
            bucket.rows.append(row)
        elif where == "location":
            loc = dr.location
            row = (t, loc, *tail)
            key = ("position", 3, 0)
            bucket = node.buckets.get(key)
            if bucket is None:
                bucket = node.buckets[key] = _Rows("position", 3, (math.nan,) * 3)
            bucket.rows.append(row)
        else:
            self.notes[f"no location (state {dr.state!r})"] += 1
        self.counters.accepted += 1
        return Outcome()

    def _north_offset(self, datum: int, node: _Node) -> float | str:
        """Bearing of the datum's north, clockwise from true north (radians), or why it
        cannot be had."""
        node_id = node.info.node_id
        if datum == RBD.RANGE_BEARING_DATUM_TRUE:
            return 0.0
        if datum == RBD.RANGE_BEARING_DATUM_MAGNETIC:
            if node_id in self.config.declination_deg:
                return self.config.declination_deg[node_id] * _DEG
            return ("datum: magnetic north needs a declination for this node "
                    "(FusionNodeConfig.declination_deg)")
        if datum == RBD.RANGE_BEARING_DATUM_PLATFORM:
            if node_id in self.config.platform_heading_deg:
                return self.config.platform_heading_deg[node_id] * _DEG
            return ("datum: platform north needs the platform's heading "
                    "(FusionNodeConfig.platform_heading_deg)")
        if datum == RBD.RANGE_BEARING_DATUM_GRID:
            zone = parse_utm_zone(node.info.utm_zone) if node.info.utm_zone else None
            status = node.status
            if zone is None or status is None:
                return "datum: grid north needs the node's UTM zone at registration"
            return grid_convergence_rad(status.lat_deg, status.lon_deg, *zone)
        return "datum: range_bearing datum unspecified here and at registration"

    def _locations(self, locs: list[Any], info: NodeInfo
                   ) -> tuple[F64, F64, F64, F64, F64, F64] | str:
        """Geodetic (lat_deg, lon_deg, h_m) and 1σ (east_m, north_m, up_m) of Location
        messages, vectorised; NaN errors where not given. A string says why not."""
        n = len(locs)
        x = np.fromiter((loc.x for loc in locs), np.float64, n)
        y = np.fromiter((loc.y for loc in locs), np.float64, n)
        z = np.fromiter((_opt(loc, "z") for loc in locs), np.float64, n)
        errs = np.array([(_opt(loc, "x_error"), _opt(loc, "y_error"), _opt(loc, "z_error"))
                         for loc in locs], dtype=np.float64).reshape(n, 3)
        system = np.fromiter((loc.coordinate_system or info.location_system for loc in locs),
                             np.int64, n)
        datum = np.fromiter((loc.datum or info.location_datum for loc in locs), np.int64, n)
        if not np.isin(system, list(_LOCATION_SYSTEMS)).all():
            return "units: location coordinate_system unspecified here and at registration"
        if not np.isin(datum, list(_DATUMS)).all():
            return "datum: location datum unspecified here and at registration"
        lat, lon = y.copy(), x.copy()
        rad = system == LCS.LOCATION_COORDINATE_SYSTEM_LAT_LNG_RAD_M
        lat[rad], lon[rad] = np.degrees(y[rad]), np.degrees(x[rad])
        utm = system == LCS.LOCATION_COORDINATE_SYSTEM_UTM_M
        if utm.any():
            zones = [parse_utm_zone(loc.utm_zone or info.utm_zone) for loc, u
                     in zip(locs, utm, strict=True) if u]
            if any(zn is None for zn in zones):
                return "units: UTM location without a valid utm_zone here or at registration"
            zone = np.array([zn[0] for zn in zones if zn is not None])
            hemi = np.array([zn[1] for zn in zones if zn is not None])
            lat[utm], lon[utm] = utm_to_geodetic(x[utm], y[utm], zone, hemi)
        if not ((np.abs(lat) <= 90.0) & (np.abs(lon) <= 360.0)).all():
            return "range: latitude beyond ±90° or longitude beyond ±360°"
        lon = (lon + 180.0) % 360.0 - 180.0
        h = z.copy()
        geoid = datum == LD.LOCATION_DATUM_WGS84_G
        if geoid.any():
            h[geoid] = amsl_to_ellipsoid_m(z[geoid], lat[geoid], lon[geoid])
        if self.config.location_errors_in_coordinate_units:
            # Radii of curvature turn angular errors into metres.
            s2 = np.sin(np.radians(lat)) ** 2
            nu = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * s2)
            rho = nu * (1.0 - WGS84_E2) / (1.0 - WGS84_E2 * s2)
            per = np.where(rad, 1.0, _DEG)
            ll = ~utm
            errs[ll, 0] *= per[ll] * nu[ll] * np.cos(np.radians(lat[ll]))
            errs[ll, 1] *= per[ll] * rho[ll]
        return lat, lon, h, errs[:, 0], errs[:, 1], errs[:, 2]

    # ------------------------------------------------------------------ output

    def _spec(self, node: _Node | NodeInfo, kind: str, dim: int,
              location: tuple[float, float, float], sigma: tuple[float, float, float],
              max_range_m: float) -> tuple[int, SensorSpec]:
        info = node.info if isinstance(node, _Node) else node
        key = f"sapient:{info.node_id}/{kind}{dim if kind == 'bearing' else ''}"
        if math.isnan(location[0]):
            pos = (0.0, 0.0, 0.0)
        else:
            enu = self.config.origin.geodetic_to_enu(*location)
            pos = (float(enu[0]), float(enu[1]), float(enu[2]))
        modality = None
        if kind == "bearing":
            types = [getattr(Registration, f"NODE_TYPE_{t}", 0) for t in info.node_types]
            modality = next((_BEARING_MODALITY[t] for t in types if t in _BEARING_MODALITY),
                            "eo")
            if modality == "eo" and any("ir" in s.lower().split() or "infrared" in s.lower()
                                        or "thermal" in s.lower()
                                        for s in info.node_sub_types):
                modality = "ir"
        spec = SensorSpec(id=key, kind=kind, position_enu_m=pos, pd=self.config.default_pd,
                          noise_std=sigma, max_range_m=max_range_m,
                          bearing_dim=dim if kind == "bearing" else 0, modality=modality,
                          extra={"sapient_node_id": info.node_id, "name": info.name})
        index = self._spec_index.get(key)
        if index is None:
            index = self._spec_index[key] = len(self._specs)
            self._specs.append(spec)
        elif self._specs[index] != spec:
            self._specs[index] = spec
        return index, spec

    def take_detections(self) -> list[NodeBatch]:
        """Detections received since the last call, one batch per node, kind and node
        location, each in arrival order."""
        out: list[NodeBatch] = []
        pending = [(node, b) for node in self._nodes.values() for b in node.buckets.values()]
        pending += self._orphans
        self._orphans = []
        for node in self._nodes.values():
            node.buckets = {}
        for node, bucket in pending:
            if not bucket.rows:
                continue
            batch = (self._position_batch(node, bucket) if bucket.kind == "position"
                     else self._angle_batch(node, bucket))
            if batch is not None:
                out.append(batch)
        return out

    def _max_range(self, node: _Node) -> float:
        fov = node.status.field_of_view if node.status is not None else None
        if fov is not None and fov.cone is not None and math.isfinite(fov.cone.range_m):
            return fov.cone.range_m
        return math.inf

    def _tail(self, rows: list[tuple[Any, ...]], start: int
              ) -> tuple[NDArray[np.str_], NDArray[np.str_], F64, NDArray[np.str_], F64]:
        n = len(rows)
        obj = np.array([r[start] for r in rows], dtype=np.str_)
        cat = np.array([r[start + 1] for r in rows], dtype=np.str_)
        p = np.fromiter((r[start + 2] for r in rows), np.float64, n)
        tree = np.array([r[start + 3] for r in rows], dtype=np.str_)
        vel = np.array([r[start + 4:start + 7] for r in rows], dtype=np.float64).reshape(n, 3)
        return obj, cat, p, tree, vel

    def _angle_batch(self, node: _Node, bucket: _Rows) -> NodeBatch:
        cfg = self.config
        rows = bucket.rows
        n = len(rows)
        a = np.array([r[:7] for r in rows], dtype=np.float64)  # t r az el σr σaz σel
        t, rng, az, el = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
        sig = a[:, 4:7]
        defaults = np.array([cfg.default_range_std_m, cfg.default_angle_std_deg * _DEG,
                             cfg.default_angle_std_deg * _DEG])
        used = np.array([bucket.kind != "bearing", True,
                         bucket.dim == 3 or (bucket.kind == "bearing" and bucket.dim == 2)])
        missing = np.isnan(sig)
        if (missing & used).any():
            self.notes["defaulted_error"] += int((missing & used).any(axis=1).sum())
        sig = np.where(missing, defaults, sig)
        lat, lon, h = bucket.location
        az, el_o = local_to_origin_angles(az, el, Origin(lat, lon, h), cfg.origin)
        z = np.zeros((n, 3))
        var = np.ones((n, 3))
        if bucket.kind == "bearing":
            z[:, 0], var[:, 0] = az, sig[:, 1] ** 2
            if bucket.dim == 2:
                z[:, 1], var[:, 1] = el_o, sig[:, 2] ** 2
        else:
            z[:, 0], z[:, 1], var[:, 0], var[:, 1] = rng, az, sig[:, 0] ** 2, sig[:, 1] ** 2
            if bucket.dim == 3:
                z[:, 2], var[:, 2] = el_o, sig[:, 2] ** 2
        R = np.zeros((n, 3, 3))
        R[:, [0, 1, 2], [0, 1, 2]] = var
        if bucket.kind == "bearing":
            sigma = (float(np.median(sig[:, 1])),
                     float(np.median(sig[:, 2])) if bucket.dim == 2 else 0.0, 0.0)
        else:
            sigma = (float(np.median(sig[:, 0])), float(np.median(sig[:, 1])),
                     float(np.median(sig[:, 2])) if bucket.dim == 3 else 0.0)
        index, spec = self._spec(node, bucket.kind, bucket.dim, bucket.location, sigma,
                                 self._max_range(node))
        obj, cat, p, tree, vel = self._tail(rows, 7)
        det = Detections(t=t, sensor=np.full(n, index, dtype=np.int32), z=z, R=R,
                         category=cat)
        return NodeBatch(node.info.node_id, index, spec, det, obj, p, tree, vel)

    def _position_batch(self, node: _Node, bucket: _Rows) -> NodeBatch | None:
        cfg = self.config
        rows = bucket.rows
        geo = self._locations([r[1] for r in rows], node.info)
        if isinstance(geo, str):
            # One bad Location spoils the vector: sort the good rows from the bad.
            good = []
            for r in rows:
                reason = self._locations([r[1]], node.info)
                if isinstance(reason, str):
                    self.counters.reject(reason)
                    self.counters.accepted -= 1
                else:
                    good.append(r)
            if not good:
                return None
            rows = good
            geo = self._locations([r[1] for r in rows], node.info)
            if isinstance(geo, str):
                return None
        lat, lon, h, se, sn, su = geo
        n = len(rows)
        no_h = np.isnan(h)
        if no_h.any():
            self.notes["no_height"] += int(no_h.sum())
            h = np.where(no_h, cfg.origin.alt_m, h)
            su = np.where(no_h, cfg.unknown_height_std_m, su)
        sig = np.stack([se, sn, su], axis=1)
        missing = np.isnan(sig)
        if missing.any():
            self.notes["defaulted_error"] += int(missing.any(axis=1).sum())
            sig = np.where(missing, cfg.default_position_std_m, sig)
        z = cfg.origin.geodetic_to_enu(lat, lon, h)
        R = np.zeros((n, 3, 3))
        R[:, [0, 1, 2], [0, 1, 2]] = sig**2
        status = node.status
        location = ((status.lat_deg, status.lon_deg, status.height_m)
                    if status is not None and status.located else (math.nan,) * 3)
        index, spec = self._spec(node, "position", 3, location,
                                 (float(np.median(sig[:, 0])), float(np.median(sig[:, 1])),
                                  float(np.median(sig[:, 2]))), math.inf)
        t = np.fromiter((r[0] for r in rows), np.float64, n)
        obj, cat, p, tree, vel = self._tail(rows, 2)
        det = Detections(t=t, sensor=np.full(n, index, dtype=np.int32), z=z, R=R,
                         category=cat)
        return NodeBatch(node.info.node_id, index, spec, det, obj, p, tree, vel)


def task_ack(task_id: str, decision: TaskDecision) -> task_ack_pb2.TaskAck:
    status = (task_ack_pb2.TaskAck.TASK_STATUS_ACCEPTED if decision.accepted
              else task_ack_pb2.TaskAck.TASK_STATUS_REJECTED)
    return task_ack_pb2.TaskAck(task_id=task_id, task_status=status, reason=decision.reasons)
