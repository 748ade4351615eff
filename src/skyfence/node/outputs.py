"""The node's picture outputs: Cursor-on-Target to TAK, and a GeoJSON file.

Each output takes the engine's updates as they are published and sends the picture
at most once per ``period_s`` of data time (a TAK client needs a marker moved once a
second, not at every sensor's look). The work — encoding a thousand events, writing
a file — runs on a worker thread, one at a time per output: while an output is
still busy with one picture, newer ones replace the one waiting, counted as
``skipped``. An output never holds up the engine or the event loop, and an output
that fails (a TAK server down, a full disk) is counted and retried with the next
picture; the others go on.

    [[outputs.cot]]
    transport = "udp"          # udp (multicast or unicast) | tcp | tls
    host = "239.2.3.1"
    port = 6969
    encoding = "xml"           # xml | protobuf (TAK protocol version 1)
    period_s = 1.0
    stale_s = 5.0
    omit_classes = ["bird"]
    friendly = ["rid:MFG1A0123456789"]
    # tls: certfile, keyfile, cafile (PEM)

    [[outputs.geojson]]
    path = "picture.geojson"   # rewritten atomically: tracks and swarm outlines
    period_s = 1.0
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from skyfence.adapters import cot, geojson_out
from skyfence.geo import Origin
from skyfence.node.engine import Update
from skyfence.picture import Frame

log = logging.getLogger("skyfence.node")

COT_TRANSPORTS = ("udp", "tcp", "tls")
COT_ENCODINGS = ("xml", "protobuf")


@dataclass(frozen=True, slots=True, kw_only=True)
class CotOutputConfig:
    """One ``[[outputs.cot]]``: where to, how encoded, how often, and the CoT
    options (:class:`skyfence.adapters.cot.CotConfig`)."""

    transport: Literal["udp", "tcp", "tls"] = "udp"
    host: str = cot.DEFAULT_MULTICAST_GROUP
    port: int = cot.DEFAULT_MULTICAST_PORT
    encoding: Literal["xml", "protobuf"] = "xml"
    period_s: float = 1.0
    cot: cot.CotConfig = field(default_factory=cot.CotConfig)
    ttl: int = 1
    certfile: Path | None = None
    keyfile: Path | None = None
    cafile: Path | None = None
    check_hostname: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class GeoJsonOutputConfig:
    """One ``[[outputs.geojson]]``: a file holding the picture, rewritten at most once
    per ``period_s`` (a temporary file renamed over it: a reader never sees half)."""

    path: Path
    period_s: float = 1.0
    groups: bool = True


@dataclass(slots=True)
class OutputStats:
    pictures: int = 0  # pictures sent (or written)
    skipped: int = 0  # pictures replaced by a newer one while the output was busy
    failed: int = 0  # pictures that could not be encoded, sent or written
    last_error: str = ""


class PictureOutput:
    """Base: rate limit, one worker at a time, newest picture wins."""

    kind = "output"

    def __init__(self, name: str, period_s: float) -> None:
        self.name = name
        self.period_s = period_s
        self.stats = OutputStats()
        self._last_t: float | None = None
        self._waiting: tuple[Frame, frozenset[int]] | None = None
        self._busy = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def publish(self, update: Update, breaching: frozenset[int] = frozenset()) -> None:
        """Take one update (on the event loop's thread; returns at once).
        ``breaching``: ids of tracks inside a prohibited zone now."""
        t = update.t
        if self._last_t is not None and t - self._last_t < self.period_s - 1e-6:
            return
        self._last_t = t
        if self._waiting is not None:
            self.stats.skipped += 1
        self._waiting = (update.frame, breaching)
        if not self._busy:
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        self._busy = True
        try:
            while self._waiting is not None:
                frame, breaching = self._waiting
                self._waiting = None
                try:
                    await self._emit(frame, breaching)
                    self.stats.pictures += 1
                except Exception as err:  # an output's failure must not stop the node
                    self.stats.failed += 1
                    self.stats.last_error = f"{type(err).__name__}: {err}"
                    if self.stats.failed == 1:
                        log.warning("output %s failed: %s (later failures are counted)",
                                    self.name, self.stats.last_error)
        finally:
            self._busy = False

    async def _emit(self, frame: Frame, breaching: frozenset[int]) -> None:
        raise NotImplementedError

    def metrics(self) -> dict[str, float]:
        return {"pictures": self.stats.pictures, "skipped": self.stats.skipped,
                "failed": self.stats.failed}


class CotOutput(PictureOutput):
    """The picture as CoT events to a TAK multicast group, server or client."""

    kind = "cot"

    def __init__(self, name: str, config: CotOutputConfig, origin: Origin) -> None:
        super().__init__(name, config.period_s)
        self.config, self.origin = config, origin
        self.sender: cot.UdpSender | cot.TcpSender
        if config.transport == "udp":
            self.sender = cot.UdpSender(config.host, config.port, ttl=config.ttl)
        else:
            ctx = None
            if config.transport == "tls":
                if config.certfile is None or config.cafile is None:
                    raise cot.CotError("a tls output needs certfile and cafile",
                                       field="certfile", fix="give the PEM files")
                ctx = cot.tls_context(certfile=config.certfile, keyfile=config.keyfile,
                                      cafile=config.cafile,
                                      check_hostname=config.check_hostname)
            self.sender = cot.TcpSender(config.host, config.port, ssl=ctx)

    async def start(self) -> None:
        await self.sender.start()

    async def close(self) -> None:
        await super().close()
        await self.sender.close()

    async def _emit(self, frame: Frame, breaching: frozenset[int]) -> None:
        payloads = await asyncio.to_thread(self._encode, frame, breaching)
        self.sender.send_many(payloads)

    def _encode(self, frame: Frame, breaching: frozenset[int]) -> list[bytes]:
        events = cot.frame_events(frame, self.origin, self.config.cot,
                                  breaching=sorted(breaching))
        if self.config.encoding == "xml":
            return [cot.encode_xml(e) for e in events]
        framing: Literal["mesh", "stream"] = "mesh" if self.config.transport == "udp" \
            else "stream"
        return [cot.encode_proto(e, framing=framing) for e in events]

    def metrics(self) -> dict[str, float]:
        s = self.sender.stats
        return {**super().metrics(), "events_sent": s.sent, "events_dropped": s.dropped,
                "events_failed": s.failed}


class GeoJsonOutput(PictureOutput):
    """The picture as one GeoJSON FeatureCollection file: tracks (Points) and, when
    asked, swarm outlines (Polygons), for GIS tools that poll a file."""

    kind = "geojson"

    def __init__(self, name: str, config: GeoJsonOutputConfig, origin: Origin) -> None:
        super().__init__(name, config.period_s)
        self.config, self.origin = config, origin

    async def _emit(self, frame: Frame, breaching: frozenset[int]) -> None:
        await asyncio.to_thread(self._write, frame)

    def _write(self, frame: Frame) -> None:
        collection = geojson_out.tracks_geojson(frame, self.origin)
        if self.config.groups:
            collection["features"] += geojson_out.groups_geojson(frame, self.origin)["features"]
        path = self.config.path
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(geojson_out.encode(collection))
        os.replace(tmp, path)


def build_outputs(cot_configs: tuple[CotOutputConfig, ...],
                  geojson_configs: tuple[GeoJsonOutputConfig, ...],
                  origin: Origin) -> list[PictureOutput]:
    """The outputs of a node.toml, named ``cot[k]`` and ``geojson[k]`` for metrics."""
    out: list[PictureOutput] = [CotOutput(f"cot[{k}]", c, origin)
                                for k, c in enumerate(cot_configs)]
    out += [GeoJsonOutput(f"geojson[{k}]", c, origin) for k, c in enumerate(geojson_configs)]
    return out


def node_uid_name(name: str) -> str:
    """A node name made fit for a CoT uid (letters, digits, ``_``, ``-``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", name) or "local"


def parse_cot_output(t: dict[str, Any], where: str, node: str, base: Path,
                     fail: Callable[[str, str, str], Exception]) -> CotOutputConfig:
    """One ``[[outputs.cot]]`` table (``fail(key, problem, fix)`` makes the error)."""
    known = {"transport", "host", "port", "encoding", "period_s", "stale_s", "node",
             "drone_symbols", "omit_classes", "groups", "friendly", "neutral", "hostile",
             "suspect_spoof", "suspect_dark_breach", "ttl", "certfile", "keyfile",
             "cafile", "check_hostname", "qos", "opex"}
    unknown = sorted(set(t) - known)
    if unknown:
        raise fail(f"{where}.{unknown[0]}", "unknown key", f"use {', '.join(sorted(known))}")
    transport = t.get("transport", "udp")
    if transport not in COT_TRANSPORTS:
        raise fail(f"{where}.transport", f"{transport!r} is not a CoT transport",
                   f"use one of {', '.join(COT_TRANSPORTS)}")
    encoding = t.get("encoding", "xml")
    if encoding not in COT_ENCODINGS:
        raise fail(f"{where}.encoding", f"{encoding!r} is not a CoT encoding",
                   f"use one of {', '.join(COT_ENCODINGS)}")
    default_port = {"udp": cot.DEFAULT_MULTICAST_PORT, "tcp": cot.TAK_TCP_PORT,
                    "tls": 8089}[transport]
    port = t.get("port", default_port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise fail(f"{where}.port", f"{port!r} is not a port", "give 1–65535")
    host = t.get("host", cot.DEFAULT_MULTICAST_GROUP if transport == "udp" else None)
    if not isinstance(host, str) or not host:
        raise fail(f"{where}.host", "missing", "give the TAK server's host name or address")
    period = _seconds(t, "period_s", 1.0, where, fail)
    files: dict[str, Path | None] = {}
    for key in ("certfile", "keyfile", "cafile"):
        v = t.get(key)
        if v is not None and not isinstance(v, str):
            raise fail(f"{where}.{key}", f"{v!r} is not a path", 'give key = "file.pem"')
        files[key] = None if v is None else base / v
        if files[key] is not None and not files[key].is_file():  # type: ignore[union-attr]
            raise fail(f"{where}.{key}", f"{files[key]} does not exist",
                       "give the path of a PEM file")
    if transport == "tls" and (files["certfile"] is None or files["cafile"] is None):
        key = "certfile" if files["certfile"] is None else "cafile"
        raise fail(f"{where}.{key}", "missing",
                   "a tls output needs certfile (ours) and cafile (the server's CA)")
    options: dict[str, Any] = {"node": t.get("node", node_uid_name(node))}
    for key in ("stale_s", "drone_symbols", "groups", "qos", "opex"):
        if key in t:
            options[key] = t[key]
    if "omit_classes" in t:
        options["omit_classes"] = tuple(_strings(t, "omit_classes", where, fail))
    policy: dict[str, Any] = {k: tuple(_strings(t, k, where, fail))
                              for k in ("friendly", "neutral", "hostile") if k in t}
    policy.update({k: t[k] for k in ("suspect_spoof", "suspect_dark_breach") if k in t})
    try:
        cot_config = cot.CotConfig(affiliation=cot.AffiliationPolicy(**policy), **options)
    except cot.CotError as err:
        raise fail(f"{where}.{err.field or 'cot'}", str(err.problem), err.fix or "") from None
    ttl = t.get("ttl", 1)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 255:
        raise fail(f"{where}.ttl", f"{ttl!r} is not 0–255", "give e.g. 1")
    check = t.get("check_hostname", True)
    if not isinstance(check, bool):
        raise fail(f"{where}.check_hostname", f"{check!r} is not true or false",
                   "give true or false")
    return CotOutputConfig(transport=transport, host=host, port=port, encoding=encoding,
                           period_s=period, cot=cot_config, ttl=ttl, check_hostname=check,
                           **files)


def parse_geojson_output(t: dict[str, Any], where: str, base: Path,
                         fail: Callable[[str, str, str], Exception]) -> GeoJsonOutputConfig:
    unknown = sorted(set(t) - {"path", "period_s", "groups"})
    if unknown:
        raise fail(f"{where}.{unknown[0]}", "unknown key", "use path, period_s, groups")
    path = t.get("path")
    if not isinstance(path, str) or not path:
        raise fail(f"{where}.path", "missing", 'give path = "picture.geojson"')
    full = base / path
    if not full.parent.is_dir():
        raise fail(f"{where}.path", f"the folder {full.parent} does not exist",
                   "create it, or write the file elsewhere")
    groups = t.get("groups", True)
    if not isinstance(groups, bool):
        raise fail(f"{where}.groups", f"{groups!r} is not true or false", "give true or false")
    return GeoJsonOutputConfig(path=full, period_s=_seconds(t, "period_s", 1.0, where, fail),
                               groups=groups)


def _seconds(t: dict[str, Any], key: str, default: float, where: str,
             fail: Callable[[str, str, str], Exception]) -> float:
    v = t.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 3600:
        raise fail(f"{where}.{key}", f"{v!r} is not a period", "give 0–3600 seconds")
    return float(v)


def _strings(t: dict[str, Any], key: str, where: str,
             fail: Callable[[str, str, str], Exception]) -> list[str]:
    v = t[key]
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise fail(f"{where}.{key}", "is not a list of strings", f'give {key} = ["…"]')
    return list(v)


__all__ = [
    "CotOutput",
    "CotOutputConfig",
    "GeoJsonOutput",
    "GeoJsonOutputConfig",
    "OutputStats",
    "PictureOutput",
    "build_outputs",
    "node_uid_name",
    "parse_cot_output",
    "parse_geojson_output",
]
