"""The past, from the store of the caller's view: a track's history, the picture at a
past time (the replay timeline) and the stored range. A view without a store answers
503 saying so.

Store reads block on SQLite, so they run in the thread pool (the store gives each
thread its own read connection). A view's store holds its picture in full; a partner
with a field policy gets what it reads released by it (``skyfence.release``).
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from skyfence.node.service import NodeService
from skyfence.release import (
    FieldPolicy,
    release_alert_rows,
    release_points,
    release_trail,
    snap_geodetic,
)
from skyfence.server import models as m
from skyfence.server.auth import AUTH_RESPONSES, Call, Viewer
from skyfence.server.errors import ApiError
from skyfence.server.params import BBOX_HELP, Id, OptionalTime, parse_bbox

NO_STORE = ApiError(503, "this node keeps no history: it runs without a store",
                    "give the node a store ([storage] path in node.toml) to record history "
                    "and ended alerts")

ALERT_KEYS = tuple(k for k in m.Alert.model_fields if k not in ("active", "run"))
EVENT_KEYS = tuple(m.AlertEvent.model_fields)


def stored_point(row: dict[str, Any]) -> dict[str, Any]:
    """A row of the store's track history (``TRACK_HISTORY_SCHEMA``) as the API's point."""
    return {"t": row["t"], "lat_deg": row["lat_deg"], "lon_deg": row["lon_deg"],
            "height_m": row["height_m"], "v_east_mps": row["v_east_mps"],
            "v_north_mps": row["v_north_mps"], "v_up_mps": row["v_up_mps"],
            "class": row["class_name"] or "unknown",
            "flags": [f for f in (row["flags"] or "").split("|") if f],
            "identity": row["identity"] or "", "group": row.get("group")}


def stored_groups(tracks: list[dict[str, Any]], policy: FieldPolicy
                  ) -> list[dict[str, Any]]:
    """The swarms of a stored moment, from its tracks' (released) points: each group's
    members, count and centroid; the centroid snapped as ``policy`` releases positions,
    as a live group's is."""
    members: dict[int, list[dict[str, Any]]] = {}
    for tr in tracks:
        if tr.get("group") is not None and tr["lat_deg"] is not None:
            members.setdefault(tr["group"], []).append(tr)
    if not members:
        return []
    ids = sorted(members)
    centre = np.array([[np.mean([r[k] if r[k] is not None else np.nan for r in members[g]])
                        for k in ("lat_deg", "lon_deg", "height_m")] for g in ids])
    lat, lon, h = centre.T
    if policy.round_m > 0:
        lat, lon, h = snap_geodetic(lat, lon, h, policy.round_m)
    return [{"id": g, "count": len(members[g]), "lat_deg": float(la), "lon_deg": float(lo),
             "height_m": float(hm) if np.isfinite(hm) else None,
             "members": [r["id"] for r in members[g]]}
            for g, la, lo, hm in zip(ids, lat, lon, h, strict=True)]


def stored_alert(row: dict[str, Any]) -> dict[str, Any]:
    """A row of the store's alerts (``ALERT_SCHEMA``) as the API's alert: not active
    (the engine has the active ones; one of an earlier run that never cleared went with
    that run)."""
    return {**{k: row[k] for k in ALERT_KEYS}, "active": False, "run": row["run"]}


def stored_event(row: dict[str, Any]) -> dict[str, Any]:
    """A stored alert event as written (``ALERT_EVENT_SCHEMA``)."""
    return {k: row.get(k) for k in EVENT_KEYS}


def _store(call: Call) -> Any:
    if call.view.store is None:
        raise NO_STORE
    return call.view.store


def router(service: NodeService) -> APIRouter:
    r = APIRouter(tags=["history"], responses={**AUTH_RESPONSES, 503: {
        "model": m.Error, "description": "no store"}})

    @r.get("/api/v1/tracks/{track_id}/history", response_model=m.TrackHistory,
           summary="A track's stored positions, at most one a second")
    async def track_history(
        track_id: Id,
        call: Viewer,
        since: OptionalTime = None,
        until: OptionalTime = None,
    ) -> dict[str, Any]:
        store = _store(call)
        rows = await run_in_threadpool(
            lambda: store.track_history(track_id, since_t=since, until_t=until))
        call.gave(points=len(rows))
        return {"track": track_id, "points": release_points(
            [stored_point(p) for p in rows], service.release.policy(call.partner))}

    @r.get("/api/v1/history/range", response_model=m.HistoryRange,
           summary="The times of the oldest and newest stored track positions")
    async def history_range(call: Viewer) -> dict[str, Any]:
        store = _store(call)
        span = await run_in_threadpool(store.history_range)
        t_min, t_max = span if span is not None else (None, None)
        return {"t_min": t_min, "t_max": t_max}

    @r.get("/api/v1/history/at", response_model=m.HistoryAt,
           summary="The picture as stored at a past time (the replay timeline)")
    async def history_at(
        call: Viewer,
        t: Annotated[float, Query(allow_inf_nan=False, description="the time (Unix s)")],
        window_s: Annotated[float, Query(
            gt=0, le=3600, allow_inf_nan=False,
            description="each track's latest position within this many seconds before t")
        ] = 1.0,
        bbox: Annotated[str | None, Query(description=BBOX_HELP)] = None,
        trail_s: Annotated[float, Query(
            ge=0, le=600, allow_inf_nan=False,
            description="also each track's trail: its stored points this many seconds "
                        "before t")] = 0.0,
        alerts: Annotated[bool, Query(
            description="also the alerts standing at t, as their events")] = False,
    ) -> dict[str, Any]:
        box = parse_bbox(bbox)
        store = _store(call)
        policy = service.release.policy(call.partner)

        def read() -> tuple[list[dict[str, Any]], dict[int, Any], list[dict[str, Any]]]:
            rows = store.tracks_at(t, window_s=window_s, bbox=box)
            trails = (store.trails([r["track"] for r in rows], since_t=t - trail_s, until_t=t)
                      if trail_s > 0 else {})
            events = store.alert_events_at(t) if alerts else []
            return rows, trails, events

        rows, trails, events = await run_in_threadpool(read)
        tracks = release_points([{"id": row["track"], **stored_point(row)} for row in rows],
                                policy)
        for track in tracks:
            track["trail"] = release_trail(trails.get(track["id"], []), policy)
        events = release_alert_rows([stored_event(e) for e in events], policy)
        call.gave(tracks=len(tracks), points=sum(len(tr["trail"]) for tr in tracks),
                  events=len(events))
        return {"t": t, "tracks": tracks, "groups": stored_groups(tracks, policy),
                "alert_events": events}

    return r
