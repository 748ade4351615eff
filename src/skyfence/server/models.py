"""The API's rows and bodies as pydantic models, so that the OpenAPI document says
exactly what each route returns.

They mirror the engine's declared schemas (``TRACK_FIELDS``, ``GROUP_FIELDS``,
``ALERT_EVENT_SCHEMA``; a test keeps them in step) and forbid other fields: a row that
carries an undeclared field fails at the edge instead of leaking out undocumented.
Units are in the names; times are Unix seconds (UTC); positions WGS84 degrees, heights
metres above the ellipsoid.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TrackClass = Literal["drone_multirotor", "drone_fixed_wing", "crewed_aircraft", "bird",
                     "fast_low_flyer", "unknown"]
TrackFlagName = Literal["spoof_suspect", "dark", "cooperative_only", "rf_emitter"]
AlertKind = Literal["zone_breach", "zone_breach_predicted", "site_threat", "swarm",
                    "fast_low_flyer", "spoof_suspect", "dark_drone", "track_lost_in_zone"]
AlertEventName = Literal["raised", "updated", "acknowledged", "cleared"]
SeverityName = Literal["info", "warning", "critical"]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Error(_Row):
    """Every 4xx: what is wrong, and what to do about it."""

    error: str = Field(description="what is wrong")
    fix: str = Field(description="what to do")


class Track(_Row):
    """A shown track (``skyfence.node.engine.TRACK_FIELDS``)."""

    id: int = Field(description="track id, unique for the life of the node")
    lat_deg: float
    lon_deg: float
    height_m: float = Field(description="above the WGS84 ellipsoid")
    height_agl_m: float = Field(description="above the origin's ground")
    speed_mps: float = Field(description="horizontal speed")
    course_deg: float = Field(description="course over ground, clockwise from north")
    climb_mps: float = Field(description="vertical speed")
    sd_h_m: float = Field(description="horizontal position 1σ (the larger axis)")
    status: Literal["confirmed", "coasting"]
    class_: TrackClass = Field(alias="class")
    class_p: float = Field(description="probability of that class")
    reasons: str = Field(description="the evidence for the class")
    identity: str = Field(description="icao:… / rid:… or empty")
    flags: list[TrackFlagName]
    group: int = Field(description="group (swarm) id, -1 for none")


class Group(_Row):
    """A group of tracks moving together (``GROUP_FIELDS``)."""

    id: int
    count: int
    lat_deg: float
    lon_deg: float
    height_m: float = Field(description="centroid height above the WGS84 ellipsoid")
    extent_m: float = Field(description="largest distance of a member from the centroid")
    speed_mps: float
    course_deg: float
    members: list[int]


class AlertEvent(_Row):
    """One event in an alert's life (``skyfence.alerts.ALERT_EVENT_SCHEMA``)."""

    t: float = Field(description="time of the event (the data's time)")
    event: AlertEventName
    alert: int = Field(description="alert id, unique for the life of the node")
    kind: AlertKind
    severity: SeverityName
    track: int | None
    zone: str | None
    site: str | None
    group: int | None
    time_to_breach_s: float | None = Field(description="0 inside; predicted time to entry")
    probability: float | None
    reason: str
    lat_deg: float | None
    lon_deg: float | None
    height_m: float | None
    by: str | None = Field(description="who acknowledged (acknowledged events)")


class ActiveAlert(_Row):
    """An active alert as the engine holds it (the picture's and the stream's rows)."""

    alert: int = Field(description="alert id (ids restart when the node restarts)")
    kind: AlertKind
    severity: SeverityName
    reason: str
    track: int | None
    zone: str | None
    site: str | None
    group: int | None
    time_to_breach_s: float | None
    probability: float | None
    raised_t: float
    updated_t: float
    acknowledged_by: str | None
    acknowledged_t: float | None
    lat_deg: float | None
    lon_deg: float | None
    height_m: float | None


class Alert(ActiveAlert):
    """An alert in the list: the active ones from the engine, the others from the
    store (``active`` false, ``cleared_t`` set once cleared). Alert ids restart when
    the node restarts: ``run`` tells which start of the node an alert belongs to (the
    store's count; null without a store)."""

    raised_t: float | None = Field(  # type: ignore[assignment]
        description="null: raised before the store saw it")
    active: bool
    cleared_t: float | None
    run: int | None


class AlertWithHistory(Alert):
    history: list[AlertEvent] = Field(description="the alert's events, oldest first")


class Alerts(_Row):
    alerts: list[Alert] = Field(description="newest first")


class Snapshot(_Row):
    """The whole picture, as the stream's first message."""

    type: Literal["snapshot"]
    seq: int = Field(description="the stream position this picture is at")
    t: float | None = Field(description="the data's time of the last step; null before any")
    tracks: list[Track]
    groups: list[Group]
    alerts: list[ActiveAlert]


class TrackList(_Row):
    t: float | None
    seq: int
    tracks: list[Track]


class GroupList(_Row):
    t: float | None
    groups: list[Group]


class HistoryPoint(_Row):
    """A stored track position (positions null where they were not finite)."""

    t: float
    lat_deg: float | None
    lon_deg: float | None
    height_m: float | None
    v_east_mps: float | None
    v_north_mps: float | None
    v_up_mps: float | None
    class_: TrackClass = Field(alias="class")
    flags: list[TrackFlagName]
    identity: str
    group: int | None = Field(default=None, description="the swarm it was in (null: none)")


class TrackHistory(_Row):
    track: int
    points: list[HistoryPoint] = Field(description="oldest first, at most one a second")


class HistoryTrack(HistoryPoint):
    id: int = Field(description="track id")


class ReplayTrack(HistoryTrack):
    trail: list[tuple[float, float, float]] = Field(
        default_factory=list,
        description="with trail_s: its stored (t, lon_deg, lat_deg) points over that span "
                    "before t, oldest first")


class HistoryGroup(_Row):
    """A swarm as stored: the tracks that were in it at that moment."""

    id: int
    count: int
    lat_deg: float = Field(description="centroid of the members' stored positions")
    lon_deg: float
    height_m: float | None = Field(description="centroid height above the WGS84 ellipsoid")
    members: list[int]


class HistoryAt(_Row):
    t: float
    tracks: list[ReplayTrack]
    groups: list[HistoryGroup] = Field(
        default_factory=list, description="the swarms then, from their members' points")
    alert_events: list[AlertEvent] = Field(
        default_factory=list,
        description="with alerts=true: the events up to t of every alert then standing, "
                    "in order; folded one by one (as the stream's) they give each alert "
                    "as it stood at t")


class HistoryRange(_Row):
    t_min: float | None = Field(description="null when nothing is stored")
    t_max: float | None


class SourceCounts(_Row):
    up: int
    down: int


class Health(_Row):
    """Liveness. On a node with tokens, a caller without a valid one gets ``status``
    alone (the other fields null); with one, its partner's picture and sources."""

    status: Literal["ok"]
    t: float | None = Field(description="the data's time of the last step")
    tracks: int | None = Field(description="tracks shown")
    sources: SourceCounts | None = Field(description="sources up and down")


class Sensor(_Row):
    source: str
    format: str
    sensor: str
    kind: str
    status: Literal["waiting", "up", "down"]
    detail: str
    inputs: int
    detections: int
    rejected: dict[str, int] = Field(description="rejected inputs by reason")
    last_input_t: float | None
    lat_deg: float
    lon_deg: float
    height_m: float
    max_range_m: float | None = Field(description="null for no limit")


class Sensors(_Row):
    sensors: list[Sensor]


class Ingested(_Row):
    """202: a sensor's push, queued for its source's decoder (after the journal)."""

    source: str
    bytes: int = Field(description="bytes taken")


class Acknowledge(_Row):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"by": "watch officer"}]})

    by: str = Field(min_length=1, max_length=200, description="who acknowledges")


class ZoneImport(_Row):
    imported: int = Field(description="zones imported")
    zones: int = Field(description="zones the node has now")
    problems: list[str] = Field(description="empty on success")


class ZoneImportRefused(ZoneImport):
    """422: the file has problems; nothing changed."""

    error: str
    fix: str


class Feature(BaseModel):
    """A GeoJSON (RFC 7946) Feature."""

    type: Literal["Feature"]
    geometry: dict[str, Any] | None
    properties: dict[str, Any] | None


class FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[Feature]


class SitePoint(BaseModel):
    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=2,
                                     description="[lon_deg, lat_deg]")


class SiteProperties(_Row):
    id: str
    name: str
    radius_m: float
    ceiling_m: float


class SiteFeature(_Row):
    type: Literal["Feature"]
    geometry: SitePoint
    properties: SiteProperties


class Sites(_Row):
    type: Literal["FeatureCollection"]
    features: list[SiteFeature]


class AuditEntry(_Row):
    """One entry of the audit log (``skyfence.store.AUDIT_SCHEMA``)."""

    t: float = Field(description="when (the node's clock)")
    who: str = Field(description="the token's name, the name given, or the client address")
    action: str = Field(description="api, stream.open, stream.close, alert.acknowledge, "
                                    "zones.import, zones.delete")
    detail: dict[str, Any] = Field(description="route, partner, role, token, status, "
                                               "returned rows, client, …")


class AuditLog(_Row):
    entries: list[AuditEntry] = Field(description="newest first")
