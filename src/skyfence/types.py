"""Core data as struct-of-arrays, each with a declared schema.

One row per detection or track; a scan of 10,000 targets is a handful of
array operations, never 10,000 Python objects. Rows become dicts or CSV lines
only at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Field:
    """One declared column: name, numpy dtype, unit and meaning."""

    name: str
    dtype: str
    unit: str
    doc: str
    shape: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Schema:
    name: str
    fields: tuple[Field, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def __getitem__(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")


DETECTIONS_SCHEMA = Schema(
    "detections",
    (
        Field("t", "float64", "s", "measurement time, UTC Unix epoch"),
        Field("sensor", "int32", "", "index of the sensor in the scenario's sensor list"),
        Field(
            "z",
            "float64",
            "native",
            "measurement in the sensor's native frame, its first `dim` components used: "
            "(range_m, azimuth_rad, elevation_rad) for a radar, (range_m, azimuth_rad) for a "
            "2-D radar, (azimuth_rad[, elevation_rad]) for a bearing sensor, (east_m, north_m, "
            "up_m) for a position or cooperative sensor; unused components 0",
            (3,),
        ),
        Field("R", "float64", "native²",
              "measurement noise covariance; unused components have variance 1, no correlation",
              (3, 3)),
        Field("identity", "str", "",
              "identity a cooperative target reports (icao:4840D6, rid:MFG1A0123456789); "
              "empty otherwise"),
        Field("category", "str", "",
              "the category it reports: ADS-B emitter category (A3, B6, …) or Remote ID UA "
              "type (0–15); empty when unknown"),
        Field("reported", "PartnerTracks", "",
              "for rows of partner-track sensors, the partner's full state, covariance and "
              "track reference (None when the batch has none)"),
    ),
)

PARTNER_TRACKS_SCHEMA = Schema(
    "partner tracks",
    (
        Field("x", "float64", "m, m/s", "ENU position and velocity the partner reports", (6,)),
        Field("P", "float64", "m², m²/s, m²/s²", "its covariance", (6, 6)),
        Field("ref", "str", "", "the partner's track id; empty on rows of other sensors"),
    ),
)


class TrackStatus(IntEnum):
    TENTATIVE = 0
    CONFIRMED = 1
    COASTING = 2  # confirmed, but missed at its last opportunity


TRACKS_SCHEMA = Schema(
    "tracks",
    (
        Field("id", "int64", "", "track id, unique for the life of the tracker, never reused"),
        Field(
            "x",
            "float64",
            "m, m/s",
            "state: east, north, up and their rates in the local ENU frame",
            (6,),
        ),
        Field("P", "float64", "m², m²/s²", "state covariance", (6, 6)),
        Field("status", "int8", "", "TrackStatus: 0 tentative, 1 confirmed, 2 coasting"),
        Field("t_first", "float64", "s", "time of the detection that started the track"),
        Field("t_last", "float64", "s", "time of the last detection assigned"),
        Field("hits", "int32", "", "detections assigned over the track's life"),
        Field("misses", "int32", "", "consecutive missed opportunities"),
        Field("identity", "str", "",
              "identity from the cooperative reports attached (icao:…, rid:…); empty if none"),
        Field("category", "str", "",
              "ADS-B emitter category or Remote ID UA type those reports give; empty if none"),
        Field("sources", "uint64", "", "bit i set: sensor i contributed a detection"),
        Field("flags", "uint16", "", "TrackFlag bits (spoof_suspect, dark, …)"),
        Field("manoeuvre_p", "float64", "",
              "probability the motion model puts on turning or manoeuvring (not cruising)"),
    ),
)


class TrackFlag(IntFlag):
    """Bits of ``Tracks.flags``; names as in ``tracks.csv``."""

    #: A cooperative claim the sensors contradict: an object claimed inside sensor cover
    #: that no sensor sees, or an identity reported far from the track that carries it.
    SPOOF_SUSPECT = 1
    #: A drone-class track with no cooperative identity (set by classification).
    DARK = 2
    #: Only cooperative reports hold the track: nothing else has seen it lately.
    COOPERATIVE_ONLY = 4
    #: An RF direction finder has seen it: it emits a radio link.
    RF_EMITTER = 8

#: Columns of ``tracks.csv`` (``skyfence track`` output), in order.
TRACKS_CSV_SCHEMA = Schema(
    "tracks.csv",
    (
        Field("t", "float64", "s", "time of the scan, UTC Unix epoch"),
        Field("track", "int64", "", "track id"),
        Field("east_m", "float64", "m", "ENU east"),
        Field("north_m", "float64", "m", "ENU north"),
        Field("up_m", "float64", "m", "ENU up"),
        Field("v_east_mps", "float64", "m/s", "ENU east rate"),
        Field("v_north_mps", "float64", "m/s", "ENU north rate"),
        Field("v_up_mps", "float64", "m/s", "ENU up rate"),
        Field("status", "str", "", "confirmed or coasting"),
        Field("pos_std_m", "float64", "m", "√ of the trace of the position covariance"),
        Field("class", "str", "",
              "drone_multirotor, drone_fixed_wing, crewed_aircraft, bird, fast_low_flyer or "
              "unknown (until the evidence is enough)"),
        Field("class_p", "float64", "",
              "probability of that class; for unknown, of the likeliest class"),
        Field("identity", "str", "", "cooperative identity (icao:…, rid:…); empty if none"),
        Field("flags", "str", "",
              "spoof_suspect, dark, cooperative_only, rf_emitter, joined by |; empty if none"),
        Field("group", "int64", "", "swarm group id; empty when in none"),
    ),
)

#: Columns of ``groups.csv`` (written beside ``tracks.csv``), in order.
GROUPS_CSV_SCHEMA = Schema(
    "groups.csv",
    (
        Field("t", "float64", "s", "time of the scan, UTC Unix epoch"),
        Field("group", "int64", "", "group id, never reused"),
        Field("count", "int64", "", "member tracks in view"),
        Field("east_m", "float64", "m", "centroid, ENU east"),
        Field("north_m", "float64", "m", "centroid, ENU north"),
        Field("up_m", "float64", "m", "centroid, ENU up"),
        Field("v_east_mps", "float64", "m/s", "mean member velocity, east"),
        Field("v_north_mps", "float64", "m/s", "mean member velocity, north"),
        Field("extent_m", "float64", "m", "largest distance of a member from the centroid"),
    ),
)

#: Columns of ``truth.csv``, in order.
TRUTH_CSV_SCHEMA = Schema(
    "truth.csv",
    (
        Field("t", "float64", "s", "UTC Unix epoch"),
        Field("target", "int64", "", "target id"),
        Field("east_m", "float64", "m", "ENU east"),
        Field("north_m", "float64", "m", "ENU north"),
        Field("up_m", "float64", "m", "ENU up"),
        Field("v_east_mps", "float64", "m/s", "ENU east rate"),
        Field("v_north_mps", "float64", "m/s", "ENU north rate"),
        Field("v_up_mps", "float64", "m/s", "ENU up rate"),
    ),
)


@dataclass(frozen=True, slots=True)
class PartnerTracks:
    """Tracks a partner node reports, row-aligned with a ``Detections`` batch (see
    ``PARTNER_TRACKS_SCHEMA``); rows of other sensors are zeros."""

    x: F64
    P: F64
    ref: NDArray[np.str_]

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_] | slice) -> PartnerTracks:
        return PartnerTracks(x=self.x[index], P=self.P[index], ref=self.ref[index])

    @staticmethod
    def zeros(n: int) -> PartnerTracks:
        return PartnerTracks(x=np.zeros((n, 6)), P=np.zeros((n, 6, 6)),
                             ref=np.full(n, "", dtype=np.str_))


#: Default of the optional text columns of ``Detections``: filled with "" per row.
_NO_TEXT: NDArray[np.str_] = np.empty(0, dtype=np.str_)


@dataclass(frozen=True, slots=True)
class Detections:
    """A batch of detections (see ``DETECTIONS_SCHEMA``).

    ``identity`` and ``category`` may be left out (no cooperative reports): they
    are then empty strings.
    """

    t: F64
    sensor: NDArray[np.int32]
    z: F64
    R: F64
    identity: NDArray[np.str_] = field(default_factory=lambda: _NO_TEXT)
    category: NDArray[np.str_] = field(default_factory=lambda: _NO_TEXT)
    reported: PartnerTracks | None = None

    def __post_init__(self) -> None:
        n = self.t.shape[0]
        for name in ("identity", "category"):
            if getattr(self, name) is _NO_TEXT:
                object.__setattr__(self, name, np.full(n, "", dtype=np.str_))
        if (self.sensor.shape != (n,) or self.z.shape != (n, 3) or self.R.shape != (n, 3, 3)
                or self.identity.shape != (n,) or self.category.shape != (n,)
                or (self.reported is not None and self.reported.x.shape != (n, 6))):
            raise ValueError(
                "Detections arrays disagree in shape: "
                f"t {self.t.shape}, sensor {self.sensor.shape}, z {self.z.shape}, "
                f"R {self.R.shape}, identity {self.identity.shape}, "
                f"category {self.category.shape}"
            )

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            t=np.empty(0),
            sensor=np.empty(0, dtype=np.int32),
            z=np.empty((0, 3)),
            R=np.empty((0, 3, 3)),
        )

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_] | slice) -> Detections:
        return Detections(
            t=self.t[index], sensor=self.sensor[index], z=self.z[index], R=self.R[index],
            identity=self.identity[index], category=self.category[index],
            reported=None if self.reported is None else self.reported.take(index),
        )

    @staticmethod
    def concatenate(parts: list[Detections]) -> Detections:
        if not parts:
            return Detections.empty()
        return Detections(
            t=np.concatenate([p.t for p in parts]),
            sensor=np.concatenate([p.sensor for p in parts]),
            z=np.concatenate([p.z for p in parts]),
            R=np.concatenate([p.R for p in parts]),
            identity=np.concatenate([p.identity for p in parts]),
            category=np.concatenate([p.category for p in parts]),
            reported=None if all(p.reported is None for p in parts) else PartnerTracks(
                x=np.concatenate([_reported(p).x for p in parts]),
                P=np.concatenate([_reported(p).P for p in parts]),
                ref=np.concatenate([_reported(p).ref for p in parts])),
        )


def _reported(d: Detections) -> PartnerTracks:
    return d.reported if d.reported is not None else PartnerTracks.zeros(len(d))


@dataclass(frozen=True, slots=True)
class Tracks:
    """A snapshot of tracks (see ``TRACKS_SCHEMA``)."""

    id: I64
    x: F64
    P: F64
    status: NDArray[np.int8]
    t_first: F64
    t_last: F64
    hits: NDArray[np.int32]
    misses: NDArray[np.int32]
    identity: NDArray[np.str_]
    category: NDArray[np.str_]
    sources: NDArray[np.uint64]
    flags: NDArray[np.uint16]
    manoeuvre_p: F64

    def __len__(self) -> int:
        return int(self.id.shape[0])

    @classmethod
    def empty(cls) -> Tracks:
        return cls(
            id=np.empty(0, dtype=np.int64),
            x=np.empty((0, 6)),
            P=np.empty((0, 6, 6)),
            status=np.empty(0, dtype=np.int8),
            t_first=np.empty(0),
            t_last=np.empty(0),
            hits=np.empty(0, dtype=np.int32),
            misses=np.empty(0, dtype=np.int32),
            identity=np.empty(0, dtype=np.str_),
            category=np.empty(0, dtype=np.str_),
            sources=np.empty(0, dtype=np.uint64),
            flags=np.empty(0, dtype=np.uint16),
            manoeuvre_p=np.empty(0),
        )

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_]) -> Tracks:
        return Tracks(
            id=self.id[index],
            x=self.x[index],
            P=self.P[index],
            status=self.status[index],
            t_first=self.t_first[index],
            t_last=self.t_last[index],
            hits=self.hits[index],
            misses=self.misses[index],
            identity=self.identity[index],
            category=self.category[index],
            sources=self.sources[index],
            flags=self.flags[index],
            manoeuvre_p=self.manoeuvre_p[index],
        )

    def flag_names(self) -> NDArray[np.str_]:
        """Each track's flags as ``tracks.csv`` writes them: names joined by ``|``."""
        return _FLAG_TEXT[self.flags]


#: Text of every combination of flags, indexed by the flag bits.
_FLAG_TEXT = np.array(["|".join(str(f.name).lower() for f in TrackFlag if v & f)
                       for v in range(2 ** len(TrackFlag))])


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """What one ``Tracker.step`` changed, and the picture after it."""

    t: float
    tracks: Tracks
    confirmed: I64 = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    deleted: I64 = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    n_assigned: int = 0
    n_unassigned: int = 0
