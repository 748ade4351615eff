"""Motion models on the 7-element state [e, n, u, ve, vn, vu, ω] (m, m/s, rad/s).

Every model carries the turn rate ω so that the IMM can mix states between a
nearly-constant-velocity model (which ignores ω) and a coordinated-turn model
(which turns the horizontal velocity at ω, counter-clockwise in the east-north
plane, positive = left turn). Process noise is continuous white noise
acceleration with spectral density ``q`` (m²/s³) on each axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skyfence.types import F64

STATE_DIM = 7
POS = slice(0, 3)
VEL = slice(3, 6)
OMEGA = 6


@dataclass(frozen=True, slots=True)
class ModelNoise:
    """Process noise of one motion model.

    ``q_h_m2ps3`` and ``q_v_m2ps3`` are the horizontal and vertical acceleration
    spectral densities; ``q_omega_rad2ps3`` drives the turn rate.
    """

    q_h_m2ps3: float
    q_v_m2ps3: float
    q_omega_rad2ps3: float


def cwna_q(dt: float, noise: ModelNoise) -> F64:
    """Process-noise covariance (7, 7) for one interval of ``dt`` seconds."""
    q = np.zeros((STATE_DIM, STATE_DIM))
    for axis, qa in ((0, noise.q_h_m2ps3), (1, noise.q_h_m2ps3), (2, noise.q_v_m2ps3)):
        q[axis, axis] = qa * dt**3 / 3.0
        q[axis, axis + 3] = q[axis + 3, axis] = qa * dt**2 / 2.0
        q[axis + 3, axis + 3] = qa * dt
    q[OMEGA, OMEGA] = noise.q_omega_rad2ps3 * dt
    return q


def cv_transition(dt: float) -> F64:
    """Nearly-constant-velocity transition (7, 7); ω is carried unchanged."""
    f = np.eye(STATE_DIM)
    f[0, 3] = f[1, 4] = f[2, 5] = dt
    return f


def ct_predict(x: F64, dt: float) -> tuple[F64, F64]:
    """Coordinated-turn prediction of states (n, 7) over ``dt`` s and its Jacobian (n, 7, 7).

    Vertical motion is constant velocity. Near ω = 0 the closed forms divide by
    small numbers, so their Taylor series are used instead.
    """
    n = x.shape[0]
    w = x[:, OMEGA]
    ve, vn = x[:, 3], x[:, 4]
    wt = w * dt
    small = np.abs(wt) < 1e-4
    w_safe = np.where(small, 1.0, w)
    s, c = np.sin(wt), np.cos(wt)
    # a = sin(ωT)/ω, b = (1 − cos ωT)/ω, and their derivatives in ω.
    a = np.where(small, dt * (1.0 - wt**2 / 6.0), s / w_safe)
    b = np.where(small, dt * wt / 2.0, (1.0 - c) / w_safe)
    da = np.where(small, -w * dt**3 / 3.0, (wt * c - s) / w_safe**2)
    db = np.where(small, dt**2 / 2.0 - w**2 * dt**4 / 8.0, (wt * s - 1.0 + c) / w_safe**2)

    xp = x.copy()
    xp[:, 0] = x[:, 0] + a * ve - b * vn
    xp[:, 1] = x[:, 1] + b * ve + a * vn
    xp[:, 2] = x[:, 2] + dt * x[:, 5]
    xp[:, 3] = c * ve - s * vn
    xp[:, 4] = s * ve + c * vn

    jac = np.broadcast_to(np.eye(STATE_DIM), (n, STATE_DIM, STATE_DIM)).copy()
    jac[:, 0, 3], jac[:, 0, 4], jac[:, 0, OMEGA] = a, -b, da * ve - db * vn
    jac[:, 1, 3], jac[:, 1, 4], jac[:, 1, OMEGA] = b, a, db * ve + da * vn
    jac[:, 2, 5] = dt
    jac[:, 3, 3], jac[:, 3, 4], jac[:, 3, OMEGA] = c, -s, -dt * (s * ve + c * vn)
    jac[:, 4, 3], jac[:, 4, 4], jac[:, 4, OMEGA] = s, c, dt * (c * ve - s * vn)
    return xp, jac


def cv_propagate(P: F64, dt: float) -> F64:
    """F P Fᵀ for the constant-velocity F, as two slice updates instead of matmuls."""
    fp = P.copy()
    fp[:, 0:3, :] += dt * P[:, 3:6, :]
    out = fp.copy()
    out[:, :, 0:3] += dt * fp[:, :, 3:6]
    return out
