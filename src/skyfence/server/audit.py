"""The audit log: every API call that changes something, with who and from where."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from skyfence.node.service import NodeService


async def audit(service: NodeService, request: Request, *, action: str,
                detail: dict[str, Any], who: str | None = None) -> None:
    """Write one entry to the store's audit log (nothing when the node has no store).
    ``who``: the name the caller gave, else its address (the API has no login yet);
    ``detail`` gets the client's address."""
    store = service.store
    if store is None:
        return
    client = request.client.host if request.client is not None else ""
    entry = {**detail, "client": client}
    await run_in_threadpool(store.audit, service.clock(), who or client, action, entry)
