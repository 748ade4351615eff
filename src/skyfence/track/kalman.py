"""Batched Kalman measurement update (extended, for non-linear measurement models)."""

from __future__ import annotations

import math

import numpy as np

from skyfence.track.linalg import h_x, inv_logdet, ph_t, quad_form, symmetrise, times_small
from skyfence.types import F64

_LOG_2PI = math.log(2.0 * math.pi)


def observed_columns(H: F64) -> np.ndarray:
    """State components that a stack of Jacobians (k, m, n) touches."""
    return np.flatnonzero(np.any(H != 0.0, axis=(0, 1)))


def innovation(P: F64, H: F64, R: F64) -> tuple[F64, F64]:
    """P Hᵀ (k, n, m) and S = H P Hᵀ + R (k, m, m)."""
    cols = observed_columns(H)
    PHt = ph_t(P, H, cols)
    S = symmetrise(h_x(H, PHt, cols) + R)
    return PHt, S


def innovation_cov(P: F64, H: F64, R: F64) -> F64:
    """S = H P Hᵀ + R (k, m, m) for a dense H (k, m, n) over a small state block."""
    return symmetrise(times_small(times_small(H, P), np.swapaxes(H, 1, 2)) + R)


def update(x: F64, P: F64, nu: F64, H: F64, R: F64) -> tuple[F64, F64, F64]:
    """EKF update of states x (k, n), P (k, n, n) with residuals nu (k, m).

    Returns the updated state, covariance and the log-likelihood of each
    residual (k,). The covariance uses P − K S Kᵀ, symmetrised: measured to
    stay symmetric positive definite in the property tests, at a third of the
    Joseph form's cost.
    """
    PHt, S = innovation(P, H, R)
    S_inv, logdet = inv_logdet(S)
    K = times_small(PHt, S_inv)
    x_new = x + (K * nu[:, None, :]).sum(axis=2)
    P_new = symmetrise(P - times_small(K, np.swapaxes(PHt, 1, 2)))
    loglik = -0.5 * (quad_form(nu, S_inv) + logdet + nu.shape[-1] * _LOG_2PI)
    return x_new, P_new, loglik
