"""Zones over the API: the list as skyfence GeoJSON, an all-or-nothing import of a zone
file (skyfence GeoJSON, ED-269 or ED-318), and deleting one zone.

An import changes nothing unless the whole file is good: every problem is listed (with
422), so that an operator fixes them all at once instead of one per attempt. Changes
are made one at a time (a lock around read, check, replace), so that two imports
cannot lose one another's zones.

Zones are the node's configuration, not sensor data: every partner watches the same
ones, and an admin of any partner changes them for all (each change is audited with
its partner).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from skyfence.errors import SkyfenceError
from skyfence.node.service import NodeService
from skyfence.server import models as m
from skyfence.server.audit import audit
from skyfence.server.auth import AUTH_RESPONSES, Admin, Viewer
from skyfence.server.errors import ApiError, error_body
from skyfence.zones.geojson import to_geojson
from skyfence.zones.io import parse_zones

EXAMPLE_ZONE_FILE = {"type": "FeatureCollection", "features": [{
    "type": "Feature", "geometry": {"type": "Point", "coordinates": [8.55, 47.46]},
    "properties": {"id": "EXAMPLE-1", "name": "example", "restriction": "prohibited",
                   "radius_m": 300, "upper_limit": 120, "upper_reference": "AGL"}}]}
ZONE_FILE_BODY: dict[str, Any] = {
    "required": True,
    "description": "a zone file: skyfence GeoJSON, EUROCAE ED-269 or ED-318 (JSON)",
    "content": {media: {"schema": {"type": "object"}, "example": EXAMPLE_ZONE_FILE}
                for media in ("application/json", "application/geo+json")},
}


def router(service: NodeService) -> APIRouter:
    r = APIRouter(tags=["zones"], responses=AUTH_RESPONSES)
    lock = asyncio.Lock()

    @r.get("/api/v1/zones", response_model=m.FeatureCollection,
           summary="The zones, as skyfence GeoJSON (one feature per volume)")
    def zones(call: Viewer) -> dict[str, Any]:
        doc = to_geojson(call.view.engine.zones)
        call.gave(zones=len(call.view.engine.zones))
        return doc

    @r.post("/api/v1/zones", response_model=m.ZoneImport, openapi_extra={
                "requestBody": ZONE_FILE_BODY},
            summary="Import a zone file: all of it, or nothing when it has any problem "
                    "(admin)",
            responses={422: {"model": m.ZoneImportRefused | m.Error,
                             "description": "problems: nothing changed"}})
    async def import_zones(
        request: Request,
        call: Admin,
        format: Annotated[Literal["auto", "geojson", "ed269", "ed318"], Query(
            description="the file's format; auto: detect it")] = "auto",
        replace: Annotated[bool, Query(
            description="replace every zone (else add to them)")] = False,
    ) -> Any:
        doc, problems = _read_json(await request.body())
        async with lock:
            existing = service.engine.zones
            new: tuple[Any, ...] = ()
            if not problems:
                load = parse_zones(doc, file=None, format=None if format == "auto" else format)
                new = load.zones
                problems = [str(p) for p in load.problems]
                if not replace:
                    have = {z.id for z in existing}
                    problems += [f"zone {z.id!r}: a zone with this identifier exists already — "
                                 "delete it first, or import with replace=true"
                                 for z in new if z.id in have]
            if not problems:
                try:
                    await service.set_zones(new if replace else (*existing, *new), source="api")
                except SkyfenceError as err:
                    problems = [str(err)]
            if problems:
                n = len(problems)
                return JSONResponse({
                    "imported": 0, "zones": len(existing), "problems": problems,
                    **error_body(f"the zone file has {n} problem{'s' if n > 1 else ''}; "
                                 "nothing was imported",
                                 "correct every problem listed, then send the whole file "
                                 "again")}, status_code=422)
            await audit(service, request, action="zones.import",
                        detail={"imported": [z.id for z in new], "replace": replace},
                        call=call)
        return {"imported": len(new), "zones": len(service.engine.zones), "problems": []}

    @r.delete("/api/v1/zones/{zone_id:path}", status_code=204, response_class=Response,
              summary="Delete one zone (its alerts are cleared; admin)",
              responses={404: {"model": m.Error}})
    async def delete_zone(zone_id: str, request: Request, call: Admin) -> Response:
        async with lock:
            existing = service.engine.zones
            if not any(z.id == zone_id for z in existing):
                raise ApiError(404, f"no zone {zone_id!r}",
                               "list the zones and their ids with GET /api/v1/zones")
            await service.set_zones([z for z in existing if z.id != zone_id], source="api")
            await audit(service, request, action="zones.delete",
                        detail={"zone": zone_id}, call=call)
        return Response(status_code=204)

    return r


def _read_json(body: bytes) -> tuple[Any, list[str]]:
    """The parsed body, or the problem that stops it being read."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return None, [f"the body is not UTF-8 text (byte {err.start}) — send the zone file "
                      "as UTF-8 JSON"]
    if not text.strip():
        return None, ["the body is empty — send the zone file as the request body"]
    try:
        return json.loads(text, parse_constant=_no_constant), []
    except json.JSONDecodeError as err:
        return None, [f"not valid JSON at line {err.lineno}, column {err.colno}: {err.msg} — "
                      "correct the JSON there (a missing comma, quote or bracket)"]
    except (ValueError, RecursionError) as err:
        return None, [f"not valid JSON: {err} — zone files are plain JSON, with finite "
                      "numbers"]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
