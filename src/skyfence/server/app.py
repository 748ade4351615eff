"""The node's HTTP and WebSocket API (``docs/API.md``), and the web map's files.

``create_app(service)`` gives the ASGI app: the routes read the service, the stream
follows its hub, zone changes and acknowledgements go through it. Nothing is fetched
from the internet: the API docs page uses the Swagger UI that ships with the
``fastapi-offline`` package (left out when that is not installed; the OpenAPI document
is always served).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI, WebSocket
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from skyfence.node.service import NodeService
from skyfence.server import audit, errors, history, routes, zones
from skyfence.server import models as m
from skyfence.server.audit import AuditMiddleware
from skyfence.server.config import ServerConfig
from skyfence.server.limits import LimitsMiddleware, TokenBuckets
from skyfence.server.stream import stream

API = "/api/v1"
OPENAPI_URL = f"{API}/openapi.json"
DOCS_URL = f"{API}/docs"

DESCRIPTION = """\
The shared airspace picture of one skyfence node: tracks, groups (swarms), zones,
defended sites, alerts, sensors, and the stored history; a WebSocket stream of
picture updates at `/api/v1/stream?last_seq=N` (see docs/API.md).

A node with API tokens asks for one as `Authorization: Bearer sf_…` (the stream also
takes `?token=`): 401 without a valid one, 403 when its role may not do what is asked.
Each caller receives its own partner's picture, computed only from the sensors
released to that partner; every call is audited (`/api/v1/audit`). A node without
tokens asks for none.

Times are Unix seconds (UTC); positions WGS84 degrees, heights metres above the
ellipsoid. Every error is `{"error": "what is wrong", "fix": "what to do"}`. Request
bodies are limited in size, and each client in requests per second (429 with
`Retry-After`).
"""


def create_app(service: NodeService, *, web_dir: Path | None = None,
               config: ServerConfig | None = None) -> FastAPI:
    """The API over ``service``; the map's files from ``web_dir`` at ``/``."""
    cfg = config or ServerConfig()
    app = FastAPI(
        title="skyfence node API", version="1", description=DESCRIPTION,
        openapi_url=OPENAPI_URL, docs_url=None, redoc_url=None,
        responses={
            400: {"model": m.Error, "description": "the body cannot be read"},
            413: {"model": m.Error, "description": "request body too large"},
            422: {"model": m.Error, "description": "a parameter or the body is not valid"},
            429: {"model": m.Error, "description": "too many requests: see Retry-After",
                  "headers": {"Retry-After": {"schema": {"type": "integer"},
                                              "description": "seconds to wait"}}},
        },
    )
    app.state.service = service
    errors.install(app)
    # Inside the limits: a call refused for its rate or size has no caller to audit.
    app.add_middleware(AuditMiddleware, service=service)
    app.add_middleware(LimitsMiddleware, max_body_bytes=cfg.max_body_bytes,
                       buckets=TokenBuckets(rate_per_s=cfg.rate_per_s, burst=cfg.burst))
    app.include_router(routes.router(service))
    app.include_router(history.router(service))
    app.include_router(zones.router(service))
    app.include_router(audit.router(service))

    @app.websocket(f"{API}/stream")
    async def picture_stream(websocket: WebSocket) -> None:
        await stream(websocket, service)

    if cfg.docs:
        _docs(app)
    if web_dir is not None:
        # Last: the routes above take precedence over the map's files.
        app.mount("/", StaticFiles(directory=web_dir, html=True), name="web")
    return app


def _docs(app: FastAPI) -> None:
    try:
        static = resources.files("fastapi_offline") / "static"
    except ModuleNotFoundError:
        return  # no local Swagger UI: the OpenAPI document alone
    assets = f"{DOCS_URL}/assets"
    app.mount(assets, StaticFiles(directory=str(static)), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL, title=f"{app.title} — docs",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            # No badge from the online validator: nothing leaves the node.
            swagger_ui_parameters={"validatorUrl": None})
