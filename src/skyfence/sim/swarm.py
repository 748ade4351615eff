"""Swarms: drones in formation behind a virtual leader, able to split in two.

The formation is a jittered grid with 10–50 m between neighbours, fixed in the ENU
axes (it keeps its shape and every drone flies the leader's velocity). At the split
time the two halves (left and right columns) follow two copies of the leader that
turn away from each other and then hold their new courses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from skyfence.geo import Origin
from skyfence.sim.motion import HeightProfile, TargetStates, TurnModel, TurnPolicy, lift, sample
from skyfence.types import F64

DEG = math.pi / 180.0

#: Gentle course changes of a swarm leader around its base course.
LEADER_POLICY = TurnPolicy(
    gap_s=(10.0, 30.0), angle_rad=(5 * DEG, 20 * DEG), bank_rad=(5 * DEG, 15 * DEG),
    course_spread_rad=15 * DEG,
)
#: Bank of the turn that separates the two halves at a split.
SPLIT_BANK_RAD = 20 * DEG
#: Horizontal jitter of a drone around its grid point, as a fraction of the spacing:
#: with spacing in [15, 30] m neighbours stay 0.7·15 ≥ 10 m and ≤ 1.34·30 + 10 < 50 m apart.
JITTER = 0.15
VERTICAL_JITTER_M = 5.0


@dataclass(frozen=True, slots=True)
class SwarmTruth:
    """A swarm's drones and which half each joins at the split (0 left, 1 right)."""

    states: TargetStates
    branch: NDArray[np.int8]
    spacing_m: float


def formation(rng: np.random.Generator, n: int, spacing_m: float) -> tuple[F64, NDArray[np.int8]]:
    """Body-frame offsets (n, 3: forward, right, up, metres) centred on the leader,
    and the half (0 left, 1 right) of each drone."""
    cols = max(1, math.ceil(math.sqrt(n)))
    k = np.arange(n)
    row, col = k // cols, k % cols
    rows = math.ceil(n / cols)
    forward = -(row - (rows - 1) / 2.0) * spacing_m
    right = (col - (cols - 1) / 2.0) * spacing_m
    jitter = rng.uniform(-JITTER, JITTER, size=(n, 2)) * spacing_m
    up = rng.uniform(-VERTICAL_JITTER_M, VERTICAL_JITTER_M, size=n)
    offsets = np.stack([forward + jitter[:, 0], right + jitter[:, 1], up], axis=-1)
    branch = (col >= cols / 2.0).astype(np.int8) if cols > 1 else (k % 2).astype(np.int8)
    return offsets, branch


class _Leaders:
    """Two copies of the leader: identical until the split, then turning apart."""

    def __init__(self, model: TurnModel, split_s: float, split_angle_rad: float) -> None:
        self.model = model
        self.split_s = split_s
        self.split_angle_rad = split_angle_rad
        self.split = False

    def decide(self, t_s: float) -> None:
        m = self.model
        if not self.split and t_s >= self.split_s:
            self.split = True
            m.group = np.arange(2, dtype=np.int64)
            half = 0.5 * self.split_angle_rad
            goal = m.psi + np.array([-half, half])
            m.command(np.arange(2), goal, np.full(2, SPLIT_BANK_RAD))
            m.course = goal
            turn_s = half / np.abs(m.rate)
            m.next_turn = t_s + turn_s + m.rng.uniform(*m.policy.gap_s, size=2)
        m.decide(t_s)

    def advance(self, t_s: float, h_s: float) -> None:
        self.model.advance(t_s, h_s)

    def peek(self, t_s: float, h_s: float) -> tuple[F64, ...]:
        return self.model.peek(t_s, h_s)


def swarm(
    origin: Origin,
    times_s: F64,
    rng: np.random.Generator,
    *,
    n_drones: int,
    center_en_m: tuple[float, float],
    course_rad: float,
    split_s: float | None,
    speed_mps: tuple[float, float] = (10.0, 18.0),
    height_m: tuple[float, float] = (60.0, 140.0),
    spacing_m: tuple[float, float] = (15.0, 30.0),
    split_angle_rad: tuple[float, float] = (40 * DEG, 90 * DEG),
) -> SwarmTruth:
    """One swarm of ``n_drones`` centred at ``center_en_m`` at the start, flying
    around ``course_rad`` (clockwise from north), splitting at ``split_s`` (seconds
    since the start; None: never)."""
    spacing = float(rng.uniform(*spacing_m))
    offsets, branch = formation(rng, n_drones, spacing)
    psi0 = course_rad
    s, c = math.sin(psi0), math.cos(psi0)
    enu_offsets = np.stack(
        [offsets[:, 0] * s + offsets[:, 1] * c, offsets[:, 0] * c - offsets[:, 1] * s,
         offsets[:, 2]], axis=-1,
    )
    height = HeightProfile.draw(rng, 1, height_m=(height_m[0] + VERTICAL_JITTER_M,
                                                   height_m[1] - VERTICAL_JITTER_M),
                                amp_m=(0.0, 15.0), period_s=(60.0, 240.0))
    both = np.zeros(2, dtype=np.intp)
    first_turn = np.full(2, rng.uniform(*LEADER_POLICY.gap_s))
    model = TurnModel(
        rng, east_m=np.full(2, center_en_m[0]), north_m=np.full(2, center_en_m[1]),
        heading_rad=np.full(2, psi0), speed_mps=np.full(2, rng.uniform(*speed_mps)),
        height=height.take(both), policy=LEADER_POLICY, course_rad=np.full(2, psi0),
        group=np.zeros(2, dtype=np.int64), first_turn_s=first_turn,
    )
    angle = float(rng.uniform(*split_angle_rad))
    leaders = _Leaders(model, math.inf if split_s is None else split_s, angle)
    ground, rate, _, _ = sample(leaders, times_s)
    member_ground = ground[:, branch, :] + enu_offsets
    member_rate = rate[:, branch, :]
    pos, vel = lift(origin, member_ground, member_rate)
    states = TargetStates(pos=pos, vel=vel, alive=np.ones(pos.shape[:2], dtype=bool))
    return SwarmTruth(states=states, branch=branch, spacing_m=spacing)
