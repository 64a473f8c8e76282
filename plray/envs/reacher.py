"""The kinematic two-link reacher of the paper's released code (docs/method.md#kinematic-reacher).

The paper calls this environment "MuJoCo Reacher", but its code (``envs/reacher.py``) wraps
gymnax's ``misc.reacher.Reacher``, a kinematic arm with no MuJoCo physics. plray follows the
code, which produced the paper's numbers; :mod:`plray.envs.mujoco_reacher` is the MuJoCo variant.

State s = [θ₁, θ₂, ω₁, ω₂]. Each step applies a torque τ ∈ {−1, 0, 1}² (semi-implicit Euler,
dt = 0.05, torque scale 1)::

    ω' = ω + dt·τ
    θ' = wrap(θ + dt·ω')            wrap to [−π, π)

Action index a ∈ {0, …, 8} maps to τ = (τ₁, τ₂) = (a // 3 − 1, a % 3 − 1), the row order of
``itertools.product([-1, 0, 1], repeat=2)`` used by the paper's ``make_action_table``::

    0: (−1, −1)   1: (−1, 0)   2: (−1, +1)
    3: ( 0, −1)   4: ( 0, 0)   5: ( 0, +1)
    6: (+1, −1)   7: (+1, 0)   8: (+1, +1)

Forward kinematics, checked against gymnax's source: both links have unit length and gymnax sums
``cos``/``sin`` over the angle vector, so each θᵢ is the *absolute* angle of link i from the x-axis
(not a joint angle relative to the previous link, as in MuJoCo's chain)::

    fingertip = (cos θ₁ + cos θ₂, sin θ₁ + sin θ₂)

This agrees with docs/method.md#kinematic-reacher. Other facts read off gymnax's source:

* There is no velocity clipping: ω is unbounded and grows by up to 0.05 a step. The state box
  ω ∈ [−2, 2] (``state_low``/``state_high``, the paper's ``STATE_RANGES``) only bounds uniform
  sampling and grids; ``next_state`` never clips.
* gymnax never wraps θ (only its cos/sin enter its observation). Wrapping the state is exact here,
  because the dynamics are invariant to 2π shifts of θ and the paper's observation wraps θ anyway.

Observation (6-D, the paper's layout): [θ₁, θ₂ (wrapped), ω₁, ω₂, fp_x, fp_y]. Resets draw
θ ~ U[−π, π], ω ~ U[−1, 1]. Goals: fingertip targets (1, 0), (0, 1), (−1, 0), (0, −1) with sparse
reward 1[‖fp − g‖ < 0.2] ending the episode; episodes last 100 steps; γ = 0.99.

Goal sets (:mod:`plray.envs.goalsets`, not in the paper beyond its four fingertips): the task
takes ``goal_set`` of kind ``fingertip`` (paper: the four above; spread: G targets on a ring of
radius r (default 1) at angles 2πi/G; random: area-uniform over the reachable disc ‖fp‖ <= 2; or a
per-episode annulus/box distribution) or ``angle`` (targets θ* for the wrapped link angles, reward
1[‖wrap(θ − θ*)‖ < 0.2]; spread: a rank-1 lattice over the torus; random: uniform over it). Both
keep the 2-D goal vector, so the observation is ``concat(observe(s), g)`` as for the paper's set.
A ``mixture`` of both kinds (e.g. 16 fingertip and 4 angle goals) has goals
``[target (2), one-hot (K)]`` and the 6 + 2 + K observation ``concat(observe(s), g)``; each goal is
scored by its own kind (:mod:`plray.envs.goalsets`, mixtures; the task only supplies
``achieved_goal_of_kind``).
The paper's unseen goals are declared here as data (:data:`REACHER_UNSEEN_BALLS`) and kept out of
every goal set (see :mod:`plray.envs.goalsets`).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from plray.core.types import FloatArray
from plray.envs.base import GoalTask, check_batch, check_count, check_rng, wrap_angle
from plray.envs.goalsets import ExcludedBall, GoalKind, GoalMixture, GoalRegion, GoalSet, goal_set_kwarg
from plray.utils.validation import PlrayInputError

DT = 0.05
TORQUE_SCALE = 1.0
TORQUE_VALUES: tuple[float, ...] = (-1.0, 0.0, 1.0)
#: Action index -> (τ₁, τ₂), shape (9, 2): row a is (TORQUE_VALUES[a // 3], TORQUE_VALUES[a % 3]).
TORQUES: FloatArray = np.array(list(itertools.product(TORQUE_VALUES, repeat=2)), dtype=np.float64)
ACTION_NAMES: tuple[str, ...] = tuple(f"({t1:+.0f},{t2:+.0f})" for t1, t2 in TORQUES)
MAX_OMEGA_BOX = 2.0
RESET_OMEGA = 1.0
GOAL_RADIUS = 1.0
GOAL_TOLERANCE = 0.2
REACH = 2.0
"""Largest fingertip radius: both links have unit length."""
PAPER_GOALS: tuple[tuple[float, ...], ...] = ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))
"""The paper's fingertip goals: radius 1 at angles 0, π/2, π, 3π/2, written exactly."""

# The paper's three unseen goals (docs/method.md#unseen-goals), as data: sparse indicators with a
# strict "<", each in the goal space it reads (fingertip, wrapped link angles θ, velocities ω).
FAR_FINGERTIP: tuple[float, float] = (math.sqrt(2.0), math.sqrt(2.0))
TARGET_ANGLE: tuple[float, float] = (0.0, math.pi)
TARGET_VELOCITY: tuple[float, float] = (2.0, 2.0)
REACHER_UNSEEN_TOLERANCE = 0.2
REACHER_UNSEEN_BALLS: dict[str, tuple[ExcludedBall, ...]] = {
    "fingertip": (ExcludedBall("far_fingertip", FAR_FINGERTIP, REACHER_UNSEEN_TOLERANCE),),
    "angle": (ExcludedBall("target_angle", TARGET_ANGLE, REACHER_UNSEEN_TOLERANCE),),
    "velocity": (ExcludedBall("target_velocity", TARGET_VELOCITY, REACHER_UNSEEN_TOLERANCE),),
}
"""Per goal space, the success regions of the unseen goals that live there (kept out of goal sets)."""


def fingertip_ring(count: int, radius: float | None = None) -> FloatArray:
    """``count`` fingertip targets evenly spaced on a ring: r (cos 2πi/G, sin 2πi/G), shape (G, 2).

    Args:
        count: G >= 1.
        radius: r in (0, 2] (the reach); None: 1, the paper's radius.
    """
    r = GOAL_RADIUS if radius is None else float(radius)
    if not 0.0 < r <= REACH:
        raise PlrayInputError(f"goals.radius: the fingertip reaches radius {REACH}, got {radius!r}")
    phi = 2.0 * np.pi * np.arange(count) / count
    return r * np.stack([np.cos(phi), np.sin(phi)], axis=-1)


def angle_lattice(count: int, radius: float | None = None) -> FloatArray:
    """``count`` angle targets θ* spread over the torus [−π, π)² (a rank-1 lattice), shape (G, 2).

    θ*_i = (−π + 2π (i + ½)/G, wrap(−π + 2π (½ + i/φ))), φ the golden ratio: evenly spaced in θ₁,
    well spread in θ₂. ``radius`` must be None (angle goals have no ring).
    """
    if radius is not None:
        raise PlrayInputError("goals.radius: angle goals have no ring radius")
    i = np.arange(count)
    golden = (1.0 + math.sqrt(5.0)) / 2.0
    theta1 = -np.pi + 2.0 * np.pi * (i + 0.5) / count
    theta2 = -np.pi + 2.0 * np.pi * np.mod(0.5 + i / golden, 1.0)
    return np.stack([theta1, theta2], axis=-1)


REACHER_GOAL_KINDS: dict[str, GoalKind] = {
    "fingertip": GoalKind(
        "fingertip",
        dim=2,
        tolerance=GOAL_TOLERANCE,
        wrapped=False,
        domain=GoalRegion("annulus", inner=0.0, outer=REACH),
        spread=fingertip_ring,
        paper=PAPER_GOALS,
        excluded=REACHER_UNSEEN_BALLS["fingertip"],
    ),
    "angle": GoalKind(
        "angle",
        dim=2,
        tolerance=GOAL_TOLERANCE,
        wrapped=True,
        domain=GoalRegion("box", low=(-np.pi, -np.pi), high=(np.pi, np.pi)),
        spread=angle_lattice,
        excluded=REACHER_UNSEEN_BALLS["angle"],
    ),
}
"""The Reacher's goal kinds (see the module docstring)."""


class KinematicReacherTask(GoalTask):
    """The paper's kinematic two-link reacher with 9 discrete torque actions; see the module docstring.

    Args:
        goal_set: the training goal set (a :class:`~plray.envs.goalsets.GoalSet`, a
            :class:`~plray.envs.goalsets.GoalMixture`, or either's plain-dict form); None: the
            paper's four fingertip goals (bit-identical to a task without goal sets).

    Attributes:
        goal_set: the goal set, or None for the paper's.
        goal_kind: ``"fingertip"``, ``"angle"`` or ``"mixture"``.
        goal_dim: 2, or 2 + K for a mixture of K kinds.
    """

    name: str = "reacher"
    state_dim: int = 4
    obs_dim: int = 6
    goal_dim: int = 2
    num_actions: int | None = 9
    angle_dims: tuple[int, ...] = (0, 1)
    max_episode_steps: int = 100
    gamma: float = 0.99
    goal_kinds: dict[str, GoalKind] = REACHER_GOAL_KINDS

    def __init__(self, goal_set: GoalSet | GoalMixture | dict[str, Any] | None = None) -> None:
        self.state_low = np.array([-np.pi, -np.pi, -MAX_OMEGA_BOX, -MAX_OMEGA_BOX])
        self.state_high = np.array([np.pi, np.pi, MAX_OMEGA_BOX, MAX_OMEGA_BOX])
        self.goal_set = goal_set_kwarg(goal_set)
        self.goal_kind = "fingertip" if self.goal_set is None else self.goal_set.kind
        if self.goal_set is None:
            # radius 1 at angles 0, π/2, π, 3π/2, written exactly (cos(π/2) would give 6e-17)
            self.training_goals = GOAL_RADIUS * np.array(PAPER_GOALS, dtype=np.float64)
        else:
            self.training_goals = self.goal_set.build(self)
        if isinstance(self.goal_set, GoalMixture):
            self.goal_dim = self.goal_set.goal_dim(self)
        self.goal_tolerance = GOAL_TOLERANCE

    def __repr__(self) -> str:
        if self.goal_set is None:
            return "KinematicReacherTask()"
        return f"KinematicReacherTask(goal_set={self.goal_set!r})"

    # ------------------------------------------------------------------ dynamics
    def reset_states(self, n: int, rng: np.random.Generator) -> FloatArray:
        """Initial states: θ ~ U[−π, π]², ω ~ U[−1, 1]².

        Args:
            n: number of episodes, ≥ 0.
            rng: numpy random generator.

        Returns:
            states [θ₁, θ₂, ω₁, ω₂], shape (n, 4), angles in [−π, π).
        """
        n = check_count(n)
        check_rng(rng)
        theta = rng.uniform(-np.pi, np.pi, size=(n, 2))
        omega = rng.uniform(-RESET_OMEGA, RESET_OMEGA, size=(n, 2))
        return np.concatenate([theta, omega], axis=-1)

    def next_state(self, states: FloatArray, actions: np.ndarray) -> FloatArray:
        """Exact successors: ω' = ω + dt·τ(a), θ' = wrap(θ + dt·ω').

        Args:
            states: [θ₁, θ₂, ω₁, ω₂] rows, shape (B, 4); angles need not be wrapped.
            actions: integers in [0, 9), shape (B,); see :data:`TORQUES` for the torque of each.

        Returns:
            next states, shape (B, 4), angles wrapped to [−π, π).
        """
        states = check_batch(states, "states", 4, "d")
        actions = self.check_actions(actions, len(states))
        omega = states[:, 2:] + DT * TORQUE_SCALE * TORQUES[actions]
        theta = wrap_angle(states[:, :2] + DT * omega)
        return np.concatenate([theta, omega], axis=-1)

    def fingertip(self, states: FloatArray) -> FloatArray:
        """Fingertip position (cos θ₁ + cos θ₂, sin θ₁ + sin θ₂) of states (B, 4), shape (B, 2)."""
        states = check_batch(states, "states", 4, "d")
        theta = states[:, :2]
        return np.stack([np.cos(theta).sum(-1), np.sin(theta).sum(-1)], axis=-1)

    def observe(self, states: FloatArray) -> FloatArray:
        """The 6-D observation [θ₁, θ₂ (wrapped), ω₁, ω₂, fp_x, fp_y], shape (B, 6)."""
        states = check_batch(states, "states", 4, "d")
        return np.concatenate([wrap_angle(states[:, :2]), states[:, 2:], self.fingertip(states)], axis=-1)

    def observe_torch(self, states: Any) -> Any:
        """``observe`` in torch, differentiable: [wrap(θ), ω, Σcos θ, Σsin θ], (B, 4) -> (B, 6)."""
        import torch

        from plray.envs.base import wrap_angle_torch

        theta = states[:, :2]
        tip = torch.stack([torch.cos(theta).sum(-1), torch.sin(theta).sum(-1)], dim=-1)
        return torch.cat([wrap_angle_torch(theta), states[:, 2:], tip], dim=-1)

    def achieved_goal_of_kind(self, kind: str, states: FloatArray) -> FloatArray:
        """Fingertip (``fingertip``) or wrapped link angles θ (``angle``) of states (B, 4), shape (B, 2)."""
        if kind == "angle":
            return wrap_angle(check_batch(states, "states", 4, "d")[:, :2])
        if kind != "fingertip":
            raise PlrayInputError(f"kind: the Reacher has fingertip and angle goals, not {kind!r}")
        return self.fingertip(states)

    def achieved_goal_of_kind_from_obs(self, kind: str, obs: FloatArray) -> FloatArray:
        """Fingertip (dims 4, 5) or wrapped θ (dims 0, 1) read off observations (B, 6), shape (B, 2)."""
        obs = check_batch(obs, "obs", 6, "o")
        if kind not in ("angle", "fingertip"):
            raise PlrayInputError(f"kind: the Reacher has fingertip and angle goals, not {kind!r}")
        return obs[:, 0:2].copy() if kind == "angle" else obs[:, 4:6].copy()

    def achieved_goal(self, states: FloatArray) -> FloatArray:
        """The achieved goal of the goal set's kind of states (B, 4), shape (B, 2).

        A mixture: every kind's (:meth:`~plray.envs.base.GoalTask.every_achieved_goal`), (K·B, 2 + K).
        """
        if self.goal_mixture is not None:
            return self.every_achieved_goal(check_batch(states, "states", 4, "d"))
        return self.achieved_goal_of_kind(self.goal_kind, states)

    def achieved_goal_from_obs(self, obs: FloatArray) -> FloatArray:
        """:meth:`achieved_goal` read off observations (B, 6): shape (B, 2), a mixture (K·B, 2 + K)."""
        if self.goal_mixture is not None:
            return self.every_achieved_goal(check_batch(obs, "obs", 6, "o"), from_obs=True)
        return self.achieved_goal_of_kind_from_obs(self.goal_kind, obs)

    def terminal(self, achieved: FloatArray, goals: FloatArray) -> np.ndarray:
        """1[‖achieved − g‖ < 0.2]; for angle goals the difference is wrapped, shape (B,).

        A mixture: each goal by its own kind (:meth:`plray.envs.base.GoalTask.terminal`).
        """
        if self.goal_kind != "angle":
            return super().terminal(achieved, goals)
        diff = wrap_angle(np.asarray(achieved, dtype=np.float64) - np.asarray(goals, dtype=np.float64))
        return np.linalg.norm(diff, axis=-1) < self.goal_tolerance


class ContinuousKinematicReacherTask(KinematicReacherTask):
    """The kinematic Reacher with continuous torques τ ∈ [−1, 1]² (``reacher-continuous``; not in the paper).

    Same state, goals, goal sets, unseen goals and semi-implicit Euler dynamics as
    :class:`KinematicReacherTask`; an action is the torque itself, shape (B, 2), clipped to
    [−1, 1]² (as :meth:`GoalTask.check_actions` does for every continuous task). At the 9 torques
    of :data:`TORQUES` the successors equal the discrete task's bit for bit.

    ``planning_actions`` (= :data:`TORQUES`, shape (9, 2)) declares the finite action subset that
    grid planners (:mod:`plray.evaluation.unseen`) use on this task; ``discrete_counterpart()`` is
    the 9-torque task with the same goal set.
    """

    name: str = "reacher-continuous"
    num_actions: int | None = None
    action_dim: int = 2
    planning_actions: FloatArray = TORQUES

    def __init__(self, goal_set: GoalSet | GoalMixture | dict[str, Any] | None = None) -> None:
        super().__init__(goal_set)
        self.action_low = np.array([-1.0, -1.0])
        self.action_high = np.array([1.0, 1.0])

    def __repr__(self) -> str:
        if self.goal_set is None:
            return "ContinuousKinematicReacherTask()"
        return f"ContinuousKinematicReacherTask(goal_set={self.goal_set!r})"

    def next_state(self, states: FloatArray, actions: np.ndarray) -> FloatArray:
        """Exact successors: ω' = ω + dt·clip(τ, −1, 1), θ' = wrap(θ + dt·ω').

        Args:
            states: [θ₁, θ₂, ω₁, ω₂] rows, shape (B, 4).
            actions: torques, shape (B, 2) (or B·2 numbers), clipped to [−1, 1]².

        Returns:
            next states, shape (B, 4), angles wrapped to [−π, π).
        """
        states = check_batch(states, "states", 4, "d")
        torques = self.check_actions(actions, len(states))
        omega = states[:, 2:] + DT * TORQUE_SCALE * torques
        theta = wrap_angle(states[:, :2] + DT * omega)
        return np.concatenate([theta, omega], axis=-1)

    def discrete_counterpart(self) -> KinematicReacherTask:
        """The 9-torque task with the same goal set (action index a ↦ ``planning_actions[a]``)."""
        return KinematicReacherTask(goal_set=self.goal_set)
