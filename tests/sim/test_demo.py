"""The built-in demo: its files, its determinism, and its story through the real tracker,
picture and alert watch (``skyfence track --zones --sites --alerts``)."""

from __future__ import annotations

import csv
import json
import math
import runpy
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from scipy.spatial import cKDTree

from skyfence import sim
from skyfence.cli import main
from skyfence.geo import height_above_origin_m
from skyfence.sim import demo
from skyfence.sim.presets import START_S
from skyfence.sim.result import SimResult
from skyfence.zones.io import load_zones
from skyfence.zones.model import Restriction
from skyfence.zones.sites import load_sites

ROOT = Path(__file__).resolve().parents[2]
#: A track is taken to follow the nearest true target within this (as bench/fusion.py).
HELD_WITHIN_M = 100.0
#: Target ids: the demo puts these first (the swarm follows, the crewed replay last).
RID_DRONE, DARK_DRONE, FLYER = 1, 2, 3


@dataclass(frozen=True)
class Story:
    result: SimResult
    alerts: list[dict[str, Any]]
    rows: list[dict[str, str]]  # tracks.csv
    #: Track id → the target it followed most often (tracks never near one are absent).
    owner: dict[int, int]

    def kind_of(self, track: int | None) -> str | None:
        target = None if track is None else self.owner.get(track)
        return None if target is None else self.result.target_kind[target]

    def of(self, target: int) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["track"] is not None
                and self.owner.get(a["track"]) == target]

    def s(self, t: float) -> float:
        """Seconds since the demo's start."""
        return t - START_S


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    result = sim.build("demo", seed=0)
    folder = tmp_path_factory.mktemp("demo")
    sim.write(folder, result)
    zones, sites = demo.demo_files()
    assert main(["track", str(folder), "--out", str(folder / "tracks.csv"), "--zones", str(zones),
                 "--sites", str(sites), "--alerts", str(folder / "alerts.jsonl"),
                 "--quiet"]) == 0
    alerts = [json.loads(line) for line in
              (folder / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    with (folder / "tracks.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return Story(result, alerts, rows, _owners(result, rows))


def _owners(result: SimResult, rows: list[dict[str, str]]) -> dict[int, int]:
    truth = result.truth
    at = {t: np.flatnonzero(truth.t == t) for t in np.unique(truth.t).tolist()}
    votes: dict[int, Counter[int]] = defaultdict(Counter)
    by_t: dict[float, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        by_t[float(r["t"])].append(r)
    for t, group in by_t.items():
        idx = at[t]
        xyz = np.array([[float(r["east_m"]), float(r["north_m"]), float(r["up_m"])]
                        for r in group])
        dist, k = cKDTree(truth.x[idx, :3]).query(xyz)
        for r, d, j in zip(group, dist, k, strict=True):
            if d < HELD_WITHIN_M:
                votes[int(r["track"])][int(truth.id[idx[j]])] += 1
    return {track: c.most_common(1)[0][0] for track, c in votes.items()}


def _raised(alerts: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["kind"] == kind and a["event"] == "raised"]


# --------------------------------------------------------------------------- the files


def test_zone_and_site_files_load_with_no_problem() -> None:
    zones_path, sites_path = demo.demo_files()
    load = load_zones(zones_path)
    assert load.problems == () and load.format == "geojson"
    zones = {z.id: z for z in load.zones}
    assert zones[demo.PROHIBITED_ID].restriction == Restriction.PROHIBITED
    assert zones[demo.AUTHORISATION_ID].restriction == Restriction.AUTHORISATION_REQUIRED
    assert demo.RID_DRONE_IDENTITY in zones[demo.AUTHORISATION_ID].exempt
    scheduled = zones[demo.SCHEDULED_ID]
    assert scheduled.applicability and not scheduled.in_force(START_S)  # a Saturday
    assert scheduled.in_force(START_S - 86_400.0 + 3_600.0)  # Friday 15:00 local
    (site,) = load_sites(sites_path)
    assert (site.id, site.radius_m) == (demo.SITE_ID, demo.SITE_RADIUS_M)
    assert (site.lat_deg, site.lon_deg) == (demo.DEMO_ORIGIN.lat_deg, demo.DEMO_ORIGIN.lon_deg)


def test_shipped_files_are_what_the_generator_writes() -> None:
    tool = runpy.run_path(str(ROOT / "tools" / "make_demo_zones.py"))
    folder = demo.demo_files()[0].parent
    for name, text in tool["texts"]().items():
        assert (folder / name).read_text(encoding="utf-8") == text, name
    assert (folder / "README.md").is_file()


# --------------------------------------------------------------------------- the scenario


def test_same_seed_gives_identical_detections() -> None:
    a, b = sim.build("demo", seed=0), sim.build("demo", seed=0)
    for name in ("t", "sensor", "z", "R", "identity", "category"):
        np.testing.assert_array_equal(getattr(a.detections, name), getattr(b.detections, name))
    np.testing.assert_array_equal(a.truth.x, b.truth.x)
    assert a.scenario == b.scenario


def test_defaults_and_cast(story: Story) -> None:
    r = story.result
    block = r.scenario.extra["simulator"]
    assert (block["n_targets"], block["duration_s"]) == (demo.DEMO_SWARM_SIZE,
                                                         demo.DEMO_DURATION_S)
    kinds = Counter(r.target_kind.values())
    assert kinds == {"swarm": 30, "multirotor": 2, "fast_low_flyer": 1, "crewed": 1}
    assert r.target_kind[FLYER] == "fast_low_flyer"
    assert [s.id for s in r.scenario.sensors] == ["radar", "rf1", "rf2", "rf3", "eo1", "eo2",
                                                  "remote_id", "adsb"]
    # The crewed flight is the REGA helicopter recorded over Zurich, replayed in place.
    (crewed,) = [t for t, k in r.target_kind.items() if k == "crewed"]
    assert block["target_notes"][str(crewed)] == {"recording": "rega_zh", "callsign": "REGA1",
                                                  "moved": False}


def test_geometry_makes_the_story(story: Story) -> None:
    r = story.result
    truth, origin = r.truth, demo.DEMO_ORIGIN
    t = truth.t - START_S
    h = height_above_origin_m(origin, truth.x[:, :3])
    plane = truth.x[:, :2]
    # The swarm arrives over the stadium within the demo.
    swarm = np.isin(truth.id, [i for i, k in r.target_kind.items() if k == "swarm"])
    over = swarm & (np.hypot(plane[:, 0], plane[:, 1]) <= demo.SITE_RADIUS_M)
    assert 200.0 < t[over].min() < 280.0
    # The dark drone enters the prohibited zone mid-demo and stays.
    p1 = shapely.Polygon(demo.PROHIBITED_CORNERS_EN_M)
    dark = truth.id == DARK_DRONE
    inside = shapely.contains_xy(p1, plane[dark, 0], plane[dark, 1])
    assert 120.0 < t[dark][inside].min() < 180.0 and inside[np.argmax(inside):].all()
    # The Remote ID drone never leaves its zone.
    rid = truth.id == RID_DRONE
    off = np.hypot(*(plane[rid] - np.asarray(demo.AUTHORISATION_CENTRE_EN_M)).T)
    assert off.max() < demo.AUTHORISATION_RADIUS_M - 100.0
    assert h[rid].max() < demo.AUTHORISATION_UPPER_M
    # The fast low flyer: low and fast.
    flyer = truth.id == FLYER
    assert h[flyer].min() >= 40.0 - 1e-6 and h[flyer].max() <= 60.0 + 1e-6
    assert np.linalg.norm(truth.x[flyer, 3:5], axis=1).min() > 200.0
    # The helicopter crosses the area, inside no zone's volume.
    crewed = truth.id == max(r.target_kind)
    assert np.hypot(plane[crewed, 0], plane[crewed, 1]).min() < 2_500.0
    assert not shapely.contains_xy(p1, plane[crewed, 0], plane[crewed, 1]).any()
    assert (np.hypot(*(plane[crewed] - np.asarray(demo.AUTHORISATION_CENTRE_EN_M)).T)
            > demo.AUTHORISATION_RADIUS_M).all()
    under_r1 = shapely.contains_xy(shapely.Polygon(demo.SCHEDULED_CORNERS_EN_M),
                                   plane[crewed, 0], plane[crewed, 1])
    assert (h[crewed][under_r1] > demo.SCHEDULED_UPPER_M).all()


def test_who_sees_what(story: Story) -> None:
    r = story.result
    assert r.detection_target is not None
    ids = [s.id for s in r.scenario.sensors]
    t = r.detections.t - START_S

    def first(target: int, sensor: str) -> float:
        hit = (r.detection_target == target) & (r.detections.sensor == ids.index(sensor))
        return float(t[hit].min()) if hit.any() else math.inf

    # The cameras pick up the fast low flyer before the radar does; no RF finder hears it.
    assert max(first(FLYER, "eo1"), first(FLYER, "eo2")) < first(FLYER, "radar") - 5.0
    assert all(first(FLYER, f"rf{k}") == math.inf for k in (1, 2, 3))
    # The direction finders hear the dark drone, the only emitter in their reach.
    rf = np.isin(r.detections.sensor, [ids.index(f"rf{k}") for k in (1, 2, 3)])
    assert set(r.detection_target[rf].tolist()) == {DARK_DRONE}
    # The Remote ID drone: its receiver and the radar, nothing else.
    heard = set(r.detections.sensor[r.detection_target == RID_DRONE].tolist())
    assert heard == {ids.index("radar"), ids.index("remote_id")}


# --------------------------------------------------------------------------- the story


def test_swarm_is_alerted_as_one_group(story: Story) -> None:
    raised = _raised(story.alerts, "swarm")
    assert raised
    first = min(raised, key=lambda a: a["t"])
    assert story.s(first["t"]) < 30.0
    members = [int(r["track"]) for r in story.rows
               if r["group"] and int(r["group"]) == first["group"]]
    assert Counter(story.kind_of(m) for m in members).most_common(1)[0][0] == "swarm"
    assert first["severity"] == "critical"  # ten or more tracks


def test_site_threat_for_swarm_members_before_they_reach_the_site(story: Story) -> None:
    truth = story.result.truth
    over = np.hypot(truth.x[:, 0], truth.x[:, 1]) <= demo.SITE_RADIUS_M
    arrives = {int(i): float(truth.t[over & (truth.id == i)].min())
               for i in np.unique(truth.id[over])}
    warned = {story.owner[a["track"]] for a in _raised(story.alerts, "site_threat")
              if a["site"] == demo.SITE_ID and story.kind_of(a["track"]) == "swarm"
              and a["time_to_breach_s"] and a["time_to_breach_s"] > 0
              and a["t"] < arrives.get(story.owner[a["track"]], math.inf)}
    assert len(warned) >= 5


def test_fast_low_flyer_alert(story: Story) -> None:
    raised = [a for a in _raised(story.alerts, "fast_low_flyer")
              if story.kind_of(a["track"]) == "fast_low_flyer"]
    assert raised
    assert 60.0 < story.s(raised[0]["t"]) < demo.FLYER_CPA_S


def test_dark_drone_breach_predicted_then_breach_then_dark(story: Story) -> None:
    mine = story.of(DARK_DRONE)
    p1 = [a for a in mine if a["zone"] == demo.PROHIBITED_ID]
    predicted = [a for a in p1 if a["kind"] == "zone_breach_predicted"]
    breach = [a for a in p1 if a["kind"] == "zone_breach"]
    assert predicted and breach
    assert predicted[0]["t"] < breach[0]["t"]
    assert 120.0 < story.s(breach[0]["t"]) < 180.0
    assert breach[0]["severity"] == "critical"
    assert _raised(mine, "dark_drone")


def test_remote_id_drone_in_its_zone_raises_no_zone_alert(story: Story) -> None:
    assert not [a for a in story.of(RID_DRONE) if a["zone"] is not None]
    assert not [a for a in story.alerts if a["zone"] == demo.AUTHORISATION_ID]
    carried = {r["identity"] for r in story.rows if story.owner.get(int(r["track"])) == RID_DRONE}
    assert demo.RID_DRONE_IDENTITY in carried


def test_crewed_traffic_is_never_called_a_drone(story: Story) -> None:
    crewed = [r for r in story.rows if story.kind_of(int(r["track"])) == "crewed"]
    assert crewed
    assert not [r for r in crewed if r["class"].startswith("drone_")]
    # A look near the crewed aircraft by any track counts, as in bench/fusion.py.
    truth = story.result.truth
    plane_id = max(story.result.target_kind)
    where = {float(t): x for t, i, x in zip(truth.t, truth.id, truth.x, strict=True)
             if i == plane_id}
    near_drone = [r for r in story.rows if r["class"].startswith("drone_")
                  and float(r["t"]) in where
                  and math.dist([float(r["east_m"]), float(r["north_m"]), float(r["up_m"])],
                                where[float(r["t"])][:3]) < HELD_WITHIN_M]
    assert not near_drone
    assert Counter(r["class"] for r in crewed).most_common(1)[0][0] == "crewed_aircraft"
    assert {r["identity"] for r in crewed} == {"icao:4B43AC"}
    assert not [a for a in story.alerts if story.kind_of(a["track"]) == "crewed"
                and a["kind"] in ("dark_drone", "zone_breach", "zone_breach_predicted")]
