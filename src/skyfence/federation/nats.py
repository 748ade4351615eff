"""Federation over NATS JetStream: each node sends each partner the picture released to
it, and fuses what partners send it.

Subjects and streams. A node speaking for partner ``S`` publishes the picture it
releases to ``R`` on ``skyfence.S.R.tracks``. Each recipient ``R`` has one stream,
``SKYFENCE_R``, holding ``skyfence.*.R.tracks``; its node reads it with one durable
consumer per sender (``<node>-<S>``, filtered to ``skyfence.S.R.tracks``), acking each
message once the node has taken it. A node that was down finds the messages it
missed waiting, in order; the publisher names each message by sender, recipient and
picture time (``Nats-Msg-Id``), so a repeated publish within the stream's duplicate
window is stored once, and the receiver refuses a message not newer than the last it
took from that sender.

The broker enforces who reads what (:func:`partner_permissions`, and
:func:`broker_config` writes a whole ``nats-server.conf``): a partner's user may
publish only as itself (``skyfence.S.>``), may use the JetStream API only on its own
stream, and receives its replies on an inbox prefix of its own (``_INBOX_S``), so it
cannot subscribe to, create a consumer on, or overhear deliveries of what is
addressed to another partner.

Why NATS and not a protocol of our own: the broker gives authentication,
per-subject permissions, TLS, persistence, replay from a position, and message-id
deduplication; what is left here is the message (``skyfence.federation.codec``) and
the wiring.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skyfence.adapters.journal import Source
from skyfence.errors import InputError
from skyfence.federation.codec import RETIME_MAX_S, encode_tracks, picture_message
from skyfence.geo import Origin
from skyfence.node.outputs import PictureOutput
from skyfence.picture import Frame
from skyfence.release import FieldPolicy

log = logging.getLogger("skyfence.federation")

#: How long the broker remembers message ids to drop repeats (s).
DUPLICATE_WINDOW_S = 120.0
#: A message fetched and not acked (its node stopped) is delivered again after (s).
ACK_WAIT_S = 5.0
#: How long a stream keeps messages for a recipient that is down (s).
MAX_AGE_S = 24 * 3600.0


def subject(sender: str, recipient: str) -> str:
    return f"skyfence.{sender}.{recipient}.tracks"


def stream_name(recipient: str) -> str:
    return f"SKYFENCE_{recipient}"


def inbox_prefix(partner: str) -> str:
    return f"_INBOX_{partner}"


def partner_permissions(partner: str) -> dict[str, Any]:
    """The NATS user permissions of a partner (``nats-server.conf`` syntax as a dict)."""
    s = stream_name(partner)
    return {
        "publish": {"allow": [
            f"skyfence.{partner}.*.tracks",
            "$JS.API.INFO",
            f"$JS.API.STREAM.INFO.{s}", f"$JS.API.STREAM.CREATE.{s}",
            f"$JS.API.STREAM.UPDATE.{s}",
            f"$JS.API.CONSUMER.CREATE.{s}", f"$JS.API.CONSUMER.CREATE.{s}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{s}.>", f"$JS.API.CONSUMER.INFO.{s}.>",
            f"$JS.API.CONSUMER.MSG.NEXT.{s}.>", f"$JS.API.CONSUMER.DELETE.{s}.>",
            f"$JS.ACK.{s}.>",
        ]},
        "subscribe": {"allow": [f"{inbox_prefix(partner)}.>"]},
    }


def broker_config(passwords: Mapping[str, str], *, host: str = "127.0.0.1", port: int = 4222,
                  store_dir: str = "/var/lib/nats-server", max_payload: int = 8 << 20,
                  tls: Mapping[str, str] | None = None) -> str:
    """A ``nats-server.conf`` with JetStream and one user per partner (``passwords``:
    partner → password), each with :func:`partner_permissions`. ``tls``: the
    server's ``certfile`` and ``keyfile`` (PEM), and with ``cafile`` every client must
    present a certificate that CA signed (mutual TLS, on top of its password)."""
    users = [{"user": p, "password": pw, "permissions": partner_permissions(p)}
             for p, pw in passwords.items()]
    doc: dict[str, Any] = {"host": host, "port": port, "max_payload": max_payload,
                           "jetstream": {"store_dir": store_dir},
                           "authorization": {"users": users}}
    if tls is not None:
        block = {"cert_file": tls["certfile"], "key_file": tls["keyfile"], "timeout": 5}
        if tls.get("cafile"):
            block.update(ca_file=tls["cafile"], verify=True)
        doc["tls"] = block
    # JSON is valid nats-server configuration syntax.
    return json.dumps(doc, indent=2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Send ``to`` the picture released to it, at most once per ``period_s``."""

    to: str
    period_s: float = 1.0
    policy: FieldPolicy = field(default_factory=FieldPolicy)


@dataclass(frozen=True, slots=True, kw_only=True)
class Receive:
    """Take ``sender``'s pictures; ``area`` (a box, see the codec) limits where its
    tracks may be."""

    sender: str
    area: Mapping[str, float] | None = None

    @property
    def sensor(self) -> str:
        """The sensor (kind ``track``) its tracks are in this node's scenario."""
        return f"fed-{self.sender}"

    def source(self, recipient: str, window_s: float) -> Source:
        """The node's source of these pictures, for a node (``recipient``) whose reorder
        window is ``window_s``: its tracks are carried back by that window, so that
        they pass it at once (``PartnerPicture.detections``)."""
        return Source(id=self.sensor, format="skyfence-picture", sensor=self.sensor,
                      options={"partner": self.sender, "recipient": recipient,
                               "carry_back_s": min(float(window_s), RETIME_MAX_S),
                               **({"area": dict(self.area)} if self.area else {})})


@dataclass(frozen=True, slots=True, kw_only=True)
class FederationConfig:
    """``[federation]`` of node.toml: the broker, who this node speaks as, what it
    sends to whom and whom it hears."""

    url: str
    partner: str
    node: str
    user: str | None = None
    password: str | None = None
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    send: tuple[Send, ...] = ()
    receive: tuple[Receive, ...] = ()


class LastTaken:
    """The time of the last picture this node took from each sender, kept in a small
    JSON file (beside the node's store) across restarts.

    A node that crashed after taking a picture and before acking it gets that picture
    again from its consumer; its fresh decoder, given the time kept here, refuses it
    as a replay instead of taking it twice. Each picture taken rewrites the file whole
    (a new file, flushed to disk, renamed over the old): a crash leaves the old or the
    new, never half of one.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.times: dict[str, float] = {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as err:
            log.warning("federation: %s unreadable (%s): the last pictures taken are "
                        "forgotten, a picture taken before may be taken again once",
                        self.path, err)
            return
        if isinstance(raw, dict):
            self.times = {str(k): float(v) for k, v in raw.items()
                          if isinstance(v, int | float) and not isinstance(v, bool)
                          and math.isfinite(v)}

    def get(self, sender: str) -> float:
        return self.times.get(sender, -math.inf)

    def note(self, sender: str, t: float) -> None:
        """``t`` taken from ``sender``: on disk before this returns (the node acks the
        message after). A failure to write is logged, not raised: the node goes on."""
        self.times[sender] = t
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as f:
                json.dump(self.times, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as err:
            log.warning("federation: cannot keep the last picture taken in %s: %s",
                        self.path, err)


def last_taken_path(store_path: str | Path) -> Path:
    """Where a node with its store at ``store_path`` keeps :class:`LastTaken`."""
    p = Path(store_path)
    return p.with_name(f"{p.stem}.federation.json")


def resume_feeds(decoders: Mapping[str, Any], last_taken: LastTaken) -> None:
    """Each sender's decoder (sender → ``PictureDecoder``) starts after the last picture
    taken from it, and notes every picture it takes in ``last_taken``."""
    for sender, dec in decoders.items():
        dec.last_t = max(dec.last_t, last_taken.get(sender))
        dec.on_accept = lambda msg, sender=sender: last_taken.note(sender, msg.t)


class Federation:
    """One node's connection to the broker."""

    def __init__(self, config: FederationConfig) -> None:
        self.config = config
        self.nc: Any = None
        self.js: Any = None
        self.received: dict[str, int] = {}
        # The last pictures encoded (frame, origin, policy, the encoding's task): the
        # same frame goes to every partner of a view, and is encoded once for them all.
        self._encoded: list[tuple[Frame, Origin, FieldPolicy, asyncio.Future[bytes]]] = []

    async def connect(self) -> None:
        import nats

        cfg = self.config
        tls = None
        if cfg.cafile or cfg.url.startswith("tls://"):
            tls = ssl.create_default_context(cafile=cfg.cafile)
            if cfg.certfile:
                tls.load_cert_chain(cfg.certfile, cfg.keyfile)
        self.nc = await nats.connect(
            cfg.url, name=f"skyfence {cfg.node}", user=cfg.user, password=cfg.password,
            tls=tls, inbox_prefix=inbox_prefix(cfg.partner).encode(),
            max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=5)
        self.js = self.nc.jetstream(timeout=5.0)

    async def close(self, timeout_s: float = 5.0) -> None:
        if self.nc is not None:
            nc, self.nc, self.js = self.nc, None, None
            try:
                await asyncio.wait_for(nc.close(), timeout_s)
            except TimeoutError:
                log.warning("federation: the broker connection did not close within %.0f s",
                            timeout_s)

    async def ensure_stream(self) -> None:
        """This node's inbound stream (created if missing)."""
        from nats.js.api import DiscardPolicy, StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        me = self.config.partner
        config = StreamConfig(name=stream_name(me), subjects=[subject("*", me)],
                              storage=StorageType.FILE, discard=DiscardPolicy.OLD,
                              max_age=MAX_AGE_S, duplicate_window=DUPLICATE_WINDOW_S)
        try:
            await self.js.stream_info(stream_name(me))
        except NotFoundError:
            await self.js.add_stream(config)

    def output(self, send: Send, origin: Origin) -> FederationOutput:
        return FederationOutput(self, send, origin)

    async def encoded_tracks(self, frame: Frame, origin: Origin, policy: FieldPolicy) -> bytes:
        """``frame``'s tracks encoded for ``policy`` (:func:`encode_tracks`, on a worker
        thread), once for every output that sends that frame under that policy."""
        done = next((d for f, o, p, d in self._encoded
                     if f is frame and o == origin and p == policy), None)
        if done is None:
            done = asyncio.ensure_future(asyncio.to_thread(encode_tracks, frame, origin, policy))
            # The outputs of a view take each frame one after the other: a few suffice.
            self._encoded = [(frame, origin, policy, done), *self._encoded[:3]]
        # Shielded: one output cancelled must not cancel the others' encoding.
        return await asyncio.shield(done)

    async def receive(self, rec: Receive, deliver: Any) -> None:
        """Fetch ``rec.sender``'s messages from this node's stream for ever, one at a time
        (one in flight keeps the order across a restart; a pull of one is answered as
        soon as a message is there), handing each payload to ``await deliver(payload)``
        and acking it after."""
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        me, node = self.config.partner, self.config.node
        durable = f"{node}-{rec.sender}"
        sub = await self.js.pull_subscribe(
            subject(rec.sender, me), durable=durable, stream=stream_name(me),
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                  deliver_policy=DeliverPolicy.ALL,
                                  ack_wait=ACK_WAIT_S,
                                  # One in flight: a message fetched by a node that then
                                  # stopped comes back first, so the order holds.
                                  max_ack_pending=1))
        while True:
            try:
                msgs = await sub.fetch(1, timeout=1.0)
            except (TimeoutError, NatsTimeout):
                # The client may turn a cancellation that arrives during a fetch into
                # its timeout: a stopping node must stop here, not fetch for ever.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None
                continue
            for msg in msgs:
                # Taken and acked as one: a node that is stopped between the two would
                # get the message again after its restart. (One fetched and not yet
                # taken comes back ACK_WAIT_S after the node went.)
                await asyncio.shield(self._take(rec.sender, msg, deliver))


    async def _take(self, sender: str, msg: Any, deliver: Any) -> None:
        await deliver(msg.data)
        await msg.ack()
        self.received[sender] = self.received.get(sender, 0) + 1


class FederationOutput(PictureOutput):
    """A view's picture, published to one partner's subject through JetStream."""

    kind = "federation"

    def __init__(self, federation: Federation, send: Send, origin: Origin) -> None:
        super().__init__(f"federation[{send.to}]", send.period_s)
        self.federation, self.send, self.origin = federation, send, origin
        self.subject = subject(federation.config.partner, send.to)

    async def _emit(self, frame: Frame, breaching: frozenset[int]) -> None:
        cfg = self.federation.config
        tracks = await self.federation.encoded_tracks(frame, self.origin, self.send.policy)
        payload = picture_message(tracks, sender=cfg.partner, recipient=self.send.to,
                                  node=cfg.node, t=frame.t)
        if self.federation.js is None:
            raise ConnectionError("not connected to the broker")
        msg_id = f"{cfg.partner}.{self.send.to}.{round(frame.t * 1000)}"
        await self.federation.js.publish(self.subject, payload,
                                         headers={"Nats-Msg-Id": msg_id})


def check_partner_id(value: str, where: str) -> str:
    from skyfence.node.partners import _ID

    if not _ID.fullmatch(value):
        raise InputError(f"{value!r} cannot name a partner on the broker", field=where,
                         fix="use a-z, 0-9, '_' and '-', at most 32 characters")
    return value
