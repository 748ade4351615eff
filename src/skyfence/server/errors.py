"""Every error the API answers is ``{"error": "what is wrong", "fix": "what to do"}``:
our own, FastAPI's request validation (422) and Starlette's 404/405 alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

_FIX_BY_STATUS = {
    400: "send the body as UTF-8 JSON, as /api/v1/openapi.json describes it",
    404: "see /api/v1/openapi.json (or /api/v1/docs) for the routes",
    405: "see /api/v1/openapi.json for the methods each route takes",
}


class ApiError(HTTPException):
    """An error with its fix; raise it from a route."""

    def __init__(self, status_code: int, error: str, fix: str, *,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status_code, detail=error, headers=dict(headers or {}))
        self.fix = fix


def error_body(error: str, fix: str) -> dict[str, str]:
    return {"error": error, "fix": fix}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):
        raise exc
    fix = getattr(exc, "fix", None) or _FIX_BY_STATUS.get(exc.status_code, "check the request")
    error = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and not isinstance(exc, ApiError):
        error = f"no such path: {request.url.path}"
    elif exc.status_code == 405 and not isinstance(exc, ApiError):
        error = f"{request.method} is not allowed on {request.url.path}"
    return JSONResponse(error_body(error, fix), status_code=exc.status_code,
                        headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    problems = [_describe(e) for e in exc.errors()]
    return JSONResponse(error_body(
        "; ".join(problems) or "the request is not valid",
        "correct the parameters named; /api/v1/openapi.json gives each one's type"),
        status_code=422)


def _describe(e: Mapping[str, Any]) -> str:
    loc: Sequence[Any] = e.get("loc", ())
    where = ".".join(str(x) for x in loc[1:]) if len(loc) > 1 else ".".join(map(str, loc))
    kind = {"query": "query parameter", "path": "path parameter", "body": "body",
            "header": "header"}.get(str(loc[0]) if loc else "", "")
    place = f"{kind} {where!r}" if kind and where else (kind or where or "request")
    return f"{place}: {e.get('msg', 'invalid')}"


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
