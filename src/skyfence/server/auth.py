"""Who is calling: the request's bearer token, checked against the node's tokens
(``skyfence.node.access``), as the FastAPI dependency that gives a route its ``Call``:
the caller, the view its partner receives, and what the route returned (for the audit
log, ``skyfence.server.audit``).

No token or an unknown one is 401 with ``WWW-Authenticate: Bearer``; a role that is
not enough is 403. A node without tokens is open: every caller is the home partner's
admin. Tokens come in the ``Authorization`` header only (a query string ends up in
access logs); the WebSocket also takes a ``token`` query parameter, since a browser
cannot set headers on one. A sensor token does one thing: push its feed to the one
source it is bound to (``SensorCall``, ``POST /api/v1/ingest/{source}``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from skyfence.node.access import Caller, Role
from skyfence.node.service import NodeService, View
from skyfence.server import models as m
from skyfence.server.errors import ApiError

#: Where a request's ``Call`` is kept in the ASGI scope, for the audit middleware.
SCOPE_KEY = "skyfence.call"

_bearer = HTTPBearer(auto_error=False, scheme_name="token", description=(
    "a token of the node (`skyfence token new`), as `Authorization: Bearer sf_…`; "
    "a node without tokens asks for none"))

#: The answers a route behind a token may give besides its own (for the OpenAPI document).
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": m.Error, "description": "no token, or one the node does not know",
          "headers": {"WWW-Authenticate": {"schema": {"type": "string"},
                                           "description": "Bearer"}}},
    403: {"model": m.Error, "description": "the token's role may not do this"},
}


@dataclass(slots=True)
class Call:
    """One authenticated request: who, the view they receive, and how many rows of
    what the route gave them (``gave``)."""

    caller: Caller
    view: View
    #: The node has no tokens: the caller is the home admin because nobody is asked.
    open: bool
    returned: dict[str, int] = field(default_factory=dict)

    @property
    def partner(self) -> str:
        return self.caller.partner

    def gave(self, **rows: int) -> None:
        """Record how many rows of each kind the caller received."""
        self.returned.update(rows)

    def who(self) -> str:
        """The token's name, else its partner and role (for the audit log)."""
        return self.caller.name or f"{self.caller.partner} {self.caller.role.name.lower()}"

    def detail(self) -> dict[str, Any]:
        """The caller, as audit entries carry it."""
        c = self.caller
        return {"partner": c.partner, "role": c.role.name.lower(), "token": c.name}


def service_of(conn: HTTPConnection) -> NodeService:
    service: NodeService = conn.app.state.service
    return service


def identify(service: NodeService, token: str | None) -> Caller | None:
    """The caller a token belongs to (anyone is the home admin on an open node); None
    for no token, an unknown one, or one of a partner the node no longer has."""
    caller = service.access.check(token)
    if caller is None or caller.partner not in service.view_of:
        return None
    return caller


def refusal(service: NodeService, caller: Caller | None, needed: Role, *,
            home_only: bool = False, presented: bool = True) -> ApiError | None:
    """Why ``caller`` may not do what ``needed`` may (None: it may)."""
    if caller is None:
        if presented:
            return ApiError(401, "the token is not one this node knows",
                            "give a token of this node as 'Authorization: Bearer sf_…' "
                            "(its administrator makes them with 'skyfence token new')",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return ApiError(401, "this node asks for a token",
                        "send 'Authorization: Bearer sf_…' with a token of this node "
                        "(its administrator makes them with 'skyfence token new')",
                        headers={"WWW-Authenticate": "Bearer"})
    role = caller.role.name.lower()
    if not caller.role.allows(needed):
        if caller.role == Role.SENSOR:
            return ApiError(403, "a sensor token may only send detections",
                            "read the API with a viewer, operator or admin token")
        return ApiError(403, f"this needs the {needed.name.lower()} role; the token is "
                        f"{role}", f"use a token with the {needed.name.lower()} role "
                        "(ask the node's administrator)")
    if home_only and caller.partner != service.home:
        return ApiError(403, f"this is node-wide state: only the node's own partner "
                        f"({service.home!r}) may read it",
                        f"use an admin token of {service.home!r}; a partner's own state is "
                        "under /api/v1")
    return None


def require(needed: Role, *, home_only: bool = False
            ) -> Callable[..., Awaitable[Call]]:
    """A dependency: the request's ``Call`` when its token has ``needed`` (and, with
    ``home_only``, is the home partner's); else 401 or 403."""

    async def call(request: Request, credentials: Annotated[
            HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Call:
        service = service_of(request)
        token = None if credentials is None else credentials.credentials
        caller = identify(service, token)
        if caller is not None:
            # Kept before the role check: a refused call with a known token is audited.
            request.scope[SCOPE_KEY] = Call(caller, service.view(caller.partner),
                                            service.access.open)
        refused = refusal(service, caller, needed, home_only=home_only,
                          presented=_has_authorization(request.headers))
        if refused is not None:
            raise refused
        result: Call = request.scope[SCOPE_KEY]
        return result

    return call


async def optional_caller(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Call | None:
    """The request's ``Call`` if it has a valid token of a role that reads (not a
    sensor's); None otherwise."""
    service = service_of(request)
    caller = identify(service, None if credentials is None else credentials.credentials)
    if caller is None or not caller.role.allows(Role.VIEWER):
        return None
    call = Call(caller, service.view(caller.partner), service.access.open)
    request.scope[SCOPE_KEY] = call
    return call


async def sensor_call(request: Request, source: str, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Call:
    """The ``Call`` of a sensor pushing to ``source``: a sensor token bound to that
    source (on an open node, anyone). Any other caller is refused (401 or 403), and,
    when the source exists, the refusal counts against it and is audited
    (``NodeService.refuse_connection``)."""
    service = service_of(request)
    caller = identify(service, None if credentials is None else credentials.credentials)
    refused: ApiError | None = None
    if caller is None:
        refused = refusal(service, caller, Role.SENSOR,
                          presented=_has_authorization(request.headers))
    else:
        request.scope[SCOPE_KEY] = Call(caller, service.view(caller.partner),
                                        service.access.open)
        if service.access.open:
            pass
        elif caller.role != Role.SENSOR:
            refused = ApiError(403, "only a sensor token pushes detections",
                               "give the sensor a token with role = \"sensor\" and "
                               f"source = \"{source}\"")
        elif caller.source != source:
            refused = ApiError(403, "this sensor token may push only to source "
                               f"{caller.source or '(none)'!r}",
                               f"push to /api/v1/ingest/{caller.source}, or give the sensor "
                               f"a token bound to {source!r}")
    if refused is not None:
        if source in service.sources:
            service.refuse_connection(source, f"API push refused ({refused.status_code}): "
                                      f"{refused.detail}")
        raise refused
    result: Call = request.scope[SCOPE_KEY]
    return result


def _has_authorization(headers: Mapping[str, str]) -> bool:
    return bool(headers.get("authorization", "").strip())


Viewer = Annotated[Call, Depends(require(Role.VIEWER))]
Operator = Annotated[Call, Depends(require(Role.OPERATOR))]
Admin = Annotated[Call, Depends(require(Role.ADMIN))]
#: An admin of the home partner: node-wide state (metrics, every partner's audit).
NodeAdmin = Annotated[Call, Depends(require(Role.ADMIN, home_only=True))]
OptionalCall = Annotated[Call | None, Depends(optional_caller)]
#: A sensor pushing to the ``{source}`` of the path with a token bound to it.
SensorCall = Annotated[Call, Depends(sensor_call)]
