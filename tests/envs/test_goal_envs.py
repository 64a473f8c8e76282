"""GoalEnv / GoalVectorEnv over the continuous tasks, and the task registry / RLlib env creator."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from plray.core import PlrayInputError
from plray.envs.base import GoalEnv, GoalTask, GoalVectorEnv
from plray.envs.mountaincar import MountainCarTask
from plray.envs.mujoco_reacher import MujocoReacherTask
from plray.envs.reacher import KinematicReacherTask
from plray.envs.registry import TASKS, make_env, make_task

NAMES = [
    "mountaincar-position",
    "mountaincar-velocity",
    "mountaincar-position-noisy",
    "reacher",
    "reacher-continuous",
    "mujoco-reacher",
    "mujoco-reacher-discrete",
]


def random_actions(task: GoalTask, rng: np.random.Generator, n: int) -> np.ndarray:
    if task.num_actions is not None:
        return rng.integers(task.num_actions, size=n)
    return rng.uniform(-1, 1, (n, task.action_dim)).astype(np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_gymnasium_env_checker_passes(name: str) -> None:
    env = GoalEnv(make_task(name))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    # no complaint about spaces, dtypes, seeding or determinism; the only warnings allowed are the
    # generic ones about base's unbounded observation Box (gymnasium's MuJoCo envs get them too)
    others = [str(w.message) for w in caught if "infinity" not in str(w.message)]
    assert not others
    obs, _ = env.reset(seed=1)
    assert obs.shape == (env.task.obs_dim + env.task.goal_dim,) and obs.dtype == np.float32
    assert env.observation_space.contains(obs)


def test_registry_names_and_types() -> None:
    assert sorted(TASKS) == sorted([*NAMES, "fourrooms"])
    assert isinstance(make_task("mountaincar-position"), MountainCarTask)
    assert make_task("mountaincar-position").goal == "position"
    assert make_task("mountaincar-velocity").goal == "velocity"
    assert isinstance(make_task("reacher"), KinematicReacherTask)
    assert isinstance(make_task("mujoco-reacher"), MujocoReacherTask)
    for name in NAMES:
        assert make_task(name).name == name


def test_make_task_errors() -> None:
    with pytest.raises(PlrayInputError, match="unknown task 'cartpole'.*mountaincar-position.*mujoco-reacher"):
        make_task("cartpole")
    with pytest.raises(PlrayInputError, match="task_kwargs.*'goal'"):
        make_task("mountaincar-position", goal="velocity")  # a name fixes its task


@pytest.mark.parametrize("name", [n for n in NAMES if not make_task(n).stochastic])  # noise: different draws
def test_vector_env_matches_single_envs(name: str) -> None:
    task = make_task(name)
    goal = task.training_goals[[1]]
    B = 3
    venv = GoalVectorEnv(task, B, goals=goal, seed=7)
    obs, info = venv.reset()
    envs = [GoalEnv(task, goals=goal) for _ in range(B)]
    for i, env in enumerate(envs):
        o, inf = env.reset(seed=i, options={"state": info["state"][i], "goal": goal[0]})
        np.testing.assert_array_equal(o, obs[i])
    rng = np.random.default_rng(8)
    live = np.ones(B, dtype=bool)
    for _ in range(25):
        actions = random_actions(task, rng, B)
        obs, rew, term, trunc, info = venv.step(actions)
        for i in np.flatnonzero(live):
            o, r, te, tr, inf = envs[i].step(actions[i])
            np.testing.assert_array_equal(o, obs[i])
            np.testing.assert_array_equal(inf["state"], info["state"][i])
            assert (r, te, tr) == (rew[i], term[i], trunc[i])
            live[i] = not (te or tr)


def test_next_step_autoreset_after_termination() -> None:
    # from any start x ∈ [−0.6, −0.4] with no push, x' stays within 0.1 of −0.5: done on step 1
    task = MountainCarTask("position")
    venv = GoalVectorEnv(task, 5, goals=np.array([[-0.5]]), seed=0)
    obs0, info0 = venv.reset()
    none = np.ones(5, dtype=np.int64)
    obs1, rew1, term1, trunc1, info1 = venv.step(none)
    np.testing.assert_array_equal(rew1, 1.0)
    assert term1.all() and not trunc1.any()
    np.testing.assert_allclose(info1["state"], task.next_state(info0["state"], none))
    # the next step ignores the actions and returns fresh reset observations, reward 0, no flags
    obs2, rew2, term2, trunc2, info2 = venv.step(np.zeros(5, dtype=np.int64))
    np.testing.assert_array_equal(rew2, 0.0)
    assert not term2.any() and not trunc2.any()
    s2 = info2["state"]
    assert (s2[:, 1] == 0.0).all() and (s2[:, 0] >= -0.6).all() and (s2[:, 0] < -0.4).all()
    assert not np.allclose(s2, info1["state"])
    np.testing.assert_array_equal(obs2, task.agent_obs(s2, np.full((5, 1), -0.5)))
    # and the new episode runs normally
    _, rew3, term3, _, _ = venv.step(none)
    np.testing.assert_array_equal(rew3, 1.0)
    assert term3.all()


def test_next_step_autoreset_after_truncation() -> None:
    # v never gets near 0.07 without pushing: every episode is truncated at 200 steps
    task = MountainCarTask("velocity")
    venv = GoalVectorEnv(task, 2, goals=np.array([[0.07]]), seed=3)
    venv.reset()
    none = np.ones(2, dtype=np.int64)
    for t in range(1, 200):
        _, rew, term, trunc, _ = venv.step(none)
        assert not term.any() and not trunc.any() and (rew == 0).all(), t
    _, rew, term, trunc, info = venv.step(none)
    assert trunc.all() and not term.any() and (rew == 0).all()
    obs, rew, term, trunc, info = venv.step(none)
    assert not term.any() and not trunc.any() and (rew == 0).all()
    assert (info["state"][:, 1] == 0.0).all()
    np.testing.assert_array_equal(obs, task.agent_obs(info["state"], np.full((2, 1), 0.07)))
    for _ in range(199):
        _, _, _, trunc, _ = venv.step(none)
        assert not trunc.any()
    _, _, _, trunc, _ = venv.step(none)
    assert trunc.all()  # the step counter restarted at the reset


def test_vector_env_goals_and_seeds() -> None:
    task = KinematicReacherTask()
    a, b, c = (GoalVectorEnv(task, 64, seed=s) for s in (5, 5, 6))
    oa, ob, oc = a.reset()[0], b.reset()[0], c.reset()[0]
    np.testing.assert_array_equal(oa, ob)
    assert not np.array_equal(oa, oc)
    goals = oa[:, -2:].astype(np.float64)
    # every drawn goal is a training goal, and all four appear
    dist = np.linalg.norm(goals[:, None] - task.training_goals[None], axis=-1)
    assert (dist.min(1) < 1e-6).all() and len(set(dist.argmin(1))) == 4
    # reset(seed=...) reseeds
    np.testing.assert_array_equal(a.reset(seed=11)[0], c.reset(seed=11)[0])


def test_make_env_single_and_vector() -> None:
    env = make_env({"task": "reacher", "seed": 4})
    assert isinstance(env, GoalEnv) and isinstance(env.task, KinematicReacherTask)
    ref = GoalEnv(KinematicReacherTask())
    np.testing.assert_array_equal(env.reset()[0], ref.reset(seed=4)[0])

    venv = make_env({"task": "mountaincar-velocity", "seed": 2, "num_envs": 8, "task_kwargs": {}})
    assert isinstance(venv, GoalVectorEnv) and venv.num_envs == 8
    assert venv.task.name == "mountaincar-velocity"
    np.testing.assert_array_equal(venv.reset()[0], GoalVectorEnv(MountainCarTask("velocity"), 8, seed=2).reset()[0])

    class EnvContextLike(dict):  # RLlib's EnvContext is a dict with extra attributes
        worker_index = 3

    assert isinstance(make_env(EnvContextLike(task="mujoco-reacher")), GoalEnv)


def test_make_env_through_gymnasium_make_vec_like_rllib() -> None:
    # RLlib's SingleAgentEnvRunner registers the creator with a vector entry point that adds num_envs
    cfg: dict[str, Any] = {"task": "mountaincar-position", "seed": 0}
    env_id = "plray-test/goal-env-creator-v0"
    gym.register(
        env_id,
        entry_point=lambda: make_env(cfg),
        vector_entry_point=lambda num_envs: make_env(cfg | {"num_envs": num_envs}),
    )
    try:
        venv = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point")
        obs, _ = venv.reset(seed=1)
        assert obs.shape == (4, 3)
        obs, rew, term, trunc, _ = venv.step(np.ones(4, dtype=np.int64))
        assert obs.shape == (4, 3) and rew.shape == term.shape == trunc.shape == (4,)
        assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
        single = gym.make(env_id)
        assert single.reset(seed=1)[0].shape == (3,)
    finally:
        del gym.registry[env_id]


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"task": "reacher", "seeds": 1}, r"unknown keys \['seeds'\].*task, task_kwargs, seed, num_envs, start_states"),
        ({"seed": 1}, "missing 'task'.*reacher"),
        ({"task": "pendulum"}, "unknown task 'pendulum'"),
        ({"task": "reacher", "num_envs": 0}, "num_envs"),
        ({"task": "reacher", "num_envs": 2.0}, "num_envs"),
        ({"task": "reacher", "seed": -1}, "seed"),
        ({"task": "reacher", "seed": "0"}, "seed"),
        ({"task": "reacher", "task_kwargs": [1]}, "task_kwargs"),
        ({"task": "reacher", "task_kwargs": {"dt": 0.1}}, "task_kwargs"),
        ({"task": "reacher", "num_envs": 2, "start_states": "edge"}, "start_states: unknown 'edge'.*reset, uniform"),
        ({"task": "reacher", "start_states": "uniform"}, "only vector envs"),
    ],
)
def test_make_env_errors(config: dict[str, Any], match: str) -> None:
    with pytest.raises(PlrayInputError, match=match):
        make_env(config)


def test_make_env_rejects_non_mappings() -> None:
    with pytest.raises(PlrayInputError, match="env_config"):
        make_env(["task", "reacher"])  # type: ignore[arg-type]


def test_fourrooms_goal_task_through_registry() -> None:
    task = make_task("fourrooms", variant="windy", num_goals=4, goal_family="generic", seed=1)
    env = make_env({"task": "fourrooms", "task_kwargs": {"variant": "windy", "num_goals": 4}, "num_envs": 8, "seed": 0})
    obs, _ = env.reset()
    assert obs.shape == (8, 68 + 4)
    stepped_rows = 0
    for _ in range(300):
        stepped = ~env._needs_reset  # rows that take a real step now (the others reset)
        obs, rew, term, trunc, info = env.step(np.zeros(8, dtype=np.int64))
        s = info["state"][:, 0].astype(int)
        g = obs[:, 68:].argmax(1)
        # a stepped row earns r(s', g) of its goal; a resetting row earns nothing
        np.testing.assert_allclose(rew[stepped], env.task.goals.rewards[s, g][stepped])
        assert (rew[~stepped] == 0).all()
        stepped_rows += int(stepped.sum())
    assert stepped_rows < 300 * 8, "some episodes ended and reset"
    with pytest.raises(PlrayInputError, match="random"):
        task.achieved_goal(np.zeros((1, 1)))


def test_uniform_start_states_cover_the_state_box() -> None:
    task = MountainCarTask("position")
    reset = make_env({"task": "mountaincar-position", "num_envs": 4000, "seed": 0})
    uniform = make_env({"task": "mountaincar-position", "num_envs": 4000, "seed": 0, "start_states": "uniform"})
    assert isinstance(uniform, GoalVectorEnv) and uniform.start_states == "uniform"
    s_reset = reset.reset()[1]["state"]
    s_uni = uniform.reset()[1]["state"]
    assert np.all(s_reset[:, 1] == 0.0) and s_reset[:, 0].min() >= -0.6 and s_reset[:, 0].max() <= -0.4
    assert np.all(s_uni >= task.state_low) and np.all(s_uni <= task.state_high)
    # spread over the box: every quarter of x and both signs of v are hit
    assert np.histogram(s_uni[:, 0], bins=4, range=(-1.2, 0.6))[0].min() > 800
    assert (s_uni[:, 1] < 0).mean() == pytest.approx(0.5, abs=0.05)
    # episodes that end restart uniformly too (autoreset goes through the same path)
    uniform._needs_reset[:] = True
    uniform.step(np.zeros(4000, dtype=np.int64))
    assert (uniform._states[:, 0] > -0.4).mean() > 0.5
