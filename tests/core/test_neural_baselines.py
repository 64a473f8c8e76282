"""Continuous reference lines: supervised successor regression and Adamczyk's single-value inversion."""

import math

import numpy as np
import pytest
import torch

from plray.core import PlrayInputError
from plray.core.neural import NeuralPConfig
from plray.core.neural_baselines import arrival_values, train_supervised_successor, value_argmin_successor
from tests.core.test_neural import GAMMA, GOALS, LinearTask, StayAgent, nmse_per_action_dim, sample_states

STEP = 0.1


# ----------------------------------------------------------------------------- supervised reference
def test_supervised_reaches_low_nmse_on_the_linear_toy() -> None:
    task = LinearTask()
    cfg = NeuralPConfig(hidden=32, lr=3e-3, steps=600, batch_size=256, schedule="linear", seed=0)
    res = train_supervised_successor(task, sample_states, cfg)
    nmse = nmse_per_action_dim(res.network, task)
    assert nmse.mean() < 3e-5, f"supervised WM_NMSE {nmse.mean():.2e} (max {nmse.max():.2e})"
    assert res.losses[-1] < 0.01 * res.losses[0]
    assert res.summary()["steps"] == 600


def test_supervised_loss_weighs_dims_by_the_state_box() -> None:
    """With a box the first step's loss is the squared error in box half-widths, dim by dim."""
    task = LinearTask()
    box = {"input_low": (-1.0, -0.1), "input_high": (1.0, 0.1)}
    plain = train_supervised_successor(task, sample_states, NeuralPConfig(hidden=8, steps=1, batch_size=512))
    boxed = train_supervised_successor(task, sample_states, NeuralPConfig(hidden=8, steps=1, batch_size=512, **box))
    # the fresh model is s' ≈ s, so the error is ≈ 0.1 u(a) per dim: dim 1 weighs 100x more with the box
    assert boxed.losses[0] == pytest.approx(plain.losses[0] * (1 + 100) / 2, rel=0.15)


class RotorTask:
    """One angle: s' = wrap(s + 0.5 u(a)), u ∈ {−1, 0, 1}: transitions cross the ±π seam."""

    state_dim = 1
    num_actions = 3
    action_dim = 1
    angle_dims = (0,)

    def observe_torch(self, states: torch.Tensor) -> torch.Tensor:
        return states

    def next_state(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return (states + 0.5 * (actions[:, None] - 1) + np.pi) % (2 * np.pi) - np.pi


def test_supervised_compares_angles_by_wrapped_difference() -> None:
    task = RotorTask()

    def states(rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(-np.pi, np.pi, size=(n, 1))

    cfg = NeuralPConfig(hidden=32, lr=3e-3, steps=400, batch_size=256, seed=0)
    net = train_supervised_successor(task, states, cfg).network
    rng = np.random.default_rng(1)
    s = states(rng, 2000)
    a = rng.integers(3, size=2000)
    with torch.no_grad():
        pred = net(torch.as_tensor(s, dtype=torch.float32), torch.as_tensor(a)).double().numpy()
    err = np.abs((pred - task.next_state(s, a) + np.pi) % (2 * np.pi) - np.pi)
    assert err.max() < 0.05, f"max wrapped error {err.max():.3f} (a plain difference would be ~2π at the seam)"


def test_supervised_bad_task() -> None:
    class NoDynamics:
        state_dim, num_actions, action_dim, angle_dims = 2, 9, 1, ()

    with pytest.raises(PlrayInputError, match="next_state"):
        train_supervised_successor(NoDynamics(), sample_states, NeuralPConfig(steps=1))


# ----------------------------------------------------------------------------- value-argmin inversion
W, FAR_GOAL = 2.0, 1.5  # a wide bump centred outside the box: m_g is strictly increasing on it


class LineTask:
    """s' = s + 0.1 u(a), u ∈ {−1, 0, 1}, on [−1, 1]."""

    state_dim = 1
    num_actions = 3
    action_dim = 1
    angle_dims: tuple[int, ...] = ()

    def observe_torch(self, states: torch.Tensor) -> torch.Tensor:
        return states


class LineStayAgent:
    """The stay policy's exact Q with a Gaussian bump reward; Q can be perturbed by ε sin(7 s)."""

    gamma = GAMMA
    discrete = True

    def __init__(self, eps: float = 0.0) -> None:
        self.eps = eps

    def bump(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return torch.exp(-((x - g) ** 2).sum(-1) / (2 * W**2))

    def q(self, obs, goals, actions):
        return self.bump(obs + STEP * (actions.long()[:, None] - 1), goals) / (1 - GAMMA) + self.eps * torch.sin(
            7 * obs[:, 0]
        )

    def v(self, obs, goals):
        return self.bump(obs, goals) / (1 - GAMMA)

    def reward(self, next_obs, goals):
        return self.bump(next_obs, goals)

    def terminal(self, next_obs, goals):
        return torch.zeros(len(next_obs), dtype=torch.bool)


def line_batch(n: int = 500) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    s = torch.as_tensor(rng.uniform(-1, 1, size=(n, 1)), dtype=torch.float32)
    a = torch.as_tensor(rng.integers(3, size=n))
    return s, a, s + STEP * (a[:, None] - 1)


def test_value_argmin_recovers_successors_when_the_value_is_monotone() -> None:
    """1-D, goal outside the box: m_g(x) = b(x)/(1 − γ) is strictly increasing, so inversion is exact."""
    s, a, true = line_batch()
    goal = np.array([FAR_GOAL])
    grid = torch.linspace(-1.2, 1.2, 241)[:, None]  # spacing 0.01
    coarse = value_argmin_successor(LineStayAgent(), LineTask(), goal, s, a, grid, chunk_size=64)
    assert coarse.shape == (500, 1)
    err = (coarse - true).abs().max().item()
    assert err <= 0.005 + 1e-6, f"grid search error {err:.2e} exceeds half the grid spacing"
    fine = value_argmin_successor(
        LineStayAgent(), LineTask(), goal, s, a, grid, refine_steps=200, refine_lr=1e-3, chunk_size=128
    )
    err_fine = (fine - true).abs().max().item()
    assert err_fine < 1e-3 and err_fine < 0.5 * err, f"refined error {err_fine:.2e} (grid {err:.2e})"


def test_value_argmin_error_respects_the_reverse_lipschitz_bound() -> None:
    """Paper B: with |Q̂ − Q| ≤ ε and m_g reverse-Lipschitz with constant L, ‖ŝ' − s'‖ ≤ ε / L (+ grid error)."""
    eps = 0.01
    s, a, true = line_batch()
    goal = torch.tensor([FAR_GOAL])
    grid = torch.linspace(-1.2, 1.2, 4801)[:, None]  # spacing 5e-4
    pred = value_argmin_successor(LineStayAgent(eps), LineTask(), goal, s, a, grid)
    x = torch.linspace(-1.1, 1.1, 2001)[:, None].requires_grad_(True)
    (slope,) = torch.autograd.grad(arrival_values(LineStayAgent(), LineTask(), x, goal, GAMMA).sum(), x)
    L = slope.abs().min().item()
    err = (pred - true).abs().max().item()
    assert err <= eps / L + 2.5e-4 + 1e-5, f"error {err:.3e}, bound ε/L = {eps / L:.3e} (L = {L:.3f})"
    assert err > 0.2 * eps / L, "the perturbation should be visible"


def test_value_argmin_is_ambiguous_in_two_dims_with_one_goal() -> None:
    """2-D, one goal: m_g depends on ‖x − g‖ only, so every point of a circle fits Q(s, a, g) equally.

    A continuous scalar V cannot be injective on ℝ² (Paper B's guarantee needs d = 1 or a local
    candidate set): the search returns points of the right level set, i.e. with a near-zero Bellman
    residual, that are nonetheless far from the successor.
    """
    task, agent = LinearTask(), StayAgent()
    rng = np.random.default_rng(0)
    s = torch.as_tensor(sample_states(rng, 400), dtype=torch.float32)
    a = torch.as_tensor(rng.integers(9, size=400))
    true = s + STEP * torch.tensor([(i, j) for i in (-1.0, 0.0, 1.0) for j in (-1.0, 0.0, 1.0)])[a]
    goal = torch.as_tensor(GOALS[2], dtype=torch.float32)
    side = torch.linspace(-1.2, 1.2, 121)
    grid = torch.cartesian_prod(side, side)
    pred = value_argmin_successor(agent, task, goal, s, a, grid, refine_steps=50, refine_lr=1e-3)
    q = agent.q(s, goal.expand(400, 2), a)
    resid = (arrival_values(agent, task, pred, goal, GAMMA) - q).abs()
    err = (pred - true).norm(dim=-1)
    assert resid.median() < 1e-2 * q.abs().median(), f"median |m(ŝ') − Q| {resid.median():.2e}"
    assert err.median() > 0.1, f"median ‖ŝ' − s'‖ {err.median():.3f}: expected far off (the step is 0.1)"
    # the inversion preserves the distance to the goal (the only thing one scalar value can see)
    radial = ((pred - goal).norm(dim=-1) - (true - goal).norm(dim=-1)).abs()
    assert radial.median() < 0.01, f"median radial error {radial.median():.3f}"


def test_value_argmin_bad_arguments() -> None:
    agent, task = LineStayAgent(), LineTask()
    s, a, _ = line_batch(4)
    grid = torch.linspace(-1, 1, 5)[:, None]
    with pytest.raises(PlrayInputError, match="goal"):
        value_argmin_successor(agent, task, np.zeros((2, 1)), s, a, grid)
    with pytest.raises(PlrayInputError, match="candidates"):
        value_argmin_successor(agent, task, [FAR_GOAL], s, a, torch.zeros(5, 2))
    with pytest.raises(PlrayInputError, match="actions"):
        value_argmin_successor(agent, task, [FAR_GOAL], s, a[:3], grid)
    with pytest.raises(PlrayInputError, match="gamma"):
        value_argmin_successor(agent, task, [FAR_GOAL], s, a, grid, gamma=1.5)
    with pytest.raises(PlrayInputError, match="states"):
        value_argmin_successor(agent, task, [FAR_GOAL], torch.full((4, 1), math.nan), a, grid)
