"""The contract every continuous-state goal-conditioned task implements, and gymnasium envs over it.

A :class:`GoalTask` holds a task's exact dynamics as batched numpy functions, so that ground truth
(grid policy evaluation), P-learning's samplers and the training environments all use one
implementation. Arrays are batch-first float64; shapes use B (batch), d (state_dim),
o (obs_dim), k (goal_dim).

Rewards follow the paper (docs/method.md#environments): paid on arrival in the next state s', and a
function of the goal-space projection of s' only ("achieved goal"), which is what hindsight
relabelling needs: r(s', g) = reward(achieved_goal(s'), g). Training rewards are sparse,
1[‖achieved − g‖ < tolerance], and the episode terminates on reaching the goal.

The observation the agent sees is ``concat(observe(s), g)``: a single flat Box (float32), with
the goal in its last ``goal_dim`` entries.

Goal mixtures (:class:`plray.envs.goalsets.GoalMixture`) live here, for every task: a task whose
goal set is a mixture has goals ``[target (k), one-hot (K)]`` (``goal_dim`` k + K) and scores each
goal by its own kind, through :meth:`GoalTask.achieved_goal_of_kind` (which such a task implements)
and the kind's tolerance and distance. Everything that needs "the achieved goal of this goal"
(rewards, terminations, hindsight relabelling) asks :meth:`GoalTask.achieved_goal_for` /
:meth:`GoalTask.achieved_goal_for_obs`, which for every other goal set is the plain achieved goal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from plray.core.types import BoolArray, FloatArray
from plray.utils.validation import PlrayInputError, as_float_array, check_shape

if TYPE_CHECKING:
    from plray.envs.goalsets import GoalKind, GoalMixture, GoalSet

QUADRATURE_ORDER = 5
"""Gauss–Hermite nodes per noisy dim of :meth:`GoalTask.successor_quadrature` (exact to degree 9)."""


def gauss_hermite(order: int, dims: int) -> tuple[FloatArray, FloatArray]:
    """Tensor-product Gauss–Hermite rule for N(0, I_dims): E f(z) ≈ Σ_k w_k f(z_k).

    Exact for polynomials of degree < 2·order in each coordinate.

    Args:
        order: nodes per dim, >= 1.
        dims: number of dims, >= 0 (0 gives the single node z = () with weight 1).

    Returns:
        (nodes (order^dims, dims), weights (order^dims,) summing to 1).
    """
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 1:
        raise PlrayInputError(f"order: expected a positive integer, got {order!r}")
    z, w = np.polynomial.hermite_e.hermegauss(int(order))  # probabilists' Hermite: weight exp(−z²/2)
    w = w / w.sum()
    nodes = np.stack(np.meshgrid(*([z] * dims), indexing="ij"), axis=-1).reshape(-1, dims)
    weights = np.prod(np.stack(np.meshgrid(*([w] * dims), indexing="ij"), axis=-1).reshape(-1, dims), axis=1)
    return nodes, weights


def wrap_angle(x: FloatArray) -> FloatArray:
    """Wrap angles to [−π, π)."""
    return (np.asarray(x) + np.pi) % (2.0 * np.pi) - np.pi


def wrap_angle_torch(x: Any) -> Any:
    """Wrap angles to [−π, π) in torch (gradient 1 almost everywhere)."""
    import torch

    return torch.remainder(x + torch.pi, 2.0 * torch.pi) - torch.pi


def check_batch(x: object, name: str, width: int, axis_name: str) -> FloatArray:
    """A finite float64 batch of shape (B, width), or :class:`PlrayInputError` naming ``name``."""
    arr = as_float_array(x, name, ndim=2)
    check_shape(arr, name, (None, width), ("B", axis_name))
    return arr


def check_count(n: object) -> int:
    """A non-negative integer count."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise PlrayInputError(f"n: expected a non-negative integer, got {n!r}")
    return int(n)


def check_rng(rng: object) -> None:
    """A numpy random generator."""
    if not isinstance(rng, np.random.Generator):
        raise PlrayInputError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")


class GoalTask(ABC):
    """Exact, batched dynamics and rewards of a goal-conditioned task.

    Subclasses set the class attributes and implement the abstract methods.

    Attributes:
        name: registry name, e.g. ``"mountaincar-position"``.
        state_dim: d, dimension of the full (Markov) state the dynamics act on.
        obs_dim: o, dimension of ``observe(state)``.
        goal_dim: k, dimension of goals and achieved goals.
        num_actions: number of discrete actions, or None for continuous actions.
        action_dim: dimension of a continuous action (1 for discrete tasks, unused).
        action_low, action_high: bounds of continuous actions, shape (action_dim,).
        angle_dims: state dims that are angles, wrapped to [−π, π).
        state_low, state_high: the box of states used for uniform sampling and grids, shape (d,).
        max_episode_steps: episode length before truncation.
        goal_tolerance: a, the radius of the sparse goal reward.
        gamma: the discount the paper uses for this task.
        training_goals: the goal set G, shape (G, k).
        goal_set: the :class:`~plray.envs.goalsets.GoalSet` (or
            :class:`~plray.envs.goalsets.GoalMixture`) that built ``training_goals``, or None
            (the task's own fixed set); with a distribution, episodes sample goals from it.
        goal_kinds: the goal kinds the task's goal sets may use (empty: it takes none).
        noise_std: None for deterministic dynamics (the paper's tasks); otherwise σ (d,) of additive
            Gaussian process noise, s' = add_noise(next_state(s, a), σ ⊙ ε) with ε ~ N(0, I). Then
            ``next_state`` is the noise-free step f(s, a), ``sample_next_state`` draws successors and
            ``successor_quadrature`` integrates over them (grid value iteration, oracle Q).
    """

    name: str
    state_dim: int
    obs_dim: int
    goal_dim: int
    num_actions: int | None
    action_dim: int = 1
    angle_dims: tuple[int, ...] = ()
    max_episode_steps: int
    gamma: float = 0.99

    state_low: FloatArray
    state_high: FloatArray
    action_low: FloatArray | None = None
    action_high: FloatArray | None = None
    goal_tolerance: float
    training_goals: FloatArray
    goal_set: GoalSet | GoalMixture | None = None
    goal_kinds: Mapping[str, GoalKind] = {}  # read-only; tasks with goal sets replace it
    noise_std: FloatArray | None = None

    # ------------------------------------------------------------------ dynamics
    @abstractmethod
    def reset_states(self, n: int, rng: np.random.Generator) -> FloatArray:
        """Initial states of n episodes, shape (n, d)."""

    @abstractmethod
    def next_state(self, states: FloatArray, actions: np.ndarray) -> FloatArray:
        """Exact successor of each (state, action): states (B, d), actions (B,) ints or (B, action_dim)."""

    @property
    def stochastic(self) -> bool:
        """Whether the dynamics carry process noise (``noise_std`` set with a positive entry)."""
        return self.noise_std is not None and bool(np.any(np.asarray(self.noise_std) > 0.0))

    def add_noise(self, states: FloatArray, noise: FloatArray) -> FloatArray:
        """Where noise lands: ``wrap(states + noise)`` by default; tasks with a bounded box clip.

        Args:
            states: noise-free successors f(s, a), shape (..., d).
            noise: σ ⊙ ε, same shape.

        Returns:
            noisy successors, shape (..., d).
        """
        return self.wrap(np.asarray(states, dtype=np.float64) + noise)

    def sample_next_state(self, states: FloatArray, actions: np.ndarray, rng: np.random.Generator) -> FloatArray:
        """One successor per (state, action) drawn from the task's kernel, shape (B, d).

        Deterministic tasks return ``next_state`` and leave ``rng`` untouched, so seeded runs of
        the paper's tasks draw the same numbers as before noise existed.
        """
        nxt = self.next_state(states, actions)
        if not self.stochastic:
            return nxt
        assert self.noise_std is not None
        return self.add_noise(nxt, np.asarray(self.noise_std) * rng.standard_normal(nxt.shape))

    def successor_quadrature(
        self, states: FloatArray, actions: np.ndarray, order: int = QUADRATURE_ORDER
    ) -> tuple[FloatArray, FloatArray]:
        """Successor nodes and weights that integrate over the kernel: E f(s') ≈ Σ_k w_k f(s'_k).

        Gauss–Hermite with ``order`` nodes per noisy dim (a tensor product over the dims with
        σ > 0, so K = order^(noisy dims)); exact for polynomials of degree < 2·order in the noise
        before ``add_noise``'s clipping or wrapping. A deterministic task gives K = 1.

        Args:
            states: (B, d); actions: (B,) ints or (B, action_dim).
            order: nodes per noisy dim, >= 1.

        Returns:
            (nodes (B, K, d), weights (K,) summing to 1).
        """
        nxt = self.next_state(states, actions)
        if not self.stochastic:
            return nxt[:, None, :], np.ones(1)
        assert self.noise_std is not None
        sigma = np.asarray(self.noise_std, dtype=np.float64)
        noisy = np.flatnonzero(sigma > 0.0)
        z, weights = gauss_hermite(order, noisy.size)
        offsets = np.zeros((len(weights), self.state_dim))
        offsets[:, noisy] = z * sigma[noisy]
        return self.add_noise(nxt[:, None, :], offsets[None]), weights

    @abstractmethod
    def observe(self, states: FloatArray) -> FloatArray:
        """The agent's observation of each state (without the goal), shape (B, o)."""

    def observe_torch(self, states: Any) -> Any:
        """``observe`` in torch, differentiable in the states (B, d) -> (B, o).

        Neural P-learning sends gradients through predicted next states into the agent's
        Q-network, which reads observations; tasks that support it override this.
        """
        raise PlrayInputError(f"task {self.name!r} has no differentiable observation function")

    @abstractmethod
    def achieved_goal(self, states: FloatArray) -> FloatArray:
        """Goal-space projection of each state, shape (B, k)."""

    @abstractmethod
    def achieved_goal_from_obs(self, obs: FloatArray) -> FloatArray:
        """Goal-space projection read off observations (B, o), shape (B, k); used by relabelling."""

    # ------------------------------------------------------------------ goal kinds and mixtures
    def achieved_goal_of_kind(self, kind: str, states: FloatArray) -> FloatArray:
        """The achieved goal of states (B, d) in the goal space of ``kind`` (one of ``goal_kinds``), (B, k).

        Tasks with several goal kinds implement this (and :meth:`achieved_goal_of_kind_from_obs`);
        goal mixtures need it.
        """
        raise PlrayInputError(f"task {self.name!r} has no achieved goals per goal kind (no goal mixtures)")

    def achieved_goal_of_kind_from_obs(self, kind: str, obs: FloatArray) -> FloatArray:
        """:meth:`achieved_goal_of_kind` read off observations (B, o), shape (B, k)."""
        raise PlrayInputError(f"task {self.name!r} has no achieved goals per goal kind (no goal mixtures)")

    @property
    def goal_mixture(self) -> GoalMixture | None:
        """The task's goal set if it is a mixture, else None."""
        from plray.envs.goalsets import GoalMixture

        return self.goal_set if isinstance(self.goal_set, GoalMixture) else None

    def achieved_goal_for(self, states: FloatArray, goals: FloatArray) -> FloatArray:
        """The achieved goal of each state (B, d) in the goal space of its goal (B, k), shape (B, k).

        For a mixture ``[achieved_goal_of_kind(j, s), one_hot(j)]`` with j the goal's kind;
        otherwise :meth:`achieved_goal` (the goal is not read).
        """
        mix = self.goal_mixture
        if mix is None:
            return self.achieved_goal(states)
        states, goals = np.asarray(states), check_batch(goals, "goals", self.goal_dim, "k")
        return mix.achieved_for(goals, lambda kind, rows: self.achieved_goal_of_kind(kind, states[rows]))

    def achieved_goal_for_obs(self, obs: FloatArray, goals: FloatArray) -> FloatArray:
        """:meth:`achieved_goal_for` read off observations (B, o) (what relabelling uses), shape (B, k)."""
        mix = self.goal_mixture
        if mix is None:
            return self.achieved_goal_from_obs(obs)
        obs, goals = np.asarray(obs), check_batch(goals, "goals", self.goal_dim, "k")
        return mix.achieved_for(goals, lambda kind, rows: self.achieved_goal_of_kind_from_obs(kind, obs[rows]))

    def every_achieved_goal(self, x: FloatArray, *, from_obs: bool = False) -> FloatArray:
        """A mixture's achieved goals of states (or observations) (B, ·) in every kind, kind-major, (K·B, k + K).

        What a mixture task's :meth:`achieved_goal` returns: without a goal, every goal a state
        attains (rows j·B .. (j+1)·B − 1 are kind j's, with its one-hot).
        """
        mix = self.goal_mixture
        if mix is None:
            raise PlrayInputError("every_achieved_goal: the task's goal set is not a mixture")
        of_kind = self.achieved_goal_of_kind_from_obs if from_obs else self.achieved_goal_of_kind
        x = np.asarray(x, dtype=np.float64)
        return np.concatenate([mix.encode(of_kind(kind, x), np.full(len(x), j)) for j, kind in enumerate(mix.kinds)])

    # ------------------------------------------------------------------ rewards
    def reward(self, achieved: FloatArray, goals: FloatArray) -> FloatArray:
        """Sparse reward 1[‖achieved − g‖ < tolerance], shape (B,)."""
        return self.terminal(achieved, goals).astype(np.float64)

    def terminal(self, achieved: FloatArray, goals: FloatArray) -> BoolArray:
        """Whether arriving with ``achieved`` ends the episode for goal ``goals``, shape (B,).

        A mixture: the goal's kind's own test, 1[d_j(achieved, target) < a_j], and the kinds agree
        (:meth:`plray.envs.goalsets.GoalMixture.terminal`).
        """
        mix = self.goal_mixture
        if mix is not None:
            return mix.terminal(self, achieved, goals)
        return np.linalg.norm(np.asarray(achieved) - np.asarray(goals), axis=-1) < self.goal_tolerance

    def reward_at(self, states: FloatArray, goals: FloatArray) -> FloatArray:
        """r(s', g) for next states (B, d) and goals (B, k), shape (B,)."""
        return self.reward(self.achieved_goal_for(states, goals), goals)

    def terminal_at(self, states: FloatArray, goals: FloatArray) -> BoolArray:
        """done(s', g) for next states (B, d) and goals (B, k), shape (B,)."""
        return self.terminal(self.achieved_goal_for(states, goals), goals)

    def reward_from_obs(self, next_obs: FloatArray, goals: FloatArray) -> FloatArray:
        """r(s', g) from the agent's observation of s' (B, o) and goals (B, k): what relabelling needs.

        The default reads the achieved goal off the observation; tasks whose rewards are not a
        function of an achieved goal (FourRooms' per-goal generic rewards) override this.
        """
        return self.reward(self.achieved_goal_for_obs(next_obs, goals), goals)

    def terminal_from_obs(self, next_obs: FloatArray, goals: FloatArray) -> BoolArray:
        """done(s', g) from the observation of s' (B, o) and goals (B, k), shape (B,)."""
        return self.terminal(self.achieved_goal_for_obs(next_obs, goals), goals)

    # ------------------------------------------------------------------ helpers
    def sample_states(self, n: int, rng: np.random.Generator) -> FloatArray:
        """States uniform over [state_low, state_high], shape (n, d)."""
        return rng.uniform(self.state_low, self.state_high, size=(n, self.state_dim))

    def wrap(self, states: FloatArray) -> FloatArray:
        """Wrap the angle dims of states (..., d); other dims unchanged."""
        out = np.array(states, dtype=np.float64, copy=True)
        for d in self.angle_dims:
            out[..., d] = wrap_angle(out[..., d])
        return out

    def agent_obs(self, states: FloatArray, goals: FloatArray) -> np.ndarray:
        """The observation the agent sees, concat(observe(s), g), float32, shape (B, o + k)."""
        return np.concatenate([self.observe(states), goals], axis=-1).astype(np.float32)

    def observation_space(self) -> spaces.Box:
        return spaces.Box(-np.inf, np.inf, shape=(self.obs_dim + self.goal_dim,), dtype=np.float32)

    def action_space(self) -> gym.Space[Any]:
        if self.num_actions is not None:
            return spaces.Discrete(self.num_actions)
        assert self.action_low is not None and self.action_high is not None
        return spaces.Box(self.action_low.astype(np.float32), self.action_high.astype(np.float32), dtype=np.float32)

    def check_actions(self, actions: np.ndarray, batch: int) -> np.ndarray:
        """Validate a batch of actions, raising :class:`PlrayInputError` that says what was wrong."""
        actions = np.asarray(actions)
        if self.num_actions is not None:
            actions = actions.reshape(-1)
            if actions.shape != (batch,) or not np.issubdtype(actions.dtype, np.integer):
                raise PlrayInputError(f"actions: expected {batch} integers, got {actions.dtype} array {actions.shape}")
            if (actions < 0).any() or (actions >= self.num_actions).any():
                raise PlrayInputError(f"actions: must lie in [0, {self.num_actions}), got {actions}")
            return actions.astype(np.int64)
        if actions.size != batch * self.action_dim:
            raise PlrayInputError(
                f"actions: expected {batch} actions of dimension {self.action_dim}, "
                f"got an array of shape {actions.shape}"
            )
        actions = actions.reshape(batch, self.action_dim).astype(np.float64)
        if not np.isfinite(actions).all():
            raise PlrayInputError("actions: non-finite entries")
        return np.clip(actions, self.action_low, self.action_high)


def goal_distribution(task: GoalTask) -> GoalSet | None:
    """The task's goal set if episodes sample their goals from its distribution, else None."""
    from plray.envs.goalsets import GoalSet

    gs = task.goal_set
    return gs if isinstance(gs, GoalSet) and gs.distribution is not None else None


def sample_training_goals(
    task: GoalTask, n: int, rng: np.random.Generator, goals: FloatArray | None = None
) -> FloatArray:
    """n goals to command (episode resets) or relabel with (HER ``random``), shape (n, k).

    From the task's goal distribution when it has one and no explicit ``goals`` are given;
    otherwise uniformly from ``goals`` (default ``task.training_goals``) with one
    ``rng.integers`` draw, the stream the finite case has always used.
    """
    dist = goal_distribution(task) if goals is None else None
    if dist is not None:
        return dist.sample(n, rng, task)
    pool = np.asarray(task.training_goals if goals is None else goals, dtype=np.float64)
    return pool[rng.integers(len(pool), size=n)]


START_STATES = ("reset", "uniform")
"""Where :class:`GoalVectorEnv` episodes start: the task's reset distribution, or its whole state box."""


class GoalVectorEnv(VectorEnv):
    """B goal-conditioned episodes stepped at once with numpy (NEXT_STEP autoreset, as RLlib expects).

    Each episode's goal is drawn uniformly from ``goals`` (default: the task's training goals) at
    reset, or, when ``goals`` is None and the task's goal set has a distribution, sampled from that
    distribution (:func:`sample_training_goals`). ``info`` carries the batch's ``state`` (B, d) so
    exact quantities stay available.

    Args:
        task: the task.
        num_envs: B.
        goals: goal set to draw from, shape (G, k).
        seed: seeds reset states and goal draws.
        start_states: where episodes start: ``"reset"`` (the task's reset distribution) or
            ``"uniform"`` (uniform over the task's state box: exploring starts, a training choice that
            covers states the reset distribution rarely reaches).
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012 (gymnasium types it an instance attribute)

    def __init__(
        self,
        task: GoalTask,
        num_envs: int,
        goals: FloatArray | None = None,
        seed: int | None = None,
        start_states: str = "reset",
    ):
        if start_states not in START_STATES:
            raise PlrayInputError(f"start_states: unknown {start_states!r}; choose one of {', '.join(START_STATES)}")
        self.task = task
        self.start_states = start_states
        self.num_envs = int(num_envs)
        self.goals = np.asarray(task.training_goals if goals is None else goals, dtype=np.float64)
        if self.goals.ndim != 2 or self.goals.shape[1] != task.goal_dim:
            raise PlrayInputError(f"goals: expected shape (G, {task.goal_dim}), got {self.goals.shape}")
        self._explicit_goals = None if goals is None else self.goals
        self.single_observation_space = task.observation_space()
        self.single_action_space = task.action_space()
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._rng = np.random.default_rng(seed)
        self._states = np.zeros((self.num_envs, task.state_dim))
        self._goal = np.zeros((self.num_envs, task.goal_dim))
        self._t = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)

    def _reset_some(self, mask: np.ndarray) -> None:
        n = int(mask.sum())
        if n:
            if self.start_states == "uniform":
                self._states[mask] = self.task.sample_states(n, self._rng)
            else:
                self._states[mask] = self.task.reset_states(n, self._rng)
            self._goal[mask] = sample_training_goals(self.task, n, self._rng, self._explicit_goals)
            self._t[mask] = 0

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed if isinstance(seed, int) else seed[0])
        self._reset_some(np.ones(self.num_envs, dtype=bool))
        self._needs_reset[:] = False
        return self.task.agent_obs(self._states, self._goal), {"state": self._states.copy()}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = self.task.check_actions(actions, self.num_envs)
        reset = self._needs_reset.copy()
        step = ~reset
        nxt = self.task.sample_next_state(self._states, actions, self._rng)
        rewards = np.where(step, self.task.reward_at(nxt, self._goal), 0.0)
        terminated = step & self.task.terminal_at(nxt, self._goal)
        self._states = np.where(step[:, None], nxt, self._states)
        self._t += step
        truncated = step & ~terminated & (self._t >= self.task.max_episode_steps)
        self._reset_some(reset)
        self._needs_reset = terminated | truncated
        obs = self.task.agent_obs(self._states, self._goal)
        return obs, rewards, terminated, truncated, {"state": self._states.copy()}


class GoalEnv(gym.Env[np.ndarray, Any]):
    """A single goal-conditioned episode over a :class:`GoalTask` (a B = 1 view of the same dynamics).

    ``reset(options={"goal": g, "state": s})`` may fix the goal (k,) and the start state (d,).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium types it an instance attribute)

    def __init__(self, task: GoalTask, goals: FloatArray | None = None) -> None:
        self.task = task
        self.goals = np.asarray(task.training_goals if goals is None else goals, dtype=np.float64)
        self._explicit_goals = None if goals is None else self.goals
        self.observation_space = task.observation_space()
        self.action_space = task.action_space()
        self._state = np.zeros((1, task.state_dim))
        self._goal = np.zeros((1, task.goal_dim))
        self._t = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        goal = options.get("goal")
        for key, size in (("goal", self.task.goal_dim), ("state", self.task.state_dim)):
            value = options.get(key)
            if value is not None:
                arr = np.asarray(value, dtype=np.float64)
                if arr.size != size or not np.isfinite(arr).all():
                    raise PlrayInputError(f"options[{key!r}]: expected {size} finite numbers, got {value!r}")
        if goal is not None:
            self._goal = np.asarray(goal, dtype=np.float64).reshape(1, self.task.goal_dim)
        elif self._explicit_goals is None and goal_distribution(self.task) is not None:
            self._goal = sample_training_goals(self.task, 1, self.np_random)
        else:
            self._goal = self.goals[[self.np_random.integers(len(self.goals))]]
        state = options.get("state")
        self._state = (
            self.task.reset_states(1, self.np_random)
            if state is None
            else np.asarray(state, dtype=np.float64).reshape(1, self.task.state_dim)
        )
        self._t = 0
        return self.task.agent_obs(self._state, self._goal)[0], {"state": self._state[0].copy()}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        actions = self.task.check_actions(np.asarray([action]), 1)
        self._state = self.task.sample_next_state(self._state, actions, self.np_random)
        reward = float(self.task.reward_at(self._state, self._goal)[0])
        terminated = bool(self.task.terminal_at(self._state, self._goal)[0])
        self._t += 1
        truncated = not terminated and self._t >= self.task.max_episode_steps
        obs = self.task.agent_obs(self._state, self._goal)[0]
        return obs, reward, terminated, truncated, {"state": self._state[0].copy()}
