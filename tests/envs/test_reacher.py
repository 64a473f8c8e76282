"""KinematicReacherTask against a plain scalar re-implementation of gymnax's misc.reacher kinematics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plray.core import PlrayInputError
from plray.envs.reacher import KinematicReacherTask

# the paper's make_action_table([[-1, 0, 1], [-1, 0, 1]]), written out
ACTION_TABLE = {
    0: (-1, -1),
    1: (-1, 0),
    2: (-1, 1),
    3: (0, -1),
    4: (0, 0),
    5: (0, 1),
    6: (1, -1),
    7: (1, 0),
    8: (1, 1),
}


def scalar_wrap(t: float) -> float:
    return t - 2 * math.pi * math.floor((t + math.pi) / (2 * math.pi))


def scalar_step(s: np.ndarray, a: int) -> list[float]:
    t1, t2, w1, w2 = (float(x) for x in s)
    tau1, tau2 = ACTION_TABLE[a]
    w1, w2 = w1 + 0.05 * tau1, w2 + 0.05 * tau2
    return [scalar_wrap(t1 + 0.05 * w1), scalar_wrap(t2 + 0.05 * w2), w1, w2]


def assert_angles_close(a: np.ndarray, b: np.ndarray, atol: float = 1e-12) -> None:
    """Equal as angles (mod 2π), so ±π on either side of the cut compare equal."""
    np.testing.assert_allclose(np.angle(np.exp(1j * (np.asarray(a) - np.asarray(b)))), 0.0, atol=atol)


@pytest.fixture
def task() -> KinematicReacherTask:
    return KinematicReacherTask()


def test_attributes(task: KinematicReacherTask) -> None:
    assert task.name == "reacher"
    assert (task.state_dim, task.obs_dim, task.goal_dim, task.num_actions) == (4, 6, 2, 9)
    assert task.angle_dims == (0, 1)
    assert task.max_episode_steps == 100 and task.gamma == 0.99
    np.testing.assert_allclose(task.state_low, [-math.pi, -math.pi, -2, -2])
    np.testing.assert_allclose(task.state_high, [math.pi, math.pi, 2, 2])
    np.testing.assert_array_equal(task.training_goals, [[1, 0], [0, 1], [-1, 0], [0, -1]])
    assert task.goal_tolerance == 0.2


def test_next_state_matches_scalar_equations_on_random_batches(task: KinematicReacherTask) -> None:
    rng = np.random.default_rng(0)
    # angles beyond [−π, π) and velocities beyond the state box: no clipping anywhere
    states = np.column_stack([rng.uniform(-7, 7, (400, 2)), rng.uniform(-5, 5, (400, 2))])
    actions = rng.integers(9, size=400)
    got = task.next_state(states, actions)
    want = np.array([scalar_step(s, int(a)) for s, a in zip(states, actions, strict=True)])
    np.testing.assert_allclose(got[:, 2:], want[:, 2:], rtol=0, atol=1e-14)
    assert_angles_close(got[:, :2], want[:, :2])
    assert (got[:, :2] >= -math.pi).all() and (got[:, :2] < math.pi).all()


def test_each_action_applies_its_torque(task: KinematicReacherTask) -> None:
    states = np.zeros((9, 4))
    got = task.next_state(states, np.arange(9))
    want = 0.05 * np.array([ACTION_TABLE[a] for a in range(9)], dtype=float)
    np.testing.assert_allclose(got[:, 2:], want, atol=1e-15)
    np.testing.assert_allclose(got[:, :2], 0.05 * want, atol=1e-15)  # semi-implicit: θ uses ω'


def test_angle_wrapping_edge_case(task: KinematicReacherTask) -> None:
    s = np.array([[3.1, -3.1, 2.0, -2.0]])
    got = task.next_state(s, np.array([6]))  # τ = (+1, −1)
    w = np.array([2.05, -2.05])
    raw = s[0, :2] + 0.05 * w  # (3.2025, −3.2025): both past the cut
    np.testing.assert_allclose(got[0, :2], [raw[0] - 2 * math.pi, raw[1] + 2 * math.pi], atol=1e-12)
    np.testing.assert_allclose(got[0, 2:], w, atol=1e-15)


def test_fingertip_uses_absolute_link_angles(task: KinematicReacherTask) -> None:
    states = np.array(
        [
            [0.0, 0.0, 0, 0],
            [math.pi / 2, 0.0, 0, 0],  # absolute: (1, 1); a relative θ₂ would give (0, 2)
            [0.0, math.pi, 0, 0],
            [math.pi / 2, math.pi / 2, 0, 0],
        ]
    )
    np.testing.assert_allclose(task.achieved_goal(states), [[2, 0], [1, 1], [0, 0], [0, 2]], atol=1e-12)
    rng = np.random.default_rng(1)
    s = task.sample_states(100, rng)
    fp = np.array([[math.cos(a) + math.cos(b), math.sin(a) + math.sin(b)] for a, b in s[:, :2]])
    np.testing.assert_allclose(task.achieved_goal(s), fp, atol=1e-12)


def test_observation_layout(task: KinematicReacherTask) -> None:
    s = np.array([[4.0, -4.0, 0.3, -0.7]])  # unwrapped angles
    obs = task.observe(s)
    assert obs.shape == (1, 6)
    np.testing.assert_allclose(obs[0, :2], [4.0 - 2 * math.pi, -4.0 + 2 * math.pi], atol=1e-12)
    np.testing.assert_array_equal(obs[0, 2:4], [0.3, -0.7])
    np.testing.assert_allclose(obs[0, 4:], [math.cos(4) + math.cos(-4), math.sin(4) + math.sin(-4)], atol=1e-12)
    s = task.reset_states(64, np.random.default_rng(2))
    np.testing.assert_array_equal(task.achieved_goal_from_obs(task.observe(s)), task.achieved_goal(s))


def test_reward_and_termination(task: KinematicReacherTask) -> None:
    # θ = (0, π/2) puts the fingertip at (1, 1): 1 from goals (1, 0) and (0, 1)
    goals = task.training_goals
    s = np.array([[0.0, math.pi / 2, 0.0, 0.0]])
    dist = np.hypot(*(np.array([1.0, 1.0]) - goals).T)
    got = task.reward_at(np.repeat(s, 4, axis=0), goals)
    np.testing.assert_array_equal(got, (dist < 0.2).astype(float))
    assert got.sum() == 0
    # the symmetric pose θ₁ = π/2 + φ, θ₂ = π/2 − φ has its fingertip at (0, 2 cos φ); put it at
    # distance d from the goal (0, 1), just inside and just outside the tolerance 0.2
    for d, inside in ((0.19, True), (0.21, False)):
        phi = math.acos((1 + d) / 2)
        s = np.array([[math.pi / 2 + phi, math.pi / 2 - phi, 0.0, 0.0]])
        fp = task.achieved_goal(s)[0]
        assert fp == pytest.approx([0.0, 1 + d], abs=1e-12)
        assert bool(task.terminal_at(s, goals[[1]])[0]) is inside
        assert task.reward_at(s, goals[[1]])[0] == float(inside)


def test_reset_distribution(task: KinematicReacherTask) -> None:
    s = task.reset_states(20_000, np.random.default_rng(3))
    assert s.shape == (20_000, 4)
    assert (s[:, :2] >= -math.pi).all() and (s[:, :2] < math.pi).all()
    assert (np.abs(s[:, 2:]) <= 1.0).all()
    np.testing.assert_allclose(s.mean(0), 0.0, atol=0.05)
    np.testing.assert_allclose(s.std(0), [2 * math.pi / math.sqrt(12)] * 2 + [2 / math.sqrt(12)] * 2, rtol=0.03)
    np.testing.assert_array_equal(s, task.reset_states(20_000, np.random.default_rng(3)))


def test_velocity_is_not_clipped(task: KinematicReacherTask) -> None:
    s = np.zeros((1, 4))
    for _ in range(60):
        s = task.next_state(s, np.array([8]))
    np.testing.assert_allclose(s[0, 2:], [3.0, 3.0], atol=1e-12)  # beyond the [−2, 2] state box


def test_input_validation(task: KinematicReacherTask) -> None:
    with pytest.raises(PlrayInputError, match="actions"):
        task.next_state(np.zeros((2, 4)), np.array([0, 9]))
    with pytest.raises(PlrayInputError, match="actions"):
        task.next_state(np.zeros((2, 4)), np.array([0]))
    with pytest.raises(PlrayInputError, match="states"):
        task.next_state(np.zeros((2, 6)), np.array([0, 1]))
    with pytest.raises(PlrayInputError, match="states"):
        task.observe(np.full((1, 4), np.inf))
    with pytest.raises(PlrayInputError, match="obs"):
        task.achieved_goal_from_obs(np.zeros((3, 4)))
    with pytest.raises(PlrayInputError, match="n:"):
        task.reset_states(2.5, np.random.default_rng(0))  # type: ignore[arg-type]
