"""The Bellman matrix M that turns P-learning into one linear system per state-action pair.

With reward paid on arrival, r(s', g), the goal-augmented Bellman equation of an agent with
Q-values Q, policy π and goals g_1..g_G reads, for every (s, a) and goal l,

    Q(s, a, g_l) = Σ_k P(s'_k | s, a) · [ r(s'_k, g_l) + γ (1 − done(s'_k, g_l)) V(s'_k, g_l) ]
                 = Σ_k M[l, k] · P(s'_k | s, a),

so ``Q(s, a, :) = M @ P(s, a, :)`` with the (G, K) matrix

    M[l, k] = r(s'_k, g_l) + γ (1 − done(s'_k, g_l)) V(s'_k, g_l)        (docs/method.md#the-bellman-matrix)

M depends only on the candidate next states, never on (s, a): one matrix serves every row of P.
"""

from __future__ import annotations

import numpy as np

from plray.core.types import VALUE_MODES, FloatArray, ValueMode
from plray.utils.validation import (
    PlrayInputError,
    as_float_array,
    check_choice,
    check_gamma,
    check_shape,
)


def state_values(
    Q: FloatArray,
    mode: ValueMode = "max",
    *,
    policy: FloatArray | None = None,
    temperature: float = 1.0,
) -> FloatArray:
    """V(s, g) as the agent defines it, from its Q-values.

    Args:
        Q: Q-values, shape (K, A, G).
        mode: ``"max"``: max_a Q (greedy agent, the paper's code); ``"policy"``: Σ_a π(a|s,g) Q with
            ``policy`` given; ``"softmax"``: the expectation under the Boltzmann policy
            softmax(Q/τ); ``"logsumexp"``: the soft value τ log Σ_a exp(Q/τ) of soft Q-learning.
        policy: π(a | s, g), shape (K, A, G), rows summing to one over A. Only for ``mode="policy"``.
        temperature: τ > 0 for ``"softmax"`` and ``"logsumexp"``.

    Returns:
        V, shape (K, G).
    """
    check_choice(mode, "value mode", VALUE_MODES)
    Q = as_float_array(Q, "Q", ndim=3)
    if mode == "max":
        return Q.max(axis=1)
    if mode == "policy":
        if policy is None:
            raise PlrayInputError("policy: value mode 'policy' needs the agent's policy π of shape (K, A, G)")
        pi = as_float_array(policy, "policy", ndim=3)
        check_shape(pi, "policy", Q.shape, ("K", "A", "G"))
        if (pi < -1e-12).any() or not np.allclose(pi.sum(axis=1), 1.0, atol=1e-6):
            raise PlrayInputError("policy: entries must be probabilities summing to 1 over the action axis")
        return np.einsum("kag,kag->kg", pi, Q)
    if not temperature > 0:
        raise PlrayInputError(f"temperature: must be > 0, got {temperature!r}")
    z = Q / temperature
    z_max = z.max(axis=1, keepdims=True)
    w = np.exp(z - z_max)
    if mode == "softmax":
        return (w * Q).sum(axis=1) / w.sum(axis=1)
    return temperature * (np.log(w.sum(axis=1)) + z_max[:, 0, :])


def bellman_matrix(
    rewards: FloatArray,
    values: FloatArray,
    gamma: float,
    dones: FloatArray | None = None,
) -> FloatArray:
    """M[l, k] = r(s'_k, g_l) + γ (1 − done(s'_k, g_l)) V(s'_k, g_l).

    Args:
        rewards: r(s'_k, g_l) paid on arriving in candidate next state s'_k, shape (K, G).
        values: V(s'_k, g_l), e.g. from :func:`state_values`, shape (K, G).
        gamma: discount factor in (0, 1).
        dones: 1 where arriving in s'_k ends the episode for goal g_l, else 0, shape (K, G).
            ``None`` means no goal terminates.

    Returns:
        M, shape (G, K): row l holds goal l's one-step return from each candidate next state.
    """
    gamma = check_gamma(gamma)
    R = as_float_array(rewards, "rewards", ndim=2)
    V = as_float_array(values, "values", ndim=2)
    check_shape(V, "values", R.shape, ("K", "G"))
    if dones is None:
        cont = np.ones_like(R)
    else:
        D = as_float_array(dones, "dones", ndim=2)
        check_shape(D, "dones", R.shape, ("K", "G"))
        if not np.isin(D, (0.0, 1.0)).all():
            raise PlrayInputError("dones: entries must be 0 or 1")
        cont = 1.0 - D
    return (R + gamma * cont * V).T.copy()


def bellman_matrix_from_q(
    Q: FloatArray,
    rewards: FloatArray,
    gamma: float,
    dones: FloatArray | None = None,
    *,
    value_mode: ValueMode = "max",
    policy: FloatArray | None = None,
    temperature: float = 1.0,
) -> FloatArray:
    """:func:`bellman_matrix` with V computed from the agent's Q-values by :func:`state_values`.

    Args:
        Q: the agent's Q-values at the candidate next states, shape (K, A, G).
        rewards, dones: shape (K, G), as in :func:`bellman_matrix`.

    Returns:
        M, shape (G, K).
    """
    Q = as_float_array(Q, "Q", ndim=3)
    R = as_float_array(rewards, "rewards", ndim=2)
    check_shape(R, "rewards", (Q.shape[0], Q.shape[2]), ("K", "G"))
    V = state_values(Q, value_mode, policy=policy, temperature=temperature)
    return bellman_matrix(R, V, gamma, dones)
