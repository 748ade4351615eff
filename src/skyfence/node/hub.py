"""The node's stream: every message published gets the next sequence number and is
kept in a ring for a while, so that a client that reconnects with the last number it
saw gets exactly what it missed — or, when that has left the ring, is told to take a
fresh snapshot. A slow client never stalls the engine: its queue is bounded, and when
it overflows the client is cut off with a ``resync`` message instead.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Subscription:
    """One client's place in the stream: ``queue`` of messages (dicts with ``seq``);
    ``backlog`` what it missed (already in order); ``needs_snapshot`` when the backlog
    could not be given."""

    queue: asyncio.Queue[dict[str, Any]]
    backlog: list[dict[str, Any]] = field(default_factory=list)
    needs_snapshot: bool = False
    dropped: bool = False


class Hub:
    def __init__(self, *, history: int = 2000, client_queue: int = 256) -> None:
        self.seq = 0
        self._ring: deque[dict[str, Any]] = deque(maxlen=history)
        self._subs: set[Subscription] = set()
        self.client_queue = client_queue
        self.dropped_clients = 0

    def publish(self, message: dict[str, Any]) -> dict[str, Any]:
        """Stamp the message with the next ``seq``, keep it, hand it to every client."""
        self.seq += 1
        msg = {**message, "seq": self.seq}
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
                sub.queue.put_nowait({"type": "resync", "seq": self.seq,
                                      "reason": "client too slow: take a snapshot"})
        return msg

    def subscribe(self, last_seq: int | None = None) -> Subscription:
        """A new client, or one coming back after ``last_seq``."""
        sub = Subscription(queue=asyncio.Queue(maxsize=self.client_queue))
        if last_seq is None:
            sub.needs_snapshot = True
        elif last_seq < self.seq:
            oldest = self._ring[0]["seq"] if self._ring else self.seq + 1
            if last_seq + 1 >= oldest:
                sub.backlog = [m for m in self._ring if m["seq"] > last_seq]
            else:
                sub.needs_snapshot = True
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    @property
    def clients(self) -> int:
        return len(self._subs)
