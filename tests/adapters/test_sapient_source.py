"""SAPIENT nodes declared as sensors (``skyfence.adapters.sapient.source``): who may
register, the turn of their reports into detections of their declared sensors, and
the journal record's decoder."""

from __future__ import annotations

import numpy as np
import pytest

from skyfence.adapters.base import Rejected
from skyfence.adapters.jsonl import JsonDetection
from skyfence.adapters.sapient import SapientDecoder, encode
from skyfence.adapters.sapient.source import (
    SapientSource,
    SapientSourceDecoder,
    SourceRules,
    decoder,
    envelope,
    node_key,
)
from skyfence.errors import InputError
from skyfence.ingest import make_decoder
from skyfence.scenario import Scenario, SensorSpec

from .test_sapient import (
    CAMERA_ID,
    NODE_LLH,
    ORIGIN,
    RADAR_ID,
    T0,
    _target_seen_from_node,
    message,
    rb_report,
    registration,
    status,
)


def _scenario(position: tuple[float, float, float] | None = None, kind: str = "radar"
              ) -> Scenario:
    pos = position or tuple(float(v) for v in ORIGIN.geodetic_to_enu(*NODE_LLH))
    radar = SensorSpec(id="radar", kind=kind, position_enu_m=pos,  # type: ignore[arg-type]
                       pd=0.9, noise_std=(5.0, 0.003, 0.005),
                       extra={"sapient_node_id": RADAR_ID})
    return Scenario(name="s", origin=ORIGIN, sensors=(radar,))


RULES = SourceRules(nodes={RADAR_ID: "radar"}, serves=frozenset({"radar"}),
                    owners={RADAR_ID: "police"}, partner="police")


def _frames(node_id: str = RADAR_ID, n: int = 3) -> list[bytes]:
    out = [encode(message(node_id, T0, "registration", registration())),
           encode(message(node_id, T0, "status_report", status()))]
    for k in range(n):
        az, el, r = _target_seen_from_node((51.19, -1.75 + k * 1e-4, 400.0))
        out.append(encode(message(node_id, T0 + 1 + k, "detection_report",
                                  rb_report(r, az, el, k=k))))
    return out


def _parsed(chunks: list[bytes]) -> list[object]:
    return list(SapientDecoder().feed(b"".join(chunks)))


def test_admission() -> None:
    assert RULES.admit(RADAR_ID.upper()) is None  # node ids compare as UUIDs
    assert "not declared" in (RULES.admit(CAMERA_ID) or "")
    army = SourceRules(nodes={RADAR_ID: "radar"}, serves=frozenset({"radar"}),
                       owners={RADAR_ID: "army"}, partner="police")
    assert "registered to 'army', not to 'police'" in (army.admit(RADAR_ID) or "")
    unserved = SourceRules(nodes={RADAR_ID: "radar"}, serves=frozenset({"other"}))
    assert "does not serve" in (unserved.admit(RADAR_ID) or "")
    assert SourceRules.from_options(RULES.to_options()) == RULES
    with pytest.raises(InputError, match="declared nodes"):
        SourceRules.from_options({"nodes": {}})
    assert node_key(" Not-A-Uuid ") == "not-a-uuid"


def test_reports_become_detections_of_the_declared_sensor() -> None:
    src = SapientSource(_scenario(), RULES)
    step = src.handle(1, _parsed(_frames()), T0)  # type: ignore[arg-type]
    assert step.replies[0].registration_ack.acceptance and not step.refused
    assert len(step.accepted) == 5 and not step.rejected and not step.dropped
    assert src.registered == {"radar": 1}
    assert all(isinstance(d, JsonDetection) and d.sensor == 0 and d.sensor_id == "radar"
               for d in step.detections)
    assert [d.t for d in step.detections] == [T0 + 1, T0 + 2, T0 + 3]
    assert np.sqrt(step.detections[0].var[0]) == pytest.approx(5.0)
    src.close(1)
    assert src.registered == {}


def test_refused_registration_and_mismatched_declarations() -> None:
    src = SapientSource(_scenario(), RULES)
    step = src.handle(1, _parsed(_frames(CAMERA_ID)), T0)  # type: ignore[arg-type]
    assert not step.replies[0].registration_ack.acceptance
    assert len(step.refused) == 1 and "not declared" in step.refused[0]
    assert not step.accepted and len(step.rejected) == 4  # its reports: unregistered
    far = SapientSource(_scenario(position=(0.0, 0.0, 10.0)), RULES)
    step = far.handle(1, _parsed(_frames()), T0)  # type: ignore[arg-type]
    assert not step.detections and len(step.dropped) == 3
    assert step.dropped[0].reason.startswith("moved: ") and "position_enu_m" in \
        step.dropped[0].reason
    wrong = SapientSource(_scenario(kind="radar2d"), RULES)
    step = wrong.handle(1, _parsed(_frames()), T0)  # type: ignore[arg-type]
    assert len(step.dropped) == 3 and "declared kind = 'radar2d'" in step.dropped[0].reason


def test_the_journal_record_decodes_to_the_same_detections() -> None:
    scenario = _scenario()
    live = SapientSource(scenario, RULES)
    step = live.handle(7, _parsed(_frames()), T0)  # type: ignore[arg-type]
    dec = make_decoder("sapient", scenario, RULES.to_options())
    assert isinstance(dec, SapientSourceDecoder)
    record = envelope(7, b"".join(encode(f.message) for f in step.accepted))
    # Cut anywhere: a record is whole, but its frames may follow in the next one.
    got = dec.feed(record[:40], t=T0) + dec.feed(envelope(7, record[40:]), t=T0)
    assert got == list(step.detections)
    assert dec.feed(envelope(7, closed=True), t=T0) == []
    bad = dec.feed(b"nonsense", t=T0)
    assert len(bad) == 1 and isinstance(bad[0], Rejected) and "SAPC" in bad[0].reason
    # Without declared nodes, the format is a recording's frames (skyfence decode).
    assert isinstance(decoder(scenario=scenario), SapientDecoder)
