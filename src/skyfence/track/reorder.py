"""The reorder window: asynchronous sensors in, one time-ordered stream out.

Sensors report late and out of step (a camera's frame pipeline, a direction
finder's integration time, a network). The tracker needs time order, so
detections wait here until the stream's clock has moved ``window_s`` past
them, then leave sorted by time and sensor. A detection older than what has
already left is late: it is not dropped in silence but handed back in
``Released.late`` and counted per sensor, for the caller to report and store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from skyfence.types import Detections


@dataclass(frozen=True, slots=True)
class Released:
    """What one ``push`` lets through: ``ready`` in time order, and ``late`` detections
    (older than data already released), in arrival order."""

    ready: Detections
    late: Detections


@dataclass(slots=True)
class ReorderBuffer:
    """Holds detections for ``window_s`` of stream time, releases them sorted.

    The clock is the latest detection time seen, or the caller's ``now`` (wall
    clock, s) when that is later: a quiet stream still drains.
    """

    window_s: float = 1.0
    #: Late detections per sensor index, over the buffer's life.
    late_count: dict[int, int] = field(default_factory=dict)
    released_until: float = -np.inf
    _held: list[Detections] = field(default_factory=list)
    _clock: float = -np.inf

    def __post_init__(self) -> None:
        if not self.window_s >= 0.0:
            raise ValueError(f"window_s must be ≥ 0, not {self.window_s!r}")

    def push(self, det: Detections, *, now: float | None = None) -> Released:
        late_mask = det.t < self.released_until
        late = det.take(late_mask)
        if len(late):
            sensors, counts = np.unique(late.sensor, return_counts=True)
            for s, c in zip(sensors.tolist(), counts.tolist(), strict=True):
                self.late_count[s] = self.late_count.get(s, 0) + c
        on_time = det.take(~late_mask)
        if len(on_time):
            self._held.append(on_time)
            self._clock = max(self._clock, float(on_time.t.max()))
        if now is not None:
            self._clock = max(self._clock, now)
        return Released(ready=self._release(self._clock - self.window_s), late=late)

    def flush(self) -> Detections:
        """Everything still held, in order (end of a file or shutdown)."""
        return self._release(np.inf)

    @property
    def next_release_t(self) -> float:
        """When (on the buffer's clock) the oldest held detection may go; inf when
        nothing is held."""
        if not self._held:
            return np.inf
        return min(float(d.t.min()) for d in self._held if len(d)) + self.window_s

    @property
    def held(self) -> int:
        return sum(len(d) for d in self._held)

    def _release(self, until: float) -> Detections:
        if not self._held:
            return Detections.empty()
        pool = Detections.concatenate(self._held)
        go = pool.t <= until
        if not go.any():
            self._held = [pool]
            return Detections.empty()
        out = pool.take(go)
        self._held = [pool.take(~go)] if not go.all() else []
        order: NDArray[np.intp] = np.lexsort((out.sensor, out.t))  # stable within a sensor
        out = out.take(order)
        self.released_until = max(self.released_until, float(out.t[-1]))
        return out
