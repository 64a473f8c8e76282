"""The ground-truth agent: Q* of each training goal from grid value iteration under the true dynamics.

:class:`OracleQSource` is a :class:`~plray.agents.qsource.QSource` whose Q-values are the optimal
Q* of the task (the planner of docs/method.md#unseen-goal-planning on the true dynamics, as for R*):
for every training goal g, :func:`~plray.evaluation.grid.task_value_iteration` gives Q*(x_i, a, g)
at the nodes x_i of a regular grid over the state box (angle dims periodic), and off-grid states
read Q* by N-linear interpolation::

    Q*(s, a, g) = Σ_c w_c(s) · Q*(x_{i_c(s)}, a, g)         (2^d corners of s's grid cell)

The interpolation is written in torch, so that Q (and V = max_a Q) is differentiable in the state:
neural P-learning (:mod:`plray.core.neural`) backpropagates through V(ŝ', g) at predicted next
states ŝ'. The weights are the same as :meth:`RegularGrid.interpolation_weights`: non-periodic dims
are clamped to the box (constant extrapolation, zero gradient outside), periodic dims wrap with
period (high − low), and between the last node and the seam the cell interpolates towards node 0.

An oracle is the "perfect agent" of P-learning's experiments: extracting a world model from it
separates the error of the extraction from the error of the agent's Q-values.

Observations to states: a Q source is queried with observations (``task.observe``), the oracle's
table lives on states. ``obs_to_state`` maps one to the other in torch: the identity for
MountainCar (obs = [x, v]); ``obs[:, :4]`` for the kinematic Reacher (obs = [θ₁, θ₂ (wrapped), ω₁,
ω₂, fp_x, fp_y]); other tasks must pass their own. The constructor checks the mapping on a few
random states (``obs_to_state(observe(s)) == wrap(s)``).

Goals: queries must use training goals; each query goal is matched to the nearest training goal
(within ``goal_atol``, default 1e-5, loose enough for float32 round-trips) and anything else raises,
since the oracle only knows Q* for the goals it solved.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from plray.agents.qsource import QSource
from plray.envs.base import GoalTask
from plray.evaluation.grid import (
    DEFAULT_MAX_ITERS,
    DEFAULT_TOL,
    GridSolution,
    RegularGrid,
    task_grid,
    task_value_iteration,
)
from plray.utils.validation import PlrayInputError

Tensor = torch.Tensor
ObsToState = Callable[[Tensor], Tensor]
"""obs_to_state(obs (B, o) tensor) -> states (B, d) tensor, differentiable."""


def default_obs_to_state(task: GoalTask) -> ObsToState:
    """The torch map from a task's observations to its states, for the tasks whose obs contain the state.

    * MountainCar: obs = state = [x, v], the identity.
    * Kinematic Reacher: obs = [θ₁, θ₂ (wrapped), ω₁, ω₂, fp_x, fp_y], state = obs[:, :4].

    Raises:
        PlrayInputError: for other tasks (pass ``obs_to_state`` to :class:`OracleQSource`).
    """
    from plray.envs.mountaincar import MountainCarTask
    from plray.envs.reacher import KinematicReacherTask

    if isinstance(task, MountainCarTask):
        return lambda obs: obs
    if isinstance(task, KinematicReacherTask):
        return lambda obs: obs[:, : task.state_dim]
    raise PlrayInputError(
        f"obs_to_state: no default observation-to-state map for task {getattr(task, 'name', task)!r}; pass one"
    )


def torch_interpolation_weights(grid: RegularGrid, x: Tensor) -> tuple[Tensor, Tensor]:
    """:meth:`RegularGrid.interpolation_weights` in torch, differentiable in the query points.

    Args:
        grid: the grid (d dims).
        x: query points, shape (B, d), floating point.

    Returns:
        ``(indices, weights)``, each (B, 2^d): flat node indices (int64) and N-linear weights in
        the dtype of ``x`` (non-negative, summing to 1). Corner c takes the upper node on dim j
        when bit (d − 1 − j) of c is set, as in :class:`RegularGrid`.
    """
    B = x.shape[0]
    idx = torch.zeros((B, 1), dtype=torch.int64, device=x.device)
    w = torch.ones((B, 1), dtype=x.dtype, device=x.device)
    for j in range(grid.ndim):
        n = grid.shape[j]
        u = (x[:, j] - float(grid.low[j])) / float(grid.spacing[j])
        if grid.periodic[j]:
            u = torch.remainder(u, n)
            i0 = torch.clamp(torch.floor(u), max=n - 1)
            t = u - i0
            i1 = torch.where(i0 == n - 1, torch.zeros_like(i0), i0 + 1)
        else:
            u = torch.clamp(u, 0.0, n - 1)
            i0 = torch.clamp(torch.floor(u), max=n - 2)
            t = u - i0
            i1 = i0 + 1
        stride = int(grid.strides[j])
        lo = i0.detach().long() * stride
        hi = i1.detach().long() * stride
        idx = torch.stack([idx + lo[:, None], idx + hi[:, None]], dim=-1).reshape(B, -1)
        w = torch.stack([w * (1.0 - t)[:, None], w * t[:, None]], dim=-1).reshape(B, -1)
    return idx, w


def torch_interpolate(grid: RegularGrid, values: Tensor, x: Tensor) -> Tensor:
    """N-linear interpolation of node values (N,) or (N, m) at points x (B, d) in torch, shape (B,) or (B, m)."""
    idx, w = torch_interpolation_weights(grid, x)
    vals = values[idx]  # (B, 2^d) or (B, 2^d, m)
    w = w.to(values.dtype)
    if values.ndim == 1:
        return (vals * w).sum(dim=1)
    return (vals * w[..., None]).sum(dim=1)


class OracleQSource(QSource):
    """Q* of a discrete-action task's training goals on a grid, interpolated in torch (see module docstring).

    Args:
        task: the task (discrete actions).
        grid: a prebuilt :class:`RegularGrid` over the task's states, or a resolution (int or d
            ints) for :func:`~plray.evaluation.grid.task_grid`.
        gamma: discount (default ``task.gamma``).
        obs_to_state: torch map obs (B, o) -> states (B, d) (default :func:`default_obs_to_state`).
        goals: the goals to solve, shape (G, k) (default ``task.training_goals``).
        tol, max_iters: value iteration's stopping rule (defaults 1e-10, 10 000 sweeps, as the
            paper's planner).
        goal_atol: how far (Euclidean) a query goal may lie from its nearest solved goal.

    Attributes:
        grid: the grid (N nodes).
        goals: solved goals, (G, k).
        solutions: one :class:`GridSolution` per goal (V (N,), Q (N, A), convergence).
        table: Q* at the nodes as a float64 tensor of shape (G, N, A).
        seconds: wall-clock time of the value iterations.
    """

    def __init__(
        self,
        task: GoalTask,
        grid: RegularGrid | int | Sequence[int],
        gamma: float | None = None,
        *,
        obs_to_state: ObsToState | None = None,
        goals: np.ndarray | None = None,
        tol: float = DEFAULT_TOL,
        max_iters: int = DEFAULT_MAX_ITERS,
        goal_atol: float = 1e-5,
    ) -> None:
        super().__init__(task, task.gamma if gamma is None else gamma)
        if task.num_actions is None:
            raise PlrayInputError(f"task: the oracle needs discrete actions; {task.name!r} has continuous ones")
        self.grid = grid if isinstance(grid, RegularGrid) else task_grid(task, grid)
        if self.grid.ndim != task.state_dim:
            raise PlrayInputError(f"grid: has {self.grid.ndim} dims, task {task.name!r} has state_dim {task.state_dim}")
        goal_arr = np.asarray(task.training_goals if goals is None else goals, dtype=np.float64)
        if goal_arr.ndim != 2 or goal_arr.shape[1] != task.goal_dim or len(goal_arr) == 0:
            raise PlrayInputError(f"goals: expected shape (G, {task.goal_dim}) with G >= 1, got {goal_arr.shape}")
        if not np.isfinite(goal_arr).all():
            raise PlrayInputError("goals: non-finite entries")
        if not (float(goal_atol) > 0.0):
            raise PlrayInputError(f"goal_atol: expected a positive number, got {goal_atol!r}")
        self.goals = goal_arr
        self.goal_atol = float(goal_atol)
        self.obs_to_state = default_obs_to_state(task) if obs_to_state is None else obs_to_state
        self._check_obs_to_state()
        start = time.perf_counter()
        self.solutions: list[GridSolution] = [
            task_value_iteration(task, g, self.grid, gamma=self.gamma, tol=tol, max_iters=max_iters) for g in goal_arr
        ]
        self.seconds = time.perf_counter() - start
        self.table = torch.as_tensor(np.stack([sol.Q for sol in self.solutions]), dtype=torch.float64)
        self._goals_t = torch.as_tensor(goal_arr, dtype=torch.float64)

    def __repr__(self) -> str:
        return f"OracleQSource(task={self.task.name!r}, grid={self.grid!r}, goals={len(self.goals)})"

    @property
    def converged(self) -> bool:
        """Whether every goal's value iteration reached the tolerance."""
        return all(sol.converged for sol in self.solutions)

    def _check_obs_to_state(self) -> None:
        rng = np.random.default_rng(0)
        s = self.task.sample_states(8, rng)
        obs = torch.as_tensor(self.task.observe(s), dtype=torch.float64)
        try:
            back = np.asarray(self.obs_to_state(obs), dtype=np.float64)
        except Exception as exc:
            raise PlrayInputError(f"obs_to_state: failed on the task's observations ({exc})") from exc
        want = self.task.wrap(s)
        if back.shape != want.shape or not np.allclose(back, want, atol=1e-9):
            raise PlrayInputError(
                f"obs_to_state: does not invert task.observe on sampled states (expected states of shape "
                f"{want.shape}, got {back.shape})"
            )

    def _obs_tensor(self, x: Any, name: str, dim: int) -> Tensor:
        t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))
        if t.ndim != 2 or t.shape[1] != dim:
            raise PlrayInputError(f"{name}: expected shape (B, {dim}), got {tuple(t.shape)}")
        if not torch.is_floating_point(t):
            t = t.double()
        if not torch.isfinite(t).all():
            raise PlrayInputError(f"{name}: non-finite entries")
        return t

    def goal_index(self, goals: Any) -> Tensor:
        """Index of the solved goal matching each query goal (B, k), shape (B,) int64.

        Raises:
            PlrayInputError: if a goal is farther than ``goal_atol`` from every solved goal.
        """
        g = self._obs_tensor(goals, "goals", self.task.goal_dim).detach().double()
        dist = torch.cdist(g, self._goals_t)  # (B, G)
        best, index = dist.min(dim=1)
        bad = best > self.goal_atol
        if bad.any():
            first = int(torch.nonzero(bad)[0, 0])
            raise PlrayInputError(
                f"goals: {int(bad.sum())} goals are not training goals of the oracle (first: row {first}, "
                f"{g[first].tolist()}); the oracle knows {self.goals.tolist()}"
            )
        return index

    def q_values(self, obs: Any, goals: Any) -> Tensor:
        """Q*(s, ·, g) at observations (B, o) and training goals (B, k), shape (B, A).

        Differentiable in ``obs`` (N-linear interpolation in torch). Numpy inputs and float64
        tensors give float64; float32 tensors give float32.
        """
        o = self._obs_tensor(obs, "obs", self.task.obs_dim)
        gi = self.goal_index(goals)
        if o.shape[0] != gi.shape[0]:
            raise PlrayInputError(f"obs and goals: batch sizes differ ({o.shape[0]} vs {gi.shape[0]})")
        states = self.obs_to_state(o)
        idx, w = torch_interpolation_weights(self.grid, states.double())
        G, N, A = self.table.shape
        vals = self.table.reshape(G * N, A)[gi[:, None] * N + idx]  # (B, 2^d, A)
        q = (vals * w[..., None]).sum(dim=1)
        return q.to(o.dtype)

    def q_values_at_states_torch(self, states: Tensor, goals: Any) -> Tensor:
        """Q*(s, ·, g) at task states (B, d) directly (no observation), differentiable, shape (B, A)."""
        s = self._obs_tensor(states, "states", self.task.state_dim)
        gi = self.goal_index(goals)
        if s.shape[0] != gi.shape[0]:
            raise PlrayInputError(f"states and goals: batch sizes differ ({s.shape[0]} vs {gi.shape[0]})")
        idx, w = torch_interpolation_weights(self.grid, s.double())
        G, N, A = self.table.shape
        return (self.table.reshape(G * N, A)[gi[:, None] * N + idx] * w[..., None]).sum(dim=1).to(s.dtype)
