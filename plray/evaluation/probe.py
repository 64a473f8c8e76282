"""Bellman-consistency probe: which successor do an agent's Q-values favour, dimension by dimension?

P-learning recovers the successor f(s, a) that makes an agent's Q-values Bellman-consistent,
Q(s, a, g) = r(s', g) + γ (1 − done(s', g)) V(s', g) with s' = f(s, a), over the agent's goals.
Before any P-learning, the agent's own Q-values can be asked how strongly they pin each state
dimension down: replace dimension j of the true successor by a scaled change,

    s'_c = f(s, a) with  s'_c[j] = s[j] + c · (f(s, a)[j] − s[j])      (wrapped on angle dims)

and measure the mean squared Bellman residual

    R_j(c) = mean over s, a, g of (Q(s, a, g) − r(s'_c, g) − γ (1 − done(s'_c, g)) V(s'_c, g))²

on a grid of scales c. ``c = 1`` is the true dynamics; ``c = 0`` is "this dimension does not
change". Where R_j is least at c ≈ 1 and clearly lower than at c = 0, the agent's Q-values carry
dimension j's dynamics and P-learning can read it off them; where it is least near 0, or flat, the
Q-values are as consistent with a model in which the action does not move dimension j, and no
inverse of them can recover it: the agent, not P-learning, limits that dimension. The probe needs
the true dynamics (``task.next_state``), so it is a diagnostic for benchmarks, not part of P-learning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from plray.core.types import FloatArray
from plray.envs.base import wrap_angle
from plray.utils.validation import PlrayInputError, as_float_array

if TYPE_CHECKING:
    from plray.agents.qsource import QSource

PROBE_SCALES: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
"""Scales c of the true per-step change at which the residual is measured (1: the true dynamics)."""


@dataclass(frozen=True)
class ProbeResult:
    """The probe's residuals.

    Attributes:
        scales: the scales c, shape (C,).
        residual: mean squared Bellman residual R_j(c), shape (d, C), row j = state dimension j.
    """

    scales: FloatArray
    residual: FloatArray

    def favoured(self) -> FloatArray:
        """Per dimension, the scale c with the least residual, shape (d,)."""
        return np.asarray(self.scales)[np.argmin(self.residual, axis=1)]

    def contrast(self) -> FloatArray:
        """Per dimension, R_j(0) / R_j(1): above 1 where the Q-values prefer the true change to none, (d,)."""
        zero = int(np.argmin(np.abs(self.scales)))
        one = int(np.argmin(np.abs(self.scales - 1.0)))
        return self.residual[:, zero] / np.maximum(self.residual[:, one], 1e-300)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: scales, residual rows, favoured scale and contrast per dimension."""
        return {
            "scales": [float(c) for c in self.scales],
            "residual": [[float(x) for x in row] for row in self.residual],
            "favoured_scale": [float(c) for c in self.favoured()],
            "contrast": [float(c) for c in self.contrast()],
        }


def probe_actions(source: QSource, rng: np.random.Generator, n: int) -> np.ndarray:
    """Every action of a discrete task, shape (A,) ints; else ``n`` uniform draws over the box, (n, action_dim)."""
    from plray.evaluation.wm_metrics import evaluation_actions

    actions = evaluation_actions(source.task, rng, n)  # None: a discrete task, every action
    return np.arange(int(source.task.num_actions or 0)) if actions is None else actions


def _targets(source: QSource, next_states: FloatArray, goals: FloatArray) -> FloatArray:
    """P-learning's own target r(s', g) + γ (1 − done(s', g)) V(s', g) at states (N, d), goals (N, k), (N,)."""
    from plray.core.neural import bellman_targets

    with torch.no_grad():
        target = bellman_targets(source, source.task, torch.as_tensor(next_states), torch.as_tensor(goals))
    return target.double().numpy()


def _q(source: QSource, states: FloatArray, goals: FloatArray, action: np.ndarray) -> FloatArray:
    """Q(s, a, g) for states (N, d), goals (N, k) and one action repeated, shape (N,)."""
    obs = torch.as_tensor(source.task.observe(states), dtype=torch.float32)
    g = torch.as_tensor(goals, dtype=torch.float32)
    n = len(states)
    if source.discrete:
        acts = torch.full((n,), int(action), dtype=torch.long)
    else:
        acts = torch.as_tensor(np.tile(np.asarray(action, dtype=np.float32), (n, 1)))
    with torch.no_grad():
        return source.q(obs, g, acts).double().numpy()


def bellman_probe(
    source: QSource,
    states: Any,
    goals: Any | None = None,
    actions: np.ndarray | None = None,
    scales: tuple[float, ...] = PROBE_SCALES,
    seed: int = 0,
) -> ProbeResult:
    """R_j(c) for every state dimension j and scale c (see the module docstring).

    Args:
        source: the agent's Q-values (its ``task`` gives dynamics, rewards and terminations).
        states: probe states s, shape (n, d), e.g. ``task.reset_states(n, rng)``.
        goals: the goals of the residual, shape (G, k); default the task's training goals.
        actions: discrete action ids (A,) or continuous actions (A, action_dim); default
            :func:`probe_actions` with 16 draws.
        scales: the scales c; must include 0 and 1.
        seed: seeds the policy draws of a stochastic agent's V (SAC's soft value), in a forked
            torch generator, so the same agent gives the same residuals; the caller's torch RNG is untouched.

    Returns:
        :class:`ProbeResult` with residual shape (d, len(scales)).
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return _probe(source, states, goals, actions, scales)


def _probe(
    source: QSource, states: Any, goals: Any | None, actions: np.ndarray | None, scales: tuple[float, ...]
) -> ProbeResult:
    task = source.task
    s = as_float_array(states, "states")
    if s.ndim != 2 or s.shape[1] != task.state_dim or len(s) == 0:
        raise PlrayInputError(f"states: expected shape (n >= 1, {task.state_dim}), got {s.shape}")
    g_all = as_float_array(task.training_goals if goals is None else goals, "goals").reshape(-1, task.goal_dim)
    c = np.asarray(scales, dtype=np.float64)
    if not (np.any(c == 0.0) and np.any(c == 1.0)):
        raise PlrayInputError(f"scales: must include 0 and 1, got {list(scales)}")
    acts = probe_actions(source, np.random.default_rng(0), 16) if actions is None else np.asarray(actions)
    n, d = s.shape
    angle = np.zeros(d, dtype=bool)
    angle[list(task.angle_dims)] = True
    tiled = np.repeat(s, len(g_all), axis=0)  # (n G, d): every state with every goal
    goals_tiled = np.tile(g_all, (n, 1))
    total = np.zeros((d, len(c)))
    for action in acts:
        q = _q(source, tiled, goals_tiled, action)
        true_next = np.repeat(task.next_state(s, np.repeat(action[None], n, axis=0)), len(g_all), axis=0)
        change = true_next - tiled
        change[:, angle] = wrap_angle(change[:, angle])
        at_truth = _targets(source, true_next, goals_tiled)  # c = 1 is the same successor for every j
        for j in range(d):
            for k, scale in enumerate(c):
                if scale == 1.0:
                    total[j, k] += float(np.mean((q - at_truth) ** 2))
                    continue
                nxt = true_next.copy()
                nxt[:, j] = tiled[:, j] + scale * change[:, j]
                if angle[j]:
                    nxt[:, j] = wrap_angle(nxt[:, j])
                total[j, k] += float(np.mean((q - _targets(source, nxt, goals_tiled)) ** 2))
    return ProbeResult(scales=c, residual=total / len(acts))
