"""Grid ground truth: N-linear interpolation, grid value iteration / policy evaluation, rollouts, Q_NMSE."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from plray.envs.base import GoalTask, wrap_angle
from plray.evaluation.grid import (
    RegularGrid,
    grid_mdp,
    grid_policy_evaluation,
    grid_value_iteration,
    q_nmse,
    q_nmse_per_goal,
    rollout_returns,
    task_grid,
    task_grid_mdp,
    task_policy_evaluation,
    task_value_iteration,
)
from plray.utils.validation import PlrayInputError

GAMMA = 0.9


# --------------------------------------------------------------------------- toy tasks


class _ToyTask(GoalTask):
    """Shared boilerplate: the state is observed and is the achieved goal."""

    max_episode_steps: ClassVar[int] = 200
    gamma: ClassVar[float] = GAMMA

    def reset_states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.sample_states(n, rng)

    def observe(self, states: np.ndarray) -> np.ndarray:
        return np.asarray(states, dtype=np.float64)

    def achieved_goal(self, states: np.ndarray) -> np.ndarray:
        return np.asarray(states, dtype=np.float64)

    def achieved_goal_from_obs(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs, dtype=np.float64)


class Chain(_ToyTask):
    """x ∈ [0, 10]; action 0 steps −1, action 1 steps +1 (clamped); the goal is hit within 0.5."""

    name = "chain"
    state_dim = obs_dim = goal_dim = 1
    num_actions = 2
    state_low = np.array([0.0])
    state_high = np.array([10.0])
    goal_tolerance = 0.5
    training_goals = np.array([[10.0]])

    def next_state(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return np.clip(states + (2.0 * np.asarray(actions) - 1.0)[:, None], 0.0, 10.0)


class Walker(_ToyTask):
    """(x, y) ∈ [0, 4]²; four actions move by ``step`` along ±x, ±y (clamped)."""

    name = "walker"
    state_dim = obs_dim = goal_dim = 2
    num_actions = 4
    state_low = np.array([0.0, 0.0])
    state_high = np.array([4.0, 4.0])
    goal_tolerance = 0.5
    training_goals = np.array([[4.0, 4.0]])
    MOVES = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])

    def __init__(self, step: float = 1.0) -> None:
        self.step = step

    def next_state(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return np.clip(states + self.step * self.MOVES[np.asarray(actions)], 0.0, 4.0)


class Circle(_ToyTask):
    """An angle θ ∈ [−π, π) on 12 nodes; actions turn by −h, +h or stay (h = π/6)."""

    name = "circle"
    state_dim = obs_dim = goal_dim = 1
    num_actions = 3
    angle_dims = (0,)
    state_low = np.array([-np.pi])
    state_high = np.array([np.pi])
    H = np.pi / 6
    goal_tolerance = H / 2
    training_goals = np.array([[-np.pi]])

    def next_state(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        turn = np.array([-self.H, self.H, 0.0])[np.asarray(actions)]
        return wrap_angle(states + turn[:, None])

    def terminal(self, achieved: np.ndarray, goals: np.ndarray) -> np.ndarray:
        return np.abs(wrap_angle(achieved - goals))[:, 0] < self.goal_tolerance


class Car(_ToyTask):
    """A MountainCar-like task: the position goal x = 0.6 (tolerance 0.1) means x > 0.5."""

    name = "car"
    state_dim = obs_dim = 2
    goal_dim = 1
    num_actions = 3
    gamma: ClassVar[float] = 0.99
    state_low = np.array([-1.2, -0.07])
    state_high = np.array([0.6, 0.07])
    goal_tolerance = 0.1
    training_goals = np.array([[0.6]])

    def next_state(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        x, v = states[:, 0], states[:, 1]
        v2 = np.clip(v + (np.asarray(actions) - 1) * 0.001 - np.cos(3 * x) * 0.0025, -0.07, 0.07)
        return np.stack([np.clip(x + v2, -1.2, 0.6), v2], axis=-1)

    def achieved_goal(self, states: np.ndarray) -> np.ndarray:
        return np.asarray(states)[:, :1]


def chain_steps(goal: int) -> np.ndarray:
    """Steps to reach ``goal`` from each node 0..10 of the chain (no stay action)."""
    steps = np.abs(np.arange(11) - goal)
    steps[goal] = 1 if goal in (0, 10) else 2  # at the goal: clamp in place, or step away and back
    return steps


def multilinear(x: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Σ_S coef[S] ∏_{j ∈ S} x_j over all subsets S of the d dims (bit j of S ↔ dim j)."""
    d = x.shape[1]
    out = np.zeros(x.shape[0])
    for subset in range(1 << d):
        term = np.full(x.shape[0], coef[subset])
        for j in range(d):
            if subset >> j & 1:
                term = term * x[:, j]
        out += term
    return out


# --------------------------------------------------------------------------- the grid


def test_grid_nodes_endpoints_and_order() -> None:
    grid = RegularGrid([0.0, -np.pi], [1.0, np.pi], (3, 4), periodic_dims=(1,))
    assert grid.num_points == 12 and grid.shape == (3, 4) and grid.corners == 4
    np.testing.assert_array_equal(grid.axes[0], [0.0, 0.5, 1.0])  # both endpoints
    np.testing.assert_allclose(grid.axes[1], [-np.pi, -np.pi / 2, 0.0, np.pi / 2])  # +π ≡ −π left out
    np.testing.assert_allclose(grid.spacing, [0.5, np.pi / 2])
    assert grid.points.shape == (12, 2)
    np.testing.assert_allclose(grid.points[5], [0.5, -np.pi / 2])  # C order: last dim fastest
    np.testing.assert_allclose(grid.node_points(np.array([11])), [[1.0, np.pi / 2]])
    assert "periodic_dims=(1,)" in repr(grid)


def test_interpolation_is_exact_for_multilinear_functions() -> None:
    rng = np.random.default_rng(0)
    low, high = np.array([-1.0, 0.0, 2.0]), np.array([1.0, 0.5, 5.0])
    grid = RegularGrid(low, high, (5, 3, 7))
    coef = rng.normal(size=8)
    x = rng.uniform(low, high, size=(500, 3))
    np.testing.assert_allclose(grid.interpolate(multilinear(grid.points, coef), x), multilinear(x, coef), atol=1e-12)
    np.testing.assert_allclose(
        grid.interpolate(multilinear(grid.points, coef), grid.points), multilinear(grid.points, coef), atol=1e-12
    )


def test_interpolation_weights_are_a_convex_combination() -> None:
    rng = np.random.default_rng(1)
    grid = RegularGrid([-np.pi, -2.0, 0.0], [np.pi, 2.0, 1.0], (6, 4, 5), periodic_dims=(0,))
    x = rng.uniform(-10.0, 10.0, size=(400, 3))  # far outside the box on every dim
    idx, w = grid.interpolation_weights(x)
    assert idx.shape == w.shape == (400, 8)
    assert (w >= 0).all() and ((idx >= 0) & (idx < grid.num_points)).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)


def test_interpolation_clamps_non_periodic_dims() -> None:
    rng = np.random.default_rng(2)
    grid = RegularGrid([0.0, 0.0], [1.0, 2.0], (4, 6))
    values = rng.normal(size=grid.num_points)
    x = rng.uniform(-3.0, 4.0, size=(200, 2))
    clipped = np.clip(x, grid.low, grid.high)
    np.testing.assert_allclose(grid.interpolate(values, x), grid.interpolate(values, clipped), atol=1e-12)


def test_periodic_interpolation_wraps_across_the_seam() -> None:
    rng = np.random.default_rng(3)
    n = 8
    grid = RegularGrid([-np.pi, 0.0], [np.pi, 1.0], (n, 3), periodic_dims=(0,))
    theta_vals = rng.normal(size=n)
    b, c = 0.7, -1.3
    values = (theta_vals[:, None] * (b + c * grid.axes[1])[None, :]).reshape(-1)  # a(θ) (b + c y)
    t = rng.uniform(0.0, 1.0, size=100)
    y = rng.uniform(0.0, 1.0, size=100)
    h = 2 * np.pi / n
    theta = np.pi - h + t * h  # in the cell between the last node and the seam at +π ≡ −π
    expected = ((1 - t) * theta_vals[-1] + t * theta_vals[0]) * (b + c * y)
    for shift in (0.0, 2 * np.pi, -4 * np.pi):
        got = grid.interpolate(values, np.stack([theta + shift, y], axis=-1))
        np.testing.assert_allclose(got, expected, atol=1e-10)
    # piecewise linear in θ with knots at the nodes, periodic: exact everywhere else too
    theta = rng.uniform(-np.pi, np.pi, size=100)
    u = (theta + np.pi) / h
    i0 = np.floor(u).astype(int)
    frac = u - i0
    expected = ((1 - frac) * theta_vals[i0] + frac * theta_vals[(i0 + 1) % n]) * (b + c * y)
    np.testing.assert_allclose(grid.interpolate(values, np.stack([theta, y], axis=-1)), expected, atol=1e-10)


def test_interpolation_matrix_and_chunks_agree_with_interpolate() -> None:
    rng = np.random.default_rng(4)
    grid = RegularGrid([-np.pi, 0.0], [np.pi, 1.0], (7, 5), periodic_dims=(0,))
    x = rng.uniform(-4.0, 4.0, size=(300, 2))
    values = rng.normal(size=(grid.num_points, 3))
    W = grid.interpolation_matrix(x, chunk_size=37)
    assert W.shape == (300, grid.num_points) and W.nnz <= 300 * 4
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-12)
    expected = grid.interpolate(values, x)
    assert expected.shape == (300, 3)
    np.testing.assert_allclose(W @ values, expected, atol=1e-12)
    np.testing.assert_allclose(grid.interpolate(values, x, chunk_size=11), expected, atol=1e-12)
    np.testing.assert_allclose(grid.interpolate(values[:, 1], x), expected[:, 1], atol=1e-12)


# --------------------------------------------------------------------------- value iteration


@pytest.mark.parametrize("goal", [10, 4])
def test_value_iteration_on_a_chain_matches_the_closed_form(goal: int) -> None:
    task = Chain()
    grid = task_grid(task, 11)
    sol = task_value_iteration(task, np.array([float(goal)]), grid)
    assert sol.converged and sol.delta < 1e-10
    steps = chain_steps(goal)
    np.testing.assert_allclose(sol.V, GAMMA ** (steps - 1), atol=1e-12)
    # Q(i, a): reward 1 on landing in the goal, else γ V(successor)
    nodes = np.arange(11)
    for a, succ in enumerate([np.maximum(nodes - 1, 0), np.minimum(nodes + 1, 10)]):
        expected = np.where(succ == goal, 1.0, GAMMA * sol.V[succ])
        np.testing.assert_allclose(sol.Q[:, a], expected, atol=1e-12)
    np.testing.assert_array_equal(sol.act(grid.points[:goal]), 1)  # walk right towards the goal


def test_value_iteration_on_a_2d_walker_matches_manhattan_distance() -> None:
    task = Walker()
    grid = task_grid(task, 5)
    sol = task_value_iteration(task, np.array([3.0, 1.0]), grid)
    dist = np.abs(grid.points - [3.0, 1.0]).sum(axis=1)
    steps = np.where(dist == 0, 2, dist)  # no stay action and not on a wall: step away and back
    np.testing.assert_allclose(sol.V, GAMMA ** (steps - 1), atol=1e-12)
    assert sol.Q.shape == (25, 4)


def test_value_iteration_on_a_circle_wraps_around_the_seam() -> None:
    task = Circle()
    grid = task_grid(task, 12)
    assert grid.periodic.tolist() == [True]
    for goal_node in (0, 1, 11):
        goal = np.array([-np.pi + goal_node * task.H])
        sol = task_value_iteration(task, goal, grid)
        dist = np.abs(np.arange(12) - goal_node)
        steps = np.maximum(np.minimum(dist, 12 - dist), 1)  # the shorter way round; at the goal, stay
        np.testing.assert_allclose(sol.V, GAMMA ** (steps - 1), atol=1e-10)


def test_bellman_residual_at_the_nodes_is_below_the_tolerance() -> None:
    task = Walker(step=0.55)  # successors between nodes, some clamped at the walls
    grid = task_grid(task, (5, 9))
    mdp = task_grid_mdp(task, np.array([4.0, 4.0]), grid)
    sol = mdp.value_iteration(tol=1e-10)
    assert sol.converged and 1 < sol.iterations < 10_000
    residual = np.abs(mdp.backup(sol.V).max(axis=1) - sol.V).max()
    assert residual < 1e-10
    np.testing.assert_allclose(sol.Q, mdp.backup(sol.V), atol=0)
    np.testing.assert_allclose(sol.values(grid.points), sol.V, atol=1e-12)


def test_max_iters_stops_value_iteration_unconverged() -> None:
    task = Chain()
    sol = task_value_iteration(task, np.array([10.0]), task_grid(task, 11), max_iters=3)
    assert sol.iterations == 3 and not sol.converged and sol.delta > 0


def test_generic_functions_equal_the_task_wrappers() -> None:
    task = Car()
    grid = task_grid(task, 15)
    goal = np.array([0.6])
    sol = grid_value_iteration(task.next_state, task.reward_at, task.terminal_at, goal, grid, 3, task.gamma)
    np.testing.assert_allclose(task_value_iteration(task, goal, grid, chunk_size=50).Q, sol.Q, atol=1e-14)
    pe = grid_policy_evaluation(task.next_state, task.reward_at, task.terminal_at, goal, grid, 3, 0.99, sol.act)
    np.testing.assert_allclose(task_policy_evaluation(task, goal, grid, sol.act).Q, pe.Q, atol=1e-14)


# --------------------------------------------------------------------------- policy evaluation


def test_policy_evaluation_on_a_chain_matches_the_closed_form() -> None:
    task = Chain()
    grid = task_grid(task, 11)
    always_right = np.ones(11, dtype=np.int64)
    for method in ("iterate", "solve"):
        pe = task_policy_evaluation(task, np.array([4.0]), grid, always_right, method=method)
        nodes = np.arange(11)
        V = np.where(nodes < 4, GAMMA ** (3 - nodes), 0.0)  # once past the goal it is never reached
        np.testing.assert_allclose(pe.V, V, atol=1e-12)
        Q_left = np.where(nodes == 5, 1.0, GAMMA * V[np.maximum(nodes - 1, 0)])
        np.testing.assert_allclose(
            pe.Q,
            np.stack([Q_left, np.where(nodes == 3, 1.0, GAMMA * V[np.minimum(nodes + 1, 10)])], axis=1),
            atol=1e-12,
        )


def test_policy_evaluation_of_the_greedy_policy_reproduces_value_iteration() -> None:
    task = Car()
    grid = task_grid(task, 40)
    mdp = task_grid_mdp(task, np.array([0.6]), grid)
    sol = mdp.value_iteration()
    greedy_nodes = sol.Q.argmax(axis=1)
    for policy in (sol.act, greedy_nodes):
        for method in ("iterate", "solve"):
            pe = mdp.policy_evaluation(policy, method=method)
            np.testing.assert_allclose(pe.V, sol.V, atol=1e-8)
            np.testing.assert_allclose(pe.Q, sol.Q, atol=1e-8)
    assert 0.0 < sol.V.min() < sol.V.max() <= 1.0


# --------------------------------------------------------------------------- forbidden regions


def test_forbidden_successors_terminate_with_zero_reward() -> None:
    task = Chain()
    grid = task_grid(task, 11)

    def forbidden(s: np.ndarray) -> np.ndarray:
        return np.abs(s[:, 0] - 5.0) < 0.5

    mdp = task_grid_mdp(task, np.array([10.0]), grid, forbidden_fn=forbidden)
    assert mdp.dones[1, 4] and mdp.rewards[1, 4] == 0.0  # 4 → 5 is forbidden
    assert mdp.dones[1, 9] and mdp.rewards[1, 9] == 1.0  # 9 → 10 reaches the goal
    sol = mdp.value_iteration()
    nodes = np.arange(11)  # starting on node 5 is allowed; only entering it ends the episode
    np.testing.assert_allclose(sol.V, np.where(nodes < 5, 0.0, GAMMA ** (np.maximum(10 - nodes, 1) - 1)), atol=1e-12)
    # a forbidden region over the goal wins: nothing is ever paid
    everywhere = task_value_iteration(task, np.array([10.0]), grid, forbidden_fn=lambda s: s[:, 0] > 9.5)
    np.testing.assert_allclose(everywhere.V, 0.0, atol=0)
    # rollouts stop in forbidden states with nothing paid
    starts = np.array([[2.0], [7.0]])
    right = lambda s: np.ones(len(s), dtype=np.int64)  # noqa: E731
    got = rollout_returns(task, right, np.array([10.0]), starts, 50, forbidden_fn=forbidden)
    np.testing.assert_allclose(got, [0.0, GAMMA**2], atol=1e-15)


# --------------------------------------------------------------------------- rollouts


def test_rollout_returns_match_a_scalar_loop() -> None:
    task = Car()
    goal = np.array([0.6])
    sol = task_value_iteration(task, goal, task_grid(task, 40))
    starts = np.stack([np.random.default_rng(5).uniform(-0.6, -0.4, size=16), np.zeros(16)], axis=-1)
    got = rollout_returns(task, sol.act, goal, starts, 200)
    expected = np.zeros(16)
    for i, s0 in enumerate(starts):
        s, ret = s0[None], 0.0
        for t in range(200):
            s = task.next_state(s, sol.act(s))
            ret += task.gamma**t * task.reward_at(s, goal[None])[0]
            if task.terminal_at(s, goal[None])[0]:
                break
        expected[i] = ret
    np.testing.assert_allclose(got, expected, atol=1e-15)
    assert (got > 0).all()


def test_rollout_returns_on_a_chain_equal_the_optimal_values() -> None:
    task = Chain()
    grid = task_grid(task, 11)
    sol = task_value_iteration(task, np.array([4.0]), grid)
    got = rollout_returns(task, sol.act, np.array([4.0]), grid.points, 30)
    np.testing.assert_allclose(got, sol.V, atol=1e-12)
    short = rollout_returns(task, sol.act, np.array([4.0]), grid.points, 2, gamma=0.5)
    np.testing.assert_allclose(
        short, np.where(np.isin(np.arange(11), [3, 5]), 1.0, np.where(np.isin(np.arange(11), [2, 4, 6]), 0.5, 0.0))
    )


# --------------------------------------------------------------------------- Q_NMSE


def test_q_nmse_hand_computed() -> None:
    q_true = np.zeros((4, 2, 2))
    q_true[:, 0, 0] = [0, 1, 2, 3]  # Var 1.25
    q_true[:, 1, 0] = [0, 0, 2, 2]  # Var 1
    q_true[:, 0, 1] = [1, 2, 3, 4]  # Var 1.25
    q_true[:, 1, 1] = [0, 2, 0, 2]  # Var 1
    q_agent = q_true.copy()
    q_agent[:, 0, 0] += 0.5  # MSE 0.25 → 0.2
    q_agent[:, 1, 0] += [1, -1, 1, -1]  # MSE 1 → 1.0
    q_agent[:, 1, 1] = 0.0  # MSE 2 → 2.0
    np.testing.assert_allclose(q_nmse_per_goal(q_agent, q_true), [0.6, 1.0])
    assert q_nmse(q_agent, q_true) == pytest.approx(0.8)
    assert q_nmse(q_agent[:, :, 0], q_true[:, :, 0]) == pytest.approx(0.6)
    np.testing.assert_allclose(q_nmse_per_goal(q_agent[:, :, 1], q_true[:, :, 1]), [1.0])
    assert q_nmse(q_true, q_true) == 0.0
    assert q_nmse(3 * q_agent, 3 * q_true) == pytest.approx(0.8)  # scale free


def test_q_nmse_rejects_bad_input() -> None:
    q = np.random.default_rng(6).normal(size=(5, 3, 2))
    with pytest.raises(PlrayInputError, match="q_agent"):
        q_nmse(q[:, :2], q)
    with pytest.raises(PlrayInputError, match="q_true"):
        q_nmse(q[:, 0, 0], q[:, 0, 0])
    with pytest.raises(PlrayInputError, match="zero variance"):
        q_nmse(q, np.ones_like(q))
    bad = q.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(PlrayInputError, match="q_agent.*NaN"):
        q_nmse(bad, q)


# --------------------------------------------------------------------------- input errors


def test_grid_rejects_bad_construction() -> None:
    with pytest.raises(PlrayInputError, match="resolution"):
        RegularGrid([0.0, 0.0], [1.0, 1.0], 1)
    with pytest.raises(PlrayInputError, match="resolution"):
        RegularGrid([0.0, 0.0], [1.0, 1.0], (3, 4, 5))
    with pytest.raises(PlrayInputError, match="resolution"):
        RegularGrid([0.0, 0.0], [1.0, 1.0], (3.0, 4.5))
    with pytest.raises(PlrayInputError, match="high"):
        RegularGrid([0.0, 1.0], [1.0, 1.0], 3)
    with pytest.raises(PlrayInputError, match="high"):
        RegularGrid([0.0, 0.0], [1.0], 3)
    with pytest.raises(PlrayInputError, match="low.*NaN"):
        RegularGrid([np.nan, 0.0], [1.0, 1.0], 3)
    with pytest.raises(PlrayInputError, match="periodic_dims"):
        RegularGrid([0.0, 0.0], [1.0, 1.0], 3, periodic_dims=(2,))
    with pytest.raises(PlrayInputError, match="periodic_dims"):
        RegularGrid([0.0, 0.0], [1.0, 1.0], 3, periodic_dims=(0, 0))


def test_interpolation_rejects_bad_queries_and_values() -> None:
    grid = RegularGrid([0.0, 0.0], [1.0, 1.0], 3)
    with pytest.raises(PlrayInputError, match=r"x: .*axis 1"):
        grid.interpolate(np.zeros(9), np.zeros((4, 3)))
    with pytest.raises(PlrayInputError, match="x: .*NaN"):
        grid.interpolation_matrix(np.array([[0.5, np.nan]]))
    with pytest.raises(PlrayInputError, match="x: expected a 2-D"):
        grid.interpolation_weights(np.zeros(2))
    with pytest.raises(PlrayInputError, match="values"):
        grid.interpolate(np.zeros(8), np.zeros((4, 2)))
    with pytest.raises(PlrayInputError, match="chunk_size"):
        grid.interpolate(np.zeros(9), np.zeros((4, 2)), chunk_size=0)


def test_bellman_machinery_rejects_bad_functions_and_policies() -> None:
    task = Chain()
    grid = task_grid(task, 11)
    goal = np.array([10.0])
    ok = (task.next_state, task.reward_at, task.terminal_at)
    with pytest.raises(PlrayInputError, match="next_state_fn.*shape"):
        grid_mdp(lambda s, a: s[:, 0], *ok[1:], goal, grid, 2, GAMMA)
    with pytest.raises(PlrayInputError, match="next_state_fn.*NaN"):
        grid_mdp(lambda s, a: s * np.nan, *ok[1:], goal, grid, 2, GAMMA)
    with pytest.raises(PlrayInputError, match="reward_fn"):
        grid_mdp(ok[0], lambda s, g: np.zeros((len(s), 1)), ok[2], goal, grid, 2, GAMMA)
    with pytest.raises(PlrayInputError, match="terminal_fn"):
        grid_mdp(ok[0], ok[1], lambda s, g: np.full(len(s), 0.5), goal, grid, 2, GAMMA)
    with pytest.raises(PlrayInputError, match="gamma"):
        grid_mdp(*ok, goal, grid, 2, 1.0)
    with pytest.raises(PlrayInputError, match="num_actions"):
        grid_mdp(*ok, goal, grid, 0, GAMMA)
    with pytest.raises(PlrayInputError, match="grid"):
        grid_mdp(*ok, goal, grid.points, 2, GAMMA)
    mdp = grid_mdp(*ok, goal, grid, 2, GAMMA)
    with pytest.raises(PlrayInputError, match="tol"):
        mdp.value_iteration(tol=0.0)
    with pytest.raises(PlrayInputError, match="max_iters"):
        mdp.value_iteration(max_iters=0)
    with pytest.raises(PlrayInputError, match="policy.*range"):
        mdp.policy_evaluation(np.full(11, 2))
    with pytest.raises(PlrayInputError, match="policy.*shape"):
        mdp.policy_evaluation(np.ones(10, dtype=np.int64))
    with pytest.raises(PlrayInputError, match="policy.*integer"):
        mdp.policy_evaluation(lambda s: np.ones(len(s)))
    with pytest.raises(PlrayInputError, match="method"):
        mdp.policy_evaluation(np.ones(11, dtype=np.int64), method="exact")  # type: ignore[arg-type]
    with pytest.raises(PlrayInputError, match="V"):
        mdp.backup(np.zeros(12))
    with pytest.raises(PlrayInputError, match="goal"):
        task_value_iteration(task, np.array([1.0, 2.0]), grid)
    with pytest.raises(PlrayInputError, match="grid"):
        task_value_iteration(task, goal, RegularGrid([0.0, 0.0], [1.0, 1.0], 3))


def test_rollout_returns_rejects_bad_input() -> None:
    task = Chain()
    goal = np.array([10.0])
    right = lambda s: np.ones(len(s), dtype=np.int64)  # noqa: E731
    with pytest.raises(PlrayInputError, match="policy_fn"):
        rollout_returns(task, lambda s: np.full(len(s), 5), goal, np.zeros((3, 1)), 5)
    with pytest.raises(PlrayInputError, match="starts"):
        rollout_returns(task, right, goal, np.zeros((3, 2)), 5)
    with pytest.raises(PlrayInputError, match="starts.*NaN"):
        rollout_returns(task, right, goal, np.full((3, 1), np.nan), 5)
    with pytest.raises(PlrayInputError, match="horizon"):
        rollout_returns(task, right, goal, np.zeros((3, 1)), 0)


# --------------------------------------------------------------------------- stochastic successors


class NoisyChain(Chain):
    """The chain with Gaussian process noise; the box clips it."""

    name = "noisy-chain"

    def __init__(self, sigma: float = 0.6) -> None:
        self.noise_std = np.array([sigma])

    def add_noise(self, states: np.ndarray, noise: np.ndarray) -> np.ndarray:
        return np.clip(states + noise, 0.0, 10.0)


def test_slippery_chain_value_iteration_matches_a_tabular_solve() -> None:
    """Each step moves as intended with probability 0.8 and stays with 0.2: V = max_a P_a (r + γ(1 − d)V)."""
    task = Chain()
    grid = task_grid(task, 11)
    goal = 7.0

    def slippery(states: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.stack([task.next_state(states, actions), states], axis=1), np.array([0.8, 0.2])

    sol = grid_value_iteration(
        task.next_state, task.reward_at, task.terminal_at, np.array([goal]), grid, 2, GAMMA, successor_fn=slippery
    )
    # the same MDP written out as 11 × 11 transition matrices
    n = 11
    P = np.zeros((2, n, n))
    for i in range(n):
        P[0, i, max(i - 1, 0)] += 0.8
        P[1, i, min(i + 1, 10)] += 0.8
        P[:, i, i] += 0.2
    r = (np.abs(np.arange(n) - goal) < 0.5).astype(float)
    V = np.zeros(n)
    for _ in range(2000):
        V = (P @ (r + GAMMA * (1 - r) * V)).max(axis=0)
    np.testing.assert_allclose(sol.V, V, atol=1e-9)


def test_a_one_node_quadrature_is_the_deterministic_mdp() -> None:
    task = Car()
    grid = task_grid(task, 15)
    one = grid_mdp(task.next_state, task.reward_at, task.terminal_at, np.array([0.6]), grid, 3, 0.99)
    quad = grid_mdp(
        task.next_state,
        task.reward_at,
        task.terminal_at,
        np.array([0.6]),
        grid,
        3,
        0.99,
        successor_fn=lambda s, a: (task.next_state(s, a)[:, None], np.ones(1)),
    )
    np.testing.assert_array_equal(one.rewards, quad.rewards)
    assert (one.transitions != quad.transitions).nnz == 0


def test_task_value_iteration_integrates_a_stochastic_task_with_its_quadrature() -> None:
    task = NoisyChain()
    grid = task_grid(task, 11)
    goal = np.array([7.0])
    sol = task_value_iteration(task, goal, grid)
    explicit = grid_value_iteration(
        task.next_state,
        task.reward_at,
        task.terminal_at,
        goal,
        grid,
        2,
        GAMMA,
        successor_fn=task.successor_quadrature,
    )
    np.testing.assert_allclose(sol.V, explicit.V, atol=1e-12)
    deterministic = task_value_iteration(Chain(), goal, grid)
    assert not np.allclose(sol.V, deterministic.V, atol=1e-3)  # the noise changes the values


def test_bad_quadratures_are_refused() -> None:
    task = Chain()
    grid = task_grid(task, 11)
    args = (task.next_state, task.reward_at, task.terminal_at, np.array([7.0]), grid, 2, GAMMA)
    with pytest.raises(PlrayInputError, match="sum to 1"):
        grid_mdp(*args, successor_fn=lambda s, a: (task.next_state(s, a)[:, None], np.array([0.5])))
    with pytest.raises(PlrayInputError, match="tuple"):
        grid_mdp(*args, successor_fn=lambda s, a: task.next_state(s, a))  # type: ignore[arg-type,return-value]
    with pytest.raises(PlrayInputError, match="nodes"):
        grid_mdp(*args, successor_fn=lambda s, a: (task.next_state(s, a), np.ones(1)))


def test_rollouts_on_a_stochastic_task_are_seeded() -> None:
    task = NoisyChain(sigma=1.0)
    starts = np.zeros((64, 1))
    right = lambda s: np.ones(len(s), dtype=np.int64)  # noqa: E731
    a = rollout_returns(task, right, np.array([7.0]), starts, 30, seed=1)
    np.testing.assert_array_equal(a, rollout_returns(task, right, np.array([7.0]), starts, 30, seed=1))
    assert not np.array_equal(a, rollout_returns(task, right, np.array([7.0]), starts, 30, seed=2))
    assert np.unique(a).size > 1  # trajectories differ between starts
