"""Federation: three nodes of three partners on loopback, each with its own radar over
1,000 targets, each sending its picture to the other two over NATS JetStream and fusing
theirs; how long a partner's update takes to reach a node's picture, and what
federation costs a node in CPU.

``python bench/federation.py [--targets 1000] [--seconds 60] [--window-s 1]
[--spacing-km 60] [--out FILE]``

Set-up. A private ``nats-server`` (JetStream, its store in a temporary directory,
users and permissions from ``broker_config``) on a free loopback port. Three node
processes, partners ``a``, ``b``, ``c``, each with the ``spread`` scenario of
``--targets`` targets (seeds 0, 1, 2), their areas side by side ``--spacing-km`` apart
(b east of a, c north of a; 60 km by default, which puts each area outside the
others' radar cover: a radar is not charged with missing a partner's tracks it could
not see; at 0 all three radars stand in one place over different targets), wired
as ``skyfence serve`` wires a ``[federation]`` node: its radar released to all three
partners, a ``Send`` (period 1 s) to each of the other two, a ``Receive`` (a
``fed-<sender>`` track sensor) from each, and ``federation_task`` on the broker. The
partners' release set (the radar alone) is a view of its own, with its own tracker:
what a node sends is computed from what is released, never filtered from its fused
picture (``skyfence.node.partners``). Each node is fed its radar scans at real time
(1 Hz, data time shifted onto the wall clock, the same shift in all three) as JSON
Lines payloads over ``NodeService.ingest``, as in ``bench/node.py``; the reorder
window is ``--window-s`` (the node's default, 1 s). The run is then repeated without
federation: the same three processes, the same data, one partner, no broker.

Latency, per picture a sender S publishes to a receiver R (wall clock, one machine),
over the pictures whose time is at least 5 s into the run (tracks confirmed):

- *update → partner's picture*: from the moment S's engine hands its update of
  picture time t to the federation output (``FederationOutput.publish``) to the moment
  R's home view publishes (to its stream hub and snapshot) the update of the tracker
  step that took the ``fed-S`` rows of picture time t (rows carried forward to
  their receive time, as the node does, are traced back to their picture by that
  time). This is the target's measure;
  it covers the wait for the encoding worker, encoding, the JetStream publish and its
  acknowledgement, the broker, R's pull consumer, R's ingest queue, decoding, R's
  reorder window (a partner picture arrives later than its time, so it passes at
  once) and R's tracker step, picture and alert watch.
- *of which to R's node*: S's hand-off to R's consumer handing the message to
  ``NodeService.ingest``; *of which in R's node*: from there to R's picture.
- *scan input → partner's picture*: from the moment S's radar scan t is handed to
  S's ``ingest`` to R's picture, i.e. the above plus S's reorder window and S's step.

Published pictures that never reached the partner's picture are counted: a picture
that comes after the receiver has released a newer scan of its own is dropped whole by
its reorder window, as late (the receiver's ``late_detections_total``).

Engine steps: the mean thread CPU and wall time of a home view's ``Engine.push`` that
stepped (tracker, picture, alert watch), on the node's own scans without and with
federation, and on partners' pictures. Machine: the cores busy over each run on the
whole machine (``/proc/stat``: other users' work included, the machine being shared).

CPU, per node process: ``time.process_time()`` (every thread of the process) from
the first scan to the end of the run (the last scan + the window + 3 s), with and
without federation; the overhead is their ratio − 1. Its parts, measured with
``time.thread_time()`` in the thread each runs on and given as a share of the node's
CPU without federation (means of the three nodes):

- *the partners' view*: the second tracker (steps and snapshots) that computes the
  picture released to the partners;
- *fusing partners' tracks*: the home view's tracker steps and snapshots, with
  federation minus without (two thousand partner tracks more to gate, fuse and
  keep, and two more steps per second);
- *stream hub*: encoding the updates for the stream (bigger and more with the
  partners' tracks, plus the partners' view's), with minus without;
- *decoding* partner pictures (``PictureDecoder`` and the conversion to detections),
  *encoding* pictures (``encode_tracks``, on a worker thread, once for both partners);
- *the rest*: the NATS client (publish, pull, ack), the asyncio loop and the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

PARTNERS = ("a", "b", "c")
#: Where each partner's area lies, in units of ``--spacing-km`` (east, north).
PLACES = {"a": (0.0, 0.0), "b": (1.0, 0.0), "c": (0.0, 1.0)}
#: Pictures before this much data time are left out of the latency (tracks confirming).
WARM_UP_S = 5.0
#: How long a node runs on after its last scan has left the window (s).
DRAIN_S = 3.0


# --------------------------------------------------------------------------- one node


class _Probe:
    """What a node process measures: wall times of latency events and CPU per part."""

    def __init__(self) -> None:
        self.handed: dict[float, float] = {}  # scan t → handed to ingest
        self.to_output: dict[float, float] = {}  # picture t → handed to the outputs
        self.delivered: dict[tuple[str, float], float] = {}  # (sender, t) → to ingest
        self.decoding: dict[tuple[str, float], float] = {}  # (sender, t) → out of the queue
        self.stepping: dict[tuple[str, float], float] = {}  # (sender, t) → tracker step
        self.in_picture: dict[tuple[str, float], float] = {}  # (sender, t) → published
        # (sender, receive t) → picture t: partner rows carry their receive time.
        self.picture_t: dict[tuple[str, float], float] = {}
        self.sizes: list[int] = []
        # Home view pushes that stepped: CPU s, wall s, whether partner rows were in them.
        self.steps: list[tuple[float, float, bool]] = []
        self.stepped_fed = False
        self.cpu: dict[str, list[float]] = {}
        self.on = False

    def timed(self, key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` adding its thread CPU time to ``key`` (list appends are thread-safe)."""
        acc = self.cpu.setdefault(key, [])

        def run(*args: Any, **kwargs: Any) -> Any:
            c0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                if self.on:
                    acc.append(time.thread_time() - c0)

        return run

    def cpu_s(self) -> dict[str, float]:
        return {k: float(sum(v)) for k, v in self.cpu.items()}


def _node_process(spec: dict[str, Any], conn: Connection) -> None:
    try:
        conn.send(asyncio.run(_node(spec, conn)))
    except BaseException as err:
        conn.send({"error": f"{type(err).__name__}: {err}"})
        raise


async def _node(spec: dict[str, Any], conn: Connection) -> dict[str, Any]:
    from skyfence import sim
    from skyfence.adapters.journal import Source
    from skyfence.federation import nats as fed_nats
    from skyfence.federation.nats import Federation, FederationConfig, Receive, Send
    from skyfence.geo import Origin
    from skyfence.node.engine import EngineConfig
    from skyfence.node.partners import Partner, Releasability
    from skyfence.node.run import federation_task, jsonl_payloads
    from skyfence.node.service import NodeService
    from skyfence.scenario import SensorSpec

    me, url = spec["partner"], spec["url"]
    peers = [p for p in PARTNERS if p != me]
    r = sim.build("spread", n_targets=spec["targets"], seed=spec["seed"],
                  duration_s=spec["seconds"])
    # Side by side: b east of a, c north of a (the sensors' data is relative to them).
    east_m, north_m = spec["spacing_m"] * np.array(PLACES[me])
    lat, lon, _ = r.scenario.origin.enu_to_geodetic(np.array([east_m, north_m, 0.0]))
    r = replace(r, scenario=replace(r.scenario, origin=Origin(
        float(lat), float(lon), r.scenario.origin.alt_m)))
    payloads = jsonl_payloads(r.scenario, r.detections)
    t0 = payloads[0][0]
    shift = [0.0]

    def clock() -> float:
        return time.time() - shift[0]

    probe = _Probe()
    radar = r.scenario.sensors
    engine = EngineConfig(window_s=spec["window_s"])
    sources = [Source(id=f"sim-{s.id}", format="jsonl", sensor=s.id) for s in radar]
    fed = None
    if url is None:
        service = NodeService(replace(r.scenario, name=f"node-{me}"), sources,
                              engine=engine, clock=clock)
    else:
        receive = tuple(Receive(sender=p) for p in peers)
        feeds = tuple(SensorSpec(id=rec.sensor, kind="track", position_enu_m=(0.0, 0.0, 0.0),
                                 pd=1.0, noise_std=(np.nan, np.nan, np.nan))
                      for rec in receive)
        sc = replace(r.scenario, name=f"node-{me}", sensors=(*radar, *feeds))
        release = Releasability(
            tuple(Partner(p) for p in PARTNERS),
            {**{s.id: me for s in radar}, **{s.id: me for s in feeds}},
            {s.id: frozenset(PARTNERS) for s in radar})
        fed = Federation(FederationConfig(
            url=url, partner=me, node=f"node-{me}", user=me, password=spec["password"],
            send=tuple(Send(to=p, period_s=1.0) for p in peers), receive=receive))
        sources += [rec.source(me, engine.window_s) for rec in receive]
        service = NodeService(sc, sources, engine=engine, clock=clock, release=release,
                              home=me, view_outputs={s.to: [fed.output(s, sc.origin)]
                                                     for s in fed.config.send})
        service.federation = fed
        fed_nats.encode_tracks = probe.timed(  # type: ignore[assignment]
            "encode", fed_nats.encode_tracks)
    _instrument(service, probe)

    await service.start_outputs()
    tasks: list[asyncio.Task[Any]] = []
    if fed is not None:
        tasks.append(asyncio.create_task(federation_task(service, fed)))
        await _until_on_the_broker(fed, tasks[0])
    loop = asyncio.get_running_loop()
    conn.send({"ready": me, "t0": t0})
    start_wall = await loop.run_in_executor(None, conn.recv)
    shift[0] = start_wall - t0
    tasks.append(asyncio.create_task(service.run()))
    wait = start_wall - time.time()
    if wait > 0:
        await asyncio.sleep(wait)

    engine_cpu0 = await loop.run_in_executor(service._engine_thread, time.thread_time)
    loop_cpu0, cpu0, wall0 = time.thread_time(), time.process_time(), time.time()
    probe.on = True
    for t, sid, payload in payloads:
        wait = t + shift[0] - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        probe.handed.setdefault(t, time.time())
        await service.ingest(sid, payload, t)
    await asyncio.sleep(payloads[-1][0] + shift[0] + spec["window_s"] + DRAIN_S - time.time())
    probe.on = False
    cpu = time.process_time() - cpu0
    loop_cpu = time.thread_time() - loop_cpu0
    wall = time.time() - wall0
    engine_cpu = await loop.run_in_executor(service._engine_thread, time.thread_time)

    home = service.home_view
    out: dict[str, Any] = {
        "partner": me, "cpu_s": cpu, "wall_s": wall, "loop_cpu_s": loop_cpu,
        "engine_cpu_s": engine_cpu - engine_cpu0, "parts": probe.cpu_s(),
        "home_tracks": len(home.snapshot["tracks"]), "late": home.engine.late,
        "handed": probe.handed, "to_output": probe.to_output,
        "delivered": probe.delivered, "in_picture": probe.in_picture,
        "decoding": probe.decoding, "stepping": probe.stepping,
        "sizes": probe.sizes, "steps": probe.steps, "peak_mib": _peak_mib(),
    }
    if fed is not None:
        shared = service.view(peers[0])
        outputs = list(shared.outputs)
        out.update(
            shared_tracks=len(shared.snapshot["tracks"]),
            sent={o.send.to: o.stats.pictures for o in outputs},  # type: ignore[attr-defined]
            skipped=sum(o.stats.skipped for o in outputs),
            failed=sum(o.stats.failed for o in outputs),
            received=dict(fed.received),
            rejected={sid: dict(st.rejected) for sid, st in service.sources.items()
                      if st.rejected})
    await service.close_outputs()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if fed is not None:
        await fed.close()
    service.close()
    return out


async def _until_on_the_broker(fed: Any, task: asyncio.Task[Any]) -> None:
    """Wait until the federation task has connected and made this node's stream."""
    from skyfence.federation.nats import stream_name

    deadline = time.monotonic() + 30.0
    while True:
        if task.done():
            task.result()
        if fed.js is not None:
            with suppress(Exception):
                await fed.js.stream_info(stream_name(fed.config.partner))
                return
        if time.monotonic() > deadline:
            raise TimeoutError("the node did not get onto the broker within 30 s")
        await asyncio.sleep(0.1)


def _instrument(service: Any, probe: _Probe) -> None:
    """Wrap the node's parts (instance attributes, nothing in the classes) to time them
    and to note when a partner's picture enters the home view's picture."""
    from skyfence.federation.codec import message_time

    for view in service.views.values():
        name = "home" if view is service.home_view else "shared"
        view.engine.push = probe.timed(f"engine {name}", view.engine.push)
        view.engine.snapshot = probe.timed(f"snapshot {name}", view.engine.snapshot)
        view.hub.publish = probe.timed(f"hub {name}", view.hub.publish)
        for o in view.outputs:
            o.publish = _note_hand_off(o.publish, probe)

    home = service.home_view
    push = home.engine.push

    def push_noted(*args: Any, **kwargs: Any) -> Any:
        probe.stepped_fed = False
        c0, w0 = time.thread_time(), time.perf_counter()
        updates = push(*args, **kwargs)
        if updates and probe.on:
            probe.steps.append((time.thread_time() - c0, time.perf_counter() - w0,
                                probe.stepped_fed))
        return updates

    home.engine.push = push_noted
    feeds = {k: s.id.removeprefix("fed-") for k, s in enumerate(home.scenario.sensors)
             if s.kind == "track"}
    pending: dict[int, list[tuple[str, float]]] = {}
    step = home.engine.tracker.step

    def tracker_step(det: Any) -> Any:
        if feeds and len(det):
            ks = [k for k in np.unique(det.sensor).tolist() if k in feeds]
            if ks:
                # Engine._run numbers this step's update next.
                probe.stepped_fed = True
                took = []
                for k in ks:
                    t_row = float(det.t[det.sensor == k][0])
                    took.append((feeds[k], probe.picture_t.get((feeds[k], t_row), t_row)))
                pending[home.engine.seq + 1] = took
                now = time.time()
                for key in took:
                    probe.stepping.setdefault(key, now)
        return step(det)

    home.engine.tracker.step = tracker_step
    publish = home.hub.publish

    def hub_publish(message: Any) -> Any:
        msg = publish(message)
        took = pending.pop(message.get("seq", -1), None)
        if took:
            now = time.time()
            for key in took:
                probe.in_picture.setdefault(key, now)
        return msg

    home.hub.publish = hub_publish
    ingest = service.ingest
    fed_ids = {s.id for s in home.scenario.sensors if s.kind == "track"}

    async def ingest_noted(source_id: str, payload: bytes, t: float | None = None,
                           **kw: Any) -> None:
        if source_id in fed_ids:
            t_msg = message_time(payload)
            if t_msg is not None:
                key = (source_id.removeprefix("fed-"), t_msg)
                probe.delivered.setdefault(key, time.time())
                probe.sizes.append(len(payload))
        await ingest(source_id, payload, t, **kw)

    service.ingest = ingest_noted
    decode = service._decode
    timed_fed = probe.timed("decode fed", decode)
    timed_radar = probe.timed("decode radar", decode)

    def decode_timed(sid: str, payload: bytes, t: float) -> Any:
        if sid not in fed_ids:
            return timed_radar(sid, payload, t)
        t_msg = message_time(payload)
        if t_msg is not None:
            sender = sid.removeprefix("fed-")
            probe.decoding.setdefault((sender, t_msg), time.time())
            # Its rows carry the receive time less the node's window (carried to the
            # window's edge: PartnerPicture.detections), or the picture's.
            carry = float(service.sources[sid].source.options.get("carry_back_s", 0.0))
            probe.picture_t[(sender, t - carry)] = t_msg
        return timed_fed(sid, payload, t)

    service._decode = decode_timed


def _note_hand_off(publish: Callable[..., None], probe: _Probe) -> Callable[..., None]:
    def run(update: Any, breaching: frozenset[int] = frozenset()) -> None:
        probe.to_output.setdefault(update.t, time.time())
        publish(update, breaching)

    return run


def _peak_mib() -> float:
    with suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# --------------------------------------------------------------------------- the run


@contextmanager
def _broker(passwords: dict[str, str]) -> Iterator[str]:
    """A nats-server of our own, JetStream in a temporary directory, on a free port."""
    from skyfence.federation.broker import local_broker

    with tempfile.TemporaryDirectory(prefix="skyfence-fed-") as tmp, \
            local_broker(passwords, tmp) as url:
        yield url


def _run_nodes(url: str | None, passwords: dict[str, str], *, targets: int, seconds: float,
               window_s: float, spacing_km: float) -> list[dict[str, Any]]:
    """The three node processes, started together; their results."""
    ctx = mp.get_context("spawn")
    conns, procs = [], []
    for k, p in enumerate(PARTNERS):
        mine, theirs = ctx.Pipe()
        spec = {"partner": p, "seed": k, "targets": targets, "seconds": seconds,
                "window_s": window_s, "spacing_m": 1e3 * spacing_km, "url": url,
                "password": passwords[p]}
        proc = ctx.Process(target=_node_process, args=(spec, theirs), name=f"node-{p}")
        proc.start()
        conns.append(mine)
        procs.append(proc)
    try:
        ready = [_recv(c, 300.0) for c in conns]
        if len({r["t0"] for r in ready}) != 1:
            raise RuntimeError("the nodes' scenarios do not start at the same time")
        start = time.time() + 1.0
        for c in conns:
            c.send(start)
        busy0 = _busy()
        results = [_recv(c, seconds + window_s + DRAIN_S + 120.0) for c in conns]
        busy1 = _busy()
        # Cores busy on the whole machine (every process, ours and others') over the run.
        machine = (busy1[0] - busy0[0]) / (busy1[1] - busy0[1]) * (os.cpu_count() or 1)
        for r in results:
            r["machine_cores"] = machine
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.terminate()
    return results


def _busy() -> tuple[float, float]:
    """Busy and total jiffies of all CPUs (``/proc/stat``)."""
    try:
        f = [float(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return (float("nan"), 1.0)
    idle = f[3] + f[4]
    return (sum(f[:8]) - idle, sum(f[:8]))


def _recv(conn: Connection, timeout_s: float) -> dict[str, Any]:
    if not conn.poll(timeout_s):
        raise TimeoutError(f"a node said nothing for {timeout_s:.0f} s")
    msg: dict[str, Any] = conn.recv()
    if "error" in msg:
        raise RuntimeError(f"a node failed: {msg['error']}")
    return msg


def _latency(fed: list[dict[str, Any]]) -> dict[str, Any]:
    by = {r["partner"]: r for r in fed}
    t_first = min(min(r["handed"]) for r in fed)
    parts: dict[str, list[float]] = {k: [] for k in ("hop", "e2e", "to_node", "queue",
                                                     "decode", "step")}
    published = taken = 0
    for rcv in fed:
        for snd in fed:
            s = snd["partner"]
            if s == rcv["partner"]:
                continue
            for t, t_out in snd["to_output"].items():
                if t < t_first + WARM_UP_S or (t not in by[s]["handed"]):
                    continue
                published += 1
                got = rcv["in_picture"].get((s, t))
                if got is None:
                    continue
                taken += 1
                parts["hop"].append(got - t_out)
                parts["e2e"].append(got - snd["handed"][t])
                marks = [rcv[k].get((s, t)) for k in ("delivered", "decoding", "stepping")]
                if all(m is not None for m in marks):
                    d, dec, st = marks
                    parts["to_node"].append(d - t_out)
                    parts["queue"].append(dec - d)
                    parts["decode"].append(st - dec)
                    parts["step"].append(got - st)

    def q(x: list[float]) -> tuple[float, float]:
        a = 1e3 * np.asarray(x) if x else np.full(1, np.nan)
        return float(np.percentile(a, 50)), float(np.percentile(a, 99))

    return {**{k: q(v) for k, v in parts.items()}, "published": published, "taken": taken,
            "sent": sum(sum(r["sent"].values()) for r in fed),
            "failed": sum(r["failed"] for r in fed), "skipped": sum(r["skipped"] for r in fed),
            "late": sum(r["late"] for r in fed),
            "kib": float(np.median([s for r in fed for s in r["sizes"]])) / 1024.0}


def _cpu_parts(base: dict[str, Any], fed: dict[str, Any]) -> dict[str, float]:
    """The federated node's extra CPU by part (s)."""
    b, f = base["parts"], fed["parts"]

    def g(d: dict[str, float], *keys: str) -> float:
        return sum(d.get(k, 0.0) for k in keys)

    parts = {
        "shared": g(f, "engine shared", "snapshot shared"),
        "fusing": g(f, "engine home", "snapshot home") - g(b, "engine home", "snapshot home"),
        "hub": g(f, "hub home", "hub shared") - g(b, "hub home"),
        "decode": g(f, "decode fed"),
        "encode": g(f, "encode"),
    }
    parts["rest"] = fed["cpu_s"] - base["cpu_s"] - sum(parts.values())
    return parts


def _table(base: list[dict[str, Any]], fed: list[dict[str, Any]], *, targets: int,
           seconds: float, window_s: float, spacing_km: float) -> str:
    lat = _latency(fed)
    by_base = {r["partner"]: r for r in base}
    pairs = [(by_base[f["partner"]], f) for f in fed]
    over = [100.0 * (f["cpu_s"] / b["cpu_s"] - 1.0) for b, f in pairs]
    # The same in points of one core: share of a core with, minus without.
    points = [100.0 * (f["cpu_s"] / f["wall_s"] - b["cpu_s"] / b["wall_s"]) for b, f in pairs]
    parts = [_cpu_parts(b, f) for b, f in pairs]

    def share(key: str) -> str:
        v = [100.0 * p[key] / b["cpu_s"] for p, (b, _) in zip(parts, pairs, strict=True)]
        return f"+{np.mean(v):.0f} %"

    def per_node(key: str, fmt: str, rows: list[dict[str, Any]]) -> str:
        return " / ".join(fmt.format(r[key]) for r in rows)

    def core(rows: list[dict[str, Any]]) -> str:
        return " / ".join(f"{r['cpu_s']:.1f} s ({100 * r['cpu_s'] / r['wall_s']:.0f} %)"
                          for r in rows)

    def steps(rows: list[dict[str, Any]], partner: bool) -> str:
        a = np.asarray([s for r in rows for s in r["steps"]]).reshape(-1, 3)
        a = 1e3 * a[a[:, 2] == partner, :2]
        if len(a) == 0:
            return "none"
        return (f"{a[:, 0].mean():,.0f} / {a[:, 1].mean():,.0f} ms "
                f"({len(a) / len(rows):.0f} a node)")

    ms = "{:,.0f} / {:,.0f} ms"
    lines = [
        "| measure | value |", "|---|---:|",
        f"| nodes × targets, scans | 3 × {targets:,}, 1 Hz for {seconds:.0f} s, "
        f"reorder window {window_s:g} s, areas {spacing_km:g} km apart |",
        f"| tracks in a node's picture at the end (a / b / c) | "
        f"{per_node('home_tracks', '{:,}', fed)} |",
        f"| tracks in the picture it sends (a / b / c) | "
        f"{per_node('shared_tracks', '{:,}', fed)} |",
        f"| pictures sent (failed, skipped) | {lat['sent']:,} ({lat['failed']}, "
        f"{lat['skipped']}) |",
        f"| message size, median | {lat['kib']:,.0f} KiB |",
        f"| pictures after {WARM_UP_S:g} s in a partner's picture / published | "
        f"{lat['taken']:,} / {lat['published']:,} "
        f"(late at the receivers: {lat['late']:,} detections) |",
        f"| **update → partner's picture**, p50 / p99 | **{ms.format(*lat['hop'])}** |",
        f"| of which to the partner's node (encode, JetStream, pull), p50 / p99 | "
        f"{ms.format(*lat['to_node'])} |",
        f"| of which in its ingest queue, p50 / p99 | {ms.format(*lat['queue'])} |",
        f"| of which decoding and handing to its engine thread, p50 / p99 | "
        f"{ms.format(*lat['decode'])} |",
        f"| of which its tracker step, picture and publication, p50 / p99 | "
        f"{ms.format(*lat['step'])} |",
        f"| scan input → partner's picture (with the sender's window), p50 / p99 | "
        f"{ms.format(*lat['e2e'])} |",
        f"| a node's engine step on its own scan, CPU / wall, mean, without federation | "
        f"{steps(base, False)} |",
        f"| the same with federation (its picture holding the partners' tracks) | "
        f"{steps(fed, False)} |",
        f"| its engine step on a partner's picture, CPU / wall, mean | "
        f"{steps(fed, True)} |",
        f"| machine: cores busy (every process, others' too) without / with federation | "
        f"{base[0]['machine_cores']:.1f} / {fed[0]['machine_cores']:.1f} of "
        f"{os.cpu_count()} |",
        f"| CPU per node without federation, a / b / c (of one core) | {core(base)} |",
        f"| CPU per node with federation, a / b / c (of one core) | {core(fed)} |",
        "| **federation CPU overhead**, a / b / c (the node's CPU with / without − 1) | **"
        + " / ".join(f"+{o:.0f} %" for o in over) + "** |",
        "| **the same in points of one core**, a / b / c | **"
        + " / ".join(f"+{p:.1f} pp" for p in points) + "** |",
        f"| of which the partners' view (a second tracker) | {share('shared')} |",
        f"| of which fusing partners' tracks (home tracker) | {share('fusing')} |",
        f"| of which the stream hub (bigger and more updates) | {share('hub')} |",
        f"| of which decoding partner pictures | {share('decode')} |",
        f"| of which encoding pictures | {share('encode')} |",
        f"| of which the NATS client, asyncio and the rest | {share('rest')} |",
        f"| peak memory per node without / with federation | "
        f"{np.mean([r['peak_mib'] for r in base]):.0f} / "
        f"{np.mean([r['peak_mib'] for r in fed]):.0f} MiB |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", type=int, default=1000, help="targets per node")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the run (s)")
    ap.add_argument("--window-s", type=float, default=1.0,
                    help="the nodes' reorder window (default 1 s, the node's default)")
    ap.add_argument("--spacing-km", type=float, default=60.0,
                    help="distance between the partners' areas (default 60 km: side by "
                         "side, each outside the others' radar cover; 0: one area)")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args(argv)
    # One thread of BLAS per process: the CPU measured is the node's, not idle spinning.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    passwords = {p: f"pw-{p}" for p in PARTNERS}
    n, seconds, window_s, spacing = args.targets, args.seconds, args.window_s, args.spacing_km
    kw = {"targets": n, "seconds": seconds, "window_s": window_s, "spacing_km": spacing}
    print("without federation …", file=sys.stderr)
    base = _run_nodes(None, passwords, **kw)
    print("with federation …", file=sys.stderr)
    with _broker(passwords) as url:
        fed = _run_nodes(url, passwords, **kw)
    table = _table(base, fed, **kw)
    print(table)
    if args.out:
        cmd = (f"python bench/federation.py --targets {n} --seconds {seconds:g} "
               f"--window-s {window_s:g} --spacing-km {spacing:g}")
        Path(args.out).write_text(
            f"`{cmd}`\n\nMachine: nproc {os.cpu_count()}, Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{table}\n",
            encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
