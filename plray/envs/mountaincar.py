"""MountainCar as a goal-conditioned task (docs/method.md#mountaincar).

The physics are gymnax's ``classic_control.MountainCar`` (itself OpenAI gym's ``MountainCar-v0``),
which the paper's released code wraps, with the built-in goal termination removed. With state
s = [x, v] and action a ∈ {0 left, 1 none, 2 right}::

    v' = clip(v + (a − 1)·0.001 − cos(3x)·0.0025, −0.07, 0.07)
    x' = clip(x + v', −1.2, 0.6)
    v' ← 0   if x' = −1.2 and v' < 0        (inelastic left wall; the right wall keeps v')

Episodes start at x ~ U[−0.6, −0.4], v = 0 and last 200 steps unless the goal is reached. The
observation is the state itself, [x, v].

Two goal families, one per agent of the paper, each a sparse reward 1[|achieved − g| < a] that
ends the episode:

* ``position``: the achieved goal is x; goals x ∈ linspace(−1.2, 0.6, 4) = {−1.2, −0.6, 0.0, 0.6},
  a = 0.1.
* ``velocity``: the achieved goal is v; goals v ∈ linspace(−0.07, 0.07, 4), a = 0.01.

Goal sets (:mod:`plray.envs.goalsets`): instead of ``num_goals``/``placement``/``seed`` the task
takes ``goal_set`` of the family's kind (``position`` or ``velocity``): paper (the four above),
spread, random (uniform over the range), explicit, or a per-episode interval distribution, all
kept clear of the paper's unseen goals (:data:`MOUNTAINCAR_UNSEEN_BALLS`). The legacy arguments
build exactly the sets they always built, unchecked. Note: the paper's velocity goal v = 0.07
succeeds on (0.06, 0.08), which meets the fast-car goal's (0.05, 0.07), so the paper's velocity set
is refused as a goal set (position goals: the paper's set is clear).

Noisy variant (not in the paper; ``mountaincar-position-noisy`` in the registry): additive Gaussian
process noise on both dims after the step, then the same box and wall::

    x̃ = x' + σ_x ε₁,  ṽ = v' + σ_v ε₂,  ε ~ N(0, I),  (σ_x, σ_v) = NOISE_STD = (0.005, 0.001)
    x'' = clip(x̃, −1.2, 0.6),  v'' = clip(ṽ, ±0.07),  v'' ← 0 if x'' = −1.2 and v'' < 0

σ_v equals the engine's force per step and σ_x is about half a cell of the 200 × 200 grid; away
from the box the successor is exactly Gaussian with a diagonal covariance, the family of
:mod:`plray.core.neural_stochastic`, so that extraction can be scored against the true σ.

Notes:

* plray computes in float64; gymnax (JAX's default) runs in float32, so trajectories agree with the
  paper's to about 1e-7 per step, not bit for bit.
* Half of the start distribution (x ∈ (−0.6, −0.5)) already lies inside the x = −0.6 goal's ball,
  so from there the first step pays 1 and terminates; this is how the paper's goal set behaves too
  (rewards are paid on arrival, so the start state itself earns nothing).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from plray.core.types import FloatArray
from plray.envs.base import GoalTask, check_batch, check_count, check_rng
from plray.envs.goalsets import ExcludedBall, GoalKind, GoalMixture, GoalRegion, GoalSet, goal_set_kwarg
from plray.utils.validation import PlrayInputError, check_choice

GOALS: tuple[str, ...] = ("position", "velocity")
ACTION_NAMES: tuple[str, ...] = ("left", "none", "right")

MIN_POSITION = -1.2
MAX_POSITION = 0.6
MAX_SPEED = 0.07
FORCE = 0.001
GRAVITY = 0.0025
RESET_LOW, RESET_HIGH = -0.6, -0.4
NUM_GOALS = 4
POSITION_TOLERANCE = 0.1
VELOCITY_TOLERANCE = 0.01
NOISE_STD: tuple[float, float] = (0.005, 0.001)
"""(σ_x, σ_v) of the noisy variant's process noise (see the module docstring)."""

# The paper's three unseen goals (docs/method.md#unseen-goals), as data: sparse indicators with a
# strict "<"; the gentle car also forbids |v| > GENTLE_CAR_MAX_SPEED (reward 0, terminal).
FAST_CAR_VELOCITY, FAST_CAR_TOLERANCE = 0.06, 0.01
GENTLE_CAR_POSITION, GENTLE_CAR_TOLERANCE, GENTLE_CAR_MAX_SPEED = 0.6, 0.1, 0.05
SHORTEST_PATH_POSITIONS, SHORTEST_PATH_TOLERANCE = (-1.0, 0.4), 0.1
MOUNTAINCAR_UNSEEN_BALLS: dict[str, tuple[ExcludedBall, ...]] = {
    "position": tuple(ExcludedBall("shortest_path", (x,), SHORTEST_PATH_TOLERANCE) for x in SHORTEST_PATH_POSITIONS),
    "velocity": (ExcludedBall("fast_car", (FAST_CAR_VELOCITY,), FAST_CAR_TOLERANCE),),
}
"""Per goal space, the success regions of the unseen goals kept out of goal sets. The gentle car is
left out: its forbidden speeds make it a reward no plain position goal equals (the paper's position
set holds its target x = 0.6)."""


def _linspace_goals(low: float, high: float, count: int, radius: float | None = None) -> FloatArray:
    """``count`` goals evenly spaced over [low, high] (both ends included), shape (count, 1)."""
    if radius is not None:
        raise PlrayInputError("goals.radius: MountainCar goals have no ring radius")
    return np.linspace(low, high, int(count)).reshape(-1, 1)


MOUNTAINCAR_GOAL_KINDS: dict[str, GoalKind] = {
    "position": GoalKind(
        "position",
        dim=1,
        tolerance=POSITION_TOLERANCE,
        wrapped=False,
        domain=GoalRegion("box", low=(MIN_POSITION,), high=(MAX_POSITION,)),
        spread=partial(_linspace_goals, MIN_POSITION, MAX_POSITION),
        paper=tuple((float(x),) for x in np.linspace(MIN_POSITION, MAX_POSITION, NUM_GOALS)),
        excluded=MOUNTAINCAR_UNSEEN_BALLS["position"],
    ),
    "velocity": GoalKind(
        "velocity",
        dim=1,
        tolerance=VELOCITY_TOLERANCE,
        wrapped=False,
        domain=GoalRegion("box", low=(-MAX_SPEED,), high=(MAX_SPEED,)),
        spread=partial(_linspace_goals, -MAX_SPEED, MAX_SPEED),
        paper=tuple((float(x),) for x in np.linspace(-MAX_SPEED, MAX_SPEED, NUM_GOALS)),
        excluded=MOUNTAINCAR_UNSEEN_BALLS["velocity"],
    ),
}
"""MountainCar's goal kinds; a task offers the kind of its goal family only."""


def _free_velocity(states: FloatArray, actions: np.ndarray) -> FloatArray:
    """v' before the wall: clip(v + (a − 1) force − cos(3x) gravity, ±max speed), shape (B,)."""
    x, v = states[:, 0], states[:, 1]
    return np.clip(v + (actions - 1) * FORCE - np.cos(3.0 * x) * GRAVITY, -MAX_SPEED, MAX_SPEED)


def _into_box(x: FloatArray, v: FloatArray) -> FloatArray:
    """[x, v] clipped to the box, v zeroed at the inelastic left wall (v < 0 at x = −1.2), shape (..., 2)."""
    x = np.clip(x, MIN_POSITION, MAX_POSITION)
    v = np.clip(v, -MAX_SPEED, MAX_SPEED)
    return np.stack([x, np.where((x == MIN_POSITION) & (v < 0.0), 0.0, v)], axis=-1)


class MountainCarTask(GoalTask):
    """Goal-conditioned MountainCar with gymnax physics; see the module docstring.

    Args:
        goal: ``"position"`` (goals on x) or ``"velocity"`` (goals on v).
        num_goals: |G|; the paper's agents use 4.
        placement: ``"spread"`` (evenly spaced over the goal dim's range, the paper's) or
            ``"random"`` (uniform over that range, seeded).
        seed: seeds the ``random`` placement.
        noise_std: None (the paper's deterministic physics) or (σ_x, σ_v) >= 0 of additive Gaussian
            process noise (see the module docstring); the name gains ``-noisy``.
        goal_set: a :class:`~plray.envs.goalsets.GoalSet` (or its plain-dict form) of kind
            ``goal``, instead of ``num_goals``/``placement``/``seed`` (which must keep their
            defaults); None: those arguments decide.

    Attributes:
        goal: the goal family.
        goal_index: the state dim the goals live on (0 for x, 1 for v).
        goal_set: the goal set, or None when the legacy arguments built the goals.
        goal_kinds: the goal kinds this task offers (its family's).
    """

    state_dim: int = 2
    obs_dim: int = 2
    goal_dim: int = 1
    num_actions: int | None = 3
    max_episode_steps: int = 200
    gamma: float = 0.99

    def __init__(
        self,
        goal: str = "position",
        num_goals: int = NUM_GOALS,
        placement: str = "spread",
        seed: int = 0,
        noise_std: tuple[float, float] | None = None,
        goal_set: GoalSet | GoalMixture | dict[str, Any] | None = None,
    ) -> None:
        check_choice(goal, "goal", GOALS)
        check_choice(placement, "placement", ("spread", "random"))
        if isinstance(num_goals, bool) or not isinstance(num_goals, int | np.integer) or num_goals < 1:
            raise PlrayInputError(f"num_goals: expected a positive integer, got {num_goals!r}")
        self.goal = goal
        self.name = f"mountaincar-{goal}"
        if noise_std is not None:
            try:
                sigma = np.asarray(noise_std, dtype=np.float64)
            except (TypeError, ValueError):
                sigma = np.full(0, np.nan)
            if sigma.shape != (2,) or not np.isfinite(sigma).all() or (sigma < 0).any():
                raise PlrayInputError(
                    f"noise_std: expected two finite numbers >= 0 (sigma_x, sigma_v), got {noise_std!r}"
                )
            self.noise_std = sigma
            self.name = f"mountaincar-{goal}-noisy"
        self.goal_index = 0 if goal == "position" else 1
        self.state_low = np.array([MIN_POSITION, -MAX_SPEED])
        self.state_high = np.array([MAX_POSITION, MAX_SPEED])
        if goal == "position":
            low, high, self.goal_tolerance = MIN_POSITION, MAX_POSITION, POSITION_TOLERANCE
        else:
            low, high, self.goal_tolerance = -MAX_SPEED, MAX_SPEED, VELOCITY_TOLERANCE
        self.goal_kinds = {goal: MOUNTAINCAR_GOAL_KINDS[goal]}
        self.goal_set = goal_set_kwarg(goal_set)
        if self.goal_set is not None:
            if (num_goals, placement, seed) != (NUM_GOALS, "spread", 0):
                raise PlrayInputError("goal_set: give a goal set or num_goals/placement/seed, not both")
            self.training_goals = self.goal_set.build(self)
            return
        if placement == "spread":
            values = np.linspace(low, high, int(num_goals))
        else:
            values = np.sort(np.random.default_rng([seed, 5]).uniform(low, high, int(num_goals)))
        self.training_goals = values.reshape(-1, 1)

    def __repr__(self) -> str:
        noise = "" if self.noise_std is None else f", noise_std={tuple(float(x) for x in self.noise_std)}"
        goals = f"num_goals={len(self.training_goals)}" if self.goal_set is None else f"goal_set={self.goal_set!r}"
        return f"MountainCarTask(goal={self.goal!r}, {goals}{noise})"

    # ------------------------------------------------------------------ dynamics
    def reset_states(self, n: int, rng: np.random.Generator) -> FloatArray:
        """Initial states: x ~ U[−0.6, −0.4], v = 0.

        Args:
            n: number of episodes, ≥ 0.
            rng: numpy random generator.

        Returns:
            states, shape (n, 2).
        """
        n = check_count(n)
        check_rng(rng)
        states = np.zeros((n, 2))
        states[:, 0] = rng.uniform(RESET_LOW, RESET_HIGH, size=n)
        return states

    def next_state(self, states: FloatArray, actions: np.ndarray) -> FloatArray:
        """Exact successors under gymnax's MountainCar physics (see the module docstring).

        Args:
            states: [x, v] rows, shape (B, 2); any finite values (the update clips them).
            actions: integers in {0, 1, 2}, shape (B,).

        Returns:
            next states, shape (B, 2).
        """
        states = check_batch(states, "states", 2, "d")
        actions = self.check_actions(actions, len(states))
        v_next = _free_velocity(states, actions)
        return _into_box(states[:, 0] + v_next, v_next)

    def add_noise(self, states: FloatArray, noise: FloatArray) -> FloatArray:
        """Noisy successors: f(s, a) + noise, clipped to the box, v zeroed at the left wall, shape (..., 2)."""
        out = np.asarray(states, dtype=np.float64) + noise
        return _into_box(out[..., 0], out[..., 1])

    def left_wall_contact(self, states: FloatArray, actions: np.ndarray) -> np.ndarray:
        """Where a step hits the left wall: x' is clipped to −1.2 and v' is zeroed, shape (B,) bool.

        There the successor jumps (v' = 0 instead of the free v' < 0), and the value at the free
        successor is flat in v' (every such state leads to (−1.2, 0) a step later), so gradient-based
        P-learning gets no signal there; evaluation reports errors inside and outside this set.

        Args:
            states: [x, v] rows, shape (B, 2).
            actions: integers in {0, 1, 2}, shape (B,).
        """
        states = check_batch(states, "states", 2, "d")
        actions = self.check_actions(actions, len(states))
        v_free = _free_velocity(states, actions)
        return (states[:, 0] + v_free <= MIN_POSITION) & (v_free < 0.0)

    def wall_plateau(self, states: FloatArray) -> np.ndarray:
        """States from which every action hits the left wall on the next step, shape (B,) bool.

        From all of them the successor is (−1.2, 0), so V is the same at every plateau state that
        earns the same reward: an agent's Q-values cannot say where inside the plateau a successor
        lies (bench/mountaincar_wall.py measures what that costs in WM_NMSE).

        Args:
            states: [x, v] rows, shape (B, 2).
        """
        states = check_batch(states, "states", 2, "d")
        n = len(states)
        return np.logical_and.reduce([self.left_wall_contact(states, np.full(n, a)) for a in range(3)])

    def observe(self, states: FloatArray) -> FloatArray:
        """The observation [x, v] (the state itself), shape (B, 2)."""
        return check_batch(states, "states", 2, "d").copy()

    def observe_torch(self, states: Any) -> Any:
        """The observation [x, v] in torch (the identity), (B, 2) -> (B, 2)."""
        return states

    def achieved_goal(self, states: FloatArray) -> FloatArray:
        """x (position goals) or v (velocity goals) of states (B, 2), shape (B, 1)."""
        states = check_batch(states, "states", 2, "d")
        return states[:, [self.goal_index]].copy()

    def achieved_goal_from_obs(self, obs: FloatArray) -> FloatArray:
        """x or v read off observations (B, 2), shape (B, 1)."""
        obs = check_batch(obs, "obs", 2, "o")
        return obs[:, [self.goal_index]].copy()
