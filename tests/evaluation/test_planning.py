import numpy as np

from plray.envs import FourRooms, FourRoomsGoalEnv
from plray.evaluation import expected_return, kernel_metrics, tv_distance, unseen_goal_returns
from tests.conftest import GAMMA


def test_metrics_by_hand() -> None:
    P = np.zeros((1, 2, 3))
    P[0, 0] = [1, 0, 0]
    P[0, 1] = [0, 0.5, 0.5]
    P_hat = P.copy()
    P_hat[0, 0] = [0.5, 0.5, 0]  # TV 0.5
    P_hat[0, 1] = [0, 0.5, 0.5]  # TV 0
    np.testing.assert_allclose(tv_distance(P_hat, P), [[0.5, 0.0]])
    m = kernel_metrics(P_hat, P)
    assert m["tv_mean"] == 0.25 and m["tv_max"] == 0.5
    assert m["kernel_mse"] == (0.25 + 0.25) / 6


def test_true_kernel_plans_optimally(variant: str) -> None:
    env = FourRooms(variant)
    for task in env.unseen_tasks():
        r = unseen_goal_returns(env.kernel, env.kernel, task.rewards, task.dones, GAMMA, task.name)
        assert r.return_wm == r.return_opt and r.ratio == 1.0


def test_wrong_kernel_plans_worse() -> None:
    env = FourRooms("deterministic")
    wrong = np.full_like(env.kernel, 1 / 68)  # a world model that knows nothing
    task = env.unseen_tasks()[0]
    r = unseen_goal_returns(wrong, env.kernel, task.rewards, task.dones, GAMMA)
    assert r.return_wm < 0.5 * r.return_opt


def test_exact_return_matches_monte_carlo_rollouts() -> None:
    """R_WM is the expectation of greedy rollouts in the true env, computed exactly."""
    env = FourRoomsGoalEnv("windy", num_goals=1, goal_family="indicator", max_steps=400)
    mdp = env.mdp
    task = mdp.unseen_tasks()[0]
    r = unseen_goal_returns(mdp.kernel, mdp.kernel, task.rewards, task.dones, GAMMA)
    start = mdp.index((1, 9))
    exact = expected_return(mdp.kernel, task.rewards, task.dones, GAMMA, r.policy_opt, np.array([start]))
    rng = np.random.default_rng(0)
    n, returns = 3000, []
    states = np.full(n, start)
    alive = np.ones(n, dtype=bool)
    total = np.zeros(n)
    for t in range(400):
        nxt = mdp.sample_next(states, r.policy_opt[states], rng)
        total += alive * GAMMA**t * task.rewards[nxt]
        alive &= task.dones[nxt] == 0
        states = nxt
    returns = total
    se = returns.std() / np.sqrt(n)
    assert abs(returns.mean() - exact) < 4 * se + 1e-9
