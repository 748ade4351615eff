"""SAPIENT (BSI Flex 335 v2.0) framing: a pure parse/encode pair over bytes and a
stream decoder.

On the wire each message is a serialized ``SapientMessage`` preceded by its length,
a 4-byte little-endian unsigned integer. Nothing else marks a frame, so a stream
that has lost its place (a length beyond ``max_message_bytes``, a payload that is
not protobuf) is resynchronised by hunting: byte by byte for a header whose payload
decodes as a ``SapientMessage`` with a node id and a content. Hunting has a budget
of bytes; past it the stream is lost and the decoder says so (the TCP transport
then drops the connection). Memory stays within one frame: the decoder never
holds more than ``4 + max_message_bytes`` bytes, whatever a peer sends.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError

from skyfence.adapters.base import Counters, Message, Rejected
from skyfence.adapters.sapient.proto.sapient_message_pb2 import SapientMessage
from skyfence.errors import SkyfenceError

HEADER = struct.Struct("<I")
HEADER_BYTES = HEADER.size
#: Largest payload accepted by default (1 MiB).
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
#: Bytes a decoder may skip while hunting for the next frame before it gives up.
DEFAULT_MAX_RESYNC_BYTES = 1 << 20


class SapientError(SkyfenceError):
    """A SAPIENT message that cannot be encoded or a node configuration that is wrong."""


@dataclass(frozen=True, slots=True)
class SapientFrame:
    """One decoded message: where its length header started in the stream, its
    payload size, and the message."""

    offset: int
    size_bytes: int
    message: SapientMessage

    @property
    def kind(self) -> str:
        """Which content it carries (``detection_report``, …); "" when none."""
        return self.message.WhichOneof("content") or ""

    def to_json(self) -> dict[str, Any]:
        return {"offset": self.offset, "size_bytes": self.size_bytes, "kind": self.kind,
                "message": MessageToDict(self.message, preserving_proto_field_name=True)}


@dataclass(frozen=True, slots=True)
class Scan:
    """What :func:`scan` made of a buffer: records in stream order, how many bytes it
    consumed (the rest is an unfinished frame or an unchecked candidate), and the
    hunting state to pass to the next call."""

    records: list[SapientFrame | Rejected]
    consumed: int
    hunting: bool
    skipped: int
    hunt_start: int


def _plausible(payload: memoryview) -> bool:
    """Whether a candidate payload found while hunting is a real message."""
    try:
        msg = SapientMessage.FromString(cast(bytes, payload))  # any buffer will do
    except DecodeError:
        return False
    return bool(msg.node_id) and msg.WhichOneof("content") is not None


def _hunt(buf: bytes, view: memoryview, start: int, max_message_bytes: int
          ) -> tuple[int | None, int]:
    """The first offset from ``start`` holding a complete plausible frame, if any, and
    where to resume when there is none: the first candidate still waiting for its
    payload, else the last 3 bytes (a header's beginning).

    A complete, checked frame further on wins over an earlier candidate that cannot be
    checked yet: a stray length in garbage would otherwise hold the stream up for up
    to ``max_message_bytes``."""
    n = len(buf)
    if n - start < HEADER_BYTES:
        return None, start
    b = np.frombuffer(buf, dtype=np.uint8, count=n, offset=0)[start:].astype(np.uint32)
    lengths = b[:-3] | (b[1:-2] << 8) | (b[2:-1] << 16) | (b[3:] << 24)
    waiting: int | None = None
    for k in np.flatnonzero((lengths > 0) & (lengths <= max_message_bytes)).tolist():
        pos = start + k
        end = pos + HEADER_BYTES + int(lengths[k])
        if end > n:
            if waiting is None:
                waiting = pos
        elif _plausible(view[pos + HEADER_BYTES:end]):
            return pos, pos
    return None, waiting if waiting is not None else n - HEADER_BYTES + 1


def scan(buf: bytes, *, offset: int = 0, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
         hunting: bool = False, skipped: int = 0, hunt_start: int = 0) -> Scan:
    """Frames of ``buf`` (whose first byte is at stream offset ``offset``).

    In sync, a length beyond ``max_message_bytes`` or an undecodable payload is a
    rejection and starts a hunt one byte further on; a zero length is a rejection
    and the stream goes on. Hunting, a candidate counts only when its whole payload
    is in ``buf`` and decodes with a node id and a content; the skipped bytes are
    reported as one ``resync`` rejection when the hunt ends.
    """
    records: list[SapientFrame | Rejected] = []
    view = memoryview(buf)
    n = len(buf)
    pos = 0
    unpack = HEADER.unpack_from
    from_string = SapientMessage.FromString
    while n - pos >= HEADER_BYTES:
        if hunting:
            found, resume = _hunt(buf, view, pos, max_message_bytes)
            skipped += resume - pos
            pos = resume
            if found is None:
                break
            records.append(Rejected(hunt_start, f"resync: skipped {skipped} bytes "
                                    "to the next frame"))
            hunting = False
        (length,) = unpack(buf, pos)
        end = pos + HEADER_BYTES + length
        if length > max_message_bytes:
            records.append(Rejected(offset + pos, f"oversize: length {length} > "
                                    f"{max_message_bytes} bytes", bytes(view[pos:pos + 32])))
        elif length == 0:
            records.append(Rejected(offset + pos, "empty: zero-length frame"))
            pos += HEADER_BYTES
            continue
        elif end > n:
            break
        else:
            try:
                msg = from_string(cast(bytes, view[pos + HEADER_BYTES:end]))
            except DecodeError as exc:
                records.append(Rejected(offset + pos, f"undecodable: {exc}",
                                        bytes(view[pos:pos + 32])))
            else:
                records.append(SapientFrame(offset + pos, length, msg))
                pos = end
                continue
        hunting, skipped, hunt_start = True, 1, offset + pos
        pos += 1
    view.release()
    return Scan(records, pos, hunting, skipped, hunt_start)


def parse(buf: bytes, *, offset: int = 0, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
          ) -> tuple[list[SapientFrame | Rejected], bytes]:
    """Frames and rejections in ``buf``, and the unconsumed remainder (an unfinished
    frame). A whole buffer in one call; for a stream use :class:`SapientDecoder`,
    which carries the hunting state from one chunk to the next."""
    s = scan(buf, offset=offset, max_message_bytes=max_message_bytes)
    return s.records, bytes(buf[s.consumed:])


def encode(msg: SapientMessage, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes:
    """One frame: the 4-byte little-endian length, then the serialized message."""
    payload = msg.SerializeToString()
    if len(payload) > max_message_bytes:
        raise SapientError(f"message of {len(payload)} bytes exceeds the "
                           f"{max_message_bytes}-byte limit; split the report")
    return HEADER.pack(len(payload)) + payload


class SapientDecoder:
    """A :class:`~skyfence.adapters.base.StreamDecoder` for SAPIENT frames.

    ``lost`` turns true when a hunt for the next frame has gone through more than
    ``max_resync_bytes`` without finding one: everything after is discarded (the
    transport closes the connection).
    """

    def __init__(self, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 max_resync_bytes: int = DEFAULT_MAX_RESYNC_BYTES) -> None:
        if max_message_bytes < 1 or max_resync_bytes < 1:
            raise SapientError("max_message_bytes and max_resync_bytes must be positive")
        self.max_message_bytes = max_message_bytes
        self.max_resync_bytes = max_resync_bytes
        self.counters = Counters()
        self.lost = False
        self._buf = b""
        self._offset = 0  # stream offset of self._buf[0]
        self._hunting = False
        self._skipped = 0
        self._hunt_start = 0

    def _count(self, records: list[SapientFrame | Rejected]) -> None:
        for r in records:
            if isinstance(r, Rejected):
                self.counters.reject(r.reason)
            else:
                self.counters.accepted += 1

    def feed(self, data: bytes) -> list[Message | Rejected]:
        self.counters.bytes_in += len(data)
        if self.lost:
            return []
        buf = self._buf + data if self._buf else bytes(data)
        s = scan(buf, offset=self._offset, max_message_bytes=self.max_message_bytes,
                 hunting=self._hunting, skipped=self._skipped, hunt_start=self._hunt_start)
        records = s.records
        self._hunting, self._skipped, self._hunt_start = s.hunting, s.skipped, s.hunt_start
        self._buf = buf[s.consumed:]
        self._offset += s.consumed
        behind = self._offset + len(self._buf) - self._hunt_start
        if self._hunting and behind > self.max_resync_bytes:
            records.append(Rejected(self._hunt_start, f"desync: no frame found in "
                                    f"{behind} bytes; stream abandoned"))
            self.lost, self._buf = True, b""
        self._count(records)
        return list(records)

    def close(self) -> list[Message | Rejected]:
        records: list[SapientFrame | Rejected] = []
        if self._hunting and not self.lost:
            records.append(Rejected(self._hunt_start, f"resync: skipped "
                                    f"{self._skipped + len(self._buf)} bytes to the end"))
        elif self._buf and not self.lost:
            records.append(Rejected(self._offset, f"truncated: {len(self._buf)} bytes of an "
                                    "unfinished frame at the end", self._buf[:32]))
        self._buf, self._hunting = b"", False
        self._count(records)
        return list(records)
