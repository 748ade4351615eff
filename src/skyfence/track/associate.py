"""Data association: gating and global-nearest-neighbour assignment.

Gating pre-selects candidate (track, detection) pairs with a k-d tree on ENU
positions and a conservative per-track radius, then keeps pairs whose
Mahalanobis distance in the sensor's own measurement space passes the
chi-square gate. Assignment is optimal over the sparse gate graph.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

from skyfence.types import F64

IntArray = NDArray[np.intp]

#: Neighbours fetched per track in the first, array-shaped k-d tree query.
_KNN = 8


def candidate_pairs(track_pts: F64, radius: F64, det_pts: F64,
                    periods: F64 | None = None, *, p: float = 2.0,
                    max_per_track: int | None = None) -> tuple[IntArray, IntArray]:
    """(track, detection) index pairs within each track's radius, sorted by (track, det).

    Distances are Minkowski p-norms (``p=inf``: each track's radius is the
    half-width of a cube); a component with a non-zero entry in ``periods``
    wraps around with that period (an azimuth). With ``max_per_track``, a
    track keeps only that many of its nearest detections.

    Most tracks have few detections nearby: a fixed-k nearest-neighbour query
    answers them with whole arrays; only tracks whose k-th neighbour is still
    inside the radius (a crowd) are asked again.
    """
    n, m = track_pts.shape[0], det_pts.shape[0]
    if n == 0 or m == 0:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty.copy()
    if periods is not None and np.any(periods > 0):
        wrap = periods > 0
        det_pts = det_pts.copy()
        track_pts = track_pts.copy()
        det_pts[:, wrap] %= periods[wrap]
        track_pts[:, wrap] %= periods[wrap]
        tree = cKDTree(det_pts, boxsize=periods)
    else:
        tree = cKDTree(det_pts)
    k = min(_KNN, m)
    # A few wide gates (new tracks) would make the bound of every k-NN search wide:
    # they go with the crowded tracks to the ball query instead.
    bound = float(np.quantile(radius, 0.95)) if n > 50 else float(radius.max())
    wide = radius > bound
    dist, idx = tree.query(track_pts, k=k, distance_upper_bound=bound, p=p)
    dist, idx = dist.reshape(n, k), idx.reshape(n, k)
    inside = dist <= radius[:, None]
    crowded = np.flatnonzero((inside[:, -1] if k < m else False) | wide)
    inside[crowded] = False
    ti = np.repeat(np.arange(n, dtype=np.intp), inside.sum(axis=1))
    dj = idx[inside].astype(np.intp)
    if crowded.size and max_per_track is not None:
        k2 = min(max_per_track, m)
        d2, i2 = tree.query(track_pts[crowded], k=k2, p=p,
                            distance_upper_bound=float(radius[crowded].max()))
        d2, i2 = d2.reshape(crowded.size, k2), i2.reshape(crowded.size, k2)
        ok = d2 <= radius[crowded, None]
        ti = np.concatenate([ti, np.repeat(crowded, ok.sum(axis=1))])
        dj = np.concatenate([dj, i2[ok].astype(np.intp)])
    elif crowded.size:
        hits = tree.query_ball_point(track_pts[crowded], r=radius[crowded], p=p)
        counts = np.fromiter((len(h) for h in hits), dtype=np.intp, count=len(hits))
        ti = np.concatenate([ti, np.repeat(crowded, counts)])
        dj = np.concatenate([dj, np.fromiter(itertools.chain.from_iterable(hits),
                                             dtype=np.intp, count=int(counts.sum()))])
    order = np.lexsort((dj, ti))
    return ti[order], dj[order]


def gnn_assign(
    n_tracks: int, n_dets: int, ti: IntArray, dj: IntArray, cost: F64
) -> tuple[IntArray, IntArray]:
    """Minimum-cost partial assignment of tracks to detections over gated pairs.

    ``cost`` (p,) is the cost of pairing ``ti[k]`` with ``dj[k]`` relative to
    leaving both unassigned (cost 0); only negative costs can be worth taking.
    Solved exactly, for all components of the gate graph at once, as a
    minimum-weight matching that covers every track on a sparse graph whose
    columns are the detections plus one "missed" column per track; the graph
    stays as sparse as the gate graph. Every such matching has exactly
    n_tracks edges, so shifting every weight by one constant (to make them
    positive, as the solver needs) does not change the optimum.
    """
    if ti.size == 0:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty.copy()
    # A pair that is its track's only candidate and its detection's only candidate is a
    # component of its own: taken as it is (its cost is negative); the rest is matched.
    alone = (np.bincount(ti, minlength=n_tracks)[ti] == 1) & (
        np.bincount(dj, minlength=n_dets)[dj] == 1) & (cost < 0)
    if alone.any():
        rest = ~alone
        at, ad = _match(n_tracks, n_dets, ti[rest], dj[rest], cost[rest])
        at = np.concatenate([ti[alone], at])
        ad = np.concatenate([dj[alone], ad])
        order = np.argsort(at, kind="stable")
        return at[order], ad[order]
    return _match(n_tracks, n_dets, ti, dj, cost)


def _match(n_tracks: int, n_dets: int, ti: IntArray, dj: IntArray, cost: F64
           ) -> tuple[IntArray, IntArray]:
    if ti.size == 0:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty.copy()
    # Only the tracks and detections that have a pair: rows with nothing but their
    # "missed" column slow the solver down a lot (measured ~25× on 10,000 tracks).
    tracks, ti = np.unique(ti, return_inverse=True)
    dets, dj = np.unique(dj, return_inverse=True)
    n, m = tracks.size, dets.size
    shift = 1.0 - min(float(cost.min()), 0.0)
    rows = np.concatenate([ti, np.arange(n)])
    cols = np.concatenate([dj, m + np.arange(n)])
    w = np.concatenate([cost + shift, np.full(n, shift)])
    graph = sp.csr_matrix((w, (rows, cols)), shape=(n, m + n))
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    real = col_ind < m
    return tracks[row_ind[real]].astype(np.intp), dets[col_ind[real]].astype(np.intp)


def gate_components(n_tracks: int, n_dets: int, ti: IntArray, dj: IntArray) -> IntArray:
    """Connected-component label of each track then each detection, (n_tracks + n_dets,)."""
    n = n_tracks + n_dets
    graph = sp.csr_matrix((np.ones(ti.size), (ti, n_tracks + dj)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.intp)
