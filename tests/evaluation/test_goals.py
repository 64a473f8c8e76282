"""The goal object: reward, termination and forbidden region of successors, scored in one place."""

from __future__ import annotations

import numpy as np
import pytest

from plray.envs.mountaincar import MountainCarTask
from plray.evaluation.goals import Goal, check_output, task_goal
from plray.evaluation.unseen import UnseenGoal, unseen_goal
from plray.utils.validation import PlrayInputError


def _line_goal() -> Goal:
    """Reward x on arrival (dense), terminate at x >= 3, forbidden beyond x = 4."""
    return Goal(
        "line",
        lambda s: s[:, 0].copy(),
        lambda s: s[:, 0] >= 3.0,
        lambda s: s[:, 0] > 4.0,
        "reward x, done at x >= 3, x > 4 forbidden",
    )


def test_score_applies_the_forbidden_rule() -> None:
    r, done = _line_goal().score(np.array([[1.0], [3.0], [5.0]]))
    np.testing.assert_array_equal(r, [1.0, 3.0, 0.0])  # forbidden pays 0 whatever the reward says
    np.testing.assert_array_equal(done, [False, True, True])  # and terminates
    assert r.dtype == np.float64 and done.dtype == np.bool_


def test_score_without_a_forbidden_region() -> None:
    g = Goal("plain", lambda s: s[:, 0].copy(), lambda s: s[:, 0] >= 3.0)
    r, done = g.score(np.array([[5.0]]))
    assert r.tolist() == [5.0] and done.tolist() == [True]


def test_validation_names_the_function() -> None:
    bad_shape = Goal("g", lambda s: np.zeros((len(s), 2)), lambda s: np.zeros(len(s), dtype=bool))
    with pytest.raises(PlrayInputError, match="reward_fn"):
        bad_shape.score(np.zeros((3, 1)), validate=True)
    bad_done = Goal("g", lambda s: np.zeros(len(s)), lambda s: np.full(len(s), 0.5))
    with pytest.raises(PlrayInputError, match="terminal_fn"):
        bad_done.score(np.zeros((3, 1)), validate=True)
    bad_forbidden = Goal("g", lambda s: np.zeros(len(s)), lambda s: s[:, 0] > 0, lambda s: np.zeros(len(s) + 1, bool))
    with pytest.raises(PlrayInputError, match="forbidden_fn"):
        bad_forbidden.score(np.zeros((3, 1)), validate=True)
    nan = Goal("g", lambda s: np.full(len(s), np.nan), lambda s: s[:, 0] > 0)
    with pytest.raises(PlrayInputError, match="reward_fn"):
        nan.score(np.zeros((3, 1)), validate=True)
    # 0 / 1 numbers are accepted as booleans
    np.testing.assert_array_equal(check_output(np.array([0, 1]), "f", (2,), boolean=True), [False, True])


def test_conditioned_and_task_goals_fix_g() -> None:
    mc = MountainCarTask("position")
    g = mc.training_goals[2]
    s = np.array([[float(g[0]), 0.0], [-1.0, 0.0]])
    goal = task_goal(mc, g)
    r, done = goal.score(s)
    G = np.repeat(g[None], 2, axis=0)
    np.testing.assert_array_equal(r, mc.reward_at(s, G))
    np.testing.assert_array_equal(done, mc.terminal_at(s, G))
    assert r.tolist() == [1.0, 0.0] and goal.description == f"task goal {g.tolist()}"
    seen: list[tuple[int, int]] = []

    def reward(states: np.ndarray, goals: np.ndarray) -> np.ndarray:
        seen.append(goals.shape)
        return (states[:, 0] > goals[:, 0]).astype(np.float64)

    cond = Goal.conditioned(
        reward, lambda st, gs: st[:, 0] > gs[:, 0], np.array([0.5]), forbidden_fn=lambda st: st[:, 1] < 0
    )
    r, done = cond.score(np.array([[1.0, 1.0], [1.0, -1.0], [0.0, 1.0]]))
    assert r.tolist() == [1.0, 0.0, 0.0] and done.tolist() == [True, True, False] and seen == [(3, 1)]


def test_unseen_goals_are_goals() -> None:
    mc = MountainCarTask("position")
    gentle = unseen_goal(mc, "gentle_car")
    assert UnseenGoal is Goal and isinstance(gentle, Goal)
    r, done = gentle.score(np.array([[0.6, 0.01], [0.6, 0.07], [0.0, 0.0]]))
    assert r.tolist() == [1.0, 0.0, 0.0] and done.tolist() == [True, True, False]


def test_unseen_goals_are_looked_up_by_task_family() -> None:
    from plray.envs.reacher import KinematicReacherTask
    from plray.envs.registry import make_task
    from plray.evaluation.unseen import UNSEEN_GOALS, goal_task, unseen_goals

    assert set(UNSEEN_GOALS) == {"mountaincar", "reacher"}
    names = ["fast_car", "gentle_car", "shortest_path"]
    assert [g.name for g in unseen_goals(make_task("mountaincar-position-noisy"))] == names
    reacher = KinematicReacherTask()
    goal = unseen_goal(reacher, "far_fingertip")
    with pytest.raises(PlrayInputError, match="task"):
        unseen_goals(goal_task(reacher, goal))  # a view is not a task family of its own
    view = goal_task(reacher, goal)
    s = reacher.reset_states(4, np.random.default_rng(0))
    np.testing.assert_array_equal(view.fingertip(s), reacher.fingertip(s))  # type: ignore[attr-defined]
    assert view.angle_dims == reacher.angle_dims and view.state_dim == 4 and view.name == "reacher:far_fingertip"
