"""Interacting Multiple Model (IMM) estimator, batched over tracks.

Each track carries K model-conditioned estimates x (n, K, 7), P (n, K, 7, 7)
and model probabilities mu (n, K). The roles follow Blom & Bar-Shalom: mix,
predict per model, update per model, re-weight, combine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from skyfence.track.linalg import symmetrise
from skyfence.track.models import ModelNoise, ct_predict, cv_propagate, cv_transition, cwna_q
from skyfence.types import F64


@dataclass(frozen=True, slots=True)
class MotionModel:
    """One IMM mode: ``kind`` 'cv' or 'ct' with its process noise."""

    kind: str
    noise: ModelNoise

def transition_probabilities(dt: float, sojourn_s: Sequence[float]) -> F64:
    """Markov switching matrix Π (K, K) for an interval of ``dt`` s.

    A mode is left at rate 1/sojourn; leaving mass is shared equally among the
    other modes. Built from dt so that scan periods from 0.5 s to 10 s all get
    the same switching behaviour per second; dt = 0 gives the identity.
    """
    k = len(sojourn_s)
    stay = np.exp(-dt / np.asarray(sojourn_s, dtype=np.float64))
    pi = np.tile(((1.0 - stay) / (k - 1))[:, None], (1, k))
    pi[np.arange(k), np.arange(k)] = stay
    return pi

def mix(mu: F64, x: F64, P: F64, pi: F64) -> tuple[F64, F64, F64]:
    """IMM interaction: mixed initial conditions per model and predicted mode probabilities."""
    k = mu.shape[1]
    c_bar = mu @ pi  # (n, K)
    w = mu[:, :, None] * pi[None, :, :] / np.maximum(c_bar[:, None, :], 1e-300)  # (n, i, j)
    x0 = np.einsum("nij,nid->njd", w, x)
    n, _, d, _ = P.shape
    # Σ_i w_ij P_i and the spread Σ_i w_ij dx_ij dx_ijᵀ, as two stacked products over modes.
    P0 = np.matmul(np.swapaxes(w, 1, 2), P.reshape(n, k, d * d)).reshape(P.shape)
    dx = x[:, :, None, :] - x0[:, None, :, :]  # (n, i, j, d)
    wdx = w[..., None] * dx
    P0 += np.matmul(wdx.transpose(0, 2, 3, 1), dx.transpose(0, 2, 1, 3))
    return x0, P0, c_bar


def predict(models: Sequence[MotionModel], x: F64, P: F64, dt: float,
            q_scale: F64) -> tuple[F64, F64]:
    """Predict each model's estimate over ``dt`` s. ``q_scale`` (n,) scales process noise."""
    xp = np.empty_like(x)
    Pp = np.empty_like(P)
    uniform = q_scale.size == 0 or bool((q_scale == q_scale[0]).all())
    for k, m in enumerate(models):  # over the few IMM modes, not over tracks
        q = cwna_q(dt, m.noise)
        # One (7, 7) matrix when every track has the same class scale, the common case.
        Q = q * float(q_scale[0]) if uniform and q_scale.size else q[None] * q_scale[:, None, None]
        if m.kind == "cv":
            xp[:, k] = x[:, k] @ cv_transition(dt).T
            Pp[:, k] = cv_propagate(P[:, k], dt) + Q
        elif m.kind == "ct":
            xp[:, k], J = ct_predict(x[:, k], dt)
            Pp[:, k] = J @ P[:, k] @ np.swapaxes(J, 1, 2) + Q
        else:
            raise ValueError(f"unknown motion model kind {m.kind!r}")
    return xp, symmetrise(Pp)


def combine(mu: F64, x: F64, P: F64) -> tuple[F64, F64]:
    """Moment-matched combined estimate: (n, 7), (n, 7, 7)."""
    n, k, d = x.shape
    xc = (mu[:, None, :] @ x)[:, 0]
    dx = x - xc[:, None, :]
    Pc = (mu[:, None, :] @ P.reshape(n, k, d * d)).reshape(n, d, d)
    Pc += (np.swapaxes(dx, 1, 2) * mu[:, None, :]) @ dx
    return xc, symmetrise(Pc)


def reweight(c_bar: F64, loglik: F64) -> F64:
    """Posterior mode probabilities (n, K) from predicted ones and per-mode log-likelihoods."""
    a = loglik + np.log(np.maximum(c_bar, 1e-300))
    a -= a.max(axis=1, keepdims=True)
    w = np.exp(a)
    return np.asarray(w / w.sum(axis=1, keepdims=True))
