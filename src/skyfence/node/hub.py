"""The node's stream: every message published gets the next sequence number and is
kept in a ring for a while, so that a client that reconnects with the last number it
saw gets exactly what it missed — or, when that has left the ring, is told to take a
fresh snapshot. A slow client never stalls the engine: its queue is bounded, and when
it overflows the client is cut off with a ``resync`` message instead.

A message is encoded to JSON once, when published, for every client and for the ring:
the ring keeps that text, not the objects it was made from (a picture of 1,000 tracks
is some 30,000 Python objects, which would be kept for the ring's whole length and
walked by every full garbage collection).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson


class Message(Mapping[str, Any]):
    """One published message: ``seq``, ``type`` and its JSON ``text``. It reads as the
    mapping it was made from (decoded from the text on each use: for tests and tools;
    the stream sends the text)."""

    __slots__ = ("seq", "text", "type")

    def __init__(self, seq: int, type: str, text: str) -> None:
        self.seq = seq
        self.type = type
        self.text = text

    @classmethod
    def encode(cls, message: Mapping[str, Any], seq: int) -> Message:
        """``message`` stamped with ``seq`` (in place of any it had) and encoded."""
        stamped = {**message, "seq": seq}
        return cls(seq, str(stamped.get("type", "")), encode(stamped))

    def __getitem__(self, key: str) -> Any:
        if key == "seq":
            return self.seq
        return json.loads(self.text)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(json.loads(self.text))

    def __len__(self) -> int:
        return len(json.loads(self.text))

    def __repr__(self) -> str:
        return f"Message(seq={self.seq}, type={self.type!r}, {len(self.text)} chars)"


def encode(message: Mapping[str, Any]) -> str:
    """A message as the stream sends it: compact JSON (orjson: the same text as the
    standard library's compact form, but NaN, which JSON has not, becomes null)."""
    return orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS).decode()


@dataclass(eq=False)
class Subscription:
    """One client's place in the stream: ``queue`` of messages; ``backlog`` what it
    missed (already in order); ``needs_snapshot`` when the backlog could not be given."""

    queue: asyncio.Queue[Message]
    backlog: list[Message] = field(default_factory=list)
    needs_snapshot: bool = False
    dropped: bool = False


class Hub:
    def __init__(self, *, history: int = 2000, client_queue: int = 256) -> None:
        self.seq = 0
        self._ring: deque[Message] = deque(maxlen=history)
        self._subs: set[Subscription] = set()
        self.client_queue = client_queue
        self.dropped_clients = 0

    def publish(self, message: Mapping[str, Any]) -> Message:
        """Stamp the message with the next ``seq``, encode it, keep it, hand it to every
        client."""
        self.seq += 1
        msg = Message.encode(message, self.seq)
        self._ring.append(msg)
        for sub in list(self._subs):
            try:
                sub.queue.put_nowait(msg)
            except asyncio.QueueFull:
                # Too slow: cut off, to resynchronise from a snapshot.
                self._subs.discard(sub)
                sub.dropped = True
                self.dropped_clients += 1
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                sub.queue.put_nowait(Message.encode(
                    {"type": "resync", "seq": self.seq,
                     "reason": "client too slow: take a snapshot"}, self.seq))
        return msg

    def subscribe(self, last_seq: int | None = None) -> Subscription:
        """A new client, or one coming back after ``last_seq``."""
        sub = Subscription(queue=asyncio.Queue(maxsize=self.client_queue))
        if last_seq is None:
            sub.needs_snapshot = True
        elif last_seq < self.seq:
            oldest = self._ring[0].seq if self._ring else self.seq + 1
            if last_seq + 1 >= oldest:
                sub.backlog = [m for m in self._ring if m.seq > last_seq]
            else:
                sub.needs_snapshot = True
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    @property
    def clients(self) -> int:
        return len(self._subs)
