"""Training goal sets as first-class, validated objects for the continuous tasks.

A :class:`GoalSet` is task-independent data (what a YAML ``task_kwargs: {goals: {...}}`` holds): a
goal *kind* (which goal space: the Reacher's ``fingertip`` or ``angle``, MountainCar's ``position``
or ``velocity``), a *placement* of a finite set (``paper``, ``spread``, ``random``, ``explicit``)
and optionally a *distribution*, a :class:`GoalRegion` from which every episode samples its own
goal (hindsight relabelling then draws ``random`` goals from the same region). Each task that
takes goal sets declares its kinds as a ``goal_kinds`` mapping of :class:`GoalKind` (goal dim,
tolerance, wrapped distance, the paper's set, the spread rule, the domain of random draws, and the
unseen goals to keep out); :meth:`GoalSet.build` turns a goal set into the task's training goals
(G, k) and :meth:`GoalSet.sample` draws per-episode goals (n, k) from its distribution.

Keeping the paper's unseen goals out of every training set
----------------------------------------------------------
Each kind lists the unseen goals whose success region lives in its own goal space, as
:class:`ExcludedBall` data declared next to the task (``REACHER_UNSEEN_BALLS`` in
:mod:`plray.envs.reacher`, ``MOUNTAINCAR_UNSEEN_BALLS`` in :mod:`plray.envs.mountaincar`): a
centre c and radius b, the unseen reward being 1[‖achieved − c‖ < b]. A training goal g with
tolerance a rewards the open ball ‖achieved − g‖ < a, which meets the unseen goal's open ball iff
‖g − c‖ < a + b (wrapped differences for angles). So a goal is *excluded* when
‖g − c‖ < a + b − :data:`EXCLUSION_SLACK` (the slack only absorbs float rounding: the paper's x = 0.6
goal lies exactly a + b = 0.2 from the shortest-path target x = 0.4, touching, not overlapping).

* ``random`` placements and distribution draws use rejection sampling: a drawn goal that is
  excluded is drawn again (an error after :data:`MAX_REJECTION_ROUNDS` rounds of a region that is
  (almost) wholly excluded);
* ``paper``, ``spread`` and ``explicit`` sets raise :class:`PlrayInputError` naming the goal and
  the unseen goal it would coincide with.

Unseen goals in *another* goal space than the kind's cannot coincide with a training goal of that
kind (a fingertip goal rewards every velocity, so it never *is* the target-velocity reward), and
MountainCar's gentle car is not a plain sparse goal (|v| > 0.05 is forbidden): no position goal
equals it, and the paper's own position set holds its target x = 0.6. Hindsight relabelling with
achieved goals (``future``, ``final``, ``episode``) may still relabel with goals near an unseen goal,
as the paper's agents do: the exclusion is about the goals the agent is commanded to reach.

Goal encoding: every kind here has the goal vector of today's tasks (Reacher: the 2-D fingertip
target or the 2-D angle target; MountainCar: 1-D), so a fingertip goal set keeps the paper's
observation ``concat(observe(s), g)`` exactly.

Mixtures
--------
A :class:`GoalMixture` trains on goals of several kinds of one target dim k at once::

    goals: {kind: mixture, parts: [{kind: fingertip, placement: spread, count: 16},
                                   {kind: angle, placement: spread, count: 4}]}

Each part is an ordinary goal set of one of the task's kinds (no distribution: not supported),
built, and kept apart from the unseen goals, exactly as that set alone; the parts' goals are
concatenated in part order. A mixture goal appends the one-hot of its kind among the parts'
distinct kinds (order of first appearance), ``g = [target (k), one-hot (K)]``, so goal_dim = k + K
and only mixtures carry it. A goal of kind j is scored by that kind alone: the task's achieved goal
of kind j (``GoalTask.achieved_goal_of_kind``), the kind's tolerance and (wrapped) distance. Any
task that declares several ``goal_kinds`` of one dim and implements ``achieved_goal_of_kind`` gets
mixtures from :class:`plray.envs.base.GoalTask` with no code of its own. The short label joins the
parts' labels with ``+`` (``fingertip16+angle4``); :func:`mixture_spec_from_label` reads it back
(the experiment schema's ``sweep[].mixture`` cells).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plray.core.types import BoolArray, FloatArray
from plray.utils.validation import PlrayInputError, check_keys

PLACEMENTS: tuple[str, ...] = ("paper", "spread", "random", "explicit")
REGION_SHAPES: tuple[str, ...] = ("annulus", "box")
SPEC_KEYS: tuple[str, ...] = ("kind", "placement", "count", "seed", "radius", "values", "distribution")
REGION_KEYS: tuple[str, ...] = ("shape", "inner", "outer", "low", "high")
EXCLUSION_SLACK = 1e-9
"""Goals touching an unseen goal's ball to within this distance count as apart (float rounding)."""
MAX_REJECTION_ROUNDS = 1000
"""Rejection-sampling rounds before a region is declared (almost) wholly excluded."""
DEFAULT_DISTRIBUTION_COUNT = 8
"""Size of the finite set drawn from a distribution (greedy evaluation, input ranges) when no count is given."""


def wrap_diff(x: FloatArray) -> FloatArray:
    """Wrap differences of angles to [−π, π)."""
    return (np.asarray(x) + np.pi) % (2.0 * np.pi) - np.pi


@dataclass(frozen=True)
class ExcludedBall:
    """The success region 1[‖achieved − centre‖ < radius] of an unseen goal, in one goal space.

    Attributes:
        name: the unseen goal, e.g. ``"far_fingertip"``.
        centre: c, shape (k,).
        radius: b > 0.
    """

    name: str
    centre: tuple[float, ...]
    radius: float


@dataclass(frozen=True)
class GoalRegion:
    """A region of goal space to sample goals from uniformly (by area for an annulus).

    Attributes:
        shape: ``"annulus"`` (2-D: inner <= ‖g‖ <= outer, area-uniform; inner 0 gives a disc) or
            ``"box"`` (low <= g <= high per dim, any dim).
        inner, outer: annulus radii, 0 <= inner < outer.
        low, high: box corners, shape (k,), low < high.
    """

    shape: str = "box"
    inner: float = 0.0
    outer: float = 1.0
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.shape not in REGION_SHAPES:
            raise PlrayInputError(
                f"distribution.shape: unknown {self.shape!r}; choose one of {', '.join(REGION_SHAPES)}"
            )
        if self.shape == "annulus":
            if not (np.isfinite([self.inner, self.outer]).all() and 0.0 <= self.inner < self.outer):
                raise PlrayInputError(
                    f"distribution: an annulus needs 0 <= inner < outer, got inner={self.inner}, outer={self.outer}"
                )
        else:
            lo, hi = np.asarray(self.low, dtype=np.float64), np.asarray(self.high, dtype=np.float64)
            if lo.ndim != 1 or lo.size == 0 or lo.shape != hi.shape or not np.isfinite(np.r_[lo, hi]).all():
                raise PlrayInputError(
                    f"distribution: a box needs finite low and high of one length, got {self.low!r}, {self.high!r}"
                )
            if (lo >= hi).any():
                raise PlrayInputError(f"distribution: a box needs low < high per dim, got {self.low!r}, {self.high!r}")

    @property
    def dim(self) -> int:
        """Dimension of the region's goals."""
        return 2 if self.shape == "annulus" else len(self.low)

    def draw(self, n: int, rng: np.random.Generator) -> FloatArray:
        """n goals uniform over the region, shape (n, dim)."""
        if self.shape == "annulus":
            r = np.sqrt(rng.uniform(self.inner**2, self.outer**2, size=n))
            phi = rng.uniform(-np.pi, np.pi, size=n)
            return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=-1)
        return rng.uniform(self.low, self.high, size=(n, len(self.low)))

    def to_spec(self) -> dict[str, Any]:
        """Plain-dict form (YAML/JSON), the inverse of :func:`region_from_spec`."""
        if self.shape == "annulus":
            return {"shape": "annulus", "inner": float(self.inner), "outer": float(self.outer)}
        return {"shape": "box", "low": [float(x) for x in self.low], "high": [float(x) for x in self.high]}


def region_from_spec(spec: GoalRegion | Mapping[str, Any]) -> GoalRegion:
    """A :class:`GoalRegion` from its plain-dict form, e.g. ``{shape: annulus, inner: 0.5, outer: 1.5}``."""
    if isinstance(spec, GoalRegion):
        return spec
    if not isinstance(spec, Mapping):
        raise PlrayInputError(f"distribution: expected a mapping, got {type(spec).__name__}")
    check_keys(spec, "distribution", REGION_KEYS)
    kwargs: dict[str, Any] = {}
    try:
        for key in ("low", "high"):
            if key in spec:
                kwargs[key] = tuple(float(x) for x in np.atleast_1d(np.asarray(spec[key], dtype=np.float64)))
        for key in ("inner", "outer"):
            if key in spec:
                kwargs[key] = float(spec[key])
    except (TypeError, ValueError) as exc:
        raise PlrayInputError(f"distribution: expected numbers ({exc})") from exc
    return GoalRegion(shape=str(spec.get("shape", "box")), **kwargs)


@dataclass(frozen=True)
class GoalKind:
    """One goal space a task offers, and the rules of its goal sets.

    Attributes:
        name: e.g. ``"fingertip"``.
        dim: k, the goal dimension.
        tolerance: a, the success radius of a goal.
        wrapped: whether goal differences wrap (angle goals).
        domain: where ``random`` placements draw goals (and what a distribution should lie in).
        spread: ``spread(count, radius)``: ``count`` evenly spread goals, shape (count, k);
            ``radius`` is None unless the goal set gives one.
        paper: the paper's goal set of this kind, shape (G, k), or None if the paper has none.
        excluded: the unseen goals' success regions in this goal space.
    """

    name: str
    dim: int
    tolerance: float
    wrapped: bool
    domain: GoalRegion
    spread: Callable[[int, float | None], FloatArray]
    paper: tuple[tuple[float, ...], ...] | None = None
    excluded: tuple[ExcludedBall, ...] = ()

    def distance(self, goals: FloatArray, centre: Sequence[float] | FloatArray) -> FloatArray:
        """‖g − c‖ per goal (wrapped for angle kinds), goals (n, k), centre (k,) or (n, k) -> (n,)."""
        diff = np.asarray(goals, dtype=np.float64) - np.asarray(centre, dtype=np.float64)
        return np.linalg.norm(wrap_diff(diff) if self.wrapped else diff, axis=-1)

    def excluded_mask(self, goals: FloatArray) -> BoolArray:
        """Whether each goal's success ball meets an unseen goal's, goals (n, k) -> (n,) bool."""
        goals = np.asarray(goals, dtype=np.float64).reshape(-1, self.dim)
        out = np.zeros(len(goals), dtype=bool)
        for ball in self.excluded:
            out |= self.distance(goals, ball.centre) < self.tolerance + ball.radius - EXCLUSION_SLACK
        return out

    def overlaps(self, goals: FloatArray) -> list[str]:
        """Names of the unseen goals whose success region a goal of ``goals`` (n, k) meets."""
        goals = np.asarray(goals, dtype=np.float64).reshape(-1, self.dim)
        return [
            ball.name
            for ball in self.excluded
            if (self.distance(goals, ball.centre) < self.tolerance + ball.radius - EXCLUSION_SLACK).any()
        ]


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise PlrayInputError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class GoalSet:
    """A training goal set: kind, placement, count, seed and optionally a per-episode distribution.

    Attributes:
        kind: the goal space, one of the task's ``goal_kinds`` (Reacher: ``fingertip``, ``angle``;
            MountainCar: ``position``, ``velocity``).
        placement: ``paper`` (the paper's set of the kind), ``spread`` (evenly spread: Reacher
            fingertips on a ring of ``radius``, default 1; MountainCar evenly over the range),
            ``random`` (uniform over the kind's domain, seeded, unseen goals rejected) or
            ``explicit`` (``values``). None (resolved at construction): ``paper``, or ``random``
            with a distribution.
        count: |G|; required for ``spread`` and ``random``; ``paper`` and ``explicit`` take their
            own size (a count, if given, must match); with a distribution, the size of the finite
            set drawn from it (default :data:`DEFAULT_DISTRIBUTION_COUNT`).
        seed: seeds ``random`` placements and the finite draw from a distribution.
        radius: ``spread`` fingertip ring radius (Reacher fingertip only).
        values: ``explicit`` goals, G rows of k numbers.
        distribution: None, or the region every episode samples its goal from (rejection-sampled
            outside the unseen goals); the finite set (``build``) is then ``count`` seeded draws
            from it, used for greedy evaluation and input ranges.
    """

    kind: str
    placement: str | None = None
    count: int | None = None
    seed: int = 0
    radius: float | None = None
    values: tuple[tuple[float, ...], ...] | None = None
    distribution: GoalRegion | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise PlrayInputError(f"goals.kind: expected a goal kind name, got {self.kind!r}")
        if self.placement is not None and self.placement not in PLACEMENTS:
            raise PlrayInputError(f"goals.placement: unknown {self.placement!r}; choose one of {', '.join(PLACEMENTS)}")
        if self.count is not None:
            _check_int(self.count, "goals.count", 1)
        _check_int(self.seed, "goals.seed", 0)
        placement = self.resolved_placement
        object.__setattr__(self, "placement", placement)  # resolved once: equal sets compare equal
        if self.distribution is not None and placement != "random":
            raise PlrayInputError("goals.placement: a goal set with a distribution draws its finite set at random")
        if placement in ("spread", "random") and self.count is None and self.distribution is None:
            raise PlrayInputError(f"goals.count: placement {placement!r} needs a count")
        if (placement == "explicit") != (self.values is not None):
            raise PlrayInputError("goals.values: give values exactly when placement is 'explicit'")
        if self.radius is not None and (placement != "spread" or not np.isfinite(self.radius) or self.radius <= 0):
            raise PlrayInputError(
                f"goals.radius: a positive ring radius for placement 'spread' only, got {self.radius!r}"
            )
        if self.values is not None:
            arr = np.asarray(self.values, dtype=np.float64)
            if arr.ndim != 2 or len(arr) == 0 or not np.isfinite(arr).all():
                raise PlrayInputError(f"goals.values: expected rows of finite numbers, got {self.values!r}")
            if self.count is not None and self.count != len(arr):
                raise PlrayInputError(f"goals.count: {self.count} but {len(arr)} values")

    @property
    def resolved_placement(self) -> str:
        """The placement, with None resolved (``random`` with a distribution, else ``paper``)."""
        if self.placement is not None:
            return self.placement
        return "random" if self.distribution is not None else "paper"

    # ------------------------------------------------------------------ specs
    @classmethod
    def from_spec(cls, spec: GoalSet | Mapping[str, Any]) -> GoalSet:
        """A goal set from its YAML-friendly form, e.g. ``{kind: fingertip, count: 8, placement: spread}``.

        Raises:
            PlrayInputError: unknown keys or malformed values, naming the field.
        """
        if isinstance(spec, GoalSet):
            return spec
        if not isinstance(spec, Mapping):
            raise PlrayInputError(f"goals: expected a mapping like {{kind: fingertip}}, got {type(spec).__name__}")
        if spec.get("kind") == MIXTURE:
            raise PlrayInputError("goals: a 'mixture' is a GoalMixture, not a GoalSet (use goal_set_kwarg)")
        check_keys(spec, "goals", SPEC_KEYS)
        if "kind" not in spec:
            raise PlrayInputError("goals: missing 'kind'")
        kwargs = dict(spec)
        if kwargs.get("values") is not None:
            try:
                kwargs["values"] = tuple(tuple(float(x) for x in np.atleast_1d(row)) for row in kwargs["values"])
            except (TypeError, ValueError) as exc:
                raise PlrayInputError(f"goals.values: expected rows of numbers ({exc})") from exc
        if kwargs.get("distribution") is not None:
            kwargs["distribution"] = region_from_spec(kwargs["distribution"])
        if kwargs.get("radius") is not None:
            kwargs["radius"] = float(kwargs["radius"])
        return cls(**kwargs)

    def to_spec(self) -> dict[str, Any]:
        """Plain-dict form (YAML/JSON, the agent manifest): ``GoalSet.from_spec(gs.to_spec()) == gs``."""
        out: dict[str, Any] = {"kind": self.kind, "placement": self.resolved_placement, "seed": int(self.seed)}
        if self.count is not None:
            out["count"] = int(self.count)
        if self.radius is not None:
            out["radius"] = float(self.radius)
        if self.values is not None:
            out["values"] = [list(row) for row in self.values]
        if self.distribution is not None:
            out["distribution"] = self.distribution.to_spec()
        return out

    # ------------------------------------------------------------------ goals
    def goal_kind(self, task: Any) -> GoalKind:
        """The task's :class:`GoalKind` of this set (``task`` declares ``goal_kinds``)."""
        kinds: Mapping[str, GoalKind] | None = getattr(task, "goal_kinds", None)
        if not kinds:
            raise PlrayInputError(f"goals: task {getattr(task, 'name', task)!r} takes no goal sets")
        if self.kind not in kinds:
            raise PlrayInputError(
                f"goals.kind: task {getattr(task, 'name', task)!r} has no {self.kind!r} goals; "
                f"choose one of {', '.join(kinds)}"
            )
        kind = kinds[self.kind]
        if self.distribution is not None and self.distribution.dim != kind.dim:
            raise PlrayInputError(
                f"goals.distribution: {self.kind!r} goals are {kind.dim}-D, the region is {self.distribution.dim}-D"
            )
        return kind

    def build(self, task: Any) -> FloatArray:
        """The training goals of this set for ``task``, shape (G, k), none inside an unseen goal's region.

        Raises:
            PlrayInputError: an unknown kind for the task, a placement the kind lacks, or a
                ``paper``/``spread``/``explicit`` goal that meets an unseen goal's success region.
        """
        kind = self.goal_kind(task)
        placement = self.resolved_placement
        if placement == "random":
            region = kind.domain if self.distribution is None else self.distribution
            count = self.count if self.count is not None else DEFAULT_DISTRIBUTION_COUNT
            return _rejection_sample(kind, region, count, np.random.default_rng([self.seed, 5]))
        if placement == "paper":
            if kind.paper is None:
                raise PlrayInputError(f"goals.placement: the paper has no {kind.name!r} goal set; use spread or random")
            goals = np.array(kind.paper, dtype=np.float64)
        elif placement == "spread":
            assert self.count is not None
            goals = np.asarray(kind.spread(int(self.count), self.radius), dtype=np.float64)
        else:
            goals = np.array(self.values, dtype=np.float64)
        if goals.shape[1] != kind.dim:
            raise PlrayInputError(f"goals.values: {kind.name!r} goals have {kind.dim} numbers, got {goals.shape[1]}")
        if self.count is not None and len(goals) != self.count:
            raise PlrayInputError(
                f"goals.count: the {placement} {kind.name!r} set has {len(goals)} goals, not {self.count}"
            )
        _check_apart(kind, goals, placement)
        return goals

    def sample(self, n: int, rng: np.random.Generator, task: Any) -> FloatArray:
        """n per-episode goals from the distribution, outside every unseen goal's region, shape (n, k).

        Args:
            n: number of goals, >= 0.
            rng: the caller's generator (the env's own stream).
            task: the task (its ``goal_kinds``).
        """
        if self.distribution is None:
            raise PlrayInputError("goals: this goal set has no distribution to sample from")
        return _rejection_sample(self.goal_kind(task), self.distribution, _check_int(n, "n", 0), rng)


def _check_apart(kind: GoalKind, goals: FloatArray, placement: str) -> None:
    """Raise if a goal of a fixed set meets an unseen goal's success region."""
    for ball in kind.excluded:
        d = kind.distance(goals, ball.centre)
        bad = np.flatnonzero(d < kind.tolerance + ball.radius - EXCLUSION_SLACK)
        if bad.size:
            g = goals[bad[0]]
            raise PlrayInputError(
                f"goals: the {placement} {kind.name!r} goal {np.round(g, 6).tolist()} lies {d[bad[0]]:.4g} from the "
                f"unseen goal {ball.name!r} (centre {list(ball.centre)}, radius {ball.radius}); its success region "
                f"would coincide with it (needs >= {kind.tolerance + ball.radius:.4g})"
            )


def _rejection_sample(kind: GoalKind, region: GoalRegion, n: int, rng: np.random.Generator) -> FloatArray:
    """n goals uniform over ``region`` minus the unseen goals' regions, shape (n, k), by rejection."""
    out = np.zeros((0, kind.dim))
    for _ in range(MAX_REJECTION_ROUNDS):
        if len(out) >= n:
            break
        draw = region.draw(n - len(out), rng)
        out = np.concatenate([out, draw[~kind.excluded_mask(draw)]])
    else:
        if len(out) < n:
            raise PlrayInputError(
                f"goals.distribution: the region {region.to_spec()} lies (almost) wholly inside the unseen goals' "
                f"regions of {kind.name!r} goals ({', '.join(b.name for b in kind.excluded)})"
            )
    return out[:n]


# ---------------------------------------------------------------------- mixtures
MIXTURE = "mixture"
"""The ``kind`` of a mixture goal set's spec: ``{kind: mixture, parts: [<goal set>, ...]}``."""
MIXTURE_KEYS: tuple[str, ...] = ("kind", "parts")
MIXTURE_LABEL_PLACEMENTS: tuple[str, ...] = ("paper", "spread", "random")
"""Placements a part of a mixture label (:func:`mixture_spec_from_label`) may name."""


def _part_label(kind: str, placement: str, count: int) -> str:
    """One part of a mixture label: ``<kind><G>`` (spread) or ``<kind>-<placement><G>``."""
    return f"{kind}{count}" if placement == "spread" else f"{kind}-{placement}{count}"


@dataclass(frozen=True)
class GoalMixture:
    """A training goal set made of parts of several goal kinds of one target dimension.

    Every part is an ordinary :class:`GoalSet` (its placement, count, seed; no distribution), built
    with the task's own rules, so each part keeps the paper's unseen goals out exactly as a goal
    set of its kind alone does. The goals are ``g = [target (k), one-hot (K)]``, shape (G, k + K):
    the part's target followed by the one-hot of its kind among :attr:`kinds` (the parts' distinct
    kinds in order of first appearance). A goal of kind j pays 1[d_j(achieved_j(s'), target) < a_j]
    (d_j wrapped for wrapped kinds, a_j the kind's tolerance), achieved_j being the task's achieved
    goal of that kind; the one-hot is read off the goal by its largest entry.

    Attributes:
        parts: the parts, at least two distinct kinds among them, no two equal.
    """

    parts: tuple[GoalSet, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.parts, tuple) or not all(isinstance(p, GoalSet) for p in self.parts):
            raise PlrayInputError("goals.parts: expected a tuple of goal sets")
        for i, part in enumerate(self.parts):
            if part.distribution is not None:
                raise PlrayInputError(
                    f"goals.parts[{i}]: a part of a mixture cannot sample from a distribution (not supported: "
                    "every part is a finite set)"
                )
            if part in self.parts[:i]:
                raise PlrayInputError(f"goals.parts[{i}]: the same part as goals.parts[{self.parts.index(part)}]")
        if len(self.kinds) < 2:
            raise PlrayInputError(
                f"goals.parts: a mixture needs parts of at least two goal kinds, got {list(self.kinds)}; "
                "a single kind is a plain goal set"
            )

    @property
    def kind(self) -> str:
        """``"mixture"``."""
        return MIXTURE

    @property
    def kinds(self) -> tuple[str, ...]:
        """The distinct kinds of the parts, in order of first appearance: the one-hot's order."""
        return tuple(dict.fromkeys(p.kind for p in self.parts))

    @property
    def distribution(self) -> None:
        """None: a mixture is a finite set (no per-episode distribution)."""
        return None

    @property
    def resolved_placement(self) -> str:
        """``"mixture"``."""
        return MIXTURE

    # ------------------------------------------------------------------ specs
    @classmethod
    def from_spec(cls, spec: GoalMixture | Mapping[str, Any]) -> GoalMixture:
        """A mixture from its YAML-friendly form ``{kind: mixture, parts: [{kind: fingertip, ...}, ...]}``.

        Raises:
            PlrayInputError: unknown keys, no parts, a nested mixture or a malformed part, naming it.
        """
        if isinstance(spec, GoalMixture):
            return spec
        if not isinstance(spec, Mapping):
            raise PlrayInputError(f"goals: expected a mapping like {{kind: mixture, parts: [...]}}, got {spec!r}")
        check_keys(spec, "goals", MIXTURE_KEYS)
        if spec.get("kind") != MIXTURE:
            raise PlrayInputError(f"goals.kind: a mixture's kind is {MIXTURE!r}, got {spec.get('kind')!r}")
        parts = spec.get("parts")
        if not isinstance(parts, Sequence) or isinstance(parts, str) or not parts:
            raise PlrayInputError(f"goals.parts: expected a list of goal sets, got {parts!r}")
        out: list[GoalSet] = []
        for i, part in enumerate(parts):
            if isinstance(part, GoalMixture) or (isinstance(part, Mapping) and part.get("kind") == MIXTURE):
                raise PlrayInputError(f"goals.parts[{i}]: a mixture cannot be a part of a mixture (no nesting)")
            try:
                out.append(GoalSet.from_spec(part))
            except PlrayInputError as exc:
                raise PlrayInputError(f"goals.parts[{i}]: {exc}") from exc
        return cls(tuple(out))

    def to_spec(self) -> dict[str, Any]:
        """Plain-dict form: ``GoalMixture.from_spec(m.to_spec()) == m``."""
        return {"kind": MIXTURE, "parts": [p.to_spec() for p in self.parts]}

    # ------------------------------------------------------------------ goals
    def goal_kinds(self, task: Any) -> tuple[GoalKind, ...]:
        """The task's :class:`GoalKind` of each of :attr:`kinds`; all must share one target dim."""
        found: dict[str, GoalKind] = {}
        for i, part in enumerate(self.parts):
            try:
                found.setdefault(part.kind, part.goal_kind(task))
            except PlrayInputError as exc:
                raise PlrayInputError(f"goals.parts[{i}]: {exc}") from exc
        dims = {name: kind.dim for name, kind in found.items()}
        if len(set(dims.values())) > 1:
            raise PlrayInputError(f"goals.parts: a mixture's kinds must share one goal dim, got {dims}")
        return tuple(found[name] for name in self.kinds)

    def target_dim(self, task: Any) -> int:
        """k, the dimension of the parts' targets (without the one-hot)."""
        return self.goal_kinds(task)[0].dim

    def goal_dim(self, task: Any) -> int:
        """k + K, the dimension of a mixture goal."""
        return self.target_dim(task) + len(self.kinds)

    def build_parts(self, task: Any) -> list[FloatArray]:
        """Each part's targets, shape (G_i, k), built (and checked against the unseen goals) as a plain set."""
        self.goal_kinds(task)
        out: list[FloatArray] = []
        for i, part in enumerate(self.parts):
            try:
                out.append(part.build(task))
            except PlrayInputError as exc:
                raise PlrayInputError(f"goals.parts[{i}]: {exc}") from exc
        return out

    def build(self, task: Any) -> FloatArray:
        """The training goals ``[target, one-hot]`` of every part, in part order, shape (Σ G_i, k + K)."""
        rows = [
            self.encode(targets, np.full(len(targets), self.kinds.index(part.kind)))
            for part, targets in zip(self.parts, self.build_parts(task), strict=True)
        ]
        return np.concatenate(rows)

    def encode(self, targets: FloatArray, index: np.ndarray) -> FloatArray:
        """Goals ``[target, one_hot(index, K)]`` from targets (n, k) and kind indices (n,), shape (n, k + K)."""
        targets = np.asarray(targets, dtype=np.float64)
        onehot = np.zeros((len(targets), len(self.kinds)))
        onehot[np.arange(len(targets)), np.asarray(index, dtype=np.int64)] = 1.0
        return np.concatenate([targets, onehot], axis=1)

    def kind_index(self, goals: FloatArray) -> np.ndarray:
        """The kind of each goal (n, k + K): the index of its largest one-hot entry, shape (n,) int."""
        K = len(self.kinds)
        return np.argmax(np.asarray(goals, dtype=np.float64)[:, -K:], axis=1)

    def achieved_for(self, goals: FloatArray, achieved_of_kind: Callable[[str, np.ndarray], FloatArray]) -> FloatArray:
        """The achieved goal in the goal space of each goal: ``[achieved_j, one_hot(j)]``, j its kind.

        Args:
            goals: mixture goals, shape (n, k + K).
            achieved_of_kind: ``(kind name, rows)`` -> the achieved targets of those rows, (len(rows), k).

        Returns:
            shape (n, k + K).
        """
        goals = np.asarray(goals, dtype=np.float64)
        index = self.kind_index(goals)
        targets = np.zeros((len(goals), goals.shape[1] - len(self.kinds)))
        for j, name in enumerate(self.kinds):
            rows = np.flatnonzero(index == j)
            if rows.size:
                targets[rows] = achieved_of_kind(name, rows)
        return self.encode(targets, index)

    def terminal(self, task: Any, achieved: FloatArray, goals: FloatArray) -> BoolArray:
        """1[same kind and d_j(achieved, target) < a_j] per row, achieved and goals (n, k + K) -> (n,)."""
        achieved = np.asarray(achieved, dtype=np.float64)
        goals = np.asarray(goals, dtype=np.float64)
        K = len(self.kinds)
        index = self.kind_index(goals)
        out = np.zeros(len(goals), dtype=bool)
        for j, kind in enumerate(self.goal_kinds(task)):
            rows = np.flatnonzero(index == j)
            if rows.size:
                d = kind.distance(achieved[rows, :-K], goals[rows, :-K])
                out[rows] = d < kind.tolerance
        return out & (self.kind_index(achieved) == index)

    def overlaps(self, task: Any) -> list[str]:
        """Names of the unseen goals whose success region some part's goal meets (``[]`` once built)."""
        names: list[str] = []
        for kind, targets in zip((p.goal_kind(task) for p in self.parts), self.build_parts(task), strict=True):
            names += [n for n in kind.overlaps(targets) if n not in names]
        return names

    def label(self, task: Any) -> str:
        """``"+"``-joined part labels, e.g. ``fingertip16+angle4`` (:func:`mixture_spec_from_label` reads it)."""
        return "+".join(
            _part_label(p.kind, p.resolved_placement, len(t))
            for p, t in zip(self.parts, self.build_parts(task), strict=True)
        )


def mixture_spec_from_label(label: str, seed: int = 0) -> dict[str, Any]:
    """The mixture spec a label names: ``fingertip16+angle-random4`` -> 16 spread fingertip, 4 random angle goals.

    Each ``+``-separated part is ``<kind><G>`` (G evenly spread goals) or ``<kind>-<placement><G>``
    with placement ``paper``, ``spread`` or ``random``; ``seed`` seeds every part.

    Raises:
        PlrayInputError: a malformed part, naming it.
    """
    import re

    if not isinstance(label, str) or not label:
        raise PlrayInputError(f"mixture: expected a label like 'fingertip16+angle4', got {label!r}")
    parts: list[dict[str, Any]] = []
    pattern = rf"([A-Za-z_]+?)(?:-({'|'.join(MIXTURE_LABEL_PLACEMENTS)}))?([0-9]+)"
    for piece in label.split("+"):
        m = re.fullmatch(pattern, piece)
        if m is None or int(m.group(3)) < 1:
            raise PlrayInputError(
                f"mixture: part {piece!r} of {label!r} is not <kind><count> or <kind>-<placement><count> "
                f"(placement one of {', '.join(MIXTURE_LABEL_PLACEMENTS)}, count >= 1)"
            )
        parts.append({"kind": m.group(1), "placement": m.group(2) or "spread", "count": int(m.group(3)), "seed": seed})
    return {"kind": MIXTURE, "parts": parts}


def mixture_label_size(label: str) -> int:
    """|G| of the mixture a label names (the sum of its parts' counts)."""
    return sum(int(p["count"]) for p in mixture_spec_from_label(label)["parts"])


def is_mixture_spec(spec: object) -> bool:
    """Whether a ``goals`` argument is a mixture (a :class:`GoalMixture` or a spec of kind ``mixture``)."""
    return isinstance(spec, GoalMixture) or (isinstance(spec, Mapping) and spec.get("kind") == MIXTURE)


def goal_set_kwarg(goals: GoalSet | GoalMixture | Mapping[str, Any] | None) -> GoalSet | GoalMixture | None:
    """A task's ``goals``/``goal_set`` argument (a :class:`GoalSet`, a :class:`GoalMixture`, either's
    plain-dict form, or None)."""
    if goals is None or isinstance(goals, GoalSet | GoalMixture):
        return goals
    return GoalMixture.from_spec(goals) if is_mixture_spec(goals) else GoalSet.from_spec(goals)


def goal_set_label(kind: str, placement: str | None, count: int, *, distribution: bool = False) -> str:
    """The short name of a training goal set in tables and result rows (the one spelling of it).

    ``paper<G>``: the paper's set; ``<kind><G>``: G goals of the kind evenly spread (or the
    task's own default placement, ``placement=None``); ``<kind>-random<G>`` / ``<kind>-explicit<G>``;
    ``<kind>-dist<G>``: every episode draws its goal from a region (G: the finite draw used for
    evaluation). E.g. ``paper4``, ``fingertip16``, ``angle8``, ``position2``, ``fingertip-dist16``.
    """
    if distribution:
        return f"{kind}-dist{count}"
    if placement == "paper":
        return f"paper{count}"
    if placement in (None, "spread"):
        return f"{kind}{count}"
    return f"{kind}-{placement}{count}"


def task_goal_set_label(task: Any) -> str:
    """:func:`goal_set_label` of a continuous task's training goals, shape (G, k).

    Names the set by what it is: goals equal to the paper's set of the task's goal kind are
    ``paper<G>`` however they were asked for (MountainCar's four evenly spaced goals are the
    paper's), an even spread ``<kind><G>``; otherwise the goal set's own placement. A mixture is
    named by its parts' own placements, ``+``-joined (:meth:`GoalMixture.label`), e.g.
    ``fingertip16+angle4`` or ``fingertip-paper4+angle-random4``. A task with one fixed goal set
    and no goal kinds to choose from (the MuJoCo Reacher) is ``paper<G>``, as its runs' cells
    (placement ``paper``) name it.
    """
    goals = np.asarray(task.training_goals, dtype=np.float64)
    goal_set: GoalSet | GoalMixture | None = getattr(task, "goal_set", None)
    if isinstance(goal_set, GoalMixture):
        return goal_set.label(task)
    kind_name = goal_set.kind if goal_set is not None else getattr(task, "goal_kind", None)
    kinds: Mapping[str, GoalKind] = getattr(task, "goal_kinds", {})
    if kind_name is None and len(kinds) == 1:
        kind_name = next(iter(kinds))
    name, G = str(kind_name), len(goals)
    if goal_set is not None and goal_set.distribution is not None:
        return goal_set_label(name, None, G, distribution=True)
    if goal_set is None and not kinds:  # one fixed set, no goal-set options (the MuJoCo Reacher): as its runs name it
        return goal_set_label(name, "paper", G)
    kind = kinds.get(name)
    if kind is not None:
        if kind.paper is not None and np.shape(kind.paper) == goals.shape and np.allclose(kind.paper, goals):
            return goal_set_label(name, "paper", G)
        spread = np.asarray(kind.spread(G, getattr(goal_set, "radius", None)), dtype=np.float64)
        if spread.shape == goals.shape and np.allclose(spread, goals):
            return goal_set_label(name, "spread", G)
    placement = goal_set.resolved_placement if goal_set is not None else "custom"
    return goal_set_label(name, placement, G)
