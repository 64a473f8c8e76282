"""FourRooms: the finite goal-conditioned MDP on which P-learning's theory is exact.

Layout (11 × 11 with border walls, a central cross of walls and four one-cell doorways;
``#`` wall, ``.`` free, ``T`` teleport cell in the ``teleport`` variant)::

        0 1 2 3 4 5 6 7 8 9 10
     0  # # # # # # # # # # #
     1  # . . . . # . . . . #
     2  # . . . . # . . . . #
     3  # . . . . . . . . . #      doorway (3, 5) joins the top rooms
     4  # . . . T # T . . . #
     5  # # . # # # # # . # #      doorways (5, 2) and (5, 8)
     6  # . . . T # T . . . #
     7  # . . . . . . . . . #      doorway (7, 5) joins the bottom rooms
     8  # . . . . # . . . . #
     9  # . . . . # . . . . #
    10  # # # # # # # # # # #

81 interior cells − 13 wall cells = 68 free states, indexed in row-major order. Actions are
0 up, 1 right, 2 down, 3 left; a move into a wall leaves the agent where it is.

Variants (docs/method.md#fourrooms):

* ``deterministic``: the intended move always happens.
* ``windy``: the intended move w.p. 1/2, otherwise rotated 90° clockwise or anticlockwise,
  w.p. 1/4 each.
* ``teleport``: moves are deterministic, but a move that arrives on one of the four T cells (the
  cells diagonally adjacent to the centre) re-emits the agent uniformly onto the 15 non-T cells of
  the diagonally opposite room. The T cells themselves are then only ever start states; this
  reading of "re-emit" is ours, since the paper releases no FourRooms code.

Rewards are paid on arrival, r(s', g), and by default the episode terminates on arriving at the
goal. Reward families (one column per goal):

* ``indicator``: r(s', g) = 1[s' = g];
* ``gaussian``: r(s', g) = exp(−‖c(s') − c(g)‖² / 2σ²), c the (row, col) cell, σ = 1;
* ``generic``: the indicator plus seeded U[−η, η] noise on every (s', g), η = 0.1: the paper's
  "reward perturbed with uniform noise at initialisation", which makes one goal enough for
  deterministic dynamics.

The paper does not give γ or the reward scale; plray uses γ = 0.95 (``DEFAULT_GAMMA``) and a unit
goal reward. With γ = 0.95 the longest shortest path (~20 steps) is still worth 0.95^20 ≈ 0.36.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from plray.core.types import BoolArray, FloatArray, IntArray
from plray.envs.base import GoalTask
from plray.utils.validation import PlrayInputError, check_choice

VARIANTS: tuple[str, ...] = ("deterministic", "windy", "teleport")
GOAL_FAMILIES: tuple[str, ...] = ("indicator", "gaussian", "generic")
GOAL_PLACEMENTS: tuple[str, ...] = ("random", "spread")
DEFAULT_GAMMA = 0.95
DEFAULT_NOISE = 0.1
DEFAULT_SIGMA = 1.0

SIZE = 11
DOORWAYS: tuple[tuple[int, int], ...] = ((3, 5), (5, 2), (5, 8), (7, 5))
TELEPORTS: tuple[tuple[int, int], ...] = ((4, 4), (4, 6), (6, 4), (6, 6))
ACTION_NAMES: tuple[str, ...] = ("up", "right", "down", "left")
MOVES = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)], dtype=np.int64)


def _wall_mask() -> BoolArray:
    wall = np.zeros((SIZE, SIZE), dtype=bool)
    wall[0, :] = wall[-1, :] = wall[:, 0] = wall[:, -1] = True
    wall[SIZE // 2, :] = True
    wall[:, SIZE // 2] = True
    for r, c in DOORWAYS:
        wall[r, c] = False
    return wall


def _room(cell: tuple[int, int]) -> int | None:
    """Room id 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right; None for doorways."""
    r, c = cell
    mid = SIZE // 2
    if r == mid or c == mid:
        return None
    return (0 if r < mid else 2) + (0 if c < mid else 1)


@dataclass(frozen=True)
class GoalSet:
    """A set of G reward functions on the S states of a finite MDP.

    Attributes:
        family: reward family name.
        states: the goal state of each reward function, shape (G,).
        rewards: r(s', g_l) paid on arriving in s', shape (S, G).
        dones: 1.0 where arriving in s' ends the episode for goal l, shape (S, G).
        params: the family's parameters (noise, sigma, seed), for manifests.
    """

    family: str
    states: IntArray
    rewards: FloatArray
    dones: FloatArray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def num_goals(self) -> int:
        return int(self.states.shape[0])


@dataclass(frozen=True)
class Task:
    """An evaluation task given by its reward and termination on arrival, shapes (S,)."""

    name: str
    rewards: FloatArray
    dones: FloatArray
    description: str = ""


class FourRooms:
    """The FourRooms MDP: layout, exact kernel, reward families and unseen-goal tasks.

    Args:
        variant: ``"deterministic"``, ``"windy"`` or ``"teleport"``.
    """

    num_actions: ClassVar[int] = 4

    def __init__(self, variant: str = "deterministic") -> None:
        self.variant = check_choice(variant, "variant", VARIANTS)
        self.walls = _wall_mask()
        cells = np.argwhere(~self.walls)
        self.cells: IntArray = cells.astype(np.int64)
        self._index = {(int(r), int(c)): i for i, (r, c) in enumerate(cells)}
        self.num_states = len(cells)
        self._kernel = self._build_kernel()
        self._cdf = np.cumsum(self._kernel, axis=-1)

    # ------------------------------------------------------------------ layout
    def index(self, cell: tuple[int, int]) -> int:
        """State index of a free (row, col) cell."""
        key = (int(cell[0]), int(cell[1]))
        if key not in self._index:
            raise PlrayInputError(f"cell {key} is a wall or outside the {SIZE}x{SIZE} grid")
        return self._index[key]

    def cell(self, state: int) -> tuple[int, int]:
        r, c = self.cells[state]
        return int(r), int(c)

    def _step_cell(self, cell: tuple[int, int], action: int) -> tuple[int, int]:
        r, c = cell[0] + int(MOVES[action, 0]), cell[1] + int(MOVES[action, 1])
        return cell if self.walls[r, c] else (r, c)

    def neighbours(self, state: int) -> list[int]:
        """The state itself and its free 4-neighbours (the WVF baseline's candidate set)."""
        out = [state]
        for a in range(self.num_actions):
            nxt = self.index(self._step_cell(self.cell(state), a))
            if nxt not in out:
                out.append(nxt)
        return out

    def local_candidates(self) -> list[list[int]]:
        """Candidate next states of each state: its neighbours, plus the teleport targets."""
        cands = []
        for s in range(self.num_states):
            c = set(self.neighbours(s))
            for s2 in np.flatnonzero(self._kernel[s].sum(axis=0) > 0):
                c.add(int(s2))
            cands.append(sorted(c))
        return cands

    # ------------------------------------------------------------------ dynamics
    def _build_kernel(self) -> FloatArray:
        S, A = self.num_states, self.num_actions
        P = np.zeros((S, A, S))
        outcomes: Callable[[int], tuple[tuple[int, float], ...]]
        if self.variant == "windy":
            outcomes = lambda a: ((a, 0.5), ((a + 1) % 4, 0.25), ((a - 1) % 4, 0.25))  # noqa: E731
        else:
            outcomes = lambda a: ((a, 1.0),)  # noqa: E731
        teleport_to: dict[tuple[int, int], list[int]] = {}
        if self.variant == "teleport":
            for t in TELEPORTS:
                room = _room(t)
                assert room is not None, f"teleport cell {t} lies in a doorway"
                opposite = 3 - room
                teleport_to[t] = [
                    self.index((int(r), int(c)))
                    for r, c in self.cells
                    if _room((int(r), int(c))) == opposite and (int(r), int(c)) not in TELEPORTS
                ]
        for s in range(S):
            for a in range(A):
                for move, prob in outcomes(a):
                    nxt = self._step_cell(self.cell(s), move)
                    if nxt in teleport_to:
                        targets = teleport_to[nxt]
                        P[s, a, targets] += prob / len(targets)
                    else:
                        P[s, a, self.index(nxt)] += prob
        return P

    @property
    def kernel(self) -> FloatArray:
        """The exact transition kernel P(s' | s, a), shape (S, A, S). A copy: safe to modify."""
        return self._kernel.copy()

    @property
    def deterministic(self) -> bool:
        """Whether every P(s, a) is a point mass."""
        return bool((self._kernel.max(axis=-1) == 1.0).all())

    def sample_next(self, states: IntArray, actions: IntArray, rng: np.random.Generator) -> IntArray:
        """Sample next states for a batch, vectorised.

        Args:
            states, actions: shape (B,).
            rng: numpy random generator.

        Returns:
            next states, shape (B,).
        """
        states = np.asarray(states, dtype=np.int64)
        actions = np.asarray(actions, dtype=np.int64)
        u = rng.random(states.shape)
        cdf = self._cdf[states, actions]
        nxt = (cdf < u[..., None]).sum(axis=-1)
        return np.minimum(nxt, self.num_states - 1)

    # ------------------------------------------------------------------ goals
    def goal_states(self, num_goals: int, placement: str = "random", seed: int = 0) -> IntArray:
        """Choose ``num_goals`` distinct goal states.

        ``random`` draws them uniformly without replacement (seeded); ``spread`` takes them evenly
        along the row-major order, so they cover all four rooms. ``num_goals = S`` gives every state.
        """
        check_choice(placement, "goal placement", GOAL_PLACEMENTS)
        if not isinstance(num_goals, int | np.integer) or not 1 <= num_goals <= self.num_states:
            raise PlrayInputError(
                f"num_goals: must be an integer in [1, {self.num_states}] (one goal per state at most), "
                f"got {num_goals!r}"
            )
        if placement == "spread":
            return np.unique(np.linspace(0, self.num_states - 1, num_goals).round().astype(np.int64))
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(self.num_states, size=num_goals, replace=False)).astype(np.int64)

    def goal_set(
        self,
        num_goals: int,
        family: str = "generic",
        *,
        placement: str = "random",
        seed: int = 0,
        noise: float = DEFAULT_NOISE,
        sigma: float = DEFAULT_SIGMA,
        terminate_on_goal: bool = True,
    ) -> GoalSet:
        """Build G reward functions of one family, with their terminations.

        Args:
            num_goals: G, between 1 and S.
            family: ``"indicator"``, ``"gaussian"`` or ``"generic"``.
            placement: how goal states are chosen (see :meth:`goal_states`).
            seed: seeds the goal placement and the generic family's noise.
            noise: η of the generic family's U[−η, η] perturbation.
            sigma: σ of the gaussian family.
            terminate_on_goal: end the episode on arriving at the goal state.
        """
        check_choice(family, "goal family", GOAL_FAMILIES)
        states = self.goal_states(num_goals, placement, seed)
        S, G = self.num_states, len(states)
        at_goal = np.zeros((S, G))
        at_goal[states, np.arange(G)] = 1.0
        if family == "indicator":
            rewards = at_goal.copy()
        elif family == "gaussian":
            if not sigma > 0:
                raise PlrayInputError(f"sigma: must be > 0, got {sigma!r}")
            d2 = ((self.cells[:, None, :] - self.cells[None, states, :]) ** 2).sum(-1)
            rewards = np.exp(-d2 / (2.0 * sigma**2))
        else:
            if not noise >= 0:
                raise PlrayInputError(f"noise: must be >= 0, got {noise!r}")
            rng = np.random.default_rng([seed, 1])
            rewards = at_goal + rng.uniform(-noise, noise, size=(S, G))
        dones = at_goal if terminate_on_goal else np.zeros((S, G))
        params = {"placement": placement, "seed": seed, "terminate_on_goal": terminate_on_goal}
        params |= {"noise": noise} if family == "generic" else {}
        params |= {"sigma": sigma} if family == "gaussian" else {}
        return GoalSet(family=family, states=states, rewards=rewards, dones=dones, params=params)

    def unseen_tasks(self) -> list[Task]:
        """Out-of-distribution evaluation tasks, none of them a reward the agent was trained on.

        * ``corner``: reach the bottom-left corner (9, 1).
        * ``hazard``: reach the top-right corner (1, 9) while a line of unsafe cells (rows 1-3 of
          column 7) ends the episode with reward −1 on arrival.
        * ``either-corner``: reward 1 for reaching (1, 1) or (9, 9), whichever is nearer.
        """
        S = self.num_states

        def task(name: str, goals: dict[tuple[int, int], float], description: str) -> Task:
            r, d = np.zeros(S), np.zeros(S)
            for cell, value in goals.items():
                r[self.index(cell)] = value
                d[self.index(cell)] = 1.0
            return Task(name, r, d, description)

        return [
            task("corner", {(9, 1): 1.0}, "reach the bottom-left corner"),
            task(
                "hazard",
                {(1, 9): 1.0, (1, 7): -1.0, (2, 7): -1.0, (3, 7): -1.0},
                "reach the top-right corner; three unsafe cells terminate with -1",
            ),
            task("either-corner", {(1, 1): 1.0, (9, 9): 1.0}, "reach (1, 1) or (9, 9)"),
        ]

    def render(self, values: FloatArray | None = None) -> str:
        """ASCII picture of the grid; with ``values`` (S,), each free cell shows its value's digit 0-9."""
        rows = []
        lo, hi = (float(values.min()), float(values.max())) if values is not None else (0.0, 1.0)
        for r in range(SIZE):
            line = []
            for c in range(SIZE):
                if self.walls[r, c]:
                    line.append("#")
                elif values is not None:
                    v = values[self._index[(r, c)]]
                    line.append(str(int(9 * (v - lo) / (hi - lo + 1e-12))))
                elif self.variant == "teleport" and (r, c) in TELEPORTS:
                    line.append("T")
                else:
                    line.append(".")
            rows.append(" ".join(line))
        return "\n".join(rows)


class FourRoomsGoalEnv(gym.Env[np.ndarray, np.int64]):
    """Goal-conditioned gymnasium environment over :class:`FourRooms`.

    The observation is one flat float32 vector ``[one_hot(state, S), one_hot(goal, G)]`` of
    length S + G (a single Box avoids RLlib's dict-flattening traps); ``info`` carries the state
    and goal indices. The goal index selects a reward function of the goal set, so generic
    rewards (which are not tied to one cell) are goal-conditioned too.

    Args:
        variant: FourRooms variant.
        num_goals, goal_family, placement, seed, noise, sigma, terminate_on_goal: see
            :meth:`FourRooms.goal_set`.
        max_steps: episode length before truncation.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"]}  # noqa: RUF012 (gymnasium types it an instance attribute)
    observation_space: spaces.Box
    action_space: spaces.Discrete

    def __init__(
        self,
        variant: str = "deterministic",
        num_goals: int = 68,
        goal_family: str = "indicator",
        *,
        placement: str = "random",
        seed: int = 0,
        noise: float = DEFAULT_NOISE,
        sigma: float = DEFAULT_SIGMA,
        terminate_on_goal: bool = True,
        max_steps: int = 200,
        render_mode: str | None = None,
    ) -> None:
        self.mdp = FourRooms(variant)
        self.goals = self.mdp.goal_set(
            num_goals,
            goal_family,
            placement=placement,
            seed=seed,
            noise=noise,
            sigma=sigma,
            terminate_on_goal=terminate_on_goal,
        )
        self.max_steps = int(max_steps)
        self.render_mode = render_mode
        S, G = self.mdp.num_states, self.goals.num_goals
        self.observation_space = spaces.Box(0.0, 1.0, shape=(S + G,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.mdp.num_actions)
        self._state = 0
        self._goal = 0
        self._t = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        obs[self._state] = 1.0
        obs[self.mdp.num_states + self._goal] = 1.0
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start in a uniform free state that does not end the episode; ``options`` may fix
        ``goal`` (index into the goal set) and ``state``."""
        super().reset(seed=seed)
        options = options or {}
        self._goal = int(options.get("goal", self.np_random.integers(self.goals.num_goals)))
        if not 0 <= self._goal < self.goals.num_goals:
            raise PlrayInputError(f"options['goal']: must be in [0, {self.goals.num_goals}), got {self._goal}")
        if "state" in options:
            self._state = int(options["state"])
        else:
            allowed = np.flatnonzero(self.goals.dones[:, self._goal] == 0)
            self._state = int(self.np_random.choice(allowed))
        self._t = 0
        return self._obs(), {"state": self._state, "goal": self._goal}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise PlrayInputError(f"action: expected an integer in [0, {self.mdp.num_actions}), got {action!r}")
        nxt = self.mdp.sample_next(np.array([self._state]), np.array([int(action)]), self.np_random)[0]
        self._state = int(nxt)
        self._t += 1
        reward = float(self.goals.rewards[self._state, self._goal])
        terminated = bool(self.goals.dones[self._state, self._goal])
        truncated = self._t >= self.max_steps
        return self._obs(), reward, terminated, truncated, {"state": self._state, "goal": self._goal}

    def render(self) -> str:  # type: ignore[override]
        return self.mdp.render()


class FourRoomsTask(GoalTask):
    """FourRooms as a :class:`GoalTask`, so it trains through the same vector env and relabelling.

    The state is the cell index (one float); the observation is ``one_hot(state, S)``; the goal
    is ``one_hot(goal index, G)`` into the goal set, since generic and Gaussian rewards belong to
    a goal, not to a cell. Transitions are drawn from the exact kernel with the task's own seeded
    generator. Hindsight strategies that need an achieved goal (``future``, ``final``,
    ``episode``) are available when the goal set is every state (|G| = S); otherwise use
    ``random``.

    Args:
        variant, num_goals, goal_family, placement, seed, noise, sigma: see :meth:`FourRooms.goal_set`.
        max_steps: episode length.
    """

    name = "fourrooms"
    state_dim = 1
    num_actions = 4
    gamma = DEFAULT_GAMMA

    def __init__(
        self,
        variant: str = "deterministic",
        num_goals: int = 68,
        goal_family: str = "generic",
        *,
        placement: str = "random",
        seed: int = 0,
        noise: float = DEFAULT_NOISE,
        sigma: float = DEFAULT_SIGMA,
        max_steps: int = 200,
    ) -> None:
        self.mdp = FourRooms(variant)
        self.goals = self.mdp.goal_set(num_goals, goal_family, placement=placement, seed=seed, noise=noise, sigma=sigma)
        S, G = self.mdp.num_states, self.goals.num_goals
        self.obs_dim = S
        self.goal_dim = G
        self.max_episode_steps = int(max_steps)
        self.state_low = np.zeros(1)
        self.state_high = np.full(1, S - 1.0)
        self.goal_tolerance = 0.5
        self.training_goals = np.eye(G)
        self._rng = np.random.default_rng([seed, 3])

    @property
    def covers_all_states(self) -> bool:
        """Whether goal l sits on state l for every state (so achieved goals exist)."""
        return self.goals.num_goals == self.mdp.num_states and bool(
            (self.goals.states == np.arange(self.mdp.num_states)).all()
        )

    def reset_states(self, n: int, rng: np.random.Generator) -> FloatArray:
        return rng.integers(self.mdp.num_states, size=(n, 1)).astype(np.float64)

    def next_state(self, states: FloatArray, actions: np.ndarray) -> FloatArray:
        s = np.asarray(states, dtype=np.float64).reshape(-1).round().astype(np.int64)
        nxt = self.mdp.sample_next(s, np.asarray(actions, dtype=np.int64).reshape(-1), self._rng)
        return nxt.astype(np.float64)[:, None]

    def observe(self, states: FloatArray) -> FloatArray:
        s = np.asarray(states).reshape(-1).round().astype(np.int64)
        return np.eye(self.mdp.num_states)[s]

    def achieved_goal(self, states: FloatArray) -> FloatArray:
        if not self.covers_all_states:
            raise PlrayInputError(
                "FourRooms goals are reward functions, not cells, unless the goal set is every state "
                "(num_goals = 68 with placement covering all states): use the 'random' relabelling strategy"
            )
        return self.observe(states)

    def achieved_goal_from_obs(self, obs: FloatArray) -> FloatArray:
        return self.achieved_goal(np.asarray(obs).argmax(axis=-1)[:, None].astype(np.float64))

    def _indices(self, next_obs: FloatArray, goals: FloatArray) -> tuple[IntArray, IntArray]:
        return np.asarray(next_obs).argmax(axis=-1), np.asarray(goals).argmax(axis=-1)

    def reward_from_obs(self, next_obs: FloatArray, goals: FloatArray) -> FloatArray:
        s, g = self._indices(next_obs, goals)
        return self.goals.rewards[s, g]

    def terminal_from_obs(self, next_obs: FloatArray, goals: FloatArray) -> BoolArray:
        s, g = self._indices(next_obs, goals)
        return self.goals.dones[s, g] > 0

    def reward(self, achieved: FloatArray, goals: FloatArray) -> FloatArray:
        return self.reward_from_obs(achieved, goals)

    def terminal(self, achieved: FloatArray, goals: FloatArray) -> BoolArray:
        return self.terminal_from_obs(achieved, goals)

    def reward_at(self, states: FloatArray, goals: FloatArray) -> FloatArray:
        return self.reward_from_obs(self.observe(states), goals)

    def terminal_at(self, states: FloatArray, goals: FloatArray) -> BoolArray:
        return self.terminal_from_obs(self.observe(states), goals)
