import numpy as np
import pytest

from plray.core import (
    PlrayInputError,
    closed_form,
    exact_gradient,
    extract,
    extract_kernel,
    gradient_descent,
    project_simplex,
    score_function_gradient,
)
from plray.core.tabular import bellman_residual, sampled
from plray.evaluation import tv_distance
from tests.conftest import GAMMA, exact_agent


def test_closed_form_recovers_every_variant_exactly(variant: str) -> None:
    agent = exact_agent(variant, 68)
    P_hat = extract_kernel(agent.Q, agent.M, method="closed-form")
    assert P_hat.shape == (68, 4, 68)
    assert tv_distance(P_hat, agent.P).max() < 1e-8


def test_projection_changes_nothing_when_exact(variant: str) -> None:
    agent = exact_agent(variant, 68)
    P_hat = extract_kernel(agent.Q, agent.M, method="closed-form", project=True)
    assert tv_distance(P_hat, agent.P).max() < 1e-8


def test_column_match_one_generic_goal_recovers_deterministic_kernel() -> None:
    agent = exact_agent("deterministic", 1)
    ext = extract(agent.Q, agent.M, "column-match", gamma=GAMMA)
    np.testing.assert_array_equal(ext.kernel, agent.P)
    assert ext.diagnostics is not None and ext.diagnostics.identifiable_deterministic
    # the closed form alone cannot do it from one goal: the system is under-determined
    assert tv_distance(closed_form(agent.Q, agent.M), agent.P).mean() > 0.5


def test_gradient_converges_to_theorem_1_limit_when_underdetermined() -> None:
    rng = np.random.default_rng(3)
    S, A, G, K = 4, 2, 3, 6  # G < K: M has a null space
    M = rng.normal(size=(G, K))
    Q = rng.normal(size=(S, A, G))
    P0 = rng.dirichlet(np.ones(K), size=(S, A))
    limit = closed_form(Q, M, P0=P0)  # M⁺Q + (I − M⁺M) P0
    sigma_max = np.linalg.norm(M, 2)
    for alpha in (0.3 / sigma_max**2, 1.0 / sigma_max**2, 1.9 / sigma_max**2):
        P, info = gradient_descent(Q, M, P0=P0, step_size=alpha, tol=1e-15, max_iters=500_000)
        assert info["converged"]
        np.testing.assert_allclose(P, limit, atol=1e-8)
    # and the limit keeps the initial kernel's null-space component: it is not M⁺Q
    assert np.abs(limit - closed_form(Q, M)).max() > 1e-3


def test_gradient_rejects_step_outside_convergence_range() -> None:
    M = np.eye(2) * 2.0
    with pytest.raises(PlrayInputError, match=r"0 < α < 2/σ_max"):
        gradient_descent(np.zeros((1, 1, 2)), M, step_size=0.5)


def _single_sample_estimate(logits, Q, M, s, a, g, rng, weight):
    """The biased estimator: one next state used twice, δ̂² ∇log P (what the double sample avoids)."""
    S, A, K = logits.shape
    z = np.exp(logits - logits.max(-1, keepdims=True))
    p = (z / z.sum(-1, keepdims=True))[s, a]
    cdf = np.cumsum(p, 1)
    s1 = np.minimum((cdf < rng.random(len(s))[:, None]).sum(1), K - 1)
    d = M[g, s1] - Q[s, a, g]
    coef = -(d * d)[:, None] * p
    coef[np.arange(len(s)), s1] += d * d
    grad = np.zeros((S * A, K))
    np.add.at(grad, s * A + a, weight * coef)
    return grad.reshape(S, A, K)


def test_score_function_gradient_is_unbiased_and_single_sample_is_not() -> None:
    rng = np.random.default_rng(0)
    S, A, G, K = 2, 2, 3, 3
    M = rng.uniform(0, 2, size=(G, K))
    Q = rng.uniform(0, 2, size=(S, A, G))
    logits = rng.normal(size=(S, A, K))
    exact = exact_gradient(logits, Q, M)
    # finite-difference check of the exact gradient itself
    eps = 1e-6
    loss = lambda L: 0.5 * (bellman_residual(L, Q, M) ** 2).mean(axis=2).sum()  # noqa: E731
    fd = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        d = np.zeros_like(logits)
        d[idx] = eps
        fd[idx] = (loss(logits + d) - loss(logits - d)) / (2 * eps)
    np.testing.assert_allclose(exact, fd, atol=1e-7)

    batches, n = 40, 20_000
    two, one = [], []
    for _ in range(batches):
        s, a, g = rng.integers(S, size=n), rng.integers(A, size=n), rng.integers(G, size=n)
        two.append(score_function_gradient(logits, Q, M, s, a, g, rng, weight=S * A / n))
        one.append(_single_sample_estimate(logits, Q, M, s, a, g, rng, S * A / n))
    for est, unbiased in ((np.array(two), True), (np.array(one), False)):
        mean = est.mean(0)
        se = est.std(0, ddof=1) / np.sqrt(batches)
        z = np.abs(mean - exact) / np.maximum(se, 1e-12)
        if unbiased:
            assert z.max() < 5.0, f"double-sample estimator deviates by {z.max():.1f} standard errors"
        else:
            assert z.max() > 10.0, "the one-sample estimator should be visibly biased"


def test_sampled_reaches_windy_fourrooms_within_tv_002() -> None:
    agent = exact_agent("windy", 68)
    ext = extract(agent.Q, agent.M, "sampled", gamma=GAMMA, seed=0)
    tv = tv_distance(ext.kernel, agent.P)
    assert tv.mean() < 0.02, f"mean TV {tv.mean():.4f}"
    np.testing.assert_allclose(ext.kernel.sum(-1), 1.0)  # softmax: always a distribution
    assert ext.info["updates_per_s"] > 0


def test_sampled_is_deterministic_given_seed() -> None:
    agent = exact_agent("windy", 4)
    a = extract_kernel(agent.Q, agent.M, "sampled", num_updates=50, seed=7)
    b = extract_kernel(agent.Q, agent.M, "sampled", num_updates=50, seed=7)
    c = extract_kernel(agent.Q, agent.M, "sampled", num_updates=50, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sampled_resumes_from_a_checkpoint_exactly() -> None:
    agent = exact_agent("windy", 4)
    saved: list[dict] = []

    def keep(state: dict) -> None:
        saved.append({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()})

    full, info = sampled(agent.Q, agent.M, num_updates=120, seed=3, checkpoint=keep, checkpoint_every=50)
    assert [s["update"] for s in saved] == [50, 100] and info["resumed_from"] == 0
    resumed, rinfo = sampled(agent.Q, agent.M, num_updates=120, seed=3, state=saved[0])
    np.testing.assert_array_equal(resumed, full)  # same draws, same optimiser state: same kernel
    assert rinfo["resumed_from"] == 50
    with pytest.raises(PlrayInputError, match="state"):
        sampled(agent.Q, agent.M, num_updates=120, state={"update": 1})
    with pytest.raises(PlrayInputError, match="state"):
        sampled(agent.Q, agent.M, num_updates=30, state=saved[0])  # saved past the end of this run


def test_project_simplex() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 7)) * 3
    Y = project_simplex(X)
    assert (Y >= 0).all()
    np.testing.assert_allclose(Y.sum(1), 1.0)
    # optimality (KKT): Y is the nearest point, so no random simplex point is nearer
    Z = rng.dirichlet(np.ones(7), size=(100, 50))
    assert (((X[:, None] - Z) ** 2).sum(-1) >= ((X - Y) ** 2).sum(-1)[:, None] - 1e-12).all()
    D = rng.dirichlet(np.ones(7), size=10)
    np.testing.assert_allclose(project_simplex(D), D, atol=1e-12)


@pytest.mark.parametrize(
    ("Q", "M", "match"),
    [
        (np.zeros((3, 2, 4)), np.zeros((5, 3)), "disagree on the number of goals"),
        (np.zeros((3, 2)), np.zeros((2, 3)), "3-D"),
        (np.full((3, 2, 2), np.nan), np.zeros((2, 3)), "NaN"),
        (np.zeros((3, 2, 2)), np.array([[np.inf, 0, 0], [0, 0, 0]]), "infinite"),
        ("not an array", np.zeros((2, 3)), "numeric"),
    ],
)
def test_extract_rejects_bad_input(Q: object, M: object, match: str) -> None:
    with pytest.raises(PlrayInputError, match=match):
        extract_kernel(Q, M)


def test_extract_rejects_unknown_method_and_option() -> None:
    Q, M = np.zeros((2, 2, 2)), np.eye(2)
    with pytest.raises(PlrayInputError, match="unknown value 'magic'"):
        extract_kernel(Q, M, method="magic")
    with pytest.raises(PlrayInputError, match="closed-form"):
        extract_kernel(Q, M, method="closed-form", bogus=1)


def test_simplex_least_squares_uses_that_rows_are_distributions() -> None:
    """One goal, three candidate successors: min-norm misses, the simplex constraint pins P down."""
    from plray.core import simplex_least_squares

    M = np.array([[0.0, 1.0, 3.0]])  # (G=1, K=3)
    P_true = np.array([[[0.0, 1.0, 0.0]]])  # (S=1, A=1, K=3)
    Q = np.einsum("gk,sak->sag", M, P_true)  # = 1
    assert tv_distance(closed_form(Q, M), P_true).max() > 0.3  # min norm spreads mass off the simplex
    P, info = simplex_least_squares(Q, M, candidates=[[0, 1]], tol=1e-13, max_iters=20_000)
    np.testing.assert_allclose(P, P_true, atol=1e-6)  # on {0, 1} only P = e_1 gives Q = 1
    assert info["residual"] < 1e-6


def test_simplex_recovers_windy_from_four_goals_with_local_support() -> None:
    agent = exact_agent("windy", 4)
    ext = extract(agent.Q, agent.M, "simplex", gamma=GAMMA, candidates=agent.env.local_candidates())
    assert (ext.kernel >= 0).all()
    np.testing.assert_allclose(ext.kernel.sum(-1), 1.0)
    outside = np.ones_like(ext.kernel, dtype=bool)
    for s, c in enumerate(agent.env.local_candidates()):
        outside[s, :, c] = False
    assert ext.kernel[outside].max() == 0.0, "mass only on each state's candidates"
    assert tv_distance(ext.kernel, agent.P).mean() < 0.02
    from plray.evaluation import unseen_goal_returns

    for task in agent.env.unseen_tasks():
        r = unseen_goal_returns(ext.kernel, agent.P, task.rewards, task.dones, GAMMA)
        assert r.return_wm >= 0.95 * r.return_opt, task.name


def test_simplex_rejects_bad_candidates() -> None:
    from plray.core import simplex_least_squares

    with pytest.raises(PlrayInputError, match="one candidate list per state"):
        simplex_least_squares(np.zeros((2, 1, 1)), np.ones((1, 2)), candidates=[[0]])
    with pytest.raises(PlrayInputError, match=r"candidates\[0\]"):
        simplex_least_squares(np.zeros((1, 1, 1)), np.ones((1, 2)), candidates=[[3]])


def test_sampled_without_averaging_returns_the_last_iterate() -> None:
    # average=0 once divided by an empty average (a kernel of NaN); it is the final softmax(φ)
    rng = np.random.default_rng(0)
    Q, M = rng.uniform(0, 1, (6, 3, 5)), rng.uniform(0, 1, (5, 6))
    seen: list[np.ndarray] = []
    kernel, _ = sampled(Q, M, num_updates=200, batch_size=7, average=0.0, seed=3, callback=lambda n, z: seen.append(z))
    last = np.exp(seen[-1] - seen[-1].max(axis=-1, keepdims=True))
    np.testing.assert_allclose(kernel, last / last.sum(axis=-1, keepdims=True), rtol=1e-12)
