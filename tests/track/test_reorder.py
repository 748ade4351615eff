"""Reorder window: time order out, late data handed back and counted, nothing lost."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.track.reorder import ReorderBuffer
from skyfence.types import Detections


def _det(t: list[float], sensor: list[int]) -> Detections:
    n = len(t)
    z = np.zeros((n, 3))
    z[:, 0] = np.arange(n)  # a tag to follow each detection
    return Detections(t=np.asarray(t, dtype=float), sensor=np.asarray(sensor, dtype=np.int32),
                      z=z, R=np.tile(np.eye(3), (n, 1, 1)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.integers(0, 3)), min_size=1, max_size=60),
       st.floats(0.0, 1.0), st.randoms(use_true_random=False))
def test_jitter_within_the_window_comes_out_sorted_and_complete(
        rows: list[tuple[float, int]], jitter: float, rnd) -> None:  # type: ignore[no-untyped-def]
    """Arrival order shuffled by less than the window: output = input sorted by time."""
    rows = sorted(rows)
    # Each detection arrives up to `jitter` s after its time (so out of order).
    arrival = [t + rnd.random() * jitter for t, _ in rows]
    order = sorted(range(len(rows)), key=lambda i: arrival[i])
    det = _det([rows[i][0] for i in order], [rows[i][1] for i in order])
    buf = ReorderBuffer(window_s=1.0)
    out = []
    for i in range(len(det)):
        r = buf.push(det.take(slice(i, i + 1)), now=arrival[order[i]])
        assert len(r.late) == 0
        out.append(r.ready)
    out.append(buf.flush())
    got = Detections.concatenate(out)
    assert np.all(np.diff(got.t) >= 0)
    assert sorted(got.z[:, 0].tolist()) == list(range(len(det)))
    assert buf.held == 0


def test_late_data_is_handed_back_and_counted() -> None:
    buf = ReorderBuffer(window_s=1.0)
    assert len(buf.push(_det([10.0, 10.5], [0, 1])).ready) == 0
    r = buf.push(_det([12.0], [0]))
    assert r.ready.t.tolist() == [10.0, 10.5]
    r = buf.push(_det([10.2, 11.5], [2, 1]))
    assert r.late.t.tolist() == [10.2] and r.late.sensor.tolist() == [2]
    assert buf.late_count == {2: 1}
    assert buf.flush().t.tolist() == [11.5, 12.0]


def test_the_wall_clock_drains_a_quiet_stream() -> None:
    buf = ReorderBuffer(window_s=0.5)
    assert len(buf.push(_det([5.0], [0]), now=5.1).ready) == 0
    assert buf.push(_det([], []), now=5.6).ready.t.tolist() == [5.0]


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window_s"):
        ReorderBuffer(window_s=-1.0)
