"""The picture as it is now: health, metrics, picture, tracks, groups, alerts, sensors,
sites, coverage. Everything here reads the caller's view (``skyfence.server.auth``):
``NodeService.snapshot(partner)`` (rebuilt after each step), the view's sensors and
engine; ended alerts come from the view's store. Track and alert ids are a view's
own: another partner's are simply not found. A partner with a field policy has its
snapshot released already; what comes from the store is released here."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from skyfence.errors import SkyfenceError
from skyfence.node.service import NodeService, View
from skyfence.release import release_alert_rows
from skyfence.server import models as m
from skyfence.server.audit import audit
from skyfence.server.auth import (
    AUTH_RESPONSES,
    NodeAdmin,
    Operator,
    OptionalCall,
    SensorCall,
    Viewer,
)
from skyfence.server.errors import ApiError
from skyfence.server.history import stored_alert, stored_event
from skyfence.server.params import BBOX_HELP, Id, in_bbox, parse_bbox


def active_alerts(service: NodeService, partner: str | None = None) -> list[dict[str, Any]]:
    """A partner's view's active alerts (the home view's by default) as the API's rows."""
    view = service.home_view if partner is None else service.view(partner)
    run = None if view.store is None else view.store.run
    return [active_alert(a, run) for a in service.active_alerts(partner)]


def active_alert(row: dict[str, Any], run: int | None) -> dict[str, Any]:
    return {**row, "active": True, "cleared_t": None, "run": run}


def sensor_status(service: NodeService, view: View) -> list[dict[str, Any]]:
    """The sources of the sensors released to a view, as ``NodeService.sensor_status``."""
    mine = set(view.sensor_ids)
    return [s for s in service.sensor_status() if s["sensor"] in mine]


def router(service: NodeService) -> APIRouter:
    r = APIRouter()
    public = APIRouter()
    coverage: dict[str, dict[str, Any]] = {}  # by view
    coverage_lock = asyncio.Lock()

    @public.get("/healthz", response_model=m.Health, tags=["node"],
                summary="Liveness; with a token (or on an open node) the data's time, "
                        "tracks shown, sources up and down")
    def healthz(call: OptionalCall) -> dict[str, Any]:
        if call is None:
            return {"status": "ok", "t": None, "tracks": None, "sources": None}
        snap = service.snapshot(call.partner)
        states = [s["status"] for s in sensor_status(service, call.view)]
        return {"status": "ok", "t": snap.get("t"), "tracks": len(snap.get("tracks", [])),
                "sources": {"up": states.count("up"), "down": states.count("down")}}

    @r.get("/metrics", response_class=PlainTextResponse, tags=["node"],
           summary="Prometheus text exposition (node-wide: the home partner's admin)",
           responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    def metrics(call: NodeAdmin) -> PlainTextResponse:
        return PlainTextResponse(service.metrics_text(),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    @r.get("/api/v1/picture", response_model=m.Snapshot, tags=["picture"],
           summary="The whole picture now, as the stream's snapshot")
    def picture(call: Viewer) -> dict[str, Any]:
        snap = service.snapshot(call.partner)
        call.gave(**{k: len(snap.get(k, [])) for k in ("tracks", "groups", "alerts")})
        return snap

    @r.get("/api/v1/tracks", response_model=m.TrackList, tags=["picture"],
           summary="The shown tracks, filtered")
    def tracks(
        call: Viewer,
        bbox: Annotated[str | None, Query(description=BBOX_HELP)] = None,
        class_: Annotated[list[m.TrackClass] | None,
                          Query(alias="class", description="any of these classes")] = None,
        flag: Annotated[list[m.TrackFlagName] | None,
                        Query(description="carrying any of these flags")] = None,
    ) -> dict[str, Any]:
        box = parse_bbox(bbox)
        snap = service.snapshot(call.partner)
        rows = snap.get("tracks", [])
        if box is not None:
            rows = [t for t in rows if in_bbox(t["lon_deg"], t["lat_deg"], box)]
        if class_:
            wanted = set(class_)
            rows = [t for t in rows if t["class"] in wanted]
        if flag:
            flags = set(flag)
            rows = [t for t in rows if flags.intersection(t["flags"])]
        call.gave(tracks=len(rows))
        return {"t": snap.get("t"), "seq": snap["seq"], "tracks": rows}

    @r.get("/api/v1/tracks/{track_id}", response_model=m.Track, tags=["picture"],
           summary="One shown track", responses={404: {"model": m.Error}})
    def track(track_id: Id, call: Viewer) -> dict[str, Any]:
        for t in service.snapshot(call.partner).get("tracks", []):
            if t["id"] == track_id:
                call.gave(tracks=1)
                return dict(t)
        raise ApiError(404, f"track {track_id} is not in the picture",
                       "it may have ended: list the shown tracks with GET /api/v1/tracks, "
                       "or ask its past from /api/v1/tracks/{id}/history")

    @r.get("/api/v1/groups", response_model=m.GroupList, tags=["picture"],
           summary="Groups (swarms) now")
    def groups(call: Viewer) -> dict[str, Any]:
        snap = service.snapshot(call.partner)
        rows = snap.get("groups", [])
        call.gave(groups=len(rows))
        return {"t": snap.get("t"), "groups": rows}

    @r.get("/api/v1/alerts", response_model=m.Alerts, tags=["alerts"],
           summary="Alerts, newest first: the active ones, and ended ones from the store")
    async def alerts(
        call: Viewer,
        active: Annotated[bool, Query(description="only the active ones")] = False,
        kind: Annotated[m.AlertKind | None, Query(description="only this kind")] = None,
        since: Annotated[float | None, Query(
            allow_inf_nan=False, description="only those updated at or after (Unix s)")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000, description="at most this many")] = 100,
    ) -> dict[str, Any]:
        rows = {(a["run"], a["alert"]): a for a in active_alerts(service, call.partner)
                if (kind is None or a["kind"] == kind)
                and (since is None or a["updated_t"] >= since)}
        store = call.view.store
        if not active and store is not None:
            stored = await run_in_threadpool(
                lambda: store.alerts(since_t=since, kind=kind, limit=limit + len(rows)))
            for a in release_alert_rows([stored_alert(row) for row in stored],
                                        service.release.policy(call.partner)):
                rows.setdefault((a["run"], a["alert"]), a)
        out = sorted(rows.values(), key=lambda a: (a["updated_t"], a["run"] or 0, a["alert"]),
                     reverse=True)[:limit]
        call.gave(alerts=len(out))
        return {"alerts": out}

    @r.get("/api/v1/alerts/{alert_id}", response_model=m.AlertWithHistory, tags=["alerts"],
           summary="One alert with its history of events (the latest run's, after a "
                   "restart)", responses={404: {"model": m.Error}})
    async def alert(alert_id: Id, call: Viewer) -> dict[str, Any]:
        row = next((a for a in active_alerts(service, call.partner)
                    if a["alert"] == alert_id), None)
        history: list[dict[str, Any]] = []
        store = call.view.store
        if store is not None:
            run = None if row is None else row["run"]
            if row is None:
                found = await run_in_threadpool(store.alert, alert_id)
                if found is not None:
                    policy = service.release.policy(call.partner)
                    row, run = release_alert_rows([stored_alert(found)], policy)[0], found["run"]
            if row is not None:
                events = await run_in_threadpool(lambda: store.alert_history(alert_id, run=run))
                history = release_alert_rows([stored_event(e) for e in events],
                                             service.release.policy(call.partner))
        if row is None:
            raise ApiError(404, f"no alert {alert_id}",
                           "list the alerts with GET /api/v1/alerts" + (
                               "" if store is not None else
                               "; this node keeps no store, so only active alerts are known"))
        call.gave(alerts=1, events=len(history))
        return {**row, "history": history}

    @r.post("/api/v1/alerts/{alert_id}/ack", response_model=m.AlertEvent, tags=["alerts"],
            summary="Acknowledge an active alert (operator)",
            responses={404: {"model": m.Error}})
    async def acknowledge(alert_id: Id, body: m.Acknowledge, request: Request,
                          call: Operator) -> dict[str, Any]:
        try:
            event = await service.acknowledge(alert_id, by=body.by, partner=call.partner)
        except SkyfenceError as err:
            raise ApiError(404, str(err), "list the active alerts with "
                           "GET /api/v1/alerts?active=true") from None
        await audit(service, request, who=body.by, action="alert.acknowledge",
                    detail={"alert": alert_id}, call=call)
        return event

    @r.get("/api/v1/sensors", response_model=m.Sensors, tags=["sensors"],
           summary="Each source of a sensor released to the caller's partner: its sensor, "
                   "status and counts")
    def sensors(call: Viewer) -> dict[str, Any]:
        rows = sensor_status(service, call.view)
        call.gave(sensors=len(rows))
        return {"sensors": rows}

    @r.get("/api/v1/sensors/coverage", response_model=m.FeatureCollection, tags=["sensors"],
           summary="Coverage bands of the caller's sensors: the lowest height seen, as "
                   "GeoJSON polygons")
    async def sensor_coverage(call: Viewer) -> dict[str, Any]:
        view = call.view
        async with coverage_lock:
            if view.key not in coverage:
                coverage[view.key] = await run_in_threadpool(_coverage, view)
        doc = coverage[view.key]
        call.gave(features=len(doc["features"]))
        return doc

    @r.get("/api/v1/sites", response_model=m.Sites, tags=["zones"],
           summary="Defended sites as GeoJSON points")
    def sites(call: Viewer) -> dict[str, Any]:
        rows = call.view.engine.sites
        call.gave(sites=len(rows))
        return {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Point",
                                             "coordinates": [s.lon_deg, s.lat_deg]},
             "properties": {"id": s.id, "name": s.name, "radius_m": s.radius_m,
                            "ceiling_m": s.ceiling_m}}
            for s in rows]}

    @r.post("/api/v1/ingest/{source}", response_model=m.Ingested, status_code=202,
            tags=["sensors"],
            summary="A sensor pushes its feed to its source (transport \"http\"), with a "
                    "sensor token bound to that source",
            responses={404: {"model": m.Error, "description": "no such source takes pushes"}},
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}},
                "application/x-ndjson": {"schema": {"type": "string"}}}}})
    async def ingest(source: str, request: Request, call: SensorCall) -> dict[str, Any]:
        if source not in service.pushed:
            raise ApiError(404, f"no source {source!r} takes pushes",
                           "declare it with transport = \"http\" in node.toml; this node's: "
                           + (", ".join(sorted(service.pushed)) or "none"))
        body = await request.body()
        # Bytes in the source's own wire format, as one read of a TCP feed would give.
        await service.ingest(source, body)
        call.gave(bytes=len(body))
        return {"source": source, "bytes": len(body)}

    out = APIRouter()
    out.include_router(public)
    out.include_router(r, responses=AUTH_RESPONSES)
    return out


def _coverage(view: View) -> dict[str, Any]:
    from skyfence import coverage

    try:
        cov = coverage.compute(view.scenario)
    except SkyfenceError:
        return {"type": "FeatureCollection", "features": []}  # no sensor sees anything
    return coverage.to_geojson(cov)
