"""Positions from pairs of bearings: how RF direction finders and cameras start tracks.

A bearing fixes a line, not a point; two bearings from different places cross at
one. Each pair is solved in closed form, all pairs at once: the horizontal point
where the two azimuth lines cross, its covariance from each line's cross-track
error (range × azimuth σ), and the height from the elevations where the sensors
measure one, else from an assumed height. Two elevations must agree on the
height (a chi-square test), which removes most ghosts of az+el sensors; ghosts
of azimuth-only pairs are left to the track-confirmation test, where a third
sensor's bearings do not pass through them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from skyfence.types import F64


@dataclass(frozen=True, slots=True)
class Fixes:
    """Triangulated points of bearing pairs (m,): which are usable, ENU position (m, 3)
    and covariance (m, 3, 3), range from each sensor (m,) m, and the height-consistency
    chi-square (m,) (0 when fewer than two elevations)."""

    ok: NDArray[np.bool_]
    pos: F64
    cov: F64
    range1_m: F64
    range2_m: F64
    d2: F64


def triangulate(
    s1: F64, az1: F64, el1: F64, az_std1: F64, el_std1: F64,
    s2: F64, az2: F64, el2: F64, az_std2: F64, el_std2: F64,
    *,
    assumed_height_m: float,
    assumed_height_std_m: float,
    min_crossing_rad: float = 0.1,
) -> Fixes:
    """Cross pairs of bearings; every argument is per pair (m,) or (m, 3) for positions.

    ``s1``, ``s2``: sensor ENU positions; azimuths clockwise from north; elevations
    NaN where the sensor measures none. Pairs whose lines cross at less than
    ``min_crossing_rad`` (nearly parallel: the point is ill-defined) or behind a
    sensor are not ``ok``.
    """
    u1 = np.stack([np.sin(az1), np.cos(az1)], axis=1)
    u2 = np.stack([np.sin(az2), np.cos(az2)], axis=1)
    d = s2[:, :2] - s1[:, :2]
    det = u2[:, 0] * u1[:, 1] - u1[:, 0] * u2[:, 1]  # sin(az2 − az1)
    safe = np.where(np.abs(det) > 1e-12, det, 1e-12)
    r1 = (u2[:, 0] * d[:, 1] - u2[:, 1] * d[:, 0]) / safe
    r2 = (u1[:, 0] * d[:, 1] - u1[:, 1] * d[:, 0]) / safe
    ok = (np.abs(det) >= np.sin(min_crossing_rad)) & (r1 > 0) & (r2 > 0)
    r1, r2 = np.abs(r1), np.abs(r2)
    horizontal = s1[:, :2] + r1[:, None] * u1
    # Information of each line: its normal over its cross-track variance.
    info = np.zeros((az1.shape[0], 2, 2))
    for u, r, std in ((u1, r1, az_std1), (u2, r2, az_std2)):
        n = np.stack([u[:, 1], -u[:, 0]], axis=1)
        w = 1.0 / np.maximum(r * std, 1e-3) ** 2
        info += w[:, None, None] * n[:, :, None] * n[:, None, :]
    det_info = info[:, 0, 0] * info[:, 1, 1] - info[:, 0, 1] ** 2
    cov_h = np.stack([np.stack([info[:, 1, 1], -info[:, 0, 1]], -1),
                      np.stack([-info[:, 1, 0], info[:, 0, 0]], -1)], -2)
    cov_h /= np.maximum(det_info, 1e-300)[:, None, None]
    # Height from each elevation (the sensor's height plus ground range × tan), with
    # the variance the elevation noise gives at that range; the prior where none.
    heights, weights = [], []
    for s, r, el, std in ((s1, r1, el1, el_std1), (s2, r2, el2, el_std2)):
        has = np.isfinite(el)
        e = np.where(has, el, 0.0)
        var = (r * np.where(has, std, 1.0) / np.cos(e) ** 2) ** 2
        heights.append(s[:, 2] + r * np.tan(e))
        weights.append(np.where(has, 1.0 / np.maximum(var, 1e-6), 0.0))
    w_sum = weights[0] + weights[1]
    none = w_sum == 0.0
    prior_w = 1.0 / assumed_height_std_m**2
    w_all = np.where(none, prior_w, w_sum)
    up = np.where(none, assumed_height_m,
                  (weights[0] * heights[0] + weights[1] * heights[1]) / np.where(none, 1.0, w_sum))
    both = (weights[0] > 0) & (weights[1] > 0)
    var_diff = np.where(both, 1.0 / np.where(both, weights[0], 1.0)
                        + 1.0 / np.where(both, weights[1], 1.0), 1.0)
    d2 = np.where(both, (heights[0] - heights[1]) ** 2 / var_diff, 0.0)
    pos = np.concatenate([horizontal, up[:, None]], axis=1)
    cov = np.zeros((az1.shape[0], 3, 3))
    cov[:, :2, :2] = cov_h
    cov[:, 2, 2] = 1.0 / w_all
    return Fixes(ok=ok, pos=pos, cov=cov, range1_m=r1, range2_m=r2, d2=d2)
