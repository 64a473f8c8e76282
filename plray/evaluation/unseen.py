"""Unseen-goal evaluation of continuous-state world models (docs/method.md#unseen-goal-planning).

The paper's planner is **grid value iteration inside the world model**, not RL or MPC:

1. a regular grid over the task's state box (Reacher: 4-D, 50 nodes per dim over [−π, π]² ×
   [−2, 2]²; MountainCar: 200 × 200), angle dims periodic;
2. the model's successors s' = f̂(x, a) of every node and action;
3. the unseen goal's reward and termination evaluated **at the model's predicted successors**
   (lifted to observations where the goal reads them, e.g. the Reacher fingertip); forbidden
   successors terminate with reward 0;
4. V ← max_a [r + γ (1 − done) Interp_N-linear(V, s')], γ = 0.99, from V = 0 for up to 10 000
   sweeps or until the sup-norm change is below 1e-10;
5. the greedy policy argmax_a Interp(Q_wm[·, a], s) rolled out on the **true** dynamics from 512
   ``reset`` states (seeded), for the task's episode length (100 Reacher, 200 MountainCar), scoring
   the discounted return Σ_t γ^t r_t (r paid on arrival, the episode ending at the goal or at a
   forbidden state);
6. the same with the true dynamics in step 2 gives R*.

The six unseen goals (all sparse indicators with a strict ``<``, terminating on success):

* Reacher (kinematic): far fingertip ‖fp − (√2, √2)‖ < 0.2; target angle ‖θ − (0, π)‖ < 0.2 on
  the observation's wrapped angles, the difference itself *not* wrapped (so θ₂ ≈ −π does not
  count); target velocity ‖ω − (2, 2)‖ < 0.2.
* MountainCar (position or velocity agent: same physics, same goals): fast car |v − 0.06| < 0.01;
  gentle car |x − 0.6| < 0.1 with |v| > 0.05 forbidden (terminates with reward 0, even inside the
  goal); shortest path: max(1[|x + 1.0| < 0.1], 1[|x − 0.4| < 0.1]).

Reward and termination are functions of the next state alone (an :class:`UnseenGoal`), so the
same goal (a :class:`~plray.evaluation.goals.Goal`) drives the grid planner (:func:`plan_in_model`),
the true-dynamics rollouts (:func:`~plray.evaluation.rollout.task_returns`) and the CEM planner
(:mod:`plray.evaluation.cem`).

Continuous-action tasks (not in the paper): grid value iteration maximises over a finite action
set, so a task with continuous actions is planned on the finite subset it declares
(``planning_actions`` (A, action_dim) and ``discrete_counterpart()``, the same task with action
index a ↦ ``planning_actions[a]``; ``reacher-continuous``: the 9 torques of ``reacher``, the corners
and centre of its torque box). :func:`planning_view` returns that task and the model restricted to
those actions; R* is then the discrete task's own, so R_WM / R* compares directly with a
discrete-action agent's.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from plray.core.types import (
    BoolArray,
    FloatArray,
    NextStateFn,
    StateRewardFn,
    StateTerminalFn,
    SuccessorFn,
)
from plray.envs.base import GoalTask, gauss_hermite, wrap_angle
from plray.envs.mountaincar import (
    FAST_CAR_TOLERANCE,
    FAST_CAR_VELOCITY,
    GENTLE_CAR_MAX_SPEED,
    GENTLE_CAR_POSITION,
    GENTLE_CAR_TOLERANCE,
    SHORTEST_PATH_POSITIONS,
    SHORTEST_PATH_TOLERANCE,
)
from plray.envs.reacher import FAR_FINGERTIP, REACHER_UNSEEN_TOLERANCE, TARGET_ANGLE, TARGET_VELOCITY
from plray.evaluation.goals import Goal
from plray.evaluation.grid import (
    DEFAULT_MAX_ITERS,
    DEFAULT_TOL,
    GridSolution,
    RegularGrid,
    grid_value_iteration,
    task_grid,
)
from plray.evaluation.rollout import task_returns
from plray.utils.validation import PlrayInputError, check_gamma

NUM_STARTS = 512
"""Rollout starts per goal in the paper (``env.reset()`` with PRNGKey(0))."""


UnseenGoal = Goal
"""A goal the agent was not trained on: a :class:`~plray.evaluation.goals.Goal` (reward,
termination and forbidden region as functions of the next state)."""


def _ball(values: FloatArray, centre: Sequence[float], radius: float) -> BoolArray:
    """1[‖values − centre‖ < radius] per row of values (B, m), strict."""
    return np.linalg.norm(np.asarray(values) - np.asarray(centre, dtype=np.float64), axis=-1) < radius


def _sparse(hit: Callable[[FloatArray], BoolArray]) -> tuple[StateRewardFn, StateTerminalFn]:
    def reward(states: FloatArray) -> FloatArray:
        return hit(states).astype(np.float64)

    def terminal(states: FloatArray) -> BoolArray:
        return hit(states)

    return reward, terminal


def _reacher_goals(task: Any) -> list[UnseenGoal]:
    a = REACHER_UNSEEN_TOLERANCE

    # obs = [wrap(θ), ω, fingertip(θ)]; each goal reads its slice without building the whole obs
    def far(states: FloatArray) -> BoolArray:
        return _ball(task.fingertip(states), FAR_FINGERTIP, a)

    def angle(states: FloatArray) -> BoolArray:
        return _ball(wrap_angle(np.asarray(states)[:, 0:2]), TARGET_ANGLE, a)

    def velocity(states: FloatArray) -> BoolArray:
        return _ball(np.asarray(states)[:, 2:4], TARGET_VELOCITY, a)

    return [
        UnseenGoal("far_fingertip", *_sparse(far), None, "fingertip within 0.2 of (√2, √2)"),
        UnseenGoal("target_angle", *_sparse(angle), None, "wrapped θ within 0.2 of (0, π), raw difference"),
        UnseenGoal("target_velocity", *_sparse(velocity), None, "ω within 0.2 of (2, 2)"),
    ]


def _mountaincar_goals(task: Any) -> list[UnseenGoal]:
    def fast(states: FloatArray) -> BoolArray:
        return np.abs(np.asarray(states)[:, 1] - FAST_CAR_VELOCITY) < FAST_CAR_TOLERANCE

    def gentle(states: FloatArray) -> BoolArray:
        return np.abs(np.asarray(states)[:, 0] - GENTLE_CAR_POSITION) < GENTLE_CAR_TOLERANCE

    def too_fast(states: FloatArray) -> BoolArray:
        return np.abs(np.asarray(states)[:, 1]) > GENTLE_CAR_MAX_SPEED

    def shortest(states: FloatArray) -> BoolArray:
        x = np.asarray(states)[:, 0:1]
        return (np.abs(x - np.asarray(SHORTEST_PATH_POSITIONS)) < SHORTEST_PATH_TOLERANCE).any(axis=1)

    return [
        UnseenGoal("fast_car", *_sparse(fast), None, "|v − 0.06| < 0.01"),
        UnseenGoal("gentle_car", *_sparse(gentle), too_fast, "|x − 0.6| < 0.1, |v| > 0.05 forbidden"),
        UnseenGoal("shortest_path", *_sparse(shortest), None, "|x + 1.0| < 0.1 or |x − 0.4| < 0.1 (max reward)"),
    ]


UNSEEN_GOALS: dict[str, Callable[[Any], list[UnseenGoal]]] = {
    "mountaincar": _mountaincar_goals,
    "reacher": _reacher_goals,
}
"""The unseen goals of each task family, keyed on the task name up to its first ``-``
(``mountaincar-position``, ``mountaincar-velocity-noisy`` → ``mountaincar``; ``reacher``;
``mujoco-reacher`` → ``mujoco``, which has none)."""


def planning_view(task: GoalTask, model_next_state_fn: NextStateFn) -> tuple[GoalTask, NextStateFn, str]:
    """The task and model a grid planner plans with (see the module docstring).

    Args:
        task: the task; discrete tasks are returned as they are.
        model_next_state_fn: the model, f̂(states (B, d), actions (B,) ints or (B, action_dim)) -> (B, d).

    Returns:
        (planning task with discrete actions, f̂ on its action indices (B,) -> (B, d), a sentence
        saying which actions; empty for a discrete task).

    Raises:
        PlrayInputError: a continuous-action task that declares no finite planning action set.
    """
    if task.num_actions is not None:
        return task, model_next_state_fn, ""
    table = getattr(task, "planning_actions", None)
    counterpart = getattr(task, "discrete_counterpart", None)
    if table is None or counterpart is None:
        raise PlrayInputError(
            f"task: grid planning needs discrete actions; {task.name!r} declares no planning_actions subset"
        )
    actions = np.asarray(table, dtype=np.float64)
    planner = counterpart()
    if planner.num_actions != len(actions):
        raise PlrayInputError(f"task: {len(actions)} planning actions, but its counterpart has {planner.num_actions}")

    def restricted(states: FloatArray, idx: np.ndarray) -> FloatArray:
        return model_next_state_fn(states, actions[np.asarray(idx, dtype=np.int64).reshape(-1)])

    rows = ", ".join("(" + ", ".join(f"{x:g}" for x in row) + ")" for row in actions)
    return planner, restricted, f"the {len(actions)} actions {rows} of {planner.name!r}"


def unseen_goals(task: GoalTask) -> list[UnseenGoal]:
    """The paper's three unseen goals of a task (docs/method.md#unseen-goals).

    Args:
        task: a task of a family in :data:`UNSEEN_GOALS`: MountainCar (either goal family: same
            physics, same unseen goals) or the kinematic Reacher (``reacher``).

    Returns:
        MountainCar: fast car, gentle car, shortest path. Reacher: far fingertip, target angle,
        target velocity. Each reads its reward and termination off next states (B, d).
    """
    family = str(getattr(task, "name", "")).split("-", 1)[0]
    if family not in UNSEEN_GOALS:
        raise PlrayInputError(
            f"task: the paper defines unseen goals for MountainCar and the kinematic Reacher, not {task!r}"
        )
    return UNSEEN_GOALS[family](task)


def unseen_goal(task: GoalTask, name: str) -> UnseenGoal:
    """One of :func:`unseen_goals` by name."""
    goals = {g.name: g for g in unseen_goals(task)}
    if name not in goals:
        raise PlrayInputError(f"name: unknown unseen goal {name!r}; choose one of {', '.join(goals)}")
    return goals[name]


class _GoalTaskView(GoalTask):
    """A task whose reward and termination are an :class:`UnseenGoal`'s (the goal argument is ignored).

    Everything else (dynamics, resets, observation, γ, episode length and any task-specific
    attribute) is read off the base task: the attributes :class:`GoalTask` declares are taken
    from it at construction, the rest is looked up on it.
    """

    def __init__(self, base: GoalTask, goal: UnseenGoal) -> None:
        for attr in inspect.get_annotations(GoalTask):
            if hasattr(base, attr):
                setattr(self, attr, getattr(base, attr))
        self.base = base
        self.goal = goal
        self.name = f"{base.name}:{goal.name}"

    def __getattr__(self, attr: str) -> Any:
        if attr == "base" or attr.startswith("__"):  # no recursion before base is set; copy/pickle hooks stay ours
            raise AttributeError(attr)
        return getattr(self.base, attr)

    def add_noise(self, states: FloatArray, noise: FloatArray) -> FloatArray:
        return self.base.add_noise(states, noise)

    def reset_states(self, n: int, rng: np.random.Generator) -> FloatArray:
        return self.base.reset_states(n, rng)

    def next_state(self, states: FloatArray, actions: np.ndarray) -> FloatArray:
        return self.base.next_state(states, actions)

    def observe(self, states: FloatArray) -> FloatArray:
        return self.base.observe(states)

    def achieved_goal(self, states: FloatArray) -> FloatArray:
        return self.base.achieved_goal(states)

    def achieved_goal_from_obs(self, obs: FloatArray) -> FloatArray:
        return self.base.achieved_goal_from_obs(obs)

    def check_actions(self, actions: np.ndarray, batch: int) -> np.ndarray:
        return self.base.check_actions(actions, batch)

    def reward_at(self, states: FloatArray, goals: FloatArray) -> FloatArray:
        return np.asarray(self.goal.reward_fn(states), dtype=np.float64)

    def terminal_at(self, states: FloatArray, goals: FloatArray) -> BoolArray:
        return np.asarray(self.goal.terminal_fn(states), dtype=bool)


def goal_task(task: GoalTask, goal: UnseenGoal) -> GoalTask:
    """A view of ``task`` whose ``reward_at`` / ``terminal_at`` are the unseen goal's (goal argument ignored)."""
    _check_goal(goal)
    return _GoalTaskView(task, goal)


def _check_goal(goal: object) -> UnseenGoal:
    if not isinstance(goal, UnseenGoal):
        raise PlrayInputError(f"goal: expected an UnseenGoal, got {type(goal).__name__}")
    return goal


def _resolve_grid(task: GoalTask, resolution: int | Sequence[int] | RegularGrid) -> RegularGrid:
    if isinstance(resolution, RegularGrid):
        if resolution.ndim != task.state_dim:
            raise PlrayInputError(
                f"resolution: the grid has {resolution.ndim} dims, task {task.name!r} has {task.state_dim}"
            )
        return resolution
    return task_grid(task, resolution)


def plan_in_model(
    task: GoalTask,
    next_state_fn: NextStateFn,
    goal: UnseenGoal,
    resolution: int | Sequence[int] | RegularGrid,
    *,
    gamma: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iters: int = DEFAULT_MAX_ITERS,
    chunk_size: int | None = None,
    successor_fn: SuccessorFn | None = None,
) -> GridSolution:
    """Grid value iteration for an unseen goal inside a model (steps 1–4 of the module docstring).

    Args:
        task: the task (discrete actions; its state box and angle dims define the grid).
        next_state_fn: the model f̂(states (B, d), actions (B,)) -> (B, d), numpy; pass
            ``task.next_state`` for R*'s planner.
        goal: the unseen goal, evaluated at f̂'s predicted successors.
        resolution: nodes per dim (int or d ints), or a prebuilt :class:`RegularGrid`.
        gamma: discount (default ``task.gamma``, 0.99).
        tol, max_iters: stopping rule (1e-10, 10 000 sweeps).
        chunk_size: nodes per model call.
        successor_fn: a stochastic model's quadrature, nodes (B, K, d) and weights (K,)
            (:func:`gaussian_quadrature`, or ``task.successor_quadrature`` for R* on a stochastic
            task); replaces ``next_state_fn``.

    Returns:
        The :class:`GridSolution`; ``solution.act`` is the greedy policy.
    """
    _check_goal(goal)
    if task.num_actions is None:
        raise PlrayInputError(f"task: grid planning needs discrete actions; {task.name!r} has continuous ones")
    grid = _resolve_grid(task, resolution)
    gamma = check_gamma(task.gamma if gamma is None else gamma)
    return grid_value_iteration(
        next_state_fn,
        lambda s, g: goal.reward_fn(s),
        lambda s, g: goal.terminal_fn(s),
        np.zeros(1),
        grid,
        task.num_actions,
        gamma,
        forbidden_fn=goal.forbidden_fn,
        tol=tol,
        max_iters=max_iters,
        chunk_size=chunk_size,
        successor_fn=successor_fn,
    )


def unseen_returns(
    task: GoalTask,
    policy_fn: Callable[[FloatArray], np.ndarray],
    goal: UnseenGoal,
    starts: FloatArray,
    *,
    horizon: int | None = None,
    gamma: float | None = None,
) -> FloatArray:
    """Discounted returns of a policy for an unseen goal on the task's **true** dynamics (step 5).

    Args:
        task: the task (discrete actions).
        policy_fn: policy(states (B, d)) -> actions (B,) ints (e.g. ``GridSolution.act``).
        goal: the unseen goal (forbidden successors end the episode with reward 0).
        starts: start states, shape (n, d).
        horizon: steps per rollout (default ``task.max_episode_steps``).
        gamma: discount (default ``task.gamma``).

    Returns:
        Returns Σ_t γ^t r_t, shape (n,).
    """
    _check_goal(goal)
    horizon = task.max_episode_steps if horizon is None else horizon
    return task_returns(task, policy_fn, goal, starts, horizon, gamma=gamma)


def gaussian_quadrature(
    mean_fn: NextStateFn,
    std_fn: NextStateFn,
    angle_dims: Sequence[int] = (),
    order: int = 3,
) -> SuccessorFn:
    """A diagonal-Gaussian model's kernel as quadrature nodes, for planning with its noise.

    Gauss–Hermite with ``order`` nodes per dim, a tensor product over all d dims (K = order^d,
    exact for polynomials of degree < 2·order in each dim); nodes μ̂ + σ̂ ⊙ z, angle dims wrapped.

    Args:
        mean_fn, std_fn: the model's mean and per-dim σ, (B, d), (B,) -> (B, d).
        angle_dims: dims to wrap to [−π, π).
        order: nodes per dim, >= 1.

    Returns:
        successor_fn(states (B, d), actions (B,)) -> (nodes (B, K, d), weights (K,)).
    """
    gauss_hermite(order, 1)  # validates the order
    dims = list(angle_dims)

    def successor(states: FloatArray, actions: np.ndarray) -> tuple[FloatArray, FloatArray]:
        mean = np.asarray(mean_fn(states, actions), dtype=np.float64)
        std = np.asarray(std_fn(states, actions), dtype=np.float64)
        offsets, weights = gauss_hermite(order, mean.shape[1])  # (K, d), (K,)
        nodes = mean[:, None, :] + std[:, None, :] * offsets[None]
        if dims:
            nodes[..., dims] = wrap_angle(nodes[..., dims])
        return nodes, weights

    return successor


def _check_num_starts(num_starts: object) -> int:
    if isinstance(num_starts, bool) or not isinstance(num_starts, int | np.integer) or int(num_starts) < 1:
        raise PlrayInputError(f"num_starts: expected a positive integer, got {num_starts!r}")
    return int(num_starts)


def evaluate_unseen(
    task: GoalTask,
    model_next_state_fn: NextStateFn,
    goal: UnseenGoal,
    *,
    resolution: int | Sequence[int] | RegularGrid,
    num_starts: int = NUM_STARTS,
    seed: int = 0,
    gamma: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iters: int = DEFAULT_MAX_ITERS,
    optimal: GridSolution | None = None,
    model_successor_fn: SuccessorFn | None = None,
) -> dict[str, Any]:
    """R_WM and R* of one unseen goal (docs/method.md#unseen-goal-planning; see the module docstring).

    On a stochastic task (not in the paper) R* plans with the true kernel's quadrature, both
    policies act on sampled successors (the same seeded draws), and a stochastic model plans with
    its own kernel when ``model_successor_fn`` is given (e.g. :func:`gaussian_quadrature`).

    Args:
        task: the task (discrete actions).
        model_next_state_fn: the world model f̂(states (B, d), actions (B,)) -> (B, d), numpy.
        goal: the unseen goal.
        resolution: grid nodes per dim (int or d ints) or a prebuilt grid (the paper: 200² for
            MountainCar, 50⁴ for Reacher; 20⁴ is what fits a CPU's memory comfortably).
        num_starts: rollouts from ``task.reset_states(num_starts, default_rng(seed))`` (512).
        seed: seeds the start states.
        gamma: discount (default ``task.gamma``).
        tol, max_iters: value iteration's stopping rule.
        optimal: a precomputed :func:`plan_in_model` solution with the true dynamics on the same
            grid, to skip R*'s value iteration when many models are scored.
        model_successor_fn: the model's kernel as a quadrature (replaces ``model_next_state_fn``
            in planning).

    Returns:
        ``{"goal", "return_wm", "return_opt", "ratio" (return_wm / return_opt, NaN if R* = 0),
        "std_wm", "std_opt" (std over starts), "resolution" (nodes per dim), "num_starts",
        "converged_wm", "converged_opt", "iterations_wm", "iterations_opt", "seconds"}``.
    """
    _check_goal(goal)
    num_starts = _check_num_starts(num_starts)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise PlrayInputError(f"seed: expected a non-negative integer, got {seed!r}")
    if not callable(model_next_state_fn):
        raise PlrayInputError(f"model_next_state_fn: expected a callable, got {type(model_next_state_fn).__name__}")
    start = time.perf_counter()
    grid = _resolve_grid(task, resolution)
    kwargs: dict[str, Any] = {"gamma": gamma, "tol": tol, "max_iters": max_iters}
    sol_wm = plan_in_model(task, model_next_state_fn, goal, grid, successor_fn=model_successor_fn, **kwargs)
    if optimal is None:
        true_kernel = task.successor_quadrature if task.stochastic else None
        sol_opt = plan_in_model(task, task.next_state, goal, grid, successor_fn=true_kernel, **kwargs)
    else:
        if not isinstance(optimal, GridSolution) or optimal.grid.shape != grid.shape:
            raise PlrayInputError("optimal: expected a GridSolution on the same grid as resolution")
        sol_opt = optimal
    starts = task.reset_states(num_starts, np.random.default_rng(int(seed)))
    ret_wm = unseen_returns(task, sol_wm.act, goal, starts, gamma=gamma)
    ret_opt = unseen_returns(task, sol_opt.act, goal, starts, gamma=gamma)
    r_wm, r_opt = float(ret_wm.mean()), float(ret_opt.mean())
    return {
        "goal": goal.name,
        "return_wm": r_wm,
        "return_opt": r_opt,
        "ratio": r_wm / r_opt if r_opt != 0.0 else float("nan"),
        "std_wm": float(ret_wm.std()),
        "std_opt": float(ret_opt.std()),
        "resolution": list(grid.shape),
        "num_starts": num_starts,
        "converged_wm": bool(sol_wm.converged),
        "converged_opt": bool(sol_opt.converged),
        "iterations_wm": int(sol_wm.iterations),
        "iterations_opt": int(sol_opt.iterations),
        "seconds": time.perf_counter() - start,
    }


def evaluate_all_unseen(
    task: GoalTask,
    model_next_state_fn: NextStateFn,
    *,
    resolution: int | Sequence[int] | RegularGrid,
    goals: Sequence[UnseenGoal] | None = None,
    num_starts: int = NUM_STARTS,
    seed: int = 0,
    gamma: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iters: int = DEFAULT_MAX_ITERS,
    model_successor_fn: SuccessorFn | None = None,
) -> list[dict[str, Any]]:
    """:func:`evaluate_unseen` for every goal of ``goals`` (default :func:`unseen_goals` of the task), in order."""
    goal_list = unseen_goals(task) if goals is None else list(goals)
    grid = _resolve_grid(task, resolution)
    return [
        evaluate_unseen(
            task,
            model_next_state_fn,
            g,
            resolution=grid,
            num_starts=num_starts,
            seed=seed,
            gamma=gamma,
            tol=tol,
            max_iters=max_iters,
            model_successor_fn=model_successor_fn,
        )
        for g in goal_list
    ]
