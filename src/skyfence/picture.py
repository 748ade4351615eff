"""The picture: tracks with their classes, groups and flags — what a watch officer sees.

``Picture.update`` takes each ``TrackUpdate`` of the tracker and returns a
``Frame``: the shown tracks (confirmed and coasting), each with its class
probabilities and reasons, its swarm group, and its flags — the tracker's
(spoof_suspect, cooperative_only, rf_emitter) and ``dark``: a drone-class track
that carries no cooperative identity.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skyfence.classify import (
    CLASSES,
    Classification,
    Classifier,
    ClassifierConfig,
    adsb_category_code,
)
from skyfence.geo import Origin, height_above_origin_m
from skyfence.groups import GroupConfig, GroupEvent, GroupTable, GroupTracker
from skyfence.scenario import Scenario
from skyfence.types import I64, TrackFlag, Tracks, TrackStatus, TrackUpdate

_DRONE = np.array([c.startswith("drone_") for c in CLASSES])
_UNKNOWN = CLASSES.index("unknown")
_NAMED = np.array([c != "unknown" for c in CLASSES])
#: Share of crewed aircraft that broadcast ADS-B where a receiver listens (most must;
#: some light aircraft and gliders need not).
_ADSB_COVERAGE = 0.9


@dataclass(frozen=True, slots=True)
class PictureConfig:
    classifier: ClassifierConfig | None = None
    groups: GroupConfig | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """One picture: ``tracks`` shown (flags include ``dark``), ``classes`` and ``group``
    (-1: none) aligned with them, the ``groups`` table and this update's group events."""

    t: float
    tracks: Tracks
    classes: Classification
    group: I64
    groups: GroupTable
    events: tuple[GroupEvent, ...]

    def class_names(self) -> NDArray[np.str_]:
        return np.asarray(CLASSES, dtype=np.str_)[self.classes.label]

    def class_p(self) -> NDArray[np.float64]:
        """Probability of each track's class; for ``unknown``, that of the likeliest named
        class (the best guess the evidence does not yet support)."""
        n = len(self.tracks)
        probs = self.classes.probs
        named = probs[:, _NAMED].max(axis=1) if n else np.empty(0)
        return np.where(self.classes.label == _UNKNOWN, named,
                        probs[np.arange(n), self.classes.label]).astype(np.float64)


class Picture:
    """Classifies and groups the tracker's tracks, one update at a time."""

    def __init__(self, origin: Origin, *, config: PictureConfig | None = None) -> None:
        cfg = config or PictureConfig()
        self.origin = origin
        self.classifier = Classifier(config=cfg.classifier)
        self.groups = GroupTracker(cfg.groups)

    @classmethod
    def for_scenario(cls, scenario: Scenario) -> Picture:
        """A picture that knows the scenario's receivers: where an ADS-B receiver listens
        (a cooperative sensor with ``"protocol": "adsb"``), a track without an ICAO
        identity is less likely a crewed aircraft, which must transmit."""
        adsb = [s.pd for s in scenario.sensors
                if s.kind == "cooperative" and s.extra.get("protocol") == "adsb"]
        classifier = ClassifierConfig(adsb_coverage=_ADSB_COVERAGE * max(adsb)) if adsb \
            else None
        return cls(scenario.origin, config=PictureConfig(classifier=classifier))

    def update(self, update: TrackUpdate) -> Frame:
        tr = update.tracks
        shown = tr.take(tr.status != TrackStatus.TENTATIVE)
        t = update.t
        # Observed: the tracks a sensor updated in this step (the rest only predicted).
        classes = self.classifier.update(t, **classifier_inputs(self.origin, shown),
                                         observed=shown.t_last >= t)
        grouped = self.groups.update_tracks(t, shown)
        classes = _group_classes(classes, grouped.group)
        dark = _DRONE[classes.label] & (shown.identity == "")
        flags = shown.flags.copy()
        flags[dark] |= np.uint16(TrackFlag.DARK)
        shown = replace(shown, flags=flags)
        return Frame(t=t, tracks=shown, classes=classes, group=grouped.group,
                     groups=grouped.groups, events=grouped.events)


def _group_classes(classes: Classification, group: I64) -> Classification:
    """Members of a swarm group take the group's class: a formation is one kind of thing
    (drones fly with drones, birds with birds), and the mean of its members' evidence is
    surer than any young member's alone. Members without an identity only: a transmitter
    speaks for itself. Tracks in no group keep their own class."""
    member = (group >= 0) & (classes.identity_kind == 0)
    if not member.any():
        return classes
    ids, g = np.unique(group[member], return_inverse=True)
    total = np.zeros((ids.size, classes.probs.shape[1]))
    np.add.at(total, g, classes.probs[member])
    decided = np.zeros((ids.size, classes.probs.shape[1]))
    labelled = classes.label[member] != _UNKNOWN
    np.add.at(decided, (g[labelled], classes.label[member][labelled]), 1.0)
    # The group's class: the class most of its decided members were given; unknown
    # while none is decided.
    group_label = np.where(decided.sum(axis=1) > 0, decided.argmax(axis=1), _UNKNOWN)
    label = classes.label.copy()
    probs = classes.probs.copy()
    rows = np.flatnonzero(member)
    label[rows] = group_label[g].astype(np.int8)
    probs[rows] = total[g] / np.bincount(g, minlength=ids.size)[g, None]
    return replace(classes, label=label, probs=probs)


def classifier_inputs(origin: Origin, tracks: Tracks) -> dict[str, Any]:
    """The classifier's per-track evidence from the tracker's tracks."""
    ident = tracks.identity
    icao = np.char.startswith(ident, "icao:")
    rid = np.char.startswith(ident, "rid:")
    kind = np.where(icao, 1, np.where(rid, 2, 0)).astype(np.int8)
    # Categories are a handful of distinct strings: decode each once.
    values, inverse = np.unique(tracks.category, return_inverse=True)
    adsb = np.array([adsb_category_code(str(v)) for v in values], dtype=np.int8)[inverse]
    ua = np.array([int(v) if str(v).isdigit() and int(v) <= 15 else -1 for v in values],
                  dtype=np.int8)[inverse]
    return {
        "track_id": tracks.id,
        "x": tracks.x,
        "height_agl_m": height_above_origin_m(origin, tracks.x[:, :3]),
        "manoeuvre_p": tracks.manoeuvre_p,
        "identity_kind": kind,
        "adsb_category": np.where(icao, adsb, 0).astype(np.int8),
        "rid_ua_type": np.where(rid, ua, -1).astype(np.int8),
        "rf_emission": (tracks.flags & np.uint16(TrackFlag.RF_EMITTER)) != 0,
        "velocity_std_mps": np.sqrt(0.5 * (tracks.P[:, 3, 3] + tracks.P[:, 4, 4])),
    }
