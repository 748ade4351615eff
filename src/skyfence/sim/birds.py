"""Birds: slow, low, meandering flyers — the commonest false drone on a radar.

A bird flies at 5–20 m/s (small passerines ~8–12, gulls and corvids ~10–15, pigeons
up to ~20), mostly below 200 m, and never holds a straight line for long: its heading
wanders (flapping flight) or it circles for a while (a gull or a raptor soaring in a
thermal). It does not hover, except for a kestrel's few seconds, left out here.

The model, stepped on the common grid of :mod:`skyfence.sim.motion`:

- heading: turn rate ω is an Ornstein–Uhlenbeck process (mean 0, ``turn_std_radps``,
  correlation ``turn_tau_s``) while meandering; while circling it holds a constant
  ω of ``circle_rate_radps`` (either side) for ``circle_s``;
- speed: an Ornstein–Uhlenbeck process around the bird's cruise speed, kept within
  ``speed_mps``;
- height above ground: an Ornstein–Uhlenbeck climb rate, kept within ``height_m``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from skyfence.geo import Origin
from skyfence.sim.motion import STEP_S, TargetStates, lift, sample
from skyfence.types import F64


@dataclass(frozen=True, slots=True)
class BirdLimits:
    """Flight envelope of the birds of a group (SI units)."""

    speed_mps: tuple[float, float] = (5.0, 20.0)
    #: Cruise speeds are drawn from here; the speed wanders around its cruise.
    cruise_mps: tuple[float, float] = (7.0, 17.0)
    speed_std_mps: float = 1.5
    speed_tau_s: float = 5.0
    height_m: tuple[float, float] = (10.0, 200.0)
    climb_std_mps: float = 1.0
    climb_tau_s: float = 4.0
    #: Meandering: 1σ turn rate and its correlation time.
    turn_std_radps: float = 0.2
    turn_tau_s: float = 3.0
    #: Circling (soaring): turn rate magnitude, how long, and how often it starts.
    circle_rate_radps: tuple[float, float] = (0.2, 0.4)
    circle_s: tuple[float, float] = (15.0, 45.0)
    circle_per_s: float = 1.0 / 60.0


def _ou_step(x: F64, mean: F64 | float, std: float, tau_s: float, noise: F64) -> F64:
    """One exact Ornstein–Uhlenbeck step of ``STEP_S``."""
    a = math.exp(-STEP_S / tau_s)
    out: F64 = mean + a * (x - mean) + std * math.sqrt(1.0 - a * a) * noise
    return out


class BirdModel:
    """N birds meandering and circling; ground frame (east, north, height above ground)."""

    def __init__(self, rng: np.random.Generator, *, start: F64,
                 limits: BirdLimits | None = None) -> None:
        n = int(start.shape[0])
        self.rng = rng
        self.lim = lim = limits or BirdLimits()
        self.p = np.array(start, dtype=np.float64)
        self.psi = rng.uniform(0.0, 2.0 * math.pi, size=n)
        self.cruise = rng.uniform(*lim.cruise_mps, size=n)
        self.speed = self.cruise.copy()
        self.omega = rng.normal(0.0, lim.turn_std_radps, size=n)
        self.climb = np.zeros(n)
        self.circle_rate = np.zeros(n)  # signed; 0 while meandering
        self.circle_until = np.zeros(n)

    def decide(self, t_s: float) -> None:
        lim, rng, n = self.lim, self.rng, self.psi.size
        ended = (self.circle_rate != 0.0) & (t_s >= self.circle_until)
        self.circle_rate[ended] = 0.0
        start = (self.circle_rate == 0.0) & (rng.random(n) < lim.circle_per_s * STEP_S)
        k = int(np.count_nonzero(start))
        if k:
            side = np.where(rng.random(k) < 0.5, -1.0, 1.0)
            self.circle_rate[start] = side * rng.uniform(*lim.circle_rate_radps, size=k)
            self.circle_until[start] = t_s + rng.uniform(*lim.circle_s, size=k)
        meander = _ou_step(self.omega, 0.0, lim.turn_std_radps, lim.turn_tau_s,
                           rng.standard_normal(n))
        self.omega = np.where(self.circle_rate != 0.0, self.circle_rate, meander)
        speed = _ou_step(self.speed, self.cruise, lim.speed_std_mps, lim.speed_tau_s,
                         rng.standard_normal(n))
        self.speed = np.clip(speed, *lim.speed_mps)
        climb = _ou_step(self.climb, 0.0, lim.climb_std_mps, lim.climb_tau_s,
                         rng.standard_normal(n))
        # Turn back from the floor and the ceiling rather than fly through them.
        lo, hi = lim.height_m
        self.climb = np.where(self.p[:, 2] <= lo, np.abs(climb),
                              np.where(self.p[:, 2] >= hi, -np.abs(climb), climb))

    def _at(self, h_s: float) -> tuple[F64, F64]:
        w = self.omega
        k = self.speed * h_s * np.sinc(w * h_s / (2.0 * math.pi))  # chord of the arc
        mid = self.psi + 0.5 * w * h_s
        p = self.p + np.stack([k * np.sin(mid), k * np.cos(mid), self.climb * h_s], axis=-1)
        psi = self.psi + w * h_s
        v = np.stack([self.speed * np.sin(psi), self.speed * np.cos(psi), self.climb], axis=-1)
        return p, v

    def advance(self, t_s: float, h_s: float) -> None:
        self.p, _ = self._at(h_s)
        self.psi = self.psi + self.omega * h_s

    def peek(self, t_s: float, h_s: float) -> tuple[F64, ...]:
        """(ground (N, 3), ground rate (N, 3))."""
        return self._at(h_s)


def birds(
    origin: Origin,
    times_s: F64,
    rng: np.random.Generator,
    *,
    start: F64,
    limits: BirdLimits | None = None,
) -> TargetStates:
    """Birds starting at ``start`` (N, 3: east, north, height above ground, metres),
    sampled at ``times_s`` (seconds since the scenario start, sorted)."""
    ground, rate = sample(BirdModel(rng, start=start, limits=limits), times_s)
    pos, vel = lift(origin, ground, rate)
    return TargetStates(pos=pos, vel=vel, alive=np.ones(pos.shape[:2], dtype=bool))
