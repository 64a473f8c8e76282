"""The paper's FourRooms agent: a goal-conditioned tabular Q-learner with all-goals relabelling.

The paper names only "Q-learning" for FourRooms, trained up to 1e7 environment steps, and releases
no FourRooms code; this learner is plray's reading of it (docs/method.md#agents).

**Model-free.** The learner sees only sampled transitions (s, a, s') from
:meth:`FourRooms.sample_next`, never the kernel. ``num_envs`` walkers move in parallel (numpy-
vectorised); every ``episode_length`` steps they all restart from uniformly drawn states.

**Behaviour policy: uniform random actions.** Q-learning is off-policy, so the behaviour policy only
decides which (s, a) are visited, and P-learning extracts *every* row P(s, a), including the actions
a greedy policy never takes. With many goals there is also no single greedy policy to follow: an
ε-greedy walker serves one goal at a time and under-samples the other actions. Uniform actions visit
all (s, a) at the same rate (the uniform random walk on FourRooms is symmetric, so its stationary
distribution is uniform over states; the teleport variant's T cells are only ever start states).
A second consequence: the walkers' trajectory does not depend on Q, which is what makes resuming
from a snapshot exact (below).

**All-goals hindsight relabelling.** Rewards and terminations are paid on arrival, r(s', g) and
done(s', g), so one transition is a sample for every goal at once. Each transition updates the whole
row Q(s, a, ·):

    Q(s, a, g) ← Q(s, a, g) + α [ r(s', g) + γ (1 − done(s', g)) max_a' Q(s', a', g) − Q(s, a, g) ].

Walkers do not stop on reaching a goal: termination is a property of each goal's target, not of the
walk. A batch of ``num_envs`` transitions is one synchronous update from the Q before the batch;
when (s, a) occurs m times in a batch, its TD errors are averaged (``np.bincount``) and applied with
the step size of m consecutive samples, α_eff = 1 − Π_{j<m} (1 − α(n + j)), n the earlier visits:
the same as applying the m samples one after another with their mean target.

**Step size.** Per (s, a), from its visit count n (samples before this one):

    α(n) = max(lr_min, (1 + n / c)^(−ω)),   c = ``lr_offset`` (default 1/(1 − γ)), ω = ``lr_power``.

The default ω = 1, c = 1/(1 − γ) is the "rescaled linear" step size of Wainwright (2019). The error
left from the initial table then shrinks like n^−c(1−γ) = 1/n, while the final Q(s, a, ·) is a
weighted average of its targets with an effective sample size of about n·(2c − 1)/c² ≈ n/10 at
γ = 0.95, which averages the transition noise out. A plain 1/n step (c = 1) forgets its zero
initialisation only as n^−(1−γ), far too slowly; a constant step never averages the noise.
For deterministic dynamics there is no noise to average and α ≡ 1 (``lr_min = 1``) is best: Q-learning
is then asynchronous value iteration on sampled transitions and reaches Q* to machine precision in a
few 1e5 steps, which one-goal column matching needs (:func:`recommended_config`).

**Coverage.** Walkers restart every ``episode_length`` = 10 steps: the teleport variant's T cells are
entered only at restarts, and restarting 5× more often than every 50 steps halves the kernel error
there at equal steps, with no loss on the other variants (measured).

**Determinism and resuming.** Episode block b (``episode_length`` batches) draws its resets, actions
and transitions from ``np.random.default_rng([seed, b])``. Because the behaviour policy ignores Q,
the whole stream of transitions is a function of the seed alone, so a run resumed from a snapshot
(its Q, its visit counts and its step) replays the walkers to that step and continues exactly as
the uninterrupted run would have; the visit counts can even be re-derived by replay when not given.
A snapshot requested at step k is taken at the end of the batch that reaches k, so it holds
⌈k / num_envs⌉ · num_envs transitions (``visits.sum()``); resuming with ``start_step = k`` continues
from that batch boundary.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from plray.core.types import FloatArray, IntArray
from plray.envs.fourrooms import VARIANTS, FourRooms, GoalSet
from plray.utils.artifact import ArtifactError, load_artifact, save_artifact
from plray.utils.validation import PlrayInputError, as_float_array, check_choice, check_gamma, check_shape

ALGORITHM = "tabular-q"
TASK_NAME = "fourrooms"


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


@dataclass(frozen=True)
class TabularQConfig:
    """Training configuration of :func:`train_tabular_q`."""

    env_steps: int = 2_000_000
    """Total environment transitions (all walkers together)."""
    num_envs: int = 256
    """Parallel walkers, stepped together as one numpy batch (one synchronous update per batch)."""
    episode_length: int = 10
    """Steps after which every walker restarts from a uniformly drawn state (coverage of start-only states)."""
    lr_power: float = 1.0
    """ω in α(n) = max(lr_min, (1 + n/c)^−ω), n the visits of (s, a); in (0.5, 1] for convergence."""
    lr_offset: float | None = None
    """c in α(n): visits over which α stays near 1; None: 1/(1 − γ) (the rescaled linear step size)."""
    lr_min: float = 0.0
    """Floor of the step size, in [0, 1]; 1 is the constant α = 1 that suits deterministic dynamics."""
    seed: int = 0
    """Seeds resets, actions and transitions (episode block b uses default_rng([seed, b]))."""

    def validate(self) -> TabularQConfig:
        """Check every field, raising :class:`PlrayInputError` that names it."""
        for name in ("env_steps", "num_envs", "episode_length"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise PlrayInputError(f"{name}: must be an integer >= 1, got {value!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise PlrayInputError(f"seed: must be an integer >= 0, got {self.seed!r}")
        if not (isinstance(self.lr_power, int | float) and 0.5 < self.lr_power <= 1.0):
            raise PlrayInputError(
                f"lr_power: must lie in (0.5, 1] (the step sizes must sum to infinity and their squares "
                f"must not), got {self.lr_power!r}"
            )
        if self.lr_offset is not None and not (
            isinstance(self.lr_offset, int | float) and math.isfinite(self.lr_offset) and self.lr_offset > 0
        ):
            raise PlrayInputError(f"lr_offset: must be a finite number > 0 or None, got {self.lr_offset!r}")
        if not (isinstance(self.lr_min, int | float) and 0.0 <= self.lr_min <= 1.0):
            raise PlrayInputError(f"lr_min: must lie in [0, 1], got {self.lr_min!r}")
        return self

    def offset(self, gamma: float) -> float:
        """c of the step size: ``lr_offset``, or 1/(1 − γ) when it is None."""
        return float(self.lr_offset) if self.lr_offset is not None else 1.0 / (1.0 - gamma)


# Env steps at which P-learning from the learned table plans within 5% of optimal on every seed of
# bench/tabular_agent.py, at the paper's goal counts (deterministic |G| = 1 with column-match,
# windy |G| = 4 and teleport |G| = 20 with simplex over local candidates), rounded up to the
# measured budgets 1e5, 3e5, 1e6, 3e6, 1e7.
RECOMMENDED_ENV_STEPS: dict[str, int] = {"deterministic": 300_000, "windy": 1_000_000, "teleport": 300_000}


def recommended_config(variant: str, **overrides: Any) -> TabularQConfig:
    """The learner settings measured best for a FourRooms variant (``bench/tabular_agent.py``).

    * ``deterministic``: α ≡ 1 (``lr_min = 1``). Targets then carry no transition noise, so there is
      nothing to average, and Q-learning is asynchronous value iteration on sampled transitions: the
      table reaches Q* to machine precision within 3e5 steps. One-goal column matching needs errors
      below the 1e-5 to 1e-4 gaps between columns of M; with the decaying default step the error falls
      only like 1/visits (3e-3 after 3e6 steps), and column matching still fails on some seeds there.
    * ``windy`` and ``teleport``: the rescaled linear step size, c = 1/(1 − γ) (the defaults).

    Args:
        variant: ``deterministic``, ``windy`` or ``teleport``.
        **overrides: any :class:`TabularQConfig` field; ``env_steps`` defaults to
            :data:`RECOMMENDED_ENV_STEPS` of the variant.
    """
    check_choice(variant, "variant", VARIANTS)
    fields: dict[str, Any] = {"env_steps": RECOMMENDED_ENV_STEPS[variant]}
    if variant == "deterministic":
        fields["lr_min"] = 1.0
    return TabularQConfig(**(fields | overrides)).validate()


@dataclass
class TabularQResult:
    """A trained (or partly trained) table.

    Attributes:
        Q: the learned table Q(s, a, g), shape (S, A, G).
        visits: samples seen per (s, a), shape (S, A); the step sizes depend on it, so a resumed run
            needs it (``initial_visits``).
        env_steps: transitions behind Q, including those before ``start_step`` of a resumed run.
        seconds: wall-clock of this call's training.
        steps_per_s: this call's transitions per second.
        snapshots: requested env step → copy of Q, shape (S, A, G), taken at the end of the batch
            that reaches the step.
        snapshot_visits: requested env step → copy of the visit counts (S, A) at that snapshot.
    """

    Q: FloatArray
    visits: IntArray
    env_steps: int
    seconds: float
    steps_per_s: float
    snapshots: dict[int, FloatArray] = field(default_factory=dict)
    snapshot_visits: dict[int, IntArray] = field(default_factory=dict)


class _StepSizes:
    """α(n) and the effective step of m consecutive samples, from a growing table of log(1 − α).

    ``log_keep[k] = Σ_{j=1}^{k−1} log(1 − α(j))``, so Π_{j=n}^{n+m−1} (1 − α(j)) =
    exp(log_keep[n+m] − log_keep[n]) for n ≥ 1; α(0) = 1 (the first sample replaces the initial value).
    """

    def __init__(self, power: float, offset: float, floor: float) -> None:
        self.power, self.offset, self.floor = power, offset, floor
        self.log_keep = np.zeros(2)

    def alpha(self, n: IntArray) -> FloatArray:
        return np.maximum(self.floor, (1.0 + np.asarray(n, dtype=np.float64) / self.offset) ** -self.power)

    def _grow(self, size: int) -> None:
        if size <= self.log_keep.shape[0]:
            return
        size = max(size, 2 * self.log_keep.shape[0])
        j = np.arange(1, size - 1)
        self.log_keep = np.concatenate([[0.0, 0.0], np.cumsum(np.log1p(-self.alpha(j)))])

    def effective(self, n: IntArray, m: IntArray) -> FloatArray:
        """1 − Π_{j<m} (1 − α(n + j)) for visit counts n ≥ 0 and sample counts m ≥ 1."""
        if self.floor >= 1.0:  # α ≡ 1: every sample replaces the value
            return np.ones(np.shape(n))
        self._grow(int((n + m).max()) + 1)
        safe_n = np.maximum(n, 1)
        kept = np.exp(self.log_keep[n + m] - self.log_keep[safe_n])
        return np.where(n == 0, 1.0, 1.0 - kept)


def _walk(mdp: FourRooms, cfg: TabularQConfig, first_batch: int) -> Iterator[tuple[IntArray, IntArray, IntArray]]:
    """The seeded stream of batches (states, actions, next states), each shape (num_envs,), from ``first_batch``.

    Episode block b (batches b·L … b·L + L − 1, L = ``episode_length``) draws everything from
    ``default_rng([seed, b])``: uniform start states, then per batch uniform actions and next
    states. Starting mid-block replays the block's draws up to ``first_batch`` (walkers only, no
    learning), so the stream is the same however it is cut.
    """
    S, A = mdp.num_states, mdp.num_actions
    B, L = cfg.num_envs, cfg.episode_length
    block = first_batch // L
    while True:
        rng = np.random.default_rng([cfg.seed, block])
        states = rng.integers(S, size=B)
        for t in range(L):
            actions = rng.integers(A, size=B)
            next_states = mdp.sample_next(states, actions, rng)
            if block * L + t >= first_batch:
                yield states, actions, next_states
            states = next_states
        block += 1


def _replay_visits(mdp: FourRooms, cfg: TabularQConfig, num_steps: int) -> IntArray:
    """Visit counts (S, A) of the first ``num_steps`` transitions, re-derived by replaying the walk."""
    S, A = mdp.num_states, mdp.num_actions
    counts = np.zeros(S * A, dtype=np.int64)
    walk = _walk(mdp, cfg, 0)
    for first in range(0, num_steps, cfg.num_envs):
        states, actions, _ = next(walk)
        n = min(cfg.num_envs, num_steps - first)
        counts += np.bincount(states[:n] * A + actions[:n], minlength=S * A)
    return counts.reshape(S, A)


def _check_goals(mdp: FourRooms, goals: GoalSet) -> tuple[FloatArray, FloatArray]:
    rewards = as_float_array(goals.rewards, "goals.rewards", ndim=2)
    check_shape(rewards, "goals.rewards", (mdp.num_states, None), ("S", "G"))
    dones = as_float_array(goals.dones, "goals.dones", ndim=2)
    check_shape(dones, "goals.dones", rewards.shape, ("S", "G"))
    if not np.isin(dones, (0.0, 1.0)).all():
        raise PlrayInputError("goals.dones: entries must be 0 or 1")
    return rewards, dones


def train_tabular_q(
    mdp: FourRooms,
    goals: GoalSet,
    gamma: float,
    cfg: TabularQConfig,
    *,
    snapshot_steps: Sequence[int] = (),
    progress: Callable[[int], None] | None = None,
    initial_q: FloatArray | None = None,
    initial_visits: IntArray | None = None,
    start_step: int = 0,
) -> TabularQResult:
    """Train a goal-conditioned Q table on sampled FourRooms transitions (see the module docstring).

    Args:
        mdp: the FourRooms MDP; only :meth:`FourRooms.sample_next` is used.
        goals: the goal set: rewards and terminations on arrival, shapes (S, G).
        gamma: discount in (0, 1).
        cfg: the training configuration; ``cfg.env_steps`` is the total, counted from step 0.
        snapshot_steps: env steps at which to keep a copy of Q and of the visit counts, each in
            [1, cfg.env_steps]; those at or before ``start_step`` are skipped.
        progress: called with the env step after every episode block and at the end.
        initial_q: the table to resume from (a snapshot), shape (S, A, G); default zeros.
        initial_visits: the visit counts (S, A) that go with ``initial_q``; None re-derives them by
            replaying the seeded walk up to ``start_step`` (sampling only: about half the cost of
            training those steps with a few goals, less with many).
        start_step: env steps already behind ``initial_q`` (the snapshot's key). Training continues
            from the batch boundary ⌈start_step / num_envs⌉ · num_envs; with the snapshot's Q and visits
            the result equals the uninterrupted run's.

    Returns:
        a :class:`TabularQResult`.
    """
    cfg.validate()
    gamma = check_gamma(gamma)
    rewards, dones = _check_goals(mdp, goals)
    S, A, G = mdp.num_states, mdp.num_actions, rewards.shape[1]
    B, total = cfg.num_envs, cfg.env_steps
    if not _is_int(start_step) or not 0 <= start_step <= total:
        raise PlrayInputError(f"start_step: must be an integer in [0, env_steps = {total}], got {start_step!r}")
    if start_step > 0 and initial_q is None:
        raise PlrayInputError("initial_q: resuming (start_step > 0) needs the snapshot's Q table")
    first_batch = -(-start_step // B)
    done_steps = min(first_batch * B, total)

    Q, visits = _initial_state(mdp, cfg, (S, A, G), initial_q, initial_visits, start_step, done_steps)

    wanted = sorted({int(k) for k in snapshot_steps})
    if wanted and (wanted[0] < 1 or wanted[-1] > total):
        raise PlrayInputError(f"snapshot_steps: each must lie in [1, env_steps = {total}], got {wanted}")
    wanted = [k for k in wanted if k > start_step]

    start = time.perf_counter()
    steps, snapshots, snapshot_visits = _q_learning(
        mdp, cfg, gamma, Q, visits, (rewards, dones), first_batch, done_steps, wanted, progress
    )
    seconds = time.perf_counter() - start
    run = steps - done_steps
    return TabularQResult(
        Q=Q,
        visits=visits,
        env_steps=steps,
        seconds=seconds,
        steps_per_s=run / seconds if seconds > 0 else 0.0,
        snapshots=snapshots,
        snapshot_visits=snapshot_visits,
    )


def _initial_state(
    mdp: FourRooms,
    cfg: TabularQConfig,
    shape: tuple[int, int, int],
    initial_q: FloatArray | None,
    initial_visits: IntArray | None,
    start_step: int,
    done_steps: int,
) -> tuple[FloatArray, IntArray]:
    """The Q table (S, A, G) and visit counts (S, A) to train from: zeros, or a checked snapshot."""
    S, A, G = shape
    if initial_q is None:
        Q = np.zeros((S, A, G))
    else:
        Q = as_float_array(initial_q, "initial_q", ndim=3).copy()
        check_shape(Q, "initial_q", (S, A, G), ("S", "A", "G"))
    if initial_visits is None:
        return Q, _replay_visits(mdp, cfg, done_steps)
    visits = np.asarray(initial_visits)
    if not np.issubdtype(visits.dtype, np.integer) or (visits < 0).any():
        raise PlrayInputError("initial_visits: must be non-negative integer counts")
    check_shape(visits, "initial_visits", (S, A), ("S", "A"))
    visits = visits.astype(np.int64).copy()
    if int(visits.sum()) != done_steps:
        raise PlrayInputError(
            f"initial_visits: count {int(visits.sum())} transitions, but resuming at start_step = {start_step} "
            f"means {done_steps} (the batch boundary at or after it); pass the snapshot's own visits"
        )
    return Q, visits


def _q_learning(
    mdp: FourRooms,
    cfg: TabularQConfig,
    gamma: float,
    Q: FloatArray,
    visits: IntArray,
    goals: tuple[FloatArray, FloatArray],
    first_batch: int,
    done_steps: int,
    wanted: list[int],
    progress: Callable[[int], None] | None,
) -> tuple[int, dict[int, FloatArray], dict[int, IntArray]]:
    """Batched Q-learning on the seeded walk, in place on ``Q`` (S, A, G) and ``visits`` (S, A).

    Args:
        goals: rewards and dones on arrival, each (S, G).
        wanted: env steps at which to snapshot Q and the visits (ascending; consumed).

    Returns:
        (env steps reached, snapshots of Q by step, snapshots of the visits by step).
    """
    rewards, dones = goals
    S, A, G = Q.shape
    B, total = cfg.num_envs, cfg.env_steps
    step_sizes = _StepSizes(float(cfg.lr_power), cfg.offset(gamma), float(cfg.lr_min))
    Qf = Q.reshape(S * A, G)  # a view: updates write into Q
    visits_flat = visits.reshape(S * A)
    continuation = gamma * (1.0 - dones)
    goal_index = np.arange(G)
    snapshots: dict[int, FloatArray] = {}
    snapshot_visits: dict[int, IntArray] = {}
    say = progress or (lambda _step: None)
    block_steps = B * cfg.episode_length
    steps = done_steps
    walk = _walk(mdp, cfg, first_batch)
    while steps < total:
        states, actions, next_states = next(walk)
        n = min(B, total - steps)
        rows = states[:n] * A + actions[:n]
        targets = rewards + continuation * Q.max(axis=1)  # (S, G): r + γ(1 − done) max_a' Q, per next state
        td = targets[next_states[:n]] - Qf[rows]  # (n, G)
        counts = np.bincount(rows, minlength=S * A)
        td_sum = np.bincount((rows[:, None] * G + goal_index).ravel(), weights=td.ravel(), minlength=S * A * G)
        touched = np.flatnonzero(counts)
        m = counts[touched]
        rate = step_sizes.effective(visits_flat[touched], m) / m
        Qf[touched] += rate[:, None] * td_sum.reshape(S * A, G)[touched]
        visits_flat[touched] += m
        steps += n
        while wanted and wanted[0] <= steps:
            key = wanted.pop(0)
            snapshots[key] = Q.copy()
            snapshot_visits[key] = visits.copy()
        if steps % block_steps == 0:
            say(steps)
    say(steps)
    return steps, snapshots, snapshot_visits


# --------------------------------------------------------------------------- artifact
def goal_set_kwargs(num_goals: int, goals: GoalSet) -> dict[str, Any]:
    """The :meth:`FourRooms.goal_set` / :class:`FourRoomsTask` arguments that rebuild ``goals``."""
    params = dict(goals.params)
    if not params.get("terminate_on_goal", True):
        raise PlrayInputError("goals: a goal set without termination on the goal cannot be rebuilt as a FourRoomsTask")
    kwargs: dict[str, Any] = {
        "num_goals": int(num_goals),
        "goal_family": goals.family,
        "placement": params.get("placement", "random"),
        "seed": int(params.get("seed", 0)),
    }
    for name in ("noise", "sigma"):
        if name in params:
            kwargs[name] = float(params[name])
    return kwargs


def _rebuild_goals(variant: str, kwargs: Mapping[str, Any]) -> GoalSet:
    args = dict(kwargs)
    return FourRooms(variant).goal_set(args.pop("num_goals"), args.pop("goal_family"), **args)


def _same_goals(a: GoalSet, b: GoalSet) -> bool:
    return (
        np.array_equal(a.states, b.states)
        and a.rewards.shape == b.rewards.shape
        and np.allclose(a.rewards, b.rewards, rtol=0, atol=1e-12)
        and np.array_equal(a.dones, b.dones)
    )


def save_tabular_agent(
    out_dir: str | os.PathLike[str],
    result: TabularQResult,
    mdp_variant: str,
    goals: GoalSet,
    gamma: float,
    metadata: Mapping[str, Any] | None = None,
    *,
    config: TabularQConfig | None = None,
) -> Path:
    """Write the table as a pickle-free agent artifact (kind ``"agent"``, algorithm ``"tabular-q"``).

    Tensors: ``q/table`` (S, A, G), ``q/visits`` (S, A), and the goal set it was trained on,
    ``goals/states`` (G,), ``goals/rewards`` and ``goals/dones`` (S, G), which loading checks against
    the goal set rebuilt from the manifest. Manifest: ``algorithm``, ``task`` (``"fourrooms"``) and
    ``task_kwargs`` (variant, num_goals, goal_family, placement, seed, noise/sigma: the
    :class:`FourRoomsTask` arguments), ``goals`` (family, params, goal states), ``gamma``,
    ``env_steps``, ``config`` and the caller's ``metadata``.

    Args:
        out_dir: the artifact directory (replaced if it exists).
        result: the trained table.
        mdp_variant: the FourRooms variant it was trained on.
        goals: its goal set; must be one :meth:`FourRooms.goal_set` builds from its params.
        gamma: its discount.
        metadata: JSON-ready extra fields (training metrics, provenance).
        config: the training configuration, recorded when given.

    Returns:
        the artifact directory.
    """
    gamma = check_gamma(gamma)
    mdp = FourRooms(mdp_variant)
    G = goals.num_goals
    Q = as_float_array(result.Q, "result.Q", ndim=3)
    check_shape(Q, "result.Q", (mdp.num_states, mdp.num_actions, G), ("S", "A", "G"))
    kwargs = goal_set_kwargs(G, goals)
    if not _same_goals(_rebuild_goals(mdp_variant, kwargs), goals):
        raise PlrayInputError(
            f"goals: the goal set is not the one FourRooms.goal_set builds from its parameters {kwargs}; "
            "an artifact must be rebuildable from its manifest"
        )
    manifest: dict[str, Any] = {
        "algorithm": ALGORITHM,
        "task": TASK_NAME,
        "task_kwargs": {"variant": mdp_variant, **kwargs},
        "goals": {"family": goals.family, "params": dict(goals.params), "states": goals.states.tolist()},
        "gamma": gamma,
        "value_mode": "max",
        "env_steps": int(result.env_steps),
        "metrics": {
            name: value if math.isfinite(value) else None
            for name, value in (("seconds", float(result.seconds)), ("steps_per_s", float(result.steps_per_s)))
        },
        "metadata": dict(metadata or {}),
    }
    if config is not None:
        manifest["config"] = asdict(config)
    arrays = {
        "q/table": Q,
        "q/visits": np.asarray(result.visits, dtype=np.int64),
        "goals/states": np.asarray(goals.states, dtype=np.int64),
        "goals/rewards": np.asarray(goals.rewards, dtype=np.float64),
        "goals/dones": np.asarray(goals.dones, dtype=np.float64),
    }
    return save_artifact(out_dir, "agent", arrays, manifest)


def load_tabular_agent(path: str | os.PathLike[str]) -> tuple[FloatArray, dict[str, Any]]:
    """Read a ``tabular-q`` agent artifact: (Q of shape (S, A, G), manifest).

    Verifies the artifact (checksums, tensor list), that it is a ``tabular-q`` agent, the table's
    shape, and that the goal set rebuilt from the manifest is the one stored with the table.

    Raises:
        ArtifactError: the artifact is missing, corrupt, of another algorithm, or inconsistent.
    """
    manifest, arrays = load_artifact(path, kind="agent")
    if manifest.get("algorithm") != ALGORITHM:
        raise ArtifactError(f"{path}: a {manifest.get('algorithm')!r} agent artifact, expected {ALGORITHM!r}")
    try:
        kwargs = dict(manifest["task_kwargs"])
        variant = kwargs.pop("variant")
        goals = _rebuild_goals(variant, kwargs)
        Q = arrays["q/table"].astype(np.float64)
        stored = GoalSet(
            family=goals.family,
            states=arrays["goals/states"],
            rewards=arrays["goals/rewards"],
            dones=arrays["goals/dones"],
        )
        check_gamma(manifest["gamma"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: the manifest does not describe a FourRooms goal set and table ({exc})") from exc
    expected = (goals.rewards.shape[0], FourRooms.num_actions, goals.num_goals)
    if Q.shape != expected:
        raise ArtifactError(f"{path}: q/table has shape {Q.shape}, the manifest's task needs (S, A, G) = {expected}")
    if not _same_goals(goals, stored):
        raise ArtifactError(
            f"{path}: the goal set rebuilt from the manifest differs from the one stored with the table "
            "(a different plray version, or a modified manifest)"
        )
    return Q, manifest
