"""Kernel primitives shared by every extraction method: input checks, simplex projection, one-hot kernels.

A kernel is P(s' | s, a), shape (S, A, K); Q has shape (S, A, G) and the Bellman matrix M (G, K).
"""

from __future__ import annotations

import numpy as np

from plray.core.types import FloatArray, IntArray
from plray.utils.validation import PlrayInputError, as_float_array


def check_qm(Q: object, M: object) -> tuple[FloatArray, FloatArray]:
    """Validate Q (S, A, G) and M (G, K): finite, and with matching goal axes."""
    Q = as_float_array(Q, "Q", ndim=3)
    M = as_float_array(M, "M", ndim=2)
    if Q.shape[2] != M.shape[0]:
        raise PlrayInputError(
            f"Q and M disagree on the number of goals: Q has shape (S, A, G) = {Q.shape} with G = "
            f"{Q.shape[2]}, M has shape (G, K) = {M.shape} with G = {M.shape[0]}"
        )
    if min(Q.shape) == 0 or min(M.shape) == 0:
        raise PlrayInputError(f"Q {Q.shape} and M {M.shape} must have no empty axis")
    return Q, M


def project_simplex(X: FloatArray) -> FloatArray:
    """Euclidean projection of each row of X (..., K) onto the probability simplex.

    The sort-based algorithm of Held, Wolfe and Crowder (1974), vectorised over leading axes.
    """
    X = np.asarray(X, dtype=np.float64)
    shape = X.shape
    Y = X.reshape(-1, shape[-1])
    U = -np.sort(-Y, axis=1)
    css = np.cumsum(U, axis=1) - 1.0
    ks = np.arange(1, Y.shape[1] + 1)
    cond = U - css / ks > 0
    rho = cond.shape[1] - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = css[np.arange(Y.shape[0]), rho] / (rho + 1)
    return np.maximum(Y - theta[:, None], 0.0).reshape(shape)


def one_hot_kernel(indices: IntArray, K: int) -> FloatArray:
    """Deterministic kernel with P(s, a, indices[s, a]) = 1, shape (S, A, K)."""
    S, A = indices.shape
    P = np.zeros((S, A, K))
    np.put_along_axis(P, indices[..., None], 1.0, axis=-1)
    return P
