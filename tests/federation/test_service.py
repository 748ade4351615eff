"""A node taking a partner's pictures: good ones become fused tracks of its own; bad
ones are refused, counted per reason in /metrics and written to the audit log, and
nothing taken before is lost."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from skyfence import sim
from skyfence.adapters.journal import Source
from skyfence.federation.codec import encode_picture
from skyfence.node.engine import EngineConfig
from skyfence.node.service import NodeService
from skyfence.picture import Picture
from skyfence.pipeline import batch_bounds
from skyfence.scenario import SensorSpec
from skyfence.store.sqlite import SqliteStore
from skyfence.track import Tracker
from skyfence.types import Detections


def test_pictures_in_rejections_counted_and_audited(tmp_path: Path) -> None:
    r = sim.build("spread", n_targets=6, seed=7, duration_s=12.0)
    tracker, picture = Tracker.from_scenario(r.scenario), Picture.for_scenario(r.scenario)
    payloads, frames = [], []
    for a, b in zip(*batch_bounds(r.detections.t), strict=True):
        frame = picture.update(tracker.step(r.detections.take(slice(a, b))))
        frames.append(frame)
        payloads.append(encode_picture(frame, r.scenario.origin, sender="police",
                                       recipient="army", node="hq"))
    fed = SensorSpec(id="fed-police", kind="track", position_enu_m=(0.0, 0.0, 0.0), pd=1.0,
                     noise_std=(math.nan, math.nan, math.nan))
    sc = replace(r.scenario, sensors=(fed,))
    store = SqliteStore(tmp_path / "army.db")
    service = NodeService(sc, [Source(id="fed-police", format="skyfence-picture",
                                      sensor="fed-police",
                                      options={"partner": "police", "recipient": "army"})],
                          store=store)
    forged = encode_picture(frames[3], r.scenario.origin, sender="airport", recipient="army",
                            node="hq")

    def take(payload: bytes, t: float) -> None:
        det = service._decode("fed-police", payload, t)
        service._publish(service._step(det, t, t))

    t = float(r.detections.t[0])
    for k, p in enumerate(payloads):
        take(p, t + k)
        if k == 5:
            take(forged, t + k + 0.1)
            take(payloads[2], t + k + 0.2)  # a replay of an older picture
    service._publish(service._step(Detections.empty(), t + 100.0, None))
    snap, metrics = service.snapshot(), service.metrics_text()
    store.flush()
    audit = store.audit_log()
    service.close()
    assert len(snap["tracks"]) >= 5
    assert 'reason="forged sender"} 1' in metrics
    assert 'reason="replayed or reordered"} 1' in metrics
    actions = [(a["who"], a["action"], a["detail"]["reason"].split(":")[0]) for a in audit]
    assert ("police", "federation.rejected", "forged sender") in actions
    assert ("police", "federation.rejected", "replayed or reordered") in actions


def test_a_late_picture_is_carried_to_its_arrival_not_dropped(tmp_path: Path) -> None:
    """A node with a radar of its own and a 1 s window takes a partner's pictures that
    arrive 2.5 s after their time, when the node's own scans after it have gone through:
    carried forward to their arrival, none is late."""
    r = sim.build("spread", n_targets=6, seed=8, duration_s=15.0)
    tracker, picture = Tracker.from_scenario(r.scenario), Picture.for_scenario(r.scenario)
    pictures = []
    bounds = list(zip(*batch_bounds(r.detections.t), strict=True))
    for a, b in bounds:
        frame = picture.update(tracker.step(r.detections.take(slice(a, b))))
        pictures.append((frame.t, encode_picture(frame, r.scenario.origin, sender="police",
                                                 recipient="army", node="hq")))
    fed = SensorSpec(id="fed-police", kind="track", position_enu_m=(0.0, 0.0, 0.0), pd=1.0,
                     noise_std=(math.nan, math.nan, math.nan))
    sc = replace(r.scenario, sensors=(*r.scenario.sensors, fed))
    service = NodeService(sc, [
        Source(id="radar", format="jsonl", sensor="radar"),
        Source(id="fed-police", format="skyfence-picture", sensor="fed-police",
               options={"partner": "police", "recipient": "army"})])
    # The radar's own scans straight in, the partner's pictures 2.5 s after their time.
    events = [(float(r.detections.t[a]) + 0.05, "radar", r.detections.take(slice(a, b)))
              for a, b in bounds]
    events += [(t + 2.5, "fed-police", payload) for t, payload in pictures]
    events.sort(key=lambda e: e[0])
    for t, sid, item in events:
        det = (service._decode(sid, item, t) if isinstance(item, bytes) else item)
        service._publish(service._step(det, t, t))
    service._publish(service._step(Detections.empty(), events[-1][0] + 5.0, None))
    snap = service.snapshot()
    late = service.engine.late
    service.close()
    assert late == 0
    # One track per drone: the partner's tracks fused into the radar's, not beside them.
    assert 5 <= len(snap["tracks"]) <= 8


def test_a_partner_picture_passes_the_reorder_window_at_once(tmp_path: Path) -> None:
    """Carried back by the node's window (``carry_back_s``, as node.toml sets it), a
    partner's picture is released in the step that takes it, instead of waiting out
    the window: complete and in order as it comes, it has nothing to wait for. Without
    it, the same picture waits."""
    r = sim.build("spread", n_targets=6, seed=8, duration_s=6.0)
    tracker, picture = Tracker.from_scenario(r.scenario), Picture.for_scenario(r.scenario)
    bounds = list(zip(*batch_bounds(r.detections.t), strict=True))
    for a, b in bounds:
        frame = picture.update(tracker.step(r.detections.take(slice(a, b))))
    payload = encode_picture(frame, r.scenario.origin, sender="police", recipient="army",
                             node="hq")
    fed = SensorSpec(id="fed-police", kind="track", position_enu_m=(0.0, 0.0, 0.0), pd=1.0,
                     noise_std=(math.nan, math.nan, math.nan))
    sc = replace(r.scenario, sensors=(*r.scenario.sensors, fed))
    held = {}
    for carry in (0.0, 1.0):
        service = NodeService(sc, [Source(
            id="fed-police", format="skyfence-picture", sensor="fed-police",
            options={"partner": "police", "recipient": "army", "carry_back_s": carry})],
            engine=EngineConfig(window_s=1.0))
        arrival = frame.t + 0.3
        det = service._decode("fed-police", payload, arrival)
        service._publish(service._step(det, arrival, arrival))
        held[carry] = (service.engine.reorder.held, service.home_view.updates)
        service.close()
    # Without: all held, no step. With: none held, the tracker stepped on them.
    assert held == {0.0: (len(frame.tracks), 0), 1.0: (0, 1)}
