"""Baselines that P-learning generalises (docs/method.md#value-argmin, #wvf).

* **Single-value argmin inversion** (Adamczyk 2025): for deterministic dynamics and one reward,
  Q(s, a) = r(s, a) + γ V(f(s, a)), so the successor is the state whose value is nearest
  (Q(s, a) − r(s, a)) / γ. Identifiable when V is δ-separable (|V(x) − V(y)| ≥ δ for x ≠ y) and
  the value error ε < δ (2/γ + 2)⁻¹.
* **World-value-function inversion** (Nangue Tasse et al. 2022): per (s, a), solve the Bellman
  system by a pseudo-inverse restricted to a local candidate set C(s) (the state and its
  neighbours), using the goals located in C(s).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from plray.core.kernel import check_qm, one_hot_kernel
from plray.core.types import FloatArray, IntArray
from plray.utils.validation import PlrayInputError, as_float_array, check_gamma


def value_argmin_inversion(
    q: FloatArray,
    v: FloatArray,
    gamma: float,
    reward: FloatArray | float = 0.0,
) -> IntArray:
    """Adamczyk's inversion: ŝ'(s, a) = argmin_x | V(x) − (Q(s, a) − r(s, a)) / γ |.

    Args:
        q: Q^π(s, a) for one reward, shape (S, A).
        v: V^π(x) at each candidate next state, shape (K,).
        gamma: discount in (0, 1).
        reward: r(s, a), shape (S, A) or a scalar (reward on the current state-action, Paper B's
            convention).

    Returns:
        successor indices into the K candidates, shape (S, A).
    """
    gamma = check_gamma(gamma)
    q = as_float_array(q, "q", ndim=2)
    v = as_float_array(v, "v", ndim=1)
    r = np.broadcast_to(as_float_array(reward, "reward"), q.shape)
    target = (q - r) / gamma  # (S, A)
    return np.abs(v[None, None, :] - target[..., None]).argmin(axis=-1)


def separability(v: FloatArray) -> float:
    """δ = min_{x ≠ y} |V(x) − V(y)|: the value gap Paper B's discrete bound needs."""
    v = np.sort(as_float_array(v, "v", ndim=1))
    return float(np.diff(v).min()) if v.size > 1 else float("inf")


def value_argmin_tolerance(delta: float, gamma: float) -> float:
    """Largest value error ε with guaranteed identification: δ (2/γ + 2)⁻¹ (Paper B)."""
    gamma = check_gamma(gamma)
    return delta / (2.0 / gamma + 2.0)


def value_argmin_kernel(Q: FloatArray, M: FloatArray, gamma: float, *, goal: int = 0) -> FloatArray:
    """The single-value inversion applied to one goal of a goal-conditioned agent, shape (S, A, K).

    With reward on arrival, Q(s, a, g) = M[g, s'] for deterministic dynamics, so Paper B's
    equation holds with r(s, a) = 0 and V(x) replaced by the arrival value M[g, x] / γ. Only goal
    ``goal`` is used: this is the one-reward method, whatever the agent was trained on.
    """
    Q, M = check_qm(Q, M)
    G = Q.shape[2]
    if not 0 <= goal < G:
        raise PlrayInputError(f"goal: index must be in [0, {G}), got {goal}")
    idx = value_argmin_inversion(Q[:, :, goal], M[goal] / gamma, gamma, 0.0)
    return one_hot_kernel(idx, M.shape[1])


def wvf_kernel(
    Q: FloatArray,
    M: FloatArray,
    *,
    candidates: Sequence[Sequence[int]] | None = None,
    goal_states: Sequence[int] | IntArray | None = None,
    deterministic: bool = False,
    consistency_tol: float = 1e-5,
) -> tuple[FloatArray, dict[str, Any]]:
    """World-value-function inversion: a local pseudo-inverse per state.

    For each state s with candidate set C = ``candidates[s]`` and goal rows L = the goals whose
    state lies in C (all goals when none does, or when ``goal_states`` is None), solve
    p_C = pinv(M[L][:, C]) Q(s, a, L) for every action at once. With ``deterministic=True`` the
    successor is argmax p (the WVF code's ``amax``), and a successor whose Bellman residual
    mean_L (Q(s, a, l) − M[l, k̂])² exceeds ``consistency_tol`` is counted as rejected
    (``WVF_T_next``'s check).

    Args:
        Q: (S, A, G); M: (G, K).
        candidates: per state, candidate next-state indices; default all K.
        goal_states: the state of each goal, shape (G,).

    Returns:
        the kernel (S, A, K) and ``{"rejected", "rejected_fraction", "fallback_states"}``.
    """
    Q, M = check_qm(Q, M)
    S, A, G = Q.shape
    K = M.shape[1]
    if candidates is not None and len(candidates) != S:
        raise PlrayInputError(f"candidates: need one candidate list per state ({S}), got {len(candidates)}")
    gs = None if goal_states is None else np.asarray(goal_states, dtype=np.int64)
    if gs is not None and gs.shape != (G,):
        raise PlrayInputError(f"goal_states: expected shape (G,) = ({G},), got {gs.shape}")
    P = np.zeros((S, A, K))
    rejected = 0
    fallback = 0
    for s in range(S):
        C = np.arange(K) if candidates is None else np.asarray(candidates[s], dtype=np.int64)
        if C.size == 0 or C.min() < 0 or C.max() >= K:
            raise PlrayInputError(f"candidates[{s}]: indices must lie in [0, {K}) and be non-empty")
        rows = np.arange(G) if gs is None else np.flatnonzero(np.isin(gs, C))
        if rows.size == 0:
            rows = np.arange(G)
            fallback += 1
        W = M[np.ix_(rows, C)]  # (L, |C|)
        p = np.linalg.pinv(W) @ Q[s][:, rows].T  # (|C|, A)
        if deterministic:
            best = p.argmax(axis=0)  # (A,)
            P[s, np.arange(A), C[best]] = 1.0
            resid = ((Q[s][:, rows] - W[:, best].T) ** 2).mean(axis=1)
            rejected += int((resid > consistency_tol).sum())
        else:
            P[s][:, C] = p.T
    info = {"rejected": rejected, "rejected_fraction": rejected / (S * A), "fallback_states": fallback}
    return P, info
