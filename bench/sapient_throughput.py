"""SAPIENT ingest throughput: DetectionReports per second through the decoder, the
fusion node and the conversion to ``Detections`` (what ``serve`` does per chunk).

    python bench/sapient_throughput.py [--reports 200000] [--chunk-bytes 65536]

A stream of framed DetectionReports from one registered, located radar node (half
range-bearing with errors, half WGS84 locations, one in four classified) is fed in
chunks; after each chunk the node's pending rows are converted, as the TCP transport
does. Prints reports/s for decode only, and decode + handle + conversion.
"""

from __future__ import annotations

import argparse
import time

from skyfence.adapters.sapient import FusionNode, FusionNodeConfig, SapientDecoder, encode
from skyfence.adapters.sapient.codec import SapientFrame
from skyfence.adapters.sapient.proto import (
    detection_report_pb2,
    location_pb2,
    range_bearing_pb2,
    registration_pb2,
    sapient_message_pb2,
    status_report_pb2,
)
from skyfence.geo import Origin

NODE = "a8654cdf-4328-47de-81fa-c495589e30c9"
T0 = 1_700_000_000.0


def _message(t: float, content: str, body: object) -> sapient_message_pb2.SapientMessage:
    msg = sapient_message_pb2.SapientMessage(node_id=NODE)
    msg.timestamp.FromNanoseconds(int(t * 1e9))
    getattr(msg, content).CopyFrom(body)
    return msg


def stream(n: int) -> tuple[bytes, bytes]:
    reg = registration_pb2.Registration(
        node_definition=[registration_pb2.Registration.NodeDefinition(
            node_type=registration_pb2.Registration.NODE_TYPE_RADAR)],
        icd_version="BSI Flex 335 v2.0")
    status = status_report_pb2.StatusReport(node_location=location_pb2.Location(
        x=-1.80, y=51.175, z=130.0,
        coordinate_system=location_pb2.LOCATION_COORDINATE_SYSTEM_LAT_LNG_DEG_M,
        datum=location_pb2.LOCATION_DATUM_WGS84_E))
    head = encode(_message(T0, "registration", reg)) + encode(_message(T0, "status_report",
                                                                          status))
    body = []
    for k in range(n):
        dr = detection_report_pb2.DetectionReport(report_id=f"01GGYFBAXGDG7AGAHRZ{k:07d}",
                                                  object_id=f"01GGYFBAXH4VYRQYEX7S{k % 50:06d}")
        if k % 2:
            dr.range_bearing.CopyFrom(range_bearing_pb2.RangeBearing(
                range=1000.0 + k % 997, azimuth=(k * 0.37) % 360.0, elevation=3.0,
                range_error=5.0, azimuth_error=0.2, elevation_error=0.3,
                coordinate_system=range_bearing_pb2.RANGE_BEARING_COORDINATE_SYSTEM_DEGREES_M,
                datum=range_bearing_pb2.RANGE_BEARING_DATUM_TRUE))
        else:
            dr.location.CopyFrom(location_pb2.Location(
                x=-1.8 + (k % 1000) * 1e-5, y=51.2, z=200.0, x_error=5.0, y_error=5.0,
                z_error=8.0,
                coordinate_system=location_pb2.LOCATION_COORDINATE_SYSTEM_LAT_LNG_DEG_M,
                datum=location_pb2.LOCATION_DATUM_WGS84_E))
        if k % 4 == 0:
            dr.classification.add(type="UAV", confidence=0.8).sub_class.add(
                type="Rotary Wing", confidence=0.7, level=1)
        body.append(encode(_message(T0 + k * 1e-3, "detection_report", dr)))
    return head, b"".join(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=200_000)
    parser.add_argument("--chunk-bytes", type=int, default=1 << 16)
    args = parser.parse_args(argv)
    head, body = stream(args.reports)
    chunks = [body[i:i + args.chunk_bytes] for i in range(0, len(body), args.chunk_bytes)]

    dec = SapientDecoder()
    t = time.perf_counter()
    n = sum(sum(isinstance(r, SapientFrame) for r in dec.feed(c)) for c in chunks)
    decode_s = time.perf_counter() - t

    node = FusionNode(FusionNodeConfig(node_id="fusion", origin=Origin(51.17, -1.82, 100.0)))
    dec = SapientDecoder()
    for r in dec.feed(head):
        assert isinstance(r, SapientFrame)
        node.handle(r, peer="bench", received_s=T0)
    rows = 0
    t = time.perf_counter()
    for c in chunks:
        for r in dec.feed(c):
            if isinstance(r, SapientFrame):
                node.handle(r, peer="bench", received_s=T0)
        rows += sum(len(b) for b in node.take_detections())
    total_s = time.perf_counter() - t
    print(f"{n} DetectionReports, {len(body) / n:.0f} bytes each, "
          f"{args.chunk_bytes}-byte chunks")
    print(f"decode only:                     {n / decode_s:10,.0f} reports/s")
    print(f"decode + handle + to Detections: {rows / total_s:10,.0f} reports/s "
          f"({rows} rows, rejected {node.counters.n_rejected})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
