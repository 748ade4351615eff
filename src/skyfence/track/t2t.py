"""Track-to-track fusion by covariance intersection.

A partner's track of an object we also track shares our errors in ways neither
side knows (the same target manoeuvre, maybe the same sensor reports passed
along). A Kalman update would count that information twice and make the track
overconfident; covariance intersection (Julier & Uhlmann) is consistent for any
cross-correlation:

    P⁻¹ = ω Pa⁻¹ + (1 − ω) Pb⁻¹,   x = P (ω Pa⁻¹ xa + (1 − ω) Pb⁻¹ xb),

with ω ∈ [0, 1] chosen to minimise det P. ln det(P⁻¹) is concave in ω, so a
golden-section search finds it.

:func:`covariance_intersection` runs a compiled kernel, one pair at a time (its few
6×6 matrices stay in the L1 cache), Newton steps on the slope of ln det: it fuses a
partner's picture of a thousand tracks, every IMM mode of each, in milliseconds.
:func:`covariance_intersection_reference`, numpy over all pairs at once with the
golden-section search, is the reference it is tested against.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from skyfence.types import F64

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
#: Newton steps at most (a handful suffice; each is kept inside the bracket).
_MAX_NEWTON = 60


def covariance_intersection(xa: F64, Pa: F64, xb: F64, Pb: F64
                            ) -> tuple[F64, F64, F64]:
    """Fuse estimates (n, d) with covariances (n, d, d); returns x, P and ω (n,).

    ω maximises f(ω) = ln det(ω Ia + (1 − ω) Ib) (I: the inverses): f is concave, its
    slope f′ = tr(M⁻¹ D) (M the mixed information, D = Ia − Ib) falls with ω, and
    f″ = −tr((M⁻¹ D)²); Newton steps on f′, kept inside the bracket where it changes
    sign, find it to machine precision in a few Cholesky factorisations a pair (the
    golden-section search of the reference needs 30). A pair whose covariances are not
    positive definite gives NaN rows.
    """
    n, d = xa.shape
    x, P, w = np.empty((n, d)), np.empty((n, d, d)), np.empty(n)
    if n:
        _ci_kernel(np.ascontiguousarray(xa, dtype=np.float64),
                   np.ascontiguousarray(Pa, dtype=np.float64),
                   np.ascontiguousarray(xb, dtype=np.float64),
                   np.ascontiguousarray(Pb, dtype=np.float64), x, P, w)
    return x, P, w


@njit(cache=True, fastmath=False)
def _cholesky(A: F64, L: F64) -> bool:  # pragma: no cover - jitted
    """Lower Cholesky factor of ``A`` into ``L``; False if A is not positive definite."""
    d = A.shape[0]
    for j in range(d):
        s = A[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > 0.0:
            return False
        r = math.sqrt(s)
        L[j, j] = r
        for i in range(j + 1, d):
            s = A[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / r
    return True


@njit(cache=True, fastmath=False)
def _solve(L: F64, B: F64, Y: F64, out: F64) -> None:  # pragma: no cover - jitted
    """``out`` = (L Lᵀ)⁻¹ B for a Cholesky factor ``L`` (``Y``: scratch)."""
    d, m = B.shape
    for c in range(m):
        for i in range(d):  # L Y = B
            s = B[i, c]
            for k in range(i):
                s -= L[i, k] * Y[k, c]
            Y[i, c] = s / L[i, i]
        for i in range(d - 1, -1, -1):  # Lᵀ X = Y
            s = Y[i, c]
            for k in range(i + 1, d):
                s -= L[k, i] * out[k, c]
            out[i, c] = s / L[i, i]


@njit(cache=True, fastmath=False)
def _spd_inverse(A: F64, L: F64, eye: F64, Y: F64, out: F64) -> bool:  # pragma: no cover
    """``out`` = A⁻¹, symmetric; False if A is not positive definite."""
    if not _cholesky(A, L):
        return False
    _solve(L, eye, Y, out)
    d = A.shape[0]
    for i in range(d):
        for j in range(i + 1, d):
            v = 0.5 * (out[i, j] + out[j, i])
            out[i, j] = v
            out[j, i] = v
    return True


@njit(cache=True, fastmath=False)
def _ci_kernel(xa: F64, Pa: F64, xb: F64, Pb: F64, x_out: F64, P_out: F64,
               w_out: F64) -> None:  # pragma: no cover - jitted
    n, d = xa.shape
    eye = np.eye(d)
    Ia, Ib, D = np.empty((d, d)), np.empty((d, d)), np.empty((d, d))
    M, L, Y, X = np.empty((d, d)), np.empty((d, d)), np.empty((d, d)), np.empty((d, d))
    v = np.empty(d)
    for t in range(n):
        if not (_spd_inverse(Pa[t], L, eye, Y, Ia) and _cholesky(Pb[t], L)):
            x_out[t, :] = math.nan
            P_out[t, :, :] = math.nan
            w_out[t] = math.nan
            continue
        # The slope at the ends: f′(0) = tr(Pb Ia) − d, f′(1) = d − tr(Pa Ib). Where
        # one estimate is the better in every direction (most pairs: our track of a
        # partner's object is the partner's track), it is the answer as it is.
        g0 = -float(d)
        for i in range(d):
            for j in range(d):
                g0 += Pb[t, i, j] * Ia[j, i]
        if g0 <= 0.0:
            x_out[t] = xb[t]
            P_out[t] = Pb[t]
            w_out[t] = 0.0
            continue
        _spd_inverse(Pb[t], L, eye, Y, Ib)
        g1 = float(d)
        for i in range(d):
            for j in range(d):
                D[i, j] = Ia[i, j] - Ib[i, j]
                g1 -= Pa[t, i, j] * Ib[j, i]
        if g1 >= 0.0:
            x_out[t] = xa[t]
            P_out[t] = Pa[t]
            w_out[t] = 1.0
            continue
        lo, hi = 0.0, 1.0
        w = g0 / (g0 - g1)  # where a straight slope would cross zero
        for _ in range(_MAX_NEWTON):
            for i in range(d):
                for j in range(d):
                    M[i, j] = w * Ia[i, j] + (1.0 - w) * Ib[i, j]
            if not _cholesky(M, L):
                break
            _solve(L, D, Y, X)
            g, h = 0.0, 0.0
            for i in range(d):
                g += X[i, i]
                for j in range(d):
                    h -= X[i, j] * X[j, i]
            if g > 0.0:
                lo = w
            else:
                hi = w
            step = w - g / h if h < 0.0 else math.nan
            nxt = step if lo < step < hi else 0.5 * (lo + hi)
            done = abs(nxt - w) <= 1e-12 or hi - lo <= 1e-12
            w = nxt
            if done:
                break
        for i in range(d):
            for j in range(d):
                M[i, j] = w * Ia[i, j] + (1.0 - w) * Ib[i, j]
        if not _spd_inverse(M, L, eye, Y, X):
            x_out[t, :] = math.nan
            P_out[t, :, :] = math.nan
            w_out[t] = math.nan
            continue
        for i in range(d):  # the information-weighted sum, then x = P · it
            s = 0.0
            for j in range(d):
                s += w * Ia[i, j] * xa[t, j] + (1.0 - w) * Ib[i, j] * xb[t, j]
            v[i] = s
        for i in range(d):
            s = 0.0
            for j in range(d):
                s += X[i, j] * v[j]
            x_out[t, i] = s
        P_out[t] = X
        w_out[t] = w


def covariance_intersection_reference(xa: F64, Pa: F64, xb: F64, Pb: F64, *,
                                      iterations: int = 25) -> tuple[F64, F64, F64]:
    """:func:`covariance_intersection` in numpy, every pair at once (the reference)."""
    Ia, Ib = np.linalg.inv(Pa), np.linalg.inv(Pb)

    def logdet(w: F64) -> F64:
        _, ld = np.linalg.slogdet(w[:, None, None] * Ia + (1.0 - w)[:, None, None] * Ib)
        return np.asarray(ld, dtype=np.float64)

    n = xa.shape[0]
    lo, hi = np.zeros(n), np.ones(n)
    c = hi - _GOLDEN * (hi - lo)
    d = lo + _GOLDEN * (hi - lo)
    fc, fd = logdet(c), logdet(d)
    for _ in range(iterations):
        left = fc > fd  # the maximum lies in [lo, d]: d becomes hi, c becomes d
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
        kept, f_kept = np.where(left, c, d), np.where(left, fc, fd)
        new = np.where(left, hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo))
        f_new = logdet(new)
        c, fc = np.where(left, new, kept), np.where(left, f_new, f_kept)
        d, fd = np.where(left, kept, new), np.where(left, f_kept, f_new)
    w = 0.5 * (lo + hi)
    ends = np.stack([np.zeros(n), w, np.ones(n)], axis=1)
    scores = np.stack([logdet(ends[:, k]) for k in range(3)], axis=1)
    w = ends[np.arange(n), np.argmax(scores, axis=1)]
    info = w[:, None, None] * Ia + (1.0 - w)[:, None, None] * Ib
    P = np.linalg.inv(info)
    x = np.einsum("nij,nj->ni", P, w[:, None] * np.einsum("nij,nj->ni", Ia, xa)
                  + (1.0 - w)[:, None] * np.einsum("nij,nj->ni", Ib, xb))
    return x, 0.5 * (P + np.swapaxes(P, 1, 2)), w
