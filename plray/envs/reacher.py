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
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from plray.core.types import FloatArray
from plray.envs.base import GoalTask, check_batch, check_count, check_rng, wrap_angle

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


class KinematicReacherTask(GoalTask):
    """The paper's kinematic two-link reacher with 9 discrete torque actions; see the module docstring."""

    name: str = "reacher"
    state_dim: int = 4
    obs_dim: int = 6
    goal_dim: int = 2
    num_actions: int | None = 9
    angle_dims: tuple[int, ...] = (0, 1)
    max_episode_steps: int = 100
    gamma: float = 0.99

    def __init__(self) -> None:
        self.state_low = np.array([-np.pi, -np.pi, -MAX_OMEGA_BOX, -MAX_OMEGA_BOX])
        self.state_high = np.array([np.pi, np.pi, MAX_OMEGA_BOX, MAX_OMEGA_BOX])
        # radius 1 at angles 0, π/2, π, 3π/2, written exactly (cos(π/2) would give 6e-17)
        self.training_goals = GOAL_RADIUS * np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        self.goal_tolerance = GOAL_TOLERANCE

    def __repr__(self) -> str:
        return "KinematicReacherTask()"

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

    def achieved_goal(self, states: FloatArray) -> FloatArray:
        """Fingertip position of states (B, 4), shape (B, 2)."""
        return self.fingertip(states)

    def achieved_goal_from_obs(self, obs: FloatArray) -> FloatArray:
        """Fingertip position read off observations (B, 6) (dims 4 and 5), shape (B, 2)."""
        obs = check_batch(obs, "obs", 6, "o")
        return obs[:, 4:6].copy()
