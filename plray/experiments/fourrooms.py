"""The FourRooms study: exact agent → Bellman matrix → extracted kernel → metrics and unseen goals.

The "agent" here is exact: its Q-values are Q* of each training reward, computed by
:func:`plray.evaluation.value_iteration` to machine precision, optionally perturbed by noise of
a chosen size ε (ℓ₁ over goals per (s, a)) to stand for an imperfect learner. Learned agents
(RLlib) plug into the same pipeline through a Q source.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from plray.core import bellman_matrix_from_q, extract
from plray.core.extraction import Extraction
from plray.core.types import KERNEL_METHODS, VALUE_MODES, FloatArray
from plray.core.worldmodel import TabularWorldModel
from plray.envs.fourrooms import DEFAULT_GAMMA, GOAL_FAMILIES, GOAL_PLACEMENTS, VARIANTS, FourRooms
from plray.evaluation import kernel_metrics, unseen_summary, value_iteration
from plray.utils.validation import PlrayInputError, check_choice, check_gamma


@dataclass(frozen=True)
class FourRoomsSpec:
    """One FourRooms extraction.

    Attributes:
        variant: ``deterministic``, ``windy`` or ``teleport``.
        num_goals: |G|, 1 to 68.
        goal_family: ``indicator``, ``gaussian`` or ``generic``.
        method: extraction method (see :func:`plray.core.extract`).
        gamma: discount of the agent and of the evaluation.
        placement: goal placement, ``random`` (seeded) or ``spread``.
        seed: seeds goal placement, reward noise, Q noise and sampled extraction.
        q_noise: ε, the ℓ₁ norm over goals of the noise added to each Q(s, a, ·).
        project: project closed-form rows onto the simplex.
        value_mode: how V is formed from Q for M (``max`` for the exact greedy agent).
        updates: number of updates of the ``sampled`` method (None: its default).
        local: restrict each state's successors to its neighbours and the teleport targets (the
            candidate set the WVF baseline uses) for the ``simplex`` and ``wvf`` methods.
    """

    variant: str = "windy"
    num_goals: int = 4
    goal_family: str = "generic"
    method: str = "closed-form"
    gamma: float = DEFAULT_GAMMA
    placement: str = "random"
    seed: int = 0
    q_noise: float = 0.0
    project: bool = False
    value_mode: str = "max"
    updates: int | None = None
    local: bool = False

    def validate(self) -> FourRoomsSpec:
        """Check every field, raising :class:`PlrayInputError` that names it."""
        check_choice(self.variant, "variant", VARIANTS)
        check_choice(self.goal_family, "goal_family", GOAL_FAMILIES)
        check_choice(self.method, "method", KERNEL_METHODS)
        check_choice(self.placement, "placement", GOAL_PLACEMENTS)
        check_choice(self.value_mode, "value_mode", VALUE_MODES)
        check_gamma(self.gamma)
        if not 1 <= self.num_goals <= 68:
            raise PlrayInputError(f"num_goals: must be between 1 and 68 (the number of states), got {self.num_goals}")
        if not (self.q_noise >= 0 and np.isfinite(self.q_noise)):
            raise PlrayInputError(f"q_noise: must be a finite number >= 0, got {self.q_noise}")
        if self.updates is not None and self.updates < 1:
            raise PlrayInputError(f"updates: must be >= 1, got {self.updates}")
        return self


def perturb_q(Q: FloatArray, eps: float, rng: np.random.Generator) -> FloatArray:
    """Q + E with ‖E(s, a, ·)‖₁ = ε exactly for every (s, a) (random direction over goals)."""
    if eps == 0:
        return Q.copy()
    E = rng.standard_normal(Q.shape)
    E *= eps / np.abs(E).sum(axis=2, keepdims=True)
    return Q + E


def method_options(
    mdp: FourRooms, method: str, goal_states: Any, *, local: bool = False, project: bool = False
) -> tuple[str, dict[str, Any]]:
    """The :func:`plray.core.extract` method and options of a FourRooms extraction method name.

    ``simplex-local`` is ``simplex`` with ``local``: each state's successors restricted to its
    neighbours and the teleport targets (``wvf`` always uses that candidate set and the goal states).
    ``project`` projects the closed form onto the simplex. Iterative methods' own options (updates,
    seeds, checkpoints) are the caller's.
    """
    if method == "simplex-local":
        method, local = "simplex", True
    options: dict[str, Any] = {}
    if method == "closed-form":
        options["project"] = project
    elif method == "wvf":
        options |= {"candidates": mdp.local_candidates(), "goal_states": goal_states}
    elif method == "simplex" and local:
        options["candidates"] = mdp.local_candidates()
    return method, options


@dataclass(frozen=True)
class KernelExtraction:
    """A FourRooms kernel inverted from an agent's Q-values, with its scores.

    Attributes:
        kernel: the scored kernel, shape (S, A, S): the world model's (rows on the simplex) or,
            without a model, the method's raw output.
        model: the world model, or None when the caller asked for the raw kernel only.
        result: the core extraction (diagnostics of M, the method's info).
        scores: kernel errors against the true kernel (TV, MSE, ...) and M's rank, smallest
            singular value and column gap.
        unseen: R_WM next to R* on the unseen goals (:func:`plray.evaluation.unseen_summary`);
            empty when not asked for.
    """

    kernel: FloatArray
    model: TabularWorldModel | None
    result: Extraction
    scores: dict[str, Any]
    unseen: dict[str, Any]


def invert_fourrooms(
    mdp: FourRooms,
    Q: FloatArray,
    rewards: FloatArray,
    dones: FloatArray,
    goal_states: Any,
    gamma: float,
    method: str,
    *,
    value_mode: str = "max",
    local: bool = False,
    project: bool = False,
    eps: float = 0.0,
    model: bool = True,
    unseen: bool = True,
    options: dict[str, Any] | None = None,
) -> KernelExtraction:
    """Invert a FourRooms agent and score the kernel: the one extraction of ``plray fourrooms`` and ``plray run``.

    Args:
        mdp: the true MDP (its kernel is the reference).
        Q: the agent's Q-values, shape (S, A, G).
        rewards: r(s', g), shape (S, G); ``dones``: termination, shape (S, G).
        goal_states: the goals' states, shape (G,) (``wvf`` needs them).
        gamma: discount.
        method: a method name of :func:`method_options` (``simplex-local`` included).
        value_mode: how V is formed from Q for M (:func:`plray.core.bellman_matrix_from_q`).
        local, project: see :func:`method_options`.
        eps: the agent's Q-noise bound ε (:func:`plray.core.extract`).
        model: build the :class:`TabularWorldModel` (rows projected onto the simplex) and score
            its kernel; False scores the method's raw kernel.
        unseen: also plan for the unseen goals in the kernel.
        options: iterative methods' own options (updates, seed, checkpoints).
    """
    M = bellman_matrix_from_q(Q, rewards, gamma, dones, value_mode=value_mode)  # type: ignore[arg-type]
    name, method_opts = method_options(mdp, method, goal_states, local=local, project=project)
    ext = extract(Q, M, name, gamma=gamma, eps=eps, **(method_opts | (options or {})))
    world_model = TabularWorldModel(ext.kernel) if model else None
    kernel = world_model.kernel() if world_model is not None else ext.kernel
    scores: dict[str, Any] = {**kernel_metrics(kernel, mdp.kernel)}
    diag = ext.diagnostics
    if diag is not None:
        scores |= {"rank": diag.rank, "sigma_min": diag.sigma_min, "column_gap": diag.column_gap}
    found = unseen_summary(kernel, mdp, gamma) if unseen else {}
    return KernelExtraction(kernel=kernel, model=world_model, result=ext, scores=scores, unseen=found)


def run_fourrooms(spec: FourRoomsSpec, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run one extraction and evaluate it; returns a flat, JSON-ready result dict."""
    spec.validate()
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    env = FourRooms(spec.variant)
    goals = env.goal_set(spec.num_goals, spec.goal_family, placement=spec.placement, seed=spec.seed)
    say(f"[{spec.variant} |G|={spec.num_goals} {spec.goal_family}] value iteration for {spec.num_goals} goals")
    Q = value_iteration(env.kernel, goals.rewards, goals.dones, spec.gamma).Q
    Q_agent = perturb_q(Q, spec.q_noise, np.random.default_rng([spec.seed, 2]))
    options: dict[str, Any] = {}
    if spec.method == "sampled":
        options["seed"] = spec.seed
        if spec.updates is not None:
            options["num_updates"] = spec.updates
    say(f"[{spec.variant} |G|={spec.num_goals} {spec.goal_family}] extracting with {spec.method}")
    inv = invert_fourrooms(
        env,
        Q_agent,
        goals.rewards,
        goals.dones,
        goals.states,
        spec.gamma,
        spec.method,
        value_mode=spec.value_mode,
        local=spec.local,
        project=spec.project,
        eps=spec.q_noise,
        model=False,
        options=options,
    )
    diag = inv.result.diagnostics
    assert diag is not None
    return {
        **asdict(spec),
        **inv.scores,
        "identifiable": diag.identifiable(deterministic=env.deterministic),
        "identifiable_stochastic": diag.identifiable_stochastic,
        "identifiable_deterministic": diag.identifiable_deterministic,
        "tv_bound": 0.5 * diag.stochastic_bound,
        "column_match_tolerance": diag.column_match_tolerance,
        **inv.unseen,
        "extract_info": {k: v for k, v in inv.result.info.items() if isinstance(v, int | float | bool | str)},
        "seconds": time.perf_counter() - t0,
    }
