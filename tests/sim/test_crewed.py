from __future__ import annotations

import gzip
import json
from dataclasses import replace
from importlib import resources

import numpy as np
import pytest

from skyfence.geo import Origin, height_above_origin_m
from skyfence.sim.crewed import RECORDINGS, chord_velocity, hampel, load_recording, replay

ZURICH = Origin(lat_deg=47.45, lon_deg=8.56, alt_m=480.0)


def test_recordings_ship_with_the_package_and_have_provenance() -> None:
    data = resources.files("skyfence.sim").joinpath("data")
    readme = data.joinpath("README.md").read_text(encoding="utf-8")
    assert "traffic 2.13" in readme and "OpenSky" in readme
    for info in RECORDINGS.values():
        rows = json.loads(gzip.decompress(data.joinpath(info.file).read_bytes()))
        assert {"timestamp", "latitude", "longitude", "groundspeed", "track"} <= rows[0].keys()


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_replayed_speeds_are_plausible(name: str) -> None:
    rec = load_recording(name)
    t = np.arange(rec.t[0], rec.t[-1], 1.0)
    pos, vel, ok = rec.interpolate(t)
    assert ok.all()
    speed = np.hypot(vel[:, 0], vel[:, 1])
    reported = np.interp(t, rec.reported_t, rec.reported_speed_mps)
    # Agrees with the groundspeed the aircraft reported (which has a few spikes)...
    assert np.median(np.abs(speed - reported)) < 2.0
    assert speed.max() <= np.percentile(rec.reported_speed_mps, 99) + 5.0
    # ... with the motion of its own positions ...
    np.testing.assert_allclose(np.diff(pos, axis=0), 0.5 * (vel[1:] + vel[:-1]), atol=0.5)
    # ... and with what a helicopter or light aircraft can do.
    accel = np.linalg.norm(np.diff(vel, axis=0), axis=1)
    assert accel.max() < 8.0
    assert np.abs(vel[:, 2]).max() < 15.0
    h = height_above_origin_m(rec.ref, pos)
    assert h.min() > -30.0 and h.max() < 1_500.0


def test_smoothed_track_follows_the_recorded_positions() -> None:
    rec = load_recording("rega_zh")
    rows = json.loads(gzip.decompress(
        resources.files("skyfence.sim").joinpath("data").joinpath("rega_zh.json.gz").read_bytes()))
    t = np.array([r["last_position"] for r in rows]) / 1000.0
    lat = np.array([r["latitude"] for r in rows])
    lon = np.array([r["longitude"] for r in rows])
    h = np.array([r["geoaltitude"] for r in rows]) * 0.3048
    raw = rec.ref.geodetic_to_enu(lat, lon, h)
    pos, _, ok = rec.interpolate(np.clip(t, rec.t[0], rec.t[-1]))
    err = np.linalg.norm(pos[ok] - raw[ok], axis=1)
    assert np.median(err) < 15.0 and np.percentile(err, 95) < 60.0


def test_interpolation_never_crosses_a_gap() -> None:
    rec = load_recording("samu31")
    gap = np.zeros_like(rec.gap_after)
    gap[100] = True
    gapped = replace(rec, gap_after=gap)
    mid = 0.5 * (rec.t[100] + rec.t[101])
    _, vel, ok = gapped.interpolate(np.array([rec.t[99], mid, rec.t[102], rec.t[-1] + 1.0]))
    assert ok.tolist() == [True, False, True, False]
    assert np.isnan(vel[1]).all()


def test_hampel_flags_spikes_and_keeps_trends() -> None:
    x = np.column_stack([np.arange(50.0) * 40.0, np.zeros(50)])
    x[20, 1] = 500.0
    x[30:32, 0] += 900.0
    bad = hampel(x, np.array([150.0, 150.0]))
    assert np.flatnonzero(bad).tolist() == [20, 30, 31]


def test_chord_velocity_of_a_straight_track() -> None:
    t = np.arange(0.0, 100.0, 10.0)
    pos = np.column_stack([3.0 * t, -2.0 * t, 0.5 * t])
    v = chord_velocity(t, pos, np.array([5.0, 50.0, 99.0]), baseline_s=20.0)
    np.testing.assert_allclose(v, [[3.0, -2.0, 0.5]] * 3)


def test_replay_in_place_and_moved() -> None:
    times = 1.7e9 + np.arange(0.0, 120.0, 1.0)
    names = ("rega_zh", "samu31", "border_control", "rega_zh")
    out = replay(ZURICH, times, np.random.default_rng(0), names=names, t_start=1.7e9,
                 duration_s=120.0)
    assert [moved for _, moved in out.sources] == [False, True, True, True]
    s = out.states
    assert s.alive.all()
    r = np.hypot(s.pos[..., 0], s.pos[..., 1])
    assert r[:, 0].max() < 20_000.0  # REGA flew within ~10 km of the origin
    assert r[:, 1:].min() > 2_000.0 and r[:, 1:].max() < 25_000.0
    # A moved flight keeps its height above its own ground.
    rec = load_recording("samu31")
    h_rec = height_above_origin_m(rec.ref, rec.x[:, :3])
    h = height_above_origin_m(ZURICH, s.pos[:, 1])
    assert h.min() >= h_rec.min() - 1.0 and h.max() <= h_rec.max() + 1.0
    speed = np.linalg.norm(s.vel, axis=-1)
    assert speed.max() < 70.0
    # Velocity is the rate of the replayed positions.
    np.testing.assert_allclose(np.diff(s.pos, axis=0), 0.5 * (s.vel[1:] + s.vel[:-1]),
                               atol=0.5)


def test_replay_longer_than_the_recording_leaves_it_absent() -> None:
    times = 1.7e9 + np.arange(0.0, 900.0, 4.0)
    out = replay(ZURICH, times, np.random.default_rng(0), names=("rega_zh",), t_start=1.7e9,
                 duration_s=900.0)
    alive = out.states.alive[:, 0]
    assert 0 < alive.sum() < alive.size
    assert np.isnan(out.states.pos[~alive, 0]).all()
