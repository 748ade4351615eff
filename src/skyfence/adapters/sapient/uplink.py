"""skyfence as a child of a parent fusion node: our Registration, fused tracks as
DetectionReports, and the replies a parent sends (pure; the socket is in
``transport.connect_parent``).

A session starts with :meth:`ParentSession.registration`; the parent's
``RegistrationAck`` opens it, and only then does :meth:`ParentSession.track_reports`
produce reports (the ICD has a node report only once registered). Tasks from the
parent get a ``TaskAck`` by the same rule as the fusion node's
(:func:`~skyfence.adapters.sapient.node.task_decision`): sensing only.

Tracks go up as WGS84 latitude/longitude in degrees (x longitude, y latitude) and
heights above the ellipsoid (datum WGS84_E), with 1σ position errors in metres along
the local east, north and up at the track (the diagonal of the covariance turned
into that frame); velocity as ENU m/s in the same local frame with its 1σ errors;
the class and its probability as a classification. ``object_id`` is a ULID that
stays the same for a track id for the life of the session.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from google.protobuf.message import Message
from numpy.typing import NDArray

from skyfence.adapters.base import Rejected
from skyfence.adapters.sapient.codec import SapientError, SapientFrame
from skyfence.adapters.sapient.frames import local_rotations
from skyfence.adapters.sapient.node import ICD_VERSION, TaskDecision, task_ack, task_decision
from skyfence.adapters.sapient.proto import (
    detection_report_pb2,
    location_pb2,
    registration_pb2,
    sapient_message_pb2,
    task_pb2,
    velocity_pb2,
)
from skyfence.geo import Origin

log = logging.getLogger("skyfence.adapters.sapient")

F64 = NDArray[np.float64]
SapientMessage = sapient_message_pb2.SapientMessage
Reg = registration_pb2.Registration

#: skyfence's classes as SAPIENT class paths (top-level class, then sub-classes).
DEFAULT_CLASS_PATHS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "drone_multirotor": ("UAV", "Rotary Wing"),
    "drone_fixed_wing": ("UAV", "Fixed Wing"),
    "crewed_aircraft": ("Aircraft",),
    "bird": ("Bird",),
    "fast_low_flyer": ("Aircraft", "Fast Low Flyer"),
    "unknown": ("Unknown",),
})

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(ms: int, entropy: int) -> str:
    """A ULID: 48 bits of Unix milliseconds, then 80 bits, in Crockford base 32."""
    value = ((ms & ((1 << 48) - 1)) << 80) | (entropy & ((1 << 80) - 1))
    return "".join(_CROCKFORD[(value >> (5 * k)) & 31] for k in range(25, -1, -1))


@dataclass(frozen=True, slots=True)
class UplinkConfig:
    """Who we are to the parent: our node id (UUID), names, the parent's node id if
    known (sent as ``destination_id``), the modes we declare, and our class names as
    SAPIENT class paths."""

    node_id: str
    name: str = "skyfence fusion node"
    short_name: str = "skyfence"
    parent_id: str = ""
    modes: tuple[str, ...] = ("default",)
    status_interval_s: float = 5.0
    software_version: str = ""
    class_paths: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: DEFAULT_CLASS_PATHS)

    def __post_init__(self) -> None:
        if not self.node_id:
            raise SapientError("the uplink needs our node_id (a UUID)")


@dataclass(frozen=True, slots=True)
class ParentOutcome:
    """Replies for the parent, and the rejection when a message is refused."""

    replies: tuple[SapientMessage, ...] = ()
    rejected: Rejected | None = None


def _latlon_type() -> registration_pb2.Registration.LocationType:
    return Reg.LocationType(
        location_units=location_pb2.LOCATION_COORDINATE_SYSTEM_LAT_LNG_DEG_M,
        location_datum=location_pb2.LOCATION_DATUM_WGS84_E)


class ParentSession:
    """One session with a parent fusion node (a new one per connection)."""

    def __init__(self, config: UplinkConfig, *, start_s: float) -> None:
        self.config = config
        self.registered = False
        self.refused: tuple[str, ...] = ()
        self.accepted_tasks: dict[str, task_pb2.Task] = {}
        self._start_ms = int(start_s * 1000)
        self._seq = 0
        self._seed = hashlib.blake2b(config.node_id.encode(), digest_size=8).digest()

    def _message(self, now_s: float, content: str, body: Message) -> SapientMessage:
        msg = SapientMessage(node_id=self.config.node_id)
        getattr(msg, content).CopyFrom(body)
        if self.config.parent_id:
            msg.destination_id = self.config.parent_id
        msg.timestamp.FromNanoseconds(int(now_s * 1e9))
        return msg

    def registration(self, now_s: float) -> SapientMessage:
        """Our Registration: a fusion node reporting tracks in WGS84, taskable only for
        sensing (mode change, look-at, regions of interest)."""
        cfg = self.config
        classes = []
        for path in dict.fromkeys(cfg.class_paths.values()):
            cls = Reg.ClassDefinition(type=path[0], units="probability (0-1)")
            parent = cls.sub_class
            for level, name in enumerate(path[1:], start=1):
                sub = parent.add(type=name, units="probability (0-1)", level=level)
                parent = sub.sub_class
            classes.append(cls)
        seconds = Reg.Duration(units=Reg.TIME_UNITS_SECONDS, value=0.0)
        detection = Reg.DetectionDefinition(
            location_type=_latlon_type(),
            detection_class_definition=[Reg.DetectionClassDefinition(
                confidence_definition=Reg.CONFIDENCE_DEFINITION_SINGLE_CLASS,
                class_definition=classes)],
            velocity_type=Reg.VelocityType(
                enu_velocity_units=velocity_pb2.ENUVelocityUnits(
                    east_north_rate_units=velocity_pb2.SPEED_UNITS_MS,
                    up_rate_units=velocity_pb2.SPEED_UNITS_MS),
                location_datum=location_pb2.LOCATION_DATUM_WGS84_E),
            geometric_error=Reg.GeometricError(type="Standard Deviation", units="metres",
                                               variation_type="per report"))
        task = Reg.TaskDefinition(
            concurrent_tasks=8,
            region_definition=Reg.RegionDefinition(
                region_type=[Reg.REGION_TYPE_AREA_OF_INTEREST, Reg.REGION_TYPE_IGNORE,
                             Reg.REGION_TYPE_BOUNDARY],
                region_area=[_latlon_type()]),
            command=[Reg.Command(units=", ".join(cfg.modes), completion_time=seconds,
                                 type=Reg.COMMAND_TYPE_MODE_CHANGE),
                     Reg.Command(units="location or range-bearing", completion_time=seconds,
                                 type=Reg.COMMAND_TYPE_LOOK_AT)])
        modes = [Reg.ModeDefinition(
            mode_name=mode, mode_type=Reg.MODE_TYPE_PERMANENT, settle_time=seconds,
            scan_type=Reg.SCAN_TYPE_FIXED, tracking_type=Reg.TRACKING_TYPE_TRACK,
            detection_definition=[detection], task=task) for mode in cfg.modes]
        reg = Reg(
            node_definition=[Reg.NodeDefinition(node_type=Reg.NODE_TYPE_FUSION_NODE,
                                                node_sub_type=["awareness only"])],
            icd_version=ICD_VERSION, name=cfg.name, short_name=cfg.short_name,
            capabilities=[Reg.Capability(category="Fusion", type="Multi-sensor tracking"),
                          Reg.Capability(category="Fusion", type="Effector control",
                                         value="none")],
            status_definition=Reg.StatusDefinition(
                status_interval=Reg.Duration(units=Reg.TIME_UNITS_SECONDS,
                                             value=cfg.status_interval_s),
                location_definition=_latlon_type()),
            mode_definition=modes,
            config_data=[Reg.ConfigurationData(manufacturer="skyfence", model="skyfence",
                                               software_version=cfg.software_version)])
        return self._message(now_s, "registration", reg)

    def handle(self, frame: SapientFrame, *, received_s: float) -> ParentOutcome:
        """A message from the parent."""
        msg = frame.message
        kind = msg.WhichOneof("content")
        if kind == "registration_ack":
            ack = msg.registration_ack
            self.registered = ack.acceptance
            self.refused = () if ack.acceptance else tuple(ack.ack_response_reason)
            if not ack.acceptance:
                log.error("the parent refused our registration: %s",
                          "; ".join(self.refused) or "(no reason given)")
            return ParentOutcome()
        if kind == "task":
            task = msg.task
            if msg.destination_id and msg.destination_id != self.config.node_id:
                decision = TaskDecision(False, (f"addressed to {msg.destination_id}, not to "
                                                f"this node ({self.config.node_id})",))
            else:
                decision = task_decision(task, modes=self.config.modes,
                                         accepted_tasks=self.accepted_tasks)
            if decision.accepted:
                if task.control == task_pb2.Task.CONTROL_START:
                    self.accepted_tasks[task.task_id] = task
                else:
                    self.accepted_tasks.pop(task.task_id, None)
            reply = self._message(received_s, "task_ack", task_ack(task.task_id, decision))
            rejected = None if decision.accepted else Rejected(
                frame.offset, "task refused: " + "; ".join(decision.reasons))
            return ParentOutcome((reply,), rejected)
        if kind == "error":
            log.warning("the parent reports an error: %s",
                        "; ".join(msg.error.error_message) or "(no description)")
            return ParentOutcome()
        if kind in ("alert_ack", "task_ack"):
            return ParentOutcome()
        return ParentOutcome((), Rejected(frame.offset, f"unexpected: {kind} from the parent"))

    def object_id(self, track_id: int) -> str:
        """The track's ULID for this session: the session's start and a hash of our
        node id and the track id."""
        digest = hashlib.blake2b(self._seed + int(track_id).to_bytes(8, "little", signed=True),
                                 digest_size=10).digest()
        return ulid(self._start_ms, int.from_bytes(digest, "big"))

    def track_reports(self, *, t_s: float, track_id: NDArray[np.int64], x: F64, P: F64,
                      origin: Origin, class_name: Sequence[str] | None = None,
                      class_p: F64 | None = None) -> list[SapientMessage]:
        """DetectionReports of fused tracks at time ``t_s`` (UTC seconds): ``x`` (n, 6)
        ENU position and velocity (m, m/s) in ``origin``'s frame, ``P`` (n, 6, 6) their
        covariance, ``class_name`` skyfence class names with probabilities ``class_p``.
        Empty until the parent has accepted our registration."""
        if not self.registered:
            return []
        n = len(track_id)
        if n == 0:
            return []
        lat, lon, h = origin.enu_to_geodetic(x[:, :3])
        rot = local_rotations(lat, lon, origin)  # origin ENU → local ENU at each track
        pos_cov = rot @ P[:, :3, :3] @ np.swapaxes(rot, 1, 2)
        vel_cov = rot @ P[:, 3:, 3:] @ np.swapaxes(rot, 1, 2)
        vel = np.einsum("nij,nj->ni", rot, x[:, 3:])
        pos_std = np.sqrt(np.clip(np.diagonal(pos_cov, axis1=1, axis2=2), 0.0, None))
        vel_std = np.sqrt(np.clip(np.diagonal(vel_cov, axis1=1, axis2=2), 0.0, None))
        paths = self.config.class_paths
        out = []
        now_ms = int(t_s * 1000)
        rows = zip(track_id.tolist(), lat.tolist(), lon.tolist(), h.tolist(),
                   pos_std.tolist(), vel.tolist(), vel_std.tolist(), strict=True)
        for i, (tid, la, lo, hh, ps, v, vs) in enumerate(rows):
            self._seq += 1
            report = detection_report_pb2.DetectionReport(
                report_id=ulid(now_ms, int.from_bytes(self._seed, "big") ^ self._seq),
                object_id=self.object_id(tid),
                location=location_pb2.Location(
                    x=lo, y=la, z=hh, x_error=ps[0], y_error=ps[1], z_error=ps[2],
                    coordinate_system=location_pb2.LOCATION_COORDINATE_SYSTEM_LAT_LNG_DEG_M,
                    datum=location_pb2.LOCATION_DATUM_WGS84_E),
                enu_velocity=velocity_pb2.ENUVelocity(
                    east_rate=v[0], north_rate=v[1], up_rate=v[2], east_rate_error=vs[0],
                    north_rate_error=vs[1], up_rate_error=vs[2]))
            if class_name is not None:
                path = paths.get(str(class_name[i]))
                if path:
                    p = float(class_p[i]) if class_p is not None else math.nan
                    cls = report.classification.add(type=path[0])
                    if math.isfinite(p):
                        cls.confidence = p
                    parent = cls.sub_class
                    for level, name in enumerate(path[1:], start=1):
                        sub = parent.add(type=name, level=level)
                        if math.isfinite(p):
                            sub.confidence = p
                        parent = sub.sub_class
            out.append(self._message(t_s, "detection_report", report))
        return out
