"""Q_NMSE against grid ground truth (plray.evaluation.q_accuracy), with exact and perturbed Q sources."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from plray.agents.qsource import QSource
from plray.envs.mountaincar import MountainCarTask
from plray.evaluation.grid import GridSolution, task_grid, task_policy_evaluation, task_value_iteration
from plray.evaluation.q_accuracy import q_accuracy, q_accuracy_rollout, rollout_q_pi
from plray.utils.validation import PlrayInputError

RES = 24


class GridQSource(QSource):
    """A Q source whose Q(s, ·, g) interpolates per-goal grid solutions, plus optional node noise.

    Args:
        task: MountainCar task (observation = state).
        solutions: one grid solution per training goal.
        noise: per-node, per-goal offset added to every action's Q, shape (N, G), looked up at the
            nearest node (the evaluation queries nodes exactly); action-independent, so the
            greedy policy is unchanged.
        bias: per-action offset added to Q, shape (A,) (changes the greedy policy).
    """

    def __init__(
        self,
        task: MountainCarTask,
        solutions: list[GridSolution],
        noise: np.ndarray | None = None,
        bias: np.ndarray | None = None,
    ) -> None:
        super().__init__(task, task.gamma)
        self.solutions = solutions
        self.grid = solutions[0].grid
        self.noise = noise
        self.bias = bias

    def q_values(self, obs: Any, goals: Any) -> torch.Tensor:
        o = np.asarray(obs, dtype=np.float64)
        g = np.asarray(goals, dtype=np.float64)
        gi = np.argmin(np.abs(g[:, None, :] - self.task.training_goals[None]).sum(-1), axis=1)
        out = np.empty((len(o), int(self.task.num_actions or 0)))
        for j, sol in enumerate(self.solutions):
            rows = gi == j
            if rows.any():
                out[rows] = sol.q_values(o[rows])
        if self.noise is not None:
            idx = np.rint((o - self.grid.low) / self.grid.spacing).astype(np.int64)
            flat = np.ravel_multi_index(tuple(idx.T), self.grid.shape)
            out += self.noise[flat, gi][:, None]
        if self.bias is not None:
            out += self.bias[None]
        return torch.as_tensor(out)


@pytest.fixture(scope="module")
def exact() -> tuple[MountainCarTask, list[GridSolution]]:
    task = MountainCarTask("position")
    grid = task_grid(task, RES)
    return task, [task_value_iteration(task, g, grid) for g in task.training_goals]


def test_exact_q_has_zero_nmse(exact: tuple[MountainCarTask, list[GridSolution]]) -> None:
    task, sols = exact
    out = q_accuracy(GridQSource(task, sols), RES, chunk=100)
    assert out["q_nmse"] < 1e-12
    assert out["q_mse"] < 1e-14
    assert len(out["q_nmse_per_goal"]) == 4 and len(out["q_mse_per_goal"]) == 4
    assert out["resolution"] == [RES, RES] and out["num_nodes"] == RES * RES
    assert all(out["policy_eval_converged"])


def test_noise_nmse_matches_noise_to_variance_ratio(exact: tuple[MountainCarTask, list[GridSolution]]) -> None:
    task, sols = exact
    N, G = RES * RES, 4
    noise = np.random.default_rng(0).normal(scale=0.03, size=(N, G))
    out = q_accuracy(GridQSource(task, sols, noise=noise), RES)
    q_star = np.stack([s.Q for s in sols], axis=-1)  # (N, A, G); greedy policy unchanged, so Q^π = Q*
    ratio = (noise**2).mean(axis=0)[None, :] / q_star.var(axis=0)  # (A, G)
    assert out["q_nmse"] == pytest.approx(ratio.mean(), rel=1e-6)
    assert np.allclose(out["q_nmse_per_goal"], ratio.mean(axis=0), rtol=1e-6)
    assert out["q_mse"] == pytest.approx((noise**2).mean(), rel=1e-6)


def test_reference_is_q_pi_of_the_greedy_policy(exact: tuple[MountainCarTask, list[GridSolution]]) -> None:
    task, sols = exact
    bias = np.array([0.0, 0.0, 10.0])  # greedy policy: always push right
    out = q_accuracy(GridQSource(task, sols, bias=bias), RES, goals=task.training_goals[[1]])
    grid = task_grid(task, RES)
    ref = task_policy_evaluation(task, task.training_goals[1], grid, np.full(grid.num_points, 2, dtype=np.int64))
    q_agent = sols[1].Q + bias[None]
    expected = ((q_agent - ref.Q) ** 2).mean(axis=0) / ref.Q.var(axis=0)
    assert out["q_nmse"] == pytest.approx(expected.mean(), rel=1e-6)
    assert len(out["q_nmse_per_goal"]) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resolution": 1}, "resolution"),
        ({"resolution": (10, 10, 10)}, "resolution"),
        ({"resolution": 10, "goals": np.zeros((2, 2))}, "goals"),
        ({"resolution": 10, "goals": np.array([[np.nan]])}, "goals"),
        ({"resolution": 10, "goals": np.zeros((0, 1))}, "goals"),
        ({"resolution": 10, "chunk": 0}, "chunk"),
    ],
)
def test_bad_inputs_raise(
    exact: tuple[MountainCarTask, list[GridSolution]], kwargs: dict[str, Any], match: str
) -> None:
    task, sols = exact
    with pytest.raises(PlrayInputError, match=match):
        q_accuracy(GridQSource(task, sols), **kwargs)


def test_non_source_raises() -> None:
    with pytest.raises(PlrayInputError, match="source"):
        q_accuracy(object(), 10)  # type: ignore[arg-type]


# ------------------------------------------------------------------ grid-free Q^pi by rollouts
class ConstantPolicySource(QSource):
    """Q that makes one action greedy everywhere (all other actions lower), with a constant value."""

    def __init__(self, task: MountainCarTask, action: int, value: float = 0.5) -> None:
        super().__init__(task, task.gamma)
        self.action, self.value = action, value

    def q_values(self, obs: Any, goals: Any) -> torch.Tensor:
        out = torch.full((len(obs), int(self.task.num_actions or 0)), self.value - 0.1, dtype=torch.float64)
        out[:, self.action] = self.value
        return out


def test_rollout_q_pi_by_hand_near_the_goal() -> None:
    task = MountainCarTask("position")
    src = ConstantPolicySource(task, action=2)
    # x = 0.55, v = 0.02: every action lands within 0.1 of the goal x = 0.6 at once: Q^pi = r = 1
    q_agent, q_pi = rollout_q_pi(src, np.array([[0.55, 0.02]]), np.array([0.6]))
    np.testing.assert_allclose(q_pi, 1.0)
    np.testing.assert_allclose(q_agent, [[0.4, 0.4, 0.5]])
    # one step short of the goal under "push right": Q^pi(s, right) = gamma * 1 exactly
    s = np.array([[0.45, 0.04]])
    s1 = task.next_state(s, np.array([2]))
    assert not task.terminal_at(s1, np.array([[0.6]]))[0]
    assert task.terminal_at(task.next_state(s1, np.array([2])), np.array([[0.6]]))[0]
    _, q_pi = rollout_q_pi(src, s, np.array([0.6]))
    np.testing.assert_allclose(q_pi[0, 2], task.gamma)


def test_rollout_q_pi_matches_fine_grid_policy_evaluation() -> None:
    task = MountainCarTask("position")
    src = ConstantPolicySource(task, action=2)
    goal = np.array([0.6])
    grid = task_grid(task, 200)
    sol = task_policy_evaluation(task, goal, grid, np.full(grid.num_points, 2))
    states = task.sample_states(256, np.random.default_rng(0))
    _, q_pi = rollout_q_pi(src, states, goal)
    # the 200^2 grid's interpolation smears V a little; exact rollouts agree with it closely
    assert np.abs(sol.q_values(states) - q_pi).mean() < 0.03


def test_q_accuracy_rollout_zero_for_a_self_consistent_agent_and_errors() -> None:
    task = MountainCarTask("position")
    src = ConstantPolicySource(task, action=2)
    acc = q_accuracy_rollout(src, 64, goals=np.array([[0.6]]), horizon=400)
    # a constant Q is far from Q^pi: NMSE = MSE / Var(Q^pi) > 0, finite
    assert acc["q_nmse"] > 0.1 and np.isfinite(acc["q_mse"]) and acc["num_states"] == 64
    with pytest.raises(PlrayInputError, match="num_states"):
        q_accuracy_rollout(src, 1)
    with pytest.raises(PlrayInputError, match="horizon"):
        rollout_q_pi(src, np.zeros((2, 2)), np.array([0.6]), horizon=0)
    with pytest.raises(PlrayInputError, match="states"):
        rollout_q_pi(src, np.zeros((2, 3)), np.array([0.6]))


def test_rollout_q_pi_refuses_stochastic_tasks() -> None:
    noisy = MountainCarTask("position", noise_std=(0.005, 0.001))
    with pytest.raises(PlrayInputError, match="stochastic"):
        rollout_q_pi(ConstantPolicySource(noisy, action=2), np.zeros((2, 2)), np.array([0.6]))
