"""Tokens, roles and partner scoping of the API (``skyfence.server.auth``), in process.

One node of three partners that receive different pictures — army: radar, locator and
ADS-B; police: locator and ADS-B; airport: ADS-B — with a token of every role for
each, fed the whole scenario once. Every route of the OpenAPI document is walked with
no token, a wrong one, a sensor token and another partner's token; then the roles,
the stream, and the audit log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest

from skyfence import sim
from skyfence.adapters.journal import Source
from skyfence.alerts import AlertConfig
from skyfence.node.access import Access, Role, Token, hash_token, new_token
from skyfence.node.engine import EngineConfig
from skyfence.node.partners import Partner, Releasability
from skyfence.node.service import NodeService
from skyfence.server import create_app
from skyfence.server.routes import _coverage
from skyfence.store import SqliteStore
from skyfence.zones.io import parse_zones
from skyfence.zones.sites import Site

from .test_api import UNLIMITED, Closed, Payload, _is_error, _payloads, _square, running

pytestmark = pytest.mark.anyio

A, PARTNERS = "army", ("army", "police", "airport")
ROLES = ("viewer", "operator", "admin", "sensor")
#: The role each route needs; "node" is the home partner's admin, None public. A route
#: served but missing here fails the walk: a new route must say who may call it.
NEEDS: dict[tuple[str, str], str | None] = {
    ("GET", "/healthz"): None,
    ("GET", "/metrics"): "node",
    ("GET", "/api/v1/picture"): "viewer",
    ("GET", "/api/v1/tracks"): "viewer",
    ("GET", "/api/v1/tracks/{track_id}"): "viewer",
    ("GET", "/api/v1/tracks/{track_id}/history"): "viewer",
    ("GET", "/api/v1/history/range"): "viewer",
    ("GET", "/api/v1/history/at"): "viewer",
    ("GET", "/api/v1/groups"): "viewer",
    ("GET", "/api/v1/alerts"): "viewer",
    ("GET", "/api/v1/alerts/{alert_id}"): "viewer",
    ("POST", "/api/v1/alerts/{alert_id}/ack"): "operator",
    ("GET", "/api/v1/sensors"): "viewer",
    ("GET", "/api/v1/sensors/coverage"): "viewer",
    ("GET", "/api/v1/sites"): "viewer",
    ("GET", "/api/v1/zones"): "viewer",
    ("POST", "/api/v1/zones"): "admin",
    ("DELETE", "/api/v1/zones/{zone_id}"): "admin",
    ("GET", "/api/v1/audit"): "admin",
    ("POST", "/api/v1/ingest/{source}"): "sensor",
}
#: The source the locator pushes to over the API, and the token bound to it.
PUSHED, PUSHER = "feed-locator", (A, "pusher")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Node:
    service: NodeService
    app: Any
    clock: list[float]
    #: (partner, role) → token; ("police", "auditor") is a viewer used by one test alone;
    #: PUSHER the army's sensor token bound to the PUSHED source
    tokens: dict[tuple[str, str], str]
    #: an active alert and a shown track of the army's that no other partner has
    a_track: int
    a_alert: int
    history_t: float

    def client(self, partner: str | None = None, role: str = "viewer", *,
               token: str | None = None) -> httpx.AsyncClient:
        headers = {}
        if partner is not None:
            token = self.tokens[partner, role]
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url="http://node", headers=headers)


def _release(sensors: list[str]) -> Releasability:
    assert sensors == ["radar", "locator", "adsb"]
    return Releasability(tuple(Partner(p) for p in PARTNERS),
                         {"radar": "army", "locator": "army", "adsb": "airport"},
                         {"locator": frozenset({"police"}),
                          "adsb": frozenset({"army", "police"})})


def _store(service: NodeService, partner: str) -> SqliteStore:
    store = service.view(partner).store
    assert isinstance(store, SqliteStore)
    return store


async def _settle(service: NodeService, clock: list[float], payloads: list[Payload]
                  ) -> None:
    """Move the clock on and wait until every view has stepped to the last input of its
    sensors (the reorder window keeps the last second; inputs arrive 0.1 s late)."""
    last = {v.key: max(t for sid, _, t in payloads if sid[len("feed-"):] in v.sensor_ids)
            - 0.1 for v in service.views.values()}
    clock[0] = max(last.values()) + 5.0
    with anyio.fail_after(30):
        while any(v.engine.reorder.held or (v.snapshot.get("t") or 0.0) < last[v.key] - 1e-6
                  for v in service.views.values()):
            await asyncio.sleep(0.02)


def _a_only(service: NodeService) -> tuple[int, int]:
    """A track shown to the army and an active army alert whose ids no other partner's
    picture or store knows (ids belong to a view: the same number elsewhere would be
    another track)."""
    others = [p for p in PARTNERS if p != A]
    track = next(t["id"] for t in reversed(service.snapshot(A)["tracks"])
                 if all(t["id"] not in {u["id"] for u in service.snapshot(p)["tracks"]}
                        and not _store(service, p).track_history(t["id"]) for p in others))
    alert = next(a["alert"] for a in reversed(service.active_alerts(A))
                 if a["acknowledged_by"] is None
                 and all(_store(service, p).alert(a["alert"]) is None
                         and a["alert"] not in {b["alert"] for b in service.active_alerts(p)}
                         for p in others))
    return track, alert


@pytest.fixture(scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Node]:
    run = sim.build("mixed", seed=0, duration_s=30)
    sc = run.scenario
    tmp = tmp_path_factory.mktemp("auth")
    tokens = {(p, r): new_token() for p in PARTNERS for r in ROLES}
    tokens["police", "auditor"] = new_token()
    tokens[PUSHER] = new_token()
    roles = {"auditor": "viewer", "pusher": "sensor"}
    access = Access([Token(p, Role.parse(roles.get(r, r)), hash_token(t), name=f"{p} {r}",
                           source=PUSHED if (p, r) == PUSHER else "")
                     for (p, r), t in tokens.items()], home=A)
    clock = [0.0]
    service = NodeService(
        sc, [Source(id=f"feed-{s.id}", format="jsonl", sensor=s.id) for s in sc.sensors],
        zones=parse_zones(_square(sc.origin, 1500.0, "CENTRE"), file=None).zones,
        sites=[Site(id="HQ", name="headquarters", lon_deg=sc.origin.lon_deg,
                    lat_deg=sc.origin.lat_deg, radius_m=1000.0)],
        engine=EngineConfig(alerts=AlertConfig(clear_after_s=2.0)),
        store=SqliteStore(tmp / "home.db"), store_for=lambda key: SqliteStore(tmp / f"{key}.db"),
        clock=lambda: clock[0], release=_release([s.id for s in sc.sensors]), home=A,
        access=access)
    assert len(service.views) == 3
    service.pushed = {PUSHED}
    payloads = _payloads(run)
    async with running(service):
        for sid, payload, t in payloads:
            clock[0] = t
            await service.ingest(sid, payload, t)
        await _settle(service, clock, payloads)
        for p in PARTNERS:
            _store(service, p).flush()
        track, alert = _a_only(service)
        span = _store(service, A).history_range()
        assert span is not None
        yield Node(service, create_app(service, config=UNLIMITED), clock, tokens, track,
                   alert, span[0] + 10.0)


# --------------------------------------------------------------------------- the walk


def _fill(path: str, n: Node) -> str:
    return (path.replace("{track_id}", str(n.a_track)).replace("{alert_id}", str(n.a_alert))
            .replace("{zone_id}", "WALK").replace("{source}", PUSHED))


def _request(n: Node, method: str, path: str) -> dict[str, Any]:
    """Keyword arguments of a minimal valid request."""
    kwargs: dict[str, Any] = {"method": method, "url": _fill(path, n)}
    if path == "/api/v1/history/at":
        kwargs["params"] = {"t": n.history_t}
    if path.endswith("/ack"):
        kwargs["json"] = {"by": "walker"}
    if path == "/api/v1/ingest/{source}":
        kwargs["content"] = b""  # nothing to decode: the pictures stay as they are
    if method == "POST" and path == "/api/v1/zones":
        kwargs["json"] = _square(n.service.scenario.origin, 400.0, "WALK")
    return kwargs


def _ids(rows: list[dict[str, Any]], key: str = "id") -> list[Any]:
    return [r[key] for r in rows]


def _check_scoped(n: Node, partner: str, method: str, path: str,
                  got: httpx.Response) -> None:
    """What ``partner`` received is its own view's, and nothing of the army's."""
    s, view = n.service, n.service.view(partner)
    store, snap = _store(s, partner), s.snapshot(partner)
    if "{track_id}" in path or "{alert_id}" in path:
        if path.endswith("/history"):  # a track's past: none in this view
            assert got.status_code == 200 and got.json()["points"] == [], got.text
        else:
            _is_error(got, 404)
        return
    if method != "GET" or path == "/metrics":
        return  # the changes and node-wide state: checked by the caller
    assert got.status_code == 200, got.text
    body = got.json()
    a_tracks = {t["id"] for t in s.snapshot(A)["tracks"]} - {t["id"] for t in snap["tracks"]}
    if path == "/api/v1/picture":
        assert body == snap
    elif path == "/api/v1/tracks":
        assert body["tracks"] == snap["tracks"] and not a_tracks & set(_ids(body["tracks"]))
    elif path == "/api/v1/groups":
        assert body["groups"] == snap["groups"]
    elif path == "/api/v1/alerts":
        active = [a for a in body["alerts"] if a["active"]]
        assert sorted(_ids(active, "alert")) == sorted(_ids(snap["alerts"], "alert"))
        stored = {r["alert"] for r in store.alerts(limit=100_000)}
        assert {a["alert"] for a in body["alerts"] if not a["active"]} <= stored
        assert n.a_alert not in _ids(body["alerts"], "alert")
    elif path == "/api/v1/history/range":
        assert (body["t_min"], body["t_max"]) == store.history_range()
    elif path == "/api/v1/history/at":
        assert _ids(body["tracks"]) == [r["track"] for r in store.tracks_at(n.history_t)]
    elif path == "/api/v1/sensors":
        assert [r["sensor"] for r in body["sensors"]] == list(view.sensor_ids)
    elif path == "/api/v1/sensors/coverage":
        assert body["features"] == _coverage(view)["features"]
    elif path == "/healthz":
        assert body["tracks"] == len(snap["tracks"])
        assert body["sources"] == {"up": len(view.sensor_ids), "down": 0}
    elif path == "/api/v1/audit":
        assert body["entries"] and {e["detail"].get("partner") for e in body["entries"]} \
            == {partner}
    else:
        assert path in ("/api/v1/zones", "/api/v1/sites"), path  # the same for everyone
        assert body["features"]


@pytest.mark.parametrize("partner", ["police", "airport"])
async def test_every_route_asks_for_a_token_and_answers_from_the_callers_view(
        node: Node, partner: str) -> None:
    doc = node.app.openapi()
    served = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert served == set(NEEDS)
    views = {node.service.view(p).key for p in PARTNERS}
    assert len(views) == 3  # three different pictures
    async with node.client() as anonymous, node.client(token="sf_" + "x" * 43) as wrong, \
            node.client(A, "sensor") as sensor:
        for method, path in sorted(served, key=lambda mp: (mp[0] == "DELETE", mp)):
            needs = NEEDS[method, path]
            kwargs = _request(node, method, path)
            if needs is None:  # /healthz: public, the status alone without a valid token
                for c in (anonymous, wrong, sensor):
                    assert (await c.request(**kwargs)).json() == {
                        "status": "ok", "t": None, "tracks": None, "sources": None}
            else:
                got = await anonymous.request(**kwargs)
                assert "token" in _is_error(got, 401)["error"], (method, path)
                assert got.headers["www-authenticate"] == "Bearer"
                got = await wrong.request(**kwargs)
                _is_error(got, 401)
                assert got.headers["www-authenticate"].startswith("Bearer error=")
                assert "sensor" in _is_error(await sensor.request(**kwargs), 403)["error"]
            role = "admin" if needs == "node" else (needs or "viewer")
            if path == "/api/v1/audit":
                _store(node.service, A).flush()  # the calls above, committed
            async with node.client(partner, role) as theirs:
                got = await theirs.request(**kwargs)
            if needs == "node":
                assert "node-wide" in _is_error(got, 403)["error"]
            elif needs == "sensor":  # a sensor token of another partner, bound to none
                assert "sensor" in _is_error(got, 403)["error"]
                async with node.client(*PUSHER) as pusher:
                    got = await pusher.request(**kwargs)
                assert got.status_code == 202 and got.json() == {"source": PUSHED,
                                                                 "bytes": 0}, got.text
            elif method == "POST" and path == "/api/v1/zones":
                # Zones are the node's: an admin of any partner changes them for all.
                assert got.json() == {"imported": 1, "zones": 2, "problems": []}
                assert [z.id for z in node.service.view(A).engine.zones] == ["CENTRE", "WALK"]
            elif method == "DELETE":
                assert got.status_code == 204, got.text
            else:
                _check_scoped(node, partner, method, path, got)
    assert [z.id for z in node.service.engine.zones] == ["CENTRE"]


async def test_the_army_gets_its_own_ids(node: Node) -> None:
    """The converse of the walk: the ids it used are there for their partner."""
    async with node.client(A) as army:
        track = (await army.get(f"/api/v1/tracks/{node.a_track}")).json()
        assert track["id"] == node.a_track
        assert (await army.get(f"/api/v1/tracks/{node.a_track}/history")).json()["points"]
        alert = (await army.get(f"/api/v1/alerts/{node.a_alert}")).json()
        assert alert["alert"] == node.a_alert and alert["active"]
        sensors = (await army.get("/api/v1/sensors")).json()["sensors"]
        assert [s["source"] for s in sensors] == ["feed-radar", "feed-locator", "feed-adsb"]


# --------------------------------------------------------------------------- roles


async def test_roles(node: Node) -> None:
    alert = next(a["alert"] for a in node.service.active_alerts("police")
                 if a["acknowledged_by"] is None)
    ack = f"/api/v1/alerts/{alert}/ack"
    async with node.client("police", "viewer") as viewer:
        body = _is_error(await viewer.post(ack, json={"by": "v"}), 403)
        assert "operator" in body["error"] and "operator" in body["fix"]
    assert next(a for a in node.service.active_alerts("police")
                if a["alert"] == alert)["acknowledged_by"] is None
    async with node.client("police", "operator") as operator:
        got = await operator.post(ack, json={"by": "desk 1"})
        assert got.status_code == 200 and got.json()["by"] == "desk 1", got.text
        # The police's alert, acknowledged in the police's picture alone.
        shown = (await operator.get(f"/api/v1/alerts/{alert}")).json()
        assert shown["acknowledged_by"] == "desk 1"
        zone = _square(node.service.scenario.origin, 300.0, "ROLES")
        for call in (operator.post("/api/v1/zones", json=zone),
                     operator.delete("/api/v1/zones/CENTRE"),
                     operator.get("/api/v1/audit"), operator.get("/metrics")):
            _is_error(await call, 403)
    async with node.client("police", "admin") as admin:
        assert (await admin.get("/api/v1/audit")).status_code == 200
        _is_error(await admin.get("/metrics"), 403)  # node-wide: the home partner's
    async with node.client(A, "admin") as home_admin:
        metrics = await home_admin.get("/metrics")
        assert metrics.status_code == 200 and "skyfence_view_tracks" in metrics.text
        _store(node.service, A).flush()  # the calls above, committed
        entries = (await home_admin.get("/api/v1/audit?limit=10000")).json()["entries"]
        assert {"army", "police"} <= {e["detail"].get("partner") for e in entries}
    assert [z.id for z in node.service.engine.zones] == ["CENTRE"]


# --------------------------------------------------------------------------- stream


class Ws:
    """A WebSocket client of the ASGI app in this event loop, with headers."""

    def __init__(self, app: Any, query: str = "", headers: dict[str, str] | None = None
                 ) -> None:
        self.app, self.query = app, query
        self.headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Ws:
        scope = {"type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.3"},
                 "http_version": "1.1", "scheme": "ws", "server": ("node", 80),
                 "client": ("127.0.0.1", 50000), "root_path": "",
                 "path": "/api/v1/stream", "raw_path": b"/api/v1/stream",
                 "query_string": self.query.encode(),
                 "headers": [(b"host", b"node"), *self.headers],
                 "subprotocols": [], "state": {}}
        self._to_app.put_nowait({"type": "websocket.connect"})
        self._task = asyncio.create_task(self.app(scope, self._to_app.get, self._from_app.put))
        return self

    async def receive(self) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self._from_app.get(), 5.0)
            if message["type"] == "websocket.close":
                raise Closed(message.get("code", 1000), message.get("reason") or "")
            if message["type"] == "websocket.send":
                result: dict[str, Any] = json.loads(message["text"])
                return result

    async def __aexit__(self, *exc: object) -> None:
        self._to_app.put_nowait({"type": "websocket.disconnect", "code": 1000})
        assert self._task is not None
        await asyncio.wait_for(self._task, 5.0)


async def _refused(ws: Ws) -> Closed:
    async with ws:
        with pytest.raises(Closed) as closed:
            await ws.receive()
    return closed.value


async def test_the_stream_asks_for_a_token_and_gives_the_callers_picture(node: Node) -> None:
    app = node.app
    assert (await _refused(Ws(app))).code == 4401
    assert (await _refused(Ws(app, "token=sf_nope"))).code == 4401
    wrong = await _refused(Ws(app, headers={"Authorization": "Bearer sf_nope"}))
    assert wrong.code == 4401 and "token" in wrong.reason
    forbidden = await _refused(Ws(app, f"token={node.tokens[A, 'sensor']}"))
    assert forbidden.code == 4403 and "sensor" in forbidden.reason
    for partner in PARTNERS:
        async with Ws(app, f"token={node.tokens[partner, 'viewer']}") as ws:
            assert await ws.receive() == node.service.snapshot(partner)
    async with Ws(app, headers={"Authorization": f"Bearer {node.tokens['airport', 'admin']}"}
                  ) as ws:
        assert await ws.receive() == node.service.snapshot("airport")
    clients = [v.hub.clients for v in node.service.views.values()]
    assert clients == [0, 0, 0]


# --------------------------------------------------------------------------- audit


async def test_who_received_what_is_audited(node: Node) -> None:
    police = node.service.snapshot("police")
    async with node.client("police", "auditor") as c:
        assert (await c.get("/api/v1/tracks")).status_code == 200
        assert (await c.get("/api/v1/groups")).status_code == 200
        assert (await c.get("/api/v1/alerts?active=true")).status_code == 200
        assert (await c.get(f"/api/v1/tracks/{police['tracks'][0]['id']}")).status_code == 200
        _is_error(await c.post("/api/v1/zones", json={}), 403)
        assert (await c.get("/healthz")).status_code == 200
    async with Ws(node.app, f"token={node.tokens['police', 'auditor']}") as ws:
        await ws.receive()
    async with node.client() as anonymous:
        _is_error(await anonymous.get("/api/v1/tracks"), 401)  # no caller: not audited
    _store(node.service, A).flush()
    log = [e for e in _store(node.service, A).audit_log(limit=100_000)
           if e["who"] == "police auditor"][::-1]  # oldest first
    assert all(e["detail"]["partner"] == "police" and e["detail"]["role"] == "viewer"
               and e["detail"]["token"] == "police auditor" for e in log)
    calls = [(e["action"], e["detail"]["route"], e["detail"].get("status"),
              e["detail"]["returned"]) for e in log]
    assert calls == [
        ("api", "GET /api/v1/tracks", 200, {"tracks": len(police["tracks"])}),
        ("api", "GET /api/v1/groups", 200, {"groups": len(police["groups"])}),
        ("api", "GET /api/v1/alerts", 200, {"alerts": len(police["alerts"])}),
        ("api", "GET /api/v1/tracks/{track_id}", 200, {"tracks": 1}),
        ("api", "POST /api/v1/zones", 403, {}),
        ("api", "GET /healthz", 200, {}),
        ("stream.open", "WS /api/v1/stream", None, {}),
        ("stream.close", "WS /api/v1/stream", None, {"messages": 1}),
    ]
    assert log[3]["detail"]["params"] == {"track_id": str(police["tracks"][0]["id"])}
    assert log[0]["detail"]["client"] == "127.0.0.1"


# --------------------------------------------------------------------------- sensor push


async def test_a_sensor_token_pushes_to_its_own_source_and_nothing_else(node: Node) -> None:
    s = node.service
    pushed, other = s.sources[PUSHED], s.sources["feed-radar"]
    refused = {sid: st.rejected["unauthenticated sensor"] for sid, st in s.sources.items()}
    inputs, bad = pushed.inputs, sum(pushed.rejected.values())
    # A line the locator's decoder refuses: it reaches the decoder and changes no picture.
    line = b'{"t": 1, "sensor": "locator", "azimuth_rad": "north"}\n'
    async with node.client(*PUSHER) as pusher:
        got = await pusher.post(f"/api/v1/ingest/{PUSHED}", content=line)
        assert got.status_code == 202 and got.json() == {"source": PUSHED,
                                                         "bytes": len(line)}, got.text
        body = _is_error(await pusher.post("/api/v1/ingest/feed-radar", content=line), 403)
        assert PUSHED in body["error"] and "feed-radar" in body["fix"]
        _is_error(await pusher.get("/api/v1/sensors"), 403)  # it reads nothing
        _is_error(await pusher.post("/api/v1/ingest/nowhere", content=line), 403)
    async with node.client() as anonymous, node.client(A, "admin") as admin, \
            node.client(token="sf_" + "y" * 43) as wrong:
        _is_error(await anonymous.post(f"/api/v1/ingest/{PUSHED}", content=line), 401)
        _is_error(await wrong.post(f"/api/v1/ingest/{PUSHED}", content=line), 401)
        assert "sensor" in _is_error(await admin.post(f"/api/v1/ingest/{PUSHED}",
                                                      content=line), 403)["error"]
    with anyio.fail_after(10):
        while pushed.inputs == inputs:
            await asyncio.sleep(0.02)
    # The push was decoded (its line refused by the decoder); each refused call counted.
    assert pushed.inputs == inputs + 1
    assert pushed.rejected["unauthenticated sensor"] == refused[PUSHED] + 3
    assert other.rejected["unauthenticated sensor"] == refused["feed-radar"] + 1
    assert sum(pushed.rejected.values()) == bad + 4
    _store(s, A).flush()
    log = [e for e in _store(s, A).audit_log(limit=100_000) if e["action"] == "source.refused"]
    assert sum(e["detail"]["source"] == PUSHED for e in log) >= 3
    assert any(e["detail"]["source"] == "feed-radar" and "may push only" in e["detail"]["reason"]
               for e in log)
