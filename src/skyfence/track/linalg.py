"""Small-matrix kernels for stacks of thousands of tiny matrices.

numpy's batched ``matmul`` and ``linalg.inv`` pay a per-matrix overhead that
dominates for 3×3 and 7×7 blocks (measured: a stack of 30,000 7×7 products
takes ~7× as long as one elementwise pass over the same data). These kernels
write the products as a few whole-array elementwise operations over the
matrix indices instead.
"""

from __future__ import annotations

import numpy as np

from skyfence.types import F64


def inv_logdet(S: F64) -> tuple[F64, F64]:
    """Inverse and log-determinant of a stack of SPD matrices (k, m, m), m ≤ 3 closed form."""
    m = S.shape[-1]
    if m == 1:
        d = S[:, 0, 0]
        return (1.0 / d)[:, None, None], np.log(d)
    if m == 2:
        a, b, c, d = S[:, 0, 0], S[:, 0, 1], S[:, 1, 0], S[:, 1, 1]
        det = a * d - b * c
        inv = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2) / det[:, None, None]
        return inv, np.log(det)
    if m == 3:
        a = S
        c00 = a[:, 1, 1] * a[:, 2, 2] - a[:, 1, 2] * a[:, 2, 1]
        c01 = a[:, 1, 2] * a[:, 2, 0] - a[:, 1, 0] * a[:, 2, 2]
        c02 = a[:, 1, 0] * a[:, 2, 1] - a[:, 1, 1] * a[:, 2, 0]
        det = a[:, 0, 0] * c00 + a[:, 0, 1] * c01 + a[:, 0, 2] * c02
        c10 = a[:, 0, 2] * a[:, 2, 1] - a[:, 0, 1] * a[:, 2, 2]
        c11 = a[:, 0, 0] * a[:, 2, 2] - a[:, 0, 2] * a[:, 2, 0]
        c12 = a[:, 0, 1] * a[:, 2, 0] - a[:, 0, 0] * a[:, 2, 1]
        c20 = a[:, 0, 1] * a[:, 1, 2] - a[:, 0, 2] * a[:, 1, 1]
        c21 = a[:, 0, 2] * a[:, 1, 0] - a[:, 0, 0] * a[:, 1, 2]
        c22 = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
        # inverse = adjugate / det; the adjugate is the transposed cofactor matrix.
        adj = np.stack(
            [np.stack([c00, c10, c20], -1), np.stack([c01, c11, c21], -1),
             np.stack([c02, c12, c22], -1)], -2)
        return adj / det[:, None, None], np.log(det)
    sign, logdet = np.linalg.slogdet(S)
    return np.linalg.inv(S), logdet


def quad_form(nu: F64, S_inv: F64) -> F64:
    """νᵀ S⁻¹ ν for stacks: nu (k, m), S_inv (k, m, m) → (k,)."""
    return np.asarray(((S_inv * nu[:, None, :]).sum(axis=2) * nu).sum(axis=1))


def ph_t(P: F64, H: F64, cols: np.ndarray) -> F64:
    """P Hᵀ (k, n, m) for P (k, n, n), H (k, m, n) whose non-zero columns are ``cols``."""
    out = np.zeros((P.shape[0], P.shape[1], H.shape[1]))
    for d in cols:  # over the few state components a measurement sees
        out += P[:, :, d, None] * H[:, None, :, d]
    return out


def h_x(H: F64, X: F64, cols: np.ndarray) -> F64:
    """H X (k, m, p) for H (k, m, n) with non-zero columns ``cols`` and X (k, n, p)."""
    out = np.zeros((H.shape[0], H.shape[1], X.shape[2]))
    for d in cols:
        out += H[:, :, d, None] * X[:, None, d, :]
    return out


def times_small(A: F64, B: F64) -> F64:
    """A B for A (k, n, m), B (k, m, p) with small m."""
    out = np.zeros((A.shape[0], A.shape[1], B.shape[2]))
    for d in range(A.shape[2]):
        out += A[:, :, d, None] * B[:, None, d, :]
    return out


def symmetrise(P: F64) -> F64:
    return 0.5 * (P + np.swapaxes(P, -1, -2))
