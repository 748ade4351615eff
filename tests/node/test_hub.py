"""The stream hub: sequence numbers, resume, snapshots, slow clients cut off."""

from __future__ import annotations

import asyncio

from skyfence.node.hub import Hub


def test_resume_gets_exactly_what_was_missed() -> None:
    async def main() -> None:
        hub = Hub(history=10, client_queue=100)
        for k in range(5):
            hub.publish({"type": "update", "k": k})
        sub = hub.subscribe(last_seq=2)
        assert [m["seq"] for m in sub.backlog] == [3, 4, 5] and not sub.needs_snapshot
        hub.publish({"type": "update", "k": 5})
        assert (await sub.queue.get())["seq"] == 6
        assert hub.subscribe(last_seq=6).backlog == []
        assert hub.subscribe(last_seq=None).needs_snapshot
        for k in range(20):
            hub.publish({"k": k})
        old = hub.subscribe(last_seq=3)  # left the ring
        assert old.needs_snapshot and old.backlog == []
        current = hub.subscribe(last_seq=hub.seq)
        assert not current.needs_snapshot and current.backlog == []

    asyncio.run(main())


def test_a_slow_client_is_cut_off_and_others_go_on() -> None:
    async def main() -> None:
        hub = Hub(history=100, client_queue=4)
        slow, fast = hub.subscribe(last_seq=0), hub.subscribe(last_seq=0)
        got = []
        for k in range(10):
            hub.publish({"k": k})
            got.append(await fast.queue.get())
        assert [m["seq"] for m in got] == list(range(1, 11))
        assert slow.dropped and hub.dropped_clients == 1 and hub.clients == 1
        msg = slow.queue.get_nowait()
        assert msg["type"] == "resync" and slow.queue.empty()

    asyncio.run(main())
