"""Request limits: a body size cap and a per-client token bucket on the API.

Pure ASGI, in front of the app: a request over the rate is answered 429 with
``Retry-After`` before any route runs; a body over the cap is refused 413 from its
``Content-Length``, or, when it streams without one, as soon as the cap is passed.
The map's static files are not rate-limited (a page load fetches many at once).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skyfence.server.errors import ApiError, error_body

#: Paths the rate applies to; everything else is the map's static files.
RATE_LIMITED_PREFIXES = ("/api/", "/healthz", "/metrics")


class TokenBuckets:
    """One bucket per client key: ``burst`` requests at once, refilled at
    ``rate_per_s``. ``take`` answers 0 when the request may go, else the seconds until
    it could."""

    def __init__(self, *, rate_per_s: float, burst: float,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate_per_s)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_clients:
                self._forget_idle(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate_per_s

    def _forget_idle(self, now: float) -> None:
        # A bucket that has refilled completely is the same as no bucket.
        full_after_s = self.burst / self.rate_per_s
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after_s}


class BodyTooLarge(ApiError):
    def __init__(self, max_body_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than {max_body_bytes} bytes",
                         "send a smaller body (split a zone file into several imports)")


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, buckets: TokenBuckets) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(RATE_LIMITED_PREFIXES):
            client = scope.get("client")
            wait_s = self.buckets.take(client[0] if client else "")
            if wait_s > 0.0:
                rate = self.buckets.rate_per_s
                await JSONResponse(
                    error_body("too many requests from this client",
                               f"send at most {rate:g} requests a second; retry after "
                               "the seconds in Retry-After"),
                    status_code=429,
                    headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
                )(scope, receive, send)
                return
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            err = BodyTooLarge(self.max_body_bytes)
            await JSONResponse(error_body(str(err.detail), err.fix),
                               status_code=413)(scope, receive, send)
            return
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        await self.app(scope, capped, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None
