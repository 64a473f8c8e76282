import numpy as np
import pytest

from plray.core import PlrayInputError, bellman_matrix, bellman_matrix_from_q, state_values
from tests.conftest import GAMMA, exact_agent


def test_bellman_matrix_entries_by_hand() -> None:
    rewards = np.array([[1.0, 0.0], [0.0, 0.5]])  # (K=2, G=2)
    values = np.array([[2.0, 3.0], [4.0, 5.0]])
    dones = np.array([[1.0, 0.0], [0.0, 0.0]])
    M = bellman_matrix(rewards, values, 0.9, dones)
    assert M.shape == (2, 2)  # (G, K)
    assert M[0, 0] == pytest.approx(1.0)  # terminal: reward only
    assert M[0, 1] == pytest.approx(0.0 + 0.9 * 4.0)
    assert M[1, 0] == pytest.approx(0.0 + 0.9 * 3.0)
    assert M[1, 1] == pytest.approx(0.5 + 0.9 * 5.0)


def test_exact_q_satisfies_m_times_p(variant: str) -> None:
    agent = exact_agent(variant, 5)
    # Q(s, a, :) = M P(s, a, :) for every (s, a): the equation P-learning inverts
    np.testing.assert_allclose(np.einsum("gk,sak->sag", agent.M, agent.P), agent.Q, atol=1e-12)


def test_value_modes() -> None:
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(4, 3, 2))
    np.testing.assert_allclose(state_values(Q, "max"), Q.max(axis=1))
    pi = rng.dirichlet(np.ones(3), size=(4, 2)).transpose(0, 2, 1)  # (K, A, G)
    np.testing.assert_allclose(state_values(Q, "policy", policy=pi), (pi * Q).sum(1))
    soft = state_values(Q, "softmax", temperature=0.5)
    w = np.exp(Q / 0.5) / np.exp(Q / 0.5).sum(1, keepdims=True)
    np.testing.assert_allclose(soft, (w * Q).sum(1))
    lse = state_values(Q, "logsumexp", temperature=0.5)
    np.testing.assert_allclose(lse, 0.5 * np.log(np.exp(Q / 0.5).sum(1)))
    # the soft value tends to the max as the temperature goes to zero
    np.testing.assert_allclose(state_values(Q, "logsumexp", temperature=1e-4), Q.max(1), atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": 1.0}, "open interval"),
        ({"gamma": 0.0}, "open interval"),
        ({"gamma": float("nan")}, "open interval"),
        ({"values": np.ones((3, 2))}, "axis 0"),
        ({"rewards": np.array([[np.nan, 0.0], [0.0, 0.0]])}, "NaN"),
        ({"dones": np.full((2, 2), 0.5)}, "0 or 1"),
    ],
)
def test_bellman_matrix_rejects_bad_input(kwargs: dict, match: str) -> None:
    args = {"rewards": np.zeros((2, 2)), "values": np.zeros((2, 2)), "gamma": 0.9, "dones": None} | kwargs
    with pytest.raises(PlrayInputError, match=match):
        bellman_matrix(**args)


def test_policy_mode_needs_valid_policy() -> None:
    Q = np.zeros((2, 2, 1))
    with pytest.raises(PlrayInputError, match="needs the agent's policy"):
        state_values(Q, "policy")
    with pytest.raises(PlrayInputError, match="summing to 1"):
        state_values(Q, "policy", policy=np.full((2, 2, 1), 0.7))
    with pytest.raises(PlrayInputError, match="unknown value"):
        state_values(Q, "median")  # type: ignore[arg-type]


def test_from_q_checks_reward_shape() -> None:
    with pytest.raises(PlrayInputError, match="rewards"):
        bellman_matrix_from_q(np.zeros((3, 2, 4)), np.zeros((3, 5)), GAMMA)
