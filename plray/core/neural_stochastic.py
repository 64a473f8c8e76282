"""Stochastic neural P-learning: a diagonal-Gaussian successor kernel fitted to the agent's Bellman equation.

docs/method.md#neural-gaussian-p-learning (the paper names the reparameterisation trick but releases no
code; the family is ours). The kernel is

    P_φ(s' | s, a) = N(μ_φ(s, a), diag σ_φ(s, a)²),   μ_φ = wrap(s + Δ_φ(s, a)),

sampled by reparameterisation, s' = μ_φ + σ_φ ⊙ ε with ε ~ N(0, I), so that s' is differentiable
in φ. For (s, a, g) ~ d the Bellman residual of the kernel is

    δ_φ(s, a, g) = Q(s, a, g) − E_{s'~P_φ(s, a)} ŷ(s', g),   ŷ(s', g) = r(s', g) + γ (1 − done(s', g)) V(s', g),

and P-learning minimises L(φ) = E_d δ_φ². Its gradient is a product of two expectations,
∇L = −2 E_d[δ_φ · E_{s'} ∇_φ ŷ(s', g)], so one needs two independent samples per tuple:

* ``"two-sample"`` (unbiased, the default): with s'_1, s'_2 ~ P_φ(s, a) independent,
  ℓ = (Q − ŷ(s'_1)) (Q − ŷ(s'_2)). Then E ℓ = δ_φ² and E ∇ℓ = ∇ δ_φ² (pathwise gradients through
  both samples).
* ``"one-sample"`` (biased): ℓ = (Q − ŷ(s'_1))², whose expectation is δ_φ² + Var_{s'} ŷ(s', g). The
  extra variance term rewards kernels whose successors all have the same ŷ, so it pulls σ_φ
  towards 0 (near-deterministic kernels), whatever the true noise.
* ``"score"`` (unbiased, docs/method.md#sampled): the same two-sample value, but the gradient is the
  score-function form 2 (Q − ŷ(s'_1)) (Q − ŷ(s'_2)) ∇_φ log P_φ(s'_2 | s, a) with the samples
  detached. It does not differentiate through V (useful when V is not differentiable in s'), at
  the price of a much higher variance.

Angle dims are wrapped after sampling; their density is the unwrapped Gaussian evaluated at the
wrapped difference, a good approximation of the wrapped normal while σ ≪ π.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from plray.core.neural import (
    ActionSampler,
    Checkpointing,
    NeuralPConfig,
    PLearningResult,
    QFunction,
    StateSampler,
    SuccessorLayout,
    TaskSpec,
    batch_sampler,
    bellman_targets,
    build_mlp,
    init_layout,
    network_inputs,
    optimise,
    wrap_dims,
)
from plray.core.types import ESTIMATORS
from plray.utils.validation import PlrayInputError

Tensor = torch.Tensor
Estimator = Literal["two-sample", "one-sample", "score"]

LOG_STD_MIN = math.log(1e-5)
"""Default lower bound of log σ (σ ≥ 1e-5: a near-deterministic kernel, still a density)."""
LOG_STD_MAX = math.log(10.0)
"""Default upper bound of log σ."""


def _soft_clamp(x: Tensor, lo: float, hi: float) -> Tensor:
    """Smooth clamp to [lo, hi]: ≈ x in the middle, with a non-zero gradient everywhere."""
    x = lo + nn.functional.softplus(x - lo)
    return hi - nn.functional.softplus(hi - x)


def _soft_clamp_inverse(y: Tensor, lo: float, hi: float) -> Tensor:
    """The x with _soft_clamp(x, lo, hi) = y, for lo < y < hi."""
    x = hi - torch.log(torch.expm1(hi - y))  # undo the upper softplus
    return lo + torch.log(torch.expm1(x - lo))  # undo the lower softplus


class GaussianSuccessorNetwork(SuccessorLayout):
    """Diagonal-Gaussian successor kernel P_φ(s'|s, a) = N(wrap(s + Δ_φ(s, a)), diag σ_φ(s, a)²).

    The trunk is :class:`plray.core.neural.SuccessorNetwork`'s (tanh MLP, orthogonal init with
    gain √2, zero biases); its output layer has two heads over the predicted dims, Δ and log σ,
    both initialised small (gain ``config.output_init_scale``), so the fresh model is
    s' ≈ N(s, diag init_std²). log σ is softly clamped to [log_std_min, log_std_max]. Dims outside
    ``config.output_dims`` are copied from s with σ = 0 (a point mass; ``log_prob`` ignores them).

    Args:
        state_dim: d.
        num_actions: discrete action count (one-hot input), or None for continuous actions.
        action_dim: dimension of continuous actions.
        angle_dims: state dims wrapped to [−π, π) after the update and after sampling.
        config: architecture fields of :class:`NeuralPConfig`.
        init_std: σ of the fresh model, a scalar or one value per predicted dim.
        log_std_min: lower bound of log σ.
        log_std_max: upper bound of log σ.
    """

    log_std_offset: Tensor

    def __init__(
        self,
        state_dim: int,
        num_actions: int | None,
        action_dim: int = 1,
        angle_dims: Sequence[int] = (),
        config: NeuralPConfig | None = None,
        *,
        init_std: float | Sequence[float] = 0.05,
        log_std_min: float = LOG_STD_MIN,
        log_std_max: float = LOG_STD_MAX,
    ) -> None:
        super().__init__()
        cfg = config or NeuralPConfig()
        in_dims, out_dims = init_layout(self, state_dim, num_actions, action_dim, angle_dims, cfg)
        if not log_std_min < log_std_max:
            raise PlrayInputError(f"log_std_min, log_std_max: need min < max, got {log_std_min}, {log_std_max}")
        std0 = torch.as_tensor(np.broadcast_to(np.asarray(init_std, dtype=np.float64), (len(out_dims),)).copy())
        if not (torch.isfinite(std0).all() and (std0.log() > log_std_min).all() and (std0.log() < log_std_max).all()):
            raise PlrayInputError(
                f"init_std: must be finite and inside (exp({log_std_min:.3g}), exp({log_std_max:.3g})), got {init_std}"
            )
        self.log_std_min = float(log_std_min)
        self.log_std_max = float(log_std_max)
        self.register_buffer(
            "log_std_offset", _soft_clamp_inverse(std0.log(), self.log_std_min, self.log_std_max).float()
        )
        a_in = num_actions if num_actions is not None else action_dim
        self.net = build_mlp(len(in_dims) + a_in, 2 * len(out_dims), cfg)

    def _moments(self, states: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Unwrapped mean (B, d) and std (B, d) (zero on copied dims)."""
        x = network_inputs(self, states, actions)
        out = self.net(x)
        m = self.output_index.numel()
        delta, raw = out[:, :m], out[:, m:]
        log_std = _soft_clamp(raw + self.log_std_offset, self.log_std_min, self.log_std_max)
        base = states if self.residual else torch.zeros_like(states)
        mean = base.clone()
        mean[:, self.output_index] = base.index_select(-1, self.output_index) + delta
        std = torch.zeros_like(states)
        std[:, self.output_index] = log_std.exp()
        return mean, std

    def forward(self, states: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """The kernel's mean (angle dims wrapped) and standard deviation, each (B, d).

        Args:
            states: (B, d).
            actions: (B,) discrete or (B, action_dim) continuous.
        """
        mean, std = self._moments(states, actions)
        return wrap_dims(mean, self.angle_dims), std

    def sample(self, states: Tensor, actions: Tensor, n: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """n independent reparameterised successors s' = wrap(μ + σ ⊙ ε), shape (n, B, d), differentiable in φ.

        Args:
            states: (B, d).
            actions: (B,) or (B, action_dim).
            n: samples per (s, a).
            generator: the source of ε (default: torch's global generator).
        """
        if int(n) < 1:
            raise PlrayInputError(f"n: need at least one sample, got {n}")
        mean, std = self._moments(states, actions)
        eps = torch.randn((int(n), *mean.shape), generator=generator, dtype=mean.dtype, device=mean.device)
        return wrap_dims(mean + std * eps, self.angle_dims)

    def log_prob(self, states: Tensor, actions: Tensor, next_states: Tensor) -> Tensor:
        """log P_φ(s'|s, a) over the predicted dims, shape (B,) (or (n, B) for next_states (n, B, d)).

        log N(s'; μ, σ²) = −½ Σ_i [((s'_i − μ_i)/σ_i)² + 2 log σ_i + log 2π], with s'_i − μ_i wrapped
        on angle dims.
        """
        mean, std = self._moments(states, actions)
        if next_states.shape[-2:] != mean.shape:
            raise PlrayInputError(
                f"next_states: expected shape (..., {mean.shape[0]}, {self.state_dim}), got {tuple(next_states.shape)}"
            )
        diff = wrap_dims(next_states - mean, self.angle_dims).index_select(-1, self.output_index)
        sd = std.index_select(-1, self.output_index)
        z = diff / sd
        return -0.5 * (z**2 + 2.0 * sd.log() + math.log(2.0 * math.pi)).sum(-1)


def stochastic_p_learning_loss(
    model: GaussianSuccessorNetwork,
    agent: QFunction,
    task: TaskSpec,
    states: Tensor,
    actions: Tensor,
    goals: Tensor,
    estimator: Estimator = "two-sample",
    generator: torch.Generator | None = None,
) -> Tensor:
    """A sampled estimate of the squared Bellman residual L(φ) = E_d (Q − E_{s'~P_φ} ŷ(s', g))², differentiable in φ.

    With target t = Q(s, a, g) (no gradient) and ŷ(s') = r(s', g) + γ (1 − done(s', g)) V(s', g)
    (:func:`plray.core.neural.bellman_targets`):

    * ``"two-sample"``: mean_B (t − ŷ(s'_1)) (t − ŷ(s'_2)), s'_1, s'_2 independent. Its expectation
      is (t − E ŷ)² and its gradient is unbiased for ∇ (t − E ŷ)². Single batches can be negative.
    * ``"one-sample"``: mean_B (t − ŷ(s'_1))², expectation (t − E ŷ)² + Var ŷ: biased towards σ → 0.
    * ``"score"``: the two-sample value, with gradient mean_B 2 (t − ŷ(s'_1)) (t − ŷ(s'_2)) ∇ log P_φ(s'_2)
      (samples detached; docs/method.md#sampled).

    Args:
        model: the Gaussian kernel.
        agent: the frozen agent.
        task: the task's observation map.
        states: (B, d); actions: (B,) or (B, action_dim); goals: (B, k).
        estimator: one of ``ESTIMATORS``.
        generator: the source of the samples' noise.

    Returns:
        a scalar tensor.
    """
    if estimator not in ESTIMATORS:
        raise PlrayInputError(f"estimator: expected one of {ESTIMATORS}, got {estimator!r}")
    if states.ndim != 2 or goals.ndim != 2 or goals.shape[0] != states.shape[0]:
        raise PlrayInputError(
            f"states, goals: expected shapes (B, d) and (B, k) with equal B, got {tuple(states.shape)} "
            f"and {tuple(goals.shape)}"
        )
    B, d = states.shape
    with torch.no_grad():
        target = agent.q(task.observe_torch(states), goals, actions).to(states.dtype)
    n = 1 if estimator == "one-sample" else 2
    nxt = model.sample(states, actions, n, generator)  # (n, B, d)
    if estimator == "score":
        nxt = nxt.detach()
        with torch.no_grad():
            y = bellman_targets(agent, task, nxt.reshape(n * B, d), goals.repeat(n, 1)).reshape(n, B)
        r = target - y
        logp = model.log_prob(states, actions, nxt[1])
        prod = r[0] * r[1]
        return (prod + 2.0 * prod * (logp - logp.detach())).mean()
    y = bellman_targets(agent, task, nxt.reshape(n * B, d), goals.repeat(n, 1)).reshape(n, B)
    r = target - y
    return (r[0] * r[1]).mean() if n == 2 else (r[0] ** 2).mean()


@dataclass
class GaussianPLearningResult(PLearningResult):
    """A trained Gaussian successor kernel with its training record (``network`` is the Gaussian model)."""

    network: GaussianSuccessorNetwork
    estimator: str = "two-sample"

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "estimator": self.estimator}


def train_gaussian_successor(
    agent: QFunction,
    task: TaskSpec,
    sample_states: StateSampler,
    goals: np.ndarray,
    config: NeuralPConfig | None = None,
    *,
    estimator: Estimator = "two-sample",
    sample_actions: ActionSampler | None = None,
    init_std: float | Sequence[float] = 0.05,
    log_std_min: float = LOG_STD_MIN,
    log_std_max: float = LOG_STD_MAX,
    progress: Callable[[int, float], None] | None = None,
    checkpoint: Checkpointing | None = None,
) -> GaussianPLearningResult:
    """Stochastic neural P-learning: fit a diagonal-Gaussian kernel by SGD on the squared Bellman residual.

    Each step draws fresh (s, a, g) as :func:`plray.core.neural.train_successor` does, two (or
    one) reparameterised successors per tuple, and takes an Adam step on
    :func:`stochastic_p_learning_loss`.

    Args:
        agent: the frozen agent (a Q source); V must be differentiable in s' except for ``"score"``.
        task: the task's differentiable observation and state layout.
        sample_states: ``sample_states(rng, B) -> (B, d)``.
        goals: the agent's training goals, shape (G, k); sampled uniformly.
        config: hyperparameters; default ``NeuralPConfig(loss="l2")``. ``loss`` must be ``"l2"``:
            the unbiased product estimator exists for the squared residual only.
        estimator: ``"two-sample"`` (default), ``"one-sample"`` (biased, for comparison) or ``"score"``.
        sample_actions: ``sample_actions(rng, B)``; default uniform over the actions.
        init_std: σ of the fresh kernel, scalar or one per predicted dim (set it to the state scale).
        log_std_min: lower bound of log σ.
        log_std_max: upper bound of log σ.
        progress: called as ``progress(step, loss)`` every 100 steps.
        checkpoint: periodic saves of the optimisation state, and a state to resume from.

    Returns:
        the trained kernel, its loss curve (sampled estimates: two-sample values can be negative)
        and throughput.
    """
    cfg = (config or NeuralPConfig(loss="l2")).validate()
    if cfg.loss != "l2":
        raise PlrayInputError(
            f"config.loss: stochastic P-learning minimises the squared residual, use loss='l2' (got {cfg.loss!r})"
        )
    if estimator not in ESTIMATORS:
        raise PlrayInputError(f"estimator: expected one of {ESTIMATORS}, got {estimator!r}")
    goals_t = torch.as_tensor(np.asarray(goals, dtype=np.float64), dtype=torch.float32)
    if goals_t.ndim != 2 or len(goals_t) == 0:
        raise PlrayInputError(f"goals: expected shape (G, k) with G >= 1, got {tuple(goals_t.shape)}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    noise = torch.Generator().manual_seed(cfg.seed)
    model = GaussianSuccessorNetwork(
        task.state_dim,
        task.num_actions,
        task.action_dim,
        task.angle_dims,
        cfg,
        init_std=init_std,
        log_std_min=log_std_min,
        log_std_max=log_std_max,
    )
    draw = batch_sampler(task, sample_states, goals_t, cfg.batch_size, sample_actions)

    def batch_loss(rng: np.random.Generator) -> Tensor:
        s, a, g = draw(rng)
        return stochastic_p_learning_loss(model, agent, task, s, a, g, estimator, noise)

    losses, seconds = optimise(
        model, cfg, batch_loss, rng, name="stochastic P-learning", progress=progress, checkpoint=checkpoint
    )
    return GaussianPLearningResult.from_run(model, cfg, losses, seconds, estimator=estimator)
