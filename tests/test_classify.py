"""skyfence.classify: each class from synthetic tracks, identity and spoofing, the unknown
rule, id bookkeeping, and accuracy on simulated and real tracks through the tracker."""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from skyfence import sim
from skyfence.classify import (
    ADSB_CATEGORIES,
    BIRD,
    CLASSES,
    CREWED,
    DRONE_CLASSES,
    FAST_LOW_FLYER,
    FIXED_WING,
    MULTIROTOR,
    PROFILES,
    R_CONTRADICTS,
    R_RF,
    R_YOUNG,
    REASONS,
    UNKNOWN,
    Classification,
    Classifier,
    ClassifierConfig,
    adsb_category_code,
    adsb_category_name,
    reasons_text,
)
from skyfence.errors import SkyfenceError
from skyfence.geo import Origin, height_above_origin_m
from skyfence.pipeline import batch_bounds
from skyfence.scenario import Region, Scenario, SensorSpec, StateTable
from skyfence.sim import radar
from skyfence.sim.birds import birds
from skyfence.sim.crewed import AIRBORNE_MIN_M, RECORDINGS, load_recording, replay
from skyfence.sim.motion import TargetStates
from skyfence.sim.presets import START_S, ZURICH
from skyfence.sim.result import SimResult
from skyfence.sim.seeding import stream
from skyfence.sim.sensors import observe
from skyfence.track import Tracker
from skyfence.types import F64, TrackFlag, TrackStatus

T0 = 1.7e9

# --------------------------------------------------------------------------- synthetic tracks


@dataclass(frozen=True, slots=True)
class Flight:
    """A synthetic track: ENU velocity (n, 3) and height (n,) at 1 s steps from T0."""

    v: F64
    height_m: F64
    manoeuvre_p: float

    def states(self) -> F64:
        x = np.zeros((self.v.shape[0], 6))
        x[:, :2] = np.cumsum(self.v[:, :2], axis=0)
        x[:, 2] = self.height_m
        x[:, 3:] = self.v
        return x


def _heading_flight(rng: np.random.Generator, n: int, *, speed_mps: F64 | float,
                    heading_rad: F64, height_m: float, manoeuvre_p: float,
                    noise_mps: float = 0.7) -> Flight:
    speed = np.broadcast_to(np.asarray(speed_mps, dtype=np.float64), (n,))
    v = np.stack([speed * np.sin(heading_rad), speed * np.cos(heading_rad), np.zeros(n)], axis=1)
    v += rng.normal(0.0, noise_mps, v.shape)  # the tracker's velocity noise
    return Flight(v=v, height_m=np.full(n, height_m), manoeuvre_p=manoeuvre_p)


def hovering_multirotor(rng: np.random.Generator, n: int = 60) -> Flight:
    return _heading_flight(rng, n, speed_mps=0.0, heading_rad=np.zeros(n), height_m=60.0,
                           manoeuvre_p=0.15)


def fixed_wing_40mps_at_100m(rng: np.random.Generator, n: int = 60) -> Flight:
    # Straight legs of 10 s and 20° s⁻¹ banked turns through 90°, to alternate sides.
    rate = np.zeros(n)
    for k, start in enumerate(range(10, n, 15)):
        rate[start:start + 5] = math.radians(18.0) * (1 if k % 2 else -1)
    return _heading_flight(rng, n, speed_mps=40.0, heading_rad=np.cumsum(rate), height_m=100.0,
                           manoeuvre_p=0.45)


def fast_low_flyer(rng: np.random.Generator, n: int = 40) -> Flight:
    return _heading_flight(rng, n, speed_mps=250.0, heading_rad=np.full(n, 1.0), height_m=60.0,
                           manoeuvre_p=0.2)


def airliner(rng: np.random.Generator, n: int = 60) -> Flight:
    return _heading_flight(rng, n, speed_mps=230.0, heading_rad=np.full(n, 2.0),
                           height_m=3000.0, manoeuvre_p=0.1)


def meandering_bird(rng: np.random.Generator, n: int = 60) -> Flight:
    heading = np.cumsum(rng.normal(0.0, 0.5, n))  # a random walk: it wanders
    speed = 10.0 + rng.normal(0.0, 1.0, n)
    return _heading_flight(rng, n, speed_mps=speed, heading_rad=heading, height_m=50.0,
                           manoeuvre_p=0.5)


def waypoint_multirotor(rng: np.random.Generator, turn_rad: float, *, leg_s: int = 40,
                        hover_s: int = 5, speed_mps: float = 12.0) -> Flight:
    """A multirotor flying to a waypoint: a straight leg, braking to a hover, then the
    next leg ``turn_rad`` off the first (it turns on the spot, as the simulator's do)."""
    ramp = speed_mps * np.array([2.0, 1.0, 0.0]) / 3.0
    speed = np.concatenate([np.full(leg_s, speed_mps), ramp, np.zeros(hover_s), ramp[::-1],
                            np.full(leg_s, speed_mps)])
    n = speed.size
    heading = np.where(np.arange(n) < leg_s + 3 + hover_s // 2, 0.0, turn_rad)
    return _heading_flight(rng, n, speed_mps=speed, heading_rad=heading, height_m=80.0,
                           manoeuvre_p=0.2)


def _fly(clf: Classifier, flight: Flight, *, track_id: int = 7, step_s: float = 1.0,
         velocity_std_mps: float = 1.0, **identity: object) -> Iterator[Classification]:
    """Feed ``flight`` (1 s steps, every ``step_s``-th) to ``clf``; yield each result."""
    x = flight.states()
    stride = round(step_s)
    for k in range(0, x.shape[0], stride):
        yield clf.update(
            T0 + k, track_id=[track_id], x=x[k:k + 1], height_agl_m=flight.height_m[k:k + 1],
            manoeuvre_p=[flight.manoeuvre_p], velocity_std_mps=[velocity_std_mps],
            **{name: [value] for name, value in identity.items()},
        )


def _last(flight: Flight, **kwargs: object) -> Classification:
    *_, out = _fly(Classifier(), flight, **kwargs)
    return out


# --------------------------------------------------------------------------- tables


def test_classes_reasons_and_codes() -> None:
    assert CLASSES == ("drone_multirotor", "drone_fixed_wing", "crewed_aircraft", "bird",
                       "fast_low_flyer", "unknown")
    assert len(set(REASONS)) == len(REASONS) <= 32
    assert adsb_category_code("A3") == 13 and adsb_category_code(" b6 ") == 26
    assert adsb_category_code("n/a") == adsb_category_code("") == adsb_category_code("E1") == 0
    assert all(adsb_category_code(adsb_category_name(c)) == c for c in ADSB_CATEGORIES)
    assert reasons_text(0) == []
    assert reasons_text(R_RF | R_YOUNG) == ["RF drone link", "too young to classify"]


def test_all_profiles_at_once_equal_each_profile_alone() -> None:
    """The classifier evaluates every profile's densities in one array expression; they
    must be the densities ``PROFILES`` declares."""
    rng = np.random.default_rng(0)
    f = {"speed": rng.uniform(0, 320, 200), "max_speed": rng.uniform(0, 350, 200),
         "height": rng.uniform(-50, 12_000, 200), "vertical_rate": rng.uniform(0, 15, 200),
         "hover": rng.uniform(0, 1, 200), "manoeuvre": rng.uniform(0, 1, 200),
         "straightness": rng.uniform(0, 1, 200)}
    want = np.stack([p.log_likelihoods(f) for p in PROFILES], axis=1)
    got = Classifier()._densities.log_likelihoods(f)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- one class each


@pytest.mark.parametrize(("make", "want", "because"), [
    (hovering_multirotor, MULTIROTOR, "hovers"),
    (fixed_wing_40mps_at_100m, FIXED_WING, "speed 40 m/s"),
    (fast_low_flyer, FAST_LOW_FLYER, "speed 250 m/s at 60 m AGL"),
    (airliner, CREWED, "height 3000 m AGL"),
    (meandering_bird, BIRD, "manoeuvres or meanders"),
])
def test_each_class_from_its_kinematics(make: Callable[[np.random.Generator], Flight],
                                        want: int, because: str) -> None:
    for seed in range(3):
        out = _last(make(np.random.default_rng(seed)))
        assert out.label_names() == [CLASSES[want]], (seed, out.probs, out.reasons_text(0))
        assert out.probs[0, want] > 0.6
        np.testing.assert_allclose(out.probs.sum(axis=1), 1.0)
        assert any(r.startswith(because) for r in out.reasons_text(0)), out.reasons_text(0)


@pytest.mark.parametrize("turn_rad", [math.pi / 2, 2.5, math.pi])
def test_a_multirotor_turning_at_a_waypoint_does_not_meander(turn_rad: float) -> None:
    """Straightness is that of the leg since the last stop: a multirotor that brakes to
    a hover and sets off in another direction (back the way it came, even) has not
    meandered, and is not called a bird for the next half minute (it was, for most of
    it, while straightness spanned both legs: down to 0.02 after a reversal)."""
    for seed in range(3):
        flight = waypoint_multirotor(np.random.default_rng(seed), turn_rad)
        after_stop = list(_fly(Classifier(), flight))[50:]  # the second leg, from the hover
        assert min(o.straightness[0] for o in after_stop) > 0.9
        assert all(o.label[0] == MULTIROTOR for o in after_stop), [
            (k, o.label_names(), o.straightness[0]) for k, o in enumerate(after_stop)]


def test_young_tracks_are_unknown() -> None:
    clf = Classifier()
    outs = list(_fly(clf, fast_low_flyer(np.random.default_rng(0), n=8)))
    young = [o for o in outs if o.age_s[0] < clf.config.min_age_s]
    assert len(young) == 5
    assert all(o.label[0] == UNKNOWN and o.reasons[0] & R_YOUNG for o in young)
    # The probabilities are there from the first look; only the label waits.
    assert outs[0].probs[0, FAST_LOW_FLYER] > 0.5
    assert outs[-1].label[0] == FAST_LOW_FLYER and not outs[-1].reasons[0] & R_YOUNG


def test_evidence_does_not_depend_on_the_scan_rate() -> None:
    rng = np.random.default_rng(3)
    flight = fixed_wing_40mps_at_100m(rng, n=121)
    every_s = _last(flight)
    every_4s = _last(flight, step_s=4.0)
    assert every_s.label[0] == every_4s.label[0] == FIXED_WING
    assert abs(every_s.speed_mps[0] - every_4s.speed_mps[0]) < 2.0
    assert abs(every_s.straightness[0] - every_4s.straightness[0]) < 0.1


# --------------------------------------------------------------------------- identity and RF


def test_cooperative_identity() -> None:
    rng = np.random.default_rng(1)
    # An ordinary-looking 60 m/s at 600 m: ADS-B says what it is.
    cruising = _heading_flight(rng, 40, speed_mps=60.0, heading_rad=np.full(40, 0.3),
                               height_m=600.0, manoeuvre_p=0.15)
    out = _last(cruising, identity_kind=1, adsb_category=adsb_category_code("A3"))
    assert out.label[0] == CREWED and out.probs[0, CREWED] > 0.99
    assert "ADS-B category A3 (large aircraft)" in out.reasons_text(0)
    # A claimed UAV (B6) at 40 m/s, 300 m is a drone.
    uav = _heading_flight(rng, 40, speed_mps=40.0, heading_rad=np.full(40, 0.3),
                          height_m=300.0, manoeuvre_p=0.3)
    out = _last(uav, identity_kind=1, adsb_category=adsb_category_code("B6"))
    assert out.label[0] == FIXED_WING, out.probs
    # Remote ID says drone; its UA type says which.
    slow = _heading_flight(rng, 40, speed_mps=25.0, heading_rad=np.full(40, 1.0),
                           height_m=80.0, manoeuvre_p=0.3)
    out = _last(slow, identity_kind=2, rid_ua_type=2)
    assert out.label[0] == MULTIROTOR
    assert "Remote ID UA type helicopter/multirotor" in out.reasons_text(0)
    out = _last(slow, identity_kind=2, rid_ua_type=1)
    assert out.label[0] == FIXED_WING
    assert "Remote ID UA type aeroplane" in out.reasons_text(0)
    # An RF drone link tips a bird-or-drone track to drone, and says so.
    bird = meandering_bird(np.random.default_rng(0))
    assert _last(bird).label[0] == BIRD
    out = _last(bird, rf_emission=True)
    assert out.label[0] in DRONE_CLASSES and out.reasons[0] & R_RF


def test_a_claimed_identity_cannot_fly_the_impossible() -> None:
    # Claims an airliner's ADS-B but hovers at 80 m: not called crewed; flagged.
    out = _last(hovering_multirotor(np.random.default_rng(0)), identity_kind=1,
                adsb_category=adsb_category_code("A3"))
    assert out.label[0] != CREWED and out.probs[0, CREWED] < 0.2
    assert out.reasons[0] & R_CONTRADICTS
    # Claims Remote ID but flies 230 m/s at 3 km: not called a drone.
    out = _last(airliner(np.random.default_rng(0)), identity_kind=2, rid_ua_type=2)
    assert out.label[0] not in DRONE_CLASSES and out.reasons[0] & R_CONTRADICTS
    # A real rotorcraft (A7) may hover: it stays crewed and is never called a drone.
    hover = hovering_multirotor(np.random.default_rng(0))
    hover = replace(hover, height_m=np.full_like(hover.height_m, 300.0))
    outs = list(_fly(Classifier(), hover, identity_kind=1, adsb_category=17))
    assert outs[-1].label[0] == CREWED
    assert not any(o.label[0] in DRONE_CLASSES for o in outs)


def test_identity_is_remembered_for_a_while() -> None:
    clf = Classifier(config=ClassifierConfig(identity_memory_s=10.0))
    flight = _heading_flight(np.random.default_rng(2), 60, speed_mps=25.0,
                             heading_rad=np.full(60, 1.0), height_m=80.0, manoeuvre_p=0.3)
    x = flight.states()
    kinds = np.where(np.arange(60) < 20, 2, 0)  # Remote ID heard for 20 s, then not
    outs = [clf.update(T0 + k, track_id=[1], x=x[k:k + 1], height_agl_m=[80.0],
                       manoeuvre_p=[0.3], identity_kind=[kinds[k]], rid_ua_type=[1])
            for k in range(60)]
    assert outs[25].label[0] == FIXED_WING  # the aeroplane UA type still counts
    assert outs[25].probs[0, FIXED_WING] > outs[59].probs[0, FIXED_WING]


# --------------------------------------------------------------------------- bookkeeping


def _random_tracks(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "x": np.c_[rng.uniform(-5e3, 5e3, (n, 2)), rng.uniform(20, 3000, n),
                   rng.normal(0, 40, (n, 2)), rng.normal(0, 2, n)],
        "height_agl_m": rng.uniform(20, 3000, n),
        "manoeuvre_p": rng.uniform(0, 1, n),
        "identity_kind": rng.integers(0, 3, n).astype(np.int8),
        "adsb_category": rng.choice([0, 13, 17, 26], n).astype(np.int8),
        "rid_ua_type": rng.integers(-1, 16, n).astype(np.int8),
        "rf_emission": rng.random(n) < 0.2,
        "velocity_std_mps": rng.uniform(0.5, 8, n),
    }


def test_results_follow_ids_not_rows() -> None:
    """Tracks appear and disappear; any order of rows gives the same result per id."""
    rng = np.random.default_rng(0)
    base = _random_tracks(rng, 40)
    ids = np.arange(100, 140, dtype=np.int64)
    a, b = Classifier(), Classifier()
    for k in range(30):
        alive = (ids % 7 != k % 7) | (k < 3)  # a different seventh missing each scan...
        alive &= ids < 120 + k                # ... and new ids joining
        rows = np.flatnonzero(alive)
        step = {name: v[rows] for name, v in base.items()}
        step["x"] = step["x"] + np.c_[np.zeros((rows.size, 3)), rng.normal(0, 1, (rows.size, 3))]
        perm = rng.permutation(rows.size)
        ra = a.update(T0 + k, track_id=ids[rows], keep_absent=True, **step)
        rb = b.update(T0 + k, track_id=ids[rows][perm], keep_absent=True,
                      **{name: v[perm] for name, v in step.items()})
        np.testing.assert_array_equal(ra.track_id, ids[rows])
        np.testing.assert_array_equal(rb.track_id, ids[rows][perm])
        back = np.argsort(perm)
        for name in ("probs", "label", "reasons", "speed_mps", "straightness", "age_s"):
            np.testing.assert_array_equal(getattr(rb, name)[back], getattr(ra, name))
    assert len(a) == 40


def test_absent_tracks_are_forgotten() -> None:
    rng = np.random.default_rng(1)
    tracks = _random_tracks(rng, 3)
    clf = Classifier()
    clf.update(T0, track_id=[5, 6, 7], **tracks)
    clf.update(T0 + 1, track_id=[7, 5], **{k: v[[2, 0]] for k, v in tracks.items()})
    assert clf.id.tolist() == [5, 7]
    out = clf.update(T0 + 2, track_id=[6], **{k: v[[1]] for k, v in tracks.items()})
    assert out.age_s.tolist() == [0.0]  # id 6 came back: a fresh start
    clf.forget([6])
    assert len(clf) == 0
    empty = clf.update(T0 + 3, track_id=np.empty(0, np.int64), x=np.empty((0, 6)),
                       height_agl_m=np.empty(0), manoeuvre_p=np.empty(0))
    assert len(empty) == 0 and empty.probs.shape == (0, len(CLASSES))


def test_bad_input_is_refused() -> None:
    clf = Classifier()
    one = {"x": np.zeros((1, 6)), "height_agl_m": [50.0], "manoeuvre_p": [0.1]}
    clf.update(T0, track_id=[1], **one)
    with pytest.raises(SkyfenceError, match="older"):
        clf.update(T0 - 1, track_id=[1], **one)
    with pytest.raises(SkyfenceError, match="duplicates"):
        clf.update(T0 + 1, track_id=[1, 1], x=np.zeros((2, 6)), height_agl_m=[1, 2],
                   manoeuvre_p=[0, 0])
    with pytest.raises(SkyfenceError, match="shape"):
        clf.update(T0 + 1, track_id=[1, 2], **one)
    with pytest.raises(SkyfenceError):
        ClassifierConfig(weights={"colour": 1.0})


# --------------------------------------------------------------------------- through the tracker

#: Correct class of each simulated target kind. Swarm drones fly 10–18 m/s in formation,
#: never hovering: multirotors.
TRUE_CLASS = {"multirotor": MULTIROTOR, "swarm": MULTIROTOR, "fixed_wing": FIXED_WING,
              "crewed": CREWED, "fast_low_flyer": FAST_LOW_FLYER, "bird": BIRD}
#: A track counts towards a target when it is within this of the target's truth (m).
ASSOCIATION_M = 100.0
#: Track-time scored from this age of each track on (s).
SCORED_AFTER_S = 10.0
#: The simulated world has ADS-B receivers that hear every crewed aircraft.
WITH_ADSB = ClassifierConfig(adsb_coverage=0.9)


@dataclass(frozen=True, slots=True)
class Score:
    correct: Counter[str]
    total: Counter[str]
    labels: Counter[tuple[str, str]]
    #: Crewed target id → number of track looks labelled a drone (any age).
    crewed_as_drone: Counter[int]

    @property
    def accuracy(self) -> float:
        return sum(self.correct.values()) / max(sum(self.total.values()), 1)

    def of(self, kind: str) -> float:
        return self.correct[kind] / max(self.total[kind], 1)


def _category_of(r: SimResult) -> dict[int, int]:
    """ADS-B emitter category code of each crewed replay (as the simulator gives it)."""
    notes = r.scenario.extra["simulator"]["target_notes"]
    return {int(t): adsb_category_code(RECORDINGS[note["recording"]].adsb_category)
            for t, note in notes.items() if "recording" in note}


_TRACKED: dict[int, tuple[SimResult, list[tuple[float, dict[str, np.ndarray]]]]] = {}


def _tracked(r: SimResult) -> list[tuple[float, dict[str, np.ndarray]]]:
    """Per scan: the confirmed and coasting tracks with the target each follows (-1).
    Kept per result for the module: several tests classify the same tracks."""
    if id(r) in _TRACKED:
        return _TRACKED[id(r)][1]
    tracker = Tracker.from_scenario(r.scenario)
    truth = r.truth
    out = []
    starts, ends = batch_bounds(r.detections.t)
    for a, b in zip(starts, ends, strict=True):  # over scans
        u = tracker.step(r.detections.take(slice(a, b)))
        tr = u.tracks.take(u.tracks.status != TrackStatus.TENTATIVE)
        at = np.flatnonzero(truth.t == u.t)
        target = np.full(len(tr), -1, dtype=np.int64)
        if at.size and len(tr):
            d = np.linalg.norm(tr.x[:, None, :3] - truth.x[None, at, :3], axis=2)
            j = d.argmin(axis=1)
            target = np.where(d[np.arange(len(tr)), j] < ASSOCIATION_M, truth.id[at][j], -1)
        out.append((u.t, {
            "track_id": tr.id, "x": tr.x, "target": target,
            "height_agl_m": height_above_origin_m(r.scenario.origin, tr.x[:, :3]),
            "manoeuvre_p": tr.manoeuvre_p,
            "velocity_std_mps": np.sqrt(0.5 * (tr.P[:, 3, 3] + tr.P[:, 4, 4])),
            "rf_emission": (tr.flags & np.uint16(TrackFlag.RF_EMITTER)) != 0,
        }))
    _TRACKED[id(r)] = (r, out)
    return out


def _score(r: SimResult, *, config: ClassifierConfig | None = None,
           adsb: dict[int, int] | None = None) -> Score:
    """Classify the tracker's tracks of ``r``; score them against the truth.

    ``adsb`` maps crewed target ids to their emitter category: a track following
    one of them carries its ICAO identity (what an ADS-B receiver would attach).
    """
    clf = Classifier(config=config)
    kinds = r.target_kind
    s = Score(Counter(), Counter(), Counter(), Counter())
    for t, tracks in _tracked(r):
        target = tracks["target"]
        kind = np.array([kinds.get(int(g), "") for g in target])
        claims = {}
        if adsb is not None:
            cat = np.array([adsb.get(int(g), 0) for g in target], dtype=np.int8)
            claims = {"identity_kind": np.isin(target, list(adsb)).astype(np.int8),
                      "adsb_category": cat}
        inputs = {k: v for k, v in tracks.items() if k != "target"}
        c = clf.update(t, **inputs, **claims)
        drone = np.isin(c.label, DRONE_CLASSES)
        for g in target[(kind == "crewed") & drone]:
            s.crewed_as_drone[int(g)] += 1
        scored = (kind != "") & (c.age_s >= SCORED_AFTER_S)
        for k, label in zip(kind[scored], c.label[scored], strict=True):
            s.total[k] += 1
            s.correct[k] += int(label == TRUE_CLASS[k])
            s.labels[(k, CLASSES[label])] += 1
    return s


def _report(name: str, s: Score) -> str:
    kinds = " ".join(f"{k} {s.of(k):.3f} ({s.total[k]})" for k in sorted(s.total))
    drone = dict(s.crewed_as_drone)
    return f"{name}: {s.accuracy:.3f} — {kinds}; crewed looks called drone {drone}"


@cache
def _mixed(seed: int) -> SimResult:
    return sim.build("mixed", seed=seed)


#: Seeds 1–6 were used to tune ``PROFILES``; 7–12 were not.
MIXED_SEEDS = tuple(range(1, 13))


def test_mixed_preset_accuracy() -> None:
    """The target: ≥ 95 % of track-time correct on the simulated mix, no crewed aircraft
    ever called a drone. The crewed replays carry their ADS-B identity.

    Measured when the profiles were tuned (seeds 1–6; 7–12 held out): mean 0.954 and
    0.942. Since the preset's crewed replays are also heard by its ADS-B receiver (so
    the tracker itself fuses them): seeds 1–11 0.933 0.974 0.960 0.960 0.963 0.973 0.961
    0.971 0.964 0.944 0.886, seed 12 0.970; mean 0.955. Since a stop ends a leg of the
    straightness window: 0.954 0.980 0.971 0.987 0.975 0.984 0.953 0.981 0.983 0.976
    0.913 0.981; mean 0.970 (fixed-wing drones are the weakest, 0.68–1.0). This test
    guards against regressions below the earlier figures.
    """
    scores = []
    for seed in MIXED_SEEDS:
        r = _mixed(seed)
        s = _score(r, config=WITH_ADSB, adsb=_category_of(r))
        print(_report(f"mixed seed {seed}", s))
        assert not s.crewed_as_drone
        assert s.accuracy > 0.87
        scores.append(s.accuracy)
    print(f"mixed mean {np.mean(scores):.4f}")
    assert np.mean(scores[:6]) >= 0.95 and np.mean(scores) >= 0.94


def test_mixed_preset_without_identity() -> None:
    """Kinematics alone: crewed replays (rescue helicopters at 25–60 m/s, 100–500 m) fly
    like fixed-wing drones; most of their track-time is 'unknown' rather than a guess."""
    for seed in MIXED_SEEDS[:3]:  # tracked already, for the test above
        s = _score(_mixed(seed))
        print(_report(f"mixed seed {seed}, kinematics only", s))
        # Measured: 0.855, 0.867, 0.856; drones are classified as well as with identity.
        assert s.accuracy > 0.8
        assert s.of("swarm") > 0.9 and s.of("fast_low_flyer") > 0.95
        crewed = sum(s.total[k] for k in ("crewed",))
        assert sum(s.crewed_as_drone.values()) < 0.2 * max(crewed, 1)


def _bird_scenario(seed: int, n: int = 20, duration_s: float = 90.0) -> SimResult:
    """Birds meandering 10–200 m above a 6 km square, under a drone radar (1 s)."""
    half = 3_000.0
    drone_radar = SensorSpec(id="radar", kind="radar", position_enu_m=(0.0, 0.0, 20.0), pd=0.9,
                             noise_std=(5.0, 0.005, 0.008), clutter_per_scan=10.0,
                             max_range_m=half * 1.5, min_elevation_rad=-0.05, scan_period_s=1.0,
                             extra={"clutter_over": "region"})
    region = Region(east_m=(-half, half), north_m=(-half, half), up_m=(-20.0, 600.0))
    sc = Scenario(name="birds", origin=ZURICH, scan_period_s=1.0, sensors=(drone_radar,),
                  region=region)
    times = START_S + np.arange(0.0, duration_s, 1.0)
    rng = stream(seed, "birds")
    start = np.c_[rng.uniform(-0.7 * half, 0.7 * half, (n, 2)), rng.uniform(20.0, 180.0, n)]
    return _simulated(sc, times, birds(ZURICH, times - START_S, rng, start=start), "bird", seed)


def _simulated(sc: Scenario, times: F64, states: TargetStates, kind: str,
               seed: int) -> SimResult:
    ids = np.arange(1, states.n_targets + 1, dtype=np.int64)
    det, who = observe(sc, times, states, ids, (times,), seed)
    ti, ni = np.nonzero(states.alive)
    truth = StateTable(t=times[ti], id=ids[ni],
                       x=np.concatenate([states.pos[ti, ni], states.vel[ti, ni]], axis=-1))
    return SimResult(scenario=sc, detections=det, truth=truth,
                     target_kind={int(i): kind for i in ids}, detection_target=who,
                     scan_times=(times,))


def test_birds_through_the_tracker() -> None:
    for seed in (1, 2):
        s = _score(_bird_scenario(seed))
        print(_report(f"birds seed {seed}", s))
        # Measured: 0.767 and 0.745; the rest are mostly called multirotors (the price of
        # ≥ 95 % on the swarm, which flies at bird speeds; see ``PROFILES``).
        assert s.of("bird") > 0.7
        assert s.labels[("bird", "crewed_aircraft")] == 0


def _whole_recordings(*, seed: int = 0, period_s: float = 4.0) -> SimResult:
    """Every shipped recording, the whole of its airborne part, at once (one target
    each), under a surveillance radar (4 s scans, 5 clutter per scan)."""
    names = tuple(sorted(RECORDINGS))
    spans = []
    for name in names:
        rec = load_recording(name)
        up = np.flatnonzero(height_above_origin_m(rec.ref, rec.x[:, :3]) > AIRBORNE_MIN_M)
        spans.append(float(rec.t[up[-1]] - rec.t[up[0]]))
    # The crewed preset's surveillance radar: 20 m mast, 4 s, 5 clutter per scan.
    surveillance = SensorSpec(
        id="radar", kind="radar", position_enu_m=(0.0, 0.0, 20.0), pd=0.9,
        noise_std=(25.0, 0.0035, 0.005), clutter_per_scan=5.0, max_range_m=120_000.0,
        min_elevation_rad=-0.02, scan_period_s=period_s)
    surveillance = replace(surveillance, extra={
        "clutter_over": "coverage", "clutter_coverage": radar.coverage(surveillance)})
    sc = Scenario(name="whole-recordings", origin=ZURICH, scan_period_s=period_s,
                  sensors=(surveillance,))
    times = START_S + np.arange(0.0, max(spans), period_s)
    # A window at least as long as a recording's airborne span starts where it takes
    # off, so each is replayed whole (placed as the crewed preset places it).
    truth = replay(ZURICH, times, np.random.default_rng(seed), names=names, t_start=START_S,
                   duration_s=max(spans), moved_range_m=(5_000.0, 15_000.0))
    r = _simulated(sc, times, truth.states, "crewed", seed)
    alive_s = truth.states.alive.sum(axis=0) * period_s
    assert np.all(alive_s >= np.array(spans) - 2 * period_s)  # whole, indeed
    return r


def test_crewed_preset_never_calls_a_crewed_aircraft_a_drone() -> None:
    used: set[str] = set()
    for seed in (1, 2, 3):
        r = sim.build("crewed", seed=seed)
        notes = r.scenario.extra["simulator"]["target_notes"]
        used |= {n["recording"] for n in notes.values() if "recording" in n}
        s = _score(r, config=WITH_ADSB, adsb=_category_of(r))
        print(_report(f"crewed seed {seed}", s))
        assert not s.crewed_as_drone
        # Measured 0.85–1.0: the border patrol at 15–20 m/s, circling, is unknown or a
        # bird at times (never a drone). The fast low flyer rises over the horizon late.
        assert s.of("crewed") > 0.8
        assert s.total["fast_low_flyer"] == 0 or s.of("fast_low_flyer") >= 0.9
    # The preset's three crewed replays are the three recordings that ship.
    assert used == set(RECORDINGS)


def test_every_recording_whole_is_never_called_a_drone() -> None:
    """Each shipped recording, its whole airborne part (the border patrol's four hours
    included), through the radar and the tracker, with its ICAO address but no emitter
    category (the recordings carry none)."""
    r = _whole_recordings()
    s = _score(r, config=WITH_ADSB, adsb=dict.fromkeys(r.target_kind, 0))
    print(_report("recordings whole, ADS-B without category", s))
    assert not s.crewed_as_drone
    assert s.of("crewed") > 0.95


# --------------------------------------------------------------------------- real data

#: Real decoded flights: two copied into the tests' data (with their provenance), the
#: three recordings the simulator replays shipped in the package.
TEST_ADSB = Path(__file__).resolve().parent / "data" / "adsb"


def _recording_path(name: str, suffix: str) -> Path:
    here = TEST_ADSB / f"{name}{suffix}"
    if here.is_file():
        return here
    return Path(str(resources.files("skyfence.sim").joinpath("data").joinpath(name + suffix)))
FT_M, KT_MPS, FPM_MPS = 0.3048, 1852.0 / 3600.0, 0.3048 / 60.0
#: Paris-CDG, where ``full_flight_short_first3000`` starts: elevation 392 ft.
CDG_ELEVATION_M = 392 * FT_M


def _records_columns(path: Path) -> dict[str, np.ndarray]:
    doc = json.loads(gzip.decompress(path.read_bytes()))
    if isinstance(doc, dict):  # pandas "columns" orient: {column: {row: value}}
        return {k: np.array([v[i] for i in sorted(v, key=int)]) for k, v in doc.items()}
    keys = {k for row in doc for k in row}
    return {k: np.array([row.get(k) for row in doc]) for k in keys}


def _decoded_flight(name: str) -> tuple[F64, F64, F64, F64, F64, np.ndarray]:
    """(t s, lat, lon, height above ground m, (n, 3) ENU velocity, emitter category code)
    of a decoded real recording, resampled to whole seconds."""
    if name == "full_flight_short_first3000":
        rows = [json.loads(line) for line in
                _recording_path(name, ".jsonl").read_text(encoding="utf-8").splitlines()]
        pos = [r for r in rows if r.get("bds") in ("05", "06") and r.get("latitude")]
        t = np.array([r["timestamp"] for r in pos])
        lat = np.array([r["latitude"] for r in pos])
        lon = np.array([r["longitude"] for r in pos])
        # Surface position messages (BDS 0,6) mean on the ground; airborne ones (0,5)
        # carry the barometric altitude.
        h = np.array([0.0 if r["bds"] == "06" else r["altitude"] * FT_M - CDG_ELEVATION_M
                      for r in pos])
        vel_rows = [r for r in rows if r.get("groundspeed") is not None]
        tv = np.array([r["timestamp"] for r in vel_rows])
        gs = np.array([r["groundspeed"] for r in vel_rows]) * KT_MPS
        trk = np.radians(np.array([r["track"] for r in vel_rows]))
        vz = np.array([r.get("vertical_rate") or 0.0 for r in vel_rows]) * FPM_MPS
        cats = {r.get("wake_vortex") for r in rows if r.get("bds") == "08"}
        category = adsb_category_code(next(iter(cats - {None}), "") or "")
    else:
        c = _records_columns(_recording_path(name, ".json.gz"))
        t = tv = c["timestamp"].astype(float) / 1000.0
        lat, lon = c["latitude"].astype(float), c["longitude"].astype(float)
        alt = (c["geoaltitude"] if "geoaltitude" in c else c["altitude"]).astype(float)
        # Above the ground the simulator takes for the recording (in the same reference);
        # the airliner of noisy_spoofing flies kilometres above any ground.
        h = alt * FT_M - (RECORDINGS[name].ground_m if name in RECORDINGS else 0.0)
        gs = c["groundspeed"].astype(float) * KT_MPS
        trk = np.radians(c["track"].astype(float))
        vz = c["vertical_rate"].astype(float) * FPM_MPS
        category = 0
    grid = np.arange(math.ceil(max(t[0], tv[0])), math.floor(min(t[-1], tv[-1])))
    # Resample to the grid (both sorted by time), holding the last report.
    ip = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, t.size - 1)
    iv = np.clip(np.searchsorted(tv, grid, side="right") - 1, 0, tv.size - 1)
    vel = np.stack([gs[iv] * np.sin(trk[iv]), gs[iv] * np.cos(trk[iv]), vz[iv]], axis=1)
    ok = np.isfinite(vel).all(axis=1) & np.isfinite(h[ip])
    return grid[ok], lat[ip][ok], lon[ip][ok], h[ip][ok], vel[ok], np.int8(category)


REAL_FLIGHTS = ("noisy_spoofing", "full_flight_short_first3000", *sorted(RECORDINGS))


def test_real_adsb_flights_are_never_called_drones() -> None:
    """The decoded real flights of the shared data, as an ADS-B receiver reports them
    (identity, position, velocity every 2 s; no tracker): an airliner through GNSS
    spoofing, one taxiing at Paris-CDG and taking off, the two rescue helicopters and
    the border patrol, flown side by side as five tracks. Never a drone, at any time."""
    flights = [_decoded_flight(name) for name in REAL_FLIGHTS]
    clf = Classifier(config=WITH_ADSB)
    labels = {name: Counter[str]() for name in REAL_FLIGHTS}
    longest = max(float(f[0][-1] - f[0][0]) for f in flights)
    for dt in np.arange(0.0, longest, 2.0):  # over report times, all flights at once
        rows = []
        for k, (t, lat, lon, h, vel, category) in enumerate(flights):
            i = int(np.searchsorted(t, t[0] + dt))
            if i < t.size and t[i] == t[0] + dt:
                origin = Origin(lat_deg=float(lat[0]), lon_deg=float(lon[0]), alt_m=0.0)
                east, north, _ = origin.geodetic_to_enu(lat[i], lon[i], 0.0)
                rows.append((k, [east, north, h[i], *vel[i]], h[i], category))
        if not rows:
            continue
        c = clf.update(
            T0 + dt, track_id=[k for k, *_ in rows], x=np.array([x for _, x, _, _ in rows]),
            height_agl_m=[h for *_, h, _ in rows], manoeuvre_p=np.full(len(rows), 0.2),
            identity_kind=np.ones(len(rows), np.int8), adsb_category=[c for *_, c in rows],
            velocity_std_mps=np.ones(len(rows)))
        for k, label in zip(c.track_id, c.label, strict=True):
            labels[REAL_FLIGHTS[k]][CLASSES[label]] += 1
    for name, seen in labels.items():
        print(name, dict(seen))
        assert not any(seen[CLASSES[k]] for k in DRONE_CLASSES)
        assert seen["crewed_aircraft"] > 0.9 * sum(seen.values())


def test_a_track_not_observed_keeps_its_last_class_and_evidence() -> None:
    """Between its own updates a track (only predicted by the tracker) is no evidence:
    with observed False it keeps the class of its last observation and its evidence,
    while an observed one moves on; a track new to the classifier is observed anyway."""
    rng = np.random.default_rng(5)
    hover, airliner_ = hovering_multirotor(rng).states(), airliner(rng).states()
    clf = Classifier()
    both = np.stack([hover, airliner_[: hover.shape[0]]], axis=1)  # (steps, 2, 6)
    heights = np.array([30.0, 3000.0])
    for k in range(40):
        out = clf.update(T0 + k, track_id=[1, 2], x=both[k], height_agl_m=heights,
                         manoeuvre_p=[0.3, 0.1])
    before = out
    # Track 1 flies on as an airliner would, but is not observed; track 2 is; track 3
    # is new and not marked observed.
    x = np.stack([airliner_[40], airliner_[41], airliner_[42]])
    after = clf.update(T0 + 40, track_id=[2, 1, 3], x=x, height_agl_m=[3000.0, 3000.0, 30.0],
                       manoeuvre_p=[0.1, 0.1, 0.3], observed=[True, False, False])
    assert list(after.track_id) == [2, 1, 3]
    np.testing.assert_array_equal(after.probs[1], before.probs[0])
    assert after.label[1] == before.label[0]
    assert after.reasons[1] == before.reasons[0]
    assert after.speed_mps[1] == before.speed_mps[0] and after.age_s[1] == 40.0
    assert after.label[0] == CREWED
    assert after.speed_mps[2] > 0.0  # observed: a new track has no past to keep
    with pytest.raises(SkyfenceError, match="observed"):
        clf.update(T0 + 41, track_id=[1], x=x[:1], height_agl_m=[30.0], manoeuvre_p=[0.3],
                   observed=[True, False])
