"""The continuous-torque kinematic Reacher (``reacher-continuous``) against the 9-torque ``reacher``."""

from __future__ import annotations

import numpy as np
import pytest

from plray.core import PlrayInputError
from plray.envs.reacher import DT, TORQUES, ContinuousKinematicReacherTask, KinematicReacherTask
from plray.envs.registry import make_env, make_task


def _states(n: int = 256) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.concatenate([rng.uniform(-4.0, 4.0, (n, 2)), rng.uniform(-3.0, 3.0, (n, 2))], axis=1)


def test_dynamics_equal_the_discrete_tasks_at_the_nine_torques() -> None:
    cont, disc = make_task("reacher-continuous"), make_task("reacher")
    states = _states()
    for a, torque in enumerate(TORQUES):
        ours = cont.next_state(states, np.repeat(torque[None], len(states), axis=0))
        np.testing.assert_array_equal(ours, disc.next_state(states, np.full(len(states), a)))


def test_torques_are_clipped_to_the_box() -> None:
    task = ContinuousKinematicReacherTask()
    states = _states(8)
    big = np.tile([[3.0, -7.5]], (8, 1))
    np.testing.assert_array_equal(task.next_state(states, big), task.next_state(states, np.tile([[1.0, -1.0]], (8, 1))))
    half = task.next_state(states, np.tile([[0.5, -0.25]], (8, 1)))
    np.testing.assert_allclose(half[:, 2:], states[:, 2:] + DT * np.array([0.5, -0.25]))  # ω' = ω + dt·τ


def test_same_goals_and_declared_planning_subset() -> None:
    spec = {"kind": "fingertip", "count": 8, "placement": "spread"}
    cont, disc = make_task("reacher-continuous", goals=spec), make_task("reacher", goals=spec)
    np.testing.assert_array_equal(cont.training_goals, disc.training_goals)
    np.testing.assert_array_equal(make_task("reacher-continuous").training_goals, make_task("reacher").training_goals)
    assert cont.num_actions is None and cont.action_dim == 2
    np.testing.assert_array_equal(cont.planning_actions, TORQUES)
    twin = cont.discrete_counterpart()
    assert isinstance(twin, KinematicReacherTask) and twin.num_actions == 9
    np.testing.assert_array_equal(twin.training_goals, cont.training_goals)


def test_bad_actions_and_env() -> None:
    task = ContinuousKinematicReacherTask()
    with pytest.raises(PlrayInputError, match="actions"):
        task.next_state(_states(4), np.zeros((4, 3)))
    with pytest.raises(PlrayInputError, match="non-finite"):
        task.next_state(_states(1), np.array([[np.nan, 0.0]]))
    env = make_env({"task": "reacher-continuous", "seed": 0, "num_envs": 3})
    obs, _ = env.reset(seed=0)
    obs2, reward, *_ = env.step(np.zeros((3, 2), dtype=np.float32))
    assert obs.shape == obs2.shape == (3, 8) and reward.shape == (3,)
