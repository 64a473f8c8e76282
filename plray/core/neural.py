"""Neural P-learning for continuous states: a successor network fitted to the agent's Bellman equation.

The official method (docs/method.md#neural-deterministic-p-learning): a deterministic successor function
s' = f_φ(s, a), with residual prediction s' = s + Δ_φ(s, a) (angle dims wrapped), a tanh MLP
(2 × 256) with orthogonal initialisation and a small output layer (gain 0.01, so Δ ≈ 0 at start),
trained on fresh samples every step, (s, a, g) with s from a state sampler (the task's reset
distribution or uniform over its state box), a uniform over actions and g uniform over the
agent's training goals, by minimising the Bellman residual through the frozen agent:

    target = Q(s, a, g)
    ŷ      = r(ŝ', g) + γ (1 − done(ŝ', g)) V(ŝ', g),   ŝ' = f_φ(s, a)
    loss   = mean |target − ŷ|   (L1, the code's default; "l2" squares it)

V is the agent's own state value (greedy max for DQN-style agents, the soft policy value for
SAC). Rewards and terminations are sparse indicators: they enter as constants (zero gradient
almost everywhere), and the gradient flows pathwise through ŝ' into the agent's V.

This module needs only the small protocols below, which :class:`plray.agents.qsource.QSource`
satisfies; it imports no RLlib.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn

from plray.utils.validation import PlrayInputError

Tensor = torch.Tensor

log = logging.getLogger(__name__)
"""Without a ``progress`` callback, :func:`optimise` logs step, loss and samples/s here at INFO every
``LOG_EVERY_S`` seconds (silent unless the application configures logging)."""

LOG_EVERY_S = 30.0


class QFunction(Protocol):
    """What P-learning needs of an agent (see :class:`plray.agents.qsource.QSource`)."""

    gamma: float

    @property
    def discrete(self) -> bool: ...

    def q(self, obs: Tensor, goals: Tensor, actions: Tensor) -> Tensor: ...

    def v(self, obs: Tensor, goals: Tensor) -> Tensor: ...

    def reward(self, next_obs: Tensor, goals: Tensor) -> Tensor: ...

    def terminal(self, next_obs: Tensor, goals: Tensor) -> Tensor: ...


class TaskSpec(Protocol):
    """What P-learning needs of the task (see :class:`plray.envs.base.GoalTask`)."""

    state_dim: int
    num_actions: int | None
    action_dim: int
    angle_dims: tuple[int, ...]

    def observe_torch(self, states: Tensor) -> Tensor: ...


@functools.lru_cache(maxsize=64)
def _dims_mask(dims: tuple[int, ...], width: int, device: str) -> Tensor:
    """A (width,) bool tensor, True on ``dims``."""
    mask = torch.zeros(width, dtype=torch.bool, device=device)
    mask[list(dims)] = True
    return mask


def wrap_dims(x: Tensor, dims: Sequence[int]) -> Tensor:
    """Wrap the given dims of x (..., d) to [−π, π); others unchanged (values and gradients alike).

    One elementwise select over a cached mask instead of a clone and an indexed write: the same
    numbers, a fraction of the per-call overhead for the small batches of serving and planning.
    """
    if not dims:
        return x
    wrapped = torch.remainder(x + math.pi, 2 * math.pi) - math.pi
    return torch.where(_dims_mask(tuple(dims), x.shape[-1], str(x.device)), wrapped, x)


@dataclass(frozen=True)
class NeuralPConfig:
    """Hyperparameters of neural P-learning (defaults: the official Reacher settings)."""

    hidden: int = 256
    """Width of each hidden layer."""
    layers: int = 2
    """Number of hidden layers."""
    activation: Literal["tanh", "relu", "silu"] = "tanh"
    """Hidden activation."""
    output_init_scale: float = 0.01
    """Orthogonal gain of the output layer (small: the model starts as s' = s)."""
    residual: bool = True
    """Predict s' = s + Δ(s, a) rather than s' directly."""
    input_dims: tuple[int, ...] | None = None
    """State dims the network reads (None: all)."""
    output_dims: tuple[int, ...] | None = None
    """State dims the network predicts; the others are copied from s (None: all)."""
    input_low: tuple[float, ...] | None = None
    """Lower corner of the state box (d values); with ``input_high``, the network reads each state dim
    rescaled to [−1, 1] over the box. Dims of very different scales (MountainCar's v spans 0.14
    against x's 1.8) then train alike. None: raw states (the official method)."""
    input_high: tuple[float, ...] | None = None
    """Upper corner of the state box (d values); see ``input_low``."""
    loss: Literal["l1", "l2"] = "l1"
    """Bellman-residual norm."""
    lr: float = 1e-4
    """Adam step size."""
    schedule: Literal["constant", "linear", "cosine"] = "linear"
    """Step-size decay to (almost) zero over the run."""
    steps: int = 1000
    """Gradient steps."""
    batch_size: int = 1024
    """Fresh (s, a, g) samples per step."""
    seed: int = 0
    """Seeds the initialisation and every sample."""

    def validate(self) -> NeuralPConfig:
        if self.hidden < 1 or self.layers < 0 or self.steps < 1 or self.batch_size < 1:
            raise PlrayInputError("hidden, steps and batch_size must be >= 1 and layers >= 0")
        if not self.lr > 0:
            raise PlrayInputError(f"lr: must be > 0, got {self.lr}")
        if (self.input_low is None) != (self.input_high is None):
            raise PlrayInputError("input_low, input_high: give both (the state box) or neither")
        if self.input_low is not None and self.input_high is not None:
            lo, hi = np.asarray(self.input_low, dtype=float), np.asarray(self.input_high, dtype=float)
            if lo.shape != hi.shape or lo.ndim != 1 or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
                raise PlrayInputError(f"input_low, input_high: need two finite vectors of one length, got {lo}, {hi}")
            if not (hi > lo).all():
                raise PlrayInputError(f"input_high: must exceed input_low in every dim, got {lo} and {hi}")
        for name, value, allowed in (
            ("loss", self.loss, ("l1", "l2")),
            ("schedule", self.schedule, ("constant", "linear", "cosine")),
            ("activation", self.activation, tuple(_ACT)),
        ):
            if value not in allowed:
                raise PlrayInputError(f"{name}: unknown {value!r}; choose one of {', '.join(allowed)}")
        return self


_ACT: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU}


def build_mlp(in_dim: int, out_dim: int, cfg: NeuralPConfig) -> nn.Sequential:
    """The successor networks' MLP: ``cfg.layers`` hidden layers (orthogonal init, gain √2, zero bias),
    then a linear output with orthogonal gain ``cfg.output_init_scale`` (so the model starts near s' = s)."""
    layers: list[nn.Module] = []
    prev = in_dim
    for _ in range(cfg.layers):
        lin = nn.Linear(prev, cfg.hidden)
        nn.init.orthogonal_(lin.weight, gain=math.sqrt(2.0))
        nn.init.zeros_(lin.bias)
        layers += [lin, _ACT[cfg.activation]()]
        prev = cfg.hidden
    out = nn.Linear(prev, out_dim)
    nn.init.orthogonal_(out.weight, gain=cfg.output_init_scale)
    nn.init.zeros_(out.bias)
    return nn.Sequential(*layers, out)


class SuccessorLayout(nn.Module):
    """Base of the successor networks: the state/action layout and index buffers that :func:`init_layout` sets."""

    state_dim: int
    num_actions: int | None
    action_dim: int
    angle_dims: tuple[int, ...]
    residual: bool
    input_index: Tensor
    output_index: Tensor
    all_inputs: bool
    """The network reads every state dim, in order (``input_index`` is 0..d-1: no gather needed)."""
    all_outputs: bool
    """The network predicts every state dim, in order (``output_index`` is 0..d-1)."""
    input_center: Tensor | None
    input_halfwidth: Tensor | None


def init_layout(
    module: SuccessorLayout,
    state_dim: int,
    num_actions: int | None,
    action_dim: int,
    angle_dims: Sequence[int],
    cfg: NeuralPConfig,
) -> tuple[list[int], list[int]]:
    """Set a successor network's state/action layout and its input/output index buffers.

    Returns:
        the state dims the network reads and the dims it predicts (validated against ``state_dim``).
    """
    module.state_dim = int(state_dim)
    module.num_actions = num_actions
    module.action_dim = int(action_dim)
    module.angle_dims = tuple(int(d) for d in angle_dims)
    module.residual = cfg.residual
    in_dims = list(range(state_dim)) if cfg.input_dims is None else list(cfg.input_dims)
    out_dims = list(range(state_dim)) if cfg.output_dims is None else list(cfg.output_dims)
    for name, dims in (("input_dims", in_dims), ("output_dims", out_dims)):
        if not dims or min(dims) < 0 or max(dims) >= state_dim:
            raise PlrayInputError(f"{name}: entries must lie in [0, {state_dim}), got {dims}")
    module.register_buffer("input_index", torch.tensor(in_dims, dtype=torch.long))
    module.register_buffer("output_index", torch.tensor(out_dims, dtype=torch.long))
    module.all_inputs = in_dims == list(range(state_dim))
    module.all_outputs = out_dims == list(range(state_dim))
    if cfg.input_low is not None and cfg.input_high is not None:
        if len(cfg.input_low) != state_dim:
            raise PlrayInputError(
                f"input_low, input_high: need {state_dim} values (the state dims), got {len(cfg.input_low)}"
            )
        lo = torch.tensor(cfg.input_low, dtype=torch.float32)[in_dims]
        hi = torch.tensor(cfg.input_high, dtype=torch.float32)[in_dims]
        module.register_buffer("input_center", (hi + lo) / 2)
        module.register_buffer("input_halfwidth", (hi - lo) / 2)
    else:  # None buffers stay out of the state dict: artifacts without a box load as before
        module.register_buffer("input_center", None)
        module.register_buffer("input_halfwidth", None)
    return in_dims, out_dims


def network_inputs(module: SuccessorLayout, states: Tensor, actions: Tensor) -> Tensor:
    """A successor network's input: the selected state dims and the encoded action, (B, in + A).

    Checks states (B, d) and that there is one action per state; discrete actions (B,) become
    one-hot, continuous ones (B, action_dim) are used as floats. With a state box in the config the
    state dims are rescaled to [−1, 1] over it.
    """
    if states.ndim != 2 or states.shape[1] != module.state_dim:
        raise PlrayInputError(f"states: expected shape (B, {module.state_dim}), got {tuple(states.shape)}")
    per_action = 1 if module.num_actions is not None else max(module.action_dim, 1)
    if actions.numel() != states.shape[0] * per_action:
        raise PlrayInputError(f"actions: expected {states.shape[0]} actions, got shape {tuple(actions.shape)}")
    if module.num_actions is not None:
        encoded = nn.functional.one_hot(actions.long().reshape(-1), module.num_actions).float()
    else:
        encoded = actions.float().reshape(-1, module.action_dim)
    x = states if module.all_inputs else states.index_select(-1, module.input_index)
    if module.input_center is not None and module.input_halfwidth is not None:  # set together
        x = (x - module.input_center) / module.input_halfwidth
    return torch.cat([x, encoded], dim=-1)


def lr_factor(cfg: NeuralPConfig) -> Callable[[int], float]:
    """Multiplier of the step size at each step: constant, linear or cosine decay to ~0 over ``cfg.steps``."""

    def factor(step: int) -> float:
        frac = step / cfg.steps
        if cfg.schedule == "linear":
            return max(1.0 - frac, 1e-16)
        if cfg.schedule == "cosine":
            return max(0.5 * (1.0 + math.cos(math.pi * frac)), 1e-16)
        return 1.0

    return factor


class SuccessorNetwork(SuccessorLayout):
    """Deterministic successor model s' = wrap(s + Δ_φ(s, a)).

    Args:
        state_dim: d.
        num_actions: discrete action count (one-hot input), or None for continuous actions.
        action_dim: dimension of continuous actions.
        angle_dims: state dims wrapped to [−π, π) after the update.
        config: architecture fields of :class:`NeuralPConfig`.
    """

    def __init__(
        self,
        state_dim: int,
        num_actions: int | None,
        action_dim: int = 1,
        angle_dims: Sequence[int] = (),
        config: NeuralPConfig | None = None,
    ) -> None:
        super().__init__()
        cfg = config or NeuralPConfig()
        in_dims, out_dims = init_layout(self, state_dim, num_actions, action_dim, angle_dims, cfg)
        a_in = num_actions if num_actions is not None else action_dim
        self.net = build_mlp(len(in_dims) + a_in, len(out_dims), cfg)

    def forward(self, states: Tensor, actions: Tensor) -> Tensor:
        """Predicted next states, (B, d) and actions (B,) or (B, action_dim) -> (B, d)."""
        x = network_inputs(self, states, actions)
        delta = self.net(x)
        base = states if self.residual else torch.zeros_like(states)
        if self.all_outputs:
            nxt = base + delta
        else:
            nxt = base.clone()
            nxt[:, self.output_index] = base.index_select(-1, self.output_index) + delta
        return wrap_dims(nxt, self.angle_dims)


StateSampler = Callable[[np.random.Generator, int], np.ndarray]
ActionSampler = Callable[[np.random.Generator, int], np.ndarray]


@dataclass
class PLearningResult:
    """A trained successor network with its training record."""

    network: SuccessorLayout
    config: NeuralPConfig
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    samples_per_s: float = 0.0

    @classmethod
    def from_run(
        cls, network: SuccessorLayout, config: NeuralPConfig, losses: list[float], seconds: float, **extra: Any
    ):
        """A result from :func:`optimise`'s output (``extra``: fields of subclasses)."""
        rate = config.steps * config.batch_size / seconds if seconds > 0 else 0.0
        return cls(network=network, config=config, losses=losses, seconds=seconds, samples_per_s=rate, **extra)

    def summary(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "final_loss": self.losses[-1] if self.losses else None,
            "seconds": self.seconds,
            "samples_per_s": self.samples_per_s,
            "steps": len(self.losses),
        }


def bellman_targets(agent: QFunction, task: TaskSpec, next_states: Tensor, goals: Tensor) -> Tensor:
    """ŷ = r(ŝ', g) + γ (1 − done(ŝ', g)) V(ŝ', g) at predicted next states (B, d), differentiable in them."""
    obs = task.observe_torch(next_states)
    with torch.no_grad():
        r = agent.reward(obs.detach(), goals).to(obs.dtype)
        cont = 1.0 - agent.terminal(obs.detach(), goals).to(obs.dtype)
    return r + agent.gamma * cont * agent.v(obs, goals).to(obs.dtype)


def p_learning_loss(
    model: SuccessorNetwork,
    agent: QFunction,
    task: TaskSpec,
    states: Tensor,
    actions: Tensor,
    goals: Tensor,
    loss: str = "l1",
) -> Tensor:
    """Mean Bellman residual |Q(s, a, g) − ŷ(f_φ(s, a), g)| (or its square) over a batch."""
    with torch.no_grad():
        target = agent.q(task.observe_torch(states), goals, actions).to(states.dtype)
    pred = bellman_targets(agent, task, model(states, actions), goals)
    resid = target - pred
    return resid.abs().mean() if loss == "l1" else (resid**2).mean()


def uniform_action_sampler(
    task: TaskSpec, low: np.ndarray | None = None, high: np.ndarray | None = None
) -> ActionSampler:
    """Uniform discrete actions, or uniform continuous actions in [low, high]."""
    if task.num_actions is not None:
        n = int(task.num_actions)
        return lambda rng, b: rng.integers(n, size=b)
    lo = np.full(task.action_dim, -1.0) if low is None else np.asarray(low, dtype=np.float64)
    hi = np.full(task.action_dim, 1.0) if high is None else np.asarray(high, dtype=np.float64)
    return lambda rng, b: rng.uniform(lo, hi, size=(b, len(lo)))


def batch_sampler(
    task: TaskSpec,
    sample_states: StateSampler,
    goals: Tensor,
    batch_size: int,
    sample_actions: ActionSampler | None = None,
) -> Callable[[np.random.Generator], tuple[Tensor, Tensor, Tensor]]:
    """Fresh (s, a, g) batches: s ~ d, a uniform (or ``sample_actions``), g uniform over ``goals`` (G, k)."""
    act = sample_actions or uniform_action_sampler(task)

    def draw(rng: np.random.Generator) -> tuple[Tensor, Tensor, Tensor]:
        s = torch.as_tensor(sample_states(rng, batch_size), dtype=torch.float32)
        a = torch.as_tensor(act(rng, batch_size))
        g = goals[torch.as_tensor(rng.integers(len(goals), size=batch_size))]
        return s, a, g

    return draw


@dataclass
class Checkpointing:
    """How an optimisation saves its state and where it resumes from.

    The state is a flat dict of numpy arrays (no pickle): ``step``, ``losses``, the numpy and torch
    generator states, ``model/<parameter>`` and ``adam/<index>/<exp_avg|exp_avg_sq|step>``. A run
    resumed from it continues exactly as the uninterrupted run would have.

    Attributes:
        save: called with the state every ``every`` steps (not after the last step).
        every: steps between saves.
        state: a state to resume from (one ``save`` received), or None to start afresh.
    """

    save: Callable[[dict[str, np.ndarray]], None]
    every: int = 1000
    state: dict[str, np.ndarray] | None = None


def _optimiser_state(
    model: nn.Module, opt: torch.optim.Adam, step: int, losses: list[float], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    import json

    out: dict[str, np.ndarray] = {
        "step": np.array(step),
        "losses": np.asarray(losses, dtype=np.float64),
        "rng": np.array(json.dumps(rng.bit_generator.state)),
        "torch_rng": torch.get_rng_state().numpy().copy(),
    }
    out |= {f"model/{k}": v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    for i, st in opt.state_dict()["state"].items():
        out |= {f"adam/{i}/{k}": torch.as_tensor(v).detach().cpu().numpy().copy() for k, v in st.items()}
    return out


def _restore_optimiser(
    state: dict[str, np.ndarray], model: nn.Module, opt: torch.optim.Adam, rng: np.random.Generator
) -> tuple[int, list[float]]:
    import json

    try:
        step = int(state["step"])
        model.load_state_dict(
            {k[6:]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith("model/")}
        )
        adam: dict[int, dict[str, Tensor]] = {}
        for key, v in state.items():
            if key.startswith("adam/"):
                _, i, name = key.split("/")
                adam.setdefault(int(i), {})[name] = torch.from_numpy(np.array(v))
        opt.load_state_dict({"state": adam, "param_groups": opt.state_dict()["param_groups"]})
        rng.bit_generator.state = json.loads(str(state["rng"]))
        torch.set_rng_state(torch.from_numpy(np.array(state["torch_rng"], dtype=np.uint8)))
        losses = [float(x) for x in state["losses"]]
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise PlrayInputError(f"checkpoint state: does not fit this network and optimiser ({exc})") from exc
    return step, losses


class ProgressPrinter:
    """A ``progress(step, loss)`` callback for long runs: prints step, loss, samples/s and time left.

    The rate is measured from the first report on, so set-up (and a resumed run's earlier steps) stay
    out of it. Lines go to ``stream`` (stderr by default) at most every ``every_s`` seconds, and always
    at the last step; pass ``progress_every=1`` to :func:`train_successor` for reports finer than 100 steps.

    Args:
        name: what is trained (the line's prefix).
        steps: the run's total steps (``cfg.steps``).
        batch_size: samples per step.
        every_s: seconds between lines.
        stream: where lines go (anything with ``write``; None: ``sys.stderr`` at call time).
    """

    def __init__(self, name: str, steps: int, batch_size: int, every_s: float = 10.0, stream: Any = None) -> None:
        self.name, self.steps, self.batch_size, self.every_s, self.stream = name, steps, batch_size, every_s, stream
        self._first: tuple[int, float] | None = None
        self._last_print = -math.inf
        self.lines: list[str] = []

    def __call__(self, step: int, loss: float) -> None:
        now = time.perf_counter()
        if self._first is None:
            self._first = (step, now)
        if now - self._last_print < self.every_s and step != self.steps:
            return
        self._last_print = now
        line = f"[{self.name}] step {step}/{self.steps}  loss {loss:.4g}"
        step0, t0 = self._first
        if step > step0 and now > t0:
            rate = (step - step0) * self.batch_size / (now - t0)
            line += f"  {rate:,.0f} samples/s  ~{(self.steps - step) * self.batch_size / rate:.0f} s left"
        self.lines.append(line)
        print(line, file=self.stream or sys.stderr, flush=True)


class _LogReporter:
    """:func:`optimise`'s default report: step, loss and samples/s to :data:`log` every ``LOG_EVERY_S`` s."""

    def __init__(self, name: str, cfg: NeuralPConfig, first: int) -> None:
        self.enabled = log.isEnabledFor(logging.INFO)
        self.name, self.cfg, self.first = name, cfg, first
        self.start = self.last = time.perf_counter()

    def __call__(self, step: int, losses: list[float]) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < LOG_EVERY_S and step != self.cfg.steps):
            return
        self.last = now
        rate = (step - self.first) * self.cfg.batch_size / max(now - self.start, 1e-9)
        log.info("%s: step %d/%d loss %.4g, %.0f samples/s", self.name, step, self.cfg.steps, losses[-1], rate)


def optimise(
    model: nn.Module,
    cfg: NeuralPConfig,
    batch_loss: Callable[[np.random.Generator], Tensor],
    rng: np.random.Generator,
    *,
    name: str,
    progress: Callable[[int, float], None] | None = None,
    checkpoint: Checkpointing | None = None,
    progress_every: int = 100,
) -> tuple[list[float], float]:
    """Adam with the configured step-size schedule over ``cfg.steps`` fresh batches.

    Args:
        model: the network to train (left in eval mode).
        cfg: step size, schedule, steps.
        batch_loss: ``batch_loss(rng)`` draws a batch and returns its scalar loss.
        rng: the generator every batch is drawn from.
        name: what is trained, for the error raised when the loss stops being finite.
        progress: called as ``progress(step, loss)`` every ``progress_every`` steps (e.g. a
            :class:`ProgressPrinter`); without one, progress is logged to :data:`log` at INFO.
        checkpoint: save the whole optimisation state periodically and/or resume from one.
        progress_every: steps between ``progress`` calls.

    Returns:
        the loss of every step and the wall-clock seconds.
    """
    if progress_every < 1:
        raise PlrayInputError(f"progress_every: must be >= 1, got {progress_every}")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    factor = lr_factor(cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    losses: list[float] = []
    first = 0
    if checkpoint is not None and checkpoint.state is not None:
        first, losses = _restore_optimiser(checkpoint.state, model, opt, rng)
        if not 0 <= first <= cfg.steps or len(losses) != first:
            raise PlrayInputError(f"checkpoint state: saved at step {first}, not a step of this run")
        sched.last_epoch = first
        for group in opt.param_groups:
            group["lr"] = cfg.lr * factor(first)
    report = _LogReporter(name, cfg, first) if progress is None else None
    start = time.perf_counter()
    for step in range(first, cfg.steps):
        loss = batch_loss(rng)
        if not torch.isfinite(loss):
            raise PlrayInputError(f"{name}: the loss became {loss.item()} at step {step}; lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress is not None and ((step + 1) % progress_every == 0 or step + 1 == cfg.steps):
            progress(step + 1, losses[-1])
        elif report is not None:
            report(step + 1, losses)
        if checkpoint is not None and (step + 1) % checkpoint.every == 0 and step + 1 < cfg.steps:
            checkpoint.save(_optimiser_state(model, opt, step + 1, losses, rng))
    model.eval()
    return losses, time.perf_counter() - start


def train_successor(
    agent: QFunction,
    task: TaskSpec,
    sample_states: StateSampler,
    goals: np.ndarray,
    config: NeuralPConfig | None = None,
    *,
    sample_actions: ActionSampler | None = None,
    progress: Callable[[int, float], None] | None = None,
    checkpoint: Checkpointing | None = None,
    progress_every: int = 100,
) -> PLearningResult:
    """Deterministic neural P-learning (the official method; see the module docstring).

    Args:
        agent: the frozen agent (a Q source).
        task: the task's differentiable observation and state layout.
        sample_states: ``sample_states(rng, B) -> (B, d)``: the sampling distribution d over s.
        goals: the agent's training goals, shape (G, k); sampled uniformly.
        config: hyperparameters.
        sample_actions: ``sample_actions(rng, B)``; default uniform over the actions.
        progress: called as ``progress(step, loss)`` every ``progress_every`` steps and at the last
            (e.g. ``ProgressPrinter("P-learning", cfg.steps, cfg.batch_size)``); None: log to :data:`log`.
        checkpoint: periodic saves of the optimisation state, and a state to resume from.
        progress_every: steps between ``progress`` calls.

    Returns:
        the trained network and its loss curve and throughput.
    """
    cfg = (config or NeuralPConfig()).validate()
    goals_t = torch.as_tensor(np.asarray(goals, dtype=np.float64), dtype=torch.float32)
    if goals_t.ndim != 2 or len(goals_t) == 0:
        raise PlrayInputError(f"goals: expected shape (G, k) with G >= 1, got {tuple(goals_t.shape)}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = SuccessorNetwork(task.state_dim, task.num_actions, task.action_dim, task.angle_dims, cfg)
    draw = batch_sampler(task, sample_states, goals_t, cfg.batch_size, sample_actions)

    def batch_loss(rng: np.random.Generator) -> Tensor:
        s, a, g = draw(rng)
        return p_learning_loss(model, agent, task, s, a, g, cfg.loss)

    losses, seconds = optimise(
        model,
        cfg,
        batch_loss,
        rng,
        name="neural P-learning",
        progress=progress,
        checkpoint=checkpoint,
        progress_every=progress_every,
    )
    return PLearningResult.from_run(model, cfg, losses, seconds)
