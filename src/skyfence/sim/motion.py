"""Target motion: kinematic models stepped on a fixed grid and sampled at any times.

Models move in a *ground frame*: east and north in the deployment's ENU plane, and
height above the ground, which is flat at the ellipsoidal height of the origin.
Far from the origin ENU up is not height above ground (the earth curves away below
the tangent plane: about 280 m at 60 km), so :func:`lift` turns ground-frame states
into true ENU positions and velocities through the geodetic conversion.

Every model decides its controls at the grid times ``k · STEP_S`` (relative to the
scenario start) and holds them for one step, so a trajectory depends on the seed and
the model, never on when it is sampled; samples between grid times are exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from skyfence.geo import Origin
from skyfence.types import F64

GRAVITY_MPS2 = 9.80665
#: Control period of every synthetic model (s).
STEP_S = 0.1
TWO_PI = 2.0 * math.pi


@dataclass(frozen=True, slots=True)
class TargetStates:
    """True states of N targets at the T sample times of a simulation.

    ``pos`` and ``vel`` are (T, N, 3) float64, ENU metres and m/s; ``alive`` is (T, N)
    bool: whether the target exists at that time (recorded flights have gaps).
    """

    pos: F64
    vel: F64
    alive: NDArray[np.bool_]

    def __post_init__(self) -> None:
        t, n = self.alive.shape
        if self.pos.shape != (t, n, 3) or self.vel.shape != (t, n, 3):
            raise ValueError(
                f"TargetStates shapes disagree: pos {self.pos.shape}, vel {self.vel.shape}, "
                f"alive {self.alive.shape}"
            )

    @property
    def n_targets(self) -> int:
        return int(self.alive.shape[1])

    @staticmethod
    def concat(parts: Sequence[TargetStates], n_times: int) -> TargetStates:
        """Targets of all ``parts`` side by side, in order."""
        if not parts:
            return TargetStates(
                pos=np.empty((n_times, 0, 3)),
                vel=np.empty((n_times, 0, 3)),
                alive=np.empty((n_times, 0), dtype=bool),
            )
        return TargetStates(
            pos=np.concatenate([p.pos for p in parts], axis=1),
            vel=np.concatenate([p.vel for p in parts], axis=1),
            alive=np.concatenate([p.alive for p in parts], axis=1),
        )


def wrap_pi(angle_rad: F64) -> F64:
    """Angles wrapped into (-π, π]."""
    out: F64 = -np.remainder(-np.asarray(angle_rad) + math.pi, TWO_PI) + math.pi
    return out


# --------------------------------------------------------------------------- ground frame ↔ ENU


def _place(origin: Origin, ground: F64) -> F64:
    plane = ground.copy()
    plane[..., 2] = 0.0
    lat, lon, _ = origin.enu_to_geodetic(plane)
    return origin.geodetic_to_enu(lat, lon, origin.alt_m + ground[..., 2])


def lift(origin: Origin, ground: F64, rate: F64, *, eps_s: float = 0.05) -> tuple[F64, F64]:
    """Ground-frame states → true ENU position and velocity.

    ``ground`` (..., 3) is (east_m, north_m, height_m above the ground) and ``rate``
    (..., 3) its time derivative. The ground point is where the ellipsoid normal
    through (east, north, 0) of the ENU plane meets the ground; the target is
    ``height_m`` above it along that normal. The velocity is the derivative of this
    map along ``rate``, by a forward difference over ``eps_s``: the map bends on the
    scale of the earth's radius, so the error is below v²/R·eps_s/2, a few tenths of
    a millimetre per second at 280 m/s.
    """
    pos = _place(origin, ground)
    vel = (_place(origin, ground + rate * eps_s) - pos) / eps_s
    return pos, vel


# --------------------------------------------------------------------------- stepping


class Stepper(Protocol):
    def decide(self, t_s: float) -> None:
        """Set the controls held over [t_s, t_s + STEP_S)."""

    def advance(self, t_s: float, h_s: float) -> None:
        """Move the state from t_s to t_s + h_s under the current controls."""

    def peek(self, t_s: float, h_s: float) -> tuple[F64, ...]:
        """The arrays to record at t_s + h_s (0 ≤ h_s < STEP_S), state unchanged."""


def sample(model: Stepper, times_s: F64) -> tuple[F64, ...]:
    """Run ``model`` over the grid ``k · STEP_S`` and record ``peek`` at each of ``times_s``.

    ``times_s`` are sorted, non-negative seconds since the scenario start. Returns
    one array per ``peek`` output, each stacked over time (leading axis T).
    """
    times = np.asarray(times_s, dtype=np.float64)
    if times.size == 0 or times[0] < 0 or np.any(np.diff(times) < 0):
        raise ValueError("sample times must be a non-empty, sorted, non-negative array")
    # The tolerance keeps a time that is a multiple of the step on that grid point.
    k_of = np.floor(times / STEP_S + 1e-9).astype(np.int64)
    records: list[tuple[F64, ...]] = []
    j = 0
    for k in range(int(k_of[-1]) + 1):
        t_k = k * STEP_S
        model.decide(t_k)
        while j < times.size and k_of[j] == k:
            records.append(model.peek(t_k, max(float(times[j]) - t_k, 0.0)))
            j += 1
        if j < times.size:
            model.advance(t_k, STEP_S)
    return tuple(np.stack(column) for column in zip(*records, strict=True))


# --------------------------------------------------------------------------- aircraft


@dataclass(frozen=True, slots=True)
class HeightProfile:
    """Height above ground h(t) = h0 + amp·sin(2πt/period + phase), per row (m, s, rad)."""

    h0_m: F64
    amp_m: F64
    period_s: F64
    phase_rad: F64

    def at(self, t_s: float) -> tuple[F64, F64]:
        """Height (m) and its rate (m/s) at ``t_s`` seconds since the start."""
        w = TWO_PI / self.period_s
        arg = w * t_s + self.phase_rad
        return self.h0_m + self.amp_m * np.sin(arg), self.amp_m * w * np.cos(arg)

    @staticmethod
    def draw(
        rng: np.random.Generator,
        n: int,
        *,
        height_m: tuple[float, float],
        amp_m: tuple[float, float],
        period_s: tuple[float, float],
    ) -> HeightProfile:
        """Random profiles that stay within ``height_m`` at all times."""
        lo, hi = height_m
        h0 = rng.uniform(lo, hi, size=n)
        amp = np.minimum(rng.uniform(*amp_m, size=n), np.minimum(h0 - lo, hi - h0))
        return HeightProfile(
            h0_m=h0, amp_m=amp, period_s=rng.uniform(*period_s, size=n),
            phase_rad=rng.uniform(0.0, TWO_PI, size=n),
        )

    def take(self, index: NDArray[np.intp]) -> HeightProfile:
        return HeightProfile(self.h0_m[index], self.amp_m[index], self.period_s[index],
                             self.phase_rad[index])


@dataclass(frozen=True, slots=True)
class TurnPolicy:
    """When and how a class of aircraft changes course.

    After a straight leg of ``gap_s`` it turns, in a coordinated turn at a bank angle
    drawn from ``bank_rad``, either by an angle drawn from ``angle_rad`` to a random
    side or, when the aircraft has a base course, to a heading within
    ``course_spread_rad`` of it. Outside the keep-in circle and heading outward it
    turns back towards the circle's centre.
    """

    gap_s: tuple[float, float]
    angle_rad: tuple[float, float]
    bank_rad: tuple[float, float]
    course_spread_rad: float = math.radians(20.0)
    keep_in_center_m: tuple[float, float] = (0.0, 0.0)
    keep_in_radius_m: float = math.inf


class TurnModel:
    """Constant-speed aircraft flying straight legs and coordinated turns.

    Heading ``psi`` is clockwise from north; a positive turn rate turns right. Turn
    rate ω = g·tan(bank)/speed. Within a step the turn rate is constant and the arc is
    integrated exactly. Rows in the same ``group`` share their random draws, so rows
    that start identical stay identical (the two halves of a swarm before it splits).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        east_m: F64,
        north_m: F64,
        heading_rad: F64,
        speed_mps: F64,
        height: HeightProfile,
        policy: TurnPolicy,
        course_rad: F64 | None = None,
        group: NDArray[np.int64] | None = None,
        first_turn_s: F64 | None = None,
    ) -> None:
        n = int(east_m.shape[0])
        self.rng = rng
        self.e = np.array(east_m, dtype=np.float64)
        self.n = np.array(north_m, dtype=np.float64)
        self.psi = np.array(heading_rad, dtype=np.float64)
        self.speed = np.array(speed_mps, dtype=np.float64)
        self.height = height
        self.policy = policy
        self.course = None if course_rad is None else np.asarray(course_rad, dtype=np.float64)
        self.group = np.arange(n, dtype=np.int64) if group is None else group.copy()
        self.turning = np.zeros(n, dtype=bool)
        self.goal = self.psi.copy()
        self.rate = np.zeros(n)
        self.omega = np.zeros(n)
        self.next_turn = (
            self._draw(np.arange(n), *policy.gap_s) if first_turn_s is None
            else np.array(first_turn_s, dtype=np.float64)
        )

    @property
    def group(self) -> NDArray[np.int64]:
        return self._group

    @group.setter
    def group(self, value: NDArray[np.int64]) -> None:
        self._group = np.asarray(value, dtype=np.int64)
        self._shared = np.unique(self._group).size < self._group.size

    def _draw(self, rows: NDArray[np.intp], lo: float, hi: float) -> F64:
        """One uniform draw per distinct group among ``rows``, broadcast to the rows."""
        if not self._shared:
            own: F64 = self.rng.uniform(lo, hi, size=rows.size)
            return own
        groups, inverse = np.unique(self.group[rows], return_inverse=True)
        values: F64 = self.rng.uniform(lo, hi, size=groups.size)[inverse]
        return values

    def command(self, rows: NDArray[np.intp], goal_rad: F64, bank_rad: F64) -> None:
        """Start a coordinated turn of ``rows`` to heading ``goal_rad`` at ``bank_rad``."""
        delta = wrap_pi(goal_rad - self.psi[rows])
        sign = np.where(delta >= 0.0, 1.0, -1.0)
        self.goal[rows] = self.psi[rows] + delta
        self.rate[rows] = sign * GRAVITY_MPS2 * np.tan(bank_rad) / self.speed[rows]
        self.turning[rows] = True

    def decide(self, t_s: float) -> None:
        pol = self.policy
        # Back towards the keep-in circle.
        if math.isfinite(pol.keep_in_radius_m):
            de = self.e - pol.keep_in_center_m[0]
            dn = self.n - pol.keep_in_center_m[1]
            outward = (de * np.sin(self.psi) + dn * np.cos(self.psi)) > 0.0
            out = ~self.turning & (np.hypot(de, dn) > pol.keep_in_radius_m) & outward
            rows = np.flatnonzero(out)
            if rows.size:
                goal = np.arctan2(-de[rows], -dn[rows]) + self._draw(rows, -0.5, 0.5)
                self.command(rows, goal, np.full(rows.size, pol.bank_rad[1]))
                self.next_turn[rows] = t_s + self._draw(rows, *pol.gap_s)
        # Random course changes.
        rows = np.flatnonzero(~self.turning & (t_s >= self.next_turn))
        if rows.size:
            if self.course is None:
                side = np.where(self._draw(rows, 0.0, 1.0) < 0.5, -1.0, 1.0)
                goal = self.psi[rows] + side * self._draw(rows, *pol.angle_rad)
            else:
                spread = pol.course_spread_rad
                goal = self.course[rows] + self._draw(rows, -spread, spread)
            bank = self._draw(rows, *pol.bank_rad)
            self.command(rows, goal, bank)
            turn_s = np.abs(wrap_pi(goal - self.psi[rows]) / self.rate[rows])
            self.next_turn[rows] = t_s + turn_s + self._draw(rows, *pol.gap_s)
        # The last step of a turn is shortened so the heading lands on the goal.
        remaining = self.goal - self.psi
        last = self.turning & (np.abs(remaining) <= np.abs(self.rate) * STEP_S)
        self.omega = np.where(self.turning, np.where(last, remaining / STEP_S, self.rate), 0.0)
        self.turning &= ~last

    def _arc(self, h_s: float) -> tuple[F64, F64, F64]:
        w = self.omega
        k = self.speed * h_s * np.sinc(w * h_s / TWO_PI)  # sinc(x) = sin(πx)/(πx)
        mid = self.psi + 0.5 * w * h_s
        return self.e + k * np.sin(mid), self.n + k * np.cos(mid), self.psi + w * h_s

    def advance(self, t_s: float, h_s: float) -> None:
        self.e, self.n, self.psi = self._arc(h_s)
        self.goal = np.where(self.turning, self.goal, self.psi)

    def peek(self, t_s: float, h_s: float) -> tuple[F64, ...]:
        """(ground (N, 3), ground rate (N, 3), heading_rad (N,) in [0, 2π), turn rate (N,))."""
        e, n, psi = self._arc(h_s)
        h, vh = self.height.at(t_s + h_s)
        ground = np.stack([e, n, h], axis=-1)
        rate = np.stack([self.speed * np.sin(psi), self.speed * np.cos(psi), vh], axis=-1)
        return ground, rate, np.remainder(psi, TWO_PI), self.omega.copy()


# --------------------------------------------------------------------------- multirotors


@dataclass(frozen=True, slots=True)
class MultirotorLimits:
    max_speed_mps: float = 25.0
    max_accel_mps2: float = 4.0
    max_climb_mps: float = 5.0
    #: Velocity tracking time constant (s); ≥ STEP_S keeps speed within the limit.
    tau_s: float = 1.0
    hover_s: tuple[float, float] = (2.0, 12.0)
    leg_speed_mps: tuple[float, float] = (3.0, 25.0)
    #: Horizontal length of a leg between waypoints (before clipping to the box).
    leg_m: tuple[float, float] = (100.0, 1_200.0)


class MultirotorModel:
    """Multirotors flying between random waypoints, hovering at each.

    Each picks a waypoint a leg's length away in a random direction, within its box
    (east, north, height above ground), accelerates towards it at up to
    ``max_accel_mps2``, cruises at a leg speed, brakes to arrive, hovers for a while,
    and picks the next. Acceleration is constant within a step.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        start: F64,
        box_lo: F64,
        box_hi: F64,
        limits: MultirotorLimits | None = None,
    ) -> None:
        n = int(start.shape[0])
        self.rng = rng
        self.lim = limits or MultirotorLimits()
        if self.lim.tau_s < STEP_S:
            raise ValueError("tau_s must be at least STEP_S")
        self.p = np.array(start, dtype=np.float64)
        self.v = np.zeros((n, 3))
        self.a = np.zeros((n, 3))
        self.lo = np.broadcast_to(box_lo, (n, 3)).astype(np.float64)
        self.hi = np.broadcast_to(box_hi, (n, 3)).astype(np.float64)
        self.wp = self.p.copy()
        self.hovering = np.ones(n, dtype=bool)
        self.cruise = np.zeros(n)
        # Some set off at once, others hover first.
        self.hover_until = rng.uniform(-self.lim.hover_s[1], self.lim.hover_s[1], size=n)

    def decide(self, t_s: float) -> None:
        lim = self.lim
        d = self.wp - self.p
        dist = np.linalg.norm(d, axis=1)
        speed = np.linalg.norm(self.v, axis=1)
        arrived = np.flatnonzero(~self.hovering & (dist < 2.0) & (speed < 1.5))
        if arrived.size:
            self.hovering[arrived] = True
            self.hover_until[arrived] = t_s + self.rng.uniform(*lim.hover_s, size=arrived.size)
        leave = np.flatnonzero(self.hovering & (t_s >= self.hover_until))
        if leave.size:
            k = leave.size
            dist_m = self.rng.uniform(*lim.leg_m, size=k)
            bearing = self.rng.uniform(0.0, TWO_PI, size=k)
            height = self.rng.random(k)
            wp = self.p[leave] + np.stack(
                [dist_m * np.sin(bearing), dist_m * np.cos(bearing), np.zeros(k)], axis=-1)
            wp[:, 2] = self.lo[leave, 2] + height * (self.hi[leave, 2] - self.lo[leave, 2])
            self.wp[leave] = np.clip(wp, self.lo[leave], self.hi[leave])
            self.cruise[leave] = self.rng.uniform(*lim.leg_speed_mps, size=leave.size)
            self.hovering[leave] = False
            d = self.wp - self.p
            dist = np.linalg.norm(d, axis=1)
        # Brake early enough for the velocity lag: v² = 2·(a/2)·distance.
        brake = np.sqrt(lim.max_accel_mps2 * np.maximum(dist - 0.5, 0.0))
        move_speed = np.minimum(np.minimum(self.cruise, brake), lim.max_speed_mps)
        hold_speed = np.minimum(0.5 * dist, 2.0)  # station keeping while hovering
        want = np.where(self.hovering, hold_speed, move_speed)
        unit = d / np.maximum(dist, 1e-9)[:, None]
        v_des = unit * want[:, None]
        v_des[:, 2] = np.clip(v_des[:, 2], -lim.max_climb_mps, lim.max_climb_mps)
        a = (v_des - self.v) / lim.tau_s
        norm = np.linalg.norm(a, axis=1)
        self.a = a * np.minimum(1.0, lim.max_accel_mps2 / np.maximum(norm, 1e-12))[:, None]

    def advance(self, t_s: float, h_s: float) -> None:
        self.p = self.p + self.v * h_s + 0.5 * self.a * h_s**2
        self.v = self.v + self.a * h_s

    def peek(self, t_s: float, h_s: float) -> tuple[F64, ...]:
        """(ground (N, 3), ground rate (N, 3))."""
        return self.p + self.v * h_s + 0.5 * self.a * h_s**2, self.v + self.a * h_s
