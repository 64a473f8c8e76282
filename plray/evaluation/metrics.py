"""Distances between an extracted kernel and the true one.

* **TV**: total-variation distance per (s, a), ½ ‖P̂(s, a, ·) − P(s, a, ·)‖₁, reported as its mean and
  max over all (s, a). Entries of P̂ may be negative or not sum to one (the closed form without
  projection); TV is then still the ℓ₁ distance over two, which bounds the error of any expectation
  of a function bounded by 1 taken under P̂ instead of P.
* **Kernel MSE**: the mean of (P̂(s, a, s') − P(s, a, s'))² over all S·A·S entries: the "mean MSE"
  of the paper's FourRooms figures, whose averaging the paper does not state (docs/method.md#tv-and-kernel-mse).
"""

from __future__ import annotations

import numpy as np

from plray.core.types import FloatArray
from plray.utils.validation import PlrayInputError, as_float_array


def _pair(P_hat: object, P: object) -> tuple[FloatArray, FloatArray]:
    P_hat = as_float_array(P_hat, "P_hat", ndim=3)
    P = as_float_array(P, "P", ndim=3)
    if P_hat.shape != P.shape:
        raise PlrayInputError(f"P_hat has shape {P_hat.shape} but the true kernel has shape {P.shape}")
    return P_hat, P


def tv_distance(P_hat: object, P: object) -> FloatArray:
    """½ ‖P̂(s, a) − P(s, a)‖₁ for every (s, a), shape (S, A)."""
    P_hat, P = _pair(P_hat, P)
    return 0.5 * np.abs(P_hat - P).sum(axis=-1)


def kernel_mse(P_hat: object, P: object) -> float:
    """Mean over all (s, a, s') of (P̂ − P)²."""
    P_hat, P = _pair(P_hat, P)
    return float(((P_hat - P) ** 2).mean())


def kernel_metrics(P_hat: object, P: object) -> dict[str, float]:
    """``{"tv_mean", "tv_max", "kernel_mse"}``."""
    tv = tv_distance(P_hat, P)
    return {"tv_mean": float(tv.mean()), "tv_max": float(tv.max()), "kernel_mse": kernel_mse(P_hat, P)}
