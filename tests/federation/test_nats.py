"""Federation against a real nats-server with JetStream: three nodes of three partners
share what each releases; the broker refuses a partner what is not addressed to it;
a node that was down catches up without loss and without duplicates."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from skyfence import sim
from skyfence.adapters.journal import Source
from skyfence.federation.codec import message_time
from skyfence.federation.nats import (
    Federation,
    FederationConfig,
    Receive,
    Send,
    stream_name,
    subject,
)
from skyfence.geo import Origin
from skyfence.node.partners import Partner, Releasability
from skyfence.node.run import jsonl_payloads
from skyfence.node.service import NodeService
from skyfence.scenario import Scenario, SensorSpec

from .conftest import Broker


def _fed_sensor(sender: str) -> SensorSpec:
    return SensorSpec(id=f"fed-{sender}", kind="track", position_enu_m=(0.0, 0.0, 0.0),
                      pd=1.0, noise_std=(math.nan, math.nan, math.nan))


@dataclass
class Node:
    service: NodeService
    federation: Federation
    tasks: list[asyncio.Task[Any]]
    #: the picture time of each message taken from the broker, in order
    delivered: list[float]

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.service.close_outputs()
        await self.federation.close()
        self.service.close()


async def _node(broker: Broker, partner: str, scenario: Scenario, *, send: tuple[Send, ...] = (),
                receive: tuple[Receive, ...] = (), release: Releasability | None = None,
                name: str | None = None) -> Node:
    """A node speaking for ``partner``: its own sensors, plus a ``fed-<sender>`` track
    sensor per partner it hears (owned by itself, released to nobody)."""
    fed_sensors = tuple(_fed_sensor(r.sender) for r in receive)
    sc = replace(scenario, sensors=(*scenario.sensors, *fed_sensors))
    if release is not None:
        home = release.partners[0].id
        release = Releasability(release.partners,
                                {**release.owner, **{s.id: home for s in fed_sensors}},
                                dict(release.release))
    fed = Federation(FederationConfig(url=broker.url, partner=partner, node=name or partner,
                                      user=partner, password=broker.passwords[partner],
                                      cafile=broker.cafile, certfile=broker.certfile,
                                      keyfile=broker.keyfile, send=send, receive=receive))
    await fed.connect()
    await fed.ensure_stream()
    outputs = {s.to: [fed.output(s, sc.origin)] for s in send}
    sources = [Source(id=f"sim-{s.id}", format="jsonl", sensor=s.id) for s in scenario.sensors]
    sources += [Source(id=r.sensor, format="skyfence-picture", sensor=r.sensor,
                       options={"partner": r.sender, "recipient": partner})
                for r in receive]
    service = NodeService(sc, sources, release=release, view_outputs=outputs,
                          clock=time.time)
    await service.start_outputs()
    tasks = [asyncio.create_task(service.run(tick_s=0.05))]
    delivered: list[float] = []

    for r in receive:
        async def deliver(payload: bytes, r: Receive = r) -> None:
            await service.ingest(r.sensor, payload)
            delivered.append(message_time(payload))  # taken by the node

        tasks.append(asyncio.create_task(fed.receive(r, deliver)))
    return Node(service, fed, tasks, delivered)


async def _feed(node: Node, payloads: list[tuple[float, str, bytes]]) -> None:
    for t, sid, payload in payloads:
        await node.service.ingest(sid, payload, t)
        await asyncio.sleep(0)


async def _until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        await asyncio.sleep(0.05)


def _lat_lon(rows: list[dict[str, Any]]) -> np.ndarray:
    return np.array([[r["lat_deg"], r["lon_deg"]] for r in rows])


def test_three_partners_share_what_each_releases(broker: Broker) -> None:
    r = sim.build("spread", n_targets=6, seed=2, duration_s=20.0)
    sc = replace(r.scenario, name="police-hq")
    payloads = jsonl_payloads(sc, r.detections)
    # police releases its radar to army, not to airport.
    release = Releasability((Partner("police"), Partner("army"), Partner("airport")),
                            {"radar": "police"}, {"radar": frozenset({"army"})})
    far = Origin(sc.origin.lat_deg + 0.03, sc.origin.lon_deg - 0.02, sc.origin.alt_m + 30.0)
    only_fed = replace(sc, sensors=(), origin=far)

    async def main() -> tuple[Any, ...]:
        a = await _node(broker, "police", sc, release=release,
                        send=(Send(to="army"), Send(to="airport")))
        b = await _node(broker, "army", only_fed, receive=(Receive(sender="police"),))
        c = await _node(broker, "airport", replace(only_fed, origin=sc.origin),
                        receive=(Receive(sender="police"),))
        try:
            await _feed(a, payloads)
            await _until(lambda: len(a.service.snapshot("army")["tracks"]) >= 5, 20.0,
                         "army's view at police")
            await _until(lambda: len(b.service.snapshot()["tracks"])
                         >= len(a.service.snapshot("army")["tracks"]) - 1, 20.0,
                         "police's tracks at army")
            await asyncio.sleep(1.0)
            return (a.service.snapshot("army"), b.service.snapshot(), c.service.snapshot(),
                    a.service.snapshot("airport"), b.delivered, c.delivered)
        finally:
            for n in (a, b, c):
                await n.stop()

    at_police, at_army, at_airport, airport_view, to_army, to_airport = asyncio.run(main())
    # army sees police's radar picture, where police has it, in its own frame.
    mine, theirs = _lat_lon(at_police["tracks"]), _lat_lon(at_army["tracks"])
    d = np.abs(mine[:, None, :] - theirs[None, :, :]).max(axis=2).min(axis=1)
    assert np.median(d) < 0.002, d  # about 200 m at most in latitude/longitude
    assert len(to_army) >= 10
    # airport has nothing released: police computes it an empty picture and sends it
    # nothing at all, not even the timing of police's own updates.
    assert airport_view["tracks"] == [] and at_airport["tracks"] == [] and to_airport == []


def test_the_broker_refuses_what_is_not_addressed_to_a_partner(broker: Broker) -> None:
    import nats
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.errors import Error as JsError

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        # airport's stream exists (its node made it), with something in it.
        airport = Federation(FederationConfig(url=broker.url, partner="airport", node="ap",
                                              user="airport", password="pw-airport"))
        await airport.connect()
        await airport.ensure_stream()
        police = Federation(FederationConfig(url=broker.url, partner="police", node="po",
                                             user="police", password="pw-police"))
        await police.connect()
        await police.js.publish(subject("police", "airport"), b"{}",
                                headers={"Nats-Msg-Id": "x1"})
        errors: list[str] = []

        async def on_error(err: Exception) -> None:
            errors.append(str(err))

        army = await nats.connect(broker.url, user="army", password="pw-army",
                                  inbox_prefix=b"_INBOX_army", error_cb=on_error)
        js = army.jetstream(timeout=2.0)
        # A plain subscription to another partner's subject.
        got: list[bytes] = []

        async def spy(msg: Any) -> None:
            got.append(msg.data)

        await army.subscribe(subject("police", "airport"), cb=spy)
        # A consumer on another partner's stream.
        try:
            await js.pull_subscribe(subject("police", "airport"), durable="spy",
                                    stream=stream_name("airport"))
            out["consumer"] = "created"
        except (NatsTimeout, JsError, TimeoutError) as err:
            out["consumer"] = type(err).__name__
        # Publishing as somebody else.
        await army.publish(subject("police", "army"), b"{}")
        await police.js.publish(subject("police", "airport"), b"{}",
                                headers={"Nats-Msg-Id": "x2"})
        await army.flush()
        await asyncio.sleep(0.5)
        out["got"], out["errors"] = got, errors
        # And reading one's own stream works: army's own stream, its own consumer.
        mine = Federation(FederationConfig(url=broker.url, partner="army", node="ar",
                                           user="army", password="pw-army"))
        await mine.connect()
        await mine.ensure_stream()
        out["own"] = (await mine.js.stream_info(stream_name("army"))).config.name
        for c in (airport, police, mine):
            await c.close()
        await army.close()
        return out

    out = asyncio.run(main())
    assert out["got"] == []
    assert out["consumer"] != "created"
    assert any("permissions violation" in e.lower() and "skyfence.police.airport" in e
               for e in out["errors"]), out["errors"]
    assert any("permissions violation" in e.lower() and "skyfence.police.army" in e
               for e in out["errors"]), out["errors"]
    assert out["own"] == "SKYFENCE_army"


def test_a_node_that_was_down_catches_up_without_loss_or_duplicates(broker: Broker) -> None:
    r = sim.build("spread", n_targets=4, seed=5, duration_s=30.0)
    sc = r.scenario
    payloads = jsonl_payloads(sc, r.detections)
    half = len(payloads) // 2

    async def main() -> tuple[list[float], list[float], int, int]:
        release = Releasability((Partner("police"), Partner("army")), {"radar": "police"},
                                {"radar": frozenset({"army"})})
        a = await _node(broker, "police", sc, send=(Send(to="army"),), release=release)
        out = a.service.view("army").outputs[0]
        b = await _node(broker, "army", replace(sc, sensors=()),
                        receive=(Receive(sender="police"),), name="army-1")
        await _feed(a, payloads[:half])
        await _until(lambda: len(b.delivered) >= 5, 20.0, "the first pictures at army")
        await b.stop()  # army's node goes down; police goes on
        await _feed(a, payloads[half:])
        await _until(lambda: a.service._queue.empty(), 20.0, "police's engine taking all")
        await asyncio.sleep(0.5)
        await _until(lambda: not out._busy and out._waiting is None, 20.0,
                     "police publishing the rest")
        sent = out.stats.pictures
        assert out.stats.failed == 0
        # army's node comes back: the same durable consumer, a fresh engine.
        b2 = await _node(broker, "army", replace(sc, sensors=()),
                         receive=(Receive(sender="police"),), name="army-1")
        await _until(lambda: len(b.delivered) + len(b2.delivered) >= sent, 20.0,
                     "army catching up")
        await asyncio.sleep(0.5)  # nothing more may come
        tracks = len(b2.service.snapshot()["tracks"])
        for n in (a, b2):
            await n.stop()
        return b.delivered, b2.delivered, sent, tracks

    before, after, sent, tracks = asyncio.run(main())
    times = before + after
    # Every picture police published reached army once, in order: nothing lost in
    # the gap, nothing taken twice across the restart.
    assert len(times) == sent and len(set(times)) == sent and times == sorted(times)
    assert after, "army took nothing after its restart"
    assert tracks >= 3  # and its fresh engine holds police's tracks again


def test_federation_over_tls_with_client_certificates(tls_broker: Broker) -> None:
    """[federation] cafile/certfile/keyfile: pictures go over TLS to a broker that wants
    each node's certificate; without one, or without TLS, the broker lets no node in."""
    r = sim.build("spread", n_targets=4, seed=3, duration_s=12.0)
    sc = replace(r.scenario, name="police-hq")
    payloads = jsonl_payloads(sc, r.detections)
    release = Releasability((Partner("police"), Partner("army")), {"radar": "police"},
                            {"radar": frozenset({"army"})})
    only_fed = replace(sc, sensors=())

    async def refused(**tls: Any) -> BaseException | None:
        fed = Federation(FederationConfig(
            url=tls_broker.url.replace("tls://", tls.pop("scheme", "tls://")),
            partner="army", node="army", user="army", password=tls_broker.passwords["army"],
            **tls))
        try:
            await asyncio.wait_for(fed.connect(), 8.0)
        except Exception as err:  # any refusal will do (a timeout too)
            return err
        await fed.close()
        return None

    async def once(**tls: Any) -> BaseException | None:
        """One attempt, no retries: the broker's answer itself."""
        import nats

        try:
            nc = await nats.connect(tls_broker.url, user="army",
                                    password=tls_broker.passwords["army"],
                                    allow_reconnect=False, max_reconnect_attempts=0,
                                    connect_timeout=3, **tls)
        except Exception as err:  # the broker's refusal, whatever its form
            return err
        await nc.close()
        return None

    async def main() -> tuple[Any, ...]:
        # A node without a client certificate keeps trying and never gets in; one
        # attempt shows why: the broker ends the handshake.
        no_cert = await refused(cafile=tls_broker.cafile)
        plain = await refused(scheme="nats://")
        import ssl

        bare = ssl.create_default_context(cafile=tls_broker.cafile)
        answer = await once(tls=bare)
        good = ssl.create_default_context(cafile=tls_broker.cafile)
        good.load_cert_chain(tls_broker.certfile, tls_broker.keyfile)
        assert await once(tls=good) is None
        assert answer is not None, "the broker let a node in without its certificate"
        a = await _node(tls_broker, "police", sc, release=release, send=(Send(to="army"),))
        b = await _node(tls_broker, "army", only_fed, receive=(Receive(sender="police"),))
        try:
            await _feed(a, payloads)
            await _until(lambda: len(b.service.snapshot()["tracks"]) >= 3, 20.0,
                         "police's tracks at army over TLS")
            return no_cert, plain, b.delivered
        finally:
            for n in (a, b):
                await n.stop()

    no_cert, plain, delivered = asyncio.run(main())
    assert no_cert is not None and plain is not None
    assert len(delivered) >= 3
