"""The node's API (docs/API.md) in process: a NodeService over a simulated scenario with
a prohibited zone and a defended site, fed JSON Lines while it runs, with a SQLite
store; every route, the error bodies, the WebSocket stream (resume, snapshots, a slow
client cut off), a real uvicorn server, and schemathesis against the OpenAPI document.

One event loop for the module (anyio): the node fed once serves the read-only tests;
tests that need a stream of updates run their own small node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import httpx
import numpy as np
import pytest

from skyfence import sim
from skyfence.adapters.journal import Source
from skyfence.alerts import ALERT_EVENT_SCHEMA, AlertConfig
from skyfence.node.engine import GROUP_FIELDS, TRACK_FIELDS, EngineConfig
from skyfence.node.hub import Hub
from skyfence.node.service import NodeService
from skyfence.pipeline import batch_bounds
from skyfence.server import ServerConfig, create_app
from skyfence.store import SqliteStore
from skyfence.zones.io import parse_zones
from skyfence.zones.sites import Site

pytestmark = pytest.mark.anyio

DATA = Path(__file__).resolve().parents[1] / "data"
ED269 = DATA / "zones" / "interuss_cis_source_sample_ed269.json"
UNLIMITED = ServerConfig(rate_per_s=1e6, burst=1_000_000)
Payload = tuple[str, bytes, float]  # source id, JSON Lines, receive time


# --------------------------------------------------------------------------- the node


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def scenario() -> Any:
    return sim.build("mixed", seed=0, duration_s=30)


def _payloads(r: Any) -> list[Payload]:
    """The scenario's detections as a sensor sends them: one JSON Lines payload per
    (time, sensor), received 0.1 s after its time."""
    sc, det = r.scenario, r.detections
    out = []
    for a, b in zip(*batch_bounds(det.t), strict=True):
        for s in np.unique(det.sensor[a:b]).tolist():
            spec = sc.sensors[s]
            lines = []
            for k in range(a, b):
                if det.sensor[k] != s:
                    continue
                obj: dict[str, Any] = {"t": float(det.t[k]), "sensor": spec.id}
                obj.update({n: float(v) for n, v in zip(spec.columns, det.z[k], strict=False)})
                if spec.kind == "cooperative":
                    obj.update(identity=str(det.identity[k]), category=str(det.category[k]),
                               std_h_m=float(np.sqrt(det.R[k, 0, 0])),
                               std_v_m=float(np.sqrt(det.R[k, 2, 2])))
                lines.append(json.dumps(obj))
            out.append((f"feed-{spec.id}", ("\n".join(lines) + "\n").encode(),
                        float(det.t[a]) + 0.1))
    return out


def _square(origin: Any, half_m: float, zone_id: str) -> dict[str, Any]:
    """A prohibited square (skyfence GeoJSON) of ±``half_m`` around the origin."""
    corners = np.array([[-half_m, -half_m, 0.0], [half_m, -half_m, 0.0], [half_m, half_m, 0.0],
                        [-half_m, half_m, 0.0], [-half_m, -half_m, 0.0]])
    lat, lon, _ = origin.enu_to_geodetic(corners)
    ring = [[x, y] for x, y in zip(lon.tolist(), lat.tolist(), strict=True)]
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"id": zone_id, "name": "centre", "restriction": "prohibited",
                       "upper_limit": 1000, "upper_reference": "AGL"}}]}


@dataclass
class Node:
    service: NodeService
    clock: list[float]
    payloads: list[Payload]

    async def feed(self, payloads: list[Payload]) -> None:
        for sid, payload, t in payloads:
            self.clock[0] = t
            await self.service.ingest(sid, payload, t)

    async def quiet(self, *, for_s: float = 0.3) -> None:
        """Wait until what was fed has gone through (the window keeps the last second)."""
        seq, since = self.service.hub.seq, asyncio.get_running_loop().time()
        with anyio.fail_after(20):
            while asyncio.get_running_loop().time() - since < for_s:
                await asyncio.sleep(0.02)
                if self.service.hub.seq != seq:
                    seq, since = self.service.hub.seq, asyncio.get_running_loop().time()

    async def settle(self, *, quiet_s: float = 5.0) -> None:
        """Let the reorder window drain: move the clock on and wait for the last step."""
        last = max(t for *_, t in self.payloads) - 0.1
        fed = [t for *_, t in self.payloads if t <= self.clock[0]]
        target = max(fed) - 0.1 if fed else last
        self.clock[0] += quiet_s
        with anyio.fail_after(20):
            while (self.service.snapshot()["t"] or 0.0) < target - 1e-6:
                await asyncio.sleep(0.02)


def _service(r: Any, *, store: SqliteStore | None = None, hub: Hub | None = None
             ) -> tuple[NodeService, list[float]]:
    sc = r.scenario
    clock = [0.0]
    zones = parse_zones(_square(sc.origin, 1500.0, "CENTRE"), file=None).zones
    service = NodeService(
        sc, [Source(id=f"feed-{s.id}", format="jsonl", sensor=s.id) for s in sc.sensors],
        zones=zones, sites=[Site(id="HQ", name="headquarters", lon_deg=sc.origin.lon_deg,
                                 lat_deg=sc.origin.lat_deg, radius_m=1000.0)],
        # Alerts clear quickly, so that 30 s give ended ones too.
        engine=EngineConfig(alerts=AlertConfig(clear_after_s=2.0)),
        store=store, clock=lambda: clock[0])
    if hub is not None:
        service.hub = hub
    return service, clock


@contextlib.asynccontextmanager
async def running(service: NodeService) -> AsyncIterator[None]:
    task = asyncio.create_task(service.run(tick_s=0.05))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        service.close()


@pytest.fixture(scope="module")
async def node(scenario: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Node]:
    """The whole scenario fed, with a store: for the routes that read."""
    store = SqliteStore(tmp_path_factory.mktemp("store") / "node.db")
    service, clock = _service(scenario, store=store)
    n = Node(service, clock, _payloads(scenario))
    async with running(service):
        await n.feed(n.payloads)
        await n.settle()
        store.flush()
        yield n


@pytest.fixture(scope="module")
async def client(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(node.service, config=UNLIMITED)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://node") as c:
        yield c


@contextlib.asynccontextmanager
async def live(scenario: Any, *, hub: Hub | None = None) -> AsyncIterator[tuple[Node, Any]]:
    """A node of its own, fed by the test, and its app: for the stream."""
    service, clock = _service(scenario, hub=hub)
    n = Node(service, clock, _payloads(scenario))
    async with running(service):
        yield n, create_app(service, config=UNLIMITED)


def _is_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) >= {"error", "fix"} and body["error"] and body["fix"], body
    return body


# --------------------------------------------------------------------------- HTTP


async def test_health_and_metrics(node: Node, client: httpx.AsyncClient) -> None:
    health = (await client.get("/healthz")).json()
    assert health["status"] == "ok" and health["tracks"] > 10
    assert health["sources"] == {"up": 3, "down": 0}
    assert health["t"] == node.service.snapshot()["t"]
    metrics = await client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'skyfence_source_up{source="feed-radar"} 1' in metrics.text
    assert f"skyfence_tracks {health['tracks']}" in metrics.text


async def test_the_picture_is_the_snapshot(node: Node, client: httpx.AsyncClient) -> None:
    pic = (await client.get("/api/v1/picture")).json()
    snap = node.service.snapshot()
    assert pic == snap  # the stream's snapshot, as it is
    assert pic["type"] == "snapshot" and pic["seq"] == node.service.hub.seq
    assert pic["tracks"] and pic["groups"]
    assert {tuple(t) for t in pic["tracks"]} == {tuple(name for name, *_ in TRACK_FIELDS)}
    assert {a["kind"] for a in pic["alerts"]} >= {"zone_breach", "site_threat"}


async def test_tracks_filter_by_box_class_and_flag(node: Node,
                                                   client: httpx.AsyncClient) -> None:
    everything = (await client.get("/api/v1/tracks")).json()
    tracks = everything["tracks"]
    assert everything["seq"] == node.service.hub.seq and len(tracks) > 10
    lat = sorted(t["lat_deg"] for t in tracks)
    lon = sorted(t["lon_deg"] for t in tracks)
    box = f"{lon[0] - 1e-6},{lat[len(lat) // 2]},{lon[-1] + 1e-6},{lat[-1] + 1e-6}"
    north = (await client.get("/api/v1/tracks", params={"bbox": box})).json()["tracks"]
    assert 0 < len(north) < len(tracks)
    assert all(t["lat_deg"] >= lat[len(lat) // 2] for t in north)
    # A box across the antimeridian holds nothing here; one around the world everything.
    assert (await client.get("/api/v1/tracks?bbox=170,-90,-170,90")).json()["tracks"] == []
    assert len((await client.get("/api/v1/tracks?bbox=-10,-90,-11,90")).json()["tracks"]) \
        == len(tracks)

    classes = Counter(t["class"] for t in tracks)
    assert len(classes) >= 2
    (one, n_one), (two, n_two) = classes.most_common(2)
    got = (await client.get("/api/v1/tracks", params={"class": one})).json()["tracks"]
    assert len(got) == n_one and {t["class"] for t in got} == {one}
    both = (await client.get("/api/v1/tracks", params=[("class", one), ("class", two)])).json()
    assert len(both["tracks"]) == n_one + n_two

    dark = (await client.get("/api/v1/tracks?flag=dark")).json()["tracks"]
    assert dark and all("dark" in t["flags"] for t in dark)
    assert len(dark) == sum("dark" in t["flags"] for t in tracks)
    mixed = (await client.get("/api/v1/tracks", params={"flag": "dark", "bbox": box})).json()
    assert {t["id"] for t in mixed["tracks"]} == ({t["id"] for t in dark}
                                                  & {t["id"] for t in north})

    _is_error(await client.get("/api/v1/tracks?bbox=1,2,3"), 422)
    _is_error(await client.get("/api/v1/tracks?bbox=8,48,9,47"), 422)  # south after north
    _is_error(await client.get("/api/v1/tracks?bbox=a,b,c,d"), 422)
    body = _is_error(await client.get("/api/v1/tracks?class=ufo"), 422)
    assert "class" in body["error"] and "drone_multirotor" in body["error"]
    _is_error(await client.get("/api/v1/tracks?flag=shiny"), 422)


async def test_one_track_and_404(node: Node, client: httpx.AsyncClient) -> None:
    first = node.service.snapshot()["tracks"][0]
    assert (await client.get(f"/api/v1/tracks/{first['id']}")).json() == first
    body = _is_error(await client.get("/api/v1/tracks/999999"), 404)
    assert "999999" in body["error"]
    _is_error(await client.get("/api/v1/tracks/banana"), 422)
    _is_error(await client.get("/api/v1/tracks/-1"), 422)


async def test_groups(node: Node, client: httpx.AsyncClient) -> None:
    got = (await client.get("/api/v1/groups")).json()
    assert got["t"] == node.service.snapshot()["t"]
    assert got["groups"] and {tuple(g) for g in got["groups"]} == {
        tuple(name for name, *_ in GROUP_FIELDS)}
    assert all(g["count"] == len(g["members"]) for g in got["groups"])


async def test_track_history_comes_from_the_store(node: Node,
                                                  client: httpx.AsyncClient) -> None:
    track = node.service.snapshot()["tracks"][0]
    got = (await client.get(f"/api/v1/tracks/{track['id']}/history")).json()
    points = got["points"]
    assert got["track"] == track["id"] and len(points) > 5
    assert set(points[0]) == {"t", "lat_deg", "lon_deg", "height_m", "v_east_mps",
                              "v_north_mps", "v_up_mps", "class", "flags", "identity", "group"}
    times = [p["t"] for p in points]
    assert times == sorted(times) and min(np.diff(times)) >= 0.99  # at most 1 Hz
    mid = times[len(times) // 2]
    later = (await client.get(f"/api/v1/tracks/{track['id']}/history",
                              params={"since": mid})).json()["points"]
    assert [p["t"] for p in later] == [t for t in times if t >= mid]
    window = (await client.get(f"/api/v1/tracks/{track['id']}/history",
                               params={"since": times[1], "until": times[2]})).json()
    assert [p["t"] for p in window["points"]] == times[1:3]
    assert (await client.get("/api/v1/tracks/424242/history")).json() == {
        "track": 424242, "points": []}
    _is_error(await client.get(f"/api/v1/tracks/{track['id']}/history?since=nan"), 422)


async def test_history_range_and_the_picture_at_a_past_time(
        node: Node, client: httpx.AsyncClient) -> None:
    span = (await client.get("/api/v1/history/range")).json()
    first_t = min(t for *_, t in node.payloads) - 0.1
    assert first_t <= span["t_min"] < span["t_max"] <= node.service.snapshot()["t"]
    t = span["t_min"] + 10.0
    past = (await client.get("/api/v1/history/at", params={"t": t, "window_s": 1})).json()
    assert past["t"] == t and len(past["tracks"]) > 5
    assert all(t - 1.0 <= p["t"] <= t for p in past["tracks"])
    assert len({p["id"] for p in past["tracks"]}) == len(past["tracks"])
    lat = sorted(p["lat_deg"] for p in past["tracks"])
    box = f"-180,{lat[len(lat) // 2]},180,90"
    north = (await client.get("/api/v1/history/at",
                              params={"t": t, "bbox": box})).json()["tracks"]
    assert 0 < len(north) < len(past["tracks"])
    _is_error(await client.get("/api/v1/history/at"), 422)  # t is required
    _is_error(await client.get("/api/v1/history/at?t=1&window_s=0"), 422)
    assert past["alert_events"] == [] and all(p["trail"] == [] for p in past["tracks"])
    # With trails: each track's stored points of the span, oldest first, its own.
    trailed = (await client.get("/api/v1/history/at",
                                params={"t": t, "trail_s": 5})).json()["tracks"]
    assert [p["id"] for p in trailed] == [p["id"] for p in past["tracks"]]
    for p in trailed:
        times = [q[0] for q in p["trail"]]
        assert times == sorted(times) and all(t - 5.0 <= q <= t for q in times)
        assert p["trail"][-1] == [p["t"], p["lon_deg"], p["lat_deg"]]
        own = (await client.get(f"/api/v1/tracks/{p['id']}/history",
                                params={"since": t - 5.0, "until": t})).json()["points"]
        assert [[q["t"], q["lon_deg"], q["lat_deg"]] for q in own] == p["trail"]
    assert any(len(p["trail"]) >= 4 for p in trailed)
    _is_error(await client.get("/api/v1/history/at?t=1&trail_s=601"), 422)
    # The swarms of a past moment: the tracks stored in each, as the live picture had them.
    latest = (await client.get("/api/v1/history/at", params={"t": span["t_max"]})).json()
    assert latest["groups"], "the mixed scenario has a swarm"
    rows = {p["id"]: p for p in latest["tracks"]}
    for g in latest["groups"]:
        assert g["count"] == len(g["members"]) >= 2
        assert {i for i, p in rows.items() if p["group"] == g["id"]} == set(g["members"])
        assert g["lat_deg"] == pytest.approx(np.mean([rows[i]["lat_deg"] for i in g["members"]]))
    live = {g["id"]: set(g["members"]) for g in node.service.snapshot()["groups"]}
    assert any(set(g["members"]) & live.get(g["id"], set()) for g in latest["groups"])


async def test_history_without_a_store_is_503_and_alerts_are_the_active_ones(
        scenario: Any) -> None:
    service, _ = _service(scenario)
    app = create_app(service, config=UNLIMITED)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://node") as c:
        for path in ("/api/v1/history/range", "/api/v1/history/at?t=1",
                     "/api/v1/tracks/1/history"):
            body = _is_error(await c.get(path), 503)
            assert "store" in body["error"] and "storage" in body["fix"]
        assert (await c.get("/api/v1/alerts")).json() == {"alerts": []}
        body = _is_error(await c.get("/api/v1/alerts/1"), 404)
        assert "no store" in body["fix"]
    service.close()


async def test_alerts_list_and_filters(node: Node, client: httpx.AsyncClient) -> None:
    active = (await client.get("/api/v1/alerts?active=true&limit=10000")).json()["alerts"]
    assert len(active) == len(node.service.active_alerts()) > 5
    assert all(a["active"] and a["cleared_t"] is None for a in active)
    assert {a["run"] for a in active} == {node.service.store.run}
    every = (await client.get("/api/v1/alerts?limit=10000")).json()["alerts"]
    ended = [a for a in every if not a["active"]]
    assert ended and len(every) == len(active) + len(ended)
    assert all(a["cleared_t"] is not None for a in ended)
    key = [(a["updated_t"], a["alert"]) for a in every]
    assert key == sorted(key, reverse=True)  # the newest first
    assert (await client.get("/api/v1/alerts?limit=3")).json()["alerts"] == every[:3]
    kinds = (await client.get("/api/v1/alerts?kind=zone_breach&limit=10000")).json()["alerts"]
    assert kinds and kinds == [a for a in every if a["kind"] == "zone_breach"]
    since = every[len(every) // 2]["updated_t"]
    recent = (await client.get("/api/v1/alerts", params={"since": since,
                                                         "limit": 10000})).json()["alerts"]
    assert recent == [a for a in every if a["updated_t"] >= since]
    _is_error(await client.get("/api/v1/alerts?kind=meteor"), 422)
    _is_error(await client.get("/api/v1/alerts?limit=0"), 422)


async def test_one_alert_with_its_history(node: Node, client: httpx.AsyncClient) -> None:
    every = (await client.get("/api/v1/alerts?limit=10000")).json()["alerts"]
    ended = next(a for a in every if not a["active"])
    got = (await client.get(f"/api/v1/alerts/{ended['alert']}")).json()
    assert {k: v for k, v in got.items() if k != "history"} == ended
    events = [e["event"] for e in got["history"]]
    assert events[0] == "raised" and events[-1] == "cleared"
    assert {tuple(e) for e in got["history"]} == {tuple(n for n, *_ in ALERT_EVENT_SCHEMA)}
    active = next(a for a in every if a["active"])
    got = (await client.get(f"/api/v1/alerts/{active['alert']}")).json()
    assert got["active"] and got["history"][0]["event"] == "raised"
    _is_error(await client.get("/api/v1/alerts/987654"), 404)


async def test_acknowledging_an_active_alert(node: Node, client: httpx.AsyncClient) -> None:
    alert = next(a for a in node.service.active_alerts() if a["acknowledged_by"] is None)
    seq = node.service.hub.seq
    got = await client.post(f"/api/v1/alerts/{alert['alert']}/ack", json={"by": "officer 7"})
    assert got.status_code == 200, got.text
    event = got.json()
    assert event["event"] == "acknowledged" and event["by"] == "officer 7"
    assert event["alert"] == alert["alert"] and node.service.hub.seq == seq + 1
    shown = (await client.get(f"/api/v1/alerts/{alert['alert']}")).json()
    assert shown["acknowledged_by"] == "officer 7" and shown["acknowledged_t"] is not None
    picture = (await client.get("/api/v1/picture")).json()
    assert next(a for a in picture["alerts"] if a["alert"] == alert["alert"]
                )["acknowledged_by"] == "officer 7"
    node.service.store.flush()
    shown = (await client.get(f"/api/v1/alerts/{alert['alert']}")).json()
    assert shown["history"][-1]["event"] == "acknowledged"
    log = node.service.store.audit_log()
    assert log[0]["who"] == "officer 7" and log[0]["action"] == "alert.acknowledge"
    assert log[0]["detail"] == {"alert": alert["alert"], "client": "127.0.0.1"}

    body = _is_error(await client.post("/api/v1/alerts/987654/ack", json={"by": "x"}), 404)
    assert "987654" in body["error"] and "active=true" in body["fix"]
    _is_error(await client.post(f"/api/v1/alerts/{alert['alert']}/ack"), 422)
    _is_error(await client.post(f"/api/v1/alerts/{alert['alert']}/ack", json={"by": ""}), 422)
    _is_error(await client.post(f"/api/v1/alerts/{alert['alert']}/ack", content=b"{no",
                                headers={"content-type": "application/json"}), 422)
    _is_error(await client.post(f"/api/v1/alerts/{alert['alert']}/ack",
                                json={"by": "x", "extra": 1}), 422)


async def test_sensors_coverage_and_sites(node: Node, client: httpx.AsyncClient) -> None:
    sensors = (await client.get("/api/v1/sensors")).json()["sensors"]
    assert [s["source"] for s in sensors] == ["feed-radar", "feed-locator", "feed-adsb"]
    assert sensors == node.service.sensor_status()
    assert all(s["status"] == "up" and s["detections"] > 0 for s in sensors)
    coverage = await client.get("/api/v1/sensors/coverage")
    doc = coverage.json()
    assert doc["type"] == "FeatureCollection" and doc["features"]
    assert (await client.get("/api/v1/sensors/coverage")).json() == doc  # computed once
    sites = (await client.get("/api/v1/sites")).json()
    assert sites == {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [8.56, 47.45]},
        "properties": {"id": "HQ", "name": "headquarters", "radius_m": 1000.0,
                       "ceiling_m": 500.0}}]}


async def test_zones_import_the_real_ed269_file_and_delete(
        node: Node, client: httpx.AsyncClient) -> None:
    before = (await client.get("/api/v1/zones")).json()
    assert [f["properties"]["id"] for f in before["features"]] == ["CENTRE"]
    got = await client.post("/api/v1/zones", content=ED269.read_bytes(),
                            headers={"content-type": "application/json"})
    assert got.status_code == 200, got.text
    assert got.json() == {"imported": 1, "zones": 2, "problems": []}
    zones = (await client.get("/api/v1/zones")).json()
    assert [f["properties"]["id"] for f in zones["features"]] == ["CENTRE", "LSXX"]
    assert [z.id for z in node.service.engine.zones] == ["CENTRE", "LSXX"]

    again = await client.post("/api/v1/zones?format=ed269", content=ED269.read_bytes())
    body = _is_error(again, 422)
    assert body["imported"] == 0 and body["zones"] == 2
    assert len(body["problems"]) == 1 and "LSXX" in body["problems"][0]

    assert (await client.delete("/api/v1/zones/LSXX")).status_code == 204
    assert (await client.get("/api/v1/zones")).json() == before
    _is_error(await client.delete("/api/v1/zones/LSXX"), 404)
    node.service.store.flush()
    assert node.service.store.zone_ids() == ["CENTRE"]
    actions = [e["action"] for e in node.service.store.audit_log()[:2]]
    assert actions == ["zones.delete", "zones.import"]


async def test_a_broken_zone_file_changes_nothing(node: Node,
                                                  client: httpx.AsyncClient) -> None:
    before = (await client.get("/api/v1/zones")).json()
    seq = node.service.hub.seq
    good = _square(node.service.scenario.origin, 500.0, "GOOD")["features"][0]
    bad = json.loads(json.dumps(good))
    bad["properties"].update(id="BAD", restriction="forbidden", upper_limt=100)
    broken = {"type": "FeatureCollection", "features": [good, bad]}
    body = _is_error(await client.post("/api/v1/zones", json=broken), 422)
    assert body["imported"] == 0 and body["zones"] == 1 and len(body["problems"]) == 2
    assert any("upper_limt" in p for p in body["problems"])
    assert any("forbidden" in p for p in body["problems"])
    assert "2 problems" in body["error"] and "nothing" in body["error"]

    for content in (b"", b"{not json", b"[1, 2]", b'{"a": NaN}', b"\xff\xfe"):
        body = _is_error(await client.post("/api/v1/zones", content=content), 422)
        assert len(body["problems"]) == 1 and body["zones"] == 1
    forced = await client.post("/api/v1/zones?format=ed269", json={
        "type": "FeatureCollection", "features": [good]})
    assert _is_error(forced, 422)["problems"]
    _is_error(await client.post("/api/v1/zones?format=kml", json=broken), 422)
    _is_error(await client.post("/api/v1/zones?replace=maybe", json=broken), 422)
    assert (await client.get("/api/v1/zones")).json() == before
    assert node.service.hub.seq == seq  # no zones message: nothing changed


async def test_zone_import_with_replace(scenario: Any) -> None:
    service, _ = _service(scenario)
    app = create_app(service, config=UNLIMITED)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://node") as c:
        other = _square(scenario.scenario.origin, 800.0, "OTHER")
        got = await c.post("/api/v1/zones?replace=true&format=geojson", json=other)
        assert got.json() == {"imported": 1, "zones": 1, "problems": []}
        assert [z.id for z in service.engine.zones] == ["OTHER"]
        got = await c.post("/api/v1/zones", json=_square(scenario.scenario.origin, 900.0,
                                                         "THIRD"),
                           headers={"content-type": "application/geo+json"})
        assert got.json() == {"imported": 1, "zones": 2, "problems": []}
        messages = [m["type"] for m in service.hub._ring]
        assert messages == ["zones", "zones"]
    service.close()


async def test_error_bodies_for_paths_methods_and_sizes(node: Node) -> None:
    small = create_app(node.service, config=ServerConfig(max_body_bytes=1000,
                                                         rate_per_s=1e6, burst=1_000_000))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=small),
                                 base_url="http://node") as c:
        assert "nope" in _is_error(await c.get("/api/v1/nope"), 404)["error"]
        assert "DELETE" in _is_error(await c.delete("/api/v1/picture"), 405)["error"]
        big = b"{" + b" " * 2000 + b"}"
        body = _is_error(await c.post("/api/v1/zones", content=big), 413)
        assert "1000 bytes" in body["error"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for _ in range(5):
                yield b" " * 400

        _is_error(await c.post("/api/v1/zones", content=chunks()), 413)
        _is_error(await c.post("/api/v1/alerts/1/ack", content=chunks()), 413)
        assert node.service.engine.zones[0].id == "CENTRE"


async def test_the_rate_limit_answers_429_with_retry_after(node: Node, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html>map</html>")
    app = create_app(node.service, web_dir=tmp_path,
                     config=ServerConfig(rate_per_s=0.5, burst=3))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://node") as c:
        for _ in range(3):
            assert (await c.get("/healthz")).status_code == 200
        refused = await c.get("/api/v1/picture")
        body = _is_error(refused, 429)
        assert refused.headers["retry-after"] == "2" and "0.5" in body["fix"]
        # The map's files are not counted.
        for _ in range(10):
            page = await c.get("/")
            assert page.status_code == 200 and page.text == "<html>map</html>"
    # Another client has its own bucket.
    other = httpx.ASGITransport(app=app, client=("10.0.0.2", 1234))
    async with httpx.AsyncClient(transport=other, base_url="http://node") as c:
        assert (await c.get("/healthz")).status_code == 200


async def test_the_map_is_served_next_to_the_api(node: Node, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html>map</html>")
    (tmp_path / "map.js").write_text("console.log(1)")
    app = create_app(node.service, web_dir=tmp_path, config=UNLIMITED)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://node") as c:
        assert (await c.get("/")).text == "<html>map</html>"
        assert (await c.get("/map.js")).text == "console.log(1)"
        assert (await c.get("/api/v1/picture")).json()["type"] == "snapshot"
        _is_error(await c.get("/missing.png"), 404)


async def test_the_openapi_document_and_the_offline_docs_page(
        client: httpx.AsyncClient) -> None:
    doc = (await client.get("/api/v1/openapi.json")).json()
    routes = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    api_md = (Path(__file__).resolve().parents[2] / "docs" / "API.md").read_text()
    documented = set()
    for line in api_md.splitlines():
        cells = [c.strip().strip("`") for c in line.split("|")]
        if len(cells) > 3 and cells[1] in ("GET", "POST", "DELETE"):
            path = cells[2].split("?")[0].replace("{id}", "{x}")
            documented.add((cells[1], path))
    served = {(m, p.replace("{track_id}", "{x}").replace("{alert_id}", "{x}")
               .replace("{zone_id}", "{x}")) for m, p in routes}
    assert documented == served
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status in ("422", "429", "413"):
                assert status in op["responses"], (method, path, status)
    assert set(schemas["Track"]["properties"]) == {n for n, *_ in TRACK_FIELDS}
    assert schemas["Track"]["additionalProperties"] is False

    page = await client.get("/api/v1/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        assert f"/api/v1/docs/assets/{asset}" in page.text
        assert (await client.get(f"/api/v1/docs/assets/{asset}")).status_code == 200


# --------------------------------------------------------------------------- WebSocket


class Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code, self.reason = code, reason


class WsClient:
    """A WebSocket client that calls the ASGI app in this event loop. With ``gate``,
    every message the app sends waits for it: a client that does not read."""

    def __init__(self, app: Any, query: str = "", *, gate: asyncio.Event | None = None,
                 ) -> None:
        self.app, self.query, self.gate = app, query, gate
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WsClient:
        scope = {"type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.3"},
                 "http_version": "1.1", "scheme": "ws", "server": ("node", 80),
                 "client": ("127.0.0.1", 50000), "root_path": "",
                 "path": "/api/v1/stream", "raw_path": b"/api/v1/stream",
                 "query_string": self.query.encode(), "headers": [(b"host", b"node")],
                 "subprotocols": [], "state": {}}
        self._to_app.put_nowait({"type": "websocket.connect"})
        self._task = asyncio.create_task(self.app(scope, self._to_app.get, self._send))
        return self

    async def _send(self, message: dict[str, Any]) -> None:
        if self.gate is not None and message["type"] == "websocket.send":
            await self.gate.wait()
        await self._from_app.put(message)

    async def receive(self, timeout_s: float = 5.0) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self._from_app.get(), timeout_s)
            if message["type"] == "websocket.close":
                raise Closed(message.get("code", 1000), message.get("reason") or "")
            if message["type"] == "websocket.send":
                result: dict[str, Any] = json.loads(message["text"])
                return result

    async def __aexit__(self, *exc: object) -> None:
        self._to_app.put_nowait({"type": "websocket.disconnect", "code": 1000})
        assert self._task is not None
        await asyncio.wait_for(self._task, 5.0)


async def _collect(ws: WsClient, until: Callable[[dict[str, Any]], bool]
                   ) -> list[dict[str, Any]]:
    out = []
    while True:
        out.append(await ws.receive())
        if until(out[-1]):
            return out


async def test_the_stream_starts_with_a_snapshot_then_updates(scenario: Any) -> None:
    async with live(scenario) as (n, app):
        await n.feed(n.payloads[:10])
        await n.quiet()
        async with WsClient(app) as ws:
            snap = await ws.receive()
            assert snap["type"] == "snapshot" and snap["seq"] == n.service.hub.seq
            assert snap == n.service.snapshot()
            await n.feed(n.payloads[10:30])
            await n.quiet()
            target = n.service.hub.seq
            assert target > snap["seq"] + 3
            got = await _collect(ws, lambda m: m["seq"] >= target)
        assert [m["seq"] for m in got] == list(range(snap["seq"] + 1, target + 1))
        updates = [m for m in got if m["type"] == "update"]
        assert updates and all(set(m) == {"type", "seq", "t", "tracks", "removed", "groups",
                                          "alerts"} for m in updates)
        assert [u["t"] for u in updates] == sorted(u["t"] for u in updates)
        assert n.service.hub.clients == 0


async def test_resuming_with_last_seq_gives_what_was_missed(scenario: Any) -> None:
    async with live(scenario) as (n, app):
        await n.feed(n.payloads[:20])
        async with WsClient(app) as ws:
            await ws.receive()
            seen = await _collect(ws, lambda m: m["type"] == "update")
        last = seen[-1]["seq"]
        await n.feed(n.payloads[20:40])  # missed while away
        await n.quiet()
        missed = n.service.hub.seq
        assert missed > last + 3
        async with WsClient(app, f"last_seq={last}") as ws:
            got = await _collect(ws, lambda m: m["seq"] >= missed)
        assert got[0]["type"] != "snapshot"
        assert [m["seq"] for m in got] == list(range(last + 1, missed + 1))
        # Up to date: nothing to catch up on, the next message is new.
        async with WsClient(app, f"last_seq={missed}") as ws:
            await n.feed(n.payloads[40:50])
            got = [await ws.receive()]
            assert got[0]["seq"] == missed + 1 and got[0]["type"] != "snapshot"


async def test_resuming_from_a_seq_no_longer_kept_gives_a_snapshot(scenario: Any) -> None:
    async with live(scenario, hub=Hub(history=5)) as (n, app):
        await n.feed(n.payloads[:40])
        await n.settle()
        assert n.service.hub.seq > 10
        async with WsClient(app, "last_seq=2") as ws:
            snap = await ws.receive()
        assert snap["type"] == "snapshot" and snap["seq"] == n.service.hub.seq
        # A seq from before a restart (beyond the node's): a snapshot too.
        async with WsClient(app, f"last_seq={n.service.hub.seq + 100}") as ws:
            assert (await ws.receive())["type"] == "snapshot"
        for bad in ("last_seq=x", "last_seq=-3"):
            async with WsClient(app, bad) as ws:
                with pytest.raises(Closed) as closed:
                    await ws.receive()
                assert closed.value.code == 1008 and "last_seq" in closed.value.reason


async def test_a_slow_client_is_cut_off_while_another_keeps_receiving(scenario: Any) -> None:
    async with live(scenario, hub=Hub(client_queue=4)) as (n, app):
        await n.feed(n.payloads[:10])
        gate = asyncio.Event()
        async with WsClient(app) as fast, WsClient(app, gate=gate) as slow:
            first = await fast.receive()
            assert first["type"] == "snapshot"
            reader = asyncio.create_task(_collect(fast, lambda m: m["seq"] >= first["seq"] + 15))
            await n.feed(n.payloads[10:80])
            got = await asyncio.wait_for(reader, 10.0)
            assert [m["seq"] for m in got] == list(range(first["seq"] + 1, first["seq"] + 16))
            assert n.service.hub.dropped_clients == 1 and n.service.hub.clients == 1
            gate.set()  # the slow client reads at last: its snapshot, then the resync
            assert (await slow.receive())["type"] == "snapshot"
            resync = await slow.receive()
            assert resync["type"] == "resync" and "snapshot" in resync["reason"]
            with pytest.raises(Closed) as closed:
                await slow.receive()
            assert closed.value.code == 1013
            await n.feed(n.payloads[80:90])
            assert (await fast.receive())["seq"] == got[-1]["seq"] + 1


# --------------------------------------------------------------------------- real server


async def test_a_real_server_over_tcp(scenario: Any) -> None:
    import uvicorn
    from websockets.asyncio.client import connect

    async with live(scenario) as (n, app):
        await n.feed(n.payloads[:10])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                               log_level="warning", lifespan="off"))
        serving = asyncio.create_task(server.serve())
        try:
            with anyio.fail_after(10):
                while not server.started:
                    await asyncio.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                         trust_env=False) as c:
                assert (await c.get("/healthz")).json()["status"] == "ok"
                _is_error(await c.get("/api/v1/tracks/77777777"), 404)
                async with connect(f"ws://127.0.0.1:{port}/api/v1/stream") as ws:
                    snap = json.loads(await ws.recv())
                    assert snap["type"] == "snapshot"
                    await n.feed(n.payloads[10:20])
                    update = json.loads(await asyncio.wait_for(ws.recv(), 10.0))
                    assert update["seq"] == snap["seq"] + 1
                assert (await c.get("/api/v1/picture")).json()["seq"] >= update["seq"]
        finally:
            server.should_exit = True
            await serving


# --------------------------------------------------------------------------- schemathesis


def _request(client: httpx.AsyncClient, kwargs: dict[str, Any]
             ) -> Callable[[], Any]:
    """An awaitable factory for the request schemathesis built (requests-style kwargs)."""
    async def go() -> httpx.Response:
        body: dict[str, Any] = {}
        if "json" in kwargs:
            body["json"] = kwargs["json"]
        elif kwargs.get("data") is not None:
            data = kwargs["data"]
            body["content"] = data if isinstance(data, bytes | str) else json.dumps(data)
        assert not kwargs.get("cookies")  # the API takes none
        return await client.request(kwargs["method"], kwargs["url"],
                                    params=kwargs.get("params"),
                                    headers=kwargs.get("headers"), **body)
    return go


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
        node: Node, client: httpx.AsyncClient) -> None:
    """Runs last: it may acknowledge alerts and import zones."""
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, Phase
    from hypothesis import strategies as st
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    doc = (await client.get("/api/v1/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(doc)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_headers_conformance, response_schema_conformance]
    statuses: Counter[tuple[str, int]] = Counter()

    def run() -> None:
        for result in schema.get_all_operations():
            op = result.ok()
            examples = op.get_strategies_from_examples()
            strategies = [(op.as_strategy(schemathesis.GenerationMode.POSITIVE), False),
                          (op.as_strategy(schemathesis.GenerationMode.NEGATIVE), True)]
            if examples:
                strategies.append((st.one_of(examples), False))
            for strategy, negative in strategies:
                @hypothesis.settings(max_examples=20, deadline=None, database=None,
                                     derandomize=True, phases=[Phase.explicit, Phase.generate],
                                     suppress_health_check=list(HealthCheck))
                @hypothesis.given(case=strategy)
                def check(case: Any) -> None:
                    kwargs = case.as_transport_kwargs(base_url="http://node")
                    response = anyio.from_thread.run(_request(client, kwargs))
                    statuses[(case.operation.label, response.status_code)] += 1
                    case.validate_response(response, checks=checks)

                try:
                    check()
                except hypothesis.errors.Unsatisfiable:
                    # No parameter and no body: nothing can be made invalid.
                    assert negative, op.label

    await anyio.to_thread.run_sync(run)
    assert not any(status >= 500 for _, status in statuses)
    assert sum(statuses.values()) > 17 * 20
    ok = {label for (label, status), _ in statuses.items() if status < 300}
    assert len(ok) >= 15, sorted(statuses.items())
