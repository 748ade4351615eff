"""Synthetic target classes: multirotors, fixed-wing drones, fast low flyers, airliners.

Each generator draws its targets from ``rng``, flies them on the motion grid and
returns their true ENU states at ``times_s`` (seconds since the scenario start),
vectorised over targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from skyfence.geo import Origin
from skyfence.sim.motion import (
    HeightProfile,
    MultirotorLimits,
    MultirotorModel,
    TargetStates,
    TurnModel,
    TurnPolicy,
    lift,
    sample,
)
from skyfence.types import F64

DEG = math.pi / 180.0


@dataclass(frozen=True, slots=True)
class AircraftClass:
    """Speed, manoeuvre and height envelope of a class of aircraft (SI units)."""

    speed_mps: tuple[float, float]
    height_m: tuple[float, float]
    height_amp_m: tuple[float, float]
    height_period_s: tuple[float, float]
    policy: TurnPolicy


FIXED_WING = AircraftClass(
    speed_mps=(20.0, 60.0),
    height_m=(80.0, 400.0),
    height_amp_m=(0.0, 30.0),
    height_period_s=(40.0, 160.0),
    policy=TurnPolicy(gap_s=(5.0, 25.0), angle_rad=(30 * DEG, 150 * DEG),
                      bank_rad=(15 * DEG, 35 * DEG)),
)

FAST_LOW_FLYER = AircraftClass(
    speed_mps=(200.0, 280.0),
    height_m=(30.0, 100.0),
    height_amp_m=(0.0, 20.0),
    height_period_s=(20.0, 60.0),
    policy=TurnPolicy(gap_s=(8.0, 25.0), angle_rad=(20 * DEG, 90 * DEG),
                      bank_rad=(30 * DEG, 60 * DEG)),
)

AIRLINER = AircraftClass(
    speed_mps=(230.0, 260.0),
    height_m=(8000.0, 11500.0),
    height_amp_m=(0.0, 60.0),
    height_period_s=(300.0, 900.0),
    policy=TurnPolicy(gap_s=(20.0, 60.0), angle_rad=(5 * DEG, 30 * DEG),
                      bank_rad=(10 * DEG, 25 * DEG)),
)


def aircraft(
    origin: Origin,
    times_s: F64,
    rng: np.random.Generator,
    cls: AircraftClass,
    *,
    start_en_m: F64,
    heading_rad: F64 | None = None,
    course_rad: F64 | None = None,
    policy: TurnPolicy | None = None,
    height_m: tuple[float, float] | None = None,
) -> TargetStates:
    """Aircraft of class ``cls`` starting at ``start_en_m`` (N, 2) ENU east/north.

    Heading defaults to the base course if given, else uniform. ``policy`` and
    ``height_m`` override the class's.
    """
    n = int(start_en_m.shape[0])
    speed = rng.uniform(*cls.speed_mps, size=n)
    height = HeightProfile.draw(
        rng, n, height_m=height_m or cls.height_m, amp_m=cls.height_amp_m,
        period_s=cls.height_period_s,
    )
    if heading_rad is None:
        heading_rad = (rng.uniform(0.0, 2 * math.pi, size=n) if course_rad is None
                       else np.asarray(course_rad, dtype=np.float64).copy())
    model = TurnModel(
        rng, east_m=start_en_m[:, 0], north_m=start_en_m[:, 1], heading_rad=heading_rad,
        speed_mps=speed, height=height, policy=policy or cls.policy, course_rad=course_rad,
    )
    ground, rate, _, _ = sample(model, times_s)
    pos, vel = lift(origin, ground, rate)
    return TargetStates(pos=pos, vel=vel, alive=np.ones(pos.shape[:2], dtype=bool))


def multirotors(
    origin: Origin,
    times_s: F64,
    rng: np.random.Generator,
    *,
    start: F64,
    box_lo: F64,
    box_hi: F64,
    limits: MultirotorLimits | None = None,
) -> TargetStates:
    """Multirotors starting at ``start`` (N, 3: east, north, height above ground) that
    fly between random waypoints in their box (N, 3) or (3,) and hover at each."""
    model = MultirotorModel(rng, start=start, box_lo=box_lo, box_hi=box_hi, limits=limits)
    ground, rate = sample(model, times_s)
    pos, vel = lift(origin, ground, rate)
    return TargetStates(pos=pos, vel=vel, alive=np.ones(pos.shape[:2], dtype=bool))


def uniform_in_box(
    rng: np.random.Generator, n: int, lo: tuple[float, ...], hi: tuple[float, ...]
) -> F64:
    """``n`` points uniform in the box [lo, hi] (any dimension)."""
    lo_a, hi_a = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    out: F64 = lo_a + rng.random((n, lo_a.size)) * (hi_a - lo_a)
    return out


def on_ring(
    rng: np.random.Generator, n: int, range_m: tuple[float, float], *,
    center_m: tuple[float, float] = (0.0, 0.0),
) -> tuple[F64, F64]:
    """``n`` points at a ground range drawn from ``range_m`` and a uniform bearing
    around ``center_m``: (points (n, 2) east/north, bearing_rad (n,) from the centre)."""
    r = rng.uniform(*range_m, size=n)
    bearing = rng.uniform(0.0, 2 * math.pi, size=n)
    en = np.stack([center_m[0] + r * np.sin(bearing), center_m[1] + r * np.cos(bearing)],
                  axis=-1)
    return en, bearing
