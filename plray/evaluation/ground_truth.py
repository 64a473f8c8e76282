"""Ground-truth Q-values of finite goal-conditioned MDPs, vectorised over every goal of a set.

Reward is paid on arrival and the bootstrap is masked by termination (docs/method.md#setting-and-notation):

    Q(s, a, g) = Σ_s' P(s' | s, a) · [ r(s', g) + γ (1 − done(s', g)) V(s', g) ].

:func:`policy_evaluation` solves this linear system exactly for a fixed policy;
:func:`value_iteration` finds Q* by value iteration, then finishes with exact policy evaluation of
the greedy policy until that policy is stable (policy iteration), so Q* is accurate to machine
precision rather than to an iteration tolerance. Tests rely on that: P-learning recovers P to
1e-8 only from Q that exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plray.core.types import FloatArray, IntArray
from plray.utils.validation import PlrayInputError, as_float_array, check_gamma, check_shape


def _check_mdp(P: FloatArray, R: FloatArray, D: FloatArray | None) -> tuple[FloatArray, FloatArray, FloatArray]:
    P = as_float_array(P, "P", ndim=3)
    S, A, S2 = P.shape
    if S != S2:
        raise PlrayInputError(f"P: expected shape (S, A, S), got {P.shape}")
    if (P < -1e-12).any() or not np.allclose(P.sum(-1), 1.0, atol=1e-9):
        raise PlrayInputError("P: every P(s, a, :) must be a probability distribution")
    R = as_float_array(R, "rewards", ndim=2)
    check_shape(R, "rewards", (S, None), ("S", "G"))
    D = np.zeros_like(R) if D is None else as_float_array(D, "dones", ndim=2)
    check_shape(D, "dones", R.shape, ("S", "G"))
    return P, R, D


def backup(P: FloatArray, R: FloatArray, D: FloatArray, V: FloatArray, gamma: float) -> FloatArray:
    """One Bellman backup: Q(s, a, g) = Σ_s' P(s'|s, a) [R(s', g) + γ (1 − D(s', g)) V(s', g)].

    Args:
        P: kernel (S, A, S); R, D, V: (S, G).

    Returns:
        Q, shape (S, A, G).
    """
    return np.einsum("sat,tg->sag", P, R + gamma * (1.0 - D) * V)


def policy_evaluation(
    P: FloatArray,
    R: FloatArray,
    D: FloatArray | None,
    gamma: float,
    policy: IntArray | FloatArray,
) -> FloatArray:
    """Exact Q^π for every goal by one batched linear solve.

    With P_π[g](s, s') = Σ_a π(a | s, g) P(s' | s, a), the values satisfy
    (I − γ P_π[g] diag(1 − D[:, g])) V[:, g] = P_π[g] R[:, g].

    Args:
        P: kernel, shape (S, A, S).
        R: rewards on arrival, shape (S, G).
        D: terminations on arrival, shape (S, G), or None.
        gamma: discount in (0, 1).
        policy: deterministic actions, shape (S, G) of ints, or probabilities π(a | s, g), shape (S, A, G).

    Returns:
        Q^π, shape (S, A, G).
    """
    gamma = check_gamma(gamma)
    P, R, D = _check_mdp(P, R, D)
    S, A, _ = P.shape
    G = R.shape[1]
    policy_arr: np.ndarray = np.asarray(policy)
    if policy_arr.ndim == 2:
        check_shape(policy_arr, "policy", (S, G), ("S", "G"))
        if not np.issubdtype(policy_arr.dtype, np.integer) or (policy_arr < 0).any() or (policy_arr >= A).any():
            raise PlrayInputError(f"policy: deterministic actions must be integers in [0, {A})")
        pi = np.zeros((S, A, G))
        np.put_along_axis(pi, policy_arr[:, None, :], 1.0, axis=1)
    else:
        pi = as_float_array(policy_arr, "policy", ndim=3)
        check_shape(pi, "policy", (S, A, G), ("S", "A", "G"))
    P_pi = np.einsum("sag,sat->gst", pi, P)  # (G, S, S)
    lhs = np.eye(S)[None] - gamma * P_pi * (1.0 - D.T)[:, None, :]
    rhs = np.einsum("gst,tg->gs", P_pi, R)
    V = np.linalg.solve(lhs, rhs[..., None])[..., 0].T  # (S, G)
    return backup(P, R, D, V, gamma)


@dataclass(frozen=True)
class ValueIterationResult:
    """Q* with how it was found."""

    Q: FloatArray
    policy: IntArray
    sweeps: int
    policy_iterations: int


def value_iteration(
    P: FloatArray,
    R: FloatArray,
    D: FloatArray | None,
    gamma: float,
    *,
    tol: float = 1e-8,
    max_sweeps: int = 100_000,
    max_policy_iterations: int = 100,
) -> ValueIterationResult:
    """Optimal Q* for every goal: value iteration to ``tol``, then exact policy iteration.

    Args:
        P: kernel, shape (S, A, S).
        R, D: rewards and terminations on arrival, shape (S, G).
        gamma: discount in (0, 1).
        tol: sup-norm change at which value iteration hands over to policy iteration.

    Returns:
        Q* of shape (S, A, G), its greedy policy (S, G), and the iteration counts.
    """
    gamma = check_gamma(gamma)
    P, R, D = _check_mdp(P, R, D)
    V = np.zeros_like(R)
    Q = backup(P, R, D, V, gamma)
    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):  # noqa: B007
        V_new = Q.max(axis=1)
        Q = backup(P, R, D, V_new, gamma)
        if np.abs(V_new - V).max() < tol:
            break
        V = V_new
    policy = Q.argmax(axis=1)
    iters = 0
    for iters in range(1, max_policy_iterations + 1):  # noqa: B007
        Q_new = policy_evaluation(P, R, D, gamma, policy)
        # keep the current action on (numerical) ties so the iteration cannot cycle
        best = Q_new.max(axis=1)
        keep = np.take_along_axis(Q_new, policy[:, None, :], axis=1)[:, 0, :] >= best - 1e-12
        new_policy = np.where(keep, policy, Q_new.argmax(axis=1))
        Q = Q_new
        if (new_policy == policy).all():
            break
        policy = new_policy
    return ValueIterationResult(Q=Q, policy=policy, sweeps=sweeps, policy_iterations=iters)
