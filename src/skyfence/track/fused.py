"""Fused per-track IMM kernels, compiled with numba.

The numpy forms in ``imm`` and ``kalman`` make ~60 passes over arrays of
(tracks × modes × 7 × 7) per scan; at 10,000 tracks that memory traffic, not
arithmetic, sets the scan time (measured: ~200 ms per scan). These kernels do
the same arithmetic one track at a time with its few kilobytes in the L1
cache. They are checked against the numpy forms, which stay the reference,
in ``tests/track/test_fused.py``.

State layout as everywhere in the tracker: x (n, K, 7), P (n, K, 7, 7),
mu (n, K). Mode kinds: 0 nearly-constant velocity, 1 coordinated turn.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from skyfence.types import F64

CV, CT = 0, 1
_D = 7


@njit(cache=True, fastmath=False)
def _ct_jacobian(x: F64, dt: float, out_x: F64, J: F64) -> None:  # pragma: no cover - jitted
    w = x[6]
    ve, vn = x[3], x[4]
    wt = w * dt
    s, c = math.sin(wt), math.cos(wt)
    if abs(wt) < 1e-4:
        a = dt * (1.0 - wt * wt / 6.0)
        b = dt * wt / 2.0
        da = -w * dt**3 / 3.0
        db = dt * dt / 2.0 - w * w * dt**4 / 8.0
    else:
        a = s / w
        b = (1.0 - c) / w
        da = (wt * c - s) / (w * w)
        db = (wt * s - 1.0 + c) / (w * w)
    for i in range(_D):
        out_x[i] = x[i]
        for j in range(_D):
            J[i, j] = 1.0 if i == j else 0.0
    out_x[0] = x[0] + a * ve - b * vn
    out_x[1] = x[1] + b * ve + a * vn
    out_x[2] = x[2] + dt * x[5]
    out_x[3] = c * ve - s * vn
    out_x[4] = s * ve + c * vn
    J[0, 3], J[0, 4], J[0, 6] = a, -b, da * ve - db * vn
    J[1, 3], J[1, 4], J[1, 6] = b, a, db * ve + da * vn
    J[2, 5] = dt
    J[3, 3], J[3, 4], J[3, 6] = c, -s, -dt * (s * ve + c * vn)
    J[4, 3], J[4, 4], J[4, 6] = s, c, dt * (c * ve - s * vn)


@njit(cache=True, fastmath=False)
def _combine_one(mu: F64, x: F64, P: F64, xc: F64, Pc: F64) -> None:  # pragma: no cover
    k = mu.shape[0]
    for a in range(_D):
        s = 0.0
        for m in range(k):
            s += mu[m] * x[m, a]
        xc[a] = s
    for a in range(_D):
        for b in range(a, _D):
            s = 0.0
            for m in range(k):
                s += mu[m] * (P[m, a, b] + (x[m, a] - xc[a]) * (x[m, b] - xc[b]))
            Pc[a, b] = s
            Pc[b, a] = s


@njit(cache=True, fastmath=False)
def imm_predict(mu: F64, x: F64, P: F64, pi: F64, dt: float, kinds: np.ndarray, Q: F64,
                q_scale: F64, xc: F64, Pc: F64) -> None:  # pragma: no cover - jitted
    """Mix, predict every mode over ``dt`` and combine, in place (mu becomes c̄)."""
    n, k = mu.shape
    c_bar = np.empty(k)
    w = np.empty((k, k))
    x0 = np.empty((k, _D))
    P0 = np.empty((k, _D, _D))
    xp = np.empty(_D)
    J = np.empty((_D, _D))
    JP = np.empty((_D, _D))
    for t in range(n):
        for j in range(k):
            s = 0.0
            for i in range(k):
                s += mu[t, i] * pi[i, j]
            c_bar[j] = max(s, 1e-300)
        for i in range(k):
            for j in range(k):
                w[i, j] = mu[t, i] * pi[i, j] / c_bar[j]
        for j in range(k):
            for a in range(_D):
                s = 0.0
                for i in range(k):
                    s += w[i, j] * x[t, i, a]
                x0[j, a] = s
            for a in range(_D):
                for b in range(a, _D):
                    s = 0.0
                    for i in range(k):
                        s += w[i, j] * (P[t, i, a, b]
                                        + (x[t, i, a] - x0[j, a]) * (x[t, i, b] - x0[j, b]))
                    P0[j, a, b] = s
                    P0[j, b, a] = s
        for j in range(k):
            if kinds[j] == CT:
                _ct_jacobian(x0[j], dt, xp, J)
            else:
                for a in range(_D):
                    xp[a] = x0[j, a]
                xp[0] += dt * x0[j, 3]
                xp[1] += dt * x0[j, 4]
                xp[2] += dt * x0[j, 5]
            for a in range(_D):
                x[t, j, a] = xp[a]
            # J P Jᵀ; J differs from the identity only in rows 0-4 (CT) or in the
            # position-velocity coupling (CV), so each product row mixes a few rows.
            for b in range(_D):
                for a in range(_D):
                    JP[a, b] = P0[j, a, b]
                if kinds[j] == CT:
                    for a in range(5):
                        s = 0.0
                        for c in (0, 1, 2, 3, 4, 5, 6):
                            s += J[a, c] * P0[j, c, b]
                        JP[a, b] = s
                else:
                    JP[0, b] += dt * P0[j, 3, b]
                    JP[1, b] += dt * P0[j, 4, b]
                    JP[2, b] += dt * P0[j, 5, b]
            for a in range(_D):
                for b in range(a, _D):
                    if kinds[j] == CT:
                        if b < 5:
                            s = 0.0
                            for c in range(_D):
                                s += JP[a, c] * J[b, c]
                        else:
                            s = JP[a, b]
                    elif b < 3:
                        s = JP[a, b] + dt * JP[a, b + 3]
                    else:
                        s = JP[a, b]
                    s += Q[j, a, b] * q_scale[t]
                    P[t, j, a, b] = s
                    P[t, j, b, a] = s
            mu[t, j] = c_bar[j]
        _combine_one(mu[t], x[t], P[t], xc[t], Pc[t])


@njit(cache=True, fastmath=False)
def _inv_small(S: F64, out: F64, a: F64) -> float:  # pragma: no cover - jitted
    """Inverse of a small SPD matrix into ``out`` by Gauss-Jordan (``a``: scratch); ln|S|."""
    m = S.shape[0]
    for i in range(m):
        for j in range(m):
            a[i, j] = S[i, j]
            out[i, j] = 1.0 if i == j else 0.0
    logdet = 0.0
    for c in range(m):
        piv = a[c, c]
        logdet += math.log(piv)
        for j in range(m):
            a[c, j] /= piv
            out[c, j] /= piv
        for r in range(m):
            if r != c:
                f = a[r, c]
                if f != 0.0:
                    for j in range(m):
                        a[r, j] -= f * a[c, j]
                        out[r, j] -= f * out[c, j]
    return logdet


@njit(cache=True, fastmath=False)
def imm_update(x: F64, P: F64, mu: F64, H: F64, nu: F64, R: F64, xc: F64,
               Pc: F64) -> None:  # pragma: no cover - jitted
    """EKF update of every mode of every row, mode re-weighting and combination, in place.

    x (n, K, 7), P (n, K, 7, 7), mu (n, K), H (n, K, m, 7), nu (n, K, m), R (n, m, m).
    """
    n, k = mu.shape
    m = nu.shape[2]
    PHt = np.empty((_D, m))
    S = np.empty((m, m))
    Si = np.empty((m, m))
    scratch = np.empty((m, m))
    Kg = np.empty((_D, m))
    loglik = np.empty(k)
    log2pi = math.log(2.0 * math.pi)
    for t in range(n):
        for j in range(k):
            for a in range(_D):
                for b in range(m):
                    s = 0.0
                    for c in range(_D):
                        h = H[t, j, b, c]
                        if h != 0.0:
                            s += P[t, j, a, c] * h
                    PHt[a, b] = s
            for a in range(m):
                for b in range(a, m):
                    s = R[t, a, b]
                    for c in range(_D):
                        h = H[t, j, a, c]
                        if h != 0.0:
                            s += h * PHt[c, b]
                    S[a, b] = s
                    S[b, a] = s
            logdet = _inv_small(S, Si, scratch)
            d2 = 0.0
            for a in range(m):
                for b in range(m):
                    d2 += nu[t, j, a] * Si[a, b] * nu[t, j, b]
            loglik[j] = -0.5 * (d2 + logdet + m * log2pi)
            for a in range(_D):
                for b in range(m):
                    s = 0.0
                    for c in range(m):
                        s += PHt[a, c] * Si[c, b]
                    Kg[a, b] = s
            for a in range(_D):
                s = 0.0
                for b in range(m):
                    s += Kg[a, b] * nu[t, j, b]
                x[t, j, a] += s
            for a in range(_D):
                for b in range(a, _D):
                    s = 0.0
                    for c in range(m):
                        s += Kg[a, c] * PHt[b, c]
                    v = P[t, j, a, b] - s
                    P[t, j, a, b] = v
                    P[t, j, b, a] = v
        top = -np.inf
        for j in range(k):
            loglik[j] += math.log(max(mu[t, j], 1e-300))
            top = max(top, loglik[j])
        total = 0.0
        for j in range(k):
            loglik[j] = math.exp(loglik[j] - top)
            total += loglik[j]
        for j in range(k):
            mu[t, j] = loglik[j] / total
        _combine_one(mu[t], x[t], P[t], xc[t], Pc[t])


def warm_up(k: int, dims: tuple[int, ...], *, partner_tracks: bool = False) -> None:
    """Load (or compile) the kernels for ``k`` modes and these measurement sizes now
    (and, with ``partner_tracks``, track-to-track fusion's).

    The first call of a numba kernel in a process costs ~0.4 s even from the
    cache; a tracker pays it when it is built, not in its first scans.
    """
    if partner_tracks:
        from skyfence.track.t2t import covariance_intersection

        eye = np.eye(6)[None]
        covariance_intersection(np.zeros((1, 6)), eye, np.zeros((1, 6)), 2.0 * eye)
    x = np.zeros((1, k, _D))
    P = np.broadcast_to(np.eye(_D), (1, k, _D, _D)).copy()
    mu = np.full((1, k), 1.0 / k)
    xc, Pc = np.empty((1, _D)), np.empty((1, _D, _D))
    imm_predict(mu, x, P, np.eye(k), 1.0, np.zeros(k, dtype=np.int64),
                np.zeros((k, _D, _D)), np.ones(1), xc, Pc)
    for m in dims:
        H = np.zeros((1, k, m, _D))
        H[0, :, np.arange(m), np.arange(m)] = 1.0
        imm_update(x, P, mu, H, np.zeros((1, k, m)), np.eye(m)[None], xc, Pc)
