from __future__ import annotations

from skyfence.sim.seeding import stream


def test_streams_are_reproducible_and_independent() -> None:
    a = stream(0, "sensor/radar").random(4)
    assert (a == stream(0, "sensor/radar").random(4)).all()
    assert not (a == stream(1, "sensor/radar").random(4)).any()
    assert not (a == stream(0, "sensor/locator").random(4)).any()
