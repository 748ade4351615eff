"""Tracking-quality measures: GOSPA, OSPA, and track continuity over a run.

Pure numpy/scipy, no I/O. Positions are ENU metres, times float64 seconds.

Why the per-scan assignment is exact although it only looks at close pairs
--------------------------------------------------------------------------
Every pair at distance ``d ≥ c`` costs ``c^p``. For GOSPA with α = 2 that equals
leaving both points unassigned (``c^p/2`` each); for α < 2 and for OSPA every
point of the smaller set is assigned, and a far pair costs ``c^p`` whichever far
partner it gets. So the cost of any assignment depends only on its pairs with
``d < c``, the set ``M``:

    cost = constant(n, m, c, α) + Σ_{(i,j) ∈ M} (d_ij^p − c^p)

and every matching of close pairs is the ``M`` of some admissible assignment
(fill up with any partners). The minimum is therefore reached by the matching of
the sparse graph of pairs closer than ``c`` that maximises ``Σ (c^p − d^p)``.
Points in different connected components of that graph share no edge, so the
optimum is the union of per-component optima, and each component is solved
exactly: in closed form when one side has a single point, by scipy's dense
``linear_sum_assignment`` when the component is dense, and by its sparse
``min_weight_full_bipartite_matching`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

from skyfence.errors import InputError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
IntP = NDArray[np.intp]

#: Estimate rows are taken at a truth scan when their times agree to this (s);
#: tracks.csv and truth.csv carry microseconds.
TIME_TOL_S: Final = 1e-6

# A component goes to the dense solver when its dense cost matrix is at least
# this large and at least a quarter full: the sparse solver is slow on dense
# clusters (a swarm all within c), the dense one wastes memory on long sparse
# chains (a formation spaced just under c). Smaller ones are batched into one
# sparse solve so that thousands of 2×2 components cost one call, not a loop.
_DENSE_MIN_CELLS: Final = 1024
_DENSE_MIN_FILL: Final = 0.25


# --------------------------------------------------------------------------- per-scan measures


@dataclass(frozen=True, slots=True, eq=False)
class GospaResult:
    """GOSPA of one scan, with Stone Soup's decomposition.

    ``distance_m`` is the GOSPA distance (metres). ``localisation``, ``missed`` and
    ``false`` are in m^p and add up to ``distance_m ** p``. They are NaN unless
    α = 2, the one case where a pair past c costs exactly one miss plus one false
    estimate, so that the split exists. ``assignment`` (n,) int64 holds, for each
    truth, the index of the estimate assigned to it at distance < c, or -1.
    ``n_missed`` and ``n_false`` count truths and estimates without such a partner.
    """

    distance_m: float
    localisation: float
    missed: float
    false: float
    assignment: I64
    n_missed: int
    n_false: int


def gospa(
    truth_xyz: ArrayLike,
    est_xyz: ArrayLike,
    *,
    c_m: float = 100.0,
    p: float = 2.0,
    alpha: float = 2.0,
) -> GospaResult:
    """GOSPA (Rahmathullah, García-Fernández, Svensson 2017) of one scan.

    ``truth_xyz`` (n, 3) and ``est_xyz`` (m, 3) are positions in metres (any
    common dimension works). With α = 2,
    ``d^p = min over partial assignments of Σ_assigned min(d, c)^p
    + c^p/2 · (unassigned truths + unassigned estimates)``; for other α in (0, 2]
    the smaller set is fully assigned and each surplus point costs ``c^p/α``.
    Exact for any number of points. Time and memory grow with the number of
    pairs closer than ``c_m``, not with n·m; a cluster of k truths and k
    estimates all within ``c_m`` of each other costs a k×k dense assignment.
    """
    truth, est = _points_pair(truth_xyz, est_xyz)
    _check_params(c_m=c_m, p=p, alpha=alpha)
    ti, ej, dp = _close_matching(truth, est, c_m=c_m, p=p)
    assignment = np.full(truth.shape[0], -1, dtype=np.int64)
    assignment[ti] = ej
    total_p, loc, missed, false = _gospa_parts(
        truth.shape[0], est.shape[0], ti.shape[0], float(dp.sum()), c_m=c_m, p=p, alpha=alpha
    )
    return GospaResult(
        distance_m=float(total_p ** (1.0 / p)),
        localisation=loc,
        missed=missed,
        false=false,
        assignment=assignment,
        n_missed=truth.shape[0] - ti.shape[0],
        n_false=est.shape[0] - ti.shape[0],
    )


def ospa(truth_xyz: ArrayLike, est_xyz: ArrayLike, *, c_m: float = 100.0, p: float = 2.0) -> float:
    """OSPA (Schuhmacher, Vo, Vo 2008) of one scan, metres.

    ``truth_xyz`` (n, 3) and ``est_xyz`` (m, 3) in metres. Two empty sets are at
    distance 0; an empty and a non-empty set at ``c_m``.
    """
    truth, est = _points_pair(truth_xyz, est_xyz)
    _check_params(c_m=c_m, p=p, alpha=2.0)
    ti, _, dp = _close_matching(truth, est, c_m=c_m, p=p)
    return _ospa(truth.shape[0], est.shape[0], ti.shape[0], float(dp.sum()), c_m=c_m, p=p)


def _gospa_parts(
    n: int, m: int, k: int, dp_sum: float, *, c_m: float, p: float, alpha: float
) -> tuple[float, float, float, float]:
    """(total^p, localisation, missed, false) from the close-pair matching of size k."""
    c_p = c_m**p
    if alpha == 2.0:
        loc, missed, false = dp_sum, c_p / 2.0 * (n - k), c_p / 2.0 * (m - k)
        return loc + missed + false, loc, missed, false
    # Unmatched points of the smaller set take a far partner at c^p each.
    n_min, n_max = min(n, m), max(n, m)
    total_p = dp_sum + c_p * (n_min - k) + c_p / alpha * (n_max - n_min)
    return total_p, math.nan, math.nan, math.nan


def _ospa(n: int, m: int, k: int, dp_sum: float, *, c_m: float, p: float) -> float:
    n_max = max(n, m)
    if n_max == 0:
        return 0.0
    # Every point of the larger set beyond the k close pairs costs c^p.
    return float(((dp_sum + c_m**p * (n_max - k)) / n_max) ** (1.0 / p))


def _close_matching(
    truth: F64, est: F64, *, c_m: float, p: float
) -> tuple[IntP, IntP, F64]:
    """Optimal matching of pairs closer than ``c_m`` (see the module docstring).

    Returns truth indices, estimate indices and d^p (m^p) of the matched pairs.
    """
    n, m = truth.shape[0], est.shape[0]
    if n == 0 or m == 0:
        return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0)
    # A hair over c so that the tree's own rounding loses no pair that the
    # exact d < c test below, on distances recomputed here, would keep.
    pairs = cKDTree(truth).sparse_distance_matrix(
        cKDTree(est), c_m * (1.0 + 1e-9), output_type="ndarray"
    )
    ei = np.asarray(pairs["i"], dtype=np.intp)
    ej = np.asarray(pairs["j"], dtype=np.intp)
    d = np.linalg.norm(truth[ei] - est[ej], axis=1)
    close = d < c_m
    ei, ej = ei[close], ej[close]
    dp = d[close] ** p
    if ei.shape[0] == 0:
        return ei, ej, dp

    graph = csr_array((np.ones(ei.shape[0]), (ei, n + ej)), shape=(n + m, n + m))
    n_comp, label_any = connected_components(graph, directed=False)
    label = np.asarray(label_any, dtype=np.intp)
    comp_t = np.bincount(label[:n], minlength=n_comp)
    comp_e = np.bincount(label[n:], minlength=n_comp)
    edge_comp = label[ei]
    comp_edges = np.bincount(edge_comp, minlength=n_comp)
    cells = comp_t * comp_e
    smaller = np.minimum(comp_t, comp_e)

    chosen: list[IntP] = []

    # One point on a side: all its edges share it, so the best is its nearest.
    star = (smaller == 1) & (comp_edges > 0)
    idx = np.flatnonzero(star[edge_comp])
    if idx.shape[0]:
        order = idx[np.lexsort((dp[idx], edge_comp[idx]))]
        first = np.ones(order.shape[0], dtype=bool)
        first[1:] = edge_comp[order[1:]] != edge_comp[order[:-1]]
        chosen.append(order[first])

    big = smaller >= 2
    dense = big & (cells >= _DENSE_MIN_CELLS) & (comp_edges >= _DENSE_MIN_FILL * cells)
    sparse = big & ~dense
    chosen.append(_solve_sparse(ei, ej, dp, sparse[edge_comp], sparse[label[:n]],
                                sparse[label[n:]], c_m=c_m, p=p))
    dense_comps = np.flatnonzero(dense)
    comp_edge_lists: list[IntP] = []
    if dense_comps.shape[0] == 1:
        comp_edge_lists = [np.flatnonzero(edge_comp == dense_comps[0])]
    elif dense_comps.shape[0] > 1:
        by_comp = np.argsort(edge_comp, kind="stable")
        bounds = np.searchsorted(edge_comp[by_comp], np.stack([dense_comps, dense_comps + 1]))
        comp_edge_lists = [by_comp[lo:hi] for lo, hi in bounds.T]
    if dense_comps.shape[0]:
        rank_t = _rank_within(label[:n], n_comp)
        rank_e = _rank_within(label[n:], n_comp)
        for k, edges in zip(dense_comps, comp_edge_lists, strict=True):
            cost = np.zeros((comp_t[k], comp_e[k]))
            chosen.append(
                _solve_dense(rank_t[ei[edges]], rank_e[ej[edges]], edges, dp[edges] - c_m**p, cost)
            )

    sel = np.sort(np.concatenate(chosen))
    return ei[sel], ej[sel], dp[sel]


def _rank_within(label: IntP, n_comp: int) -> IntP:
    """Index of each node among the nodes of its own component."""
    order = np.argsort(label, kind="stable")
    counts = np.bincount(label, minlength=n_comp)
    starts = np.cumsum(counts) - counts
    rank = np.empty(label.shape[0], dtype=np.intp)
    rank[order] = np.arange(label.shape[0]) - starts[label[order]]
    return rank


def _solve_dense(rows: IntP, cols: IntP, edges: IntP, rel_cost: F64, cost: F64) -> IntP:
    """Edge indices of the optimal matching of one component, by a dense solve.

    ``rows``, ``cols`` place the component's ``edges`` in the zeroed ``cost``
    matrix; ``rel_cost`` is d^p − c^p, their cost relative to leaving both
    points unassigned. Pairs not closer than c stay at 0, so the full
    rectangular assignment may include some; dropping them changes nothing.
    """
    cost[rows, cols] = rel_cost
    edge_at = np.full(cost.shape, -1, dtype=np.intp)
    edge_at[rows, cols] = edges
    r, c = linear_sum_assignment(cost)
    hit = edge_at[np.asarray(r, dtype=np.intp), np.asarray(c, dtype=np.intp)]
    return hit[hit >= 0]


def _solve_sparse(
    ei: IntP,
    ej: IntP,
    dp: F64,
    edge_mask: NDArray[np.bool_],
    t_mask: NDArray[np.bool_],
    e_mask: NDArray[np.bool_],
    *,
    c_m: float,
    p: float,
) -> IntP:
    """Edge indices of the optimal matching of the masked components, in one sparse solve."""
    edges = np.flatnonzero(edge_mask)
    if edges.shape[0] == 0:
        return edges
    t_local = np.cumsum(t_mask) - 1
    e_local = np.cumsum(e_mask) - 1
    rows, cols = t_local[ei[edges]], e_local[ej[edges]]
    n_rows, n_cols = int(t_mask.sum()), int(e_mask.sum())
    if n_rows > n_cols:
        rows, cols, n_rows, n_cols = cols, rows, n_cols, n_rows
    # Each row also gets a private dummy column meaning "unassigned" at relative
    # cost 0 against d^p − c^p for a real pair, so a row-full matching always
    # exists and its cost is that of the partial matching it contains. Every
    # row takes exactly one entry, so shifting all weights by 2c^p leaves the
    # optimum unchanged and keeps them > 0 as the solver requires.
    c_p = c_m**p
    matrix = csr_array(
        (
            np.concatenate([dp[edges] + c_p, np.full(n_rows, 2.0 * c_p)]),
            (
                np.concatenate([rows, np.arange(n_rows)]),
                np.concatenate([cols, n_cols + np.arange(n_rows)]),
            ),
        ),
        shape=(n_rows, n_cols + n_rows),
    )
    row_ind, col_ind = min_weight_full_bipartite_matching(matrix)
    row_ind = np.asarray(row_ind, dtype=np.intp)
    col_ind = np.asarray(col_ind, dtype=np.intp)
    real = col_ind < n_cols
    key = rows.astype(np.int64) * n_cols + cols
    order = np.argsort(key)
    found = np.searchsorted(key, row_ind[real].astype(np.int64) * n_cols + col_ind[real],
                            sorter=order)
    return edges[order[np.asarray(found, dtype=np.intp)]]


def _points(x: ArrayLike, name: str) -> F64:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == 0:
        arr = arr.reshape(0, 3)
    if arr.ndim != 2:
        raise InputError(f"shape {arr.shape} is not (n, 3)", field=name,
                         fix="pass one row of ENU metres per object")
    if not np.all(np.isfinite(arr)):
        raise InputError("has NaN or infinite positions", field=name,
                         fix="drop or repair those rows before scoring")
    return arr


def _points_pair(truth_xyz: ArrayLike, est_xyz: ArrayLike) -> tuple[F64, F64]:
    truth, est = _points(truth_xyz, "truth_xyz"), _points(est_xyz, "est_xyz")
    if truth.shape[1] != est.shape[1]:
        if truth.shape[0] == 0:
            truth = truth.reshape(0, est.shape[1])
        elif est.shape[0] == 0:
            est = est.reshape(0, truth.shape[1])
        else:
            raise InputError(
                f"truth has {truth.shape[1]} coordinates, estimates {est.shape[1]}",
                field="est_xyz", fix="give both in the same ENU frame",
            )
    return truth, est


def _check_params(*, c_m: float, p: float, alpha: float) -> None:
    if not (math.isfinite(c_m) and c_m > 0.0):
        raise InputError(f"{c_m} is not a positive distance", field="c_m",
                         fix="use a cut-off in metres such as 100.0")
    if not (math.isfinite(p) and p >= 1.0):
        raise InputError(f"{p} is below 1", field="p", fix="use an order p ≥ 1, usually 2")
    if not 0.0 < alpha <= 2.0:
        raise InputError(f"{alpha} is outside (0, 2]", field="alpha", fix="use alpha = 2")


# --------------------------------------------------------------------------- a whole run


@dataclass(frozen=True, slots=True)
class ScoreReport:
    """Tracking quality of a run, from :func:`score`.

    GOSPA and OSPA are means over scans, metres. The GOSPA parts are means over
    scans in m^p: they add up to the mean of GOSPA^p, not to ``gospa_m``; they
    are NaN unless α = 2. The continuity counts follow the per-scan GOSPA
    assignment (pairs closer than ``c_m`` only). Means over nothing are NaN.
    """

    gospa_m: float
    gospa_localisation: float
    gospa_missed: float
    gospa_false: float
    ospa_m: float
    identity_switches: int
    track_breaks: int
    mean_time_to_confirm_s: float
    truths_never_tracked: int
    false_tracks: int
    false_tracks_per_hour: float
    n_scans: int
    n_truths: int
    n_tracks: int
    unscored_rows: int
    duration_s: float
    c_m: float
    p: float
    alpha: float

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain JSON-ready values; NaN becomes None."""
        out: dict[str, float | int | None] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = None if isinstance(value, float) and math.isnan(value) else value
        return out

    def format_text(self) -> str:
        """A short human-readable summary, one measure family per line."""
        unit_p = "m²" if self.p == 2.0 else f"m^{self.p:g}"
        return "\n".join(
            [
                f"GOSPA {_fmt(self.gospa_m)} m, mean over {self.n_scans} scans "
                f"(c = {self.c_m:g} m, p = {self.p:g}, α = {self.alpha:g})",
                f"  mean parts, {unit_p}: localisation {_fmt(self.gospa_localisation, 1)}, "
                f"missed {_fmt(self.gospa_missed, 1)}, false {_fmt(self.gospa_false, 1)}",
                f"OSPA {_fmt(self.ospa_m)} m",
                f"identity switches {self.identity_switches}, track breaks {self.track_breaks}",
                f"time to confirm {_fmt(self.mean_time_to_confirm_s)} s mean; "
                f"{self.truths_never_tracked} of {self.n_truths} truths never tracked",
                f"false tracks {self.false_tracks} of {self.n_tracks} "
                f"({_fmt(self.false_tracks_per_hour)} per hour over {_fmt(self.duration_s, 1)} s)",
                f"unscored track rows {self.unscored_rows}",
            ]
        )


def _fmt(x: float, decimals: int = 2) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{decimals}f}"


def score(
    truth_t: ArrayLike,
    truth_id: ArrayLike,
    truth_xyz: ArrayLike,
    est_t: ArrayLike,
    est_id: ArrayLike,
    est_xyz: ArrayLike,
    *,
    c_m: float = 100.0,
    p: float = 2.0,
    alpha: float = 2.0,
) -> ScoreReport:
    """Score tracks against truth over a run.

    Inputs are the rows of ``truth.csv`` and ``tracks.csv``: times (n,) float64 s,
    ids (n,) int64, positions (n, 3) ENU metres. Scans are the distinct truth
    times (times within ``TIME_TOL_S`` of the previous one join its scan); track
    rows are scored at the scan whose time they match within ``TIME_TOL_S`` and
    counted in ``unscored_rows`` otherwise.

    Per truth, over the scans it exists in and in order:

    - an identity switch is a change of track id between one scan where it is
      assigned and the next such scan (so a gap followed by another track is
      both a break and a switch);
    - a track break is a run of unassigned scans between two assigned ones;
    - time to confirm is its first assigned time minus its first time.

    A false track is a track id assigned to a truth in fewer than half of the
    scored scans it appears in; ``false_tracks_per_hour`` divides by the time
    from the first to the last scan (NaN when that is zero). ``n_tracks`` counts
    track ids with at least one scored row.
    """
    _check_params(c_m=c_m, p=p, alpha=alpha)
    tt, tid, txyz = _rows(truth_t, truth_id, truth_xyz, "truth", "target")
    et, eid, exyz = _rows(est_t, est_id, est_xyz, "est", "track")
    if txyz.shape[1] != exyz.shape[1] and exyz.shape[0] and txyz.shape[0]:
        raise InputError("truth and track positions differ in dimension", field="est_xyz",
                         fix="give both as (n, 3) ENU metres")

    # Truth rows grouped by scan.
    t_order = np.argsort(tt, kind="stable")
    tt, tid, txyz = tt[t_order], tid[t_order], txyz[t_order]
    new_scan = np.ones(tt.shape[0], dtype=bool)
    new_scan[1:] = np.diff(tt) > TIME_TOL_S
    t_scan = np.cumsum(new_scan) - 1
    scan_t = tt[new_scan]
    n_scans = scan_t.shape[0]

    # Track rows matched to the nearest scan time.
    if n_scans:
        right = np.clip(np.searchsorted(scan_t, et), 0, n_scans - 1)
        left = np.clip(right - 1, 0, n_scans - 1)
        nearest = np.where(np.abs(et - scan_t[left]) <= np.abs(et - scan_t[right]), left, right)
        scored = np.abs(et - scan_t[nearest]) <= TIME_TOL_S
    else:
        nearest = np.zeros(et.shape[0], dtype=np.intp)
        scored = np.zeros(et.shape[0], dtype=bool)
    unscored_rows = int(et.shape[0] - scored.sum())
    e_order = np.flatnonzero(scored)
    e_order = e_order[np.argsort(nearest[e_order], kind="stable")]
    et, eid, exyz, e_scan = et[e_order], eid[e_order], exyz[e_order], nearest[e_order]

    _check_unique(t_scan, tid, scan_t, "truth", "target")
    _check_unique(e_scan, eid, scan_t, "track", "track")

    # One assignment per scan; the loop is over scans, never over targets.
    t_bounds = np.searchsorted(t_scan, np.arange(n_scans + 1))
    e_bounds = np.searchsorted(e_scan, np.arange(n_scans + 1))
    est_of_truth = np.full(tt.shape[0], -1, dtype=np.intp)
    scan_gospa_p = np.empty(n_scans)
    scan_parts = np.empty((n_scans, 3))
    scan_ospa = np.empty(n_scans)
    for s in range(n_scans):
        t0, t1, e0, e1 = t_bounds[s], t_bounds[s + 1], e_bounds[s], e_bounds[s + 1]
        ti, ej, dp = _close_matching(txyz[t0:t1], exyz[e0:e1], c_m=c_m, p=p)
        est_of_truth[t0 + ti] = e0 + ej
        n, m, k, dp_sum = t1 - t0, e1 - e0, ti.shape[0], float(dp.sum())
        total_p, *parts = _gospa_parts(n, m, k, dp_sum, c_m=c_m, p=p, alpha=alpha)
        scan_gospa_p[s] = total_p
        scan_parts[s] = parts
        scan_ospa[s] = _ospa(n, m, k, dp_sum, c_m=c_m, p=p)

    assigned = est_of_truth >= 0
    track_of_truth = np.zeros(tt.shape[0], dtype=np.int64)
    track_of_truth[assigned] = eid[est_of_truth[assigned]]

    # Continuity: truth rows ordered by (truth id, scan); consecutive assigned
    # rows of one truth that are not adjacent have unassigned rows between.
    by_truth = np.lexsort((t_scan, tid))
    s_tid, s_assigned = tid[by_truth], assigned[by_truth]
    s_track, s_t = track_of_truth[by_truth], tt[by_truth]
    pos = np.flatnonzero(s_assigned)
    same_truth = s_tid[pos[1:]] == s_tid[pos[:-1]]
    identity_switches = int(np.sum(same_truth & (s_track[pos[1:]] != s_track[pos[:-1]])))
    track_breaks = int(np.sum(same_truth & (np.diff(pos) > 1)))

    truth_ids, first_row = np.unique(s_tid, return_index=True)
    tracked_ids, first_hit = np.unique(s_tid[pos], return_index=True)
    first_t = s_t[first_row[np.searchsorted(truth_ids, tracked_ids)]]
    confirm_s = s_t[pos[first_hit]] - first_t

    # False tracks: (scan, track id) rows are unique, so rows count scans.
    track_ids, track_inv = np.unique(eid, return_inverse=True)
    appear = np.bincount(track_inv, minlength=track_ids.shape[0])
    hit = np.zeros(eid.shape[0], dtype=bool)
    hit[est_of_truth[assigned]] = True
    hits = np.bincount(track_inv[hit], minlength=track_ids.shape[0])
    false_tracks = int(np.sum(2 * hits < appear))

    duration_s = float(scan_t[-1] - scan_t[0]) if n_scans else math.nan
    per_hour = false_tracks / (duration_s / 3600.0) if duration_s > 0.0 else math.nan
    return ScoreReport(
        gospa_m=_mean(scan_gospa_p ** (1.0 / p)),
        gospa_localisation=_mean(scan_parts[:, 0]),
        gospa_missed=_mean(scan_parts[:, 1]),
        gospa_false=_mean(scan_parts[:, 2]),
        ospa_m=_mean(scan_ospa),
        identity_switches=identity_switches,
        track_breaks=track_breaks,
        mean_time_to_confirm_s=_mean(confirm_s),
        truths_never_tracked=int(truth_ids.shape[0] - tracked_ids.shape[0]),
        false_tracks=false_tracks,
        false_tracks_per_hour=per_hour,
        n_scans=n_scans,
        n_truths=int(truth_ids.shape[0]),
        n_tracks=int(track_ids.shape[0]),
        unscored_rows=unscored_rows,
        duration_s=duration_s,
        c_m=float(c_m),
        p=float(p),
        alpha=float(alpha),
    )


def _mean(x: F64) -> float:
    # np.mean of nothing warns, and warnings are errors here.
    return float(np.mean(x)) if x.shape[0] else math.nan


def _rows(
    t: ArrayLike, ids: ArrayLike, xyz: ArrayLike, side: str, id_name: str
) -> tuple[F64, I64, F64]:
    t_arr = np.asarray(t, dtype=np.float64).reshape(-1)
    id_arr = np.asarray(ids).reshape(-1)
    if id_arr.shape[0] and not np.issubdtype(id_arr.dtype, np.integer):
        raise InputError(f"{side} ids have dtype {id_arr.dtype}", field=f"{side}_id",
                         fix=f"pass {id_name} ids as int64")
    xyz_arr = _points(xyz, f"{side}_xyz")
    if not (t_arr.shape[0] == id_arr.shape[0] == xyz_arr.shape[0]):
        raise InputError(
            f"{side} rows disagree: {t_arr.shape[0]} times, {id_arr.shape[0]} ids, "
            f"{xyz_arr.shape[0]} positions",
            field=f"{side}_t", fix="pass the columns of one table",
        )
    if not np.all(np.isfinite(t_arr)):
        raise InputError(f"{side} times include NaN or infinity", field=f"{side}_t",
                         fix="drop those rows before scoring")
    return t_arr, id_arr.astype(np.int64), xyz_arr


def _check_unique(scan: IntP, ids: I64, scan_t: F64, side: str, id_name: str) -> None:
    if ids.shape[0] < 2:
        return
    order = np.lexsort((ids, scan))
    dup = (np.diff(scan[order]) == 0) & (np.diff(ids[order]) == 0)
    if np.any(dup):
        row = order[int(np.argmax(dup))]
        raise InputError(
            f"{id_name} {int(ids[row])} appears twice in the scan at t = {scan_t[scan[row]]:.6f} s",
            field=f"{side}_id", fix=f"give each {id_name} one row per scan",
        )
