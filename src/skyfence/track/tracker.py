"""The multi-target tracker: IMM filters, chi-square gating, GNN assignment, track life.

All per-track data are aligned numpy arrays; one ``step`` is a fixed number of
batched operations whatever the number of tracks or detections.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree
from scipy.special import gammaincinv, log_ndtr, ndtr

from skyfence.errors import SkyfenceError
from skyfence.geo import Origin, height_above_origin_m
from skyfence.scenario import Scenario
from skyfence.track import fused, imm
from skyfence.track.associate import candidate_pairs, gate_components, gnn_assign
from skyfence.track.cluttermap import ClutterMap
from skyfence.track.linalg import inv_logdet, quad_form, symmetrise
from skyfence.track.measurement import MeasurementModel, Radar2DModel, RadarModel, model_for
from skyfence.track.models import STATE_DIM, ModelNoise, cwna_q
from skyfence.track.t2t import covariance_intersection
from skyfence.track.triangulate import triangulate
from skyfence.types import (
    F64,
    Detections,
    PartnerTracks,
    TrackFlag,
    Tracks,
    TrackStatus,
    TrackUpdate,
)

DEFAULT_MODELS = (
    # Cruise or hover: gentle accelerations (σa ≈ 0.7 m/s² over a 1 s scan).
    imm.MotionModel("cv", ModelNoise(q_h_m2ps3=0.5, q_v_m2ps3=0.5, q_omega_rad2ps3=1e-4)),
    # Coordinated turn: a fixed-wing drone banking or an airliner on a standard-rate turn.
    imm.MotionModel("ct", ModelNoise(q_h_m2ps3=2.0, q_v_m2ps3=1.0, q_omega_rad2ps3=5e-3)),
    # Manoeuvre: a multirotor starting or stopping, a fast low flyer jinking.
    imm.MotionModel("cv", ModelNoise(q_h_m2ps3=200.0, q_v_m2ps3=20.0, q_omega_rad2ps3=1e-4)),
)


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Tracker settings. Defaults are meant to work from hovering drones to airliners."""

    models: tuple[imm.MotionModel, ...] = DEFAULT_MODELS
    #: Mean time spent in each IMM mode before switching (s).
    sojourn_s: tuple[float, ...] = (20.0, 10.0, 5.0)
    initial_mode_probabilities: tuple[float, ...] = (0.6, 0.2, 0.2)
    #: Probability that the true detection of a track falls inside its gate.
    gate_probability: float = 0.999
    #: Sequential likelihood-ratio test for tentative tracks (Blackman & Popoli): the
    #: probability of confirming a false track, and of dropping a true one.
    false_track_probability: float = 1e-5
    true_track_drop_probability: float = 0.1
    #: A tentative track not confirmed after this many looks is dropped.
    max_tentative_looks: int = 10
    #: Smoothing of each sensor's clutter-rate estimate, per scan.
    clutter_smoothing: float = 0.1
    #: Radars learn where in their cover clutter falls (see track.cluttermap) from the
    #: plots that started tracks that were never confirmed, and a new track's score
    #: weighs its plots against the density there (never below the uniform density):
    #: the share of the map forgotten per scan, and its prior, in plots spread evenly.
    clutter_map: bool = True
    clutter_map_forgetting: float = 0.01
    clutter_map_prior_plots: float = 50.0
    #: Delete after this many consecutive missed looks (tentative, confirmed).
    max_misses_tentative: int = 2
    max_misses_confirmed: int = 4
    #: A confirmed track whose score (log-likelihood ratio) has fallen this far below its
    #: peak is deleted: as much evidence against it as its confirmation took for it,
    #: ln((1 − β)/α) with the default track-test probabilities.
    confirmed_fade_score: float = 11.4
    #: Delete when √trace of the position covariance exceeds this (coasting out of cover).
    max_position_std_m: float = 2000.0
    #: Prior on a new track's velocity (east/north, up) and turn rate.
    init_velocity_std_mps: tuple[float, float] = (100.0, 20.0)
    init_turn_rate_std_radps: float = 0.1
    #: A new track with two or more established tracks within this distance starts with
    #: their velocity (a swarm member); its uncertainty is their spread, at least the floor.
    group_radius_m: float = 150.0
    group_velocity_floor_mps: float = 5.0
    #: A track considers at most this many of its nearest detections (a new track in a
    #: swarm of thousands would otherwise weigh every drone inside its wide first gate).
    max_candidates_per_track: int = 16
    #: The same for a lone azimuth (an RF direction finder): it cannot tell apart tracks
    #: along its line, so only its nearest few are worth weighing. (fusion preset, N =
    #: 1,000: GOSPA 1208.2 m with 16, 1200.0 m with 4, at 1.45x the throughput.)
    max_candidates_azimuth_only: int = 4
    #: Association of the sensors that fix a position (radars, position and cooperative
    #: reports): "gnn" (one detection per track, optimal overall), or "jpda": tracks
    #: that share detections with other tracks are updated with every detection in their
    #: gate, weighted by joint association probabilities (Fitzgerald's cheap JPDA).
    association: str = "gnn"
    #: The same for bearing sensors (direction finders, cameras). A line of bearing passes
    #: close to every track along it: two targets a few hundred metres apart seen by
    #: three or four bearing sensors are often fed each other's bearings by one sensor,
    #: and hard assignment then locks both tracks into that swap, each sensor's next scan
    #: confirming it. Weighted updates do not lock in (low_flyer preset, seeds 0-39:
    #: held 95.8 % with "gnn", 96.7 % with "jpda", by bench/fusion.py --low-flyer-seeds).
    bearing_association: str = "jpda"
    #: Process-noise scale per target class (issue of classification sets the class).
    class_q_scale: Mapping[str, float] = field(default_factory=lambda: {"unknown": 1.0})
    #: A track not updated for this long is deleted, in cover or not (a transmitter
    #: that fell silent out of every sensor's cover, a coast through a long gap).
    max_coast_s: float = 30.0
    #: A confirmed track missed ``max_misses_confirmed`` looks running is deleted only
    #: once it has gone this long without an update.
    min_coast_s: float = 3.0
    #: Bearings (which cannot start a track alone) from two sensors at most this far apart
    #: in time are crossed to start one; lines crossing at less than the angle fix no point.
    triangulation_window_s: float = 1.0
    min_crossing_rad: float = 0.1
    #: A crossing counts as inside a sensor's reach when its range less this many σ of
    #: its own error along that sensor's line of sight is.
    triangulation_reach_sigma: float = 3.0
    #: Process noise of tracks measured by bearings alone, as a multiple of the usual.
    bearing_only_q_scale: float = 5.0
    #: Fastest target assumed when crossing bearings taken at different times, m/s.
    max_speed_mps: float = 300.0
    #: Height above the origin a new track takes when no sensor measured one (azimuth-only
    #: direction finders), with its 1σ: where drones and low flyers are.
    assumed_height_m: float = 120.0
    assumed_height_std_m: float = 150.0
    #: Spoofing. A cooperatively reported object is suspect once the looks of sensors that
    #: should see it and did not add up to this evidence, Σ −ln(1 − Pd) (9: four
    #: misses of a Pd 0.9 radar in a row); or once its identity has been reported outside
    #: the gate of the track that carries it for this long.
    spoof_evidence: float = 9.0
    spoof_after_s: float = 3.0
    #: A report within this distance of the track that carries its identity is that
    #: track's, gate or no gate: only claims farther off count against it.
    claim_gate_m: float = 150.0
    #: A track seen only by cooperative reports for this long is flagged cooperative-only.
    cooperative_only_after_s: float = 3.0
    #: A track is an RF emitter while a direction finder has heard it within this long.
    rf_emitter_hold_s: float = 30.0
    #: Chance that a direction finder reports a bearing inside the gate of an object that
    #: does not emit (clutter, an emitter on the same line), for the odds that a track's
    #: object emits; the odds are kept within ±this many nepers so that they can turn.
    rf_stray_probability: float = 0.1
    rf_emitter_max_log_odds: float = 10.0
    #: A sensor that has never seen a track and stayed silent where it may see it weighs
    #: those silences, Σ ln(1 − Pd), against a detection it then makes in the track's gate;
    #: at most this many nepers of them, so that an object that climbs into its view is
    #: still taken up (−9: four silent looks of a Pd 0.9 radar).
    max_silence_evidence: float = 9.0

    def __post_init__(self) -> None:
        k = len(self.models)
        if len(self.sojourn_s) != k or len(self.initial_mode_probabilities) != k:
            raise SkyfenceError("models, sojourn_s and initial_mode_probabilities differ in length")
        probabilities = (self.false_track_probability, self.true_track_drop_probability)
        if not all(0 < p < 0.5 for p in probabilities):
            raise SkyfenceError("track-test probabilities must be in (0, 0.5)")
        for name in ("association", "bearing_association"):
            if getattr(self, name) not in ("gnn", "jpda"):
                raise SkyfenceError(f"{name} must be 'gnn' or 'jpda', "
                                    f"not {getattr(self, name)!r}")
        if not 0.5 < self.gate_probability < 1.0:
            raise SkyfenceError("gate_probability must be in (0.5, 1)")


class OutOfOrderError(SkyfenceError):
    """A batch older than the tracker's current time."""


_LOG_2PI = math.log(2.0 * math.pi)
#: Tracks whose height is more uncertain than this (1σ, m) have their visibility to a
#: sensor that has not seen them yet checked over that uncertainty.
_VISIBILITY_STD_M = 50.0
#: A sensor that sees down to less than this above the ground says nothing about height.
_MIN_CUT_ABOVE_GROUND_M = 10.0
#: Heights (in σ from the mean) at which an uncertain track's visibility is checked, and
#: the normal weights of each.
_HEIGHT_GRID = np.linspace(-3.0, 3.0, 13)
_HEIGHT_WEIGHTS = np.exp(-0.5 * _HEIGHT_GRID**2) / np.exp(-0.5 * _HEIGHT_GRID**2).sum()


def _widen(a: NDArray[np.str_], b: NDArray[np.str_]) -> NDArray[np.str_]:
    """``a`` with a string width that holds ``b``'s values (assignment would truncate)."""
    dtype = np.result_type(a.dtype, b.dtype)
    return a if dtype == a.dtype else a.astype(dtype)


def _bits(sensors: NDArray[np.int32]) -> NDArray[np.uint64]:
    """Source bits of sensor indices (none for indices past 63)."""
    out = np.zeros(sensors.shape, dtype=np.uint64)
    small = sensors < 64
    out[small] = np.left_shift(np.uint64(1), sensors[small].astype(np.uint64))
    return out


class Tracker:
    """Push-style multi-target tracker: ``step(detections) -> TrackUpdate``.

    States live in the scenario's ENU frame; ``sensors`` define the measurement
    model of each ``Detections.sensor`` index. Output depends only on the
    ordered input: detections sharing a time are put in a canonical order first.
    """

    def __init__(self, sensors: Sequence[MeasurementModel], *,
                 config: TrackerConfig | None = None, origin: Origin | None = None) -> None:
        self.config = cfg = config or TrackerConfig()
        self.sensors = tuple(sensors)
        self._k = len(cfg.models)
        self._kinds = np.array([fused.CT if m.kind == "ct" else fused.CV for m in cfg.models])
        fused.warm_up(self._k, tuple(sorted({m.dim for m in self.sensors})),
                      partner_tracks=any(m.partner for m in self.sensors))
        # Chi-square quantile with m degrees of freedom, via the regularised gamma inverse.
        self._gate = {dim: float(2.0 * gammaincinv(dim / 2.0, cfg.gate_probability))
                      for dim in (1, 2, 3)}
        a, b = cfg.false_track_probability, cfg.true_track_drop_probability
        self._confirm_score = math.log((1.0 - b) / a)
        self._drop_score = math.log(b / (1.0 - a))
        # Per sensor: smoothed count of detections not explained by confirmed tracks per
        # scan, and the observed extent of its measurements — together its clutter density.
        self._clutter_count = np.full(len(self.sensors), np.nan)
        self._z_lo = np.full((len(self.sensors), 3), np.inf)
        self._z_hi = np.full((len(self.sensors), 3), -np.inf)
        self._clutter_maps = [self._clutter_map(m) for m in self.sensors]
        self.t: float | None = None
        self._next_id = 1
        self._alloc(0)
        # Bearings no track explained, kept for crossing with other sensors' bearings:
        # time, sensor, (azimuth, elevation or NaN) and their σ.
        self._pending_t = np.empty(0)
        self._pending_sensor = np.empty(0, dtype=np.int32)
        self._pending_z = np.empty((0, 2))
        self._pending_std = np.empty((0, 2))
        self._sensor_pos = np.array([m.sensor_pos for m in self.sensors], dtype=np.float64)
        self._origin = origin
        # Each sensor's bit in ``sources`` (0 past the 64th), and the direction finders'.
        self._bit = _bits(np.arange(len(self.sensors), dtype=np.int32))
        rf = np.array([m.modality == "rf" for m in self.sensors], dtype=bool)
        self._rf_sensors = np.bitwise_or.reduce(self._bit[rf], initial=np.uint64(0))
        # Sensors that measure a bearing only, and those whose one report fixes a position.
        fixing = np.array([m.initiates for m in self.sensors], dtype=bool)
        self._bearing_sensors = np.bitwise_or.reduce(self._bit[~fixing], initial=np.uint64(0))
        self._fixing_sensors = np.bitwise_or.reduce(self._bit[fixing], initial=np.uint64(0))
        self._pd = np.array([m.pd for m in self.sensors], dtype=np.float64)

    def _clutter_map(self, model: MeasurementModel) -> ClutterMap | None:
        cfg = self.config
        if not cfg.clutter_map or not math.isfinite(model.max_range_m):
            return None
        if isinstance(model, RadarModel):
            low: float | None = model.min_elevation_rad
        elif isinstance(model, Radar2DModel):
            low = None
        else:
            return None
        return ClutterMap(max_range_m=model.max_range_m, min_elevation_rad=low,
                          forgetting=cfg.clutter_map_forgetting,
                          prior_plots=cfg.clutter_map_prior_plots)

    @classmethod
    def from_scenario(cls, scenario: Scenario, *, config: TrackerConfig | None = None) -> Tracker:
        return cls([model_for(s, scenario.origin, scenario.region) for s in scenario.sensors],
                   config=config, origin=scenario.origin)

    # ------------------------------------------------------------------ state arrays

    def _alloc(self, n: int) -> None:
        k = self._k
        self.id = np.empty(n, dtype=np.int64)
        self.x = np.empty((n, k, STATE_DIM))
        self.P = np.empty((n, k, STATE_DIM, STATE_DIM))
        self.mu = np.empty((n, k))
        self.status = np.empty(n, dtype=np.int8)
        self.t_first = np.empty(n)
        self.t_last = np.empty(n)
        self.hits = np.empty(n, dtype=np.int32)
        self.misses = np.empty(n, dtype=np.int32)
        self.looks = np.empty(n, dtype=np.int32)
        self.score = np.empty(n)  # log-likelihood ratio: target vs clutter
        # How far the score has fallen below its peak (a CUSUM), misses that another
        # track's detection in the gate may explain not counted.
        self.fade = np.empty(n)
        # Log-odds that the object emits the radio link direction finders hear.
        self.emitter = np.empty(n)
        self.q_scale = np.empty(n)
        self.identity = np.empty(n, dtype=np.str_)
        self.category = np.empty(n, dtype=np.str_)
        self.sources = np.empty(n, dtype=np.uint64)
        # Spoofing evidence: misses by sensors that should see the object since one last
        # did; time since when its identity is reported outside its gate (NaN: it is not);
        # time of the last update by a non-cooperative sensor (NaN: never).
        self.miss_evidence = np.empty(n)
        self.claim_miss_since = np.empty(n)
        self.t_sensed = np.empty(n)
        self.t_rf = np.empty(n)
        # The sensor whose plot started the track (-1: a pair of bearings): if the track
        # is never confirmed, that plot was the sensor's clutter (see _learn_clutter).
        self.clutter_sensor = np.empty(n, dtype=np.int32)
        # Per sensor that has never seen the track: log-likelihood of its silences so far
        # if it could see the object, Σ ln(1 − Pd) over its looks (see _scan).
        self.silence = np.empty((n, len(self.sensors)))
        # IMM-combined estimate, refreshed whenever x, P or mu of a row change.
        self.xc = np.empty((n, STATE_DIM))
        self.Pc = np.empty((n, STATE_DIM, STATE_DIM))

    _ARRAYS = ("id", "x", "P", "mu", "status", "t_first", "t_last", "hits", "misses", "looks",
               "score", "fade", "emitter", "q_scale", "xc", "Pc", "identity", "category", "sources",
               "miss_evidence", "claim_miss_since", "t_sensed", "t_rf", "silence", "clutter_sensor")

    def _keep(self, mask: NDArray[np.bool_]) -> None:
        for name in self._ARRAYS:
            setattr(self, name, getattr(self, name)[mask])

    def _append(self, **rows: NDArray[np.generic]) -> None:
        for name in self._ARRAYS:
            setattr(self, name, np.concatenate([getattr(self, name), rows[name]]))

    def __len__(self) -> int:
        return int(self.id.shape[0])

    @property
    def tracks_started(self) -> int:
        """Tracks started over the tracker's life (ids are never reused)."""
        return self._next_id - 1

    # ------------------------------------------------------------------ public API

    def step(self, detections: Detections) -> TrackUpdate:
        """Process one batch (any mix of times and sensors, all not older than ``self.t``)."""
        det = detections
        if len(det) == 0:
            return self._update_result(self.t if self.t is not None else math.nan,
                                       np.empty(0, np.int64), np.empty(0, np.int64), 0, 0)
        if self.t is not None and float(det.t.min()) < self.t:
            raise OutOfOrderError(
                f"detections at t={float(det.t.min())!r} are older than the tracker's time "
                f"{self.t!r}; feed batches in time order (or through a reorder window)"
            )
        if np.any((det.sensor < 0) | (det.sensor >= len(self.sensors))):
            raise SkyfenceError("detection sensor index outside the tracker's sensor list")
        # Canonical order: the result must not depend on the order within a time.
        order = np.lexsort((det.identity, det.z[:, 2], det.z[:, 1], det.z[:, 0], det.sensor,
                            det.t))
        det = det.take(order)
        keys = np.stack([det.t, det.sensor.astype(np.float64)], axis=1)
        starts = np.flatnonzero(np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)])
        ends = np.r_[starts[1:], len(det)]
        confirmed: list[NDArray[np.int64]] = []
        deleted: list[NDArray[np.int64]] = []
        n_assigned = 0
        for a, b in zip(starts, ends, strict=True):  # over (time, sensor) groups, not detections
            s = int(det.sensor[a])
            dim = self.sensors[s].dim
            reported = None if det.reported is None else det.reported.take(slice(a, b))
            c, d, na = self._scan(float(det.t[a]), s, det.z[a:b, :dim], det.R[a:b, :dim, :dim],
                                  det.identity[a:b], det.category[a:b], reported)
            confirmed.append(c)
            deleted.append(d)
            n_assigned += na
        return self._update_result(float(det.t[-1]), np.concatenate(confirmed),
                                   np.concatenate(deleted), n_assigned, len(det) - n_assigned)

    def tracks(self) -> Tracks:
        """Snapshot of all tracks with the IMM-combined 6-D state."""
        return Tracks(id=self.id.copy(), x=self.xc[:, :6].copy(), P=self.Pc[:, :6, :6].copy(),
                      status=self.status.copy(), t_first=self.t_first.copy(),
                      t_last=self.t_last.copy(), hits=self.hits.copy(),
                      misses=self.misses.copy(), identity=self.identity.copy(),
                      category=self.category.copy(), sources=self.sources.copy(),
                      flags=self._flags(), manoeuvre_p=1.0 - self.mu[:, 0])

    def _flags(self) -> NDArray[np.uint16]:
        cfg = self.config
        t = self.t if self.t is not None else math.nan
        claimed = self.identity != ""
        spoof = claimed & ((self.miss_evidence >= cfg.spoof_evidence)
                           | (t - self.claim_miss_since >= cfg.spoof_after_s))
        unsensed = np.isnan(self.t_sensed) | (t - self.t_sensed >= cfg.cooperative_only_after_s)
        coop_only = claimed & unsensed & (t - self.t_first >= cfg.cooperative_only_after_s)
        # Heard by a direction finder lately: a drone's radio link. A bearing once
        # given to a track by mistake (a crossing, a neighbour) must not mark it for life.
        rf = t - self.t_rf <= cfg.rf_emitter_hold_s
        flags = np.zeros(len(self), dtype=np.uint16)
        flags[spoof] |= np.uint16(TrackFlag.SPOOF_SUSPECT)
        flags[coop_only] |= np.uint16(TrackFlag.COOPERATIVE_ONLY)
        flags[rf] |= np.uint16(TrackFlag.RF_EMITTER)
        return flags

    # ------------------------------------------------------------------ one sensor look

    def _advance(self, t: float) -> None:
        if self.t is None or len(self) == 0:
            self.t = t
            return
        dt = t - self.t
        if dt <= 0.0:
            return
        pi = imm.transition_probabilities(dt, self.config.sojourn_s)
        Q = np.stack([cwna_q(dt, m.noise) for m in self.config.models])
        # A track that only bearings have measured knows its range from the slowly turning
        # geometry of their crossing alone; linearised at a point that may be hundreds of
        # metres off along the lines, its filter grows overconfident there (the classic
        # bearings-only EKF). More process noise keeps its covariance honest until a
        # sensor that measures position has seen it.
        bearing_only = (((self.sources & self._bearing_sensors) != 0)
                        & ((self.sources & self._fixing_sensors) == 0))
        q_scale = np.where(bearing_only, self.q_scale * self.config.bearing_only_q_scale,
                           self.q_scale)
        fused.imm_predict(self.mu, self.x, self.P, pi, dt, self._kinds, Q, q_scale,
                          self.xc, self.Pc)
        self._keep_above_ground()
        self.t = t

    def _scan(self, t: float, sensor: int, z: F64, R: F64, identity: NDArray[np.str_],
              category: NDArray[np.str_], reported: PartnerTracks | None
              ) -> tuple[NDArray[np.int64], NDArray[np.int64], int]:
        self._advance(t)
        model = self.sensors[sensor]
        partner = model.partner
        if partner and reported is None:
            raise SkyfenceError(f"sensor {sensor} reports partner tracks: the batch needs their "
                                "states (Detections.reported)")
        gate = self._gate[model.dim]
        n, m = len(self), z.shape[0]
        at = np.empty(0, dtype=np.intp)
        ad = np.empty(0, dtype=np.intp)
        if n:
            # A miss is charged only where the sensor should have seen the track:
            # cooperative and partner sources report what they know, so their silence is
            # no miss; a direction finder hears only what emits, so it misses only tracks
            # a direction finder has heard before.
            visible = np.asarray(model.visible(self.xc[:, :3]), dtype=bool)
            in_reach = visible.copy()
            if model.cooperative or partner:
                visible[:] = False
            elif model.modality == "rf":
                visible &= (self.sources & self._rf_sensors) != 0
            # Tracks this sensor has never seen and whose height is a guess (bearings
            # alone): is the sensor likely to see them at all? Where it surely would, a
            # silence is a miss; where it may not (a low flyer under a radar's lowest
            # beam), it is not, and the silence says the track is likely lower.
            newcomer = np.zeros(n, dtype=bool)
            p_see = np.ones(n)
            cut = np.full(n, np.nan)
            if not (model.cooperative or partner) and sensor < 64:
                newcomer = ((self.sources & self._bit[sensor]) == 0) & (
                    self.Pc[:, 2, 2] > _VISIBILITY_STD_M**2)
                rows = np.flatnonzero(newcomer)
                if rows.size:
                    p_see[rows], cut[rows] = self._visibility(model, rows)
                    visible[rows] &= p_see[rows] > 0.9
            ti, dj, d2, logdet = self._gate_pairs(model, gate, z, R)
            if not (model.cooperative or partner) and ti.size and math.isfinite(
                    model.max_range_m):
                # A sensor does not measure what is beyond its reach: a bearing lines up
                # with tracks far past a direction finder's range as well as with the
                # one it heard. Kept: tracks that may be in reach (3σ).
                rng = np.linalg.norm(self.xc[ti, :3] - self._sensor_pos[sensor], axis=1)
                sd = np.sqrt(np.trace(self.Pc[ti, :3, :3], axis1=1, axis2=2))
                keep = rng - 3.0 * sd <= model.max_range_m
                ti, dj, d2, logdet = ti[keep], dj[keep], d2[keep], logdet[keep]
            if (model.cooperative or partner) and ti.size:
                # A report never goes to a track that carries another identity.
                keep = (self.identity[ti] == "") | (self.identity[ti] == identity[dj])
                ti, dj, d2, logdet = ti[keep], dj[keep], d2[keep], logdet[keep]
            if model.cooperative:
                ti, dj, d2, logdet = self._claim_pairs(ti, dj, d2, logdet, z, identity, gate)
            if ti.size:
                # Mahalanobis distance, offset so that every gated pair beats no pair.
                # (Adding ln|S| to prefer confident tracks measured worse on swarms:
                # it keeps a drone's new track from ever winning its detections back.)
                cost = d2 - (gate + 1.0)
                if not model.initiates:
                    # A bearing, though, goes by likelihood, d² + ln|S| (shifted so that
                    # every gated pair still beats none): a bearing-only track's gate
                    # across the line is many times a camera-held track's, and by d²
                    # alone the vague track, which every nearby bearing fits, takes the
                    # bearings of two close targets in turn and sits between them.
                    cost = cost + (logdet - logdet.max())
                if model.modality == "rf":
                    # A direction finder hears emitters only: a bearing is as likely
                    # the track's as the track is to emit (−2 ln P, like d²).
                    cost = cost - 2.0 * self._log_p_emitter(ti)
                at, ad = gnn_assign(n, m, ti, dj, cost)
                # The gated pair behind each assignment (pairs are sorted by (track, det)).
                k = np.searchsorted(ti * m + dj, at * m + ad)
                hit_d2, hit_logdet = d2[k], logdet[k]
                # A detection goes to a track only if it is likelier the track's than
                # clutter, P_see·Pd·N(ν; S) > λ. Inside a wide gate (a bearing-only track
                # of a low flyer, a few km long) a radar's clutter often lands, and one
                # such hit would snap the track onto it; a track that this sensor has
                # never seen and may not see at all (under a radar's lowest beam) weighs
                # its chance of being seen too (P_see; 1 for every other track).
                # Cooperative and partner reports carry their object's identity: no test.
                if not (model.cooperative or partner):
                    lam = self._clutter_density(sensor, z, 0, update=False)
                    # A track this sensor has never seen: can it see the object at all,
                    # over its height's uncertainty however small (a camera-tracked low
                    # flyer well under a radar's lowest beam)?
                    p_hit = p_see[at]
                    never = (self.sources[at] & self._bit[sensor]) == 0
                    unseen = never & ~newcomer[at]
                    if unseen.any() and sensor < 64:
                        p_hit[unseen] = self._visibility(model, at[unseen], min_std_m=0.0)[0]
                    # Its silences so far where it could have seen the object say that it
                    # cannot: P(sees it | silent looks), from the height's P as the prior.
                    # The height's normal shifts down with each silence (_not_seen_below)
                    # but keeps a tail over a radar's lowest beam that a run of silences
                    # has ruled out; one clutter plot there would snap the track onto it.
                    odds = p_hit * np.exp(self.silence[at, sensor])
                    p_hit = np.where(never, odds / np.maximum(odds + 1.0 - p_hit, 1e-12), p_hit)
                    ratio = (np.log(np.maximum(p_hit, 1e-6) * model.pd) - lam
                             - 0.5 * (hit_d2 + hit_logdet + model.dim * _LOG_2PI))
                    if model.modality == "rf":
                        ratio += self._log_p_emitter(at)
                    keep = ratio > 0.0
                    at, ad = at[keep], ad[keep]
                    hit_d2, hit_logdet = hit_d2[keep], hit_logdet[keep]
            log_clutter = self._clutter_density(sensor, z, int(np.count_nonzero(
                self.status[at] != TrackStatus.TENTATIVE)))
            if partner and reported is not None:  # (checked above: a partner brings them)
                self._fuse_partner(at, reported.x[ad], reported.P[ad])
            elif self._association(model) == "jpda" and ti.size and not (R - R[0]).any():
                crowded = self._crowded(n, m, ti, dj)
                self._update_jpda(model, crowded[ti], ti, dj, d2, logdet, z, R[0], log_clutter)
                solo = ~crowded[at]
                self._update_assigned(model, at[solo], z[ad[solo]], R[ad[solo]])
            else:
                self._update_assigned(model, at, z[ad], R[ad])
            self.hits[at] += 1
            self.misses[at] = 0
            self.t_last[at] = t
            self.sources[at] |= self._bit[sensor]
            if model.modality == "rf":
                self.t_rf[at] = t
            hit = np.zeros(n, dtype=bool)
            hit[at] = True
            looked = visible | hit
            missed = looked & ~hit
            self.looks[looked] += 1
            self.misses[missed] += 1
            miss_llr = math.log(1.0 - model.pd * self.config.gate_probability)
            if at.size:
                gain = (math.log(model.pd) - log_clutter - 0.5 * (
                    hit_d2 + hit_logdet + model.dim * _LOG_2PI))
                # The confirmation test weighs a new track's plots against the clutter
                # density where they fall: where this radar's clutter crowds (ground
                # clutter at the lowest elevations), a run of false plots does not make a
                # track. (Established tracks keep the uniform density: in a swarm flying
                # through clutter, a higher density everywhere turned away its plots,
                # which then started duplicate tracks.)
                new = self.status[at] == TrackStatus.TENTATIVE
                if new.any() and self._clutter_maps[sensor] is not None:
                    gain[new] -= self._clutter_excess(sensor, z[ad[new]])
                self.score[at] += gain
                self.fade[at] = np.maximum(self.fade[at] - gain, 0.0)
            self.score[missed] += miss_llr
            # A miss with a detection in the gate that went to another track is no
            # evidence of absence: the sensor may well have seen this object under
            # another name (two tracks on one target, crossing targets).
            # Nor is a direction finder's silence about a track no direction finder has
            # heard lately: a stray bearing (clutter, another drone's on the same line)
            # does not make a silent low flyer an emitter.
            in_gate = np.zeros(n, dtype=bool)
            in_gate[ti] = True
            absent = missed & ~in_gate
            if model.modality == "rf":
                absent &= t - self.t_rf <= self.config.min_coast_s
            self.fade[absent] -= miss_llr
            if model.modality == "rf":
                self._weigh_emitter(model.pd, at, in_reach & ~hit & ~in_gate)
            if newcomer.any():
                quiet = newcomer & ~hit & ~in_gate & ~visible & (p_see > 0) & np.isfinite(cut)
                self._not_seen_below(np.flatnonzero(quiet), cut[quiet], model.pd)
            if sensor < 64 and not (model.cooperative or partner):
                # A look that could have seen the object and did not, by a sensor that has
                # never seen it.
                silent = (np.where(newcomer, p_see > 0, in_reach) & ~hit & ~in_gate
                          & ((self.sources & self._bit[sensor]) == 0))
                if model.modality == "rf":
                    silent &= (self.sources & self._rf_sensors) != 0
                self.silence[silent, sensor] = np.maximum(
                    self.silence[silent, sensor] + miss_llr, -self.config.max_silence_evidence)
            if model.cooperative:
                self._claims(t, at, ad, identity, category)
            elif partner:
                # A partner's identity goes to a track that has none; it is no claim to test.
                fresh = (self.identity[at] == "") & (identity[ad] != "")
                self.identity = _widen(self.identity, identity)
                self.identity[at[fresh]] = identity[ad[fresh]]
            else:
                self.t_sensed[at] = t
                self.miss_evidence[at] = 0.0
                self.miss_evidence[missed] -= math.log(
                    max(1.0 - model.pd * self.config.gate_probability, 1e-9))
        else:
            self._clutter_density(sensor, z, 0)
        free = np.ones(m, dtype=bool)
        free[ad] = False
        if partner and reported is not None:
            self._initiate(reported.x[free, :3], reported.P[free, :3, :3], t, sensor=sensor,
                           identity=identity[free], velocity=reported.x[free, 3:6],
                           state_cov=reported.P[free])
        elif model.initiates:
            self._initiate(*model.to_enu(z[free], R[free]), t, sensor=sensor,
                           identity=identity[free] if model.cooperative else None,
                           category=category[free] if model.cooperative else None)
        else:
            self._triangulate(t, sensor, z[free], R[free])
        confirmed, deleted = self._life_cycle()
        return confirmed, deleted, int(at.size)

    def _log_p_emitter(self, rows: NDArray[np.intp]) -> F64:
        """ln P(the object of each track emits), from its log-odds."""
        return np.asarray(-np.logaddexp(0.0, -self.emitter[rows]))

    def _weigh_emitter(self, pd: float, hit: NDArray[np.intp], silent: NDArray[np.bool_]
                       ) -> None:
        """A direction finder's look: a bearing on the track is evidence that its object
        emits (pd against the chance q of a stray bearing in the gate: clutter, another
        emitter on the same line); a silence where it reaches, that it does not."""
        q = self.config.rf_stray_probability
        lim = self.config.rf_emitter_max_log_odds
        self.emitter[hit] = np.minimum(self.emitter[hit] + math.log(pd / q), lim)
        self.emitter[silent] = np.maximum(
            self.emitter[silent] + math.log((1.0 - pd) / (1.0 - q)), -lim)

    def _visibility(self, model: MeasurementModel, rows: NDArray[np.intp], *,
                    min_std_m: float = _VISIBILITY_STD_M) -> tuple[F64, F64]:
        """Probability (n,) that the sensor can see each track, and the height (n,) below
        which it cannot (NaN where that does not describe its cover).

        A track whose height is known to a few tens of metres is seen or not at its
        mean. One whose height is a guess (σ over ``_VISIBILITY_STD_M``: a bearing-only
        track of a low flyer) is looked at over a grid of heights from −3σ to +3σ above
        the ground, weighted by the height's normal density. Where the sensor sees the
        upper part of that column and not the lower (a radar's lowest beam, its
        horizon), the boundary height is returned for the negative-information update.
        """
        n = rows.size
        pos = self.xc[rows, :3]
        p_vis = np.asarray(model.visible(pos), dtype=np.float64)
        cut = np.full(n, np.nan)
        var = np.diagonal(self.Pc[rows, :3, :3], axis1=1, axis2=2)
        loose = np.flatnonzero(var[:, 2] > min_std_m**2)
        if loose.size == 0:
            return p_vis, cut
        p = pos[loose]
        su = np.sqrt(var[loose, 2])
        m = loose.size
        column = np.repeat(p[None], _HEIGHT_GRID.size, axis=0)
        column[:, :, 2] += _HEIGHT_GRID[:, None] * su[None, :]
        grid = np.asarray(model.visible(column.reshape(-1, 3)), dtype=bool).reshape(-1, m)
        # Heights under the ground are no heights at all: they get no weight.
        ground = (np.zeros(m) if self._origin is None
                  else p[:, 2] - height_above_origin_m(self._origin, p))
        weights = _HEIGHT_WEIGHTS[:, None] * (column[:, :, 2] >= ground[None, :])
        mass = weights.sum(axis=0)
        p_vis[loose] = np.where(mass > 0, (weights * grid).sum(axis=0) / np.maximum(mass, 1e-12),
                                p_vis[loose])
        # Under the ground nothing is seen: the cut is then at the ground at the lowest,
        # and _not_seen_below ignores cuts that close to it.
        grid &= column[:, :, 2] >= ground[None, :]
        # Invisible below some height and visible above: that height is the cut.
        monotone = ~np.any(grid[:-1] & ~grid[1:], axis=0)
        first = np.argmax(grid, axis=0)
        has_cut = monotone & grid[-1] & ~grid[0]
        # (A column seen everywhere above the ground has no cut: grid[0] is True there.)
        cut[loose[has_cut]] = (p[has_cut, 2] + su[has_cut]
                               * 0.5 * (_HEIGHT_GRID[first[has_cut]]
                                        + _HEIGHT_GRID[first[has_cut] - 1]))
        return p_vis, cut

    def _not_seen_below(self, rows: NDArray[np.intp], cut: F64, pd: float) -> None:
        """Negative information: a sensor that sees everything above ``cut`` (m, per row)
        with ``pd`` reported nothing for these tracks, so their height is likelier below.

        The height's normal prior times (1 above the cut: 1 − pd; below: 1) is a mixture
        of two truncated normals; its mean and variance become a pseudo-measurement on
        height, applied to every IMM mode like a Kalman update (cross terms follow).
        """
        if rows.size == 0:
            return
        # Nothing flies underground: the lower part is cut at the ground too, and where
        # the sensor sees down to near the ground there is nothing to learn.
        ground = (np.zeros(rows.size) if self._origin is None else
                  self.xc[rows, 2] - height_above_origin_m(self._origin, self.xc[rows, :3]))
        useful = cut - ground > _MIN_CUT_ABOVE_GROUND_M
        rows, cut, ground = rows[useful], cut[useful], ground[useful]
        if rows.size == 0:
            return
        x, P = self.x[rows], self.P[rows]  # (r, k, 7), (r, k, 7, 7)
        mu, var = x[:, :, 2], np.maximum(P[:, :, 2, 2], 1e-9)
        sd = np.sqrt(var)
        a = (ground[:, None] - mu) / sd  # standardised ground and cut
        b = (cut[:, None] - mu) / sd
        phi_a, phi_b = np.exp(-0.5 * a**2), np.exp(-0.5 * b**2)
        phi_a, phi_b = phi_a / math.sqrt(2.0 * math.pi), phi_b / math.sqrt(2.0 * math.pi)
        lo = np.clip(ndtr(b) - ndtr(a), 1e-12, 1.0)  # mass between the ground and the cut
        hi = np.clip(1.0 - ndtr(b), 1e-12, 1.0)  # mass above the cut
        w_lo, w_hi = lo, (1.0 - pd) * hi
        total = w_lo + w_hi
        m_lo = mu + sd * (phi_a - phi_b) / lo
        m_hi = mu + sd * phi_b / hi
        v_lo = var * np.maximum(1.0 + (a * phi_a - b * phi_b) / lo - ((phi_a - phi_b) / lo) ** 2,
                                1e-6)
        v_hi = var * np.maximum(1.0 + b * phi_b / hi - (phi_b / hi) ** 2, 1e-6)
        mean = (w_lo * m_lo + w_hi * m_hi) / total
        new_var = (w_lo * (v_lo + m_lo**2) + w_hi * (v_hi + m_hi**2)) / total - mean**2
        self._set_height(rows, mean, new_var)

    def _set_height(self, rows: NDArray[np.intp], mean: F64, new_var: F64) -> None:
        """Move each mode's height normal (rows, modes) onto N(mean, new_var) by the
        linear update that does so (the other components follow their cross terms), as
        a Kalman update with a pseudo-measurement of height would."""
        k = self._k
        x, P = self.x[rows], self.P[rows]  # (r, k, 7), (r, k, 7, 7)
        mu, var = x[:, :, 2], np.maximum(P[:, :, 2, 2], 1e-9)
        new_var = np.clip(new_var, 1e-6 * var, var)
        col = P[:, :, :, 2]  # (r, k, 7)
        x = x + col / var[:, :, None] * (mean - mu)[:, :, None]
        P = P - ((1.0 - new_var / var)[:, :, None, None]
                 * col[:, :, :, None] * col[:, :, None, :] / var[:, :, None, None])
        self.x[rows], self.P[rows] = x, symmetrise(P.reshape(-1, STATE_DIM, STATE_DIM)
                                                   ).reshape(-1, k, STATE_DIM, STATE_DIM)
        self.xc[rows], self.Pc[rows] = imm.combine(self.mu[rows], self.x[rows], self.P[rows])

    def _keep_above_ground(self) -> None:
        """Nothing flies under the ground: a track whose height is a guess (σ over
        ``_VISIBILITY_STD_M``: bearings alone measure no height) and whose height has
        walked under the ground takes its normal truncated there. (Only then: truncating
        at every step a normal that merely reaches the ground counts the same
        knowledge again each time, and ratchets the height up.) Without it
        the height of a low flyer held by azimuths alone walks off, hundreds of metres
        underground and then anywhere, and the first false camera elevation or radar
        plot in that gate is taken."""
        if self._origin is None:
            return
        loose = np.flatnonzero(self.Pc[:, 2, 2] > _VISIBILITY_STD_M**2)
        pos = self.xc[loose, :3]
        ground = pos[:, 2] - height_above_origin_m(self._origin, pos)
        under = pos[:, 2] < ground
        rows, ground = loose[under], ground[under]
        if rows.size == 0:
            return
        x, P = self.x[rows], self.P[rows]
        mu, var = x[:, :, 2], np.maximum(P[:, :, 2, 2], 1e-9)
        sd_k = np.sqrt(var)
        a = (ground[:, None] - mu) / sd_k
        # φ(a) / (1 − Φ(a)), the inverse Mills ratio, in logs: a may be large.
        ratio = np.exp(-0.5 * a**2 - 0.5 * _LOG_2PI - log_ndtr(-a))
        mean = mu + sd_k * ratio
        new_var = var * np.maximum(1.0 + a * ratio - ratio**2, 1e-6)
        self._set_height(rows, mean, new_var)

    def _claim_pairs(self, ti: NDArray[np.intp], dj: NDArray[np.intp], d2: F64, logdet: F64,
                     z: F64, identity: NDArray[np.str_], gate: float
                     ) -> tuple[NDArray[np.intp], NDArray[np.intp], F64, F64]:
        """Gated pairs plus (track, report) pairs of the same identity within
        ``claim_gate_m``: a report stays with the track that carries its identity when the
        track has drifted a little (a radar track's height error, a lag in a turn), instead
        of starting a twin track and a spoofing alarm. Sorted by (track, report)."""
        carries = np.flatnonzero(self.identity != "")
        if carries.size == 0 or z.shape[0] == 0:
            return ti, dj, d2, logdet
        # Identities as integer codes; then each report's tracks by a sorted join.
        _, codes = np.unique(np.concatenate([self.identity[carries], identity]),
                             return_inverse=True)
        t_code, r_code = codes[:carries.size], codes[carries.size:]
        order = np.argsort(t_code, kind="stable")
        lo = np.searchsorted(t_code[order], r_code, side="left")
        hi = np.searchsorted(t_code[order], r_code, side="right")
        count = hi - lo
        if not count.any():
            return ti, dj, d2, logdet
        j_new = np.repeat(np.arange(z.shape[0]), count)
        offset = np.arange(j_new.size) - np.repeat(np.cumsum(count) - count, count)
        i_new = carries[order[np.repeat(lo, count) + offset]]
        near = np.linalg.norm(self.xc[i_new, :3] - z[j_new], axis=1) < self.config.claim_gate_m
        i_new, j_new = i_new[near], j_new[near]
        m = z.shape[0]
        fresh = ~np.isin(i_new * m + j_new, ti * m + dj)
        i_new, j_new = i_new[fresh], j_new[fresh]
        if i_new.size == 0:
            return ti, dj, d2, logdet
        # Just inside the gate: any ordinary gated pair is preferred.
        ti = np.concatenate([ti, i_new])
        dj = np.concatenate([dj, j_new])
        d2 = np.concatenate([d2, np.full(i_new.size, 0.999 * gate)])
        logdet = np.concatenate([logdet, np.zeros(i_new.size)])
        order = np.lexsort((dj, ti))
        return ti[order], dj[order], d2[order], logdet[order]

    def _claims(self, t: float, at: NDArray[np.intp], ad: NDArray[np.intp],
                identity: NDArray[np.str_], category: NDArray[np.str_]) -> None:
        """Attach reported identities to the tracks they were assigned to; note tracks whose
        identity was reported this scan but not inside their gate."""
        self.identity = _widen(self.identity, identity)
        self.category = _widen(self.category, category)
        self.identity[at] = identity[ad]
        reported_category = category[ad] != ""
        self.category[at[reported_category]] = category[ad][reported_category]
        self.claim_miss_since[at] = np.nan
        elsewhere = np.isin(self.identity, identity) & (self.identity != "")
        elsewhere[at] = False
        self.claim_miss_since[elsewhere & np.isnan(self.claim_miss_since)] = t

    def _triangulate(self, t: float, sensor: int, z: F64, R: F64) -> None:
        """Cross unexplained bearings with other sensors' recent ones; start tracks there.

        Each new bearing is paired with at most one pending bearing (an optimal
        assignment over the pairs that cross in front of both sensors, within both
        ranges, with heights that agree); the rest wait in the pending list until
        ``triangulation_window_s`` has passed.
        """
        cfg = self.config
        recent = self._pending_t >= t - cfg.triangulation_window_s
        self._keep_pending(recent)
        m = z.shape[0]
        model = self.sensors[sensor]
        az = z[:, 0]
        el = z[:, 1] if model.dim > 1 else np.full(m, np.nan)
        std = np.sqrt(np.stack([R[:, 0, 0], R[:, 1, 1] if model.dim > 1 else np.ones(m)], 1))
        others = np.flatnonzero(self._pending_sensor != sensor)
        used = np.zeros(m, dtype=bool)
        if m and others.size:
            i, j = (a.ravel() for a in np.meshgrid(np.arange(m), others, indexing="ij"))
            s_new = np.broadcast_to(self._sensor_pos[sensor], (i.size, 3))
            s_old = self._sensor_pos[self._pending_sensor[j]]
            fix = triangulate(
                s_new, az[i], el[i], std[i, 0], std[i, 1],
                s_old, self._pending_z[j, 0], self._pending_z[j, 1], self._pending_std[j, 0],
                self._pending_std[j, 1], assumed_height_m=cfg.assumed_height_m,
                assumed_height_std_m=cfg.assumed_height_std_m,
                min_crossing_rad=cfg.min_crossing_rad)
            max_range = np.array([mm.max_range_m for mm in self.sensors])
            # Within both sensors' reach, give or take the fix's own error along each
            # line of sight: two bearings of a target near the edge of a sensor's
            # cover cross beyond it about as often as short of it.
            k_sd = cfg.triangulation_reach_sigma
            reach1 = fix.range1_m - k_sd * self._along_std(fix.pos, fix.cov, s_new)
            reach2 = fix.range2_m - k_sd * self._along_std(fix.pos, fix.cov, s_old)
            ok = (fix.ok & (reach1 <= max_range[sensor])
                  & (reach2 <= max_range[self._pending_sensor[j]])
                  & (fix.d2 < self._gate[1]))
            support = np.zeros(i.size, dtype=np.intp)
            if ok.any():
                support[ok] = self._bearing_support(fix.pos[ok], fix.cov[ok], sensor,
                                                    self._pending_sensor[j[ok]])
                # Two azimuth lines always cross somewhere: with several targets in the
                # same sector most crossings are ghosts. A fix stands when a third
                # sensor's bearing passes through it, when both bearings measured
                # elevations that agree, or when the pair is unambiguous (neither bearing
                # crosses any other candidate): then there is no ghost to make.
                both_el = np.isfinite(el[i]) & np.isfinite(self._pending_z[j, 1])
                grid = ok.reshape(m, others.size)
                alone = ((grid.sum(axis=1)[:, None] == 1)
                         & (grid.sum(axis=0)[None, :] == 1)).reshape(-1)
                # Where no third sensor could look, none can refute a ghost either: the
                # pair stands, and the confirmation test weighs it.
                unwatched = np.zeros(i.size, dtype=bool)
                unwatched[ok] = self._watchers(fix.pos[ok], sensor,
                                               self._pending_sensor[j[ok]]) == 0
                ok &= (support >= 1) | both_el | alone | unwatched
            if ok.any():
                cost = np.full((m, others.size), 1e12)
                # Prefer well-supported, tight fixes: more sensors through the point, then
                # the log of the horizontal error ellipse's area.
                area = (np.log(np.maximum(np.linalg.det(fix.cov[:, :2, :2]), 1e-12)) + fix.d2
                        - 100.0 * support)
                cost.reshape(-1)[ok] = area[ok]
                rows, cols = linear_sum_assignment(cost)
                good = cost[rows, cols] < 1e12
                rows, cols = rows[good], cols[good]
                pair = rows * others.size + cols
                pos, cov = fix.pos[pair], fix.cov[pair].copy()
                # The target moved between the two bearings' times.
                lag = t - self._pending_t[others[cols]]
                cov[:, [0, 1, 2], [0, 1, 2]] += (cfg.max_speed_mps * lag)[:, None] ** 2 / 3.0
                self._initiate(pos, cov, t, sensor=sensor)
                self.sources[-rows.size:] |= (self._bit[sensor]
                                              | self._bit[self._pending_sensor[others[cols]]])
                other = self._pending_sensor[others[cols]]
                rf_other = (self._rf_sensors & self._bit[other]) != 0
                self.t_rf[-rows.size:] = np.where((model.modality == "rf") | rf_other, t, np.nan)
                # Each direction finder's bearing in the pair is a first look at whether
                # the object emits (see _weigh_emitter).
                q = cfg.rf_stray_probability
                self.emitter[-rows.size:] = (
                    (math.log(model.pd / q) if model.modality == "rf" else 0.0)
                    + np.where(rf_other, np.log(self._pd[other] / q), 0.0))
                used[rows] = True
                gone = np.ones(self._pending_t.size, dtype=bool)
                gone[others[cols]] = False
                self._keep_pending(gone)
        keep = ~used
        self._pending_t = np.concatenate([self._pending_t, np.full(int(keep.sum()), t)])
        self._pending_sensor = np.concatenate(
            [self._pending_sensor, np.full(int(keep.sum()), sensor, dtype=np.int32)])
        self._pending_z = np.concatenate([self._pending_z, np.stack([az, el], 1)[keep]])
        self._pending_std = np.concatenate([self._pending_std, std[keep]])

    @staticmethod
    def _along_std(pos: F64, cov: F64, sensor_pos: F64) -> F64:
        """1σ (c,) of fixes (c, 3) with covariances (c, 3, 3) along the horizontal line
        of sight from ``sensor_pos`` (c, 3)."""
        d = pos[:, :2] - sensor_pos[:, :2]
        u = d / np.maximum(np.linalg.norm(d, axis=1), 1e-9)[:, None]
        return np.asarray(np.sqrt(np.maximum(np.einsum("ci,cij,cj->c", u, cov[:, :2, :2], u), 0.0)))

    def _watchers(self, pos: F64, s1: int, s2: NDArray[np.int32]) -> NDArray[np.intp]:
        """How many bearing sensors other than ``s1`` and ``s2`` (c,) could see each fix
        (c, 3)."""
        count = np.zeros(pos.shape[0], dtype=np.intp)
        for k, mm in enumerate(self.sensors):  # over sensors, a handful
            if mm.initiates or mm.cooperative or k == s1:
                continue
            count += np.asarray(mm.visible(pos), dtype=bool) & (s2 != k)
        return count

    def _bearing_support(self, pos: F64, cov: F64, s1: int, s2: NDArray[np.int32]
                         ) -> NDArray[np.intp]:
        """How many other sensors (not ``s1``, not ``s2``) have a pending bearing through
        each fix (c, 3) with covariance (c, 3, 3): azimuth residual inside the 1-D gate,
        the fix's own uncertainty across the line of sight included."""
        sb = self._pending_sensor
        d = pos[:, None, :] - self._sensor_pos[sb][None, :, :]  # (c, B, 3)
        ground2 = np.maximum(d[..., 0] ** 2 + d[..., 1] ** 2, 1.0)
        az = np.arctan2(d[..., 0], d[..., 1])
        res = (self._pending_z[None, :, 0] - az + math.pi) % (2.0 * math.pi) - math.pi
        # Variance of the fix's azimuth seen from the sensor: uᵀ C u / ground², u ⟂ the line.
        u = np.stack([d[..., 1], -d[..., 0]], axis=-1) / np.sqrt(ground2)[..., None]
        spread = np.einsum("cbi,cij,cbj->cb", u, cov[:, :2, :2], u) / ground2
        chi = res**2 / (self._pending_std[None, :, 0] ** 2 + spread)
        through = (chi < self._gate[1]) & (sb[None, :] != s1) & (sb[None, :] != s2[:, None])
        by_sensor = np.zeros((pos.shape[0], len(self.sensors)), dtype=bool)
        c_idx, b_idx = np.nonzero(through)
        by_sensor[c_idx, sb[b_idx]] = True
        return np.asarray(by_sensor.sum(axis=1), dtype=np.intp)

    def _keep_pending(self, mask: NDArray[np.bool_]) -> None:
        self._pending_t = self._pending_t[mask]
        self._pending_sensor = self._pending_sensor[mask]
        self._pending_z = self._pending_z[mask]
        self._pending_std = self._pending_std[mask]

    @staticmethod
    def _crowded(n: int, m: int, ti: NDArray[np.intp], dj: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Tracks (n,) whose gate-graph component holds more than one track."""
        labels = gate_components(n, m, ti, dj)[:n]
        return np.asarray(np.bincount(labels)[labels] >= 2)

    def _association(self, model: MeasurementModel) -> str:
        cfg = self.config
        return cfg.association if model.initiates else cfg.bearing_association

    def _update_jpda(self, model: MeasurementModel, in_crowd: NDArray[np.bool_],
                     ti: NDArray[np.intp], dj: NDArray[np.intp], d2: F64, logdet: F64, z: F64,
                     R: F64, log_clutter: float) -> None:
        """IMM-JPDA update of the tracks of crowded components, over their gated pairs.

        Joint association weights by Fitzgerald's cheap JPDA, β_ij = G_ij /
        (Σ_j' G_ij' + Σ_i' G_i'j − G_ij + B), whole-array over the pairs; each
        mode then takes the probabilistic-data-association update with the
        weighted innovation and its spread.
        """
        ti, dj, d2, logdet = ti[in_crowd], dj[in_crowd], d2[in_crowd], logdet[in_crowd]
        if ti.size == 0:
            return
        pd, dim, k = model.pd, model.dim, self._k
        lam = math.exp(log_clutter)
        miss = 1.0 - pd * self.config.gate_probability
        g = pd * np.exp(-0.5 * (d2 + logdet + dim * _LOG_2PI))
        if model.modality == "rf":  # a direction finder hears only what emits
            g = g * np.exp(self._log_p_emitter(ti))
        g_track = np.bincount(ti, g, minlength=len(self))
        g_det = np.bincount(dj, g, minlength=z.shape[0])
        beta = g / (g_track[ti] + g_det[dj] - g + miss * lam)
        tracks, local = np.unique(ti, return_inverse=True)
        beta0 = np.clip(1.0 - np.bincount(local, beta, minlength=tracks.size), 0.0, 1.0)

        x = self.x[tracks].reshape(-1, STATE_DIM)  # (tracks × modes) filters
        P = self.P[tracks].reshape(-1, STATE_DIM, STATE_DIM)
        z_pred, H = model.predict(x)
        PHt = P @ np.swapaxes(H, 1, 2)
        S = symmetrise(H @ PHt + R)
        S_inv, S_logdet = inv_logdet(S)
        gain = PHt @ S_inv
        # Every (pair, mode): residual, weighted sums per (track, mode).
        row = (local[:, None] * k + np.arange(k)).ravel()
        nu = model.residual(np.repeat(z[dj], k, axis=0), z_pred[row])
        w = np.repeat(beta, k)
        nu_bar = np.zeros((x.shape[0], dim))
        np.add.at(nu_bar, row, w[:, None] * nu)
        spread = np.zeros((x.shape[0], dim, dim))
        np.add.at(spread, row, w[:, None, None] * nu[:, :, None] * nu[:, None, :])
        spread -= nu_bar[:, :, None] * nu_bar[:, None, :]
        b0 = np.repeat(beta0, k)[:, None, None]
        KSKt = gain @ S @ np.swapaxes(gain, 1, 2)
        x = x + (gain @ nu_bar[:, :, None])[:, :, 0]
        P = symmetrise(P - (1.0 - b0) * KSKt + gain @ spread @ np.swapaxes(gain, 1, 2))
        # Mode likelihood (Bar-Shalom): miss·λ + Pd Σ_j N(ν_j; S) per (track, mode).
        lik = np.zeros(x.shape[0])
        np.add.at(lik, row, pd * np.exp(-0.5 * (quad_form(nu, S_inv[row]) + S_logdet[row]
                                                + dim * _LOG_2PI)))
        self.x[tracks] = x.reshape(-1, k, STATE_DIM)
        self.P[tracks] = P.reshape(-1, k, STATE_DIM, STATE_DIM)
        loglik = np.log(np.maximum(lik + miss * lam, 1e-300)).reshape(-1, k)
        self.mu[tracks] = imm.reweight(self.mu[tracks], loglik)
        self.xc[tracks], self.Pc[tracks] = imm.combine(self.mu[tracks], self.x[tracks],
                                                       self.P[tracks])

    def _gate_pairs(self, model: MeasurementModel, gate: float, z: F64, R: F64
                    ) -> tuple[NDArray[np.intp], NDArray[np.intp], F64, F64]:
        """(track, detection) pairs inside the chi-square gate, with d² and ln|S| of each.

        Candidates come from a k-d tree in the sensor's measurement space: the
        gate ellipsoid νᵀS⁻¹ν < gate reaches exactly √(gate · S_ii) along axis
        i, so it lies inside that box, and the box inside a cube once the axes
        are scaled by the typical track's extents. The pre-selection is exact,
        not a heuristic, and stays tight however elongated the gates are.
        """
        z_pred, H = model.predict(self.xc)
        # Every measurement kind here sees only position: S needs the 3×3 block.
        HPHt = H[:, :, :3] @ self.Pc[:, :3, :3] @ np.swapaxes(H[:, :, :3], 1, 2)
        half = np.sqrt(gate * (np.diagonal(HPHt, axis1=1, axis2=2) + np.diag(R.max(axis=0))))
        scale = 1.0 / np.median(half, axis=0)
        radius = (half * scale).max(axis=1)
        ti, dj = candidate_pairs(z_pred * scale, radius, z * scale, model.periods * scale,
                                 p=np.inf, max_per_track=(
                                     self.config.max_candidates_per_track if model.dim > 1
                                     else self.config.max_candidates_azimuth_only))
        nu = model.residual(z[dj], z_pred[ti])
        if not (R - R[0]).any():  # one noise model for the whole scan: S per track, not per pair
            S_inv, logdet = inv_logdet(symmetrise(HPHt + R[0]))
            d2 = quad_form(nu, S_inv[ti])
            logdet = logdet[ti]
        else:
            S_inv, logdet = inv_logdet(symmetrise(HPHt[ti] + R[dj]))
            d2 = quad_form(nu, S_inv)
        ok = d2 < gate
        return ti[ok], dj[ok], d2[ok], logdet[ok]

    def _clutter_density(self, sensor: int, z: F64, n_explained: int, *,
                         update: bool = True) -> float:
        """Log of the sensor's clutter density in its measurement space, updated with a scan.

        The count is the sensor's stated false-alarm rate when the scenario gives
        one. Otherwise it is estimated: detections not explained by established
        tracks count as clutter (new targets too, which errs on the side of fewer
        false tracks; in a scene that starts with many targets it slows their
        confirmation over the first scans). The volume is the sensor's cover, or
        the extent of everything it has reported so far when that is unbounded.
        """
        a = self.config.clutter_smoothing
        count = float(z.shape[0] - n_explained)
        old = float(self._clutter_count[sensor])
        estimate = count if math.isnan(old) else (1 - a) * old + a * count
        if update:
            self._clutter_count[sensor] = estimate
        else:  # a look at the density without counting this scan twice
            estimate = count if math.isnan(old) else old
        cmap = self._clutter_maps[sensor]
        if cmap is not None and update:
            cmap.forget()
        if z.shape[0] and update:
            dim = z.shape[1]
            self._z_lo[sensor, :dim] = np.minimum(self._z_lo[sensor, :dim], z.min(axis=0))
            self._z_hi[sensor, :dim] = np.maximum(self._z_hi[sensor, :dim], z.max(axis=0))
        model = self.sensors[sensor]
        span = model.coverage_extent()
        if span is None:
            span = np.maximum(self._z_hi[sensor, :model.dim] - self._z_lo[sensor, :model.dim],
                              model.min_extent)
        count = model.clutter_per_scan or estimate
        return math.log(max(count, 1.0)) - float(np.log(span).sum())

    def _clutter_excess(self, sensor: int, z: F64) -> F64:
        """ln of how many times the uniform clutter density the sensor's map has seen at
        each detection (m, dim); never below 0: cells where no false track has started
        are not thereby known to be clean."""
        cmap = self._clutter_maps[sensor]
        assert cmap is not None
        return np.maximum(cmap.log_factor(z), 0.0)

    def _learn_clutter(self, fail: NDArray[np.bool_]) -> None:
        """A track that a radar's plot started and that was never confirmed was clutter:
        its plot (taken where the track now is) goes into the radar's clutter map, unless
        the track lies beside an established one (a second track on a target). The plots
        of new targets do not: their tracks confirm. (Counting every plot that no
        confirmed track explains would count a swarm's first scans as clutter.)"""
        for k, cmap in enumerate(self._clutter_maps):  # over sensors, a handful
            if cmap is None:
                continue
            rows = np.flatnonzero(fail & (self.clutter_sensor == k))
            rows = rows[~self._beside_established(rows)]
            if rows.size:
                cmap.add(self.sensors[k].predict(self.xc[rows])[0])

    def _beside_established(self, rows: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Tracks (rows) that lie within the 0.999 ellipsoid (their covariance plus the
        other's) of one of their four nearest established tracks."""
        est = np.flatnonzero(self.status != TrackStatus.TENTATIVE)
        out = np.zeros(rows.size, dtype=bool)
        if rows.size == 0 or est.size == 0:
            return out
        k = min(4, est.size)
        _, idx = cKDTree(self.xc[est, :3]).query(self.xc[rows, :3], k=k)
        other = est[np.asarray(idx).reshape(rows.size, k)]  # (r, k)
        d = self.xc[other, :3] - self.xc[rows, None, :3]
        S = self.Pc[other, :3, :3] + self.Pc[rows, None, :3, :3]
        m2 = np.einsum("rki,rki->rk", d, np.linalg.solve(S, d[..., None])[..., 0])
        return np.asarray((m2 < self._gate[3]).any(axis=1))

    def _update_assigned(self, model: MeasurementModel, at: NDArray[np.intp], z: F64,
                         R: F64) -> None:
        if at.size == 0:
            return
        k, n = self._k, at.size
        x, P, mu = self.x[at], self.P[at], self.mu[at]
        z_pred, H = model.predict(x.reshape(-1, STATE_DIM))
        nu = model.residual(np.repeat(z, k, axis=0), z_pred)
        xc = np.empty((n, STATE_DIM))
        Pc = np.empty((n, STATE_DIM, STATE_DIM))
        fused.imm_update(x, P, mu, H.reshape(n, k, model.dim, STATE_DIM),
                         nu.reshape(n, k, model.dim), np.ascontiguousarray(R), xc, Pc)
        self.x[at], self.P[at], self.mu[at], self.xc[at], self.Pc[at] = x, P, mu, xc, Pc

    def _fuse_partner(self, at: NDArray[np.intp], x: F64, P: F64) -> None:
        """Covariance intersection of each IMM mode of tracks ``at`` with partner states
        (n, 6) and covariances (n, 6, 6); the turn rate keeps its own variance."""
        if at.size == 0:
            return
        k = self._k
        xm, Pm = self.x[at], self.P[at]  # (n, k, 7), (n, k, 7, 7)
        fx, fP, _ = covariance_intersection(
            xm[:, :, :6].reshape(-1, 6), Pm[:, :, :6, :6].reshape(-1, 6, 6),
            np.repeat(x, k, axis=0), np.repeat(P, k, axis=0))
        xm[:, :, :6] = fx.reshape(-1, k, 6)
        Pm[:, :, :6, 6] = 0.0
        Pm[:, :, 6, :6] = 0.0
        Pm[:, :, :6, :6] = fP.reshape(-1, k, 6, 6)
        self.x[at], self.P[at] = xm, Pm
        self.xc[at], self.Pc[at] = imm.combine(self.mu[at], xm, Pm)

    def _initiate(self, pos: F64, cov: F64, t: float, *, sensor: int,
                  identity: NDArray[np.str_] | None = None,
                  category: NDArray[np.str_] | None = None,
                  velocity: F64 | None = None, state_cov: F64 | None = None) -> None:
        m = pos.shape[0]
        if m == 0:
            return
        model = self.sensors[sensor]
        cfg = self.config
        x = np.zeros((m, self._k, STATE_DIM))
        x[:, :, :3] = pos[:, None, :]
        P = np.zeros((m, STATE_DIM, STATE_DIM))
        P[:, :3, :3] = cov
        vh, vu = cfg.init_velocity_std_mps
        P[:, 3, 3] = P[:, 4, 4] = vh**2
        P[:, 5, 5] = vu**2
        P[:, 6, 6] = cfg.init_turn_rate_std_radps**2
        self._borrow_group_velocity(pos, x, P)
        if velocity is not None and state_cov is not None:  # a partner's full state
            x[:, :, 3:6] = velocity[:, None, :]
            P[:, :6, :6] = state_cov
        ids = np.arange(self._next_id, self._next_id + m, dtype=np.int64)
        self._next_id += m
        self._append(
            id=ids,
            x=x,
            P=np.repeat(P[:, None], self._k, axis=1),
            mu=np.tile(np.asarray(cfg.initial_mode_probabilities), (m, 1)),
            status=np.full(m, TrackStatus.TENTATIVE, dtype=np.int8),
            t_first=np.full(m, t),
            t_last=np.full(m, t),
            hits=np.ones(m, dtype=np.int32),
            misses=np.zeros(m, dtype=np.int32),
            looks=np.ones(m, dtype=np.int32),
            score=np.zeros(m),
            fade=np.zeros(m),
            emitter=np.zeros(m),
            q_scale=np.full(m, cfg.class_q_scale.get("unknown", 1.0)),
            xc=x[:, 0],
            Pc=P,
            identity=identity if identity is not None else np.full(m, "", dtype=np.str_),
            category=category if category is not None else np.full(m, "", dtype=np.str_),
            sources=np.full(m, self._bit[sensor], dtype=np.uint64),
            miss_evidence=np.zeros(m),
            claim_miss_since=np.full(m, np.nan),
            t_sensed=np.full(m, np.nan if model.cooperative else t),
            t_rf=np.full(m, t if model.modality == "rf" else np.nan),
            silence=np.zeros((m, len(self.sensors))),
            clutter_sensor=np.full(m, sensor if model.initiates else -1, dtype=np.int32),
        )
        if self.t is None:
            self.t = t

    def _borrow_group_velocity(self, pos: F64, x: F64, P: F64) -> None:
        """Start a new track near established ones with their velocity (in place).

        A drone of a swarm flies with its neighbours: a detection among
        established tracks takes their mean velocity, with their spread (at least
        ``group_velocity_floor_mps``) as its uncertainty, instead of the wide
        prior. With the wide prior its gate would cover the whole swarm and its
        next detections would go to the established neighbours, leaving the
        drone untracked.
        """
        cfg = self.config
        est = np.flatnonzero(self.status != TrackStatus.TENTATIVE)
        if est.size == 0 or cfg.group_radius_m <= 0:
            return
        tree = cKDTree(self.xc[est, :3])
        dist, idx = tree.query(pos, k=min(8, est.size), distance_upper_bound=cfg.group_radius_m)
        dist, idx = dist.reshape(pos.shape[0], -1), idx.reshape(pos.shape[0], -1)
        near = np.isfinite(dist)
        count = near.sum(axis=1)
        grouped = count >= 2
        if not grouped.any():
            return
        v = self.xc[est[np.where(near, idx, 0)], 3:6] * near[:, :, None]  # (m, k, 3)
        mean = v.sum(axis=1) / np.maximum(count, 1)[:, None]
        var = ((v - mean[:, None, :]) ** 2 * near[:, :, None]).sum(axis=1) / np.maximum(
            count - 1, 1)[:, None]
        var = np.maximum(var, cfg.group_velocity_floor_mps**2)
        g = np.flatnonzero(grouped)
        x[g, :, 3:6] = mean[g, None, :]
        P[g, 3, 3], P[g, 4, 4], P[g, 5, 5] = var[g, 0], var[g, 1], var[g, 2]

    def _life_cycle(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        cfg = self.config
        tentative = self.status == TrackStatus.TENTATIVE
        confirm = tentative & (self.score >= self._confirm_score) & (self.hits >= 2)
        fail = tentative & ~confirm & (
            (self.score <= self._drop_score)
            | (self.misses >= cfg.max_misses_tentative)
            | (self.looks > cfg.max_tentative_looks)
        )
        self.status[confirm] = TrackStatus.CONFIRMED
        established = self.status != TrackStatus.TENTATIVE
        self.status[established] = np.where(
            self.misses[established] > 0, TrackStatus.COASTING, TrackStatus.CONFIRMED)
        pos_var = np.trace(self.Pc[:, :3, :3], axis1=1, axis2=2)
        lost = established & (self.misses >= cfg.max_misses_confirmed)
        if self.t is not None:
            # Several sensors look many times a second: misses alone would delete a
            # track within a second of a gap. It must also have gone unseen a while.
            lost &= self.t - self.t_last >= cfg.min_coast_s
            lost |= self.t - self.t_last > cfg.max_coast_s
        diverged = pos_var > cfg.max_position_std_m**2
        # Sequential test of a confirmed track (Blackman & Popoli): once the evidence
        # since its best look says clutter as firmly as it once said target, it is gone,
        # however often one sensor still feeds it (a ghost on one sensor's line of
        # bearing that every other sensor that should see it misses).
        faded = established & (self.fade > cfg.confirmed_fade_score)
        drop = fail | lost | diverged | faded
        self._learn_clutter(fail)
        deleted = self.id[drop]
        confirmed = self.id[confirm]
        if drop.any():
            self._keep(~drop)
        return confirmed, deleted

    def _update_result(self, t: float, confirmed: NDArray[np.int64], deleted: NDArray[np.int64],
                       n_assigned: int, n_unassigned: int) -> TrackUpdate:
        return TrackUpdate(t=t, tracks=self.tracks(), confirmed=confirmed, deleted=deleted,
                           n_assigned=n_assigned, n_unassigned=n_unassigned)
