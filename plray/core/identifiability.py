"""Identifiability diagnostics for a Bellman matrix M (docs/method.md#identifiability).

Whether an agent's Q-values pin down its world model is a property of M alone:

* **stochastic kernels**: P(s, a) is unique iff M has full column rank (rank M = K, so |G| ≥ K).
  For ε-accurate Q-values, ‖Q̂(s, a, ·) − Q(s, a, ·)‖₁ ≤ ε (ℓ₁ over goals), the closed form
  P̂ = M̂⁺Q̂ satisfies ‖P̂(s, a) − P(s, a)‖₁ ≤ ‖M̂⁺‖₁ (1 + γ|A|) ε, with M̂ built from the same
  Q̂ (each column of M̂ − M has ℓ₁ norm at most γ|A|ε).
* **deterministic kernels**: column matching recovers the true successor exactly when all columns
  of M are distinct and ε < gap(M) / (2 (1 + γ|A|)), gap(M) the least ℓ₁ distance between two
  columns. One generic goal already makes every column distinct.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from plray.core.types import FloatArray
from plray.utils.validation import PlrayInputError, as_float_array, check_gamma


def column_gap(M: FloatArray, chunk: int = 512) -> float:
    """Least ℓ₁ distance between two distinct candidate columns of M, shape (G, K)."""
    K = M.shape[1]
    if K < 2:
        return float("inf")
    best = np.inf
    cols = M.T
    for start in range(0, K, chunk):
        block = np.abs(cols[start : start + chunk, None, :] - cols[None, :, :]).sum(-1)  # (c, K)
        idx = np.arange(start, min(start + chunk, K))
        block[idx - start, idx] = np.inf
        best = min(best, float(block.min()))
    return best


@dataclass(frozen=True)
class Identifiability:
    """What M says about whether, and how well, P can be recovered.

    Attributes:
        num_goals, num_candidates, num_actions: G, K and |A|.
        gamma: discount.
        rank: numerical rank of M.
        sigma_max: largest singular value of M.
        sigma_min: K-th singular value (0 when G < K): how far M is from losing column rank.
        column_gap: least ℓ₁ distance between two columns of M.
        pinv_norm_l1: ‖M⁺‖₁, the induced ℓ₁ norm (max absolute column sum) of the pseudo-inverse.
        eps: the Q-error level the bounds below were evaluated at (ℓ₁ over goals, per (s, a)).
        stochastic_bound: ‖M⁺‖₁ (1 + γ|A|) ε, the ℓ₁ recovery error bound of the closed form (TV is
            half of it); infinite when M lacks full column rank.
        column_match_tolerance: gap / (2 (1 + γ|A|)): below this Q error, column matching is exact.
        identifiable_stochastic: rank M = K.
        identifiable_deterministic: every column of M is distinct.
    """

    num_goals: int
    num_candidates: int
    num_actions: int
    gamma: float
    rank: int
    sigma_max: float
    sigma_min: float
    column_gap: float
    pinv_norm_l1: float
    eps: float
    stochastic_bound: float
    column_match_tolerance: float
    identifiable_stochastic: bool
    identifiable_deterministic: bool

    def identifiable(self, deterministic: bool) -> bool:
        """Identifiability for the kernel class: deterministic or general stochastic kernels."""
        return self.identifiable_deterministic if deterministic else self.identifiable_stochastic

    def to_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def identifiability(M: FloatArray, num_actions: int, gamma: float, eps: float = 0.0) -> Identifiability:
    """Diagnose M, shape (G, K), for an agent with ``num_actions`` actions and Q error ``eps``."""
    M = as_float_array(M, "M", ndim=2)
    gamma = check_gamma(gamma)
    if num_actions < 1:
        raise PlrayInputError(f"num_actions: must be >= 1, got {num_actions}")
    if eps < 0:
        raise PlrayInputError(f"eps: must be >= 0, got {eps}")
    G, K = M.shape
    sv = np.linalg.svd(M, compute_uv=False)
    rank = int(np.linalg.matrix_rank(M))
    sigma_min = float(sv[K - 1]) if G >= K else 0.0
    pinv = np.linalg.pinv(M)
    pinv_norm = float(np.abs(pinv).sum(axis=0).max())
    gap = column_gap(M)
    scale = max(1.0, float(np.abs(M).max()))
    det_ok = bool(gap > 1e-9 * scale)
    stoch_ok = rank == K
    amplification = 1.0 + gamma * num_actions
    return Identifiability(
        num_goals=G,
        num_candidates=K,
        num_actions=int(num_actions),
        gamma=gamma,
        rank=rank,
        sigma_max=float(sv[0]),
        sigma_min=sigma_min,
        column_gap=float(gap),
        pinv_norm_l1=pinv_norm,
        eps=float(eps),
        stochastic_bound=pinv_norm * amplification * eps if stoch_ok else float("inf"),
        column_match_tolerance=float(gap) / (2.0 * amplification),
        identifiable_stochastic=stoch_ok,
        identifiable_deterministic=det_ok,
    )
