"""The ground-truth oracle agent: torch N-linear interpolation of grid Q*, differentiable in the state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plray.core.neural import NeuralPConfig, SuccessorNetwork, p_learning_loss
from plray.envs.mountaincar import MountainCarTask
from plray.envs.reacher import KinematicReacherTask
from plray.evaluation.grid import RegularGrid, task_grid, task_value_iteration
from plray.evaluation.oracle import OracleQSource, torch_interpolate, torch_interpolation_weights
from plray.utils.validation import PlrayInputError


@pytest.fixture(scope="module")
def mc() -> MountainCarTask:
    return MountainCarTask("position")


@pytest.fixture(scope="module")
def mc_oracle(mc: MountainCarTask) -> OracleQSource:
    return OracleQSource(mc, 40)


@pytest.fixture(scope="module")
def reacher_oracle() -> OracleQSource:
    task = KinematicReacherTask()
    return OracleQSource(task, (10, 10, 6, 6), goals=task.training_goals[:2])


def test_torch_interpolation_matches_regular_grid() -> None:
    rng = np.random.default_rng(0)
    grid = RegularGrid([-np.pi, -np.pi, -2.0, -2.0], [np.pi, np.pi, 2.0, 2.0], (7, 5, 4, 6), periodic_dims=(0, 1))
    values = rng.normal(size=(grid.num_points, 3))
    # wrapped angles well outside [−π, π), velocities outside the box (clamped), and nodes
    x = np.concatenate(
        [
            rng.uniform([-3 * np.pi, -3 * np.pi, -3.0, -3.0], [3 * np.pi, 3 * np.pi, 3.0, 3.0], size=(500, 4)),
            grid.points[rng.integers(grid.num_points, size=50)],
            np.array([[np.pi - 1e-12, -np.pi, 2.0, -2.0]]),
        ]
    )
    want = grid.interpolate(values, x)
    got = torch_interpolate(grid, torch.as_tensor(values), torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    idx, w = grid.interpolation_weights(x)
    tidx, tw = torch_interpolation_weights(grid, torch.as_tensor(x))
    np.testing.assert_array_equal(tidx.numpy()[w > 0], idx[w > 0])
    np.testing.assert_allclose(tw.numpy(), w, atol=1e-12)
    got_1d = torch_interpolate(grid, torch.as_tensor(values[:, 0]), torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(got_1d, want[:, 0], atol=1e-12)


def test_q_values_equal_grid_solution(mc: MountainCarTask, mc_oracle: OracleQSource) -> None:
    rng = np.random.default_rng(1)
    states = mc.sample_states(300, rng)
    gi = rng.integers(4, size=300)
    goals = mc.training_goals[gi]
    q = mc_oracle.q_values(mc.observe(states), goals)
    assert q.dtype == torch.float64 and q.shape == (300, 3)
    for g in range(4):
        rows = gi == g
        np.testing.assert_allclose(q.numpy()[rows], mc_oracle.solutions[g].q_values(states[rows]), atol=1e-12)
    # float32 inputs give float32 outputs; the goals still match after a float32 round trip
    q32 = mc_oracle.q_values(torch.as_tensor(states, dtype=torch.float32), torch.as_tensor(goals, dtype=torch.float32))
    assert q32.dtype == torch.float32
    np.testing.assert_allclose(q32.numpy(), q.numpy(), atol=1e-4)
    # the solutions are task_value_iteration's on the same grid
    ref = task_value_iteration(mc, mc.training_goals[2], task_grid(mc, 40))
    np.testing.assert_array_equal(mc_oracle.solutions[2].Q, ref.Q)
    assert mc_oracle.converged and mc_oracle.table.shape == (4, 1600, 3)


def test_gradients_finite_and_nonzero(mc: MountainCarTask, mc_oracle: OracleQSource) -> None:
    rng = np.random.default_rng(2)
    obs = torch.as_tensor(mc.sample_states(200, rng), dtype=torch.float32).requires_grad_(True)
    goals = torch.as_tensor(mc.training_goals[rng.integers(4, size=200)], dtype=torch.float32)
    mc_oracle.v(obs, goals).sum().backward()
    assert obs.grad is not None and torch.isfinite(obs.grad).all()
    assert (obs.grad.abs().sum(dim=0) > 0).all()  # both x and v move the value
    # the gradient matches a finite difference of the interpolant (away from cell boundaries)
    x = torch.tensor([[-0.3123, 0.0117]], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([[0.6]], dtype=torch.float64)
    mc_oracle.q_values(x, g)[0, 2].backward()
    assert x.grad is not None
    eps = 1e-7
    for j in range(2):
        e = torch.zeros(1, 2, dtype=torch.float64)
        e[0, j] = eps
        fd = (mc_oracle.q_values(x.detach() + e, g)[0, 2] - mc_oracle.q_values(x.detach() - e, g)[0, 2]) / (2 * eps)
        assert float(x.grad[0, j]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9)


def test_greedy_policy_at_nodes(mc: MountainCarTask, mc_oracle: OracleQSource) -> None:
    nodes = mc_oracle.grid.points
    for g, sol in enumerate(mc_oracle.solutions):
        goals = np.repeat(mc.training_goals[[g]], len(nodes), axis=0)
        act = mc_oracle.greedy_actions(mc.observe(nodes), goals).numpy()
        # the chosen action is optimal at every node; where the optimum is unique it is the same action
        chosen = sol.Q[np.arange(len(nodes)), act]
        np.testing.assert_allclose(chosen, sol.Q.max(axis=1), atol=1e-12)
        top2 = np.sort(sol.Q, axis=1)[:, -2:]
        unique = top2[:, 1] - top2[:, 0] > 1e-9
        assert unique.mean() > 0.5
        np.testing.assert_array_equal(act[unique], sol.act(nodes)[unique])


def test_reacher_obs_to_state(reacher_oracle: OracleQSource) -> None:
    task = reacher_oracle.task
    rng = np.random.default_rng(3)
    states = task.sample_states(100, rng)
    states[:, :2] += 2 * np.pi * rng.integers(-2, 3, size=(100, 2))  # unwrapped angles: observe wraps them
    goals = np.repeat(task.training_goals[[1]], 100, axis=0)
    q = reacher_oracle.q_values(task.observe(states), goals).numpy()
    np.testing.assert_allclose(q, reacher_oracle.solutions[1].q_values(states), atol=1e-12)
    assert q.max() > 0.0
    obs = torch.as_tensor(task.observe(states[:8]), dtype=torch.float64).requires_grad_(True)
    reacher_oracle.v(obs, goals[:8]).sum().backward()
    assert obs.grad is not None and torch.isfinite(obs.grad).all()
    assert (obs.grad[:, 4:] == 0).all()  # the fingertip dims are not read: state = obs[:, :4]
    assert obs.grad[:, :4].abs().sum() > 0


def test_neural_p_learning_backpropagates_through_the_oracle(mc: MountainCarTask, mc_oracle: OracleQSource) -> None:
    torch.manual_seed(0)
    model = SuccessorNetwork(2, 3, config=NeuralPConfig(hidden=16))
    rng = np.random.default_rng(4)
    s = torch.as_tensor(mc.sample_states(64, rng), dtype=torch.float32)
    a = torch.as_tensor(rng.integers(3, size=64))
    g = torch.as_tensor(mc.training_goals[rng.integers(4, size=64)], dtype=torch.float32)
    loss = p_learning_loss(model, mc_oracle, mc, s, a, g)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert torch.isfinite(loss) and all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert sum(float(gr.abs().sum()) for gr in grads if gr is not None) > 0


def test_goal_matching_and_validation(mc: MountainCarTask, mc_oracle: OracleQSource) -> None:
    goals = np.array([[0.6], [-1.2], [0.0 + 1e-7]])
    np.testing.assert_array_equal(mc_oracle.goal_index(goals).numpy(), [3, 0, 2])
    with pytest.raises(PlrayInputError, match="not training goals"):
        mc_oracle.q_values(np.zeros((1, 2)), np.array([[0.3]]))
    with pytest.raises(PlrayInputError, match="obs"):
        mc_oracle.q_values(np.zeros((1, 3)), np.array([[0.6]]))
    with pytest.raises(PlrayInputError, match="batch sizes"):
        mc_oracle.q_values(np.zeros((2, 2)), np.array([[0.6]]))
    with pytest.raises(PlrayInputError, match="obs_to_state"):
        OracleQSource(KinematicReacherTask(), 3, obs_to_state=lambda obs: obs[:, 2:])
    with pytest.raises(PlrayInputError, match="grid"):
        OracleQSource(mc, task_grid(KinematicReacherTask(), 3))
    from plray.envs.mujoco_reacher import MujocoReacherTask

    with pytest.raises(PlrayInputError, match="discrete"):
        OracleQSource(MujocoReacherTask(), 3)
