"""Track-to-track fusion by covariance intersection.

A partner's track of an object we also track shares our errors in ways neither
side knows (the same target manoeuvre, maybe the same sensor reports passed
along). A Kalman update would count that information twice and make the track
overconfident; covariance intersection (Julier & Uhlmann) is consistent for any
cross-correlation:

    P⁻¹ = ω Pa⁻¹ + (1 − ω) Pb⁻¹,   x = P (ω Pa⁻¹ xa + (1 − ω) Pb⁻¹ xb),

with ω ∈ [0, 1] chosen to minimise det P. ln det(P⁻¹) is concave in ω, so a
golden-section search finds it; it runs on all pairs at once.
"""

from __future__ import annotations

import math

import numpy as np

from skyfence.types import F64

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def covariance_intersection(xa: F64, Pa: F64, xb: F64, Pb: F64, *,
                            iterations: int = 25) -> tuple[F64, F64, F64]:
    """Fuse estimates (n, d) with covariances (n, d, d); returns x, P and ω (n,)."""
    Ia, Ib = np.linalg.inv(Pa), np.linalg.inv(Pb)

    def logdet(w: F64) -> F64:
        _, ld = np.linalg.slogdet(w[:, None, None] * Ia + (1.0 - w)[:, None, None] * Ib)
        return np.asarray(ld, dtype=np.float64)

    n = xa.shape[0]
    lo, hi = np.zeros(n), np.ones(n)
    c = hi - _GOLDEN * (hi - lo)
    d = lo + _GOLDEN * (hi - lo)
    fc, fd = logdet(c), logdet(d)
    # Golden-section search, every pair at once: each step keeps one interior point and
    # evaluates one new one (25 steps: the interval shrinks to 6e-6).
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
    # The end points are candidates too (one estimate may be better in every direction).
    ends = np.stack([np.zeros(n), w, np.ones(n)], axis=1)
    scores = np.stack([logdet(ends[:, k]) for k in range(3)], axis=1)
    w = ends[np.arange(n), np.argmax(scores, axis=1)]
    info = w[:, None, None] * Ia + (1.0 - w)[:, None, None] * Ib
    P = np.linalg.inv(info)
    x = np.einsum("nij,nj->ni", P, w[:, None] * np.einsum("nij,nj->ni", Ia, xa)
                  + (1.0 - w)[:, None] * np.einsum("nij,nj->ni", Ib, xb))
    return x, 0.5 * (P + np.swapaxes(P, 1, 2)), w
