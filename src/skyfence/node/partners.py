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
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from skyfence.errors import InputError

#: The partner a node without ``[[partners]]`` has: it owns every sensor.
LOCAL = "local"
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True, slots=True)
class Partner:
    id: str
    name: str = ""


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
