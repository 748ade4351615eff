"""Stone Soup's standard multi-target tracker on a skyfence scenario, wired as its tutorials do.

Pipeline (Stone Soup 1.9.1):

- state ``[e, ve, n, vn, u, vu]`` (Stone Soup's x, y, z = our east, north, up);
- ``CombinedLinearGaussianTransitionModel`` of three ``ConstantVelocity(q)``, one per axis,
  ``KalmanPredictor``;
- radar: ``CartesianToElevationBearingRange`` (``translation_offset`` = sensor position);
  position sensor: ``LinearGaussian`` on (e, n, u). Each detection carries its sensor's model,
  and one ``ExtendedKalmanUpdater`` serves both: for a ``LinearModel`` it takes the model
  matrix as is, which is exactly ``KalmanUpdater``;
- ``DistanceHypothesiser`` with ``Mahalanobis`` and ``missed_distance`` = √χ²₃(gate);
- ``GNNWith2DAssignment``, in Stone Soup's k-d tree form ``DetectionKDTreeGNN2D`` when every
  sensor of the scenario shares one measurement model. The tree only skips pairs that the
  Mahalanobis gate would reject (see ``tree_multiplier``), so the tracks are the same as the
  plain associator's (``bench/test_stonesoup_runner.py`` checks it); without it a scan at
  N = 1,000 takes minutes, as every track is hypothesised against every detection;
- ``MultiMeasurementInitiator`` (own GNN associator and ``UpdateTimeDeleter``);
- ``UpdateTimeDeleter`` on confirmed tracks; ``MultiTargetTracker`` driven push-style
  with ``update_tracker(time, detections)``.

Stone Soup has no per-scenario adaptation, so the tuning below is one set of values for
every scenario; only the deletion times scale with the sensors' scan period, as anyone
configuring the tracker for a given sensor would set them.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
from scipy.stats import chi2
from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
from stonesoup.dataassociator.tree import DetectionKDTreeGNN2D
from stonesoup.deleter.time import UpdateTimeDeleter
from stonesoup.hypothesiser.distance import DistanceHypothesiser
from stonesoup.initiator.simple import MultiMeasurementInitiator
from stonesoup.measures import Mahalanobis
from stonesoup.models.measurement.base import MeasurementModel
from stonesoup.models.measurement.linear import LinearGaussian
from stonesoup.models.measurement.nonlinear import CartesianToElevationBearingRange
from stonesoup.models.transition.linear import (
    CombinedLinearGaussianTransitionModel,
    ConstantVelocity,
)
from stonesoup.predictor.kalman import KalmanPredictor
from stonesoup.tracker.simple import MultiTargetTracker
from stonesoup.types.angle import Bearing, Elevation
from stonesoup.types.detection import Detection
from stonesoup.types.state import GaussianState, StateVector
from stonesoup.types.update import Update
from stonesoup.updater.kalman import ExtendedKalmanUpdater

from harness import Snapshot, split_batches
from skyfence.scenario import Scenario, SensorSpec
from skyfence.types import F64, Detections

#: ConstantVelocity noise diffusion coefficient, m²/s³, on every axis. √(q/T) ≈ 2.2 m/s²
#: of unmodelled acceleration over a 1 s scan: drones and light aircraft turning gently.
PROCESS_NOISE_M2_S3 = 5.0
#: Gate probability; Stone Soup's gate is ``missed_distance`` in Mahalanobis units (not squared).
GATE_PROBABILITY = 0.999
#: Velocity prior of a new track (1σ), m/s: horizontal covers fast drones, vertical climbs.
PRIOR_SPEED_STD_MPS = (40.0, 40.0, 10.0)
#: Updates needed before a held track is released as confirmed.
MIN_POINTS = 3
#: A confirmed track goes after this many scan periods without an update (pd 0.9: 3 misses ≈ 1e-3).
DELETE_AFTER_SCANS = 3.5
#: A held (tentative) track goes after this many scan periods without one: one miss allowed.
HOLD_DELETE_AFTER_SCANS = 2.5
#: Scan period assumed when the scenario states none, s.
DEFAULT_SCAN_PERIOD_S = 1.0

#: Our state (e, n, u, ve, vn, vu) from Stone Soup's (e, ve, n, vn, u, vu).
FROM_STONESOUP = (0, 2, 4, 1, 3, 5)
POSITION_MAPPING = (0, 2, 4)


def wiring() -> str:
    """One line saying how the tracker is set up, for the results table."""
    return (f"CV ×3 (q = {PROCESS_NOISE_M2_S3:g} m²/s³), KalmanPredictor, ExtendedKalmanUpdater "
            f"(radar: CartesianToElevationBearingRange; position: LinearGaussian), "
            f"DistanceHypothesiser(Mahalanobis, gate χ²₃ {GATE_PROBABILITY:g}), "
            f"GNNWith2DAssignment (as DetectionKDTreeGNN2D, exact), "
            f"MultiMeasurementInitiator(min_points={MIN_POINTS}, "
            f"held tracks deleted after {HOLD_DELETE_AFTER_SCANS:g} scans without update), "
            f"UpdateTimeDeleter({DELETE_AFTER_SCANS:g} scans), MultiTargetTracker")


def radar_to_stonesoup(z: F64) -> F64:
    """Our (range_m, azimuth_rad, elevation_rad) rows (n, 3) → Stone Soup's (el, bearing, r).

    Our azimuth is clockwise from north, atan2(east, north); Stone Soup's bearing is
    counter-clockwise from the x (east) axis, atan2(north, east); so bearing = π/2 − azimuth,
    wrapped into [−π, π). Both elevations are up from the horizontal plane, asin(up / range)
    (Stone Soup's ``cart2sphere``), so elevation is unchanged.
    """
    bearing = (math.pi / 2 - z[:, 1] + math.pi) % (2 * math.pi) - math.pi
    return np.stack([z[:, 2], bearing, z[:, 0]], axis=1)


def measurement_model(sensor: SensorSpec) -> MeasurementModel:
    if sensor.kind == "radar":
        r_std, az_std, el_std = sensor.noise_std
        # The bearing variance is the azimuth variance: the conversion is affine with slope −1.
        return CartesianToElevationBearingRange(
            ndim_state=6, mapping=POSITION_MAPPING,
            noise_covar=np.diag([el_std**2, az_std**2, r_std**2]),
            translation_offset=StateVector(list(sensor.position_enu_m)),
        )
    return LinearGaussian(ndim_state=6, mapping=POSITION_MAPPING, noise_covar=sensor.R)


def scan_period_s(scenario: Scenario) -> float:
    periods = [s.scan_period_s for s in scenario.sensors if s.scan_period_s is not None]
    if periods:
        return max(periods)
    return scenario.scan_period_s or DEFAULT_SCAN_PERIOD_S


def tree_multiplier(scenario: Scenario, gate_d2: float) -> float | None:
    """``max_distance_covariance_multiplier`` that keeps every gated pair, or None (no tree).

    Stone Soup's tree searches, around each track's predicted measurement, a Euclidean
    radius of (largest diagonal entry s of the innovation covariance S) × multiplier, in
    the measurement space. A pair inside the Mahalanobis gate g (``gate_d2``) is within √(g·λmax(S))
    ≤ √(g·d·s) of it (d components): the range (or position) part, in metres. For a
    radar the two angles add at most π and 2π radians (bearings are not wrapped in the
    tree). So multiplier·s ≥ √(g·d·s) + 3π must hold for every s ≥ s_min, the smallest
    measurement-noise variance on a metre axis; the left side grows faster than the
    right, so s = s_min is the worst case. One model for all detections is a condition
    of the tree; a scenario with several sensors goes without it.
    """
    if len(scenario.sensors) != 1:
        return None
    sensor = scenario.sensors[0]
    if sensor.kind == "radar":
        s_min, d, angles = sensor.noise_std[0] ** 2, 1, 3 * math.pi
    else:
        s_min, d, angles = min(sensor.noise_std) ** 2, 3, 0.0
    return 1.01 * (math.sqrt(gate_d2 * d * s_min) + angles) / s_min


def build_tracker(scenario: Scenario, *, use_tree: bool = True) -> MultiTargetTracker:
    period = scan_period_s(scenario)
    transition = CombinedLinearGaussianTransitionModel(
        [ConstantVelocity(PROCESS_NOISE_M2_S3) for _ in range(3)])
    predictor = KalmanPredictor(transition)
    updater = ExtendedKalmanUpdater(measurement_model=None)
    gate = math.sqrt(chi2.ppf(GATE_PROBABILITY, df=3))
    multiplier = tree_multiplier(scenario, gate**2) if use_tree else None

    def associator() -> GNNWith2DAssignment:
        hypothesiser = DistanceHypothesiser(
            predictor, updater, measure=Mahalanobis(), missed_distance=gate)
        if multiplier is None:
            return GNNWith2DAssignment(hypothesiser)
        return DetectionKDTreeGNN2D(hypothesiser, predictor=predictor, updater=updater,
                                    max_distance_covariance_multiplier=multiplier)

    v_var = np.square(PRIOR_SPEED_STD_MPS)
    prior = GaussianState(np.zeros((6, 1)), np.diag([0, v_var[0], 0, v_var[1], 0, v_var[2]]))
    initiator = MultiMeasurementInitiator(
        prior_state=prior,
        deleter=UpdateTimeDeleter(timedelta(seconds=HOLD_DELETE_AFTER_SCANS * period)),
        data_associator=associator(), updater=updater, min_points=MIN_POINTS,
    )
    return MultiTargetTracker(
        initiator=initiator,
        deleter=UpdateTimeDeleter(timedelta(seconds=DELETE_AFTER_SCANS * period)),
        detector=None, data_associator=associator(), updater=updater,
    )


def to_stonesoup(scenario: Scenario, batch: Detections,
                 models: list[MeasurementModel]) -> set[Detection]:
    """One batch as Stone Soup detections, each carrying its sensor's measurement model."""
    is_radar = np.array([s.kind == "radar" for s in scenario.sensors])[batch.sensor]
    z = batch.z.copy()
    if is_radar.any():
        z[is_radar] = radar_to_stonesoup(batch.z[is_radar])
    when = datetime.fromtimestamp(float(batch.t[0]), tz=UTC)
    out = set()
    for zi, radar, s in zip(z, is_radar, batch.sensor, strict=True):
        # Typed angles make Stone Soup wrap bearing residuals across ±π.
        sv = (StateVector([Elevation(zi[0]), Bearing(zi[1]), zi[2]]) if radar
              else StateVector(list(zi)))
        out.add(Detection(sv, timestamp=when, measurement_model=models[int(s)]))
    return out


class StoneSoupRunner:
    """Stone Soup's tracker behind the benchmark's ``step`` / ``snapshot`` verbs."""

    def __init__(self, scenario: Scenario, det: Detections, *, use_tree: bool = True) -> None:
        batches = split_batches(det)
        self.times: F64 = np.array([b.t[0] for b in batches])
        self.sizes = np.array([len(b) for b in batches], dtype=np.intp)
        # Building Stone Soup objects is its reader's job: done here, outside the timing.
        models = [measurement_model(s) for s in scenario.sensors]
        self._batches = [to_stonesoup(scenario, b, models) for b in batches]
        self._tracker = build_tracker(scenario, use_tree=use_tree)
        self._ids: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._batches)

    def step(self, k: int) -> None:
        detections = self._batches[k]
        when = datetime.fromtimestamp(float(self.times[k]), tz=UTC)
        self._tracker.update_tracker(when, detections)

    def snapshot(self) -> Snapshot:
        tracks = list(self._tracker.tracks)
        ids = np.array([self._ids.setdefault(t.id, len(self._ids)) for t in tracks],
                       dtype=np.int64)
        x = np.array([np.asarray(t.state_vector, dtype=np.float64).ravel()[list(FROM_STONESOUP)]
                      for t in tracks]).reshape(-1, 6)
        # Every track the tracker holds is confirmed (the initiator keeps the tentative
        # ones); one whose last state is a prediction was missed: coasting.
        status = np.array([1 if isinstance(t.state, Update) else 2 for t in tracks],
                          dtype=np.int8)
        return Snapshot(id=ids, x=x, status=status)
