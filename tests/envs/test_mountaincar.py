"""MountainCarTask against a plain scalar re-implementation of gymnax's MountainCar physics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plray.core import PlrayInputError
from plray.envs.base import GoalEnv
from plray.envs.mountaincar import MountainCarTask


def scalar_step(x: float, v: float, a: int) -> tuple[float, float]:
    """gymnax MountainCar.step_env, one state at a time, written from the equations."""
    v = v + (a - 1) * 0.001 + math.cos(3 * x) * (-0.0025)
    v = min(max(v, -0.07), 0.07)
    x = min(max(x + v, -1.2), 0.6)
    if x == -1.2 and v < 0:
        v = 0.0
    return x, v


@pytest.fixture(params=["position", "velocity"])
def task(request: pytest.FixtureRequest) -> MountainCarTask:
    return MountainCarTask(request.param)


def test_attributes(task: MountainCarTask) -> None:
    assert task.name == f"mountaincar-{task.goal}"
    assert (task.state_dim, task.obs_dim, task.goal_dim, task.num_actions) == (2, 2, 1, 3)
    assert task.max_episode_steps == 200 and task.gamma == 0.99
    np.testing.assert_array_equal(task.state_low, [-1.2, -0.07])
    np.testing.assert_array_equal(task.state_high, [0.6, 0.07])
    if task.goal == "position":
        np.testing.assert_allclose(task.training_goals[:, 0], [-1.2, -0.6, 0.0, 0.6], atol=1e-12)
        assert task.goal_tolerance == 0.1
    else:
        np.testing.assert_allclose(task.training_goals[:, 0], [-0.07, -0.07 / 3, 0.07 / 3, 0.07], atol=1e-12)
        assert task.goal_tolerance == 0.01
    assert task.training_goals.shape == (4, 1)
    # the two instances keep their own names
    assert MountainCarTask("position").name != MountainCarTask("velocity").name


def test_next_state_matches_scalar_equations_on_random_batches() -> None:
    task = MountainCarTask()
    rng = np.random.default_rng(0)
    # a box wider than the state box, so both clips and the wall are exercised
    states = np.column_stack([rng.uniform(-1.4, 0.8, 500), rng.uniform(-0.09, 0.09, 500)])
    actions = rng.integers(3, size=500)
    got = task.next_state(states, actions)
    want = np.array([scalar_step(x, v, int(a)) for (x, v), a in zip(states, actions, strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert got.dtype == np.float64 and got.shape == (500, 2)


def test_edge_cases_left_wall_right_wall_and_velocity_clip() -> None:
    task = MountainCarTask()
    states = np.array(
        [
            [-1.19, -0.05],  # hits the left wall moving left: x clipped, v zeroed
            [-1.2, -0.01],  # at the wall, still moving left: stays, v zeroed
            [0.59, 0.05],  # hits the right wall: x clipped, v kept
            [-0.9, 0.0699],  # pushed over max speed: v clipped to 0.07
            [0.0, -0.0699],  # pushed under −max speed: v clipped to −0.07
        ]
    )
    actions = np.array([0, 0, 2, 2, 0])
    got = task.next_state(states, actions)
    assert got[0, 0] == -1.2 and got[0, 1] == 0.0
    assert got[1, 0] == -1.2 and got[1, 1] == 0.0
    assert got[2, 0] == 0.6 and got[2, 1] > 0.05
    assert got[3, 1] == 0.07 and got[3, 0] == pytest.approx(-0.9 + 0.07)
    assert got[4, 1] == -0.07 and got[4, 0] == pytest.approx(-0.07)
    want = np.array([scalar_step(x, v, int(a)) for (x, v), a in zip(states, actions, strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_no_builtin_goal_termination() -> None:
    # gymnax ended episodes at x ≥ 0.5 with v ≥ 0; here only reaching the task's goal does
    env = GoalEnv(MountainCarTask("velocity"))
    env.reset(seed=0, options={"state": [0.48, 0.05], "goal": [-0.07]})
    _, reward, terminated, truncated, info = env.step(2)
    assert info["state"][0] >= 0.5 and info["state"][1] >= 0.0
    assert (reward, terminated, truncated) == (0.0, False, False)


def test_reward_and_termination(task: MountainCarTask) -> None:
    g = task.training_goals
    dim = 0 if task.goal == "position" else 1
    a = task.goal_tolerance
    states = np.zeros((4, 2))
    states[:, 1 - dim] = 0.01
    offsets = np.array([0.0, 0.99 * a, -0.99 * a, 1.01 * a])
    states[:, dim] = g[1, 0] + offsets
    goals = np.repeat(g[[1]], 4, axis=0)
    np.testing.assert_array_equal(task.reward_at(states, goals), [1.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(task.terminal_at(states, goals), [True, True, True, False])
    # the other state dim does not matter
    states2 = states.copy()
    states2[:, 1 - dim] = -0.5 if dim == 1 else 0.05
    np.testing.assert_array_equal(task.reward_at(states2, goals), [1.0, 1.0, 1.0, 0.0])


def test_reset_distribution(task: MountainCarTask) -> None:
    s = task.reset_states(20_000, np.random.default_rng(1))
    assert s.shape == (20_000, 2)
    assert (s[:, 1] == 0.0).all()
    assert s[:, 0].min() >= -0.6 and s[:, 0].max() < -0.4
    assert s[:, 0].mean() == pytest.approx(-0.5, abs=0.003)
    assert s[:, 0].std() == pytest.approx(0.2 / math.sqrt(12), rel=0.03)
    np.testing.assert_array_equal(s, task.reset_states(20_000, np.random.default_rng(1)))
    assert not np.array_equal(s, task.reset_states(20_000, np.random.default_rng(2)))


def test_observation_and_achieved_goal(task: MountainCarTask) -> None:
    s = task.sample_states(50, np.random.default_rng(3))
    obs = task.observe(s)
    np.testing.assert_array_equal(obs, s)
    dim = 0 if task.goal == "position" else 1
    np.testing.assert_array_equal(task.achieved_goal(s)[:, 0], s[:, dim])
    np.testing.assert_array_equal(task.achieved_goal_from_obs(obs), task.achieved_goal(s))
    agent = task.agent_obs(s, np.repeat(task.training_goals[[2]], 50, axis=0))
    assert agent.shape == (50, 3) and agent.dtype == np.float32
    np.testing.assert_allclose(agent[:, 2], task.training_goals[2, 0], rtol=1e-6)


def test_input_validation() -> None:
    task = MountainCarTask()
    rng = np.random.default_rng(0)
    with pytest.raises(PlrayInputError, match="goal"):
        MountainCarTask("height")
    with pytest.raises(PlrayInputError, match="states"):
        task.next_state(np.zeros((3, 3)), np.zeros(3, dtype=int))
    with pytest.raises(PlrayInputError, match="states"):
        task.next_state(np.array([[np.nan, 0.0]]), np.zeros(1, dtype=int))
    with pytest.raises(PlrayInputError, match="actions"):
        task.next_state(np.zeros((2, 2)), np.array([0, 3]))
    with pytest.raises(PlrayInputError, match="actions"):
        task.next_state(np.zeros((2, 2)), np.array([0.0, 1.0]))
    with pytest.raises(PlrayInputError, match="n:"):
        task.reset_states(-1, rng)
    with pytest.raises(PlrayInputError, match="rng"):
        task.reset_states(3, 0)  # type: ignore[arg-type]
    with pytest.raises(PlrayInputError, match="obs"):
        task.achieved_goal_from_obs(np.zeros(2))
    assert task.reset_states(0, rng).shape == (0, 2)


def test_left_wall_contact_is_where_the_velocity_is_zeroed() -> None:
    task = MountainCarTask("position")
    rng = np.random.default_rng(3)
    states = task.sample_states(50_000, rng)
    states[:2000, 0] = rng.uniform(-1.2, -1.1, 2000)  # plenty of states by the wall
    actions = rng.integers(3, size=len(states))
    hit = task.left_wall_contact(states, actions)
    nxt = task.next_state(states, actions)
    assert 0 < hit.mean() < 0.1
    np.testing.assert_array_equal(nxt[hit], np.tile([-1.2, 0.0], (int(hit.sum()), 1)))
    # elsewhere v' is the free update: position x' = clip(x + v') and v' unchanged by the wall
    free_v = np.clip(states[:, 1] + (actions - 1) * 0.001 - np.cos(3 * states[:, 0]) * 0.0025, -0.07, 0.07)
    np.testing.assert_allclose(nxt[~hit, 1], free_v[~hit])
    assert not task.left_wall_contact(np.array([[-1.2, 0.07]]), np.array([2]))[0]
    assert task.left_wall_contact(np.array([[-1.19, -0.05]]), np.array([0]))[0]


def test_wall_plateau_is_where_every_action_hits_the_wall() -> None:
    task = MountainCarTask()
    states = task.sample_states(20_000, np.random.default_rng(3))
    plateau = task.wall_plateau(states)
    assert 0 < plateau.sum() < len(states)
    for a in range(3):
        nxt = task.next_state(states[plateau], np.full(int(plateau.sum()), a))
        np.testing.assert_array_equal(nxt, np.tile([-1.2, 0.0], (int(plateau.sum()), 1)))
    # outside the plateau some action avoids the wall
    escapes = np.zeros(len(states), dtype=bool)
    for a in range(3):
        escapes |= ~task.left_wall_contact(states, np.full(len(states), a))
    np.testing.assert_array_equal(escapes, ~plateau)
    assert task.wall_plateau(np.array([[-1.2, -0.07]]))[0] and not task.wall_plateau(np.array([[-1.2, 0.0]]))[0]


# --------------------------------------------------------------------------- the noisy variant


def test_noisy_variant_is_registered_and_validated() -> None:
    from plray.envs.mountaincar import NOISE_STD
    from plray.envs.registry import make_task

    task = make_task("mountaincar-position-noisy")
    assert task.name == "mountaincar-position-noisy" and task.stochastic
    np.testing.assert_array_equal(task.noise_std, NOISE_STD)
    assert not MountainCarTask("position").stochastic
    assert not MountainCarTask("position", noise_std=(0.0, 0.0)).stochastic
    for bad in [(0.1,), (-0.01, 0.001), (float("nan"), 0.0), "big"]:
        with pytest.raises(PlrayInputError, match="noise_std"):
            MountainCarTask("position", noise_std=bad)  # type: ignore[arg-type]


def test_deterministic_sampling_is_the_exact_step_and_draws_nothing() -> None:
    task = MountainCarTask("position")
    states = task.sample_states(50, np.random.default_rng(0))
    actions = np.arange(50) % 3
    rng = np.random.default_rng(1)
    np.testing.assert_array_equal(task.sample_next_state(states, actions, rng), task.next_state(states, actions))
    assert rng.random() == np.random.default_rng(1).random()  # the generator was not advanced
    nodes, weights = task.successor_quadrature(states, actions)
    assert nodes.shape == (50, 1, 2) and weights.tolist() == [1.0]


def test_noisy_successors_have_the_declared_moments_away_from_the_box() -> None:
    task = MountainCarTask("position", noise_std=(0.005, 0.001))
    state = np.array([[-0.5, 0.01]])  # far from both walls and from the speed limit
    draws = task.sample_next_state(np.repeat(state, 40_000, 0), np.full(40_000, 2), np.random.default_rng(0))
    mean = task.next_state(state, np.array([2]))[0]
    assert (np.abs(draws.mean(0) - mean) < 4 * np.array([0.005, 0.001]) / 200).all()  # 4 standard errors
    np.testing.assert_allclose(draws.std(0), [0.005, 0.001], rtol=0.02)
    # the quadrature integrates polynomials of the noise exactly there: mean and variance
    nodes, w = task.successor_quadrature(state, np.array([2]))
    assert nodes.shape == (1, 25, 2)
    np.testing.assert_allclose(w.sum(), 1.0)
    np.testing.assert_allclose((w[:, None] * nodes[0]).sum(0), mean, atol=1e-15)
    np.testing.assert_allclose(np.sqrt((w[:, None] * (nodes[0] - mean) ** 2).sum(0)), [0.005, 0.001], rtol=1e-12)


def test_noisy_successors_stay_in_the_box_and_respect_the_wall() -> None:
    task = MountainCarTask("position", noise_std=(0.05, 0.01))
    states = np.repeat(np.array([[-1.19, -0.02], [0.59, 0.069]]), 5000, 0)
    nxt = task.sample_next_state(states, np.zeros(10_000, dtype=np.int64), np.random.default_rng(0))
    assert (nxt[:, 0] >= -1.2).all() and (nxt[:, 0] <= 0.6).all() and (np.abs(nxt[:, 1]) <= 0.07).all()
    at_wall = nxt[:, 0] == -1.2
    assert at_wall.any() and (nxt[at_wall, 1] >= 0).all()


def test_noisy_vector_env_is_seeded_and_differs_from_the_exact_physics() -> None:
    from plray.envs.base import GoalVectorEnv

    def run(task: MountainCarTask, seed: int) -> np.ndarray:
        env = GoalVectorEnv(task, 8, seed=seed)
        env.reset()
        for _ in range(5):
            obs, *_ = env.step(np.full(8, 2))
        return obs

    noisy = MountainCarTask("position", noise_std=(0.005, 0.001))
    np.testing.assert_array_equal(run(noisy, 3), run(noisy, 3))
    assert not np.allclose(run(noisy, 3), run(MountainCarTask("position"), 3))
