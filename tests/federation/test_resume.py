"""Exactly once across a hard crash: a node that took a partner's picture and died
before acking it gets the picture again from the broker after its restart, and
refuses it as a replay, because the time of the last picture it took from each
sender outlives it (``LastTaken``, beside its store)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from skyfence import sim
from skyfence.adapters.journal import Source
from skyfence.federation import nats as fed_nats
from skyfence.federation.codec import PictureDecoder, encode_picture, message_time
from skyfence.federation.nats import (
    Federation,
    FederationConfig,
    LastTaken,
    Receive,
    last_taken_path,
    stream_name,
    subject,
)
from skyfence.node.run import federation_task
from skyfence.node.service import NodeService
from skyfence.picture import Picture
from skyfence.pipeline import batch_bounds
from skyfence.scenario import SensorSpec
from skyfence.store.sqlite import SqliteStore
from skyfence.track import Tracker

from .conftest import Broker


def test_last_taken_is_kept_and_a_damaged_file_is_survived(tmp_path: Path) -> None:
    path = tmp_path / "army.federation.json"
    kept = LastTaken(path)
    assert kept.get("police") == -math.inf
    kept.note("police", 100.5)
    kept.note("airport", 7.0)
    kept.note("police", 101.5)
    assert LastTaken(path).times == {"police": 101.5, "airport": 7.0}
    assert not path.with_name(path.name + ".tmp").exists()
    path.write_text('{"police": 1')  # half a file (written by other means)
    assert LastTaken(path).times == {}
    path.write_text('{"police": "x", "army": NaN, "airport": 3}')
    assert LastTaken(path).times == {"airport": 3.0}
    assert last_taken_path(tmp_path / "army.db") == tmp_path / "army.federation.json"


def _pictures(n_targets: int, seconds: float) -> tuple[Any, list[bytes]]:
    r = sim.build("spread", n_targets=n_targets, seed=11, duration_s=seconds)
    tracker, picture = Tracker.from_scenario(r.scenario), Picture.for_scenario(r.scenario)
    out = []
    for a, b in zip(*batch_bounds(r.detections.t), strict=True):
        frame = picture.update(tracker.step(r.detections.take(slice(a, b))))
        out.append(encode_picture(frame, r.scenario.origin, sender="police",
                                  recipient="army", node="police-hq"))
    return r.scenario, out


class _CrashBeforeAck(Federation):
    """Takes one message and never acks it: the process frozen, then killed."""

    def __init__(self, config: FederationConfig) -> None:
        super().__init__(config)
        self.took = asyncio.Event()

    async def _take(self, sender: str, msg: Any, deliver: Any) -> None:
        await deliver(msg.data)
        self.took.set()
        await asyncio.Event().wait()


def test_a_picture_taken_before_a_crash_is_not_taken_again(
        broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The broker gives an unacked message again after ack_wait: 1 s here, not 5.
    monkeypatch.setattr(fed_nats, "ACK_WAIT_S", 1.0)
    scenario, pictures = _pictures(4, 8.0)
    fed_sensor = SensorSpec(id="fed-police", kind="track", position_enu_m=(0.0, 0.0, 0.0),
                            pd=1.0, noise_std=(math.nan, math.nan, math.nan))
    sc = replace(scenario, name="army-hq", sensors=(fed_sensor,))
    config = FederationConfig(url=broker.url, partner="army", node="army-hq", user="army",
                              password=broker.passwords["army"],
                              receive=(Receive(sender="police"),))

    def army(federation: Federation) -> NodeService:
        service = NodeService(sc, [Source(id="fed-police", format="skyfence-picture",
                                          sensor="fed-police",
                                          options={"partner": "police", "recipient": "army"})],
                              store=SqliteStore(tmp_path / "army.db"), clock=time.time)
        service.federation = federation
        return service

    def decoder(service: NodeService) -> PictureDecoder:
        dec = service.sources["fed-police"].ingest.decoder
        assert isinstance(dec, PictureDecoder)
        return dec

    async def publish(payloads: list[bytes]) -> None:
        police = Federation(FederationConfig(url=broker.url, partner="police", node="p",
                                             user="police",
                                             password=broker.passwords["police"]))
        await police.connect()
        for p in payloads:
            await police.js.publish(subject("police", "army"), p,
                                    headers={"Nats-Msg-Id": f"police.army.{message_time(p)}"})
        await police.close()

    async def until(check: Any, what: str) -> None:
        deadline = time.monotonic() + 20.0
        while not check():
            assert time.monotonic() < deadline, f"{what} did not happen within 20 s"
            await asyncio.sleep(0.02)

    async def on_the_broker(fed: Federation) -> None:
        deadline = time.monotonic() + 20.0
        while True:
            if fed.js is not None:
                with contextlib.suppress(Exception):
                    await fed.js.stream_info(stream_name("army"))
                    return
            assert time.monotonic() < deadline, "army's node did not get on the broker"
            await asyncio.sleep(0.05)

    async def main() -> tuple[list[float], list[float], dict[str, int]]:
        first = army(crashing := _CrashBeforeAck(config))
        tasks = [asyncio.create_task(first.run(tick_s=0.05)),
                 asyncio.create_task(federation_task(first, crashing))]
        await on_the_broker(crashing)
        await publish(pictures[:3])
        await crashing.took.wait()
        await until(lambda: decoder(first).counters["accepted"] == 1, "the first take")
        taken_before = [decoder(first).last_t]
        # The hard crash: nothing of the node runs on, its connection drops, no ack.
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await crashing.close()
        first.close()

        second = army(Federation(config))  # a fresh node: fresh decoders
        tasks = [asyncio.create_task(second.run(tick_s=0.05)),
                 asyncio.create_task(federation_task(second, second.federation))]
        await publish(pictures[3:5])
        dec = decoder(second)
        await until(lambda: dec.counters["accepted"] >= 4, "catching up")
        await asyncio.sleep(0.3)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        received = dict(second.federation.received)  # type: ignore[attr-defined]
        await second.federation.close()  # type: ignore[attr-defined]
        rejected = dict(second.sources["fed-police"].rejected)
        taken_after = LastTaken(last_taken_path(tmp_path / "army.db")).times
        second.close()
        return taken_before, [taken_after.get("police", math.nan)], {**rejected, **{
            "accepted": dec.counters["accepted"], "received": received.get("police", 0)}}

    before, after, counts = asyncio.run(main())
    times = [message_time(p) for p in pictures[:5]]
    # The picture taken before the crash came again and was refused as a replay; the
    # other four were taken once each.
    assert counts.get("replayed or reordered") == 1 and counts["accepted"] == 4, counts
    assert counts["received"] == 5
    assert before == times[:1] and after == times[4:5]
