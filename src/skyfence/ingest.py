"""From wire bytes to the tracker: each source's adapter, its conversion to
``Detections``, the reorder window, and replay of a journal.

A source is (id, wire format, sensor of the scenario). ``Ingest.feed(payload, t)``
decodes what a source received at ``t`` and returns the detections it carries for
that sensor; ``replay`` feeds a journal's records through the same ingests, the
reorder window and the tracker, and gives the same tracks for the same journal, bit
for bit.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from skyfence.adapters.base import Message, PositionReport, Rejected, StreamDecoder
from skyfence.adapters.journal import Record, Source, read_journal
from skyfence.errors import InputError
from skyfence.scenario import Scenario
from skyfence.types import Detections

#: Wire formats: name → "module:factory" of a decoder factory ``(scenario, options)``.
#: Imported only when used, so a format's library loads only for its sources.
FORMATS: dict[str, str] = {
    "jsonl": "skyfence.ingest:_jsonl",
    "beast": "skyfence.adapters.adsb:BeastDecoder",
    "avr": "skyfence.adapters.adsb:AvrDecoder",
    "sbs": "skyfence.adapters.adsb:SbsDecoder",
    "remoteid-pcap": "skyfence.adapters.remoteid:RemoteIdDecoder",
    # Frames; with a source's declared nodes, its listener's record (sapient.source).
    "sapient": "skyfence.adapters.sapient.source:decoder",
    "asterix": "skyfence.adapters.asterix:AsterixDecoder",
    # A partner node's picture (federation): options partner, recipient, area.
    "skyfence-picture": "skyfence.federation.codec:PictureDecoder",
}


def _jsonl(scenario: Scenario, options: dict[str, Any]) -> StreamDecoder:
    from skyfence.adapters.jsonl import JsonlDecoder

    return JsonlDecoder(scenario)


def make_decoder(fmt: str, scenario: Scenario, options: dict[str, Any] | None = None
                 ) -> StreamDecoder:
    """A fresh stream decoder for a wire format."""
    if fmt not in FORMATS:
        raise InputError(f"unknown wire format {fmt!r}", field="format",
                         fix=f"use one of {', '.join(sorted(FORMATS))}")
    module, name = FORMATS[fmt].split(":")
    try:
        factory = getattr(import_module(module), name)
    except ModuleNotFoundError as err:
        if err.name and err.name.lower() == "pymodes":
            raise InputError(f"the {fmt!r} format needs pyModeS, which is not installed",
                             fix="pip install 'skyfence[adsb]' (pyModeS is GPL v3: installing "
                                 "it is the user's choice)") from err
        raise
    opts = dict(options or {})
    if module == "skyfence.ingest":
        decoder: StreamDecoder = factory(scenario, opts)
        return decoder
    params = inspect.signature(factory).parameters
    if "scenario" in params:
        opts["scenario"] = scenario
    if "origin" in params:
        opts["origin"] = scenario.origin
    decoder = factory(**opts)
    return decoder


@dataclass
class Ingest:
    """One source: its decoder and the turn of what it decodes into detections of its
    sensor (index ``sensor`` in the scenario)."""

    source: Source
    scenario: Scenario
    decoder: StreamDecoder
    sensor: int
    rejected: list[Rejected] = field(default_factory=list)
    _takes_time: bool = False

    @classmethod
    def for_source(cls, source: Source, scenario: Scenario) -> Ingest:
        index = scenario.sensor_index()
        if source.sensor not in index:
            raise InputError(f"source {source.id!r} names sensor {source.sensor!r}, which "
                             "the scenario does not have", field="sensor",
                             fix=f"use one of {', '.join(sorted(index))}")
        decoder = make_decoder(source.format, scenario, source.options)
        takes_time = "t" in inspect.signature(decoder.feed).parameters
        return cls(source=source, scenario=scenario, decoder=decoder,
                   sensor=index[source.sensor], _takes_time=takes_time)

    def feed(self, payload: bytes, t: float) -> Detections:
        out = (self.decoder.feed(payload, t=t)  # type: ignore[call-arg]
               if self._takes_time else self.decoder.feed(payload))
        return self._detections(out, t)

    def close(self) -> Detections:
        return self._detections(self.decoder.close())

    def _detections(self, out: list[Message | Rejected], t: float | None = None
                    ) -> Detections:
        self.rejected.extend(m for m in out if isinstance(m, Rejected))
        messages = [m for m in out if not isinstance(m, Rejected)]
        if not messages:
            return Detections.empty()
        return to_detections(messages, self.scenario, self.sensor, t_receive=t)


def to_detections(messages: list[Message], scenario: Scenario, sensor: int, *,
                  t_receive: float | None = None) -> Detections:
    """The detections among a decoder's messages, for the sensor at index ``sensor``.

    Position reports — ADS-B and Remote ID positions (which carry a ``report``), ASTERIX
    CAT021 reports (``to_position()``) — become positions of that sensor; ASTERIX CAT048
    plots become detections of the radar their SAC/SIC names; JSON Lines detections
    name their own sensor; a partner node's picture becomes partner tracks, carried
    forward to ``t_receive`` (see ``PartnerPicture.detections``). Other messages
    (identification, status, acknowledgements) carry no detection.
    """
    from skyfence.adapters.base import position_detections
    from skyfence.adapters.jsonl import JsonDetection, jsonl_detections
    from skyfence.federation.codec import PartnerPicture

    parts: list[Detections] = []
    reports: list[PositionReport] = []
    lines: list[JsonDetection] = []
    plots: list[Any] = []
    for m in messages:
        if isinstance(m, PositionReport):
            reports.append(m)
        elif isinstance(m, JsonDetection):
            lines.append(m)
        elif isinstance(report := getattr(m, "report", None), PositionReport):
            reports.append(report)
        elif callable(to_position := getattr(m, "to_position", None)):
            if (r := to_position()) is not None:
                reports.append(r)
        elif type(m).__name__ == "RadarPlot":
            plots.append(m)
        elif isinstance(m, PartnerPicture):
            parts.append(m.detections(scenario, sensor, t_receive))
    if reports:
        parts.append(position_detections(reports, scenario.origin, sensor))
    if lines:
        parts.append(jsonl_detections(lines))
    if plots:
        from skyfence.adapters.asterix import plot_detections

        parts.append(plot_detections(plots, scenario))
    return Detections.concatenate(parts)


@dataclass(frozen=True, slots=True)
class ReplayStats:
    records: int
    damaged: int
    rejected: int
    late: int
    detections: int


def replay_detections(path: str | Path, *, window_s: float = 1.0
                      ) -> tuple[Scenario, Detections, ReplayStats]:
    """A journal's records through their sources' adapters and the reorder window:
    the detections in the order the tracker takes them."""
    from skyfence.track import ReorderBuffer

    header, records = read_journal(path)
    scenario = header.scenario
    ingests = [Ingest.for_source(s, scenario) for s in header.sources]
    buffer = ReorderBuffer(window_s=window_s)
    out: list[Detections] = []
    n_records = damaged = late = 0
    for rec in records:
        if not isinstance(rec, Record):
            damaged += 1
            continue
        n_records += 1
        det = ingests[rec.source].feed(rec.payload, rec.t_receive)
        released = buffer.push(det, now=rec.t_receive)
        out.append(released.ready)
        late += len(released.late)
    for ing in ingests:
        released = buffer.push(ing.close())
        out.append(released.ready)
        late += len(released.late)
    out.append(buffer.flush())
    det = Detections.concatenate(out)
    stats = ReplayStats(records=n_records, damaged=damaged,
                        rejected=sum(len(i.rejected) for i in ingests), late=late,
                        detections=len(det))
    return scenario, det, stats
