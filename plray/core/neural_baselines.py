"""Continuous-state reference lines for neural P-learning (docs/method.md#continuous-baselines).

* :func:`value_argmin_successor`: Adamczyk's single-value inversion with one goal. With reward on
  arrival and deterministic dynamics, Q(s, a, g) = m_g(f(s, a)) where
  m_g(x) = r(x, g) + γ (1 − done(x, g)) V(x, g) is the arrival value, so the successor is a
  point x with m_g(x) = Q(s, a, g): found by a search over candidate states, optionally refined
  by gradient descent on x. If m_g is reverse-Lipschitz, |m_g(x) − m_g(y)| ≥ L ‖x − y‖, and
  Q, V are ε-accurate, the error is below (1 + γ) ε / (γ L) (Paper B). A continuous scalar
  function cannot be injective on ℝ^d for d ≥ 2, so in two or more dims the inversion returns
  *some* point of the level set {x : m_g(x) = Q(s, a, g)}, which is in general not the successor.
* :func:`train_supervised_successor`: the same :class:`plray.core.neural.SuccessorNetwork` fitted
  by regression on true transitions (task.next_state; sampled ones, ``task.sample_next_state``,
  on stochastic tasks), data P-learning never sees: the best a model of this architecture and
  budget can do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch

from plray.core.neural import (
    ActionSampler,
    NeuralPConfig,
    PLearningResult,
    QFunction,
    StateSampler,
    SuccessorNetwork,
    TaskSpec,
    optimise,
    uniform_action_sampler,
    wrap_dims,
)
from plray.utils.validation import PlrayInputError, check_gamma

Tensor = torch.Tensor


class TransitionTask(TaskSpec, Protocol):
    """A task whose exact dynamics can be queried (see :class:`plray.envs.base.GoalTask`)."""

    def next_state(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray: ...


def _as_2d(x: Any, name: str, dim: int) -> Tensor:
    t = x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))
    t = t.float()
    if t.ndim != 2 or t.shape[1] != dim:
        raise PlrayInputError(f"{name}: expected shape (B, {dim}), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise PlrayInputError(f"{name}: non-finite entries")
    return t


def arrival_values(agent: QFunction, task: TaskSpec, states: Tensor, goal: Tensor, gamma: float) -> Tensor:
    """m_g(x) = r(x, g) + γ (1 − done(x, g)) V(x, g) at states x (B, d) for one goal (k,), shape (B,).

    Differentiable in x through V (r and done enter as constants).
    """
    obs = task.observe_torch(states)
    goals = goal.reshape(1, -1).expand(len(states), -1)
    with torch.no_grad():
        r = agent.reward(obs.detach(), goals).to(obs.dtype)
        cont = 1.0 - agent.terminal(obs.detach(), goals).to(obs.dtype)
    return r + gamma * cont * agent.v(obs, goals).to(obs.dtype)


def value_argmin_successor(
    agent: QFunction,
    task: TaskSpec,
    goal: Any,
    states: Any,
    actions: Any,
    candidates: Any,
    gamma: float | None = None,
    *,
    chunk_size: int = 65536,
    refine_steps: int = 0,
    refine_lr: float = 1e-2,
) -> Tensor:
    """Adamczyk's single-value inversion for one goal: ŝ'(s, a) = argmin_x |m_g(x) − Q(s, a, g)|.

    m_g(x) = r(x, g) + γ (1 − done(x, g)) V(x, g) is the arrival value (the tabular
    :func:`plray.core.baselines.value_argmin_kernel` uses M[g, x], the same quantity). The search
    evaluates m_g once per candidate (in chunks of ``chunk_size``), sorts the values and finds each
    target's nearest value by binary search, so it costs O((B + K) log K) time and O(B + K)
    memory. With ``refine_steps > 0`` each winner is then moved by Adam on (m_g(x) − Q(s, a, g))²
    (angle dims wrapped), which removes the grid's resolution error where m_g is locally
    invertible, and otherwise slides along the level set.

    Args:
        agent: the frozen agent.
        task: the task's observation map and state layout.
        goal: the one goal used, shape (k,) (or (1, k)).
        states: (B, d).
        actions: (B,) discrete or (B, action_dim) continuous.
        candidates: candidate next states, shape (K, d) (a grid over the state box, or samples).
        gamma: the discount in m_g; default ``agent.gamma``.
        chunk_size: states per agent call.
        refine_steps: gradient steps of the local refinement (0: none).
        refine_lr: Adam step size of the refinement.

    Returns:
        predicted next states, shape (B, d), float32.
    """
    gamma = check_gamma(agent.gamma if gamma is None else gamma)
    d = int(task.state_dim)
    s = _as_2d(states, "states", d)
    cand = _as_2d(candidates, "candidates", d)
    g = torch.as_tensor(np.asarray(goal.detach() if isinstance(goal, Tensor) else goal, dtype=np.float64)).float()
    if g.ndim == 2 and g.shape[0] == 1:
        g = g[0]
    if g.ndim != 1 or not torch.isfinite(g).all():
        raise PlrayInputError(f"goal: expected one finite goal of shape (k,), got {tuple(g.shape)}")
    a = actions.detach() if isinstance(actions, Tensor) else torch.as_tensor(np.asarray(actions))
    if a.shape[0] != s.shape[0]:
        raise PlrayInputError(f"actions: expected {s.shape[0]} actions, got shape {tuple(a.shape)}")
    if len(cand) == 0:
        raise PlrayInputError("candidates: need at least one candidate state")
    if chunk_size < 1 or refine_steps < 0 or not refine_lr > 0:
        raise PlrayInputError(
            f"chunk_size, refine_steps, refine_lr: need >= 1, >= 0, > 0, got {chunk_size}, {refine_steps}, {refine_lr}"
        )
    q, out = _nearest_arrival_value(agent, task, s, a, g, cand, gamma, chunk_size)
    if refine_steps == 0:
        return out
    for i in range(0, len(out), chunk_size):
        out[i : i + chunk_size] = _refine(
            agent, task, out[i : i + chunk_size], q[i : i + chunk_size], g, gamma, refine_steps, refine_lr
        )
    return out


def _nearest_arrival_value(
    agent: QFunction, task: TaskSpec, s: Tensor, a: Tensor, g: Tensor, cand: Tensor, gamma: float, chunk_size: int
) -> tuple[Tensor, Tensor]:
    """Q(s, a, g) (B,) and, per row, the candidate (B, d) whose arrival value m_g is nearest to it.

    m_g is evaluated once per candidate, sorted, and each target found by binary search.
    """
    with torch.no_grad():
        q = torch.cat(
            [
                agent.q(
                    task.observe_torch(s[i : i + chunk_size]),
                    g.expand(len(s[i : i + chunk_size]), -1),
                    a[i : i + chunk_size],
                ).float()
                for i in range(0, len(s), chunk_size)
            ]
        )
        m = torch.cat(
            [
                arrival_values(agent, task, cand[i : i + chunk_size], g, gamma).float()
                for i in range(0, len(cand), chunk_size)
            ]
        )
        order = torch.argsort(m)
        m_sorted = m[order]
        hi = torch.searchsorted(m_sorted, q).clamp(max=len(m) - 1)
        lo = (hi - 1).clamp(min=0)
        pick = torch.where((m_sorted[lo] - q).abs() <= (m_sorted[hi] - q).abs(), lo, hi)
        return q, cand[order[pick]].clone()


def _refine(
    agent: QFunction, task: TaskSpec, start: Tensor, target: Tensor, g: Tensor, gamma: float, steps: int, lr: float
) -> Tensor:
    """Move each state (B, d) by Adam on (m_g(x) − target)², angle dims wrapped; returns (B, d)."""
    x = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        loss = ((arrival_values(agent, task, x, g, gamma) - target) ** 2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if task.angle_dims:
            with torch.no_grad():
                x.copy_(wrap_dims(x, task.angle_dims))
    return x.detach()


def train_supervised_successor(
    task: TransitionTask,
    sample_states: StateSampler,
    config: NeuralPConfig | None = None,
    *,
    sample_actions: ActionSampler | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> PLearningResult:
    """Supervised reference: the P-learning architecture fitted by MSE to true transitions.

    Each step draws fresh s ~ ``sample_states`` and a ~ ``sample_actions`` (the same sampling
    distribution as :func:`plray.core.neural.train_successor`), queries s' = task.next_state(s, a)
    and minimises mean_B ‖wrap(f_φ(s, a) − s') / h‖² (angle dims compared by wrapped difference),
    with h the half-widths of the config's state box (``input_low``/``input_high``) so that dims of
    very different scales weigh alike (MountainCar's v against x), or h = 1 without a box.
    Always the squared error, whatever ``config.loss`` says (that field names the Bellman-residual
    norm); every other field (architecture, lr, schedule, steps, batch, seed) is used as given, so
    the same config gives a like-for-like reference.

    Args:
        task: the task, with exact ``next_state(states (B, d), actions) -> (B, d)``.
        sample_states: ``sample_states(rng, B) -> (B, d)``.
        config: hyperparameters.
        sample_actions: ``sample_actions(rng, B)``; default uniform over the actions.
        progress: called as ``progress(step, loss)`` every 100 steps.

    Returns:
        the trained network with its MSE curve and throughput.
    """
    cfg = (config or NeuralPConfig()).validate()
    if not callable(getattr(task, "next_state", None)):
        raise PlrayInputError("task: needs next_state(states, actions) for supervised training")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = SuccessorNetwork(task.state_dim, task.num_actions, task.action_dim, task.angle_dims, cfg)
    act = sample_actions or uniform_action_sampler(task)
    scale = torch.ones(task.state_dim)
    if cfg.input_low is not None and cfg.input_high is not None:
        scale = (torch.tensor(cfg.input_high) - torch.tensor(cfg.input_low)).float() / 2

    def batch_loss(rng: np.random.Generator) -> Tensor:
        s_np = np.asarray(sample_states(rng, cfg.batch_size), dtype=np.float64)
        a_np = np.asarray(act(rng, cfg.batch_size))
        if getattr(task, "stochastic", False):  # sampled transitions, as data from the environment would be
            nxt = np.asarray(task.sample_next_state(s_np, a_np, rng), dtype=np.float64)  # type: ignore[attr-defined]
        else:
            nxt = np.asarray(task.next_state(s_np, a_np), dtype=np.float64)
        if nxt.shape != s_np.shape:
            raise PlrayInputError(f"task.next_state: expected shape {s_np.shape}, got {nxt.shape}")
        s = torch.as_tensor(s_np, dtype=torch.float32)
        target = torch.as_tensor(nxt, dtype=torch.float32)
        diff = wrap_dims(model(s, torch.as_tensor(a_np)) - target, task.angle_dims) / scale
        return (diff**2).sum(-1).mean()

    losses, seconds = optimise(model, cfg, batch_loss, rng, name="supervised successor", progress=progress)
    return PLearningResult.from_run(model, cfg, losses, seconds)
