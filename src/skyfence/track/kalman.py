"""Batched Kalman measurement update (extended, for non-linear measurement models)."""

from __future__ import annotations

import math

import numpy as np

from skyfence.types import F64

_LOG_2PI = math.log(2.0 * math.pi)


def symmetrise(P: F64) -> F64:
    return 0.5 * (P + np.swapaxes(P, -1, -2))


def innovation_cov(P: F64, H: F64, R: F64) -> F64:
    """S = H P Hᵀ + R for stacks: P (..., n, n), H (..., m, n), R (..., m, m)."""
    return symmetrise(H @ P @ np.swapaxes(H, -1, -2) + R)


def update(x: F64, P: F64, nu: F64, H: F64, R: F64) -> tuple[F64, F64, F64]:
    """EKF update of states x (k, n), P (k, n, n) with residuals nu (k, m).

    Returns the updated state and covariance (Joseph form, which keeps P
    symmetric positive definite under rounding) and the log-likelihood of each
    residual, (k,).
    """
    S = innovation_cov(P, H, R)
    Ht = np.swapaxes(H, -1, -2)
    PHt = P @ Ht
    S_inv = np.linalg.inv(S)
    K = PHt @ S_inv
    x_new = x + np.einsum("kij,kj->ki", K, nu)
    I_KH = np.eye(x.shape[-1]) - K @ H
    P_new = I_KH @ P @ np.swapaxes(I_KH, -1, -2) + K @ R @ np.swapaxes(K, -1, -2)
    d2 = np.einsum("ki,kij,kj->k", nu, S_inv, nu)
    _, logdet = np.linalg.slogdet(S)
    loglik = -0.5 * (d2 + logdet + nu.shape[-1] * _LOG_2PI)
    return x_new, symmetrise(P_new), loglik
