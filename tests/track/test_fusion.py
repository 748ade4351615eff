"""Fusion of sensor kinds: bearings alone, identities attached, lies caught."""

import math

import numpy as np
import pytest

from skyfence.geo import Origin
from skyfence.scenario import Scenario, SensorSpec
from skyfence.track import Tracker
from skyfence.types import Detections, PartnerTracks, TrackFlag, TrackStatus

ORIGIN = Origin(47.45, 8.56, 420.0)
T0 = 1.7e9
RID = "rid:MFG1A0123456789"

RADAR = SensorSpec(id="radar", kind="radar", position_enu_m=(0.0, 0.0, 20.0), pd=0.9,
                   noise_std=(5.0, 0.005, 0.008), max_range_m=8000.0, scan_period_s=1.0,
                   clutter_per_scan=2.0)
RF = [SensorSpec(id=f"df{i}", kind="bearing", position_enu_m=p, pd=0.9,
                 noise_std=(math.radians(1.0), 0.0, 0.0), bearing_dim=1, modality="rf",
                 max_range_m=10_000.0)
      for i, p in enumerate([(-3000.0, -2000.0, 10.0), (3000.0, -2000.0, 10.0),
                             (0.0, 3500.0, 10.0)])]
EO = [SensorSpec(id=f"eo{i}", kind="bearing", position_enu_m=p, pd=0.9,
                 noise_std=(math.radians(0.2), math.radians(0.2), 0.0), bearing_dim=2,
                 modality="eo", max_range_m=6000.0)
      for i, p in enumerate([(-1500.0, 1500.0, 15.0), (2000.0, 1000.0, 15.0)])]
COOP = SensorSpec(id="rid", kind="cooperative", position_enu_m=(0.0, 0.0, 2.0), pd=1.0,
                  noise_std=(5.0, 5.0, 8.0))


def _measure(sensor: SensorSpec, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    d = p - np.asarray(sensor.position_enu_m)
    ground = math.hypot(d[0], d[1])
    full = np.array([math.hypot(ground, d[2]), math.atan2(d[0], d[1]), math.atan2(d[2], ground)])
    if sensor.kind == "bearing":
        z = full[1:1 + sensor.bearing_dim]
    elif sensor.kind in ("position", "cooperative"):
        z = p.copy()
    else:
        z = full[:sensor.dim]
    z = z + rng.normal(size=z.size) * np.asarray(sensor.noise_std[:z.size])
    return np.r_[z, np.zeros(3 - z.size)]


def _run(sensors: tuple[SensorSpec, ...], path, seconds: int, *,  # type: ignore[no-untyped-def]
         offset: np.ndarray | None = None, seed: int = 0):
    """Every sensor sees the target at ``path(t)`` once a second (staggered); the
    cooperative sensor reports ``path(t) + offset``. Returns the tracker and its updates."""
    rng = np.random.default_rng(seed)
    tracker = Tracker.from_scenario(Scenario(name="fusion", origin=ORIGIN, sensors=sensors))
    updates = []
    for k in range(seconds):
        for i, s in enumerate(sensors):
            t = T0 + k + 0.1 * i
            p = path(t - T0)
            if s.kind == "cooperative":
                p = p + (offset if offset is not None else 0.0)
                ident = np.array([RID])
            else:
                ident = np.array([""])
                d = p - np.asarray(s.position_enu_m)
                elevation = math.atan2(d[2], math.hypot(d[0], d[1]))
                out_of_cover = (np.linalg.norm(d) > s.max_range_m
                                or elevation < s.min_elevation_rad)
                if out_of_cover or rng.random() > s.pd:
                    continue
            det = Detections(t=np.array([t]), sensor=np.array([i], np.int32),
                             z=_measure(s, p, rng)[None], R=s.R[None].copy(), identity=ident)
            updates.append((t, p, tracker.step(det)))
    return tracker, updates


def _low_flyer(t: float) -> np.ndarray:
    return np.array([-2500.0 + 40.0 * t, 500.0, 40.0])


def test_bearings_alone_start_and_hold_a_track() -> None:
    """Three RF direction finders and two cameras, no radar: one accurate track."""
    _, updates = _run((*RF, *EO), _low_flyer, 60)
    errors, counts = [], []
    for t, p, u in updates:
        live = u.tracks.status != TrackStatus.TENTATIVE
        counts.append(int(live.sum()))
        if live.any() and t - T0 > 10:
            errors.append(np.linalg.norm(u.tracks.x[live, :3] - p, axis=1).min())
    first = next(t for t, _, u in updates if (u.tracks.status != TrackStatus.TENTATIVE).any())
    assert first - T0 < 5.0
    assert max(counts[len(counts) // 6:]) == 1  # one object, one track
    assert np.median(errors) < 30.0
    # The track is known to emit a radio link.
    flags = updates[-1][2].tracks.flags
    assert (flags & TrackFlag.RF_EMITTER).all()


def test_a_drone_under_the_radar_horizon_is_held_by_rf_and_cameras() -> None:
    """A radar that cannot see it (below its minimum elevation) changes nothing."""
    blind = SensorSpec(id="radar", kind="radar", position_enu_m=(0.0, 0.0, 20.0), pd=0.9,
                       noise_std=(5.0, 0.005, 0.008), max_range_m=8000.0,
                       min_elevation_rad=0.2)
    _, updates = _run((blind, *RF, *EO), _low_flyer, 60)
    held = [bool((u.tracks.status != TrackStatus.TENTATIVE).any())
            for t, _, u in updates if t - T0 > 5]
    assert np.mean(held) > 0.95


def test_an_honest_remote_id_joins_the_radar_track() -> None:
    def hover(t: float) -> np.ndarray:
        return np.array([1200.0 + 5.0 * math.sin(0.1 * t), 900.0, 80.0])

    _tracker, updates = _run((RADAR, COOP), hover, 40)
    tr = updates[-1][2].tracks
    live = tr.status != TrackStatus.TENTATIVE
    assert live.sum() == 1
    assert tr.identity[live].tolist() == [RID]
    assert tr.sources[live][0] == 0b11  # radar and Remote ID
    assert not np.any(tr.flags & TrackFlag.SPOOF_SUSPECT)
    assert not any(u.tracks.flags[u.tracks.status != TrackStatus.TENTATIVE].any() & 1
                   for _, _, u in updates)


def test_a_remote_id_that_lies_by_500_m_is_flagged_within_5_s() -> None:
    def hover(t: float) -> np.ndarray:
        return np.array([1200.0, 900.0, 80.0])

    _, updates = _run((RADAR, COOP), hover, 30, offset=np.array([500.0, 0.0, 0.0]))
    first_report = T0 + 0.1
    flagged = [t for t, _, u in updates
               if np.any(u.tracks.flags[u.tracks.identity == RID] & TrackFlag.SPOOF_SUSPECT)]
    assert flagged and flagged[0] - first_report <= 5.0
    tr = updates[-1][2].tracks
    live = tr.status != TrackStatus.TENTATIVE
    # The drone the radar sees carries no identity (it is dark); the claim sits 500 m away.
    radar_track = live & (tr.identity == "")
    assert radar_track.sum() == 1
    assert np.linalg.norm(tr.x[radar_track, :3] - hover(0.0), axis=1)[0] < 30.0


def test_an_identity_that_walks_away_from_its_track_is_flagged() -> None:
    def cruise(t: float) -> np.ndarray:
        return np.array([1000.0 + 10.0 * t, 900.0, 80.0])

    rng_offset = np.zeros(3)
    tracker = None
    # Honest for 20 s, then the transmitter reports 800 m north of the truth.
    rng = np.random.default_rng(3)
    sensors = (RADAR, COOP)
    tracker = Tracker.from_scenario(Scenario(name="fusion", origin=ORIGIN, sensors=sensors))
    flagged_at = None
    for k in range(40):
        for i, s in enumerate(sensors):
            t = T0 + k + 0.1 * i
            p = cruise(float(k))
            if s.kind == "cooperative":
                p = p + (np.array([0.0, 800.0, 0.0]) if k >= 20 else rng_offset)
            elif rng.random() > s.pd:
                continue
            det = Detections(t=np.array([t]), sensor=np.array([i], np.int32),
                             z=_measure(s, p, rng)[None], R=s.R[None].copy(),
                             identity=np.array([RID if s.kind == "cooperative" else ""]))
            tr = tracker.step(det).tracks
            suspect = (tr.flags & TrackFlag.SPOOF_SUSPECT) != 0
            if k < 20:
                assert not suspect.any()
            elif flagged_at is None and suspect.any():
                flagged_at = k
    assert flagged_at is not None and flagged_at - 20 <= 5


def test_a_silent_transmitter_outside_every_cover_is_not_a_spoof() -> None:
    """ADS-B from an aircraft beyond the radar's range: no sensor should see it."""
    def far(t: float) -> np.ndarray:
        return np.array([20_000.0 + 60.0 * t, 0.0, 1500.0])

    _, updates = _run((RADAR, COOP), far, 30)
    tr = updates[-1][2].tracks
    live = tr.status != TrackStatus.TENTATIVE
    assert live.sum() == 1 and tr.identity[live].tolist() == [RID]
    assert not np.any(tr.flags & TrackFlag.SPOOF_SUSPECT)
    assert np.all(tr.flags[live] & TrackFlag.COOPERATIVE_ONLY)


PARTNER = SensorSpec(id="nodeB", kind="track", position_enu_m=(20_000.0, 0.0, 0.0), pd=1.0,
                     noise_std=(math.nan, math.nan, math.nan))


def _partner_report(t: float, x: np.ndarray, ref: str, rng: np.random.Generator,
                    ident: str = "") -> Detections:
    P = np.diag([30.0**2, 30.0**2, 50.0**2, 3.0**2, 3.0**2, 2.0**2])
    xr = x + rng.normal(size=6) * np.sqrt(np.diag(P))
    return Detections(t=np.array([t]), sensor=np.array([1], np.int32), z=xr[None, :3].copy(),
                      R=P[None, :3, :3].copy(), identity=np.array([ident]),
                      reported=PartnerTracks(x=xr[None], P=P[None], ref=np.array([ref])))


def test_a_partner_track_of_our_target_fuses_into_one_track() -> None:
    rng = np.random.default_rng(5)
    tracker = Tracker.from_scenario(Scenario(name="t2t", origin=ORIGIN,
                                             sensors=(RADAR, PARTNER)))
    v = np.array([12.0, -4.0, 0.0])
    for k in range(40):
        p = np.array([1500.0, 2000.0, 120.0]) + v * k
        if rng.random() < RADAR.pd:
            tracker.step(Detections(t=np.array([T0 + k]), sensor=np.array([0], np.int32),
                                    z=_measure(RADAR, p, rng)[None], R=RADAR.R[None].copy()))
        if k >= 10:
            u = tracker.step(_partner_report(T0 + k + 0.5, np.r_[p + 0.5 * v, v], "B-7", rng,
                                             ident="icao:4840D6"))
    tr = u.tracks
    live = tr.status != TrackStatus.TENTATIVE
    assert live.sum() == 1
    assert tr.identity[live].tolist() == ["icao:4840D6"]
    assert tr.sources[live][0] == 0b11
    truth = np.array([1500.0, 2000.0, 120.0]) + v * 39.5
    assert np.linalg.norm(tr.x[live][0, :3] - truth) < 40.0
    assert np.linalg.norm(tr.x[live][0, 3:] - v) < 3.0


def test_a_target_only_the_partner_sees_gets_a_track_from_its_reports() -> None:
    rng = np.random.default_rng(6)
    tracker = Tracker.from_scenario(Scenario(name="t2t", origin=ORIGIN,
                                             sensors=(RADAR, PARTNER)))
    v = np.array([-60.0, 5.0, 0.0])
    for k in range(10):
        x = np.r_[np.array([30_000.0, 1000.0, 900.0]) + v * k, v]
        u = tracker.step(_partner_report(T0 + k, x, "B-9", rng))
    tr = u.tracks
    live = tr.status != TrackStatus.TENTATIVE
    assert live.sum() == 1
    assert np.linalg.norm(tr.x[live][0, 3:] - v) < 5.0


def test_a_report_near_the_track_carrying_its_identity_stays_with_it() -> None:
    """Outside the statistical gate but within ``claim_gate_m``: the same object (a
    radar track's height error, a lag in a turn), not a twin and not a lie."""
    rng = np.random.default_rng(9)
    sensors = (RADAR, COOP)
    tracker = Tracker.from_scenario(Scenario(name="fusion", origin=ORIGIN, sensors=sensors))
    p = np.array([1500.0, -700.0, 60.0])

    def report(k: int, q: np.ndarray) -> Detections:
        return Detections(t=np.array([T0 + k]), sensor=np.array([1], np.int32),
                          z=q[None].copy(), R=COOP.R[None].copy(), identity=np.array([RID]))

    for k in range(8):
        tracker.step(report(k, p + rng.normal(size=3) * 5.0))
    before = tracker.tracks()
    assert np.count_nonzero(before.identity == RID) == 1
    # 100 m off, stated accuracy 5 m: a jump far outside the gate, inside claim_gate_m.
    after = tracker.step(report(8, p + np.array([100.0, 0.0, 0.0]))).tracks
    assert np.count_nonzero(after.identity == RID) == 1
    assert after.hits[after.identity == RID][0] == before.hits[before.identity == RID][0] + 1
    assert np.all(np.isnan(tracker.claim_miss_since))
    # 600 m off: another object claims the identity; the track's claim goes stale.
    after = tracker.step(report(9, p + np.array([600.0, 0.0, 0.0]))).tracks
    assert np.count_nonzero(after.identity == RID) == 2
    assert np.count_nonzero(np.isfinite(tracker.claim_miss_since)) == 1


def test_a_radar_that_does_not_see_a_bearing_track_pushes_its_height_down() -> None:
    """Negative information: a low flyer held by bearings alone, height guessed at
    120 ± 150 m, under a radar whose lowest beam clears ~75 m there. Each radar scan
    without it makes a lower height likelier; it never goes below the ground."""
    _, rows = _under_the_beam(None)
    heights = [h for *_, h, _ in rows if h is not None]
    sds = [sd for *_, sd in rows if sd is not None]
    assert len(heights) >= 5
    assert heights[-1] < heights[0] - 40.0 and sds[-1] < sds[0]
    assert min(heights) > -50.0  # the ground at 7 km is ~4 m below the origin's plane


def test_partner_rows_without_their_states_are_refused() -> None:
    from skyfence.errors import SkyfenceError

    tracker = Tracker.from_scenario(Scenario(name="t2t", origin=ORIGIN,
                                             sensors=(RADAR, PARTNER)))
    det = Detections(t=np.array([T0]), sensor=np.array([1], np.int32),
                     z=np.array([[100.0, 200.0, 300.0]]), R=np.eye(3)[None] * 100.0)
    with pytest.raises(SkyfenceError, match="partner tracks"):
        tracker.step(det)


def test_the_rf_emitter_flag_lasts_while_direction_finders_hear_the_track() -> None:
    """Heard for 20 s, then silent (the link switched off): the flag holds for
    ``rf_emitter_hold_s`` after the last bearing, then goes."""
    rng = np.random.default_rng(3)
    sensors = (RADAR, *RF)
    tracker = Tracker.from_scenario(Scenario(name="rf", origin=ORIGIN, sensors=sensors))
    hold = tracker.config.rf_emitter_hold_s
    flagged: dict[int, bool] = {}
    for k in range(70):
        for i, s in enumerate(sensors):
            if s.kind == "bearing" and k >= 20:
                continue
            t = T0 + k + 0.1 * i
            p = np.array([-2000.0 + 30.0 * k, 800.0, 150.0])
            det = Detections(t=np.array([t]), sensor=np.array([i], np.int32),
                             z=_measure(s, p, rng)[None], R=s.R[None].copy())
            u = tracker.step(det)
        live = u.tracks.status != TrackStatus.TENTATIVE
        flagged[k] = bool(live.any() and (u.tracks.flags[live] & TrackFlag.RF_EMITTER).all())
    assert flagged[10] and flagged[19] and flagged[int(19 + hold) - 1]
    assert not flagged[int(19 + hold) + 2] and not flagged[69]


def _far_off(sensor: SensorSpec, p: np.ndarray) -> np.ndarray:
    """A bearing sensor's false alarm: 90° away from the object at ``p``."""
    z = _measure(sensor, p, np.random.default_rng(0))
    z[0] = (z[0] + math.pi / 2) % (2 * math.pi)
    return z


def test_a_track_fed_by_one_direction_finder_that_every_other_sensor_misses_fades() -> None:
    """A ghost's signature: one direction finder's bearings keep landing on a track that
    the other direction finders and both cameras, which should all see it, miss. Each
    bearing resets its miss count, so only the fading score (the sequential test of a
    confirmed track) deletes it."""
    rng = np.random.default_rng(5)
    sensors = (*RF, *EO)
    tracker = Tracker.from_scenario(Scenario(name="ghost", origin=ORIGIN, sensors=sensors))
    live_at: dict[int, int] = {}
    for k in range(40):
        for i, s in enumerate(sensors):
            p = np.array([-1000.0 + 20.0 * k, 800.0, 100.0])
            # Every scan reports something: from 20 s on the others only a false alarm
            # far off (a scan with no report at all is not a look the tracker sees).
            z = _measure(s, p, rng) if k < 20 or i == 0 else _far_off(s, p)
            det = Detections(t=np.array([T0 + k + 0.1 * i]), sensor=np.array([i], np.int32),
                             z=z[None], R=s.R[None].copy())
            u = tracker.step(det)
        live_at[k] = int(np.count_nonzero(u.tracks.status != TrackStatus.TENTATIVE))
    assert live_at[19] == 1
    assert live_at[39] == 0
    assert min(k for k in range(20, 40) if live_at[k] == 0) < 30


def test_a_stray_bearing_does_not_go_to_a_track_that_does_not_emit() -> None:
    """A low flyer the radar and cameras see, inside every direction finder's cover but
    silent to them (no radio link): its odds of emitting fall, and a bearing that passes
    through it (another drone on the same line) is not taken as its own."""
    rng = np.random.default_rng(6)
    sensors = (RADAR, *RF, *EO)
    tracker = Tracker.from_scenario(Scenario(name="silent", origin=ORIGIN, sensors=sensors))

    def where(k: float) -> np.ndarray:
        return np.array([-1500.0 + 30.0 * k, 600.0, 150.0])

    for k in range(30):
        for i, s in enumerate(sensors):
            z = _far_off(s, where(k)) if s.modality == "rf" else _measure(s, where(k), rng)
            det = Detections(t=np.array([T0 + k + 0.1 * i]), sensor=np.array([i], np.int32),
                             z=z[None], R=s.R[None].copy())
            tracker.step(det)
    live = np.flatnonzero(tracker.status != TrackStatus.TENTATIVE)
    assert live.size == 1
    assert tracker.emitter[live[0]] < -5.0  # heard by none of three that reach it
    rf_bit = np.uint64(1 << 1)
    bearing = _measure(RF[0], where(30.0), np.random.default_rng(7))
    u = tracker.step(Detections(t=np.array([T0 + 30.0]), sensor=np.array([1], np.int32),
                                z=bearing[None], R=RF[0].R[None].copy()))
    assert u.n_assigned == 0
    assert (tracker.sources[live[0]] & rf_bit) == 0


def _under_the_beam(plot: np.ndarray | None, *, climb_at: int | None = None):  # type: ignore[no-untyped-def]
    """A low flyer at 40 m held by three direction finders, under a radar whose lowest
    beam clears ~75 m there; the radar reports only far clutter for 8 s, then ``plot``
    (range, azimuth, elevation) at second 8. From ``climb_at`` on, the flyer is at 300 m
    and the radar sees it. Returns the tracker and, per second, the flyer's position,
    the rows of tracks within 3 km of it, and the first one's height and its σ."""
    low_radar = SensorSpec(id="radar", kind="radar", position_enu_m=(0.0, 0.0, 20.0), pd=0.9,
                           noise_std=(5.0, 0.005, 0.008), max_range_m=12_000.0,
                           min_elevation_rad=math.radians(0.4), clutter_per_scan=2.0)
    sensors = (low_radar, *RF)
    rng = np.random.default_rng(7)
    tracker = Tracker.from_scenario(Scenario(name="low", origin=ORIGIN, sensors=sensors))
    rows = []
    for k in range(14):
        p = np.array([-7000.0, -1500.0, 300.0 if climb_at is not None and k >= climb_at
                      else 40.0])
        for i, s in enumerate(sensors):
            if s.kind == "radar":
                z = np.array([[9000.0, 1.0, 0.05]])  # far away
                if k == 8 and plot is not None:
                    z = np.vstack([z, plot])
                if climb_at is not None and k >= climb_at:
                    z = np.vstack([z, _measure(s, p, rng)])
                det = Detections(t=np.full(len(z), T0 + k), sensor=np.zeros(len(z), np.int32),
                                 z=z, R=np.repeat(s.R[None], len(z), axis=0))
            else:
                det = Detections(t=np.array([T0 + k + 0.1 * i]),
                                 sensor=np.array([i], np.int32),
                                 z=_measure(s, p, rng)[None], R=s.R[None].copy())
            tracker.step(det)
        near = np.flatnonzero(np.linalg.norm(tracker.xc[:, :2] - p[:2], axis=1) < 3000.0)
        h = float(tracker.xc[near[0], 2]) if near.size else None
        sd = float(np.sqrt(tracker.Pc[near[0], 2, 2])) if near.size else None
        rows.append((p, near, h, sd))
    return tracker, rows


def test_a_radar_that_never_saw_a_bearing_track_does_not_snap_it_onto_clutter() -> None:
    """Eight silent radar looks say the flyer is under the beam, though its height's
    normal still has a tail above it; a clutter plot 600 m down the line of sight,
    inside the bearing track's wide gate, must not pull the track there."""
    d = np.array([-7000.0, -1500.0, 40.0 - 20.0])
    rng_m, az = float(np.linalg.norm(d)) + 600.0, math.atan2(d[0], d[1])
    tracker, rows = _under_the_beam(np.array([rng_m, az, 0.012]))
    p, near, *_ = rows[-1]
    assert near.size == 1
    k = int(near[0])
    assert tracker.sources[k] & 1 == 0  # the radar never joined
    assert np.linalg.norm(tracker.xc[k, :2] - p[:2]) < 300.0


def test_a_flyer_that_climbs_into_the_radar_beam_is_taken_up() -> None:
    """The silences are weighed but bounded: once the radar sees the object, its plots
    join the bearing track within a few scans."""
    tracker, rows = _under_the_beam(None, climb_at=9)
    p, near, *_ = rows[-1]
    joined = near[(tracker.sources[near] & 1) != 0]
    assert joined.size >= 1
    assert np.linalg.norm(tracker.xc[joined[0], :3] - p) < 100.0


def test_a_height_guess_that_walks_under_the_ground_is_brought_back_above_it() -> None:
    """Azimuths alone measure no height: a bearing track's height and climb rate are
    guesses that can walk off. Once the height is under the ground it is truncated
    there."""
    from skyfence.geo import height_above_origin_m

    tracker, rows = _under_the_beam(None)
    k = int(rows[-1][1][0])
    tracker.x[k, :, 2] = -400.0  # hundreds of metres under, sinking
    tracker.x[k, :, 5] = -10.0
    tracker.P[k, :, 2, 2] = 300.0**2
    tracker.xc[k], tracker.Pc[k] = tracker.x[k, 0], tracker.P[k, 0]
    assert tracker.t is not None
    tracker._advance(tracker.t + 1.0)
    pos = tracker.xc[k, :3]
    ground = pos[2] - float(height_above_origin_m(ORIGIN, pos[None])[0])
    assert pos[2] > ground
    assert tracker.Pc[k, 2, 2] < 300.0**2
