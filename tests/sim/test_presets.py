from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from skyfence import sim
from skyfence.errors import InputError
from skyfence.geo import height_above_origin_m
from skyfence.scenario import read_detections, read_scenario, read_truth
from skyfence.sim.radar import detectable
from skyfence.sim.result import TARGET_KINDS, SimResult
from skyfence.sim.sensors import in_cover

SHORT = {"spread": 20.0, "swarm": 20.0, "crewed": 40.0, "long_range": 40.0, "mixed": 20.0,
         "low_flyer": 20.0, "spoofing": 20.0, "fusion": 20.0}


@pytest.fixture(scope="module")
def results() -> dict[str, SimResult]:
    return {p: sim.build(p, seed=5, duration_s=SHORT[p]) for p in SHORT}


def _assert_same(a: SimResult, b: SimResult) -> None:
    for name in ("t", "sensor", "z", "R"):
        np.testing.assert_array_equal(getattr(a.detections, name), getattr(b.detections, name))
    for name in ("t", "id", "x"):
        np.testing.assert_array_equal(getattr(a.truth, name), getattr(b.truth, name))
    assert a.detection_target is not None and b.detection_target is not None
    np.testing.assert_array_equal(a.detection_target, b.detection_target)
    assert a.target_kind == b.target_kind
    assert a.scenario == b.scenario


def test_presets_are_described() -> None:
    assert set(sim.PRESETS) >= {"spread", "swarm", "crewed", "long_range", "mixed",
                                "low_flyer", "spoofing", "fusion"}
    assert all(isinstance(v, str) and v for v in sim.PRESETS.values())


@pytest.mark.parametrize("preset", list(SHORT))
def test_result_structure(results: dict[str, SimResult], preset: str) -> None:
    r = results[preset]
    det, truth = r.detections, r.truth
    assert set(r.target_kind.values()) <= set(TARGET_KINDS)
    assert np.all(np.diff(det.t) >= 0)
    same_t = np.diff(det.t) == 0
    assert np.all(np.diff(det.sensor)[same_t] >= 0)
    # Truth: every live target at every scan time of every sensor, sorted by t then id.
    scan_t = np.unique(np.concatenate(r.scan_times))
    assert set(np.unique(det.t)) <= set(scan_t)
    np.testing.assert_array_equal(np.unique(truth.t), scan_t)
    order = np.lexsort((truth.id, truth.t))
    np.testing.assert_array_equal(order, np.arange(len(truth)))
    assert set(np.unique(truth.id)) == set(r.target_kind)
    if preset not in ("crewed", "mixed", "spoofing"):  # replays may start or end mid-way
        assert len(truth) == scan_t.size * len(r.target_kind)
    assert r.detection_target is not None
    real = r.detection_target[r.detection_target >= 0]
    assert set(real.tolist()) <= set(r.target_kind)
    for i, sensor in enumerate(r.scenario.sensors):
        assert r.scan_times[i].size > 0
        if sensor.clutter_per_scan > 0:
            assert "clutter_over" in sensor.extra


def test_detections_sit_near_the_truth(results: dict[str, SimResult]) -> None:
    r = results["swarm"]
    det, truth = r.detections, r.truth
    assert r.detection_target is not None
    radar = r.scenario.sensors[0]
    from skyfence.sim.radar import to_enu

    ok = r.detection_target >= 0
    where = to_enu(np.asarray(radar.position_enu_m), det.z[ok])
    row = {(t, i): k for k, (t, i) in enumerate(zip(truth.t, truth.id, strict=True))}
    true = truth.x[[row[(t, i)] for t, i in zip(det.t[ok], r.detection_target[ok],
                                                strict=True)], :3]
    err = np.linalg.norm(where - true, axis=1)
    assert np.median(err) < 40.0


def test_same_seed_same_result_and_files(tmp_path: Path) -> None:
    a = sim.build("mixed", seed=3, duration_s=15.0)
    b = sim.build("mixed", seed=3, duration_s=15.0)
    _assert_same(a, b)
    sim.write(tmp_path / "a", a)
    sim.write(tmp_path / "b", b)
    for name in ("scenario.json", "detections.csv", "truth.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_different_seed_different_result() -> None:
    a = sim.build("spread", seed=1, duration_s=10.0)
    b = sim.build("spread", seed=2, duration_s=10.0)
    assert not np.array_equal(a.truth.x, b.truth.x)
    assert len(a.detections) != len(b.detections) or not np.array_equal(a.detections.z,
                                                                        b.detections.z)


def test_write_read_round_trip(tmp_path: Path, results: dict[str, SimResult]) -> None:
    r = results["mixed"]
    sim.write(tmp_path, r)
    sc = read_scenario(tmp_path)
    assert sc == r.scenario
    det = read_detections(tmp_path, sc)
    np.testing.assert_array_equal(det.t, r.detections.t)
    np.testing.assert_array_equal(det.sensor, r.detections.sensor)
    np.testing.assert_array_equal(det.z, r.detections.z)
    np.testing.assert_array_equal(det.R, r.detections.R)
    truth = read_truth(tmp_path)
    assert truth is not None
    np.testing.assert_array_equal(truth.t, r.truth.t)
    np.testing.assert_array_equal(truth.id, r.truth.id)
    np.testing.assert_allclose(truth.x, r.truth.x, atol=5e-4)
    # The truth and detection files share their times exactly.
    assert set(np.unique(det.t)) <= set(np.unique(truth.t))


def test_overrides_apply_to_every_sensor() -> None:
    r = sim.build("mixed", duration_s=5.0, pd=0.5, clutter_per_scan=0.0)
    assert all(s.pd == 0.5 and s.clutter_per_scan == 0.0 for s in r.scenario.sensors)
    assert r.n_clutter == 0
    r = sim.build("spread", duration_s=30.0, pd=0.0, clutter_per_scan=4.0)
    assert r.detection_target is not None and np.all(r.detection_target == -1)
    assert abs(len(r.detections) / 30 - 4.0) < 4 * math.sqrt(4.0 / 30)


def test_n_targets_scales_the_population_and_region() -> None:
    small = sim.build("spread", n_targets=10, duration_s=3.0)
    big = sim.build("spread", n_targets=400, duration_s=3.0)
    assert len(small.target_kind) == 10 and len(big.target_kind) == 400
    assert small.scenario.region is not None and big.scenario.region is not None
    area = [(r.east_m[1] - r.east_m[0]) * (r.north_m[1] - r.north_m[0])
            for r in (small.scenario.region, big.scenario.region)]
    assert area[1] == pytest.approx(400e6)
    kinds = list(big.target_kind.values())
    assert kinds.count("multirotor") == 240 and kinds.count("fixed_wing") == 160
    assert list(sim.build("swarm", n_targets=7, duration_s=3.0).target_kind.values()) \
        == ["swarm"] * 7
    crewed = sim.build("crewed", n_targets=5, duration_s=8.0).target_kind
    assert list(crewed.values()).count("crewed") == 5


def test_crewed_flyer_is_under_the_horizon_part_of_the_time() -> None:
    r = sim.build("crewed", seed=0)
    radar = r.scenario.sensors[0]
    flyer = next(i for i, k in r.target_kind.items() if k == "fast_low_flyer")
    rows = r.truth.id == flyer
    pos = r.truth.x[rows, :3]
    seen = detectable(r.scenario.origin, radar, pos)
    assert seen[-1] and not seen[0]
    h = height_above_origin_m(r.scenario.origin, pos)
    assert h.min() >= 30.0 and h.max() <= 100.0
    speed = np.linalg.norm(r.truth.x[rows, 3:], axis=1)
    assert speed.min() >= 200.0 - 0.1 and speed.max() <= 280.0 + 0.1
    assert r.detection_target is not None
    hit_t = r.detections.t[r.detection_target == flyer]
    assert hit_t.size and hit_t.min() > r.truth.t[rows][0]
    notes = r.scenario.extra["simulator"]["target_notes"]
    assert {n["recording"] for n in notes.values()} == {"rega_zh", "samu31", "border_control"}


def test_long_range_targets(results: dict[str, SimResult]) -> None:
    r = results["long_range"]
    first = r.truth.t == r.truth.t[0]
    ground = np.hypot(r.truth.x[first, 0], r.truth.x[first, 1])
    speed = np.linalg.norm(r.truth.x[:, 3:], axis=1)
    assert ground.min() > 50_000 and ground.max() < 95_000
    assert speed.min() >= 230 - 0.5 and speed.max() <= 260 + 0.5
    assert r.scenario.sensors[0].scan_period_s == 4.0


def test_mixed_has_every_kind_and_three_sensors(results: dict[str, SimResult]) -> None:
    r = results["mixed"]
    assert set(r.target_kind.values()) == set(TARGET_KINDS)
    kinds = [s.kind for s in r.scenario.sensors]
    assert kinds == ["radar", "position", "cooperative"]
    periods = {s.scan_period_s for s in r.scenario.sensors}
    assert len(periods) == 2
    # Only the crewed replays transmit (ADS-B), with their real ICAO addresses.
    coop = r.detections.sensor == 2
    assert np.all(np.char.startswith(r.detections.identity[coop], "icao:"))
    crewed = {t for t, k in r.target_kind.items() if k == "crewed"}
    assert r.detection_target is not None
    assert set(r.detection_target[coop].tolist()) <= crewed


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"preset": "nope"}, "preset"), ({"n_targets": 0}, "n_targets"), ({"seed": -1}, "seed"),
     ({"duration_s": 0.0}, "duration_s"), ({"clutter_per_scan": -1.0}, "clutter_per_scan"),
     ({"pd": 1.5}, "pd"), ({"duration_s": math.nan}, "duration_s")],
)
def test_bad_arguments(kwargs: dict[str, object], field: str) -> None:
    preset = str(kwargs.pop("preset", "spread"))
    with pytest.raises(InputError) as err:
        sim.build(preset, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


def test_ten_thousand_targets_for_a_minute() -> None:
    # Its speed is measured by the benchmark (bench/), not asserted here.
    r = sim.build("spread", n_targets=10_000, duration_s=60.0)
    assert len(r.target_kind) == 10_000 and len(r.truth) == 600_000
    assert len(r.scan_times[0]) == 60


# --------------------------------------------------------------------------- new presets

NEW = ("low_flyer", "spoofing", "fusion")


def _truth_at(r: SimResult, t: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """True ENU positions (n, 3) of targets ``ids`` at times ``t``."""
    row = {(a, b): k for k, (a, b) in enumerate(zip(r.truth.t, r.truth.id, strict=True))}
    return r.truth.x[[row[(a, b)] for a, b in zip(t, ids, strict=True)], :3]


@pytest.mark.parametrize("preset", NEW)
def test_new_presets_build_fast_at_small_n(preset: str) -> None:
    sim.build(preset, n_targets=2, duration_s=5.0)  # loads recordings once per process
    t0 = time.perf_counter()
    r = sim.build(preset, n_targets=3, duration_s=30.0, seed=1)
    assert time.perf_counter() - t0 < 1.5
    assert len(r.detections) > 0


@pytest.mark.parametrize("preset", NEW)
def test_new_presets_round_trip_and_repeat(tmp_path: Path, preset: str) -> None:
    a = sim.build(preset, seed=2, duration_s=15.0)
    _assert_same(a, sim.build(preset, seed=2, duration_s=15.0))
    sim.write(tmp_path / "a", a)
    sim.write(tmp_path / "b", sim.build(preset, seed=2, duration_s=15.0))
    for name in ("scenario.json", "detections.csv", "truth.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    sc = read_scenario(tmp_path / "a")
    assert sc == a.scenario
    det = read_detections(tmp_path / "a", sc)
    for name in ("t", "sensor", "z", "R", "identity", "category"):
        np.testing.assert_array_equal(getattr(det, name), getattr(a.detections, name))


def test_low_flyer_hides_from_the_radar_but_not_from_rf_and_eo() -> None:
    r = sim.build("low_flyer", seed=0)
    sc = r.scenario
    kinds = [s.modality or s.kind for s in sc.sensors]
    assert kinds == ["radar", "rf", "rf", "rf", "eo", "eo"]
    assert [s.bearing_dim for s in sc.sensors[1:]] == [1, 1, 1, 2, 2]
    emitters = set(sc.extra["simulator"]["rf_emitters"])
    assert emitters == {i for i, k in r.target_kind.items() if k == "fixed_wing"}
    pos = r.truth.x[:, :3]
    emits = np.array([int(i) in emitters for i in r.truth.id])
    cover = np.stack([in_cover(sc.origin, s, pos, emits_rf=emits) for s in sc.sensors])
    radar_seen, bearings = cover[0], cover[1:].sum(axis=0)
    h = height_above_origin_m(sc.origin, pos)
    for target, kind in r.target_kind.items():
        mine = r.truth.id == target
        hidden = mine & ~radar_seen
        if kind == "fixed_wing":
            assert h[mine].min() >= 30.0 - 1e-6 and h[mine].max() <= 60.0 + 1e-6
            # Under the radar's lowest beam for part of the way, and then (nearly always)
            # seen by two bearing sensors at least.
            assert 0.1 < radar_seen[mine].mean() < 0.9
            assert np.mean(bearings[hidden] >= 2) > 0.9
    assert r.detection_target is not None
    rf_rows = np.isin(r.detections.sensor, [1, 2, 3]) & (r.detection_target >= 0)
    assert set(r.detection_target[rf_rows].tolist()) <= emitters
    flyer = next(i for i, k in r.target_kind.items() if k == "fast_low_flyer")
    eo_rows = np.isin(r.detections.sensor, [4, 5])
    assert flyer in set(r.detection_target[eo_rows].tolist())


def test_spoofing_liar_and_cooperative_identities() -> None:
    r = sim.build("spoofing", seed=0)
    sc, det = r.scenario, r.detections
    block = sc.extra["simulator"]
    n = block["n_targets"]
    assert block["spoofers"] == [n + 1]
    assert r.target_kind[n + 1] == "multirotor"
    index = sc.sensor_index()
    assert sc.sensors[index["remote_id"]].clutter_per_scan == 0.0
    assert r.detection_target is not None
    rid = det.sensor == index["remote_id"]
    assert np.all(r.detection_target[rid] >= 0)
    for target in range(1, n + 2):
        mine = rid & (r.detection_target == target)
        assert mine.sum() > 0.8 * len(r.scan_times[index["remote_id"]])
        err = det.z[mine] - _truth_at(r, det.t[mine], r.detection_target[mine])
        off = np.hypot(*err[:, :2].mean(axis=0))
        assert abs(off - (500.0 if target == n + 1 else 0.0)) < 3.0
        assert set(det.identity[mine].tolist()) == {f"rid:SKYFA{target:010d}"}
        assert set(det.category[mine].tolist()) == {"2"}
    adsb = det.sensor == index["adsb"]
    crewed = {i for i, k in r.target_kind.items() if k == "crewed"}
    assert set(r.detection_target[adsb].tolist()) == crewed
    claims = set(zip(det.identity[adsb].tolist(), det.category[adsb].tolist(), strict=True))
    assert claims == {("icao:39AC45", "A7"), ("icao:407918", "A1")}
    # Everything in radar cover, all the time.
    radar_spec = sc.sensors[index["radar"]]
    assert in_cover(sc.origin, radar_spec, r.truth.x[:, :3]).all()
    # The clutter override leaves receivers without clutter.
    quiet = sim.build("spoofing", duration_s=5.0, clutter_per_scan=3.0)
    assert [s.clutter_per_scan for s in quiet.scenario.sensors] == [3.0, 0.0, 0.0]


def test_fusion_mixes_four_kinds() -> None:
    r = sim.build("fusion", n_targets=40, duration_s=20.0)
    sc = r.scenario
    assert [s.kind for s in sc.sensors] == ["radar", "radar2d", "bearing", "cooperative"]
    assert sc.sensors[2].modality == "rf"
    transmitters = sc.extra["simulator"]["transmitters"]
    assert len(transmitters) == 20 and sc.extra["simulator"]["spoofers"] == []
    for i in range(4):
        assert np.count_nonzero(r.detections.sensor == i) > 0
