"""Alert delivery to webhooks: HTTP POST from one background thread.

The alert engine is synchronous, so :meth:`WebhookSink.send` only serialises the
event and puts it on a bounded queue; a daemon thread posts the events in order,
one at a time, retrying transient failures with exponential backoff and full
jitter. A slow or dead receiver can delay alerts but never blocks or crashes the
caller: when the queue is full the oldest event is dropped and counted.

Every POST is signed when a secret is configured::

    X-Skyfence-Timestamp: 1767225600
    X-Skyfence-Signature: sha256=<hex HMAC-SHA256(secret, b"1767225600." + body)>

Receivers check it with :func:`verify_signature`. The timestamp is refreshed on
every attempt (the delivery id is not), so a retry after a long backoff is not
refused as stale.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import math
import random
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Final, Literal
from urllib.parse import SplitResult, urlsplit

from skyfence.errors import InputError

__all__ = ["WebhookConfig", "WebhookSink", "WebhookStats", "verify_signature"]

logger = logging.getLogger("skyfence.webhook")

USER_AGENT: Final = "skyfence-webhook/1"

# Headers the sink sets itself (or http.client does); an extra header with one of
# these names would silently fight with them, so configuration refuses it.
_RESERVED_HEADERS: Final = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "x-skyfence-timestamp",
        "x-skyfence-delivery",
        "x-skyfence-signature",
    }
)
_RETRY_STATUSES: Final = frozenset({408, 429})
# Enough of an error response to say why in the log, not enough to flood it.
_ERROR_BODY_BYTES: Final = 300
# Under a flood of drops one warning per interval, so that logging cannot become
# the thing that blocks send().
_DROP_LOG_INTERVAL_S: Final = 10.0
# close() gives the thread this long to leave a backoff wait after the drain deadline.
_JOIN_GRACE_S: Final = 0.2
# Longer timestamps are not unix seconds; refusing them also keeps int() cheap.
_MAX_TIMESTAMP_DIGITS: Final = 12

_URL_FIX: Final = "give an absolute http:// or https:// URL, e.g. https://alerts.example.org/hook"

Outcome = Literal["delivered", "failed", "dropped"]


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig:
    """Where and how to post alert events.

    ``url`` is an absolute http or https URL (ASCII, no user:password part).
    ``secret`` keys the HMAC-SHA256 signature; None sends unsigned requests.
    ``timeout_s`` bounds each connect and each read of one attempt (seconds).
    ``max_attempts`` counts the first try. ``backoff_s`` is the cap of the first
    retry delay, doubled after every retry up to ``backoff_max_s`` (seconds); the
    actual delay is drawn uniformly below the cap, or taken from ``Retry-After``.
    ``queue_size`` is how many events may wait; beyond it the oldest is dropped.
    ``headers`` are extra request headers (e.g. ``Authorization``).

    ``secret`` and ``headers`` are left out of ``repr`` because both may hold
    credentials.
    """

    url: str
    secret: str | None = field(default=None, repr=False)
    timeout_s: float = 5.0
    max_attempts: int = 6
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    queue_size: int = 10_000
    # hash=False: a mapping is not hashable, and equal configs still hash equal.
    headers: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, hash=False
    )

    def __post_init__(self) -> None:
        _split_url(self.url)
        if self.secret is not None and (not isinstance(self.secret, str) or not self.secret):
            raise InputError(
                "the secret is empty or not a string",
                field="secret",
                fix="give a random string, or None to send unsigned requests",
            )
        _check_number("timeout_s", self.timeout_s, positive=True)
        _check_number("backoff_s", self.backoff_s, positive=False)
        _check_number("backoff_max_s", self.backoff_max_s, positive=False)
        _check_count("max_attempts", self.max_attempts)
        _check_count("queue_size", self.queue_size)
        headers = dict(self.headers)
        for name, value in headers.items():
            _check_header(name, value)
        # A private read-only copy: the caller's dict may change after construction.
        object.__setattr__(self, "headers", MappingProxyType(headers))


def _split_url(url: object) -> SplitResult:
    if not isinstance(url, str):
        raise InputError(f"{url!r} is not a URL string", field="url", fix=_URL_FIX)
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        raise InputError(
            f"{url!r} contains spaces, control or non-ASCII characters",
            field="url",
            fix="percent-encode the path and use the punycode form of the host name",
        )
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise InputError(f"{url!r} is not a valid URL ({exc})", field="url", fix=_URL_FIX) from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise InputError(
            f"{url!r} does not start with http:// or https://", field="url", fix=_URL_FIX
        )
    if not parts.hostname:
        raise InputError(f"{url!r} names no host", field="url", fix=_URL_FIX)
    if parts.username is not None or parts.password is not None:
        # http.client would put the credentials into the Host header, and every log
        # line that names the URL would leak them.
        raise InputError(
            f"{url!r} carries a user name or password",
            field="url",
            fix="remove it from the URL and pass headers={'Authorization': ...}",
        )
    return parts


def _check_number(name: str, value: object, *, positive: bool) -> None:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > 0 if positive else value >= 0)
    )
    if not ok:
        kind = "a finite number > 0" if positive else "a finite number ≥ 0"
        raise InputError(f"{value!r} is not {kind}", field=name, fix=f"give {name} in seconds")


def _check_count(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{value!r} is not a whole number ≥ 1", field=name, fix=f"set {name} ≥ 1")


def _check_header(name: object, value: object) -> None:
    if not isinstance(name, str) or not isinstance(value, str):
        raise InputError(
            f"header {name!r}: {value!r} is not a pair of strings",
            field="headers",
            fix="give header names and values as str",
        )
    if (
        not name
        or not name.isascii()
        or any(not c.isprintable() or c in ' :"(),/;<=>?@[\\]{}' for c in name)
    ):
        raise InputError(
            f"{name!r} is not a valid header name",
            field="headers",
            fix="use letters, digits and '-' only",
        )
    if any(c in value for c in "\r\n\0"):
        # A line break would let a value inject further headers.
        raise InputError(
            f"the value of header {name!r} contains a line break or NUL",
            field="headers",
            fix="remove CR, LF and NUL from the value",
        )
    if name.lower() in _RESERVED_HEADERS:
        raise InputError(
            f"header {name!r} is set by skyfence", field="headers", fix="remove it from headers"
        )


# --------------------------------------------------------------------------- signatures


def _signature(secret: str, body: bytes, timestamp: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    header: str,
    *,
    now_s: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """Whether ``header`` (``X-Skyfence-Signature``) signs ``body`` at ``timestamp``.

    ``body`` is the raw request body as received, ``timestamp`` the
    ``X-Skyfence-Timestamp`` header (unix seconds). With ``now_s`` (unix seconds,
    e.g. ``time.time()``) a timestamp more than ``tolerance_s`` seconds away from
    it, in either direction, is refused so that a captured request cannot be
    replayed later. The signatures are compared in constant time. Malformed
    header values give False, never an exception; an empty secret raises
    :class:`~skyfence.errors.InputError`, as it would accept forgeries.
    """
    if not isinstance(secret, str) or not secret:
        raise InputError(
            "the secret is empty",
            field="secret",
            fix="give the secret the sender was configured with",
        )
    _check_number("tolerance_s", tolerance_s, positive=False)
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
        return False
    if now_s is not None and abs(now_s - int(timestamp)) > tolerance_s:
        return False
    given = header.strip()
    if not given.isascii():
        return False
    return hmac.compare_digest(
        _signature(secret, body, timestamp).encode("ascii"), given.encode("ascii")
    )


# --------------------------------------------------------------------------- sink


@dataclass(frozen=True, slots=True)
class WebhookStats:
    """Event counts of one sink since it was made.

    Every accepted or refused ``send`` ends up in exactly one of them, so
    ``delivered + failed + dropped + queued`` is the number of ``send`` calls that
    did not raise. ``queued`` counts events waiting or being posted now.
    ``retries`` counts attempts after the first, over all events.
    """

    delivered: int
    failed: int
    dropped: int
    retries: int
    queued: int


@dataclass(frozen=True, slots=True)
class _Pending:
    body: bytes
    delivery_id: str


@dataclass(frozen=True, slots=True)
class _Attempt:
    ok: bool
    retry: bool
    error: str
    retry_after_s: float | None = None


def _encode(event: Mapping[str, Any]) -> bytes:
    """Compact, key-sorted UTF-8 JSON; NaN and infinities are refused (not JSON)."""
    try:
        text = json.dumps(
            event if isinstance(event, dict) else dict(event),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_json_default,
        )
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"the event cannot be sent as JSON: {exc}",
            field="event",
            fix="pass a mapping of str, int, float (finite), bool, None, lists and mappings",
        ) from exc


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON")


def _full_jitter_s(retry: int, backoff_s: float, backoff_max_s: float, rng: random.Random) -> float:
    """Delay before retry number ``retry`` (1 for the first), seconds.

    Uniform on [0, min(backoff_max_s, backoff_s · 2^(retry − 1))]: the jitter
    spreads out senders that failed together so they do not retry in lockstep.
    """
    cap_s = min(backoff_s, backoff_max_s)
    for _ in range(retry - 1):
        if cap_s >= backoff_max_s:
            break
        cap_s = min(cap_s * 2.0, backoff_max_s)
    return rng.uniform(0.0, cap_s)


def _retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` in seconds; None when absent or an HTTP date (use our backoff)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class WebhookSink:
    """Posts alert events to one webhook from a background daemon thread.

    ``send`` never blocks on the network; events are posted in the order sent.
    ``seed`` makes the backoff jitter reproducible. Call :meth:`close` (or use the
    sink as a context manager) to drain the queue and stop the thread.
    """

    def __init__(self, config: WebhookConfig, *, seed: int = 0) -> None:
        if not isinstance(config, WebhookConfig):
            raise InputError(
                f"{config!r} is not a WebhookConfig",
                field="config",
                fix="build one with WebhookConfig(url=...)",
            )
        self._config = config
        parts = _split_url(config.url)
        self._https = parts.scheme.lower() == "https"
        self._host: str = parts.hostname or ""
        self._port = parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Only scheme, host and port go into logs: webhook paths often embed a token.
        self._origin = f"{parts.scheme.lower()}://{parts.netloc}"
        self._ssl_context = ssl.create_default_context() if self._https else None
        self._rng = random.Random(seed)  # used by the worker thread only

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[_Pending] = deque()
        self._in_flight = False
        self._closed = False
        self._stop = threading.Event()
        self._delivered = 0
        self._failed = 0
        self._dropped = 0
        self._retries = 0
        self._drops_unlogged = 0
        self._drop_logged_at_s = -math.inf

        self._thread = threading.Thread(target=self._run, name="skyfence-webhook", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------- caller side

    def send(self, event: Mapping[str, Any]) -> bool:
        """Queue ``event`` for posting; False when an event was dropped to make room.

        Never blocks. Once the queue holds ``queue_size`` events the oldest one is
        dropped; after :meth:`close` the event itself is dropped. Raises
        :class:`~skyfence.errors.InputError` when the event is not JSON-serialisable,
        since that is a bug of the caller rather than a delivery problem.
        """
        item = _Pending(_encode(event), uuid.uuid4().hex)
        log_drops = 0
        with self._lock:
            dropped = self._closed or len(self._queue) >= self._config.queue_size
            if not self._closed:
                if dropped:
                    self._queue.popleft()
                self._queue.append(item)
                self._changed.notify()
            if dropped:
                self._dropped += 1
                self._drops_unlogged += 1
                now_s = time.monotonic()
                if now_s - self._drop_logged_at_s >= _DROP_LOG_INTERVAL_S:
                    self._drop_logged_at_s = now_s
                    log_drops, self._drops_unlogged = self._drops_unlogged, 0
            closed, total = self._closed, self._dropped
        if log_drops:
            size = self._config.queue_size
            why = "the sink is closed" if closed else f"the queue is full ({size} events)"
            logger.warning(
                "webhook %s: dropped %d event(s) because %s; %d dropped so far",
                self._origin,
                log_drops,
                why,
                total,
            )
        return not dropped

    @property
    def stats(self) -> WebhookStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return WebhookStats(
                delivered=self._delivered,
                failed=self._failed,
                dropped=self._dropped,
                retries=self._retries,
                queued=len(self._queue) + self._in_flight,
            )

    def close(self, timeout_s: float = 5.0) -> None:
        """Wait up to ``timeout_s`` seconds for the queue to drain, then stop.

        Events still queued then, and one abandoned in a backoff wait, count as
        dropped. Returns within about ``timeout_s`` + 0.2 s; if the thread is still
        inside a POST by then it finishes that attempt on its own and exits.
        Calling it again is harmless.
        """
        _check_number("timeout_s", timeout_s, positive=False)
        deadline_s = time.monotonic() + timeout_s
        with self._changed:
            self._closed = True
            while self._queue or self._in_flight:
                remaining_s = deadline_s - time.monotonic()
                if remaining_s <= 0:
                    break
                self._changed.wait(remaining_s)
            self._stop.set()
            self._changed.notify_all()
            abandoned = len(self._queue)
            self._queue.clear()
            self._dropped += abandoned
            # Drops the rate limit kept quiet would otherwise never be reported.
            unlogged, self._drops_unlogged = self._drops_unlogged, 0
        if unlogged:
            logger.warning(
                "webhook %s: %d more event(s) were dropped since the last warning",
                self._origin,
                unlogged,
            )
        if abandoned:
            logger.warning(
                "webhook %s: closed with %d event(s) undelivered; dropped", self._origin, abandoned
            )
        self._thread.join(max(deadline_s - time.monotonic(), _JOIN_GRACE_S))

    def __enter__(self) -> WebhookSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- worker side

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._stop.is_set():
                    self._changed.wait()
                if self._stop.is_set():
                    return
                item = self._queue.popleft()
                self._in_flight = True
            outcome: Outcome
            try:
                outcome = self._deliver(item)
            except Exception:  # a bug here must not kill the only delivery thread
                logger.exception(
                    "webhook %s: delivery %s failed unexpectedly", self._origin, item.delivery_id
                )
                outcome = "failed"
            with self._changed:
                self._in_flight = False
                if outcome == "delivered":
                    self._delivered += 1
                elif outcome == "failed":
                    self._failed += 1
                else:
                    self._dropped += 1
                self._changed.notify_all()

    def _deliver(self, item: _Pending) -> Outcome:
        config = self._config
        attempt = _Attempt(ok=False, retry=False, error="not attempted")
        for number in range(1, config.max_attempts + 1):
            if number > 1:
                with self._lock:
                    self._retries += 1
            attempt = self._post(item)
            if attempt.ok:
                return "delivered"
            if not attempt.retry:
                logger.error(
                    "webhook %s: delivery %s refused, not retried: %s",
                    self._origin,
                    item.delivery_id,
                    attempt.error,
                )
                return "failed"
            if number == config.max_attempts:
                break
            if attempt.retry_after_s is not None:
                delay_s = min(attempt.retry_after_s, config.backoff_max_s)
            else:
                delay_s = _full_jitter_s(number, config.backoff_s, config.backoff_max_s, self._rng)
            logger.debug(
                "webhook %s: delivery %s attempt %d failed (%s); retrying in %.3f s",
                self._origin,
                item.delivery_id,
                number,
                attempt.error,
                delay_s,
            )
            # An Event, not time.sleep, so that close() interrupts the wait at once.
            if self._stop.wait(delay_s):
                logger.warning(
                    "webhook %s: delivery %s abandoned at close after %d attempt(s): %s",
                    self._origin,
                    item.delivery_id,
                    number,
                    attempt.error,
                )
                return "dropped"
        logger.error(
            "webhook %s: delivery %s failed after %d attempts; last error: %s",
            self._origin,
            item.delivery_id,
            config.max_attempts,
            attempt.error,
        )
        return "failed"

    def _post(self, item: _Pending) -> _Attempt:
        config = self._config
        timestamp = str(int(time.time()))
        headers = {
            **config.headers,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Skyfence-Timestamp": timestamp,
            "X-Skyfence-Delivery": item.delivery_id,
        }
        if config.secret is not None:
            headers["X-Skyfence-Signature"] = _signature(config.secret, item.body, timestamp)
        # One connection per attempt: alerts are rare, and a fresh connection never
        # trips over a keep-alive socket the receiver closed in the meantime.
        conn: http.client.HTTPConnection
        if self._ssl_context is not None:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=config.timeout_s, context=self._ssl_context
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=config.timeout_s)
        try:
            conn.request("POST", self._target, body=item.body, headers=headers)
            with conn.getresponse() as response:
                status = response.status
                if 200 <= status < 300:
                    return _Attempt(ok=True, retry=False, error="")
                retry_after = response.getheader("Retry-After")
                detail = response.read(_ERROR_BODY_BYTES).decode("utf-8", "replace")
                error = f"HTTP {status} {response.reason}"
                if detail.strip():
                    error = f"{error}: {' '.join(detail.split())}"
        except ssl.SSLCertVerificationError as exc:
            # Retrying cannot fix a certificate; say so at once.
            return _Attempt(ok=False, retry=False, error=f"TLS certificate rejected: {exc}")
        except (OSError, http.client.HTTPException) as exc:
            return _Attempt(ok=False, retry=True, error=f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
        if status >= 500 or status in _RETRY_STATUSES:
            return _Attempt(
                ok=False, retry=True, error=error, retry_after_s=_retry_after_s(retry_after)
            )
        # Other 4xx mean the request itself is wrong; 1xx/3xx are not followed
        # (a redirect of a POST is ambiguous), so the URL should be corrected.
        return _Attempt(ok=False, retry=False, error=error)
