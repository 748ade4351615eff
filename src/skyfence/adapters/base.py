"""What every adapter shares: rejections with their offset and reason, counters, the
stream-decoder protocol, and the turn of cooperative position reports into
``Detections``.

An adapter is a pure ``parse``/``encode`` pair over bytes plus a stateful decoder
(``feed`` bytes in, decoded messages and rejections out, the unfinished tail kept
for the next call) and a thin transport (socket, file) around it. A rejection never
stops a stream: it is counted, carries the byte offset where the bad input started
and a reason, and the decoder resynchronises on the next frame.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from skyfence.geo import Origin
from skyfence.types import Detections

F64 = NDArray[np.float64]

#: Rejected input shows at most this many bytes (hex) in a report.
SHOWN_BYTES = 32


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input an adapter could not accept: where it started in the stream (bytes from the
    start of everything fed to the decoder), why, and its first bytes."""

    offset: int
    reason: str
    data: bytes = b""

    def to_json(self) -> dict[str, Any]:
        return {"error": self.reason, "offset": self.offset,
                "bytes": self.data[:SHOWN_BYTES].hex()}


@runtime_checkable
class Message(Protocol):
    """A decoded message: anything that can say itself as a JSON object."""

    def to_json(self) -> dict[str, Any]: ...


@runtime_checkable
class StreamDecoder(Protocol):
    """Bytes in, in any chunking; messages and rejections out, in stream order.

    ``feed`` keeps an unfinished frame for the next call; ``close`` reports what is
    left at the end of the stream (a truncated frame) as a rejection. ``counters``:
    accepted messages and rejections by reason, for /metrics.
    """

    counters: Counters

    def feed(self, data: bytes) -> list[Message | Rejected]: ...

    def close(self) -> list[Message | Rejected]: ...


@dataclass(slots=True)
class Counters:
    """Messages accepted and input rejected, by reason (the reason's first words)."""

    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    bytes_in: int = 0

    def reject(self, reason: str) -> None:
        self.rejected[reason.split(":")[0]] += 1

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())


def decode_file(decoder: StreamDecoder, path: str | Path, *,
                chunk_bytes: int = 1 << 16) -> Iterator[Message | Rejected]:
    """Feed a file through a decoder in chunks; everything it yields, in order."""
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            yield from decoder.feed(chunk)
    yield from decoder.close()


@dataclass(frozen=True, slots=True)
class PositionReport:
    """A position a target reports of itself (ADS-B, Remote ID, ASTERIX CAT021) or a
    sensor reports as a located detection, in WGS84 at the edge.

    ``height_m`` is above the WGS84 ellipsoid (adapters convert barometric or AMSL
    heights once, and say how in their docstring); ``std_h_m``/``std_v_m`` the 1σ
    accuracy (from NACp/NIC, the Remote ID accuracy codes, the sensor's report);
    ``identity`` ``icao:4840D6`` / ``rid:MFG1A0123456789`` / "" ; ``category`` the
    ADS-B emitter category ("A3") or the Remote ID UA type as a decimal string;
    ``velocity_enu_mps`` when reported (NaN otherwise).
    """

    t: float
    lat_deg: float
    lon_deg: float
    height_m: float
    std_h_m: float
    std_v_m: float
    identity: str = ""
    category: str = ""
    velocity_enu_mps: tuple[float, float, float] = (np.nan, np.nan, np.nan)

    def to_json(self) -> dict[str, Any]:
        v = [None if np.isnan(c) else c for c in self.velocity_enu_mps]
        return {"type": "position", "t": self.t, "identity": self.identity,
                "lat_deg": self.lat_deg, "lon_deg": self.lon_deg, "height_m": self.height_m,
                "std_h_m": self.std_h_m, "std_v_m": self.std_v_m, "category": self.category,
                "velocity_enu_mps": v}


def position_detections(reports: Sequence[PositionReport], origin: Origin, sensor: int
                        ) -> Detections:
    """Reports as Detections of one position-measuring (``cooperative`` or
    ``position``) sensor: z is the ENU position, R diagonal from the 1σ accuracies."""
    n = len(reports)
    if n == 0:
        return Detections.empty()
    lat = np.fromiter((r.lat_deg for r in reports), np.float64, n)
    lon = np.fromiter((r.lon_deg for r in reports), np.float64, n)
    h = np.fromiter((r.height_m for r in reports), np.float64, n)
    sh = np.fromiter((r.std_h_m for r in reports), np.float64, n)
    sv = np.fromiter((r.std_v_m for r in reports), np.float64, n)
    R = np.zeros((n, 3, 3))
    R[:, 0, 0] = R[:, 1, 1] = sh**2
    R[:, 2, 2] = sv**2
    return Detections(
        t=np.fromiter((r.t for r in reports), np.float64, n),
        sensor=np.full(n, sensor, dtype=np.int32),
        z=origin.geodetic_to_enu(lat, lon, h), R=R,
        identity=np.array([r.identity for r in reports], dtype=np.str_),
        category=np.array([r.category for r in reports], dtype=np.str_))
