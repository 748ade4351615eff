"""Clutter maps: the learned shape of a radar's clutter density over its cover."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.geo import Origin
from skyfence.scenario import Scenario, SensorSpec
from skyfence.track import Tracker, TrackerConfig
from skyfence.track.cluttermap import ClutterMap
from skyfence.types import Detections, TrackStatus


def _map(**kw: float) -> ClutterMap:
    return ClutterMap(max_range_m=10_000.0, min_elevation_rad=math.radians(0.4), **kw)


def test_an_empty_map_is_the_uniform_density() -> None:
    z = np.array([[500.0, 0.1, 0.01], [9_900.0, 6.2, 1.5], [5_000.0, 3.0, 0.3]])
    np.testing.assert_allclose(_map().log_factor(z), 0.0, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 10_000.0), st.floats(-10.0, 10.0),
                          st.floats(-0.1, 1.6)), min_size=1, max_size=200))
def test_the_shares_always_sum_to_one(plots: list[tuple[float, float, float]]) -> None:
    """Whatever it has learned, the map only redistributes the density: the share of
    every cell, uniform share × factor, sums to one over the cover."""
    cmap = _map()
    cmap.add(np.array(plots))
    cmap.forget()
    centres = np.stack(np.meshgrid(
        0.5 * (cmap.range_edges[1:] + cmap.range_edges[:-1]),
        (np.arange(cmap.azimuth_cells) + 0.5) * 2 * math.pi / cmap.azimuth_cells,
        0.5 * (cmap.elevation_edges[1:] + cmap.elevation_edges[:-1]),  # type: ignore[index]
        indexing="ij"), axis=-1).reshape(-1, 3)
    assert np.array_equal(cmap.cells(centres), np.arange(centres.shape[0]))
    share = cmap.uniform_share * np.exp(cmap.log_factor(centres))
    assert math.isclose(share.sum(), 1.0, rel_tol=1e-9)


def test_clutter_raises_its_cell_and_lowers_the_rest_then_is_forgotten() -> None:
    cmap = _map(forgetting=0.1, prior_plots=50.0)
    hot = np.array([[9_000.0, 1.0, 0.01]])
    cold = np.array([[2_000.0, 4.0, 0.8]])
    cmap.add(np.repeat(hot, 200, axis=0))
    assert cmap.log_factor(hot)[0] > math.log(50.0)
    assert cmap.log_factor(cold)[0] < math.log(0.5)
    for _ in range(150):
        cmap.forget()
    assert abs(cmap.log_factor(hot)[0]) < 0.1


def test_the_map_keeps_clutter_where_it_falls_from_becoming_tracks() -> None:
    """A radar whose 10 false plots a scan all fall in one low, far sector (ground
    clutter), no target: with its clutter density spread over the whole cover, runs
    of plots there confirm tracks; with the map they stop once it has learned."""
    radar = SensorSpec(id="radar", kind="radar", position_enu_m=(0.0, 0.0, 20.0), pd=0.9,
                       noise_std=(5.0, 0.005, 0.008), max_range_m=12_000.0,
                       min_elevation_rad=math.radians(0.4), clutter_per_scan=10.0)
    scenario = Scenario(name="clutter", origin=Origin(47.45, 8.56, 420.0), sensors=(radar,))

    def confirmed_late(config: TrackerConfig) -> int:
        rng = np.random.default_rng(3)
        tracker = Tracker.from_scenario(scenario, config=config)
        shown = 0
        for k in range(300):
            z = np.stack([rng.uniform(10_000.0, 10_800.0, 10), rng.uniform(1.0, 1.15, 10),
                          rng.uniform(0.007, 0.012, 10)], axis=1)
            u = tracker.step(Detections(t=np.full(10, 1.7e9 + k), sensor=np.zeros(10, np.int32),
                                        z=z, R=np.repeat(radar.R[None], 10, axis=0)))
            if k >= 150:
                shown += int(np.count_nonzero(u.tracks.status != TrackStatus.TENTATIVE))
        return shown

    uniform = confirmed_late(TrackerConfig(clutter_map=False))
    mapped = confirmed_late(TrackerConfig())
    assert uniform > 0
    assert mapped < 0.25 * uniform
