"""Batched Kalman measurement update (extended, for non-linear measurement models)."""

from __future__ import annotations

import math

import numpy as np

from skyfence.track.linalg import inv_logdet, quad_form, symmetrise
from skyfence.types import F64

_LOG_2PI = math.log(2.0 * math.pi)


def update(x: F64, P: F64, nu: F64, H: F64, R: F64) -> tuple[F64, F64, F64]:
    """EKF update of states x (k, n), P (k, n, n) with residuals nu (k, m).

    Returns the updated state, covariance and the log-likelihood of each
    residual (k,). The covariance uses P − K S Kᵀ, symmetrised; the property
    tests check that it stays symmetric positive definite.
    """
    PHt = P @ np.swapaxes(H, 1, 2)
    S = symmetrise(H @ PHt + R)
    S_inv, logdet = inv_logdet(S)
    K = PHt @ S_inv
    x_new = x + (K @ nu[:, :, None])[:, :, 0]
    P_new = symmetrise(P - K @ np.swapaxes(PHt, 1, 2))
    loglik = -0.5 * (quad_form(nu, S_inv) + logdet + nu.shape[-1] * _LOG_2PI)
    return x_new, P_new, loglik
