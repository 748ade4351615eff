"""Small radar scenes for the zone and alert tests: one radar, truth paths, noisy plots."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from skyfence.geo import Origin
from skyfence.picture import Picture
from skyfence.scenario import Scenario, SensorSpec
from skyfence.track import Tracker
from skyfence.types import Detections, TrackUpdate
from skyfence.zones import Circle, HeightReference, Limit, Polygon, Restriction, Volume, Zone

ORIGIN = Origin(47.0, 8.0, 500.0)
RADAR = SensorSpec(id="radar", kind="radar", position_enu_m=(0.0, 0.0, 10.0), pd=0.95,
                   noise_std=(5.0, 0.003, 0.003), clutter_per_scan=2.0, max_range_m=10_000.0,
                   min_elevation_rad=-0.05)
SCENARIO = Scenario(name="zones", origin=ORIGIN, sensors=(RADAR,))
T0 = 1.75e9


def square_zone(zone_id: str, east_m: tuple[float, float], north_m: tuple[float, float], *,
                top_m: float = 150.0, restriction: Restriction = Restriction.PROHIBITED,
                exempt: frozenset[str] = frozenset()) -> Zone:
    """A zone over an ENU rectangle, 0 to ``top_m`` above the ground."""
    corners = np.array([[east_m[0], north_m[0]], [east_m[1], north_m[0]],
                        [east_m[1], north_m[1]], [east_m[0], north_m[1]], [east_m[0], north_m[0]]])
    lat, lon, _ = ORIGIN.enu_to_geodetic(np.c_[corners, np.zeros(5)])
    ring = tuple(zip(lon.tolist(), lat.tolist(), strict=True))
    return Zone(id=zone_id, name=zone_id, restriction=restriction, exempt=exempt,
                volumes=(Volume(Polygon((ring,)), Limit(0.0, HeightReference.AGL),
                                Limit(top_m, HeightReference.AGL)),))


def circle_zone(zone_id: str, centre_enu_m: tuple[float, float], radius_m: float, *,
                top_m: float = 150.0) -> Zone:
    lat, lon, _ = ORIGIN.enu_to_geodetic(np.array([*centre_enu_m, 0.0]))
    return Zone(id=zone_id, name=zone_id, restriction=Restriction.PROHIBITED,
                volumes=(Volume(Circle(float(lon), float(lat), radius_m),
                                Limit(0.0, HeightReference.AGL),
                                Limit(top_m, HeightReference.AGL)),))


def radar_scans(truth: np.ndarray, seed: int) -> Iterator[Detections]:
    """One scan a second of truth positions (scans, targets, 3) ENU m, with noise,
    misses and clutter."""
    rng = np.random.default_rng(seed)
    s = np.array(RADAR.position_enu_m)
    for k in range(truth.shape[0]):
        d = truth[k] - s
        r = np.linalg.norm(d, axis=1)
        z = np.c_[r, np.arctan2(d[:, 0], d[:, 1]), np.arcsin(d[:, 2] / r)]
        z = z + rng.normal(size=z.shape) * np.array(RADAR.noise_std)
        z = z[rng.random(len(z)) < RADAR.pd]
        n_cl = rng.poisson(RADAR.clutter_per_scan)
        cl = np.c_[rng.uniform(300, 9000, n_cl), rng.uniform(-np.pi, np.pi, n_cl),
                   rng.uniform(0.0, 0.1, n_cl)]
        z = np.r_[z, cl]
        yield Detections(t=np.full(len(z), T0 + k), sensor=np.zeros(len(z), np.int32), z=z,
                         R=np.broadcast_to(RADAR.R, (len(z), 3, 3)).copy())


def frames(truth: np.ndarray, seed: int = 0) -> Iterator[tuple[TrackUpdate, object]]:
    """Tracker updates and picture frames over the radar scans of ``truth``."""
    tracker = Tracker.from_scenario(SCENARIO)
    picture = Picture.for_scenario(SCENARIO)
    for scan in radar_scans(truth, seed):
        update = tracker.step(scan)
        yield update, picture.update(update)
