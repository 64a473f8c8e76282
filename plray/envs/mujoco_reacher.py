"""Gymnasium's MuJoCo ``Reacher-v5`` made goal-conditioned, with exact batched dynamics.

The paper's page labels its reacher "MuJoCo Reacher" although its code uses a kinematic arm
(:mod:`plray.envs.reacher`); this task is the real MuJoCo physics, for when the label is taken at
its word; docs/method.md#mujoco-reacher records the deviation.

Physics: the model is gymnasium's own ``reacher.xml`` asset (two hinge joints, armature 1,
damping 1, motor gear 200, RK4 with timestep 0.01, no contacts), stepped ``frame_skip = 2`` times
per action as in ``Reacher-v5`` (so one step is 0.02 s). Actions are the two motor controls in
[−1, 1]² (continuous; out-of-range actions are clipped, as MuJoCo's ``ctrlrange`` would).

State s = [θ₁, θ₂, ω₁, ω₂]: the arm's joint angles and velocities (MuJoCo's ``qpos[:2]``,
``qvel[:2]``). θ₂ is the *relative* angle of the second link. The target body of ``Reacher-v5``
has its own slide joints but no coupling to the arm (no contacts, no shared bodies, gravity along
z), so it is parked at its reference position with zero velocity and left out of the state; the
goal lives in the agent's observation instead. ``next_state`` is deterministic given (s, a): each
row starts from MuJoCo's reset data (zero warm start), so no solver state leaks between rows.

Design decisions (none of them fixed by the paper):

* θ₁ (unlimited hinge) is wrapped to [−π, π): the dynamics do not depend on it, so wrapping is
  exact. θ₂ is **not** wrapped: ``joint1`` is limited to [−3, 3] by a soft constraint, so θ₂ and
  θ₂ ± 2π are different physical states (fast motion into the limit can overshoot past π).
  ``angle_dims = (0,)``.
* No velocity clipping (MuJoCo has none). The state box is θ₁ ∈ [−π, π], θ₂ ∈ [−3, 3] (the joint
  range), ω ∈ [−20, 20] rad/s: about the 99th percentile of |ω| under uniformly random actions
  over 50-step episodes (full torque can reach ~200 rad/s, but no useful policy goes there).
* Reset: θ₁ ~ U[−π, π], θ₂ ~ U[−3, 3], ω ~ U[−1, 1]², i.e. near rest anywhere in the workspace.
  ``Reacher-v5`` itself starts within ±0.1 rad of the straight arm; the wide start mirrors the
  kinematic reacher's (θ ~ U[−π, π]) so that start states cover the state space.
* Goals: the fingertip at radius 0.15 m, angles 0, π/2, π, 3π/2, i.e. (±0.15, 0), (0, ±0.15):
  inside ``Reacher-v5``'s target disk (radius 0.2) and reachable with |θ₂| ≈ 1.55 (reach is
  [0.018, 0.21] m given the joint limit). Tolerance 0.02 m, 10% of the arm's 0.21 m reach, the
  same ratio as the kinematic reacher's 0.2 for reach 2.
* Episodes last 50 steps (``Reacher-v5``'s limit); γ = 0.99.
* ``planning_actions``: the 9 controls {−1, 0, 1}² (the corners and centre of the control box, as
  the kinematic reacher's :data:`~plray.envs.reacher.TORQUES`), the finite subset grid planners use;
  :class:`DiscreteMujocoReacherTask` (``mujoco-reacher-discrete``) is the same physics with those 9
  controls as discrete actions, for value-based agents (PQN, DQN) next to SAC on the same task.

Observation (8-D): [cos θ₁, cos θ₂, sin θ₁, sin θ₂, ω₁, ω₂, fp_x, fp_y], ``Reacher-v5``'s own
layout without the target coordinates, plus the fingertip position. The fingertip (the achieved
goal) is computed in closed form, base + L₁(cos θ₁, sin θ₁) + L₂(cos(θ₁+θ₂), sin(θ₁+θ₂)), with
the link offsets L₁ = 0.1, L₂ = 0.11 read from the model (the tests check it against
``mj_kinematics``).

Stepping uses :func:`mujoco.rollout.rollout` over the batch on one thread (~30 µs per row). A task
owns one ``MjData``: use one task per thread. Tasks pickle by reloading the model.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import gymnasium
import mujoco
import numpy as np
from mujoco import rollout

from plray.core.types import FloatArray
from plray.envs.base import GoalTask, check_batch, check_count, check_rng, wrap_angle
from plray.envs.reacher import TORQUES
from plray.utils.validation import PlrayInputError

FRAME_SKIP = 2
THETA2_LIMIT = 3.0
MAX_OMEGA_BOX = 20.0
RESET_OMEGA = 1.0
GOAL_RADIUS = 0.15
GOAL_TOLERANCE = 0.02
_STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS


def reacher_xml_path() -> str:
    """Path of gymnasium's installed ``reacher.xml`` (the ``Reacher-v5`` model)."""
    return os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", "reacher.xml")


class MujocoReacherTask(GoalTask):
    """Goal-conditioned ``Reacher-v5`` (MuJoCo physics, continuous actions); see the module docstring.

    Attributes:
        model, data: the MuJoCo model and the one ``MjData`` used for stepping.
        link_lengths: (L₁, L₂), the offsets of the second link and of the fingertip, in metres.
        frame_skip: simulator steps per action.
    """

    name: str = "mujoco-reacher"
    state_dim: int = 4
    obs_dim: int = 8
    goal_dim: int = 2
    goal_kind: str = "fingertip"
    """The goal space: the fingertip's (x, y); the task's one fixed goal set, no goal-set options."""
    num_actions: int | None = None
    action_dim: int = 2
    angle_dims: tuple[int, ...] = (0,)
    max_episode_steps: int = 50
    gamma: float = 0.99
    frame_skip: ClassVar[int] = FRAME_SKIP
    planning_actions: FloatArray = TORQUES

    def __init__(self) -> None:
        self._load()
        self.action_low = np.array([-1.0, -1.0])
        self.action_high = np.array([1.0, 1.0])
        self.state_low = np.array([-np.pi, -THETA2_LIMIT, -MAX_OMEGA_BOX, -MAX_OMEGA_BOX])
        self.state_high = np.array([np.pi, THETA2_LIMIT, MAX_OMEGA_BOX, MAX_OMEGA_BOX])
        self.training_goals = GOAL_RADIUS * np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        self.goal_tolerance = GOAL_TOLERANCE

    def _load(self) -> None:
        self.model = mujoco.MjModel.from_xml_path(reacher_xml_path())
        self.data = mujoco.MjData(self.model)
        m = self.model
        if (m.nq, m.nv, m.nu, m.na) != (4, 4, 2, 0):
            raise RuntimeError(f"unexpected reacher.xml: nq={m.nq} nv={m.nv} nu={m.nu} na={m.na}")
        self.link_lengths = (float(m.body("body1").pos[0]), float(m.body("fingertip").pos[0]))
        self._base_xy = np.array(m.body("body0").pos[:2], dtype=np.float64)
        # Full-physics state rows are [time, qpos (nq), qvel (nv), ...]; the template is the reset
        # data, whose target qpos is its reference position.
        mujoco.mj_resetData(m, self.data)
        self._template = np.empty(mujoco.mj_stateSize(m, _STATE_SPEC))
        mujoco.mj_getState(m, self.data, self._template, _STATE_SPEC)
        start = mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_TIME)
        self._qpos = slice(start, start + 2)
        self._qvel = slice(start + m.nq, start + m.nq + 2)
        self._warmstart = np.zeros((1, m.nv))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("model", "data", "_template", "_warmstart"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._load()

    def __repr__(self) -> str:
        return "MujocoReacherTask()"

    # ------------------------------------------------------------------ dynamics
    def reset_states(self, n: int, rng: np.random.Generator) -> FloatArray:
        """Initial states: θ₁ ~ U[−π, π], θ₂ ~ U[−3, 3], ω ~ U[−1, 1]².

        Args:
            n: number of episodes, ≥ 0.
            rng: numpy random generator.

        Returns:
            states [θ₁, θ₂, ω₁, ω₂], shape (n, 4).
        """
        n = check_count(n)
        check_rng(rng)
        theta1 = rng.uniform(-np.pi, np.pi, size=(n, 1))
        theta2 = rng.uniform(-THETA2_LIMIT, THETA2_LIMIT, size=(n, 1))
        omega = rng.uniform(-RESET_OMEGA, RESET_OMEGA, size=(n, 2))
        return np.concatenate([theta1, theta2, omega], axis=-1)

    def next_state(self, states: FloatArray, actions: np.ndarray) -> FloatArray:
        """Exact successors: set qpos/qvel, apply ctrl = action for ``frame_skip`` MuJoCo steps.

        Args:
            states: [θ₁, θ₂, ω₁, ω₂] rows, shape (B, 4).
            actions: controls, shape (B, 2), clipped to [−1, 1].

        Returns:
            next states, shape (B, 4), θ₁ wrapped to [−π, π).
        """
        states = check_batch(states, "states", 4, "d")
        if np.shape(actions) != (len(states), 2):
            raise PlrayInputError(f"actions: expected shape ({len(states)}, 2), got {np.shape(actions)}")
        return self._simulate(states, self.check_actions(actions, len(states)))

    def _simulate(self, states: FloatArray, controls: FloatArray) -> FloatArray:
        """MuJoCo's successors of checked states (B, 4) under controls (B, 2) in [−1, 1]², shape (B, 4)."""
        actions = controls
        if len(states) == 0:
            return np.zeros((0, 4))
        initial = np.tile(self._template, (len(states), 1))
        initial[:, self._qpos] = states[:, :2]
        initial[:, self._qvel] = states[:, 2:]
        trajectory, _ = rollout.rollout(
            self.model,
            self.data,
            initial,
            np.ascontiguousarray(actions[:, None, :]),
            nstep=self.frame_skip,
            initial_warmstart=self._warmstart,
        )
        last = trajectory[:, -1]
        nxt = np.concatenate([last[:, self._qpos], last[:, self._qvel]], axis=-1)
        nxt[:, 0] = wrap_angle(nxt[:, 0])
        return nxt

    def fingertip(self, states: FloatArray) -> FloatArray:
        """Fingertip xy of states (B, 4) by forward kinematics, shape (B, 2)."""
        states = check_batch(states, "states", 4, "d")
        l1, l2 = self.link_lengths
        t1, t12 = states[:, 0], states[:, 0] + states[:, 1]
        x = self._base_xy[0] + l1 * np.cos(t1) + l2 * np.cos(t12)
        y = self._base_xy[1] + l1 * np.sin(t1) + l2 * np.sin(t12)
        return np.stack([x, y], axis=-1)

    def observe_torch(self, states: Any) -> Any:
        """``observe`` in torch, differentiable (closed-form kinematics), (B, 4) -> (B, 8)."""
        import torch

        l1, l2 = self.link_lengths
        theta = states[:, :2]
        t1, t12 = states[:, 0], states[:, 0] + states[:, 1]
        tip = torch.stack(
            [
                self._base_xy[0] + l1 * torch.cos(t1) + l2 * torch.cos(t12),
                self._base_xy[1] + l1 * torch.sin(t1) + l2 * torch.sin(t12),
            ],
            dim=-1,
        )
        return torch.cat([torch.cos(theta), torch.sin(theta), states[:, 2:], tip], dim=-1)

    def observe(self, states: FloatArray) -> FloatArray:
        """The 8-D observation [cos θ₁, cos θ₂, sin θ₁, sin θ₂, ω₁, ω₂, fp_x, fp_y], shape (B, 8)."""
        states = check_batch(states, "states", 4, "d")
        theta = states[:, :2]
        return np.concatenate([np.cos(theta), np.sin(theta), states[:, 2:], self.fingertip(states)], axis=-1)

    def achieved_goal(self, states: FloatArray) -> FloatArray:
        """Fingertip xy of states (B, 4), shape (B, 2)."""
        return self.fingertip(states)

    def achieved_goal_from_obs(self, obs: FloatArray) -> FloatArray:
        """Fingertip xy read off observations (B, 8) (dims 6 and 7), shape (B, 2)."""
        obs = check_batch(obs, "obs", 8, "o")
        return obs[:, 6:8].copy()

    def discrete_counterpart(self) -> DiscreteMujocoReacherTask:
        """The same physics with the 9 controls of ``planning_actions`` as discrete actions."""
        return DiscreteMujocoReacherTask()


class DiscreteMujocoReacherTask(MujocoReacherTask):
    """``mujoco-reacher`` with 9 discrete actions: index a applies the control ``TORQUES[a]``
    ({−1, 0, 1}², shape (9, 2)); successors equal the continuous task's at those controls bit for bit."""

    name: str = "mujoco-reacher-discrete"
    num_actions: int | None = 9
    action_dim: int = 1

    def __init__(self) -> None:
        super().__init__()
        self.action_low = self.action_high = None  # discrete: no action box

    def __repr__(self) -> str:
        return "DiscreteMujocoReacherTask()"

    def next_state(self, states: FloatArray, actions: np.ndarray) -> FloatArray:
        """Exact successors of states (B, 4) under action indices (B,) in [0, 9), shape (B, 4)."""
        states = check_batch(states, "states", 4, "d")
        return self._simulate(states, TORQUES[self.check_actions(actions, len(states))])

    def discrete_counterpart(self) -> DiscreteMujocoReacherTask:
        """Itself: the task is already discrete."""
        return self
