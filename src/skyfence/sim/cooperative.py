"""Cooperative sensors: positions the targets report themselves (ADS-B, Remote ID).

Only targets that carry a transmitter report. A transmitter says who it is
(``identity``: ``icao:4B43AC``, ``rid:SKYFA0000000007``), what it is (``category``:
an ADS-B emitter category such as ``A7``, or a Remote ID UA type such as ``2``) and
how accurate its position is (1σ, ``std_h_m`` on east and north, ``std_v_m`` on up).
It reports its true position plus ``offset_m`` (a lie; zero for an honest one) plus
Gaussian noise of its stated accuracy, so a report's ``R`` is
diag(std_h², std_h², std_v²).

A receiver hears a transmitter at each of its scans with probability ``pd`` when
the transmitter's *true* position is within ``max_range_m``, at or above
``min_elevation_rad`` and over the 4/3-earth horizon (radio line of sight). A
receiver with ``extra["protocol"]`` ``"adsb"`` hears only ``icao:`` identities, one
with ``"remote_id"`` only ``rid:`` ones; without it, every transmitter. A receiver
never makes clutter.

Transmitters are declared in the ``simulator`` block of ``scenario.json``, one
object per transmitter (see :meth:`Transmitters.to_json`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skyfence.errors import InputError
from skyfence.geo import Origin
from skyfence.scenario import SensorSpec
from skyfence.sim import radar
from skyfence.types import F64, I64

#: ``extra["protocol"]`` of a receiver → the identity scheme it hears.
PROTOCOL_SCHEMES = {"adsb": "icao", "remote_id": "rid"}
#: ASTM F3411 Remote ID UA types of the simulated drones.
RID_UA_TYPE = {"multirotor": "2", "swarm": "2", "fixed_wing": "1"}
#: ANSI/CTA-2063-A manufacturer code of simulated Remote ID serials (fictitious).
RID_MANUFACTURER = "SKYF"


def icao_identity(icao24: str) -> str:
    """``icao:XXXXXX`` of a 24-bit address written in hex (any case)."""
    value = int(icao24, 16)
    if not 0 <= value < 1 << 24:
        raise ValueError(f"{icao24!r} is not a 24-bit address")
    return f"icao:{value:06X}"


def remote_id_identity(number: int) -> str:
    """A Remote ID serial (ANSI/CTA-2063-A: manufacturer code, length code ``A`` = 10
    characters, serial) numbered ``number`` (0 ≤ number < 10¹⁰)."""
    return f"rid:{RID_MANUFACTURER}A{number:010d}"


@dataclass(frozen=True, slots=True)
class Transmitters:
    """Targets that report their position, one row each (struct of arrays, k rows).

    ``target`` (k,) int64 target ids; ``identity`` and ``category`` (k,) text;
    ``std_h_m`` and ``std_v_m`` (k,) the reported 1σ accuracy (m); ``offset_m``
    (k, 3) ENU metres added to the true position (zero: honest).
    """

    target: I64
    identity: NDArray[np.str_]
    category: NDArray[np.str_]
    std_h_m: F64
    std_v_m: F64
    offset_m: F64

    def __post_init__(self) -> None:
        k = self.target.shape[0]
        if (self.identity.shape != (k,) or self.category.shape != (k,)
                or self.std_h_m.shape != (k,) or self.std_v_m.shape != (k,)
                or self.offset_m.shape != (k, 3)):
            raise ValueError("Transmitters arrays disagree in shape")

    def __len__(self) -> int:
        return int(self.target.shape[0])

    @classmethod
    def none(cls) -> Transmitters:
        return cls.of([])

    @classmethod
    def of(cls, rows: Sequence[Transmitter]) -> Transmitters:
        return cls(
            target=np.array([r.target for r in rows], dtype=np.int64),
            identity=np.array([r.identity for r in rows], dtype=np.str_),
            category=np.array([r.category for r in rows], dtype=np.str_),
            std_h_m=np.array([r.std_h_m for r in rows], dtype=np.float64),
            std_v_m=np.array([r.std_v_m for r in rows], dtype=np.float64),
            offset_m=np.array([r.offset_m for r in rows], dtype=np.float64).reshape(-1, 3),
        )

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_]) -> Transmitters:
        return Transmitters(target=self.target[index], identity=self.identity[index],
                            category=self.category[index], std_h_m=self.std_h_m[index],
                            std_v_m=self.std_v_m[index], offset_m=self.offset_m[index])

    @staticmethod
    def concatenate(parts: Sequence[Transmitters]) -> Transmitters:
        if not parts:
            return Transmitters.none()
        return Transmitters(
            target=np.concatenate([p.target for p in parts]),
            identity=np.concatenate([p.identity for p in parts]),
            category=np.concatenate([p.category for p in parts]),
            std_h_m=np.concatenate([p.std_h_m for p in parts]),
            std_v_m=np.concatenate([p.std_v_m for p in parts]),
            offset_m=np.concatenate([p.offset_m for p in parts]),
        )

    def rows(self) -> list[Transmitter]:
        return [
            Transmitter(target=int(self.target[i]), identity=str(self.identity[i]),
                        category=str(self.category[i]), std_h_m=float(self.std_h_m[i]),
                        std_v_m=float(self.std_v_m[i]),
                        offset_m=(float(self.offset_m[i, 0]), float(self.offset_m[i, 1]),
                                  float(self.offset_m[i, 2])))
            for i in range(len(self))
        ]

    @property
    def lies(self) -> NDArray[np.bool_]:
        """(k,) whether each transmitter reports a position other than its own."""
        out: NDArray[np.bool_] = np.any(self.offset_m != 0.0, axis=1)
        return out

    def to_json(self) -> list[dict[str, Any]]:
        """One object per transmitter: ``target``, ``identity``, ``category``,
        ``std_h_m``, ``std_v_m``, ``offset_m`` ([east, north, up], m)."""
        return [r.to_json() for r in self.rows()]

    @classmethod
    def from_json(cls, doc: Any, *, field: str = "simulator.transmitters") -> Transmitters:
        if not isinstance(doc, list):
            raise InputError("expected a list of transmitters", field=field,
                             fix="give one object per transmitter")
        return cls.of([Transmitter.from_json(d, field=f"{field}[{i}]")
                       for i, d in enumerate(doc)])

    def received_by(self, sensor: SensorSpec) -> NDArray[np.bool_]:
        """(k,) which transmitters the receiver ``sensor`` hears (by protocol)."""
        protocol = sensor.extra.get("protocol")
        if protocol is None:
            return np.ones(len(self), dtype=bool)
        if protocol not in PROTOCOL_SCHEMES:
            raise ValueError(f"sensor {sensor.id!r}: unknown protocol {protocol!r}, "
                             f"not one of {tuple(PROTOCOL_SCHEMES)}")
        out: NDArray[np.bool_] = np.char.startswith(self.identity,
                                                    PROTOCOL_SCHEMES[protocol] + ":")
        return out


@dataclass(frozen=True, slots=True)
class Transmitter:
    """One transmitter (see :class:`Transmitters` for the fields)."""

    target: int
    identity: str
    category: str
    std_h_m: float
    std_v_m: float
    offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "identity": self.identity, "category": self.category,
                "std_h_m": self.std_h_m, "std_v_m": self.std_v_m,
                "offset_m": list(self.offset_m)}

    @classmethod
    def from_json(cls, doc: Any, *, field: str) -> Transmitter:
        def fail(key: str, fix: str) -> InputError:
            return InputError(f"bad or missing {key}", field=f"{field}.{key}", fix=fix)

        if not isinstance(doc, dict):
            raise InputError("expected an object", field=field, fix="see skyfence.sim.cooperative")
        target = doc.get("target")
        if isinstance(target, bool) or not isinstance(target, int):
            raise fail("target", "give the target id (an integer)")
        for key in ("identity", "category"):
            if not isinstance(doc.get(key), str):
                raise fail(key, "give a string")
        std = {}
        for key in ("std_h_m", "std_v_m"):
            v = doc.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise fail(key, "give the reported 1σ accuracy in metres, > 0")
            std[key] = float(v)
        offset = doc.get("offset_m", [0.0, 0.0, 0.0])
        if (not isinstance(offset, list) or len(offset) != 3
                or not all(isinstance(v, int | float) and not isinstance(v, bool)
                           for v in offset)):
            raise fail("offset_m", "give [east, north, up] in metres")
        return cls(target=target, identity=doc["identity"], category=doc["category"],
                   std_h_m=std["std_h_m"], std_v_m=std["std_v_m"],
                   offset_m=(float(offset[0]), float(offset[1]), float(offset[2])))


def scan(
    origin: Origin,
    sensor: SensorSpec,
    enu_m: F64,
    tx: Transmitters,
    rng: np.random.Generator,
    *,
    visible: NDArray[np.bool_] | None = None,
) -> tuple[F64, F64, NDArray[np.int64]]:
    """One scan of a receiver over transmitters at true ENU positions (k, 3), row i of
    ``enu_m`` carrying row i of ``tx``; ``visible`` (k,) is which are in radio line of
    sight and range (:func:`skyfence.sim.radar.detectable`), if already known.

    Returns reported positions (m, 3) ENU metres, their covariances (m, 3, 3) and the
    row of ``tx`` behind each, in random order.
    """
    if visible is None:
        visible = radar.detectable(origin, sensor, enu_m)
    heard = np.flatnonzero(visible)
    hit = heard[rng.random(heard.size) < sensor.pd]
    std = np.stack([tx.std_h_m[hit], tx.std_h_m[hit], tx.std_v_m[hit]], axis=-1)
    z = enu_m[hit] + tx.offset_m[hit] + rng.standard_normal((hit.size, 3)) * std
    R = np.zeros((hit.size, 3, 3))
    R[:, [0, 1, 2], [0, 1, 2]] = std**2
    order = rng.permutation(hit.size)
    return z[order], R[order], hit[order].astype(np.int64)
