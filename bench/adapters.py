"""Decode and encode throughput of every wire format, against the peer where one exists.

``python bench/adapters.py [--out FILE]`` (one process; run it pinned to one core,
``taskset -c 0``, on a quiet machine). Each row is the best of ``--repeats`` runs of
a fixed corpus; rates are messages per second:

- ADS-B: skyfence's ``BeastDecoder`` (framing, CRC, address check, per-aircraft state,
  CPR, reports) against ``pyModeS.decode`` per frame alone, on the recorded Beast
  sample and on the recorded flight (as Beast frames). Target: our path adds at most
  20 % (ratio ≥ 0.83).
- Remote ID: the message codec (the batch decoder over 1,000,000 Location messages;
  the scalar decoder) and the whole ``RemoteIdDecoder`` from pcap bytes (50,000 Wi-Fi
  beacons of 3-message packs). Target: decode ≥ 200,000 messages/s.
- SAPIENT: DetectionReports in (framing, protobuf, fusion-node handling, conversion to
  Detections). Target ≥ 20,000/s.
- ASTERIX CAT048: ``AsterixDecoder`` against libasterix's parse alone and the C++
  ``asterix_decoder`` (test extra), on the recorded CAT048 pcap's blocks.
- Cursor-on-Target out: events from a 1,000-track picture, XML and TAK protobuf.
  Target ≥ 20,000 events/s.
- JSON Lines detections in.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
sys.path.insert(0, str(ROOT / "bench"))


def best(fn: Callable[[], int], repeats: int) -> float:
    """Messages per second of the fastest of ``repeats`` runs of ``fn`` (→ messages)."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t0))
    return max(rates)


def _beast(frame: bytes) -> bytes:
    body = b"\x00" * 6 + b"\x80" + frame  # MLAT counter, signal, frame
    kind = b"2" if len(frame) == 7 else b"3"
    return b"\x1a" + kind + body.replace(b"\x1a", b"\x1a\x1a")


def adsb(repeats: int) -> list[tuple[str, float, float | None, str]]:
    import pyModeS

    from skyfence.adapters.adsb import BeastDecoder

    rows = []
    sample = (DATA / "adsb" / "sample_dump1090.bin").read_bytes()
    flight = [json.loads(line) for line in
              (DATA / "adsb" / "full_flight_short_first3000.jsonl").read_text().splitlines()]
    # The flight file pads 56-bit replies to 28 hex digits: the reply is the first 14.
    hexes = [f["frame"][:14] if int(f["frame"][:2], 16) >> 3 < 16 else f["frame"]
             for f in flight]
    corpora = {
        "sample (Beast, 239 frames) ×50": (sample * 50, None),
        "recorded flight (3,000 frames as Beast) ×5":
            (b"".join(_beast(bytes.fromhex(h)) for h in hexes) * 5, hexes * 5),
    }
    for name, (data, hx) in corpora.items():
        dec = BeastDecoder()
        n_frames = len([m for m in dec.feed(data, t=1.7e9)])
        if hx is None:  # the sample's frames, for the peer
            from skyfence.adapters.adsb import parse_beast
            recs, _ = parse_beast(data)
            hx = [r.data.hex() for r in recs if type(r).__name__ == "RawFrame"
                  and len(r.data) in (7, 14)]

        def ours(data: bytes = data, n: int = n_frames) -> int:
            d = BeastDecoder()
            d.feed(data, t=1.7e9)
            return n

        def peer(hx: list[str] = hx) -> int:
            for h in hx:
                with contextlib.suppress(Exception):  # the peer's errors are its own
                    pyModeS.decode(h)
            return len(hx)

        a, b = best(ours, repeats), best(peer, repeats)
        rows.append((f"ADS-B {name}", a, b, "pyModeS.decode per frame"))
    return rows


def remoteid(repeats: int) -> list[tuple[str, float, float | None, str]]:
    from skyfence.adapters import remoteid_codec as rc
    from skyfence.adapters.pcap import encode_pcap
    from skyfence.adapters.remoteid import RemoteIdDecoder
    from skyfence.adapters.remoteid_carriers import encode_beacon_frame, encode_radiotap

    rng = np.random.default_rng(0)
    raw = np.zeros((1_000_000, 25), dtype=np.uint8)
    raw[:, 0] = 0x12  # Location, protocol version 2
    raw[:, 1:] = rng.integers(0, 256, (raw.shape[0], 24), dtype=np.uint8)
    # Valid positions: latitude and longitude are little-endian int32 ×1e-7° at bytes 5, 9.
    n = raw.shape[0]
    raw[:, 5:9] = rng.integers(-900_000_000, 900_000_000, n).astype("<i4").view(
        np.uint8).reshape(n, 4)
    raw[:, 9:13] = rng.integers(-1_800_000_000, 1_800_000_000, n).astype("<i4").view(
        np.uint8).reshape(n, 4)
    msgs = [bytes(raw[k]) for k in range(20_000)]
    # 50,000 beacons of 200 drones, each a pack of Basic ID, Location, Operator ID.
    basic = rc.encode(rc.BasicId(id_type=1, ua_type=2, uas_id="MFG1A0123456789"))
    oper = rc.encode(rc.OperatorId(operator_id="GBR-OP-123ABCD"))
    frames = []
    for k in range(50_000):
        loc = bytes(raw[k])
        pack = rc.encode_pack([basic, loc, oper])
        frames.append((1.7e9 + k * 0.01, encode_radiotap(encode_beacon_frame(
            pack, transmitter=f"02:00:00:00:00:{k % 200:02x}",  # 200 drones
            counter=k % 256))))
    capture = encode_pcap(frames, linktype=127)

    def batch() -> int:
        rc.decode_locations(raw)
        return raw.shape[0]

    def scalar() -> int:
        for m in msgs:
            rc.decode_single(m)
        return len(msgs)

    def full() -> int:
        d = RemoteIdDecoder()
        d.feed(capture)
        d.close()
        return 3 * len(frames)

    return [("Remote ID codec, batch (1,000,000 Location)", best(batch, repeats), None, ""),
            ("Remote ID codec, one message at a time", best(scalar, repeats), None, ""),
            ("Remote ID from pcap bytes (50,000 beacons of 200 drones × 3 messages)",
             best(full, repeats), None, "")]


def sapient(repeats: int) -> list[tuple[str, float, float | None, str]]:
    from sapient_throughput import T0, stream
    from skyfence.adapters.sapient import FusionNode, FusionNodeConfig, SapientDecoder
    from skyfence.adapters.sapient.codec import SapientFrame
    from skyfence.geo import Origin

    head, body = stream(50_000)
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)]

    def run() -> int:
        node = FusionNode(FusionNodeConfig(node_id="fusion", origin=Origin(51.17, -1.82, 100.0)))
        dec = SapientDecoder()
        for r in dec.feed(head):
            node.handle(r, peer="bench", received_s=T0)  # type: ignore[arg-type]
        rows = 0
        for c in chunks:
            for r in dec.feed(c):
                if isinstance(r, SapientFrame):
                    node.handle(r, peer="bench", received_s=T0)
            rows += sum(len(b) for b in node.take_detections())
        return rows

    return [("SAPIENT DetectionReports in (50,000; to Detections)", best(run, repeats), None,
             "")]


def _udp_payloads(path: Path) -> list[bytes]:
    data = path.read_bytes()
    end = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        p = 14
        ihl = (pkt[p] & 15) * 4
        ulen = struct.unpack(">H", pkt[p + ihl + 4:p + ihl + 6])[0]
        out.append(pkt[p + ihl + 8:p + ihl + ulen])
    return out


def asterix(repeats: int) -> list[tuple[str, float, float | None, str]]:
    import importlib.metadata as md

    from asterix.base import Bits, ParsingMode

    from skyfence.adapters import asterix as ax
    from skyfence.adapters.asterix import AsterixDecoder, RadarPlot

    dist = md.distribution("asterix_decoder")
    pcap = next(Path(str(f.locate())) for f in dist.files or []
                if str(f).endswith("cat_034_048.pcap"))
    blocks = [b for b in _udp_payloads(pcap) if b[:1] == b"\x30"] * 20
    n_plots = 0
    d = AsterixDecoder(clock=lambda: 1.46e9)
    for b in blocks:
        n_plots += sum(isinstance(m, RadarPlot) for m in d.feed_datagram(b, t=1.46e9))

    def ours() -> int:
        dec = AsterixDecoder(clock=lambda: 1.46e9)
        for b in blocks:
            dec.feed_datagram(b, t=1.46e9)
        return n_plots

    def lib() -> int:
        # libasterix's record parse alone, over each block's records.
        for b in blocks:
            bits = Bits.from_bytes(b[3:])
            while len(bits):
                result = ax._Cat048.cv_record.parse(ParsingMode.StrictParsing, bits)
                if isinstance(result, ValueError):
                    break
                _, bits = result
        return n_plots

    rows = [("ASTERIX CAT048 plots in", best(ours, repeats), None, "")]
    try:
        rows[0] = (rows[0][0], rows[0][1], best(lib, repeats), "libasterix parse alone")
    except Exception as err:  # a peer we could not drive is reported, not fatal
        print(f"libasterix peer not run: {err}", file=sys.stderr)
    return rows


def cot(repeats: int) -> list[tuple[str, float, float | None, str]]:
    from skyfence import sim
    from skyfence.adapters.cot import CotConfig, encode_proto, encode_xml, frame_events
    from skyfence.picture import Picture
    from skyfence.pipeline import batch_bounds
    from skyfence.track import Tracker

    r = sim.build("swarm", seed=0, n_targets=1000, duration_s=20.0)
    tracker, picture = Tracker.from_scenario(r.scenario), Picture.for_scenario(r.scenario)
    det = r.detections
    frame = None
    for a, b in zip(*batch_bounds(det.t), strict=True):
        frame = picture.update(tracker.step(det.take(slice(a, b))))
    assert frame is not None
    config = CotConfig(node="bench")
    origin = r.scenario.origin
    events = frame_events(frame, origin, config)

    def xml() -> int:
        for ev in frame_events(frame, origin, config):
            encode_xml(ev)
        return len(events)

    def proto() -> int:
        for ev in frame_events(frame, origin, config):
            encode_proto(ev)
        return len(events)

    return [(f"CoT out, XML ({len(events)} events of a swarm picture)", best(xml, repeats),
             None, ""),
            ("CoT out, TAK protobuf (same events)", best(proto, repeats), None, "")]


def jsonl(repeats: int) -> list[tuple[str, float, float | None, str]]:
    from skyfence.adapters.jsonl import JsonlDecoder
    from skyfence.geo import Origin
    from skyfence.scenario import Scenario, SensorSpec

    sc = Scenario(name="b", origin=Origin(47.0, 8.0, 500.0), sensors=(
        SensorSpec(id="r", kind="radar", position_enu_m=(0, 0, 10), pd=0.9,
                   noise_std=(5.0, 0.003, 0.004)),))
    lines = b"".join(json.dumps({"t": 1.7e9 + k, "sensor": "r", "range_m": 1000.0 + k,
                                 "azimuth_deg": k % 360, "elevation_deg": 1.0}).encode() + b"\n"
                     for k in range(100_000))

    def run() -> int:
        d = JsonlDecoder(sc)
        d.feed(lines)
        return 100_000

    return [("JSON Lines detections in (100,000 lines)", best(run, repeats), None, "")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args(argv)
    rows = []
    for fn in (adsb, remoteid, sapient, asterix, cot, jsonl):
        rows += fn(args.repeats)
        print(f"{fn.__name__} done", file=sys.stderr)
    lines = ["| path | skyfence msg/s | peer msg/s | ratio | peer |", "|---|---:|---:|---:|---|"]
    for name, ours, peer, what in rows:
        ratio = f"{ours / peer:.2f}" if peer else ""
        peer_s = f"{peer:,.0f}" if peer else ""
        lines.append(f"| {name} | {ours:,.0f} | {peer_s} | {ratio} | {what} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(f"`python bench/adapters.py --repeats {args.repeats}`\n\n"
                                  f"{table}\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
