"""The audit log: who received what, and who changed what.

Every authenticated call on a node with tokens leaves one entry (action ``api``): the
route, the caller's partner, role and token name, the status answered, and how many
rows of what it returned (``returned``, e.g. ``{"tracks": 12}``). The stream leaves
one at connect and one at close, with the messages sent; never one per message. A call
that changes something (an acknowledgement, a zone import or deletion) also leaves its
own entry. A node without tokens logs only the changes: its callers are nobody in
particular.

Entries go to the home view's store (``NodeService.store``), written in the thread
pool after the response has gone: ``SqliteStore.audit`` only queues, but waits when the
writer's queue is full, and the event loop must not.

``GET /api/v1/audit`` (admin) reads the log back: the home partner's admin reads all of
it, another partner's admin the entries of its own partner's calls.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skyfence.errors import SkyfenceError
from skyfence.node.service import NodeService
from skyfence.server import models as m
from skyfence.server.auth import AUTH_RESPONSES, SCOPE_KEY, Admin, Call
from skyfence.server.history import NO_STORE
from skyfence.server.params import OptionalTime

log = logging.getLogger("skyfence.server")


async def write(service: NodeService, t: float, who: str, action: str,
                detail: dict[str, Any]) -> None:
    """One entry to the home store's audit log (nothing without a store). A store
    that refuses it is logged: the caller has had its answer already."""
    store = service.store
    if store is None:
        return
    try:
        await run_in_threadpool(store.audit, t, who, action, detail)
    except SkyfenceError as err:
        log.error("audit entry %s by %s not written: %s", action, who, err)


async def audit(service: NodeService, conn: HTTPConnection, *, action: str,
                detail: dict[str, Any], who: str | None = None,
                call: Call | None = None) -> None:
    """Log a change. ``who``: the name the caller gave, else the token's name, else the
    client's address; ``detail`` gets the client's address and, on a node with tokens,
    the caller's partner, role and token name."""
    client = _client(conn)
    entry = {**detail, "client": client}
    if call is not None and not call.open:
        entry.update(call.detail())
    name = who or (call.who() if call is not None and not call.open else None)
    await write(service, service.clock(), name or client, action, entry)


def call_entry(call: Call, conn: HTTPConnection, *, route: str, status: int | None = None,
               **extra: Any) -> dict[str, Any]:
    """The detail of an ``api`` or ``stream`` entry."""
    entry: dict[str, Any] = {"route": route, **call.detail()}
    if status is not None:
        entry["status"] = status
    params = conn.path_params
    if params:
        entry["params"] = dict(params)
    entry.update(extra)
    entry["returned"] = dict(call.returned)
    entry["client"] = _client(conn)
    return entry


class AuditMiddleware:
    """Pure ASGI: after an HTTP call whose route identified the caller (a ``Call`` in
    the scope), log it with the status it was answered."""

    def __init__(self, app: ASGIApp, *, service: NodeService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.service.access.open:
            await self.app(scope, receive, send)
            return
        status = 500  # unless the app answers

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except Exception:
            await self._log(scope, status)
            raise
        await self._log(scope, status)

    async def _log(self, scope: Scope, status: int) -> None:
        call = scope.get(SCOPE_KEY)
        if not isinstance(call, Call):
            return  # refused before the caller was known, or not behind a token
        template = getattr(scope.get("route"), "path_format", None) or scope["path"]
        entry = call_entry(call, HTTPConnection(scope),
                           route=f"{scope['method']} {template}", status=status)
        await write(self.service, self.service.clock(), call.who(), "api", entry)

def router(service: NodeService) -> APIRouter:
    r = APIRouter(tags=["node"], responses={**AUTH_RESPONSES, 503: {
        "model": m.Error, "description": "no store"}})

    @r.get("/api/v1/audit", response_model=m.AuditLog,
           summary="The audit log, newest first: who received what, who changed what "
                   "(admin; the home partner's admin reads every partner's entries)")
    async def audit_log(
        call: Admin,
        since: OptionalTime = None,
        limit: Annotated[int, Query(ge=1, le=10_000, description="at most this many")] = 1000,
    ) -> dict[str, Any]:
        store = service.store
        if store is None:
            raise NO_STORE
        if call.partner == service.home:
            rows = await run_in_threadpool(lambda: store.audit_log(since, limit))
        else:
            rows = await run_in_threadpool(_entries_of, store, call.partner, since, limit)
        call.gave(entries=len(rows))
        return {"entries": rows}

    return r


def _entries_of(store: Any, partner: str, since_t: float | None, limit: int
                ) -> list[dict[str, Any]]:
    """The newest ``limit`` entries of ``partner``'s calls: read in growing pages, since
    the store filters by time only."""
    page = limit
    while True:
        rows = store.audit_log(since_t, page)
        mine = [e for e in rows if e["detail"].get("partner") == partner]
        if len(mine) >= limit or len(rows) < page:
            return mine[:limit]
        page *= 4


def _client(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client is not None else ""
