import numpy as np
import pytest

from plray.core import PlrayInputError
from plray.evaluation import backup, policy_evaluation, value_iteration
from tests.conftest import GAMMA, exact_agent


def test_value_iteration_satisfies_bellman_optimality(variant: str) -> None:
    agent = exact_agent(variant, 10, "gaussian")
    R, D = agent.goals.rewards, agent.goals.dones
    Q = value_iteration(agent.P, R, D, GAMMA).Q
    assert Q.shape == (68, 4, 10)
    np.testing.assert_allclose(backup(agent.P, R, D, Q.max(axis=1), GAMMA), Q, atol=1e-12)


def test_policy_evaluation_matches_iterative_evaluation() -> None:
    agent = exact_agent("teleport", 4)
    R, D = agent.goals.rewards, agent.goals.dones
    rng = np.random.default_rng(0)
    pi = rng.dirichlet(np.ones(4), size=(68, 4)).transpose(0, 2, 1)  # (S, A, G) stochastic policy
    Q = policy_evaluation(agent.P, R, D, GAMMA, pi)
    Q_it = np.zeros_like(Q)
    for _ in range(2000):
        Q_it = backup(agent.P, R, D, (pi * Q_it).sum(axis=1), GAMMA)
    np.testing.assert_allclose(Q, Q_it, atol=1e-10)


def test_vectorised_over_goals_equals_one_goal_at_a_time() -> None:
    agent = exact_agent("windy", 5)
    R, D = agent.goals.rewards, agent.goals.dones
    Q_all = value_iteration(agent.P, R, D, GAMMA).Q
    for g in range(5):
        Q_one = value_iteration(agent.P, R[:, [g]], D[:, [g]], GAMMA).Q
        np.testing.assert_allclose(Q_all[:, :, [g]], Q_one, atol=1e-12)


def test_ground_truth_rejects_bad_input() -> None:
    P = np.full((2, 1, 2), 0.5)
    with pytest.raises(PlrayInputError, match="probability distribution"):
        value_iteration(np.ones((2, 1, 2)), np.zeros((2, 1)), None, 0.9)
    with pytest.raises(PlrayInputError, match="gamma"):
        value_iteration(P, np.zeros((2, 1)), None, 1.0)
    with pytest.raises(PlrayInputError, match="rewards"):
        value_iteration(P, np.zeros((3, 1)), None, 0.9)
    with pytest.raises(PlrayInputError, match="integers"):
        policy_evaluation(P, np.zeros((2, 1)), None, 0.9, np.array([[0], [4]]))
