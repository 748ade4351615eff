"""Field-level release through the API, the stream, the store and the outputs
(``skyfence.release``), in process.

One node of three partners: army (home) and police receive the same sensors, airport
the ADS-B receiver alone; police may have positions to 1 km, velocities to 5 m/s and
no identities, airport positions to 500 m and no identities. Every picture route,
history route, alert route, the WebSocket stream and the outputs configured for
police (GeoJSON file, CoT datagrams) are read and walked: nothing police or airport
receives carries an identity or a position off its grid, while army, reading the same
view, gets identities and full positions.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

# The federation tests' private nats-server (their partners' users and permissions).
from federation.conftest import Broker, broker  # noqa: F401
from skyfence import sim
from skyfence.adapters import cot
from skyfence.adapters.journal import Source
from skyfence.alerts import AlertConfig
from skyfence.errors import InputError
from skyfence.node.access import Access, Role, Token, hash_token, new_token
from skyfence.node.config import parse_config
from skyfence.node.engine import EngineConfig
from skyfence.node.outputs import (
    CotOutput,
    CotOutputConfig,
    GeoJsonOutput,
    GeoJsonOutputConfig,
    PictureOutput,
)
from skyfence.node.partners import Partner, Releasability
from skyfence.node.service import NodeService
from skyfence.release import FieldPolicy
from skyfence.server import create_app
from skyfence.store import SqliteStore
from skyfence.zones.io import parse_zones
from skyfence.zones.sites import Site

from .test_api import UNLIMITED, _payloads, _square, running
from .test_auth import Ws, _settle

pytestmark = pytest.mark.anyio

A, PARTNERS = "army", ("army", "police", "airport")
POLICE = FieldPolicy(round_m=1000.0, round_mps=5.0, identity=False)
AIRPORT = FieldPolicy(round_m=500.0, identity=False)
POLICY = {"army": FieldPolicy(), "police": POLICE, "airport": AIRPORT}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Node:
    service: NodeService
    app: Any
    tokens: dict[tuple[str, str], str]
    tmp: Path
    #: CoT datagrams police's output sent
    cot: list[bytes]

    def client(self, partner: str, role: str = "viewer") -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://node",
            headers={"Authorization": f"Bearer {self.tokens[partner, role]}"})


@pytest.fixture(scope="module")
def cot_socket() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        s.setblocking(False)
        yield s


def _datagrams(s: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(s.recv(1 << 16))
        except BlockingIOError:
            return out


@pytest.fixture(scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory, cot_socket: socket.socket
               ) -> AsyncIterator[Node]:
    run = sim.build("mixed", seed=0, duration_s=30)
    sc = run.scenario
    tmp = tmp_path_factory.mktemp("release")
    ids = [s.id for s in sc.sensors]
    assert ids == ["radar", "locator", "adsb"]
    release = Releasability(tuple(Partner(p, policy=POLICY[p]) for p in PARTNERS),
                            dict.fromkeys(ids, A),
                            {"radar": frozenset({"police"}), "locator": frozenset({"police"}),
                             "adsb": frozenset({"police", "airport"})})
    tokens = {(p, r): new_token() for p in PARTNERS for r in ("viewer", "operator")}
    access = Access([Token(p, Role.parse(r), hash_token(t), name=f"{p} {r}")
                     for (p, r), t in tokens.items()], home=A)
    port = cot_socket.getsockname()[1]
    police_outputs: list[PictureOutput] = [
        GeoJsonOutput("police-geojson", GeoJsonOutputConfig(path=tmp / "police.geojson"),
                      sc.origin),
        CotOutput("police-cot", CotOutputConfig(host="127.0.0.1", port=port), sc.origin)]
    clock = [0.0]
    service = NodeService(
        sc, [Source(id=f"feed-{s.id}", format="jsonl", sensor=s.id) for s in sc.sensors],
        zones=parse_zones(_square(sc.origin, 1500.0, "CENTRE"), file=None).zones,
        sites=[Site(id="HQ", name="headquarters", lon_deg=sc.origin.lon_deg,
                    lat_deg=sc.origin.lat_deg, radius_m=1000.0)],
        engine=EngineConfig(alerts=AlertConfig(clear_after_s=2.0)),
        store=SqliteStore(tmp / "home.db"), store_for=lambda key: SqliteStore(tmp / f"{key}.db"),
        clock=lambda: clock[0], release=release, home=A, access=access,
        outputs=[GeoJsonOutput("army-geojson", GeoJsonOutputConfig(path=tmp / "army.geojson"),
                               sc.origin)],
        view_outputs={"police": police_outputs})
    assert len(service.views) == 2 and service.view("police") is service.view(A)
    payloads = _payloads(run)
    async with running(service):
        await service.start_outputs()
        for sid, payload, t in payloads:
            clock[0] = t
            await service.ingest(sid, payload, t)
        await _settle(service, clock, payloads)
        await asyncio.sleep(0.5)  # the outputs' last picture written and sent
        for view in service.views.values():
            view.store.flush()
        yield Node(service, create_app(service, config=UNLIMITED), tokens, tmp,
                   _datagrams(cot_socket))
        await service.close_outputs()


# --------------------------------------------------------------------------- checks


def _cells(lat: np.ndarray, size_m: float) -> tuple[float, np.ndarray]:
    dlat = np.degrees(size_m / 6_371_000.0)
    return dlat, dlat / np.maximum(np.cos(np.radians(lat)), 1e-3)


def _on_grid(points: list[tuple[float, float, float]], size_m: float) -> np.ndarray:
    """For each (lat, lon, height), whether it is a point of the grid of ``size_m``
    (to 1/10,000 of a cell: what the edges' rounding leaves)."""
    p = np.array(points, dtype=np.float64).reshape(-1, 3)
    dlat, dlon = _cells(p[:, 0], size_m)

    def whole(x: np.ndarray) -> np.ndarray:
        return np.asarray(np.abs(x - np.round(x)) < 1e-4)

    return whole(p[:, 0] / dlat) & whole(p[:, 1] / dlon) & whole(p[:, 2] / size_m)


def _walk(obj: Any) -> Iterator[Any]:
    yield obj
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def _positions(obj: Any) -> list[tuple[float, float, float]]:
    return [(d["lat_deg"], d["lon_deg"], d["height_m"]) for d in _walk(obj)
            if isinstance(d, dict) and d.get("lat_deg") is not None]


def _identities(obj: Any) -> list[str]:
    """Every identity a payload carries: identity fields, and icao:/rid: in any text."""
    found = [d["identity"] for d in _walk(obj) if isinstance(d, dict) and d.get("identity")]
    return found + [s for s in _walk(obj) if isinstance(s, str)
                    and ("icao:" in s.lower() or "rid:" in s.lower())]


def _released(obj: Any, policy: FieldPolicy, *, at_least: int = 1) -> None:
    """Nothing in ``obj`` (a JSON payload) that ``policy`` does not release."""
    assert _identities(obj) == []
    pos = _positions(obj)
    assert len(pos) >= at_least
    assert _on_grid(pos, policy.round_m).all(), [p for p, ok in zip(
        pos, _on_grid(pos, policy.round_m), strict=True) if not ok][:3]
    for d in _walk(obj):
        if not isinstance(d, dict):
            continue
        if d.get("extent_m") is not None:
            assert d["extent_m"] % policy.round_m == 0
        if policy.round_mps and "v_east_mps" in d:
            v = np.array([d["v_east_mps"], d["v_north_mps"], d["v_up_mps"]]) / policy.round_mps
            assert np.allclose(v, np.round(v), atol=1e-6)
        if "sd_h_m" in d:
            assert d["sd_h_m"] >= 0.999 * policy.round_m / 12**0.5


def _full(obj: Any) -> None:
    """The home partner's: identities there, positions off any grid."""
    assert _identities(obj)
    assert not _on_grid(_positions(obj), 1000.0).all()


ROUTES = ("/api/v1/picture", "/api/v1/tracks", "/api/v1/groups", "/api/v1/alerts",
          "/api/v1/alerts?active=true")


async def _everything(n: Node, partner: str) -> dict[str, Any]:
    """What ``partner`` reads from every route that gives track data."""
    got: dict[str, Any] = {}
    snap = n.service.snapshot(partner)
    async with n.client(partner) as c:
        for path in ROUTES:
            r = await c.get(path)
            assert r.status_code == 200, r.text
            got[path] = r.json()
        tracks = [t["id"] for t in snap["tracks"]]
        for tid in tracks[:: max(1, len(tracks) // 8)]:
            got[f"track {tid}"] = (await c.get(f"/api/v1/tracks/{tid}")).json()
            got[f"history {tid}"] = (await c.get(f"/api/v1/tracks/{tid}/history")).json()
            assert got[f"history {tid}"]["points"]
        span = (await c.get("/api/v1/history/range")).json()
        for t in np.linspace(span["t_min"] + 2.0, span["t_max"], 4).tolist():
            got[f"at {t}"] = (await c.get("/api/v1/history/at", params={
                "t": t, "trail_s": 30, "alerts": "true"})).json()
        alerts = got["/api/v1/alerts"]["alerts"]
        if partner != "airport":  # whose ADS-B picture raises none
            assert {a["active"] for a in alerts} == {True, False}  # active and stored
        for a in alerts[:: max(1, len(alerts) // 8)]:
            one = (await c.get(f"/api/v1/alerts/{a['alert']}")).json()
            assert one["history"]
            got[f"alert {a['alert']}"] = one
    return got


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("partner", ["police", "airport"])
async def test_every_route_gives_a_partner_with_a_policy_what_it_releases(
        node: Node, partner: str) -> None:
    got = await _everything(node, partner)
    # Positions in each (airport's ADS-B picture has no groups and raises no alerts).
    needed = ("/api/v1/picture", "/api/v1/tracks", "track ", "history ") + (
        ("/api/v1/groups", "/api/v1/alerts", "alert ") if partner == "police" else ())
    for what, body in got.items():
        _released(body, POLICY[partner], at_least=int(what.startswith(needed)))
    assert sum(len(b["tracks"]) for k, b in got.items() if k.startswith("at ")) > 10
    # The replay's trails are positions too: on the grid.
    trail = [(lat, lon, 0.0) for k, b in got.items() if k.startswith("at ")
             for tr in b["tracks"] for _, lon, lat in tr["trail"]]
    assert len(trail) > 10 and _on_grid(trail, POLICY[partner].round_m).all()


async def test_the_home_partner_reads_the_same_view_in_full(node: Node) -> None:
    army, police = await _everything(node, A), await _everything(node, "police")
    _full(army)
    _full(army["/api/v1/picture"])
    # The same tracks, alerts and groups: the same picture, released coarser.
    a, p = army["/api/v1/picture"], police["/api/v1/picture"]
    assert [t["id"] for t in a["tracks"]] == [t["id"] for t in p["tracks"]]
    assert [g["members"] for g in a["groups"]] == [g["members"] for g in p["groups"]]
    assert [x["alert"] for x in a["alerts"]] == [x["alert"] for x in p["alerts"]]
    full = np.array([[t["lat_deg"], t["lon_deg"]] for t in a["tracks"]])
    coarse = np.array([[t["lat_deg"], t["lon_deg"]] for t in p["tracks"]])
    dlat, dlon = _cells(coarse[:, 0], 1000.0)
    assert (np.abs(full[:, 0] - coarse[:, 0]) <= dlat * 0.5 + 1e-9).all()
    assert (np.abs(full[:, 1] - coarse[:, 1]) <= dlon * 0.5 + 1e-9).all()
    assert np.abs(full - coarse).max() > dlat * 0.2  # moved: not the full values


async def test_the_stream_gives_each_partner_its_release(node: Node) -> None:
    s = node.service
    assert s.hub_for("police") is not s.hub_for(A)
    assert s.hub_for("airport") is not s.view("airport").hub
    for partner in PARTNERS:
        hub = s.hub_for(partner)
        assert hub.seq > 20
        token = node.tokens[partner, "viewer"]
        async with Ws(node.app, f"token={token}") as ws:
            snapshot = await ws.receive()
        assert snapshot == s.snapshot(partner)
        async with Ws(node.app, f"token={token}&last_seq=0") as ws:  # all it missed
            messages = [await ws.receive() for _ in range(hub.seq)]
        assert [m["seq"] for m in messages] == list(range(1, hub.seq + 1))
        updates = [m for m in messages if m["type"] == "update"]
        assert updates
        if partner == A:
            _full(snapshot)
            _full(updates)
        else:
            _released(snapshot, POLICY[partner])
            _released(updates, POLICY[partner])


async def test_an_acknowledgement_reaches_each_partner_released(node: Node) -> None:
    s = node.service
    alert = next(a for a in s.active_alerts("police")
                 if a["acknowledged_by"] is None and a["lat_deg"] is not None)
    seqs = {p: s.hub_for(p).seq for p in ("army", "police")}
    async with node.client("police", "operator") as c:
        got = await c.post(f"/api/v1/alerts/{alert['alert']}/ack", json={"by": "desk 2"})
    assert got.status_code == 200, got.text
    _released(got.json(), POLICE)
    sub = s.hub_for("police").subscribe(seqs["police"])
    (police_msg,) = sub.backlog
    s.hub_for("police").unsubscribe(sub)
    sub = s.hub_for(A).subscribe(seqs[A])
    (army_msg,) = sub.backlog
    s.hub_for(A).unsubscribe(sub)
    assert police_msg["alert"]["alert"] == army_msg["alert"]["alert"] == alert["alert"]
    _released(dict(police_msg), POLICE)
    assert not _on_grid(_positions(dict(army_msg)), 1000.0).all()
    shown = next(a for a in s.active_alerts("police") if a["alert"] == alert["alert"])
    assert shown["acknowledged_by"] == "desk 2"
    _released(shown, POLICE)


async def test_the_outputs_of_a_partner_with_a_policy_are_released(node: Node) -> None:
    police = json.loads((node.tmp / "police.geojson").read_text())
    army = json.loads((node.tmp / "army.geojson").read_text())
    points = [f for f in police["features"] if f["geometry"]["type"] == "Point"]
    assert len(points) > 10
    assert all(f["properties"]["identity"] is None for f in points)
    assert _identities(police) == []
    pos = [(f["geometry"]["coordinates"][1], f["geometry"]["coordinates"][0],
            f["geometry"]["coordinates"][2]) for f in points]
    assert _on_grid(pos, 1000.0).all()
    assert _identities(army)
    army_pos = [(f["geometry"]["coordinates"][1], f["geometry"]["coordinates"][0],
                 f["geometry"]["coordinates"][2])
                for f in army["features"] if f["geometry"]["type"] == "Point"]
    assert not _on_grid(army_pos, 1000.0).all()
    events = [cot.parse_xml(d) for d in node.cot]
    tracks = [e for e in events if "swarm" not in e.callsign]
    assert len(tracks) > 50
    assert not any("icao:" in e.callsign or "rid:" in e.callsign or "identity" in e.remarks
                   for e in events)
    assert _on_grid([(e.lat_deg, e.lon_deg, e.hae_m) for e in events], 1000.0).all()
    assert min(e.ce_m for e in tracks) >= 288.0  # the grid's error, said
    # Counted in /metrics with the home view's others.
    metrics = node.service.metrics_text()
    assert 'skyfence_output_pictures_total{output="police-cot"}' in metrics


async def test_zones_changed_reach_each_partner_released(node: Node) -> None:
    s = node.service
    seqs = {p: s.hub_for(p).seq for p in PARTNERS}
    before = list(s.engine.zones)
    await s.set_zones([])  # the zone alerts end
    try:
        got = {}
        for p in PARTNERS:
            sub = s.hub_for(p).subscribe(seqs[p])
            got[p] = [dict(m) for m in sub.backlog]
            s.hub_for(p).unsubscribe(sub)
        assert [m["type"] for m in got["police"]] == [m["type"] for m in got[A]]
        assert got["police"][-1]["type"] == "zones"
        cleared = [m for m in got["police"] if m["type"] == "alert"]
        assert cleared and all(m["alert"]["event"] == "cleared" for m in cleared)
        _released(got["police"], POLICE, at_least=0)
        _released(got["airport"], AIRPORT, at_least=0)
        _released(s.snapshot("police"), POLICE)
    finally:
        await s.set_zones(before)


def test_a_partner_policy_is_configured_in_node_toml(tmp_path: Path) -> None:
    doc: dict[str, Any] = {
        "node": {"name": "hq", "origin": {"lat_deg": 47.45, "lon_deg": 8.56, "alt_m": 420.0}},
        "partners": [{"id": "police"},
                     {"id": "army", "round_m": 1000, "round_mps": 5.0, "identity": False}],
        "sensors": [{"id": "radar1", "kind": "radar", "position_enu_m": [0.0, 0.0, 12.0],
                     "pd": 0.9, "release": ["army"],
                     "noise_std": {"range_m": 8.0, "azimuth_rad": 0.003,
                                   "elevation_rad": 0.005}}]}
    cfg = parse_config(doc)
    assert cfg.release is not None
    assert cfg.release.policy("army") == POLICE
    assert cfg.release.policy("police").full
    # Federation to army: the partner's policy is applied already; a send may only
    # make it coarser.
    fed = {"url": "nats://127.0.0.1:4222", "send": [{"to": "army"}]}
    send = parse_config({**doc, "federation": fed}).federation.send[0]  # type: ignore[union-attr]
    assert send.policy.full
    coarser = {**fed, "send": [{"to": "army", "round_m": 5000.0}]}
    send = parse_config({**doc, "federation": coarser}).federation.send[0]  # type: ignore[union-attr]
    assert send.policy.round_m == 5000.0
    for bad, key in ((("round_m", 100.0), "federation.send[0].round_m"),
                     (("identity", True), "federation.send[0].identity")):
        with pytest.raises(InputError) as err:
            parse_config({**doc, "federation": {**fed, "send": [{"to": "army",
                                                                  bad[0]: bad[1]}]}})
        assert key in str(err.value)
    for partners, key in (
            ([{"id": "police", "round_m": 1000}, {"id": "army"}], "partners[0].round_m"),
            ([{"id": "police"}, {"id": "army", "round_m": -1}], "partners[1].round_m"),
            ([{"id": "police"}, {"id": "army", "identity": "no"}], "partners[1].identity"),
            ([{"id": "police"}, {"id": "army", "fields": []}], "partners[1].fields")):
        with pytest.raises(InputError) as err:
            parse_config({**doc, "partners": partners})
        assert key in str(err.value)
    with pytest.raises(InputError) as err:
        NodeService(cfg.scenario, [], release=cfg.release, home="army")
    assert "home partner" in str(err.value)


def test_federation_to_a_partner_sends_what_its_policy_releases(
        broker: Broker) -> None:  # noqa: F811
    """[[federation.send]] to police without round_m or identity: police's own policy
    holds on the broker too (a real nats-server; police reads its stream)."""
    import time

    from skyfence.federation.codec import PictureDecoder
    from skyfence.federation.nats import Federation, FederationConfig, Receive, Send
    from skyfence.geo import ecef_to_geodetic
    from skyfence.node.run import jsonl_payloads

    run = sim.build("mixed", seed=0, duration_s=15)
    sc = run.scenario
    ids = [s.id for s in sc.sensors]
    release = Releasability((Partner(A), Partner("police", policy=POLICE)),
                            dict.fromkeys(ids, A), {s: frozenset({"police"}) for s in ids})

    async def main() -> tuple[list[bytes], dict[str, Any]]:
        army = Federation(FederationConfig(url=broker.url, partner=A, node="army-hq", user=A,
                                           password=broker.passwords[A],
                                           send=(Send(to="police"),)))
        police = Federation(FederationConfig(url=broker.url, partner="police", node="po",
                                             user="police",
                                             password=broker.passwords["police"]))
        for fed in (army, police):
            await fed.connect()
            await fed.ensure_stream()
        service = NodeService(sc, [Source(id=f"sim-{s.id}", format="jsonl", sensor=s.id)
                                   for s in sc.sensors], release=release,
                              view_outputs={"police": [army.output(Send(to="police"),
                                                                   sc.origin)]},
                              clock=time.time)
        await service.start_outputs()
        got: list[bytes] = []

        async def deliver(payload: bytes) -> None:
            got.append(payload)

        tasks = [asyncio.create_task(service.run(tick_s=0.05)),
                 asyncio.create_task(police.receive(Receive(sender=A), deliver))]
        try:
            for t, sid, payload in jsonl_payloads(sc, run.detections):
                await service.ingest(sid, payload, t)
                await asyncio.sleep(0)
            deadline = time.monotonic() + 20.0
            while len(got) < 8 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return got, service.snapshot(A)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await service.close_outputs()
            for fed in (army, police):
                await fed.close()
            service.close()

    got, home = asyncio.run(main())
    assert len(got) >= 8
    assert any(t["identity"] for t in home["tracks"])  # there were identities to drop
    decoder = PictureDecoder(partner=A, recipient="police")
    pictures = [m for data in got for m in decoder.feed(data)]
    assert decoder.counters == {"accepted": len(got)}
    rotation = sc.origin.rotation
    n = 0
    for pic in pictures:
        assert (pic.identity == "").all()  # type: ignore[union-attr]
        lat, lon, h = ecef_to_geodetic(pic.x[:, :3])  # type: ignore[union-attr]
        assert _on_grid(list(zip(lat.tolist(), lon.tolist(), h.tolist(), strict=True)),
                        1000.0).all()
        v_enu = pic.x[:, 3:6] @ rotation.T / 5.0  # type: ignore[union-attr]
        assert np.allclose(v_enu, np.round(v_enu), atol=1e-6)
        assert (pic.P[:, 0, 0] >= 1000.0**2 / 12.0).all()  # type: ignore[union-attr]
        n += len(lat)
    assert n > 50
