"""The journal: every accepted input, appended before it is processed — receive time,
source, raw bytes — so that a run can be replayed and a crashed node can recover.

File layout (little-endian):

- header: ``b"SKYJRNL1"``, u32 length, that many bytes of UTF-8 JSON (the node's
  scenario — origin and sensors — and its sources: id, wire format, sensor), u32
  CRC-32 of the JSON;
- records, each: ``b"\\xa5\\x5a"`` (a sync mark), u32 payload length, f64 receive time
  (Unix s), u16 source index, the payload, u32 CRC-32 of (time, source, payload).

A reader checks every CRC. A record that fails is reported with its offset and the
reader resynchronises on the next sync mark whose record checks out; a truncated tail
(the node died mid-write) is reported and, when the journal is opened for appending,
cut off. Nothing before it is lost.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from skyfence.adapters.base import Rejected
from skyfence.errors import InputError
from skyfence.scenario import Scenario, parse_scenario

MAGIC = b"SKYJRNL1"
SYNC = b"\xa5\x5a"
_REC = struct.Struct("<2sIdH")  # sync, payload length, receive time, source
_CRC = struct.Struct("<I")
#: Payloads larger than this are refused on write and treated as corrupt on read.
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Source:
    """An input of the node: its id, its wire format (an adapter name such as
    ``beast``, ``remoteid-pcap``, ``sapient``, ``asterix``, ``jsonl``) and the
    sensor of the scenario its data belongs to; ``options`` for the adapter."""

    id: str
    format: str
    sensor: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "format": self.format, "sensor": self.sensor,
                "options": self.options}


@dataclass(frozen=True, slots=True)
class JournalHeader:
    scenario: Scenario
    sources: tuple[Source, ...]

    def to_json(self) -> dict[str, Any]:
        return {"journal": 1, "scenario": self.scenario.to_json(),
                "sources": [s.to_json() for s in self.sources]}


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    t_receive: float
    source: int
    payload: bytes


def _header_bytes(header: JournalHeader) -> bytes:
    body = json.dumps(header.to_json(), sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + struct.pack("<I", len(body)) + body + _CRC.pack(zlib.crc32(body))


def _parse_header(data: bytes, name: str) -> tuple[JournalHeader, int]:
    if data[:8] != MAGIC:
        raise InputError("not a skyfence journal (no SKYJRNL1 mark at the start)", file=name,
                         fix="give a file written by skyfence")
    if len(data) < 12:
        raise InputError("the journal header is cut short", file=name)
    (n,) = struct.unpack_from("<I", data, 8)
    end = 12 + n + 4
    if len(data) < end:
        raise InputError("the journal header is cut short", file=name)
    body = data[12:12 + n]
    if zlib.crc32(body) != _CRC.unpack_from(data, 12 + n)[0]:
        raise InputError("the journal header fails its CRC check", file=name,
                         fix="the file is damaged at its start; nothing can be replayed")
    doc = json.loads(body)
    scenario = parse_scenario(doc["scenario"], file=f"{name} (header)")
    sources = tuple(Source(id=s["id"], format=s["format"], sensor=s["sensor"],
                           options=dict(s.get("options", {}))) for s in doc["sources"])
    return JournalHeader(scenario=scenario, sources=sources), end


def _record_at(data: bytes | memoryview, pos: int) -> tuple[Record | None, str]:
    """The record starting at ``pos`` (None and why when there is none)."""
    if len(data) - pos < _REC.size:
        return None, "truncated record header"
    sync, n, t, src = _REC.unpack_from(data, pos)
    if sync != SYNC:
        return None, "no sync mark"
    if n > MAX_PAYLOAD_BYTES:
        return None, f"payload length {n} over the {MAX_PAYLOAD_BYTES}-byte limit"
    end = pos + _REC.size + n + _CRC.size
    if end > len(data):
        return None, "truncated record"
    body = bytes(data[pos + 6:pos + _REC.size + n])  # time, source, payload
    if zlib.crc32(body) != _CRC.unpack_from(data, end - _CRC.size)[0]:
        return None, "CRC mismatch"
    return Record(offset=pos, t_receive=t, source=src,
                  payload=bytes(data[pos + _REC.size:pos + _REC.size + n])), ""


def read_journal(path: str | Path) -> tuple[JournalHeader, Iterator[Record | Rejected]]:
    """The journal's header and its records in file order, with a Rejected for each
    damaged stretch (its offset and why) — the reader goes on after it."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"cannot read the journal: {err.strerror}", file=name) from err
    header, pos = _parse_header(data, name)

    def records() -> Iterator[Record | Rejected]:
        p = pos
        n_sources = len(header.sources)
        while p < len(data):
            rec, why = _record_at(data, p)
            if rec is not None and rec.source >= n_sources:
                why = f"source index {rec.source} beyond the header's {n_sources}"
                rec = None
            if rec is not None:
                yield rec
                p += _REC.size + len(rec.payload) + _CRC.size
                continue
            # Resynchronise: the next sync mark at which a whole record checks out.
            q = data.find(SYNC, p + 1)
            while q >= 0 and _record_at(data, q)[0] is None:
                q = data.find(SYNC, q + 1)
            stop = len(data) if q < 0 else q
            yield Rejected(offset=p, reason=f"journal: {why}; {stop - p} bytes skipped",
                           data=data[p:p + 32])
            p = stop

    return header, records()


class JournalWriter:
    """Appends records; each is on disk (flushed, and fsynced when ``durable``) before
    ``append`` returns, so an input acknowledged after it is never lost."""

    def __init__(self, path: str | Path, header: JournalHeader, *, durable: bool = False
                 ) -> None:
        self.path = Path(path)
        self.header = header
        self.durable = durable
        self.records = 0
        if self.path.exists() and self.path.stat().st_size > 0:
            self._f = self._reopen()
        else:
            self._f = open(self.path, "wb")  # noqa: SIM115 - closed in close()
            self._f.write(_header_bytes(header))
            self._sync()

    def _reopen(self) -> IO[bytes]:
        """Open an existing journal for appending, cutting off a damaged tail."""
        old, _ = _parse_header(self.path.read_bytes(), str(self.path))
        if old.to_json() != self.header.to_json():
            raise InputError("the journal was written for other sources or sensors",
                             file=str(self.path), fix="start a new journal file")
        header, records = read_journal(self.path)
        good_end = len(_header_bytes(header))
        for r in records:
            if isinstance(r, Record):
                good_end = r.offset + _REC.size + len(r.payload) + _CRC.size
                self.records += 1
        f = open(self.path, "r+b")  # noqa: SIM115 - closed in close()
        f.truncate(good_end)
        f.seek(good_end)
        return f

    def append(self, t_receive: float, source: int, payload: bytes) -> int:
        """Write one record; its offset in the file."""
        if not 0 <= source < len(self.header.sources):
            raise InputError(f"source index {source} is not one of the journal's "
                             f"{len(self.header.sources)} sources")
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise InputError(f"a {len(payload)}-byte input is over the journal's "
                             f"{MAX_PAYLOAD_BYTES}-byte record limit",
                             fix="split it into smaller reads")
        head = _REC.pack(SYNC, len(payload), t_receive, source)
        crc = zlib.crc32(head[6:] + payload)  # time, source, payload
        offset = self._f.tell()
        self._f.write(head + payload + _CRC.pack(crc))
        self._sync()
        self.records += 1
        return offset

    def _sync(self) -> None:
        self._f.flush()
        if self.durable:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sources_for(scenario: Scenario, sources: Sequence[Source]) -> None:
    """Check that every source names a sensor of the scenario (raises InputError)."""
    ids = scenario.sensor_index()
    for s in sources:
        if s.sensor not in ids:
            raise InputError(f"source {s.id!r} names sensor {s.sensor!r}, which the "
                             "scenario does not have", field="sensor",
                             fix=f"use one of {', '.join(sorted(ids))}")
