"""Webhook delivery against a real local HTTP server: signing, retries, ordering, shedding."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from skyfence import webhook
from skyfence.errors import SkyfenceError
from skyfence.webhook import WebhookConfig, WebhookSink, WebhookStats, verify_signature

SECRET = "s3cret-key"


# --------------------------------------------------------------------------- a local receiver


@dataclass(frozen=True, slots=True)
class Reply:
    """How the receiver answers one request; ``hold_s`` delays the answer (seconds)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hold_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int
    at_s: float  # time.monotonic() on arrival

    @property
    def delivery(self) -> str:
        return self.headers["x-skyfence-delivery"]

    @property
    def event(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every POST and answers from ``script`` (one Reply per request), then 200."""

    def __init__(self) -> None:
        self.url = ""
        self.script: list[Reply] = []
        self.requests: list[Received] = []
        self.release = threading.Event()  # ends every hold at once (teardown)
        self._arrived = threading.Condition()

    def record(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self._arrived:
            reply = self.script.pop(0) if self.script else Reply()
            self.requests.append(Received(path, headers, body, reply.status, time.monotonic()))
            self._arrived.notify_all()
            return reply

    def wait_for(self, count: int, timeout_s: float = 5.0) -> None:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout_s):
                pytest.fail(f"{len(self.requests)} requests arrived, expected {count}")

    def delivered(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]


class _Server(ThreadingHTTPServer):
    receiver: Receiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.receiver.record(self.path, headers, body)
        if reply.hold_s:
            self.server.receiver.release.wait(reply.hold_s)
        payload = b"" if reply.status < 300 else b"receiver says no"
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the sink timed out and hung up, which is what a hold tests

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    server.receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook?team=red"
    try:
        yield server.receiver
    finally:
        server.receiver.release.set()
        server.shutdown()
        server.server_close()  # joins the handler threads
        thread.join(5.0)


@pytest.fixture
def dead_url() -> str:
    """A URL on a port nobody listens on: connections are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def config(url: str, **overrides: Any) -> WebhookConfig:
    """Test defaults: tiny backoff so that retries cost milliseconds."""
    options: dict[str, Any] = {"timeout_s": 2.0, "backoff_s": 0.001, "backoff_max_s": 0.005}
    options.update(overrides)
    return WebhookConfig(url=url, **options)


def accounted(stats: WebhookStats) -> int:
    return stats.delivered + stats.failed + stats.dropped + stats.queued


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "url",
    [
        "ftp://alerts.example.org/hook",
        "alerts.example.org/hook",
        "http://",
        "http://user:pw@alerts.example.org/hook",
        "http://alerts.example.org:99999/hook",
        "http://alerts.example.org/a hook",
        "https://alerts.example.org/\u00e9",
    ],
)
def test_bad_url_is_refused_with_the_url_and_a_fix(url: str) -> None:
    with pytest.raises(SkyfenceError) as err:
        WebhookConfig(url=url)
    assert repr(url) in str(err.value)
    assert "—" in str(err.value)  # InputError puts the fix after a dash


@pytest.mark.parametrize(
    "overrides",
    [
        {"timeout_s": 0.0},
        {"timeout_s": float("nan")},
        {"backoff_s": -1.0},
        {"backoff_max_s": float("inf")},
        {"max_attempts": 0},
        {"queue_size": 0},
        {"queue_size": 2.5},
        {"secret": ""},
        {"headers": {"X-Skyfence-Signature": "forged"}},
        {"headers": {"X-Team": "red\r\nX-Injected: 1"}},
        {"headers": {"Bad Name": "x"}},
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(SkyfenceError):
        WebhookConfig(url="https://alerts.example.org/hook", **overrides)


def test_config_hides_credentials_and_keeps_its_own_headers() -> None:
    headers = {"Authorization": "Bearer tok"}
    cfg = WebhookConfig(url="https://alerts.example.org/hook", secret=SECRET, headers=headers)
    headers["Authorization"] = "changed"
    assert cfg.headers == {"Authorization": "Bearer tok"}
    assert SECRET not in repr(cfg) and "tok" not in repr(cfg)
    assert hash(cfg) == hash(
        WebhookConfig(url="https://alerts.example.org/hook", secret=SECRET, headers=cfg.headers)
    )


def test_event_that_is_not_json_raises_at_send(dead_url: str) -> None:
    with WebhookSink(config(dead_url)) as sink:
        with pytest.raises(SkyfenceError, match="JSON"):
            sink.send({"x": object()})
        with pytest.raises(SkyfenceError, match="JSON"):
            sink.send({"x": float("nan")})
        assert sink.stats == WebhookStats(delivered=0, failed=0, dropped=0, retries=0, queued=0)


# --------------------------------------------------------------------------- delivery


def test_delivers_compact_sorted_utf8_json_with_headers(receiver: Receiver) -> None:
    t0 = int(time.time())
    cfg = config(receiver.url, headers={"Authorization": "Bearer tok"})
    with WebhookSink(cfg) as sink:
        assert sink.send({"zone": "Café", "id": 7, "track": {"b": 2.5, "a": None}})
        assert sink.send({"id": 8})
    t1 = int(time.time())

    assert sink.stats == WebhookStats(delivered=2, failed=0, dropped=0, retries=0, queued=0)
    first, second = receiver.requests
    assert first.path == "/hook?team=red"
    assert first.body == '{"id":7,"track":{"a":null,"b":2.5},"zone":"Café"}'.encode()
    assert first.headers["content-type"] == "application/json"
    assert first.headers["user-agent"] == "skyfence-webhook/1"
    assert first.headers["authorization"] == "Bearer tok"
    assert t0 <= int(first.headers["x-skyfence-timestamp"]) <= t1
    assert "x-skyfence-signature" not in first.headers  # no secret, no signature
    assert first.delivery and first.delivery != second.delivery


def test_signature_verifies_and_refuses_tampering(receiver: Receiver) -> None:
    with WebhookSink(config(receiver.url, secret=SECRET)) as sink:
        sink.send({"alert": "zone breach", "track_id": 42})
    (request,) = receiver.requests
    body = request.body
    ts = request.headers["x-skyfence-timestamp"]
    sig = request.headers["x-skyfence-signature"]

    # The documented construction, computed independently of the module.
    expected = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert sig == f"sha256={expected}"

    assert verify_signature(SECRET, body, ts, sig)
    assert verify_signature(SECRET, body, ts, sig, now_s=int(ts) + 10.0)
    assert not verify_signature("wrong-secret", body, ts, sig)
    assert not verify_signature(SECRET, body.replace(b"42", b"43"), ts, sig)
    assert not verify_signature(SECRET, body, str(int(ts) + 1), sig)  # timestamp is signed
    assert not verify_signature(SECRET, body, ts, sig, now_s=int(ts) + 301.0)
    assert not verify_signature(SECRET, body, ts, sig, now_s=int(ts) - 301.0)
    assert not verify_signature(SECRET, body, ts, sig, now_s=int(ts) + 60.0, tolerance_s=30.0)
    for bad_header in ("", expected, "sha256=00", sig.upper(), sig + "é"):
        assert not verify_signature(SECRET, body, ts, bad_header)
    for bad_ts in ("", "-1", "12.5", "1" * 5000, "１２３"):
        assert not verify_signature(SECRET, body, bad_ts, sig)
    with pytest.raises(SkyfenceError):
        verify_signature("", body, ts, sig)


# --------------------------------------------------------------------------- retries


def test_retries_then_delivers_with_a_stable_delivery_id(receiver: Receiver) -> None:
    receiver.script = [Reply(500), Reply(503)]
    with WebhookSink(config(receiver.url, secret=SECRET)) as sink:
        sink.send({"id": 1})

    assert sink.stats == WebhookStats(delivered=1, failed=0, dropped=0, retries=2, queued=0)
    assert [r.status for r in receiver.requests] == [500, 503, 200]
    assert len({r.delivery for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1
    for r in receiver.requests:  # each attempt is signed with its own timestamp
        ts = r.headers["x-skyfence-timestamp"]
        assert verify_signature(SECRET, r.body, ts, r.headers["x-skyfence-signature"])


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_transient_statuses_are_retried(receiver: Receiver, status: int) -> None:
    receiver.script = [Reply(status)]
    with WebhookSink(config(receiver.url)) as sink:
        sink.send({"id": 1})
    assert sink.stats == WebhookStats(delivered=1, failed=0, dropped=0, retries=1, queued=0)


@pytest.mark.parametrize("status", [301, 400, 401, 404, 422])
def test_client_errors_are_not_retried(
    receiver: Receiver, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script = [Reply(status)]
    with (
        caplog.at_level(logging.ERROR, logger="skyfence.webhook"),
        WebhookSink(config(receiver.url)) as sink,
    ):
        sink.send({"id": 1})
        sink.send({"id": 2})  # the next event goes on regardless

    assert sink.stats == WebhookStats(delivered=1, failed=1, dropped=0, retries=0, queued=0)
    assert [r.event["id"] for r in receiver.requests] == [1, 2]
    assert f"HTTP {status}" in caplog.text and "receiver says no" in caplog.text


def test_retry_after_is_honoured(receiver: Receiver) -> None:
    receiver.script = [Reply(503, {"Retry-After": "0.3"})]
    with WebhookSink(config(receiver.url, backoff_max_s=5.0)) as sink:
        sink.send({"id": 1})
    first, second = receiver.requests
    # The jittered backoff alone would wait at most 5 ms.
    assert second.at_s - first.at_s >= 0.25


def test_retry_after_is_capped_at_backoff_max(receiver: Receiver) -> None:
    receiver.script = [Reply(429, {"Retry-After": "3600"})]
    start_s = time.monotonic()
    with WebhookSink(config(receiver.url, backoff_max_s=0.05)) as sink:
        sink.send({"id": 1})
    assert time.monotonic() - start_s < 2.0
    assert sink.stats.delivered == 1


def test_timeout_is_retried(receiver: Receiver) -> None:
    receiver.script = [Reply(200, hold_s=2.0)]  # answers after the sink gave up
    with WebhookSink(config(receiver.url, timeout_s=0.2)) as sink:
        sink.send({"id": 1})
    assert sink.stats == WebhookStats(delivered=1, failed=0, dropped=0, retries=1, queued=0)
    assert len(receiver.requests) == 2


def test_server_down_fails_after_max_attempts(
    dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="skyfence.webhook"),
        WebhookSink(config(dead_url, max_attempts=4)) as sink,
    ):
        sink.send({"id": 1})
        sink.send({"id": 2})
    assert sink.stats == WebhookStats(delivered=0, failed=2, dropped=0, retries=6, queued=0)
    assert "after 4 attempts" in caplog.text
    assert "ConnectionRefusedError" in caplog.text
    assert "/hook" not in caplog.text  # logs name the origin only; paths may hold tokens


def test_backoff_is_full_jitter_doubling_to_the_cap_and_deterministic() -> None:
    def delays(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [webhook._full_jitter_s(n, 0.5, 3.0, rng) for n in range(1, 2001)]

    caps = [0.5, 1.0, 2.0] + [3.0] * 1997
    got = delays(7)
    assert got == delays(7) and got != delays(8)
    assert all(0.0 <= d <= cap for d, cap in zip(got, caps, strict=True))
    assert max(got[3:]) > 2.5  # the cap does reach backoff_max_s
    assert webhook._full_jitter_s(10_000, 0.5, 3.0, random.Random(0)) <= 3.0  # no overflow


# --------------------------------------------------------------------------- order and shedding


def test_order_is_preserved_through_retries(receiver: Receiver) -> None:
    receiver.script = [Reply(500), Reply(503), Reply(500)]
    with WebhookSink(config(receiver.url)) as sink:
        for seq in range(30):
            sink.send({"seq": seq})
    assert [r.event["seq"] for r in receiver.delivered()] == list(range(30))
    assert sink.stats == WebhookStats(delivered=30, failed=0, dropped=0, retries=3, queued=0)


def test_full_queue_drops_the_oldest(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.script = [Reply(200, hold_s=5.0)]  # keeps event 0 in flight
    with (
        caplog.at_level(logging.WARNING, logger="skyfence.webhook"),
        WebhookSink(config(receiver.url, queue_size=3)) as sink,
    ):
        assert sink.send({"seq": 0})
        receiver.wait_for(1)
        assert [sink.send({"seq": seq}) for seq in (1, 2, 3)] == [True, True, True]
        assert sink.stats.queued == 4  # three waiting, one in flight
        assert not sink.send({"seq": 4})  # pushes out 1
        assert not sink.send({"seq": 5})  # pushes out 2
        assert sink.stats.dropped == 2
        receiver.release.set()

    assert [r.event["seq"] for r in receiver.requests] == [0, 3, 4, 5]
    assert sink.stats == WebhookStats(delivered=4, failed=0, dropped=2, retries=0, queued=0)
    assert "queue is full" in caplog.text


def test_send_after_close_is_dropped(receiver: Receiver) -> None:
    sink = WebhookSink(config(receiver.url))
    sink.close()
    assert not sink.send({"id": 1})
    sink.close()  # a second close is harmless
    assert sink.stats == WebhookStats(delivered=0, failed=0, dropped=1, retries=0, queued=0)
    assert receiver.requests == []


def test_close_returns_promptly_during_a_backoff(receiver: Receiver) -> None:
    receiver.script = [Reply(503, {"Retry-After": "60"})]
    sink = WebhookSink(config(receiver.url, backoff_max_s=60.0))
    sink.send({"id": 1})
    sink.send({"id": 2})
    receiver.wait_for(1)

    start_s = time.monotonic()
    sink.close(timeout_s=0.2)
    elapsed_s = time.monotonic() - start_s

    assert 0.2 <= elapsed_s < 1.0  # waited for the drain, then cut the 60 s wait short
    assert not any(t.name == "skyfence-webhook" for t in threading.enumerate())
    assert sink.stats == WebhookStats(delivered=0, failed=0, dropped=2, retries=0, queued=0)
    assert len(receiver.requests) == 1


def test_send_never_blocks_on_a_dead_server(
    dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(dead_url, backoff_s=10.0, backoff_max_s=10.0, queue_size=100)
    with caplog.at_level(logging.WARNING, logger="skyfence.webhook"), WebhookSink(cfg) as sink:
        start_s = time.monotonic()
        accepted = [sink.send({"seq": seq, "pad": "x" * 200}) for seq in range(1000)]
        elapsed_s = time.monotonic() - start_s
        assert elapsed_s < 0.5, f"1000 sends took {elapsed_s:.3f} s"
        # 100 fit the queue, plus one if the worker took the first off it meanwhile.
        assert accepted[:100] == [True] * 100 and sum(accepted) in (100, 101)
        assert accounted(sink.stats) == 1000
        sink.close(timeout_s=0.0)
    assert accounted(sink.stats) == 1000
    assert sink.stats.queued == 0 and sink.stats.delivered == 0
    # One warning for the first drop, the rest summed up at close rather than one each.
    drop_lines = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drop_lines) <= 4
    assert "more event(s) were dropped" in caplog.text
