"""The experiment schema: one typed, validated description from which ``plray run``, Tune, Ray Jobs
and KubeRay all start.

An experiment is a set of *cells*, each one agent trained on one reward-function set::

    cell = (variant, num_goals, goal_family, placement, seed)

The cells are the union of the ``sweep`` grids (each grid a cartesian product of its lists) times
``seeds``. A grid may instead list goal *mixtures* (tasks whose pipeline has ``mixtures``: the
Reacher): ``{variant: [none], mixture: [fingertip16+angle4]}`` gives one cell per label with
``goal_family`` ``mixture``, ``placement`` the label and ``num_goals`` its size (the key
``none-g20-mixture-fingertip16+angle4-s0``); a label is ``+``-joined parts ``<kind><G>`` (G spread
goals) or ``<kind>-<placement><G>`` (paper, spread, random), read by
:func:`plray.envs.goalsets.mixture_spec_from_label`, the cell's seed seeding every part.

Every cell trains one agent (a Tune trial), and every agent is inverted with every extraction
method (one job on the extraction actor pool). Keys derived from the cell name every artifact, so
a resumed run finds what is already done.

Example (``configs/experiments/demo.yaml``)::

    name: demo
    task: fourrooms
    sweep:
      - {variant: [windy], num_goals: [1, 4]}
    seeds: [0, 1]
    agent: {kind: tabular-q, tabular: {env_steps: 1000000}}
    extraction: {methods: [closed-form, simplex-local]}
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from plray.envs.goalsets import MIXTURE  # the goal_family of a mixture cell (its placement: the label)
from plray.experiments.taskapi import TaskPipeline
from plray.experiments.tasks import PIPELINES
from plray.utils.schema import ConfigError, from_mapping, load_yaml, non_negative, positive

TASKS = tuple(PIPELINES)
"""Tasks the pipeline runs end to end: those with a :class:`~plray.experiments.taskapi.TaskPipeline`,
whose vocabulary (variants, goal families, agent kinds, methods) :meth:`ExperimentConfig.validate` checks."""


AGENT_KINDS = ("tabular-q", "exact", "rllib")
"""``tabular-q``: goal-conditioned tabular Q-learning from sampled transitions (FourRooms);
``exact``: Q* by value iteration, optionally perturbed (FourRooms; a reference, not a learner);
``rllib``: DQN with hindsight relabelling on RLlib (continuous tasks)."""


@dataclass(frozen=True)
class SweepGrid:
    """One grid of the sweep: the cartesian product of its lists."""

    variant: list[str] = field(default_factory=lambda: ["deterministic"])
    """FourRooms variants (deterministic, windy, teleport); continuous tasks take ``[none]``."""
    num_goals: list[int] | None = None
    """|G|, the number of reward functions the agent is trained on; None: ``[4]`` (a mixture grid:
    each mixture's own size, which a given list must hold)."""
    goal_family: list[str] | None = None
    """Reward families; None: ``goals.family``."""
    placement: list[str] | None = None
    """Goal placements (random: seeded draw, spread: evenly spaced); None: ``goals.placement``."""
    mixture: list[str] | None = None
    """Goal mixtures by label, e.g. ``fingertip16+angle4`` (16 spread fingertip and 4 spread angle
    goals; parts ``<kind><G>`` or ``<kind>-<placement><G>``); a grid with mixtures takes no
    ``goal_family`` or ``placement``. Tasks whose pipeline has ``mixtures`` only (the Reacher)."""

    @property
    def goal_counts(self) -> list[int]:
        """``num_goals``, default ``[4]``."""
        return [4] if self.num_goals is None else list(self.num_goals)


@dataclass(frozen=True)
class GoalsConfig:
    """Defaults for the reward-function sets."""

    family: str = "generic"
    """FourRooms: generic (indicator + U[-noise, noise]), indicator or gaussian; continuous: sparse."""
    placement: str = "random"
    """How goal states are chosen: ``random`` (a seeded draw), ``spread`` (evenly spaced); the Reacher
    also ``paper`` (the paper's four fingertip goals) and ``distribution`` (every episode draws its own
    goal from ``region``; |G| goals drawn from it are the agent's finite set)."""
    region: dict[str, Any] | None = None
    """Reacher, placement ``distribution``: the region goals are drawn from, a
    :class:`plray.envs.goalsets.GoalRegion` spec (default: the reachable fingertip disc ‖g‖ <= 2, or
    the whole torus of angles)."""
    radius: float | None = None
    """Reacher, placement ``spread``: radius of the fingertip ring (default 1, the paper's)."""
    noise: float = field(default=0.1, metadata={"check": non_negative})
    """η of the generic family's U[-η, η] perturbation (FourRooms)."""


@dataclass(frozen=True)
class TabularAgentConfig:
    """Goal-conditioned tabular Q-learning (``agent.kind: tabular-q``); see :mod:`plray.agents.tabular`."""

    env_steps: int = field(default=1_000_000, metadata={"check": positive})
    """Environment transitions per agent (1e6 suffices for windy |G| = 4 and teleport |G| = 20)."""
    num_envs: int = field(default=256, metadata={"check": positive})
    """Parallel walkers."""
    episode_length: int = field(default=10, metadata={"check": positive})
    """Steps before a walker restarts from a uniform random state (short: teleport cells are rare)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Further :class:`plray.agents.tabular.TabularQConfig` fields (step-size schedule)."""
    by_variant: dict[str, dict[str, Any]] = field(default_factory=lambda: {"deterministic": {"lr_min": 1.0}})
    """Per-variant overrides of all the above, e.g. ``{deterministic: {lr_min: 1.0}}``: a step size of
    1 is exact on deterministic dynamics, while stochastic ones need decaying steps."""


@dataclass(frozen=True)
class RLlibAgentConfig:
    """An RLlib agent (``agent.kind: rllib``): an agent config file plus overrides."""

    config: str = "configs/agents/mountaincar-position.yaml"
    """Path of a ``plray train`` config (relative paths resolve against the experiment file); the run
    reads it into ``overrides`` and stores ``""`` here, so its own config.yaml is self-contained."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Nested overrides of that config, e.g. ``{training: {total_env_steps: 200000}}``."""


@dataclass(frozen=True)
class AgentSection:
    """How each cell's agent is obtained."""

    kind: Literal["tabular-q", "exact", "rllib"] = "tabular-q"
    """tabular-q (learned from transitions), exact (Q* by value iteration) or rllib (DQN + HER)."""
    tabular: TabularAgentConfig = field(default_factory=TabularAgentConfig)
    """Settings of the tabular learner."""
    exact_noise: float = field(default=0.0, metadata={"check": non_negative})
    """``exact`` only: ε, the ℓ1 norm over goals of noise added to each Q(s, a, ·)."""
    rllib: RLlibAgentConfig = field(default_factory=RLlibAgentConfig)
    """Settings of the RLlib agent."""


@dataclass(frozen=True)
class EnsembleConfig:
    """An ensemble world model per (cell without seed, method) from the extractions of every seed."""

    enabled: bool = True
    """Build ensembles (needs at least two seeds)."""


@dataclass(frozen=True)
class ExtractionSection:
    """What the extraction actors run on every agent."""

    methods: list[str] = field(default_factory=lambda: ["closed-form", "simplex-local"])
    """FourRooms: closed-form, simplex, simplex-local, column-match, sampled, wvf;
    continuous: deterministic, gaussian."""
    sampled_updates: int = field(default=20_000, metadata={"check": positive})
    """Updates of the ``sampled`` method."""
    checkpoint_every: int = field(default=1000, metadata={"check": positive})
    """``sampled`` and neural P-learning save their whole state every this many updates (steps), so
    a restarted actor resumes the job instead of starting it again."""
    goal_subsets: list[int] = field(default_factory=list)
    """Also extract from seeded random subsets of this many of each agent's goals (FourRooms):
    how many goals does P-learning need from one agent trained on many?"""
    checkpoints: list[int] = field(default_factory=list)
    """Also extract from each tabular agent's snapshot at these env steps (kernel error over training)."""
    neural: dict[str, Any] = field(default_factory=dict)
    """Overrides of :class:`plray.core.neural.NeuralPConfig` (steps, batch_size, lr, ...)."""
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    """Ensembles over seeds, with disagreement reported as uncertainty."""


@dataclass(frozen=True)
class EvaluationSection:
    """How world models are scored against the true dynamics."""

    unseen: bool = True
    """Plan in each world model for the unseen goals and compare R_WM with R*."""
    within: float = field(default=0.05, metadata={"check": positive})
    """R_WM counts as quasi-optimal when R_WM / R* >= 1 - within (the paper: 5%)."""
    resolution: int | None = None
    """Continuous tasks: grid points per dim for unseen-goal value iteration; None: task default."""
    num_starts: int = field(default=512, metadata={"check": positive})
    """Continuous tasks: rollout start states per unseen goal."""


@dataclass(frozen=True)
class ResourcesSection:
    """What the run asks of Ray."""

    num_cpus: int | None = None
    """CPUs of the embedded local Ray (None: all of this machine's); ignored with ``--address``."""
    cpus_per_trial: float = field(default=1.0, metadata={"check": positive})
    """CPUs reserved by each training trial."""
    max_concurrent_trials: int = field(default=0, metadata={"check": non_negative})
    """At most this many trials at once (0: as many as the CPUs allow)."""
    max_failures: int = field(default=2, metadata={"check": non_negative})
    """Retries of a failed trial (resuming from its checkpoints) before it is reported as failed."""
    num_actors: int = field(default=2, metadata={"check": positive})
    """Extraction actors in the pool."""
    cpus_per_actor: float = field(default=1.0, metadata={"check": positive})
    """CPUs reserved by each extraction actor."""
    actor_restarts: int = field(default=3, metadata={"check": non_negative})
    """How many times a dead extraction actor is restarted (its job is then retried)."""


@dataclass(frozen=True)
class Cell:
    """One agent: a reward-function set and a seed."""

    variant: str
    num_goals: int
    goal_family: str
    placement: str
    seed: int

    @property
    def key(self) -> str:
        """File-name-safe id, e.g. ``windy-g4-generic-random-s0``."""
        return f"{self.variant}-g{self.num_goals}-{self.goal_family}-{self.placement}-s{self.seed}"

    @property
    def group(self) -> str:
        """The key without the seed: cells that differ only in seed form one ensemble."""
        return self.key.rsplit("-s", 1)[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "num_goals": self.num_goals,
            "goal_family": self.goal_family,
            "placement": self.placement,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment: which agents to train, how to invert them, how to score them."""

    name: str
    """Experiment name (letters, digits, ``-`` and ``_``); the default run directory is runs/<name>."""
    task: str = "fourrooms"
    """fourrooms, mountaincar-position or mountaincar-velocity."""
    sweep: list[SweepGrid] = field(default_factory=lambda: [SweepGrid()])
    """Grids of reward-function sets; the experiment's cells are their union."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Seeds per cell (agent training, goal placement, reward noise, extraction)."""
    goals: GoalsConfig = field(default_factory=GoalsConfig)
    """Defaults for the goal sets."""
    agent: AgentSection = field(default_factory=AgentSection)
    """How agents are obtained."""
    extraction: ExtractionSection = field(default_factory=ExtractionSection)
    """Extraction methods and the actor pool's checkpointing."""
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    """Scoring against the true dynamics."""
    resources: ResourcesSection = field(default_factory=ResourcesSection)
    """CPUs, concurrency, retries."""
    gamma: float | None = None
    """Discount of agents and evaluation; None: the task's (FourRooms 0.95, MountainCar 0.99)."""

    # ------------------------------------------------------------------ validation
    def validate(self) -> ExperimentConfig:
        """Check the combinations one field's type cannot, naming the field and the allowed values."""
        import re

        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", self.name):
            raise ConfigError(f"name: {self.name!r} must be 1-64 letters, digits, '-' or '_'")
        if self.task not in TASKS:
            raise ConfigError(f"task: {self.task!r} is not supported; choose one of {', '.join(TASKS)}")
        if not self.sweep:
            raise ConfigError("sweep: must hold at least one grid")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ConfigError(f"seeds: must be distinct integers >= 0, got {self.seeds}")
        if self.gamma is not None and not 0 < self.gamma < 1:
            raise ConfigError(f"gamma: must lie in (0, 1), got {self.gamma}")
        task = PIPELINES[self.task]
        families = task.goal_families
        for i, grid in enumerate(self.sweep):
            self._check_grid(f"sweep[{i}]", grid, task)
            self._check_mixtures(f"sweep[{i}]", grid, task)
        if self.goals.placement not in task.placements:
            raise ConfigError(
                f"goals.placement: {self.goals.placement!r} is not allowed for {self.task}; "
                f"choose one of {', '.join(task.placements)}"
            )
        if self.goals.family not in families:
            raise ConfigError(
                f"goals.family: {self.goals.family!r} is not allowed for {self.task}; "
                f"choose one of {', '.join(families)}"
            )
        kinds = task.agent_kinds
        if self.agent.kind not in kinds:
            raise ConfigError(
                f"agent.kind: {self.agent.kind!r} is not available for {self.task}; "
                f"choose one of {', '.join(kinds)}"
            )
        self._check_extraction(task)
        task.check(self)
        return self

    def _check_extraction(self, task: TaskPipeline) -> None:
        """``extraction``: methods the task has, goal subsets only where the task inverts them."""
        methods = task.methods
        if not self.extraction.methods:
            raise ConfigError("extraction.methods: must list at least one method")
        for j, m in enumerate(self.extraction.methods):
            if m not in methods:
                raise ConfigError(
                    f"extraction.methods[{j}]: {m!r} is not available for {self.task}; "
                    f"choose one of {', '.join(methods)}"
                )
        if len(set(self.extraction.methods)) != len(self.extraction.methods):
            raise ConfigError(f"extraction.methods: lists a method twice: {self.extraction.methods}")
        for name in ("goal_subsets", "checkpoints"):
            values = getattr(self.extraction, name)
            if values and min(values) < 1:
                raise ConfigError(f"extraction.{name}: must be integers >= 1, got {values}")
        if self.extraction.goal_subsets and not task.goal_subsets:
            raise ConfigError("extraction.goal_subsets: only FourRooms agents can be inverted on goal subsets")
        if self.extraction.checkpoints and self.agent.kind != "tabular-q":
            raise ConfigError("extraction.checkpoints: only tabular-q agents keep training snapshots")

    def _check_grid(self, where: str, grid: Any, task: TaskPipeline) -> None:
        """One sweep grid's values against the task's variants, goal counts, families, placements."""
        variants, families = task.variants, task.goal_families
        for j, v in enumerate(grid.variant):
            if v not in variants:
                raise ConfigError(
                    f"{where}.variant[{j}]: {v!r} is not allowed for {self.task}; "
                    f"choose one of {', '.join(variants)}"
                )
        limit = task.max_goals
        for j, n in enumerate(grid.goal_counts):
            if not 1 <= n <= limit:
                raise ConfigError(f"{where}.num_goals[{j}]: must be between 1 and {limit}, got {n}")
        for j, fam in enumerate(grid.goal_family or []):
            if fam == MIXTURE:
                raise ConfigError(
                    f"{where}.goal_family[{j}]: a mixture is a sweep[].mixture label, e.g. fingertip16+angle4"
                )
            if fam not in families:
                raise ConfigError(
                    f"{where}.goal_family[{j}]: {fam!r} is not allowed for {self.task}; "
                    f"choose one of {', '.join(families)}"
                )
        for j, pl in enumerate(grid.placement or []):
            if pl not in task.placements:
                raise ConfigError(
                    f"{where}.placement[{j}]: {pl!r} is not allowed for {self.task}; "
                    f"choose one of {', '.join(task.placements)}"
                )
        for name, values in (("variant", grid.variant), ("num_goals", grid.goal_counts)):
            if not values:
                raise ConfigError(f"{where}.{name}: must list at least one value")

    def _check_mixtures(self, where: str, grid: SweepGrid, task: TaskPipeline) -> None:
        """A grid's ``mixture`` labels: a task with mixtures, well-formed labels, no family or placement."""
        from plray.envs.goalsets import mixture_label_size
        from plray.utils.validation import PlrayInputError

        if grid.mixture is None:
            return
        if not task.mixtures:
            raise ConfigError(f"{where}.mixture: {self.task} takes no goal mixtures")
        if not grid.mixture:
            raise ConfigError(f"{where}.mixture: must list at least one mixture label")
        if grid.goal_family is not None or grid.placement is not None:
            raise ConfigError(f"{where}.mixture: a mixture grid takes no goal_family or placement (its label says)")
        for j, label in enumerate(grid.mixture):
            try:
                size = mixture_label_size(label)
            except PlrayInputError as exc:
                raise ConfigError(f"{where}.mixture[{j}]: {exc}") from exc
            if grid.num_goals is not None and size not in grid.num_goals:
                raise ConfigError(
                    f"{where}.mixture[{j}]: {label!r} has {size} goals, not one of num_goals {grid.num_goals}"
                )
            if size > task.max_goals:
                raise ConfigError(f"{where}.mixture[{j}]: {label!r} has {size} goals, more than {task.max_goals}")

    def tabular_config(self, variant: str | None = None) -> Any:
        """The :class:`plray.agents.tabular.TabularQConfig` of the tabular agents on ``variant`` (seed 0)."""
        from plray.agents.tabular import TabularQConfig
        from plray.utils.validation import PlrayInputError

        t = self.agent.tabular
        fields = {"env_steps": t.env_steps, "num_envs": t.num_envs, "episode_length": t.episode_length, **t.options}
        extra = t.by_variant.get(variant, {}) if variant else {}
        allowed = set(TabularQConfig.__dataclass_fields__) - {"seed"}
        for path, given in (("agent.tabular.options", t.options), (f"agent.tabular.by_variant.{variant}", extra)):
            unknown = sorted(set(given) - allowed)
            if unknown:
                raise ConfigError(f"{path}.{unknown[0]}: unknown field; allowed: {', '.join(sorted(allowed))}")
        try:
            return TabularQConfig(**(fields | extra)).validate()
        except (TypeError, PlrayInputError) as exc:
            where = f"agent.tabular.by_variant.{variant}" if extra else "agent.tabular"
            raise ConfigError(f"{where}: {exc}") from exc

    def neural_overrides_check(self) -> None:
        from plray.core.neural import NeuralPConfig

        allowed = set(NeuralPConfig.__dataclass_fields__)
        unknown = sorted(set(self.extraction.neural) - allowed)
        if unknown:
            raise ConfigError(f"extraction.neural.{unknown[0]}: unknown field; allowed: {', '.join(sorted(allowed))}")

    # ------------------------------------------------------------------ cells
    def cells(self) -> list[Cell]:
        """Every cell, in a stable order, without duplicates."""
        from plray.envs.goalsets import mixture_label_size

        out: dict[str, Cell] = {}
        for grid in self.sweep:
            if grid.mixture is not None:
                for v, label, seed in itertools.product(grid.variant, grid.mixture, self.seeds):
                    cell = Cell(v, mixture_label_size(label), MIXTURE, label, int(seed))
                    out.setdefault(cell.key, cell)
                continue
            families = grid.goal_family or [self.goals.family]
            placements = grid.placement or [self.goals.placement]
            for v, n, fam, pl, seed in itertools.product(
                grid.variant, grid.goal_counts, families, placements, self.seeds
            ):
                cell = Cell(v, int(n), fam, pl, int(seed))
                out.setdefault(cell.key, cell)
        return list(out.values())


def load_experiment(path: Any) -> ExperimentConfig:
    """Read and validate an experiment YAML; errors name the file and the field."""
    return load_yaml(ExperimentConfig, path)


def experiment_from_mapping(data: Any) -> ExperimentConfig:
    """Validate an experiment given as plain data (as Tune and Ray Jobs pass it around)."""
    return from_mapping(ExperimentConfig, data)
