"""Clutter maps: where in a radar's cover its false plots fall.

A radar's false plots are not spread evenly over its measurement space. Ground
clutter, birds, vehicles and multipath crowd the lowest elevations, and within them
some ranges and sectors more than others. The low elevations are just where a low
flyer's track lives. A track score built on one density for the whole cover is there
too trusting: runs of false plots in the crowded cells confirm tracks. A clutter map
learns the shape of the density from the plots that started tracks that were never
confirmed (see ``Tracker._learn_clutter``); the tracker's confirmation test then weighs
a new track's plots against the density where they fall (``Tracker._clutter_excess``).

The map is a grid of cells in range, azimuth and (for a 3-D radar) elevation, with
elevation cells finer near the horizon. Each cell keeps a count of clutter plots
that forgets a fixed share per scan. The share of clutter in a cell is its count plus
a prior of ``prior_plots`` spread as the uniform density would spread them, over the
total; the density there is the uniform one times that share over the uniform share.
With no data a map is the uniform density; it takes ``prior_plots`` plots in a cell's
region to move it far.

No tracking library at hand keeps one (Stone Soup's clutter models are for
simulation), and the grid and forgetting are a few array operations, so it is here.
"""

from __future__ import annotations

import math

import numpy as np

from skyfence.types import F64

TWO_PI = 2.0 * math.pi


class ClutterMap:
    """The clutter map of one radar (3-D: range, azimuth, elevation; 2-D: range, azimuth).

    ``min_elevation_rad`` is the lowest elevation of the cover; the elevation cells
    run from there to the zenith, their widths growing as the square of the index.
    """

    def __init__(self, *, max_range_m: float, min_elevation_rad: float | None,
                 range_cells: int = 12, azimuth_cells: int = 8, elevation_cells: int = 8,
                 forgetting: float = 0.01, prior_plots: float = 50.0) -> None:
        if not (math.isfinite(max_range_m) and max_range_m > 0):
            raise ValueError("a clutter map needs a finite maximum range")
        self.range_edges = np.linspace(0.0, max_range_m, range_cells + 1)
        self.azimuth_cells = azimuth_cells
        if min_elevation_rad is None:
            self.elevation_edges = None
            shape: tuple[int, ...] = (range_cells, azimuth_cells)
        else:
            lo = max(min_elevation_rad, -math.pi / 18)
            u = np.linspace(0.0, 1.0, elevation_cells + 1)
            self.elevation_edges = lo + (math.pi / 2 - lo) * u**2
            shape = (range_cells, azimuth_cells, elevation_cells)
        self.shape = shape
        # Each cell's share of the cover's measurement volume: where the uniform density
        # puts clutter.
        widths = [np.diff(self.range_edges), np.full(azimuth_cells, TWO_PI / azimuth_cells)]
        if self.elevation_edges is not None:
            widths.append(np.diff(self.elevation_edges))
        volume = widths[0]
        for w in widths[1:]:
            volume = np.multiply.outer(volume, w)
        self.uniform_share = (volume / volume.sum()).ravel()
        self.counts = np.zeros(self.uniform_share.size)
        self.total = 0.0
        self.forgetting = forgetting
        self.prior_plots = prior_plots

    def cells(self, z: F64) -> np.ndarray:
        """Flat cell index (m,) of measurements (m, dim) (range, azimuth[, elevation])."""
        r = np.clip(np.searchsorted(self.range_edges, z[:, 0], side="right") - 1,
                    0, self.shape[0] - 1)
        az = np.remainder(z[:, 1], TWO_PI)
        a = np.clip((az * (self.azimuth_cells / TWO_PI)).astype(np.intp),
                    0, self.azimuth_cells - 1)
        if self.elevation_edges is None:
            return np.asarray(r * self.azimuth_cells + a)
        e = np.clip(np.searchsorted(self.elevation_edges, z[:, 2], side="right") - 1,
                    0, self.shape[2] - 1)
        return np.asarray((r * self.azimuth_cells + a) * self.shape[2] + e)

    def forget(self) -> None:
        """One scan: forget a share of the past."""
        keep = 1.0 - self.forgetting
        self.counts *= keep
        self.total *= keep

    def add(self, z: F64) -> None:
        """Count clutter plots (m, dim)."""
        if z.shape[0]:
            self.counts += np.bincount(self.cells(z), minlength=self.counts.size)
            self.total += float(z.shape[0])

    def log_factor(self, z: F64) -> F64:
        """ln of the density at each measurement (m, dim) over the uniform density."""
        if z.shape[0] == 0:
            return np.empty(0)
        c = self.cells(z)
        p = self.uniform_share[c]
        share = (self.counts[c] + self.prior_plots * p) / (self.total + self.prior_plots)
        return np.asarray(np.log(share / p))
