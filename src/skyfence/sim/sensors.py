"""Scan schedules, and every sensor of a scenario observing the targets.

Each scan is a snapshot: all its detections carry the scan time. Sensor ``i`` scans at
``start + scan_offset_s + k · period`` for every k with the time before the end, where
the period is the sensor's ``scan_period_s`` or else the scenario's and the offset is
``extra["scan_offset_s"]`` (0 if absent). Times are rounded to the microsecond, so
that they survive the CSV files (truth.csv keeps six decimals) exactly.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from skyfence.scenario import Scenario, SensorSpec
from skyfence.sim import position, radar
from skyfence.sim.motion import TargetStates
from skyfence.sim.seeding import stream
from skyfence.types import F64, Detections


def canonical_time(t_s: float) -> float:
    """``t_s`` rounded to the microsecond, as the float its 6-decimal text parses to."""
    return float(f"{t_s:.6f}")


def scan_period_s(scenario: Scenario, sensor: SensorSpec) -> float:
    period = sensor.scan_period_s if sensor.scan_period_s is not None else scenario.scan_period_s
    if period is None or not period > 0:
        raise ValueError(f"sensor {sensor.id!r} has no scan period, nor has the scenario")
    return float(period)


def scan_times(scenario: Scenario, sensor: SensorSpec, *, start_s: float,
               duration_s: float) -> F64:
    """Epoch seconds of the sensor's scans in [start_s, start_s + duration_s)."""
    period = scan_period_s(scenario, sensor)
    offset = float(sensor.extra.get("scan_offset_s", 0.0))
    n = max(0, math.ceil((duration_s - offset) / period - 1e-9))
    return np.array([canonical_time(start_s + offset + k * period) for k in range(n)])


def observe(
    scenario: Scenario,
    times_s: F64,
    states: TargetStates,
    target_ids: NDArray[np.int64],
    scans: tuple[F64, ...],
    seed: int,
) -> tuple[Detections, NDArray[np.int64]]:
    """All sensors' detections of ``states`` (sampled at ``times_s``).

    ``scans[i]`` are sensor i's scan times (each one of ``times_s``). Returns the
    detections sorted by time, then sensor (in random order within a scan), and the
    target id behind each detection (-1 for clutter).
    """
    t_parts: list[F64] = []
    s_parts: list[NDArray[np.int32]] = []
    z_parts: list[F64] = []
    who_parts: list[NDArray[np.int64]] = []
    for i, sensor in enumerate(scenario.sensors):
        rng = stream(seed, f"sensor/{sensor.id}")
        rows = np.searchsorted(times_s, scans[i])
        for t, row in zip(scans[i], rows, strict=True):
            alive = np.flatnonzero(states.alive[row])
            pos = states.pos[row, alive]
            if sensor.kind == "radar":
                z, who = radar.scan(scenario.origin, sensor, pos, scenario.region, rng)
            elif sensor.kind == "position":
                z, who = position.scan(sensor, pos, scenario.region, rng)
            else:
                raise ValueError(f"sensor {sensor.id!r}: unknown kind {sensor.kind!r}")
            t_parts.append(np.full(who.size, t))
            s_parts.append(np.full(who.size, i, dtype=np.int32))
            z_parts.append(z)
            who_parts.append(np.where(who >= 0, target_ids[alive][np.maximum(who, 0)], -1)
                             if alive.size else who)
    if not t_parts:
        return Detections.empty(), np.empty(0, dtype=np.int64)
    t = np.concatenate(t_parts)
    sensor_index = np.concatenate(s_parts)
    order = np.lexsort((sensor_index, t))  # stable: keeps the shuffled order within a scan
    r_all = np.stack([s.R for s in scenario.sensors])
    det = Detections(t=t[order], sensor=sensor_index[order],
                     z=np.concatenate(z_parts)[order], R=r_all[sensor_index[order]])
    return det, np.concatenate(who_parts)[order]
