"""MujocoReacherTask against gymnasium's own Reacher-v5 environment and MuJoCo's kinematics."""

from __future__ import annotations

import math
import pickle

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from plray.core import PlrayInputError
from plray.envs.mujoco_reacher import MujocoReacherTask


@pytest.fixture(scope="module")
def task() -> MujocoReacherTask:
    return MujocoReacherTask()


@pytest.fixture(scope="module")
def reacher_v5() -> gym.Env:
    env = gym.make("Reacher-v5")  # no render_mode: nothing is displayed
    env.reset(seed=0)
    return env.unwrapped


def gym_step(env: gym.Env, state: np.ndarray, action: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Reacher-v5 step from arm state [θ₁, θ₂, ω₁, ω₂] with the target at ``target``.

    Returns the next arm state (qpos[:2], qvel[:2]) and Reacher-v5's 10-D observation.
    """
    mujoco.mj_resetData(env.model, env.data)  # same (zero) solver warm start as the task
    env.set_state(np.r_[state[:2], target], np.r_[state[2:], 0.0, 0.0])
    obs, *_ = env.step(action)
    return np.r_[env.data.qpos[:2], env.data.qvel[:2]], obs


def random_states(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.column_stack(
        [rng.uniform(-4, 4, n), rng.uniform(-3.1, 3.1, n), rng.uniform(-30, 30, n), rng.uniform(-30, 30, n)]
    )


def test_attributes(task: MujocoReacherTask) -> None:
    assert task.name == "mujoco-reacher"
    assert (task.state_dim, task.obs_dim, task.goal_dim, task.num_actions, task.action_dim) == (4, 8, 2, None, 2)
    assert task.angle_dims == (0,)
    assert task.max_episode_steps == 50 and task.gamma == 0.99 and task.frame_skip == 2
    np.testing.assert_array_equal(task.action_low, [-1, -1])
    np.testing.assert_array_equal(task.action_high, [1, 1])
    np.testing.assert_allclose(task.state_low, [-math.pi, -3, -20, -20])
    np.testing.assert_allclose(task.state_high, [math.pi, 3, 20, 20])
    np.testing.assert_allclose(task.training_goals, [[0.15, 0], [0, 0.15], [-0.15, 0], [0, -0.15]])
    assert task.goal_tolerance == 0.02
    space = task.action_space()
    assert isinstance(space, gym.spaces.Box) and space.shape == (2,)


def test_next_state_matches_gymnasium_reacher_v5(task: MujocoReacherTask, reacher_v5: gym.Env) -> None:
    rng = np.random.default_rng(0)
    n = 40
    states = random_states(rng, n)
    states[0] = [0.3, 2.95, 1.0, 60.0]  # driven into the θ₂ = 3 joint limit
    actions = rng.uniform(-1.5, 1.5, (n, 2))  # out-of-range controls: MuJoCo clamps them too
    targets = rng.uniform(-0.2, 0.2, (n, 2))  # Reacher-v5's target wherever it is; the task parks it
    got = task.next_state(states, actions)
    obs = task.observe(got)
    for i in range(n):
        want, gym_obs = gym_step(reacher_v5, states[i], actions[i], targets[i])
        np.testing.assert_allclose(math.remainder(got[i, 0] - want[0], 2 * math.pi), 0.0, atol=1e-9)
        np.testing.assert_allclose(got[i, 1:], want[1:], rtol=1e-9, atol=1e-9)
        # Reacher-v5 obs: [cos θ (2), sin θ (2), target (2), ω (2), fingertip − target (2)]
        np.testing.assert_allclose(obs[i, :4], gym_obs[:4], atol=1e-9)
        np.testing.assert_allclose(obs[i, 4:6], gym_obs[6:8], rtol=1e-9, atol=1e-9)
        # Reacher-v5's fingertip − target (obs[8:10]) reads body positions left by mj_step's last
        # internal (RK4 stage) evaluation, not the final qpos; recompute kinematics at the final qpos
        mujoco.mj_kinematics(reacher_v5.model, reacher_v5.data)
        np.testing.assert_allclose(obs[i, 6:8], reacher_v5.data.body("fingertip").xpos[:2], atol=1e-9)
    assert (got[:, 0] >= -math.pi).all() and (got[:, 0] < math.pi).all()
    assert got[0, 1] > 3.0  # the soft joint limit is overshot, and θ₂ is not wrapped


def test_theta2_is_not_wrapped_past_pi(task: MujocoReacherTask, reacher_v5: gym.Env) -> None:
    s = np.array([[0.0, 3.0, 0.0, 150.0]])
    got = task.next_state(s, np.array([[0.0, 1.0]]))
    want, _ = gym_step(reacher_v5, s[0], np.array([0.0, 1.0]), np.zeros(2))
    assert got[0, 1] > math.pi
    np.testing.assert_allclose(got[0, 1:], want[1:], rtol=1e-9)


def test_rows_are_independent_and_deterministic(task: MujocoReacherTask) -> None:
    rng = np.random.default_rng(1)
    states = random_states(rng, 12)
    actions = rng.uniform(-1, 1, (12, 2))
    batch = task.next_state(states, actions)
    np.testing.assert_array_equal(batch, task.next_state(states, actions))
    single = np.concatenate([task.next_state(states[[i]], actions[[i]]) for i in range(12)])
    np.testing.assert_array_equal(batch, single)
    reversed_batch = task.next_state(states[::-1], actions[::-1])[::-1]
    np.testing.assert_array_equal(batch, reversed_batch)


def test_fingertip_matches_mujoco_kinematics(task: MujocoReacherTask) -> None:
    model = mujoco.MjModel.from_xml_path(gym.make("Reacher-v5").unwrapped.fullpath)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(2)
    states = random_states(rng, 50)
    fp = task.achieved_goal(states)
    for i in range(50):
        data.qpos[:2] = states[i, :2]
        mujoco.mj_kinematics(model, data)
        np.testing.assert_allclose(fp[i], data.body("fingertip").xpos[:2], atol=1e-12)
    np.testing.assert_allclose(task.achieved_goal(np.zeros((1, 4))), [[0.21, 0.0]], atol=1e-12)


def test_observation_layout(task: MujocoReacherTask) -> None:
    s = np.array([[0.5, -1.0, 2.0, -3.0]])
    obs = task.observe(s)
    fp = [0.1 * math.cos(0.5) + 0.11 * math.cos(-0.5), 0.1 * math.sin(0.5) + 0.11 * math.sin(-0.5)]
    want = [math.cos(0.5), math.cos(-1.0), math.sin(0.5), math.sin(-1.0), 2.0, -3.0, *fp]
    np.testing.assert_allclose(obs[0], want, atol=1e-12)
    s = task.reset_states(32, np.random.default_rng(3))
    np.testing.assert_array_equal(task.achieved_goal_from_obs(task.observe(s)), task.achieved_goal(s))


def inverse_kinematics(x: float, y: float) -> tuple[float, float]:
    l1, l2 = 0.1, 0.11
    t2 = math.acos((x * x + y * y - l1 * l1 - l2 * l2) / (2 * l1 * l2))
    t1 = math.atan2(y, x) - math.atan2(l2 * math.sin(t2), l1 + l2 * math.cos(t2))
    return t1, t2


def test_reward_and_termination(task: MujocoReacherTask) -> None:
    for g in task.training_goals:
        for d, inside in ((0.0, True), (0.019, True), (0.021, False)):
            r = math.hypot(*g) + d  # move radially away from the goal by d
            t1, t2 = inverse_kinematics(g[0] * r / 0.15, g[1] * r / 0.15)
            s = np.array([[t1, t2, 0.0, 0.0]])
            assert np.linalg.norm(task.achieved_goal(s)[0] - g) == pytest.approx(d, abs=1e-9)
            assert bool(task.terminal_at(s, g[None])[0]) is inside
            assert task.reward_at(s, g[None])[0] == float(inside)


def test_reset_distribution(task: MujocoReacherTask) -> None:
    s = task.reset_states(20_000, np.random.default_rng(4))
    assert s.shape == (20_000, 4)
    assert (s[:, 0] >= -math.pi).all() and (s[:, 0] < math.pi).all()
    assert (np.abs(s[:, 1]) <= 3.0).all() and (np.abs(s[:, 2:]) <= 1.0).all()
    np.testing.assert_allclose(s.mean(0), 0.0, atol=0.05)
    want_std = [2 * math.pi / math.sqrt(12), 6 / math.sqrt(12), 2 / math.sqrt(12), 2 / math.sqrt(12)]
    np.testing.assert_allclose(s.std(0), want_std, rtol=0.03)
    np.testing.assert_array_equal(s, task.reset_states(20_000, np.random.default_rng(4)))


def test_pickle_round_trip(task: MujocoReacherTask) -> None:
    clone = pickle.loads(pickle.dumps(task))
    rng = np.random.default_rng(5)
    states, actions = random_states(rng, 5), rng.uniform(-1, 1, (5, 2))
    np.testing.assert_array_equal(clone.next_state(states, actions), task.next_state(states, actions))


def test_input_validation(task: MujocoReacherTask) -> None:
    with pytest.raises(PlrayInputError, match="actions"):
        task.next_state(np.zeros((2, 4)), np.zeros((2, 3)))
    with pytest.raises(PlrayInputError, match="actions"):
        task.next_state(np.zeros((2, 4)), np.array([[0.0, np.nan], [0.0, 0.0]]))
    with pytest.raises(PlrayInputError, match="states"):
        task.next_state(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(PlrayInputError, match="obs"):
        task.achieved_goal_from_obs(np.zeros((1, 6)))
    assert task.next_state(np.zeros((0, 4)), np.zeros((0, 2))).shape == (0, 4)


def test_discrete_counterpart_steps_the_nine_controls(task: MujocoReacherTask) -> None:
    from plray.envs.mujoco_reacher import DiscreteMujocoReacherTask
    from plray.envs.reacher import TORQUES
    from plray.envs.registry import make_task

    disc = make_task("mujoco-reacher-discrete")
    assert isinstance(disc, DiscreteMujocoReacherTask) and disc.num_actions == 9 and disc.action_low is None
    assert isinstance(task.discrete_counterpart(), DiscreteMujocoReacherTask)
    states = task.reset_states(18, np.random.default_rng(3))
    idx = np.arange(18) % 9
    np.testing.assert_array_equal(disc.next_state(states, idx), task.next_state(states, TORQUES[idx]))
    assert disc.action_space().n == 9 and disc.observe(states).shape == (18, 8)
    with pytest.raises(PlrayInputError, match=r"\[0, 9\)"):
        disc.next_state(states[:1], np.array([9]))
    with pytest.raises(PlrayInputError, match="integers"):
        disc.next_state(states[:1], np.array([[0.5, 0.5]]))
    assert pickle.loads(pickle.dumps(disc)).next_state(states[:2], idx[:2]).shape == (2, 4)
