"""How accurate a trained agent's Q-values are: the paper's Q_MSE / Q_NMSE (docs/method.md#q-accuracy).

The reference is **Q^π of the agent's own greedy policy** under the task's true dynamics, not Q*:
an agent whose Q-values are self-consistent with its own (possibly poor) policy scores well. For
each goal g of the evaluated goal set, with a regular grid of N nodes x_i over the task's state box
(:func:`~plray.evaluation.grid.task_grid`; angle dims periodic) and A discrete actions:

1. Agent Q at the nodes: ``Q_agent[i, a, g] = source.q_values(task.observe(x_i), g)[a]``, shape
   (N, A, G); forward passes are batched (``chunk`` nodes at a time, under ``torch.no_grad``).
2. Greedy policy at the nodes: ``π_g(x_i) = argmax_a Q_agent[i, a, g]`` (ties to the lowest action).
3. Policy evaluation on the grid under the true dynamics, with N-linear interpolation of V^π at
   off-grid successors (:meth:`~plray.evaluation.grid.GridMDP.policy_evaluation`)::

       V^π(x_i) = r(x'_i, g) + γ (1 − done(x'_i, g)) · Interp(V^π, x'_i),   x'_i = f(x_i, π_g(x_i))
       Q^π[i, a, g] = r(f(x_i, a), g) + γ (1 − done(f(x_i, a), g)) · Interp(V^π, f(x_i, a))

   with f = ``task.next_state``, r = ``task.reward_at``, done = ``task.terminal_at`` and γ =
   ``source.gamma``; sweeps start from V = 0 and stop when ‖V_new − V‖_∞ < ``tol`` (default
   1e-10) or after ``max_iters`` (default 10 000) sweeps, as in the paper's code.
4. Metrics, per (action a, goal g) over the N nodes::

       MSE_{a,g}  = mean_i (Q_agent[i, a, g] − Q^π[i, a, g])²
       NMSE_{a,g} = MSE_{a,g} / Var_i(Q^π[i, a, g])

   ``q_mse`` and ``q_nmse`` are the means over all (a, g) pairs (the paper's headline Q_NMSE);
   ``q_mse_per_goal`` / ``q_nmse_per_goal`` average over actions only, shape (G,).

Following the paper: the grid (MountainCar 200², Reacher 50⁴ over [−π, π]² × [−2, 2]²; Reacher at
16⁴–20⁴ is what fits a CPU's memory, see :mod:`plray.evaluation.grid`), N-linear interpolation,
Q^π of the greedy policy, the stopping rule and the normalisation by Var(Q^π) averaged over goals
and actions. The greedy policy is that of the agent *at the nodes*; between nodes the evaluation
interpolates V^π, as the paper's grid evaluation does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from plray.agents.qsource import QSource
from plray.core.types import FloatArray
from plray.evaluation.grid import (
    DEFAULT_MAX_ITERS,
    DEFAULT_TOL,
    RegularGrid,
    q_nmse,
    q_nmse_per_goal,
    task_grid,
    task_grid_mdp,
)
from plray.utils.validation import PlrayInputError, as_float_array, check_shape

DEFAULT_CHUNK = 65_536
"""Nodes per batched forward pass of the agent's Q-network."""


def _check_chunk(chunk: object) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or int(chunk) < 1:
        raise PlrayInputError(f"chunk: expected a positive integer, got {chunk!r}")
    return int(chunk)


@torch.no_grad()
def agent_q_at_states(
    source: QSource, states: FloatArray, goal: FloatArray, *, chunk: int = DEFAULT_CHUNK
) -> FloatArray:
    """The agent's Q(s, ·, g) at states (n, d), in batches of ``chunk`` states.

    Returns:
        Q-values, shape (n, A), float64 (all finite, else :class:`PlrayInputError`).
    """
    task = source.task
    assert task.num_actions is not None
    chunk = _check_chunk(chunk)
    n = states.shape[0]
    out = np.empty((n, task.num_actions))
    g = np.asarray(goal, dtype=np.float64)[None]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        q = source.q_values(task.observe(states[start:stop]), np.repeat(g, stop - start, axis=0))
        q_np = q.detach().double().cpu().numpy() if isinstance(q, torch.Tensor) else np.asarray(q, dtype=np.float64)
        if q_np.shape != (stop - start, task.num_actions):
            raise PlrayInputError(
                f"source.q_values: expected shape ({stop - start}, {task.num_actions}), got {q_np.shape}"
            )
        out[start:stop] = q_np
    if not np.isfinite(out).all():
        raise PlrayInputError("source.q_values: non-finite Q-values")
    return out


def agent_q_at_nodes(source: QSource, grid: RegularGrid, goal: FloatArray, *, chunk: int = DEFAULT_CHUNK) -> FloatArray:
    """The agent's Q(x_i, ·, g) at every grid node, shape (N, A), float64 (see :func:`agent_q_at_states`).

    Node coordinates are built ``chunk`` nodes at a time, so large grids never hold them all at once.
    """
    chunk = _check_chunk(chunk)
    N = grid.num_points
    parts = [
        agent_q_at_states(source, grid.node_points(np.arange(start, min(start + chunk, N))), goal, chunk=chunk)
        for start in range(0, N, chunk)
    ]
    return np.concatenate(parts)


def _discrete_source_goals(source: QSource, goals: FloatArray | None) -> tuple[FloatArray, int]:
    """The goals (G, k) to evaluate ``source`` on and its action count; refuses continuous-action sources."""
    if not isinstance(source, QSource):
        raise PlrayInputError(f"source: expected a QSource, got {type(source).__name__}")
    task = source.task
    if task.num_actions is None:
        raise PlrayInputError(f"source: Q accuracy needs discrete actions; task {task.name!r} has continuous ones")
    goal_arr = as_float_array(task.training_goals if goals is None else goals, "goals", ndim=2)
    check_shape(goal_arr, "goals", (None, task.goal_dim), ("G", "k"))
    if goal_arr.shape[0] == 0:
        raise PlrayInputError("goals: need at least one goal")
    return goal_arr, task.num_actions


def q_accuracy(
    source: QSource,
    resolution: int | Sequence[int],
    *,
    goals: FloatArray | None = None,
    chunk: int = DEFAULT_CHUNK,
    tol: float = DEFAULT_TOL,
    max_iters: int = DEFAULT_MAX_ITERS,
) -> dict[str, Any]:
    """Q_MSE and Q_NMSE of an agent against Q^π of its own greedy policy on a grid (see module docstring).

    Args:
        source: the agent; its task must have discrete actions. ``source.gamma`` is the discount of
            the reference Q^π.
        resolution: grid nodes per state dim, an int or one int per dim (each >= 2), e.g. 200 for
            MountainCar, 20 for the kinematic Reacher.
        goals: goals to evaluate, shape (G, k); default ``source.task.training_goals``.
        chunk: nodes per batched forward pass of the agent.
        tol: sup-norm stopping tolerance of the policy evaluation sweeps.
        max_iters: most policy evaluation sweeps per goal.

    Returns:
        A JSON-ready dict:

        * ``q_nmse``, ``q_mse``: means over (action, goal) pairs (floats);
        * ``q_nmse_per_goal``, ``q_mse_per_goal``: means over actions, lists of G floats;
        * ``q_true_var_per_goal``: Var_nodes(Q^π) averaged over actions, G floats;
        * ``q_agent_mean_per_goal``, ``q_true_mean_per_goal``: mean Q over nodes and actions;
        * ``greedy_fraction_reaching``: per goal, fraction of nodes with V^π > 0 (the greedy
          policy reaches the goal from there within the grid's approximation);
        * ``policy_eval_iterations``, ``policy_eval_converged``: per goal;
        * ``goals`` (G lists of k floats), ``resolution`` (d ints), ``num_nodes`` (N),
          ``num_actions`` (A), ``gamma``, ``seconds`` (wall clock of the whole evaluation).

    Raises:
        PlrayInputError: not a discrete-action :class:`QSource`; a bad resolution or chunk; goals
            of the wrong shape or not finite; Q^π constant over the nodes (NMSE undefined).
    """
    t0 = time.perf_counter()
    goal_arr, A = _discrete_source_goals(source, goals)
    task = source.task
    chunk = _check_chunk(chunk)
    grid = task_grid(task, resolution)
    N, G = grid.num_points, goal_arr.shape[0]

    q_agent = np.empty((N, A, G))
    q_true = np.empty((N, A, G))
    iterations: list[int] = []
    converged: list[bool] = []
    reaching: list[float] = []
    for gi, goal in enumerate(goal_arr):
        q_agent[:, :, gi] = agent_q_at_nodes(source, grid, goal, chunk=chunk)
        policy = np.argmax(q_agent[:, :, gi], axis=1).astype(np.int64)
        mdp = task_grid_mdp(task, goal, grid, gamma=source.gamma)
        sol = mdp.policy_evaluation(policy, tol=tol, max_iters=max_iters)
        q_true[:, :, gi] = sol.Q
        iterations.append(int(sol.iterations))
        converged.append(bool(sol.converged))
        reaching.append(float((sol.V > 0.0).mean()))
        del mdp, sol

    mse_ag = ((q_agent - q_true) ** 2).mean(axis=0)  # (A, G)
    return {
        "q_nmse": q_nmse(q_agent, q_true),
        "q_mse": float(mse_ag.mean()),
        "q_nmse_per_goal": [float(x) for x in q_nmse_per_goal(q_agent, q_true)],
        "q_mse_per_goal": [float(x) for x in mse_ag.mean(axis=0)],
        "q_true_var_per_goal": [float(x) for x in q_true.var(axis=0).mean(axis=0)],
        "q_agent_mean_per_goal": [float(x) for x in q_agent.mean(axis=(0, 1))],
        "q_true_mean_per_goal": [float(x) for x in q_true.mean(axis=(0, 1))],
        "greedy_fraction_reaching": reaching,
        "policy_eval_iterations": iterations,
        "policy_eval_converged": converged,
        "goals": goal_arr.tolist(),
        "resolution": list(grid.shape),
        "num_nodes": int(N),
        "num_actions": int(A),
        "gamma": float(source.gamma),
        "seconds": time.perf_counter() - t0,
    }


DEFAULT_ROLLOUT_HORIZON = 1000
"""Steps per rollout in :func:`q_accuracy_rollout`: the neglected tail weighs at most γ^1000 ≈ 4e-5 (γ = 0.99)."""


@torch.no_grad()
def rollout_q_pi(
    source: QSource,
    states: FloatArray,
    goal: FloatArray,
    *,
    horizon: int = DEFAULT_ROLLOUT_HORIZON,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[FloatArray, FloatArray]:
    """Q^π(s, a, g) of the agent's greedy policy by exact rollouts on the true dynamics, with no grid.

    For every state s_i and action a: s' = f(s_i, a), then the agent's greedy policy
    π(s) = argmax_a' Q_agent(s, a', g) acts on the true dynamics from s' until the goal terminates
    the rollout or ``horizon`` steps pass::

        Q^π(s_i, a) = r(s', g) + γ (1 − done(s', g)) Σ_{t≥0} γ^t r(s_{t+1}, g)   (truncated at horizon)

    With deterministic dynamics this is exact up to the truncated tail (≤ γ^horizon · max r / (1 − γ)),
    and it evaluates the policy the agent actually follows everywhere, not only at grid nodes.

    Args:
        source: the agent (discrete actions).
        states: evaluation states, shape (n, d).
        goal: the goal, shape (k,).
        horizon: most policy steps after the first action, >= 1.
        chunk: rollouts per batched forward pass.

    Returns:
        (q_agent (n, A), q_pi (n, A)), float64: the agent's Q and the rollout Q^π at the states.
    """
    task = source.task
    if task.num_actions is None:
        raise PlrayInputError(f"source: rollout Q^pi needs discrete actions; task {task.name!r} has continuous ones")
    if task.stochastic:
        raise PlrayInputError(
            f"source: rollout Q^pi follows one exact trajectory, but task {task.name!r} is stochastic; "
            "use the grid Q_NMSE (q_accuracy), which integrates over the kernel"
        )
    chunk = _check_chunk(chunk)
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise PlrayInputError(f"horizon: expected a positive integer, got {horizon!r}")
    s = as_float_array(states, "states", ndim=2)
    check_shape(s, "states", (None, task.state_dim), ("n", "d"))
    g = as_float_array(goal, "goal", ndim=1)
    check_shape(g, "goal", (task.goal_dim,), ("k",))
    n, A = s.shape[0], task.num_actions
    q_agent = agent_q_at_states(source, s, g, chunk=chunk)
    first = np.repeat(s, A, axis=0)
    actions = np.tile(np.arange(A), n)
    cur = task.next_state(first, actions)
    goals_all = np.repeat(g[None], cur.shape[0], axis=0)
    q_pi = np.asarray(task.reward_at(cur, goals_all), dtype=np.float64)
    alive = np.flatnonzero(~np.asarray(task.terminal_at(cur, goals_all), dtype=bool))
    discount = source.gamma
    for _ in range(horizon):
        if alive.size == 0:
            break
        x = cur[alive]
        nxt = task.next_state(x, np.argmax(agent_q_at_states(source, x, g, chunk=chunk), axis=1))
        gg = goals_all[: alive.size]
        q_pi[alive] += discount * np.asarray(task.reward_at(nxt, gg), dtype=np.float64)
        cur[alive] = nxt
        alive = alive[~np.asarray(task.terminal_at(nxt, gg), dtype=bool)]
        discount *= source.gamma
    return q_agent, q_pi.reshape(n, A)


def q_accuracy_rollout(
    source: QSource,
    num_states: int = 4096,
    *,
    goals: FloatArray | None = None,
    seed: int = 0,
    horizon: int = DEFAULT_ROLLOUT_HORIZON,
    chunk: int = DEFAULT_CHUNK,
) -> dict[str, Any]:
    """Q_MSE and Q_NMSE against Q^π by exact rollouts (:func:`rollout_q_pi`) at states uniform over the box.

    A grid-free companion of :func:`q_accuracy`: the same per-(action, goal) MSE / Var(Q^π) averaged,
    on ``num_states`` states drawn uniformly over the task's state box (the distribution of the grid's
    nodes) instead of grid nodes, with Q^π from rollouts of the agent's own greedy policy instead of
    interpolated policy evaluation. Coarse grids (the Reacher's 20⁴ on a CPU) smear V^π between nodes
    and bias the grid reference; this one has no discretisation error.

    Returns:
        A JSON-ready dict: ``q_nmse``, ``q_mse``, ``q_nmse_per_goal``, ``q_mse_per_goal``,
        ``q_true_mean_per_goal``, ``q_agent_mean_per_goal``, ``num_states``, ``horizon``, ``seed``,
        ``seconds``.
    """
    t0 = time.perf_counter()
    if not isinstance(source, QSource):
        raise PlrayInputError(f"source: expected a QSource, got {type(source).__name__}")
    if isinstance(num_states, bool) or not isinstance(num_states, int | np.integer) or num_states < 2:
        raise PlrayInputError(f"num_states: expected an integer >= 2, got {num_states!r}")
    task = source.task
    goal_arr = as_float_array(task.training_goals if goals is None else goals, "goals", ndim=2)
    check_shape(goal_arr, "goals", (None, task.goal_dim), ("G", "k"))
    states = task.sample_states(int(num_states), np.random.default_rng(seed))
    pairs = [rollout_q_pi(source, states, goal, horizon=horizon, chunk=chunk) for goal in goal_arr]
    q_agent = np.stack([p[0] for p in pairs], axis=-1)  # (n, A, G)
    q_true = np.stack([p[1] for p in pairs], axis=-1)
    mse_ag = ((q_agent - q_true) ** 2).mean(axis=0)
    return {
        "q_nmse": q_nmse(q_agent, q_true),
        "q_mse": float(mse_ag.mean()),
        "q_nmse_per_goal": [float(x) for x in q_nmse_per_goal(q_agent, q_true)],
        "q_mse_per_goal": [float(x) for x in mse_ag.mean(axis=0)],
        "q_agent_mean_per_goal": [float(x) for x in q_agent.mean(axis=(0, 1))],
        "q_true_mean_per_goal": [float(x) for x in q_true.mean(axis=(0, 1))],
        "num_states": int(num_states),
        "horizon": int(horizon),
        "seed": int(seed),
        "seconds": time.perf_counter() - t0,
    }
