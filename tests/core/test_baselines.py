import numpy as np
import pytest

from plray.core import (
    PlrayInputError,
    extract,
    separability,
    value_argmin_inversion,
    value_argmin_tolerance,
    wvf_kernel,
)
from plray.evaluation import policy_evaluation, tv_distance
from tests.conftest import GAMMA, exact_agent


def test_value_argmin_in_its_own_convention() -> None:
    """Paper B's setting: reward r(s, a) on the current pair, Q = r + γ V(f(s, a))."""
    rng = np.random.default_rng(1)
    S, A, gamma = 6, 2, 0.9
    f = rng.integers(S, size=(S, A))
    r = rng.uniform(0, 1, size=(S, A))
    pi = rng.integers(A, size=S)
    # exact V^π: V = r_π + γ P_π V
    P_pi = np.zeros((S, S))
    P_pi[np.arange(S), f[np.arange(S), pi]] = 1.0
    V = np.linalg.solve(np.eye(S) - gamma * P_pi, r[np.arange(S), pi])
    Q = r + gamma * V[f]
    np.testing.assert_array_equal(value_argmin_inversion(Q, V, gamma, r), f)
    # perturbing V by less than the separability tolerance keeps the answer
    delta = separability(V)
    eps = 0.9 * value_argmin_tolerance(delta, gamma)
    noise = rng.uniform(-eps, eps, size=V.shape)
    q_noise = rng.uniform(-eps, eps, size=Q.shape)
    np.testing.assert_array_equal(value_argmin_inversion(Q + q_noise, V + noise, gamma, r), f)


def test_value_argmin_recovers_deterministic_fourrooms_from_one_generic_goal() -> None:
    agent = exact_agent("deterministic", 1)
    ext = extract(agent.Q, agent.M, "value-argmin", gamma=GAMMA)
    np.testing.assert_array_equal(ext.kernel, agent.P)


def test_value_argmin_cannot_represent_stochastic_dynamics() -> None:
    agent = exact_agent("windy", 68)
    ext = extract(agent.Q, agent.M, "value-argmin", gamma=GAMMA)
    assert tv_distance(ext.kernel, agent.P).mean() >= 0.5 - 1e-9  # a point mass vs mass 1/2 at most


@pytest.mark.parametrize("variant", ["deterministic", "windy", "teleport"])
def test_wvf_recovers_kernel_with_local_candidates_and_all_goals(variant: str) -> None:
    agent = exact_agent(variant, 68, "indicator")
    P_hat, info = wvf_kernel(agent.Q, agent.M, candidates=agent.env.local_candidates(), goal_states=agent.goals.states)
    assert tv_distance(P_hat, agent.P).max() < 1e-8
    assert info["fallback_states"] == 0


def test_wvf_deterministic_mode_and_consistency_check() -> None:
    agent = exact_agent("deterministic", 68, "indicator")
    cands = agent.env.local_candidates()
    P_hat, info = wvf_kernel(agent.Q, agent.M, candidates=cands, goal_states=agent.goals.states, deterministic=True)
    np.testing.assert_array_equal(P_hat, agent.P)
    assert info["rejected"] == 0
    # corrupt Q: the residual check flags the pairs it can no longer explain
    Q_bad = agent.Q + np.random.default_rng(0).normal(0, 0.05, agent.Q.shape)
    _, info_bad = wvf_kernel(Q_bad, agent.M, candidates=cands, goal_states=agent.goals.states, deterministic=True)
    assert info_bad["rejected_fraction"] > 0.5


def test_wvf_rejects_bad_candidates() -> None:
    Q, M = np.zeros((2, 1, 2)), np.eye(2)
    with pytest.raises(PlrayInputError, match="one candidate list per state"):
        wvf_kernel(Q, M, candidates=[[0]])
    with pytest.raises(PlrayInputError, match=r"candidates\[1\]"):
        wvf_kernel(Q, M, candidates=[[0], [5]])


def test_policy_evaluation_consistency_for_baseline_fixture() -> None:
    # sanity: the exact agent's Q is Q^π of its own greedy policy
    agent = exact_agent("windy", 3)
    greedy = agent.Q.argmax(axis=1)
    Qpi = policy_evaluation(agent.P, agent.goals.rewards, agent.goals.dones, GAMMA, greedy)
    np.testing.assert_allclose(Qpi, agent.Q, atol=1e-10)
