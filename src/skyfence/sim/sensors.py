"""Scan schedules, and every sensor of a scenario observing the targets.

Each scan is a snapshot: all its detections carry the scan time. Sensor ``i`` scans at
``start + scan_offset_s + k · period`` for every k with the time before the end, where
the period is the sensor's ``scan_period_s`` or else the scenario's and the offset is
``extra["scan_offset_s"]`` (0 if absent). Times are rounded to the microsecond, so
that they survive the CSV files (truth.csv keeps six decimals) exactly.

Kinds: ``radar`` and ``radar2d`` (:mod:`skyfence.sim.radar`), ``bearing``
(:mod:`skyfence.sim.bearing`), ``position`` (:mod:`skyfence.sim.position`) and
``cooperative`` (:mod:`skyfence.sim.cooperative`). Each sensor draws from its own
stream, ``sensor/<id>``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from skyfence.geo import Origin
from skyfence.scenario import Scenario, SensorSpec
from skyfence.sim import bearing, cooperative, position, radar
from skyfence.sim.cooperative import Transmitters
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


def in_cover(
    origin: Origin,
    sensor: SensorSpec,
    enu_m: F64,
    *,
    emits_rf: NDArray[np.bool_] | None = None,
    transmits: NDArray[np.bool_] | None = None,
) -> NDArray[np.bool_]:
    """(n,) which targets at ENU positions (n, 3) the sensor could detect (ignoring pd).

    ``emits_rf`` (n,): which emit a drone radio link (RF direction finders; None: all);
    ``transmits`` (n,): which carry a transmitter this sensor hears (cooperative
    sensors; None: all).
    """
    if sensor.kind in ("radar", "radar2d"):
        return radar.detectable(origin, sensor, enu_m)
    if sensor.kind == "bearing":
        return bearing.detectable(origin, sensor, enu_m, emits_rf)
    if sensor.kind == "position":
        return position.detectable(sensor, enu_m)
    if sensor.kind == "cooperative":
        out: NDArray[np.bool_] = radar.detectable(origin, sensor, enu_m)
        return out if transmits is None else out & transmits
    raise ValueError(f"sensor {sensor.id!r}: unknown kind {sensor.kind!r}")


def observe(
    scenario: Scenario,
    times_s: F64,
    states: TargetStates,
    target_ids: NDArray[np.int64],
    scans: tuple[F64, ...],
    seed: int,
    *,
    emits_rf: NDArray[np.bool_] | None = None,
    transmitters: Transmitters | None = None,
) -> tuple[Detections, NDArray[np.int64]]:
    """All sensors' detections of ``states`` (sampled at ``times_s``).

    ``scans[i]`` are sensor i's scan times (each one of ``times_s``). ``emits_rf``
    (N,), aligned with ``target_ids``, says which targets an RF direction finder can
    locate (None: every target); ``transmitters`` are the targets that report to
    cooperative sensors (None: none do). Returns the detections sorted by time, then
    sensor (in random order within a scan), and the target id behind each detection
    (-1 for clutter).
    """
    tx = Transmitters.none() if transmitters is None else transmitters
    column = {int(t): k for k, t in enumerate(target_ids)}
    unknown = [int(t) for t in tx.target if int(t) not in column]
    if unknown:
        raise ValueError(f"transmitters of unknown targets {unknown}")
    tx_column = np.array([column[int(t)] for t in tx.target], dtype=np.intp)
    t_parts: list[F64] = []
    s_parts: list[NDArray[np.int32]] = []
    z_parts: list[F64] = []
    r_parts: list[F64] = []
    id_parts: list[NDArray[np.str_]] = []
    cat_parts: list[NDArray[np.str_]] = []
    who_parts: list[NDArray[np.int64]] = []
    for i, sensor in enumerate(scenario.sensors):
        rng = stream(seed, f"sensor/{sensor.id}")
        rows = np.searchsorted(times_s, scans[i])
        alive = states.alive[rows]  # (scans, N)
        # Cover of every live target at every scan at once: it draws nothing.
        cover = np.zeros(alive.shape, dtype=bool)
        si, ni = np.nonzero(alive)
        if si.size:
            cover[si, ni] = in_cover(scenario.origin, sensor, states.pos[rows[si], ni],
                                     emits_rf=None if emits_rf is None else emits_rf[ni])
        heard = (np.flatnonzero(tx.received_by(sensor)) if sensor.kind == "cooperative"
                 else np.empty(0, dtype=np.intp))
        for k_scan, (t, row) in enumerate(zip(scans[i], rows, strict=True)):
            if sensor.kind == "cooperative":
                on = heard[alive[k_scan, tx_column[heard]]]
                cols = tx_column[on]
                z, r, k = cooperative.scan(scenario.origin, sensor, states.pos[row, cols],
                                           tx.take(on), rng, visible=cover[k_scan, cols])
                who = target_ids[cols[k]]
                t_parts.append(np.full(who.size, t))
                s_parts.append(np.full(who.size, i, dtype=np.int32))
                z_parts.append(z)
                r_parts.append(r)
                id_parts.append(tx.identity[on[k]])
                cat_parts.append(tx.category[on[k]])
                who_parts.append(who)
                continue
            live = np.flatnonzero(alive[k_scan])
            pos = states.pos[row, live]
            visible = cover[k_scan, live]
            if sensor.kind in ("radar", "radar2d"):
                z, who = radar.scan(scenario.origin, sensor, pos, scenario.region, rng,
                                    visible=visible)
            elif sensor.kind == "bearing":
                z, who = bearing.scan(scenario.origin, sensor, pos, rng, visible=visible)
            elif sensor.kind == "position":
                z, who = position.scan(sensor, pos, scenario.region, rng, visible=visible)
            else:
                raise ValueError(f"sensor {sensor.id!r}: unknown kind {sensor.kind!r}")
            t_parts.append(np.full(who.size, t))
            s_parts.append(np.full(who.size, i, dtype=np.int32))
            z_parts.append(z)
            r_parts.append(np.broadcast_to(sensor.R, (who.size, 3, 3)))
            id_parts.append(np.full(who.size, "", dtype=np.str_))
            cat_parts.append(np.full(who.size, "", dtype=np.str_))
            who_parts.append(np.where(who >= 0, target_ids[live][np.maximum(who, 0)], -1)
                             if live.size else who)
    if not t_parts:
        return Detections.empty(), np.empty(0, dtype=np.int64)
    t = np.concatenate(t_parts)
    sensor_index = np.concatenate(s_parts)
    order = np.lexsort((sensor_index, t))  # stable: keeps the shuffled order within a scan
    det = Detections(t=t[order], sensor=sensor_index[order],
                     z=np.concatenate(z_parts)[order], R=np.concatenate(r_parts)[order],
                     identity=np.concatenate(id_parts)[order],
                     category=np.concatenate(cat_parts)[order])
    return det, np.concatenate(who_parts)[order]
