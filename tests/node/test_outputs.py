"""Picture outputs: at most one picture per period, newest wins while busy, a failure is
counted and the next picture goes out."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from skyfence.node.outputs import PictureOutput


class _Slow(PictureOutput):
    def __init__(self, fail_at: set[float]) -> None:
        super().__init__("slow", period_s=1.0)
        self.sent: list[float] = []
        self.fail_at = fail_at

    async def _emit(self, frame: Any, breaching: frozenset[int]) -> None:
        await asyncio.sleep(0.05)
        if frame.t in self.fail_at:
            raise OSError("disk full")
        self.sent.append(frame.t)


def _update(t: float) -> Any:
    return SimpleNamespace(t=t, frame=SimpleNamespace(t=t))


def test_rate_newest_wins_and_failures_are_counted() -> None:
    async def main() -> _Slow:
        out = _Slow(fail_at=set())
        # Looks every 0.25 s of data time: one picture per second is taken (0, 1, 2, 3,
        # 4), and all arrive before the output starts: only the newest is sent.
        for k in range(17):
            out.publish(_update(k * 0.25))
        await asyncio.sleep(0.5)
        for t in (5.0, 6.0, 7.0):
            out.publish(_update(t))
        await asyncio.sleep(0.5)
        out.publish(_update(3.0 + 10.0))
        await asyncio.sleep(0.2)
        await out.close()
        return out

    out = asyncio.run(main())
    assert out.sent == [4.0, 7.0, 13.0]
    assert out.stats.skipped == 6  # 0, 1, 2, 3 and 5, 6: replaced by a newer picture
    assert out.stats.pictures == 3 and out.stats.failed == 0


def test_a_failing_output_is_counted_and_goes_on() -> None:
    async def main() -> _Slow:
        out = _Slow(fail_at={1.0})
        for t in (0.0, 1.0, 2.0):
            out.publish(_update(t))
            await asyncio.sleep(0.1)
        await out.close()
        return out

    out = asyncio.run(main())
    assert out.sent == [0.0, 2.0]
    assert out.stats.failed == 1 and "disk full" in out.stats.last_error
