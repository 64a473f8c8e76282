"""Unseen-goal evaluation (docs/method.md#unseen-goal-planning): goals, grid VI in a model, true-dynamics rollouts."""

from __future__ import annotations

import numpy as np
import pytest

from plray.envs.mountaincar import MountainCarTask
from plray.envs.reacher import KinematicReacherTask
from plray.evaluation.grid import task_grid
from plray.evaluation.unseen import (
    UnseenGoal,
    evaluate_all_unseen,
    evaluate_unseen,
    gaussian_quadrature,
    goal_task,
    plan_in_model,
    unseen_goal,
    unseen_goals,
    unseen_returns,
)
from plray.utils.validation import PlrayInputError

RES = 60


@pytest.fixture(scope="module")
def mc() -> MountainCarTask:
    return MountainCarTask("position")


@pytest.fixture(scope="module")
def reacher() -> KinematicReacherTask:
    return KinematicReacherTask()


def _check(goal: UnseenGoal, cases: list[tuple[list[float], bool]]) -> None:
    """Reward and termination of hand-picked (state, reached) cases."""
    s = np.asarray([c[0] for c in cases], dtype=np.float64)
    expected = [c[1] for c in cases]
    np.testing.assert_array_equal(goal.terminal_fn(s), expected)
    np.testing.assert_array_equal(goal.reward_fn(s), np.asarray(expected, dtype=np.float64))
    assert goal.reward_fn(s).dtype == np.float64 and goal.terminal_fn(s).dtype == bool


def test_mountaincar_goal_definitions(mc: MountainCarTask) -> None:
    assert [g.name for g in unseen_goals(mc)] == ["fast_car", "gentle_car", "shortest_path"]
    # both agents' tasks share the physics and so the unseen goals
    assert [g.name for g in unseen_goals(MountainCarTask("velocity"))] == ["fast_car", "gentle_car", "shortest_path"]
    fast = unseen_goal(mc, "fast_car")
    _check(
        fast,
        [
            ([0.0, 0.06], True),
            ([-1.0, 0.0505], True),
            ([0.3, 0.0695], True),
            ([0.3, 0.07], False),
            ([0.3, 0.0495], False),
            ([0.3, -0.06], False),
        ],
    )
    assert fast.forbidden_fn is None
    gentle = unseen_goal(mc, "gentle_car")
    _check(
        gentle,
        [
            ([0.6, 0.0], True),
            ([0.51, 0.01], True),
            ([0.49, 0.0], False),
            ([0.45, 0.0], False),
            ([0.55, 0.06], True),
        ],
    )
    assert gentle.forbidden_fn is not None
    np.testing.assert_array_equal(
        gentle.forbidden_fn(np.array([[0.55, 0.06], [0.0, -0.051], [0.0, 0.05], [0.0, -0.05], [0.6, 0.0]])),
        [True, True, False, False, False],
    )
    shortest = unseen_goal(mc, "shortest_path")
    _check(
        shortest,
        [
            ([-1.0, 0.0], True),
            ([-1.09, 0.0], True),
            ([-0.89, 0.0], False),
            ([0.4, 0.0], True),
            ([0.31, 0.0], True),
            ([0.51, 0.0], False),
            ([0.0, 0.0], False),
            ([-1.2, 0.0], False),
        ],
    )
    assert shortest.forbidden_fn is None


def test_reacher_goal_definitions(reacher: KinematicReacherTask) -> None:
    far = unseen_goal(reacher, "far_fingertip")
    q = np.pi / 4
    _check(
        far,
        [
            ([q, q, 0, 0], True),
            ([q + 0.2, q - 0.2, 0, 0], True),
            ([q + 0.5, q - 0.5, 0, 0], False),
            ([0.0, 0.0, 0, 0], False),
            ([q + 2 * np.pi, q, 0, 0], True),
        ],
    )
    angle = unseen_goal(reacher, "target_angle")
    # raw (unwrapped) difference on the observation's wrapped θ: θ₂ = −π + 0.05 is 0.05 from π on
    # the circle, but 2π − 0.05 away in the raw difference, so it does not count
    _check(
        angle,
        [
            ([0.0, np.pi - 0.1, 0, 0], True),
            ([0.1, 3.0, 5, 5], True),
            ([0.0, -np.pi + 0.05, 0, 0], False),
            ([0.0, np.pi - 0.25, 0, 0], False),
            ([2 * np.pi, np.pi - 0.1, 0, 0], True),
        ],
    )
    vel = unseen_goal(reacher, "target_velocity")
    _check(
        vel,
        [
            ([0, 0, 2.0, 2.0], True),
            ([1, -1, 1.9, 2.1], True),
            ([0, 0, 1.79, 2.0], False),
            ([0, 0, 2.15, 2.15], False),
            ([0, 0, -2.0, -2.0], False),
        ],
    )
    assert all(g.forbidden_fn is None for g in unseen_goals(reacher))


def test_true_model_gives_ratio_one(mc: MountainCarTask) -> None:
    results = evaluate_all_unseen(mc, mc.next_state, resolution=RES, num_starts=128, seed=0)
    assert [r["goal"] for r in results] == ["fast_car", "gentle_car", "shortest_path"]
    for r in results:
        assert r["ratio"] == 1.0
        assert r["return_wm"] == r["return_opt"] > 0.2
        assert r["std_wm"] == r["std_opt"]
        assert r["resolution"] == [RES, RES] and r["num_starts"] == 128
        assert r["converged_wm"] and r["converged_opt"]


def test_wrong_model_gives_lower_return(mc: MountainCarTask) -> None:
    """A model with left and right swapped plans the wrong pushes."""

    def swapped(states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return mc.next_state(states, 2 - actions)

    for name in ("fast_car", "shortest_path"):
        r = evaluate_unseen(mc, swapped, unseen_goal(mc, name), resolution=RES, num_starts=128)
        assert r["return_wm"] < 0.5 * r["return_opt"] and r["ratio"] < 0.5

    # a slightly perturbed model still does better than the swapped one, but not better than R*
    def biased(states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return mc.next_state(states, actions) + np.array([0.0, 0.002])

    r = evaluate_unseen(mc, biased, unseen_goal(mc, "fast_car"), resolution=RES, num_starts=128)
    assert r["return_wm"] <= r["return_opt"] + 1e-12


def test_forbidden_region_respected(mc: MountainCarTask) -> None:
    gentle = unseen_goal(mc, "gentle_car")
    reckless = UnseenGoal("reckless", gentle.reward_fn, gentle.terminal_fn, None)
    # rollouts: entering |v| > 0.05 ends the episode with reward 0, even inside the goal's ball
    start = np.array([[0.42, 0.0499]])
    right = lambda s: np.full(len(s), 2)  # noqa: E731
    first = mc.next_state(start, np.array([2]))
    assert first[0, 1] > 0.05 and not gentle.terminal_fn(first)[0]  # forbidden, not yet at the goal
    assert gentle.terminal_fn(mc.next_state(first, np.array([2])))[0]  # the goal one step later
    assert unseen_returns(mc, right, gentle, start)[0] == 0.0
    assert unseen_returns(mc, right, reckless, start)[0] == pytest.approx(mc.gamma)
    # planning: the grid MDP pays 0 and terminates at forbidden successors
    grid = task_grid(mc, RES)
    sol = plan_in_model(mc, mc.next_state, gentle, grid)
    sol_reckless = plan_in_model(mc, mc.next_state, reckless, grid)
    assert (sol.V <= sol_reckless.V + 1e-7).all()  # up to VI's tolerance and (sol.V < sol_reckless.V - 1e-3).any()
    # a plan that ignores the forbidden region does worse under the real rules than one that respects it
    starts = mc.reset_states(128, np.random.default_rng(0))
    careful = unseen_returns(mc, sol.act, gentle, starts)
    careless = unseen_returns(mc, sol_reckless.act, gentle, starts)
    assert careful.mean() > careless.mean() + 0.05
    # the careful policy's episodes end at the goal, not in the forbidden region
    assert (careful > 0).mean() > 0.95


def test_reacher_true_model(reacher: KinematicReacherTask) -> None:
    r = evaluate_unseen(reacher, reacher.next_state, unseen_goal(reacher, "far_fingertip"), resolution=8, num_starts=64)
    assert r["ratio"] == 1.0 and r["return_opt"] > 0.3 and r["resolution"] == [8, 8, 8, 8]


def test_goal_task_view(mc: MountainCarTask) -> None:
    goal = unseen_goal(mc, "shortest_path")
    view = goal_task(mc, goal)
    s = np.array([[0.4, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(view.reward_at(s, np.zeros((2, 1))), [1.0, 0.0])
    np.testing.assert_array_equal(view.terminal_at(s, np.zeros((2, 1))), [True, False])
    assert view.max_episode_steps == 200 and view.gamma == mc.gamma and view.num_actions == 3
    np.testing.assert_array_equal(view.next_state(s, np.array([0, 2])), mc.next_state(s, np.array([0, 2])))


def test_optimal_solution_reuse(mc: MountainCarTask) -> None:
    goal = unseen_goal(mc, "fast_car")
    grid = task_grid(mc, RES)
    opt = plan_in_model(mc, mc.next_state, goal, grid)
    a = evaluate_unseen(mc, mc.next_state, goal, resolution=grid, num_starts=32, optimal=opt)
    b = evaluate_unseen(mc, mc.next_state, goal, resolution=RES, num_starts=32)
    assert a["return_opt"] == b["return_opt"] and a["ratio"] == 1.0


def test_validation(mc: MountainCarTask) -> None:
    goal = unseen_goal(mc, "fast_car")
    with pytest.raises(PlrayInputError, match="name"):
        unseen_goal(mc, "slow_car")
    from plray.envs.mujoco_reacher import MujocoReacherTask

    with pytest.raises(PlrayInputError, match="task"):
        unseen_goals(MujocoReacherTask())
    with pytest.raises(PlrayInputError, match="num_starts"):
        evaluate_unseen(mc, mc.next_state, goal, resolution=10, num_starts=0)
    with pytest.raises(PlrayInputError, match="goal"):
        evaluate_unseen(mc, mc.next_state, "fast_car", resolution=10)  # type: ignore[arg-type]
    with pytest.raises(PlrayInputError, match="model_next_state_fn"):
        evaluate_unseen(mc, None, goal, resolution=10)  # type: ignore[arg-type]
    with pytest.raises(PlrayInputError, match="next_state_fn"):
        evaluate_unseen(mc, lambda s, a: s[:, :1], goal, resolution=10)
    with pytest.raises(PlrayInputError, match="resolution"):
        evaluate_unseen(mc, mc.next_state, goal, resolution=task_grid(KinematicReacherTask(), 3))


# --------------------------------------------------------------------------- stochastic dynamics


def test_gaussian_quadrature_matches_the_moments() -> None:
    mean = lambda s, a: s + 1.0  # noqa: E731
    std = lambda s, a: np.tile([0.1, 0.2], (len(s), 1))  # noqa: E731
    nodes, w = gaussian_quadrature(mean, std, order=3)(np.zeros((4, 2)), np.zeros(4, dtype=np.int64))
    assert nodes.shape == (4, 9, 2) and w.shape == (9,)
    np.testing.assert_allclose((w[None, :, None] * nodes).sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.sqrt((w[None, :, None] * (nodes - 1.0) ** 2).sum(1)), [[0.1, 0.2]] * 4)
    wrapped, _ = gaussian_quadrature(lambda s, a: s + np.pi - 0.01, std, angle_dims=(0,), order=3)(
        np.zeros((1, 2)), np.zeros(1, dtype=np.int64)
    )
    assert (wrapped[..., 0] < np.pi).all() and (wrapped[..., 0] >= -np.pi).all()
    with pytest.raises(PlrayInputError, match="order"):
        gaussian_quadrature(mean, std, order=0)


def test_stochastic_task_with_its_own_kernel_gives_ratio_one() -> None:
    noisy = MountainCarTask("position", noise_std=(0.005, 0.001))
    goal = unseen_goal(noisy, "shortest_path")
    exact = evaluate_unseen(
        noisy, noisy.next_state, goal, resolution=40, num_starts=64, model_successor_fn=noisy.successor_quadrature
    )
    assert exact["ratio"] == 1.0 and exact["return_opt"] > 0
    plain = MountainCarTask("position")
    deterministic = evaluate_unseen(plain, plain.next_state, goal, resolution=40, num_starts=64)
    assert exact["return_opt"] != deterministic["return_opt"]  # planned and rolled out with the noise
