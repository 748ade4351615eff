from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.geo import Origin, height_above_origin_m
from skyfence.sim.motion import (
    GRAVITY_MPS2,
    HeightProfile,
    MultirotorModel,
    TargetStates,
    TurnModel,
    TurnPolicy,
    lift,
    sample,
    wrap_pi,
)

ORIGIN = Origin(lat_deg=47.45, lon_deg=8.56, alt_m=480.0)
DEG = math.pi / 180.0


@given(st.floats(-100.0, 100.0))
def test_wrap_pi_range_and_equivalence(a: float) -> None:
    w = float(wrap_pi(np.array(a)))
    assert -math.pi < w <= math.pi
    assert math.isclose(math.cos(w), math.cos(a), abs_tol=1e-9)
    assert math.isclose(math.sin(w), math.sin(a), abs_tol=1e-9)


@settings(max_examples=50)
@given(st.floats(-100_000, 100_000), st.floats(-100_000, 100_000), st.floats(0.0, 12_000))
def test_lift_sets_height_above_ground(e: float, n: float, h: float) -> None:
    pos, _ = lift(ORIGIN, np.array([[e, n, h]]), np.zeros((1, 3)))
    assert abs(height_above_origin_m(ORIGIN, pos)[0] - h) < 1e-4
    # The horizontal position moves only along the normal, tilted by d/R from the
    # ENU up, from the plane down to the ground (d²/2R) and up to the height.
    d, r = math.hypot(e, n), 6.3e6
    shift = 1.05 * (d / r) * (h + d * d / (2 * r)) + 1e-6
    assert np.hypot(pos[0, 0] - e, pos[0, 1] - n) <= shift


def test_lift_at_origin_is_identity_and_up_differs_far_away() -> None:
    pos, _ = lift(ORIGIN, np.array([[0.0, 0.0, 50.0], [60_000.0, 0.0, 50.0]]), np.zeros((2, 3)))
    np.testing.assert_allclose(pos[0], [0.0, 0.0, 50.0], atol=1e-6)
    # 60 km out the ground is ~280 m below the ENU plane.
    assert pos[1, 2] < -200.0


def test_lift_velocity_is_the_derivative_of_position() -> None:
    t = np.linspace(0.0, 10.0, 101)
    ground = np.stack([50_000 + 250 * t, 20_000 + 30 * t, 60 + 2 * t], axis=-1)
    rate = np.broadcast_to([250.0, 30.0, 2.0], ground.shape)
    pos, vel = lift(ORIGIN, ground, rate)
    fd = np.gradient(pos, t, axis=0)
    np.testing.assert_allclose(vel[1:-1], fd[1:-1], atol=2e-3)


def _turner(policy: TurnPolicy, n: int = 50, seed: int = 1, speed: float = 40.0) -> TurnModel:
    rng = np.random.default_rng(seed)
    height = HeightProfile(np.full(n, 100.0), np.zeros(n), np.full(n, 60.0), np.zeros(n))
    return TurnModel(rng, east_m=np.zeros(n), north_m=np.zeros(n),
                     heading_rad=rng.uniform(0, 2 * math.pi, n), speed_mps=np.full(n, speed),
                     height=height, policy=policy)


POLICY = TurnPolicy(gap_s=(2.0, 8.0), angle_rad=(30 * DEG, 150 * DEG),
                    bank_rad=(15 * DEG, 35 * DEG))


def test_turn_model_keeps_speed_and_turns_within_bank_limit() -> None:
    t = np.arange(0.0, 60.0, 0.1)
    ground, rate, psi, omega = sample(_turner(POLICY), t)
    speed = np.linalg.norm(rate[..., :2], axis=-1)
    np.testing.assert_allclose(speed, 40.0, rtol=1e-12)
    assert np.all(np.abs(omega) <= GRAVITY_MPS2 * math.tan(35 * DEG) / 40.0 + 1e-12)
    assert np.all((psi >= 0) & (psi < 2 * math.pi))
    assert np.mean(omega != 0) > 0.2  # it does turn
    # Heading follows the turn rate, and velocity the heading.
    dpsi = wrap_pi(np.diff(psi, axis=0))
    np.testing.assert_allclose(dpsi, omega[:-1] * 0.1, atol=1e-9)
    np.testing.assert_allclose(rate[..., 0], 40.0 * np.sin(psi), atol=1e-9)
    # Continuous: each step moves by at most speed·dt (a chord is shorter than the arc).
    step = np.linalg.norm(np.diff(ground[..., :2], axis=0), axis=-1)
    assert np.all(step <= 40.0 * 0.1 + 1e-9)


def test_samples_do_not_depend_on_when_they_are_taken() -> None:
    coarse = np.arange(0.0, 30.0, 1.0)
    fine = np.sort(np.concatenate([coarse, np.arange(0.05, 30.0, 0.37)]))
    a = sample(_turner(POLICY), coarse)
    b = sample(_turner(POLICY), fine)
    rows = np.searchsorted(fine, coarse)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y[rows], atol=1e-9)


def test_keep_in_circle_brings_aircraft_back() -> None:
    policy = TurnPolicy(gap_s=(1000.0, 1000.0), angle_rad=(0.1, 0.2),
                        bank_rad=(20 * DEG, 30 * DEG), keep_in_radius_m=1_000.0)
    ground, _, _, _ = sample(_turner(policy, speed=30.0), np.arange(0.0, 300.0, 1.0))
    r = np.hypot(ground[..., 0], ground[..., 1])
    # Turn radius at 30 m/s and 30° bank is ~160 m; the jitter adds a little.
    assert r.max() < 1_000.0 + 3 * 160.0


def test_multirotors_hover_and_stay_within_limits() -> None:
    rng = np.random.default_rng(4)
    n = 100
    lo, hi = np.array([-1000.0, -1000.0, 30.0]), np.array([1000.0, 1000.0, 150.0])
    start = lo + rng.random((n, 3)) * (hi - lo)
    model = MultirotorModel(rng, start=start, box_lo=lo, box_hi=hi)
    t = np.arange(0.0, 120.0, 0.5)
    ground, rate = sample(model, t)
    speed = np.linalg.norm(rate, axis=-1)
    assert speed.max() <= 25.0 + 1e-9
    assert speed.max() > 15.0
    accel = np.linalg.norm(np.diff(rate, axis=0), axis=-1) / 0.5
    assert accel.max() <= 4.0 + 1e-9
    assert np.mean(speed < 0.2) > 0.02  # hovering happens
    assert np.all(np.abs(rate[..., 2]) <= 5.0 + 1e-9)
    assert ground[..., 2].min() > 25.0 and ground[..., 2].max() < 155.0
    # Position integrates velocity.
    mid = 0.5 * (rate[1:] + rate[:-1]) * 0.5
    np.testing.assert_allclose(np.diff(ground, axis=0), mid, atol=0.3)


def test_height_profile_stays_within_bounds() -> None:
    rng = np.random.default_rng(0)
    prof = HeightProfile.draw(rng, 500, height_m=(30.0, 100.0), amp_m=(0.0, 50.0),
                              period_s=(10.0, 20.0))
    hs = np.stack([prof.at(t)[0] for t in np.linspace(0, 40, 400)])
    assert hs.min() >= 30.0 - 1e-9 and hs.max() <= 100.0 + 1e-9


def test_target_states_concat_and_shape_check() -> None:
    a = TargetStates(np.zeros((4, 2, 3)), np.zeros((4, 2, 3)), np.ones((4, 2), dtype=bool))
    b = TargetStates(np.ones((4, 3, 3)), np.ones((4, 3, 3)), np.zeros((4, 3), dtype=bool))
    c = TargetStates.concat([a, b], 4)
    assert c.n_targets == 5 and c.alive[:, :2].all() and not c.alive[:, 2:].any()
    assert TargetStates.concat([], 4).pos.shape == (4, 0, 3)
    try:
        TargetStates(np.zeros((4, 2, 3)), np.zeros((4, 1, 3)), np.ones((4, 2), dtype=bool))
    except ValueError:
        pass
    else:
        raise AssertionError("shape mismatch not caught")
