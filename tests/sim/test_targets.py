from __future__ import annotations

import math

import numpy as np

from skyfence.geo import Origin, height_above_origin_m
from skyfence.sim.motion import GRAVITY_MPS2
from skyfence.sim.targets import (
    AIRLINER,
    FAST_LOW_FLYER,
    FIXED_WING,
    aircraft,
    multirotors,
    on_ring,
)

ORIGIN = Origin(lat_deg=47.45, lon_deg=8.56, alt_m=480.0)
TIMES = np.arange(0.0, 120.0, 1.0)


def _heading(vel: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.arctan2(vel[..., 0], vel[..., 1])
    return out


def test_fast_low_flyers_speed_height_and_banked_turns() -> None:
    rng = np.random.default_rng(7)
    # Far out, where ENU up is far from height above ground.
    start, _ = on_ring(rng, 40, (40_000.0, 60_000.0))
    s = aircraft(ORIGIN, TIMES, rng, FAST_LOW_FLYER, start_en_m=start)
    speed = np.linalg.norm(s.vel, axis=-1)
    assert speed.min() >= 200.0 - 0.05 and speed.max() <= 280.0 + 0.05
    h = height_above_origin_m(ORIGIN, s.pos)
    assert h.min() >= 30.0 - 0.01 and h.max() <= 100.0 + 0.01
    assert s.pos[0, :, 2].max() < 0.0  # raw ENU up: below the tangent plane out there
    # Course changes happen, as turns no sharper than a 60° bank allows.
    turn = np.abs(np.remainder(np.diff(_heading(s.vel), axis=0) + math.pi, 2 * math.pi)
                  - math.pi)
    assert np.mean(turn > 0.01) > 0.1
    max_rate = GRAVITY_MPS2 * math.tan(math.radians(60)) / speed[:-1]
    assert np.all(turn <= max_rate * 1.0 + 1e-4)
    # No teleports: each second it moves by its speed.
    step = np.linalg.norm(np.diff(s.pos, axis=0), axis=-1)
    assert np.all(step <= speed[:-1] * 1.0 + 1.0)


def test_fixed_wing_and_airliner_envelopes() -> None:
    rng = np.random.default_rng(2)
    for cls in (FIXED_WING, AIRLINER):
        start, _ = on_ring(rng, 30, (0.0, 20_000.0))
        s = aircraft(ORIGIN, TIMES, rng, cls, start_en_m=start)
        speed = np.linalg.norm(s.vel, axis=-1)
        lo, hi = cls.speed_mps
        assert speed.min() >= lo - 0.5 and speed.max() <= hi + 0.5
        h = height_above_origin_m(ORIGIN, s.pos)
        assert h.min() >= cls.height_m[0] - 0.01 and h.max() <= cls.height_m[1] + 0.01


def test_course_anchored_aircraft_stay_near_their_course() -> None:
    rng = np.random.default_rng(3)
    start, bearing = on_ring(rng, 20, (60_000.0, 60_000.0))
    course = bearing + math.pi
    s = aircraft(ORIGIN, TIMES, rng, FAST_LOW_FLYER, start_en_m=start, course_rad=course)
    off = np.remainder(_heading(s.vel) - course + math.pi, 2 * math.pi) - math.pi
    assert np.abs(off).max() < math.radians(25)
    r = np.hypot(s.pos[..., 0], s.pos[..., 1])
    assert np.all(r[-1] < r[0] - 20_000.0)


def test_multirotors_in_box() -> None:
    rng = np.random.default_rng(1)
    lo, hi = np.array([-500.0, -500.0, 30.0]), np.array([500.0, 500.0, 150.0])
    start = lo + rng.random((50, 3)) * (hi - lo)
    s = multirotors(ORIGIN, TIMES, rng, start=start, box_lo=lo, box_hi=hi)
    assert np.linalg.norm(s.vel, axis=-1).max() <= 25.0 + 1e-3
    assert np.abs(s.pos[..., :2]).max() < 520.0
    h = height_above_origin_m(ORIGIN, s.pos)
    assert h.min() > 25.0 and h.max() < 155.0
