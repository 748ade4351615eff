"""Partners and releasability: which partner may receive what is derived from which
sensor.

Every sensor has an owner (a partner) and a release list: the partners that may
receive anything derived from it — tracks, groups, alerts, history, every output.
The owner is always on it. A partner's picture is computed only from the sensors
released to it, by a tracker of its own; partners whose sensor sets coincide share
one (a *view*), so three partners that pool everything cost one tracker, not three.

Why a tracker per release set and not one picture filtered afterwards: a fused track
carries the information of every sensor that touched it (its position, its
covariance, its class, even the fact that it exists), so no filter applied after
fusion can take a sensor's part back out. Computing each view from its own inputs
makes the guarantee structural: what a partner receives is a function of its
released inputs alone (tested as a property in ``tests/node/test_partners.py``).

A partner may also have a field policy (``skyfence.release.FieldPolicy``: positions
to a grid, no identities): a :class:`Release` turns each update of its view into
what that partner receives — one per distinct policy in a view, so partners that
share a view and a policy share the work — with its own stream hub and snapshot.
What it gives is a function of the view's update alone, so the guarantee holds for
what the partner does receive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skyfence.alerts import AlertEvent
from skyfence.errors import InputError
from skyfence.node.engine import RowBook, Update, group_rows, track_rows
from skyfence.node.hub import Hub
from skyfence.node.outputs import PictureOutput
from skyfence.release import (
    FULL,
    FieldPolicy,
    release_alert_rows,
    release_events,
    release_frame,
)
from skyfence.scenario import Scenario

#: The partner a node without ``[[partners]]`` has: it owns every sensor.
LOCAL = "local"
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True, slots=True)
class Partner:
    """A partner: ``policy``, how much of each field it receives (everything by
    default)."""

    id: str
    name: str = ""
    policy: FieldPolicy = FULL


@dataclass(frozen=True, slots=True)
class Releasability:
    """Partners, the owner of each sensor, and each sensor's release list."""

    partners: tuple[Partner, ...]
    #: sensor id → owning partner id
    owner: Mapping[str, str]
    #: sensor id → partner ids that may receive what it contributes (owner included)
    release: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def single(cls, sensors: Sequence[str]) -> Releasability:
        """One partner, ``local``, owning every sensor (a node without partners)."""
        return cls((Partner(LOCAL),), dict.fromkeys(sensors, LOCAL),
                   {s: frozenset({LOCAL}) for s in sensors})

    def __post_init__(self) -> None:
        ids = [p.id for p in self.partners]
        for pid in ids:
            if not _ID.fullmatch(pid):
                raise InputError(f"partner id {pid!r} is not a short lower-case name",
                                 field="partners.id",
                                 fix="use a-z, 0-9, '_' and '-', at most 32 characters")
        if len(set(ids)) != len(ids):
            raise InputError("a partner id is used twice", field="partners.id",
                             fix="give each partner its own id")
        known = set(ids)
        for sensor, who in self.owner.items():
            if who not in known:
                raise InputError(f"sensor {sensor!r} is owned by {who!r}, not a partner",
                                 field=f"sensors.{sensor}.owner",
                                 fix=f"use one of {', '.join(ids)}")
        for sensor, to in self.release.items():
            unknown = sorted(to - known)
            if unknown:
                raise InputError(f"sensor {sensor!r} is released to {unknown[0]!r}, "
                                 "not a partner", field=f"sensors.{sensor}.release",
                                 fix=f"use partners among {', '.join(ids)}")

    def policy(self, partner: str) -> FieldPolicy:
        """The field policy of ``partner`` (everything for one the node does not know:
        it receives nothing anyway)."""
        return next((p.policy for p in self.partners if p.id == partner), FULL)

    def released_to(self, sensor: str) -> frozenset[str]:
        """The partners that may receive what ``sensor`` contributes (its owner too)."""
        return self.release.get(sensor, frozenset()) | {self.owner[sensor]}

    def sensors_for(self, partner: str, order: Sequence[str]) -> tuple[str, ...]:
        """The sensors released to ``partner``, in ``order``."""
        return tuple(s for s in order if partner in self.released_to(s))

    def views(self, order: Sequence[str]) -> dict[tuple[str, ...], tuple[str, ...]]:
        """Each distinct release set (sensor ids in ``order``) → the partners that
        receive it, in partner order. Partners with no sensor released have the
        empty set: an empty picture, but a picture."""
        out: dict[tuple[str, ...], list[str]] = {}
        for p in self.partners:
            out.setdefault(self.sensors_for(p.id, order), []).append(p.id)
        return {k: tuple(v) for k, v in out.items()}


class Release:
    """What the partners of one view that share one field ``policy`` receive: each of
    the view's updates released (:meth:`step`, on the engine's thread), published on
    a hub of their own (:meth:`publish`, on the event loop's), and the outputs
    configured for them."""

    def __init__(self, policy: FieldPolicy, scenario: Scenario, partners: Sequence[str],
                 snapshot: dict[str, Any]) -> None:
        self.policy, self.scenario, self.partners = policy, scenario, tuple(partners)
        self.hub = Hub()
        self.outputs: list[PictureOutput] = []
        #: The last released update (the engine thread's).
        self.last: Update | None = None
        #: The released rows as a client that took every update holds them.
        self._rows = RowBook()
        self.snapshot = self.snapshot_of(snapshot)

    def update(self, u: Update) -> Update:
        """One update of the view as the policy releases it: rows of the released
        frame (tracks, groups), its alert events released."""
        frame = release_frame(u.frame, self.scenario.origin, self.policy)
        # The same delta as the view's: the rows of the tracks that changed.
        rows = track_rows(frame, self.scenario, only=u.changed)
        self._rows.take(rows, u.removed)
        return Update(seq=u.seq, t=u.t, tracks=rows, removed=u.removed,
                      groups=group_rows(frame, self.scenario),
                      alerts=release_events(u.alerts, self.policy), frame=frame,
                      changed=u.changed)

    def step(self, updates: Sequence[Update], snapshot: dict[str, Any]
             ) -> tuple[list[Update], dict[str, Any]]:
        """The view's updates of one step and its snapshot after them, released."""
        out = [self.update(u) for u in updates]
        if out:
            self.last = out[-1]
        return out, self.snapshot_of(snapshot)

    def snapshot_of(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """The view's snapshot (``Engine.snapshot``) released: the tracks and groups of
        the last released update, the active alerts released."""
        last = self.last
        return {**snapshot, "tracks": self._rows.rows(),
                "groups": [] if last is None else last.groups,
                "alerts": release_alert_rows(snapshot.get("alerts", []), self.policy)}

    def event(self, e: AlertEvent) -> AlertEvent:
        return release_events([e], self.policy)[0]

    def publish(self, updates: Sequence[Update], snapshot: dict[str, Any],
                breaching: frozenset[int]) -> None:
        """On the event loop: each released update to the hub, the snapshot kept, the
        last update to the outputs."""
        for u in updates:
            self.hub.publish(u.to_json())
        self.snapshot = snapshot
        if updates:
            for out in self.outputs:
                out.publish(updates[-1], breaching)
