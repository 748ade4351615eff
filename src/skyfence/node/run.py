"""Running a node: its sources' transports, the HTTP server, a status line, until
interrupted. ``skyfence serve`` runs one from ``node.toml``; ``skyfence demo`` runs
one over the built-in demo scenario, whose simulated sensors send JSON Lines.

Sources hand raw bytes to ``NodeService.ingest`` (journal first, then their adapter):
a TCP listener takes one sensor connection at a time per source (a second would
interleave two streams in one decoder); a TCP client reconnects with backoff; a file
is read once, paced by ``speed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from skyfence.node.config import NodeConfig, SourceConfig, SourceTls
from skyfence.node.service import NodeService
from skyfence.pipeline import batch_bounds
from skyfence.scenario import Scenario
from skyfence.types import Detections

log = logging.getLogger("skyfence.node")


# --------------------------------------------------------------------------- sources


def source_ssl(tls: SourceTls) -> ssl.SSLContext:
    """The server TLS context of a source: our certificate, and with ``client_cafile``
    the sensors' certificates required and checked against that CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(tls.certfile), None if tls.keyfile is None else str(tls.keyfile))
    if tls.client_cafile is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(str(tls.client_cafile))
    return ctx


def _peer_names(cert: Any) -> set[str]:
    """Common names and DNS names of a peer certificate (``getpeercert()``)."""
    names = {v for rdn in (cert or {}).get("subject", ()) for k, v in rdn if k == "commonName"}
    names |= {v for k, v in (cert or {}).get("subjectAltName", ()) if k == "DNS"}
    return names


def _authenticated(service: NodeService, sc: SourceConfig,
                   writer: asyncio.StreamWriter) -> bool:
    """Whether a connection to a TLS source with ``client_names`` is from one of them;
    one that is not is refused, counted and audited."""
    tls = sc.tls
    if tls is None or not tls.client_names:
        return True
    names = _peer_names(writer.get_extra_info("peercert"))
    if names & set(tls.client_names):
        return True
    service.refuse_connection(sc.source.id, f"certificate names {sorted(names)} "
                              f"are not among {list(tls.client_names)}")
    writer.close()
    return False


async def tcp_listen(service: NodeService, sc: SourceConfig,
                     on_port: Callable[[int], object] | None = None) -> None:
    busy = asyncio.Lock()
    tls = sc.tls

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not _authenticated(service, sc, writer):
            return
        if busy.locked():
            writer.close()
            return
        async with busy:
            service.sources[sc.source.id].detail = "connected"
            try:
                while data := await reader.read(1 << 16):
                    await service.ingest(sc.source.id, data)
            except OSError as err:
                service.source_down(sc.source.id, f"connection lost: {err}")
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            service.source_down(sc.source.id, "sensor disconnected")

    server = await asyncio.start_server(handle, sc.host, sc.port,
                                        ssl=None if tls is None else source_ssl(tls))
    if on_port is not None:
        on_port(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


async def sapient_listen(service: NodeService, sc: SourceConfig,
                         on_port: Callable[[int], object] | None = None, *,
                         idle_timeout_s: float = 120.0, max_rejections: int = 100) -> None:
    """A SAPIENT source: sensor nodes connect, register and report, many at once.
    Each connection is answered by the source's own fusion node; what it accepts goes
    to the journal and the source's decoder, tagged with its connection
    (``skyfence.adapters.sapient.source``). A node that may not register here is
    refused (``RegistrationAck`` refused), counted, audited, and disconnected; so is,
    without the audit, a connection silent for ``idle_timeout_s`` or with more than
    ``max_rejections`` messages rejected."""
    from skyfence.adapters.base import Rejected
    from skyfence.adapters.sapient.codec import SapientDecoder, SapientFrame, encode
    from skyfence.adapters.sapient.source import SapientSource, SourceRules, envelope
    from skyfence.node.service import reason_key

    sid = sc.source.id
    st = service.sources[sid]
    rules = SourceRules.from_options(sc.source.options)
    live = SapientSource(service.scenario, rules)
    node_of = {sensor: node for node, sensor in rules.nodes.items()}
    st.nodes = {sensor: {"status": "waiting", "detail": f"SAPIENT node {node_of[sensor]}",
                         "detections": 0} for sensor in sorted(rules.serves)}
    conns = itertools.count(1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not _authenticated(service, sc, writer):
            return
        conn = next(conns)
        stream = SapientDecoder()
        forwarded = False
        rejections = 0
        why = "closed by the sensor node"
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(1 << 16), idle_timeout_s)
                except TimeoutError:
                    why = f"silent for {idle_timeout_s:g} s"
                    break
                records = stream.feed(data) if data else stream.close()
                step = live.handle(conn, [r for r in records if isinstance(r, SapientFrame)],
                                   service.clock())
                for r in (*(r for r in records if isinstance(r, Rejected)), *step.rejected):
                    st.rejected[reason_key(r.reason)] += 1
                    rejections += 1
                if step.replies:
                    writer.write(b"".join(encode(m) for m in step.replies))
                    await asyncio.wait_for(writer.drain(), 10.0)
                if step.accepted:
                    forwarded = True
                    await service.ingest(sid, envelope(conn, b"".join(
                        encode(f.message) for f in step.accepted)))
                for sensor, c in live.registered.items():
                    if c == conn:
                        st.nodes[sensor].update(status="up", detail=(
                            f"SAPIENT node {node_of[sensor]}: registered, connected"))
                if step.refused:
                    for reason in step.refused:
                        service.refuse_connection(sid, reason)
                    why = "registration refused"
                    break
                if not data or stream.lost:
                    why = "stream lost" if data else why
                    break
                if rejections > max_rejections:
                    why = f"more than {max_rejections} messages rejected"
                    break
        except (OSError, TimeoutError) as err:
            why = f"connection lost: {err!r}"
        finally:
            gone = [s for s, c in live.registered.items() if c == conn]
            live.close(conn)
            for sensor in gone:
                st.nodes[sensor].update(status="down",
                                        detail=f"SAPIENT node {node_of[sensor]}: {why}")
            if forwarded:
                await service.ingest(sid, envelope(conn, closed=True))
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, sc.host, sc.port,
                                        ssl=None if sc.tls is None else source_ssl(sc.tls))
    if on_port is not None:
        on_port(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


async def tcp_connect(service: NodeService, sc: SourceConfig, *, backoff_s: float = 1.0,
                      max_backoff_s: float = 30.0) -> None:
    backoff = backoff_s
    while True:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(sc.host, sc.port), 10.0)
        except (OSError, TimeoutError) as err:
            service.source_down(sc.source.id, f"cannot connect to {sc.host}:{sc.port}: {err}")
        else:
            try:
                while data := await reader.read(1 << 16):
                    backoff = backoff_s
                    await service.ingest(sc.source.id, data)
                service.source_down(sc.source.id, "closed by the sensor")
            except OSError as err:
                service.source_down(sc.source.id, f"connection lost: {err}")
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        await asyncio.sleep(backoff)
        backoff = min(2.0 * backoff, max_backoff_s)


async def file_source(service: NodeService, sc: SourceConfig) -> None:
    if sc.path is None:
        return
    try:
        data = sc.path.read_bytes()
    except OSError as err:
        service.source_down(sc.source.id, f"cannot read {sc.path}: {err.strerror}")
        return
    for k in range(0, len(data), 1 << 16):
        await service.ingest(sc.source.id, data[k:k + (1 << 16)])
    service.source_down(sc.source.id, "file read to the end")


async def _fed_by_the_broker() -> None:
    """A federation feed: the node's federation task delivers it."""


async def _pushed_to_the_api() -> None:
    """A source of transport "http": its sensor pushes to ``POST /api/v1/ingest``."""


def source_task(service: NodeService, sc: SourceConfig) -> Awaitable[None]:
    if sc.transport == "tcp-listen" and sc.source.format == "sapient":
        return sapient_listen(service, sc)
    if sc.transport == "tcp-listen":
        return tcp_listen(service, sc)
    if sc.transport == "tcp-connect":
        return tcp_connect(service, sc)
    if sc.transport == "nats":
        return _fed_by_the_broker()
    if sc.transport == "http":
        return _pushed_to_the_api()
    return file_source(service, sc)


async def federation_task(service: NodeService, federation: Any, *, backoff_s: float = 1.0,
                          max_backoff_s: float = 30.0, last_taken: Any = None) -> None:
    """Keep the node on the broker: connect, make sure of its inbound stream, and read
    each partner it hears; on any failure mark those feeds down, wait, start over.
    (While disconnected, what the node publishes fails and is counted.)

    Exactly once across a crash: the time of the last picture each feed's decoder
    took from its sender is kept on disk as it takes it (``last_taken``, a
    ``LastTaken``; by default beside the node's store) and given back to the decoders
    on start, so that a picture taken before a crash and delivered again after it
    (the crash came before its ack) is refused as a replay. A message is acked only
    once it is in the node's journal (``NodeService.ingest(journaled=True)``; without
    a journal, once decoded), so that none acked is lost to a crash either."""
    from skyfence.federation.codec import PictureDecoder
    from skyfence.federation.nats import Federation, LastTaken, last_taken_path, resume_feeds

    fed: Federation = federation
    backoff = backoff_s
    feeds = [rec.sensor for rec in fed.config.receive]
    store_path = getattr(service.store, "path", None)
    if last_taken is None and store_path is not None:
        last_taken = LastTaken(last_taken_path(store_path))
    if last_taken is not None:
        decoders: dict[str, Any] = {rec.sender: service.sources[rec.sensor].ingest.decoder
                                    for rec in fed.config.receive}
        resume_feeds({k: d for k, d in decoders.items() if isinstance(d, PictureDecoder)},
                     last_taken)
    while True:
        try:
            await fed.connect()
            await fed.ensure_stream()
            backoff = backoff_s

            def deliver_to(sid: str) -> Callable[[bytes], Awaitable[None]]:
                async def deliver(payload: bytes) -> None:
                    service.sources[sid].detail = "federation"
                    # Acked (when this returns) only once it is in the journal.
                    await service.ingest(sid, payload, journaled=True)
                return deliver

            await asyncio.gather(*(fed.receive(rec, deliver_to(rec.sensor))
                                   for rec in fed.config.receive),
                                 asyncio.Event().wait())
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the broker down, refused, timed out: retry
            for sid in feeds:
                service.source_down(sid, f"broker: {type(err).__name__}: {err}")
            log.warning("federation: %s: %s (retrying in %.0f s)", type(err).__name__, err,
                        backoff)
        finally:
            with contextlib.suppress(Exception):
                await fed.close()
        await asyncio.sleep(backoff)
        backoff = min(2.0 * backoff, max_backoff_s)


# --------------------------------------------------------------------------- simulation


def jsonl_payloads(scenario: Scenario, det: Detections) -> list[tuple[float, str, bytes]]:
    """A simulation's detections as what its sensors would send: per (time, sensor), a
    JSON Lines payload for the source ``sim-<sensor id>``."""
    out = []
    names = {"radar": ("range_m", "azimuth_rad", "elevation_rad"),
             "radar2d": ("range_m", "azimuth_rad")}
    for a, b in zip(*batch_bounds(det.t), strict=True):
        sensors = det.sensor[a:b]
        for s in np.unique(sensors).tolist():
            spec = scenario.sensors[s]
            cols = names.get(spec.kind) or (
                ("azimuth_rad", "elevation_rad")[:spec.bearing_dim] if spec.kind == "bearing"
                else ("east_m", "north_m", "up_m"))
            lines = []
            for k in (a + np.flatnonzero(sensors == s)).tolist():
                obj: dict[str, Any] = {"t": float(det.t[k]), "sensor": spec.id}
                obj.update({c: float(v) for c, v in zip(cols, det.z[k], strict=False)})
                if spec.kind == "cooperative":
                    obj.update(identity=str(det.identity[k]), category=str(det.category[k]),
                               std_h_m=float(np.sqrt(det.R[k, 0, 0])),
                               std_v_m=float(np.sqrt(det.R[k, 2, 2])))
                lines.append(json.dumps(obj, separators=(",", ":")))
            out.append((float(det.t[a]), f"sim-{spec.id}", ("\n".join(lines) + "\n").encode()))
    return out


class SimClock:
    """Scenario time that runs ``speed`` times the wall clock from ``t0``."""

    def __init__(self, t0: float, speed: float) -> None:
        self.t0, self.speed, self.wall0 = t0, speed, time.monotonic()

    def __call__(self) -> float:
        return self.t0 + (time.monotonic() - self.wall0) * self.speed


async def feed_simulation(service: NodeService, payloads: list[tuple[float, str, bytes]],
                          clock: SimClock, *, loop_s: float | None = None) -> None:
    """Send each payload when the scenario clock reaches its time (and, with
    ``loop_s``, start over, shifted, forever)."""
    shift = 0.0
    while True:
        for t, sid, payload in payloads:
            t_send = t + shift
            wait = (t_send - clock()) / clock.speed
            if wait > 0:
                await asyncio.sleep(wait)
            await service.ingest(sid, _shift_times(payload, shift) if shift else payload,
                                 t_send)
        if loop_s is None:
            return
        shift += loop_s


def _shift_times(payload: bytes, shift: float) -> bytes:
    lines = []
    for line in payload.splitlines():
        obj = json.loads(line)
        obj["t"] = obj["t"] + shift
        lines.append(json.dumps(obj, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


# --------------------------------------------------------------------------- running


async def run_node(service: NodeService, *, host: str, port: int, web_dir: Path | None,
                   tasks: list[Awaitable[None]], clock: Callable[[], float] | None = None,
                   status: bool = True, on_ready: Callable[[str], object] | None = None,
                   certfile: Path | None = None, keyfile: Path | None = None) -> None:
    """Serve the API and the map (HTTPS when given a certificate and its key), run the
    sources and the outputs, print a status line, until cancelled."""
    import uvicorn

    from skyfence.server.app import create_app

    app = create_app(service, web_dir=web_dir)
    tls: dict[str, Any] = {}
    if certfile is not None and keyfile is not None:
        tls = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="off", **tls))
    await service.start_outputs()
    running = [asyncio.create_task(service.run(now=clock)),
               asyncio.create_task(server.serve())]
    if service.federation is not None:
        running.append(asyncio.create_task(federation_task(service, service.federation)))
    running += [asyncio.ensure_future(t) for t in tasks]
    while not server.started:
        if running[1].done():
            running[1].result()  # the server could not start: say why
        await asyncio.sleep(0.05)
    sock = server.servers[0].sockets[0].getsockname()
    address = f"{'https' if tls else 'http'}://{sock[0]}:{sock[1]}"
    if on_ready is not None:
        on_ready(address)
    try:
        while True:
            await asyncio.sleep(1.0)
            if status:
                _status_line(service)
            for t in running:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
    finally:
        server.should_exit = True
        for t in running:
            if t is not running[1]:
                t.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await service.close_outputs()
        if status and sys.stderr.isatty():
            print(file=sys.stderr)


def _status_line(service: NodeService) -> None:
    snap = service.snapshot()
    tracks = snap.get("tracks", [])
    alerts = snap.get("alerts", [])
    crit = sum(a["severity"] == "critical" for a in alerts)
    up = sum(s.status == "up" for s in service.sources.values())
    t = snap.get("t")
    when = time.strftime("%H:%M:%S", time.gmtime(t)) if t else "--:--:--"
    text = (f"{when}Z  {len(tracks)} tracks, {len(alerts)} alerts ({crit} critical), "
            f"{up}/{len(service.sources)} sources up, {service.hub.clients} map clients")
    if sys.stderr.isatty():
        print(f"\r{text:<100}", end="", file=sys.stderr, flush=True)
    else:
        print(text, file=sys.stderr, flush=True)


def service_from_config(cfg: NodeConfig) -> NodeService:
    """A NodeService for a node.toml: zones, sites, terrain, store, journal, webhooks,
    picture outputs."""
    import os

    from skyfence.adapters.journal import JournalHeader, JournalWriter
    from skyfence.coverage import read_dem
    from skyfence.federation.nats import Federation
    from skyfence.node.access import Access
    from skyfence.node.engine import EngineConfig
    from skyfence.node.outputs import build_outputs
    from skyfence.webhook import WebhookConfig, WebhookSink
    from skyfence.zones.io import load_zones_strict
    from skyfence.zones.monitor import DemGround
    from skyfence.zones.sites import load_sites

    zones = [z for f in cfg.zone_files for z in load_zones_strict(f)]
    sites = load_sites(cfg.sites_file) if cfg.sites_file else ()
    ground = (DemGround(read_dem(cfg.dem_file), fallback_m=cfg.scenario.origin.alt_m)
              if cfg.dem_file else None)
    sources = [s.source for s in cfg.sources]
    journal = (JournalWriter(cfg.journal_path, JournalHeader(cfg.scenario, tuple(sources)),
                             durable=True) if cfg.journal_path else None)
    store = store_for = None
    if cfg.store_path is not None:
        from skyfence.store.sqlite import Retention, SqliteStore

        retention = Retention(max_age_s=cfg.retention_days * 86400.0,
                              max_bytes=int(cfg.max_mib * 2**20))
        path = cfg.store_path
        store = SqliteStore(path, retention=retention)

        def store_for(key: str) -> SqliteStore:
            # Each view's history in a file of its own, beside the home view's: no
            # query can reach another release set's rows.
            return SqliteStore(path.with_name(f"{path.stem}.{key}{path.suffix}"),
                               retention=retention)
    sinks = []
    for h in cfg.webhooks:
        secret = os.environ.get(str(h.get("secret_env", ""))) or None
        hook = WebhookSink(WebhookConfig(url=str(h["url"]), secret=secret))
        sinks.append(lambda e, hook=hook: hook.send(e.to_json()))
    federation = Federation(cfg.federation) if cfg.federation is not None else None
    view_outputs = {} if federation is None else {
        send.to: [federation.output(send, cfg.scenario.origin)]
        for send in federation.config.send}
    service = NodeService(cfg.scenario, sources, zones=zones, sites=sites, ground=ground,
                       engine=EngineConfig(window_s=cfg.window_s), journal=journal,
                       store=store, alert_sinks=sinks,
                       outputs=build_outputs(cfg.cot_outputs, cfg.geojson_outputs,
                                             cfg.scenario.origin),
                       release=cfg.release, home=cfg.home, store_for=store_for,
                       access=Access(cfg.tokens, home=cfg.home), view_outputs=view_outputs)
    service.federation = federation
    service.pushed = {s.source.id for s in cfg.sources if s.transport == "http"}
    return service
