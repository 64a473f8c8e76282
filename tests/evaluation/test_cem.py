"""The batched CEM model-predictive planner: returns inside the model, discrete and continuous CEM, MPC."""

from __future__ import annotations

import numpy as np
import pytest

from plray.envs.mountaincar import MountainCarTask
from plray.envs.reacher import KinematicReacherTask
from plray.evaluation.cem import CEMPlanner
from plray.evaluation.unseen import UnseenGoal, unseen_goal, unseen_returns
from plray.utils.validation import PlrayInputError

GAMMA = 0.9


def _discrete_line(s: np.ndarray, a: np.ndarray) -> np.ndarray:
    return s + (np.asarray(a) - 1.0)[:, None]


def _continuous_line(s: np.ndarray, a: np.ndarray) -> np.ndarray:
    return s + np.asarray(a, dtype=np.float64).reshape(len(s), 1)


def _at_least(x: float):
    return (lambda s: (s[:, 0] >= x).astype(np.float64)), (lambda s: s[:, 0] >= x)


def test_sequence_returns_hand_computed() -> None:
    reward, terminal = _at_least(3.0)
    p = CEMPlanner(
        _discrete_line, reward, terminal, horizon=5, population=4, elites=2, iterations=1, num_actions=3, gamma=GAMMA
    )
    seqs = np.array([[2, 2, 2, 2, 2], [2, 2, 1, 2, 2], [0, 0, 0, 0, 0], [2, 2, 2, 0, 0]])
    got = p.sequence_returns(np.zeros((4, 1)), seqs)
    # reward on arrival at s = 3: step 3 (γ²), step 4 (γ³), never, step 3 (then terminated: later moves ignored)
    np.testing.assert_allclose(got, [GAMMA**2, GAMMA**3, 0.0, GAMMA**2])
    # forbidden successors end the sequence with reward 0
    p_forbid = CEMPlanner(
        _discrete_line,
        reward,
        terminal,
        horizon=5,
        population=4,
        elites=2,
        iterations=1,
        num_actions=3,
        gamma=GAMMA,
        forbidden_fn=lambda s: s[:, 0] >= 2.5,
    )
    np.testing.assert_array_equal(p_forbid.sequence_returns(np.zeros((4, 1)), seqs), 0.0)
    with pytest.raises(PlrayInputError, match="actions"):
        p.sequence_returns(np.zeros((4, 1)), seqs[:, :3])


def test_discrete_cem_plans_towards_the_goal() -> None:
    reward, terminal = _at_least(4.0)
    p = CEMPlanner(
        _discrete_line,
        reward,
        terminal,
        horizon=6,
        population=64,
        elites=8,
        iterations=3,
        num_actions=3,
        gamma=GAMMA,
        seed=0,
        constant_sequences=False,
    )
    starts = np.array([[0.0], [1.0], [2.5], [0.5]])
    np.testing.assert_array_equal(p.plan_batch(starts), [2, 2, 2, 2])
    assert p.plan(np.array([0.0])) == 2 and isinstance(p.plan(np.array([0.0])), int)


def test_continuous_cem_plans_towards_the_goal() -> None:
    reward, terminal = _at_least(1.0)
    p = CEMPlanner(
        _continuous_line,
        reward,
        terminal,
        horizon=4,
        population=128,
        elites=12,
        iterations=4,
        action_low=np.array([-0.5]),
        action_high=np.array([0.5]),
        gamma=GAMMA,
        seed=0,
    )
    starts = np.array([[0.0], [0.2], [-0.4]])
    actions = p.plan_batch(starts)
    assert actions.shape == (3, 1)
    assert (actions[:, 0] > 0.2).all() and (actions <= 0.5).all()
    # closed loop from 0: the goal needs two steps of ≥ 0.5 on average; MPC gets there in 2 or 3
    s, steps = np.array([[0.0]]), 0
    while not terminal(s)[0] and steps < 6:
        s = _continuous_line(s, p.plan_batch(s))
        steps += 1
    assert terminal(s)[0] and steps <= 3


def test_seeded_and_deterministic() -> None:
    reward, terminal = _at_least(2.0)
    kwargs = {"horizon": 4, "population": 16, "elites": 4, "iterations": 2, "num_actions": 3, "seed": 3}
    starts = np.random.default_rng(0).uniform(-3, 0, size=(10, 1))
    a = CEMPlanner(_discrete_line, reward, terminal, **kwargs).plan_batch(starts)
    b = CEMPlanner(_discrete_line, reward, terminal, **kwargs).plan_batch(starts)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64 and a.shape == (10,)


def test_mountaincar_reaches_the_right_hill() -> None:
    """From x ≈ 0.3 with a little speed, CEM inside the true dynamics reaches x ≥ 0.4; coasting does not."""
    task = MountainCarTask("position")
    goal = UnseenGoal("right_hill", *_at_least(0.4))
    p = CEMPlanner.for_goal(task, goal, horizon=30, population=100, elites=10, iterations=3, seed=0)
    starts = np.stack([np.linspace(0.28, 0.32, 5), np.full(5, 0.01)], axis=1)
    ret = unseen_returns(task, p.plan_batch, goal, starts, horizon=40)
    assert (ret > 0.75).all()
    coast = unseen_returns(task, lambda s: np.ones(len(s), dtype=np.int64), goal, starts, horizon=40)
    assert (coast == 0).all()


def test_reacher_far_fingertip() -> None:
    """Kinematic Reacher: from arms bent 0.6 rad away from the straight (√2, √2) pose, CEM reaches it."""
    task = KinematicReacherTask()
    goal = unseen_goal(task, "far_fingertip")
    p = CEMPlanner.for_goal(task, goal, horizon=35, population=150, elites=15, iterations=3, seed=0)
    rng = np.random.default_rng(0)
    theta = np.pi / 4 + np.array([0.6, -0.6]) + rng.uniform(-0.1, 0.1, size=(4, 2))
    starts = np.concatenate([theta, rng.uniform(-0.3, 0.3, size=(4, 2))], axis=1)
    assert not goal.terminal_fn(starts).any()
    ret = unseen_returns(task, p.plan_batch, goal, starts, horizon=40)
    assert (ret > 0.6).all()
    idle = unseen_returns(task, lambda s: np.full(len(s), 4, dtype=np.int64), goal, starts, horizon=40)
    assert (idle == 0).all()


def test_validation() -> None:
    reward, terminal = _at_least(1.0)
    base = {"horizon": 3, "population": 8, "elites": 2, "iterations": 1}
    with pytest.raises(PlrayInputError, match="elites"):
        CEMPlanner(_discrete_line, reward, terminal, **{**base, "elites": 9}, num_actions=3)
    with pytest.raises(PlrayInputError, match="num_actions"):
        CEMPlanner(_discrete_line, reward, terminal, **base)
    with pytest.raises(PlrayInputError, match="num_actions"):
        CEMPlanner(_discrete_line, reward, terminal, **base, num_actions=3, action_low=[0.0], action_high=[1.0])
    with pytest.raises(PlrayInputError, match="action_high"):
        CEMPlanner(_continuous_line, reward, terminal, **base, action_low=[1.0], action_high=[0.0])
    with pytest.raises(PlrayInputError, match="horizon"):
        CEMPlanner(_discrete_line, reward, terminal, **{**base, "horizon": 0}, num_actions=3)
    with pytest.raises(PlrayInputError, match="gamma"):
        CEMPlanner(_discrete_line, reward, terminal, **base, num_actions=3, gamma=1.0)
    with pytest.raises(PlrayInputError, match="next_state_fn"):
        CEMPlanner(None, reward, terminal, **base, num_actions=3)  # type: ignore[arg-type]
    p = CEMPlanner(lambda s, a: s[:, :0], reward, terminal, **base, num_actions=3)
    with pytest.raises(PlrayInputError, match="next_state_fn"):
        p.plan_batch(np.zeros((2, 1)))
    with pytest.raises(PlrayInputError, match="states"):
        CEMPlanner(_discrete_line, reward, terminal, **base, num_actions=3).plan_batch(np.array([np.nan]))
