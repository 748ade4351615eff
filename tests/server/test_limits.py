"""The token bucket: a burst at once, then the rate; buckets per client; idle ones go."""

from __future__ import annotations

import pytest

from skyfence.server.limits import TokenBuckets


def test_a_burst_then_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate_per_s=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # empty: one token in 0.5 s
    assert buckets.take("b") == 0.0  # another client, its own bucket
    now[0] = 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0.0
    now[0] = 100.0  # refilled, but never beyond the burst
    assert [buckets.take("a") for _ in range(4)][-1] > 0.0


def test_idle_clients_are_forgotten() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate_per_s=1.0, burst=2, clock=lambda: now[0], max_clients=10)
    for k in range(11):
        buckets.take(f"client {k}")
    now[0] = 5.0  # every bucket full again
    buckets.take("late")
    buckets.take("later")
    assert len(buckets._buckets) <= 2
