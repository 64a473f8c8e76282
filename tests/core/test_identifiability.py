import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from plray.core import PlrayInputError, bellman_matrix_from_q, closed_form, column_match, identifiability
from plray.evaluation import value_iteration
from plray.experiments.fourrooms import perturb_q
from tests.conftest import GAMMA, exact_agent


@pytest.mark.parametrize("variant", ["windy", "teleport"])
def test_one_goal_is_not_identifiable_for_stochastic_variants(variant: str) -> None:
    agent = exact_agent(variant, 1)
    d = identifiability(agent.M, 4, GAMMA)
    assert d.rank == 1
    assert not d.identifiable_stochastic
    assert not d.identifiable(deterministic=agent.env.deterministic)
    assert d.stochastic_bound == float("inf")


def test_one_generic_goal_is_identifiable_for_deterministic_variant() -> None:
    agent = exact_agent("deterministic", 1)
    d = identifiability(agent.M, 4, GAMMA)
    assert d.identifiable(deterministic=True) and not d.identifiable_stochastic
    assert d.column_gap > 0
    # one *indicator* goal is not: states at the same distance from the goal share a value
    assert not identifiability(exact_agent("deterministic", 1, "indicator").M, 4, GAMMA).identifiable_deterministic


def test_full_goal_set_is_identifiable(variant: str) -> None:
    d = identifiability(exact_agent(variant, 68).M, 4, GAMMA, eps=1e-3)
    assert d.rank == 68 and d.identifiable_stochastic and d.sigma_min > 0
    assert np.isfinite(d.stochastic_bound) and d.stochastic_bound > 0


def test_identifiability_rejects_bad_arguments() -> None:
    with pytest.raises(PlrayInputError, match="eps"):
        identifiability(np.eye(2), 2, 0.9, eps=-1)
    with pytest.raises(PlrayInputError, match="gamma"):
        identifiability(np.eye(2), 2, 1.5)


def _random_mdp(seed: int, S: int, A: int, G: int, deterministic: bool):
    rng = np.random.default_rng(seed)
    if deterministic:
        P = np.zeros((S, A, S))
        P[np.arange(S)[:, None], np.arange(A)[None, :], rng.integers(S, size=(S, A))] = 1.0
    else:
        P = rng.dirichlet(np.full(S, 0.5), size=(S, A))
    R = rng.uniform(0, 1, size=(S, G))  # generic rewards
    D = np.zeros((S, G))
    D[rng.integers(S, size=G), np.arange(G)] = 1.0  # each goal terminates somewhere
    return rng, P, R, D


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    S=st.integers(2, 6),
    A=st.integers(1, 3),
    extra_goals=st.integers(0, 3),
    log_eps=st.floats(-6, -1),
)
def test_closed_form_error_within_stated_bound(seed: int, S: int, A: int, extra_goals: int, log_eps: float) -> None:
    gamma = 0.9
    rng, P, R, D = _random_mdp(seed, S, A, S + extra_goals, deterministic=False)
    Q = value_iteration(P, R, D, gamma).Q
    eps = 10.0**log_eps
    Q_hat = perturb_q(Q, eps, rng)
    # perturb_q puts exactly eps of l1 noise on each (s, a); Q_hat - Q loses a few ulps of |Q| to rounding
    assert np.abs(Q_hat - Q).sum(axis=2).max() <= eps * (1 + 1e-9) + 1e-13 * max(1.0, np.abs(Q).max())
    M_hat = bellman_matrix_from_q(Q_hat, R, gamma, D)
    d = identifiability(M_hat, A, gamma, eps)
    assume(d.identifiable_stochastic)
    err = np.abs(closed_form(Q_hat, M_hat) - P).sum(-1).max()  # ℓ₁ per (s, a)
    assert err <= d.stochastic_bound * (1 + 1e-6) + 1e-10


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    S=st.integers(2, 8),
    A=st.integers(1, 3),
    G=st.integers(1, 3),
    frac=st.floats(0.01, 0.99),
)
def test_column_match_exact_below_stated_tolerance(seed: int, S: int, A: int, G: int, frac: float) -> None:
    gamma = 0.9
    rng, P, R, D = _random_mdp(seed, S, A, G, deterministic=True)
    Q = value_iteration(P, R, D, gamma).Q
    tol = identifiability(bellman_matrix_from_q(Q, R, gamma, D), A, gamma).column_match_tolerance
    assume(tol > 1e-9)
    eps = frac * tol
    Q_hat = perturb_q(Q, eps, rng)
    M_hat = bellman_matrix_from_q(Q_hat, R, gamma, D)
    # the guarantee is stated for the gap of the matrix we actually have
    assume(eps < identifiability(M_hat, A, gamma).column_match_tolerance)
    np.testing.assert_array_equal(column_match(Q_hat, M_hat), P)
