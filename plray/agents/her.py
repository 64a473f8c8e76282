"""Hindsight experience replay (HER) for RLlib's new API stack, applied at sample time.

RLlib 2.60 has no goal relabelling. :class:`HindsightEpisodeReplayBuffer` subclasses RLlib's
``EpisodeReplayBuffer``: episodes are stored unchanged, and every call to ``sample`` draws
⌈B / (k + 1)⌉ real one-step transitions and returns each followed by k copies whose goal is
replaced (Andrychowicz et al. 2017), so a train batch holds k relabelled goals per real
transition. Rewards and terminations of relabelled copies are recomputed with the task's own
reward function from the next observation, never copied. :class:`HindsightTransitionStore` samples
the same way from flat numpy rows (SAC's store, :mod:`plray.agents.sac`), and
:func:`relabel_fragments` relabels PQN's rollouts; all three take substitute goals from
:func:`substitute_goals`.

Strategies for the substitute goal of a transition (o_t, a_t, o_{t+1}) of a stored episode with
observations o_0..o_T (T = steps stored so far):

* ``future``: the achieved goal of o_j, j uniform in {t+1, ..., T};
* ``final``: the achieved goal of o_T;
* ``episode``: the achieved goal of o_j, j uniform in {0, ..., T};
* ``random``: a training goal drawn uniformly (the paper's MountainCar agents), or, when the task's
  goal set has a per-episode distribution (:mod:`plray.envs.goalsets`), a goal drawn from that
  distribution (:func:`plray.envs.base.sample_training_goals`), so relabelled goals follow the
  goals episodes are commanded with.

The achieved goal of ``future``/``final``/``episode`` is taken in the goal space of the goal the
transition was commanded with (:meth:`plray.envs.base.GoalTask.achieved_goal_for_obs`): for a goal
mixture (:class:`plray.envs.goalsets.GoalMixture`, goals ``[target, one-hot of the kind]``) a
fingertip-commanded transition is relabelled with an achieved fingertip, an angle-commanded one
with achieved angles, each keeping its kind's one-hot; for every other goal set this is the plain
achieved goal. ``random`` draws training goals, of every kind of a mixture.

The goal occupies the last ``goal_dim`` entries of the flat observation (see
:class:`plray.envs.base.GoalTask`). Only one-step transitions are relabelled (``n_step = 1``):
an n-step return would mix rewards of the original goal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from plray.core.types import FloatArray, IntArray
from plray.envs.base import GoalTask, sample_training_goals
from plray.utils.validation import PlrayInputError, check_choice

HER_STRATEGIES: tuple[str, ...] = ("future", "final", "episode", "random")


def relabel_indices(strategy: str, t: IntArray, T: IntArray, rng: np.random.Generator) -> IntArray:
    """Observation indices whose achieved goals become the substitute goals.

    Args:
        strategy: ``future``, ``final`` or ``episode`` (``random`` uses no index).
        t: time index of each transition's first observation, shape (n,).
        T: index of the last stored observation of each transition's episode, shape (n,); T > t.
        rng: random generator.

    Returns:
        indices into each episode's observations, shape (n,).
    """
    t = np.asarray(t, dtype=np.int64)
    T = np.asarray(T, dtype=np.int64)
    if (t >= T).any():
        raise PlrayInputError("relabel_indices: every transition needs a next observation (T > t)")
    if strategy == "future":
        return t + 1 + np.floor(rng.random(t.shape) * (T - t)).astype(np.int64)
    if strategy == "final":
        return T.copy()
    if strategy == "episode":
        return np.floor(rng.random(t.shape) * (T + 1)).astype(np.int64)
    raise PlrayInputError(f"relabel_indices: strategy {strategy!r} draws no index; use one of future, final, episode")


def substitute_goals(
    task: GoalTask,
    strategy: str,
    t: IntArray,
    T: IntArray,
    observations_at: Callable[[IntArray], np.ndarray],
    commanded: np.ndarray,
    rng: np.random.Generator,
) -> FloatArray:
    """The substitute goals of n transitions under a strategy (the one rule every relabeller uses).

    Args:
        task: the goal-conditioned task.
        strategy: ``future``, ``final``, ``episode`` (achieved goals of the same episode, in the
            goal space of the commanded goal) or ``random`` (training goals, from the goal set's
            distribution when it has one).
        t, T: each transition's first observation index and its episode's last stored one, shape (n,).
        observations_at: indices j (n,) -> each transition's episode observation o_j without its
            goal entries, shape (n, o).
        commanded: the goals the transitions were commanded with, shape (n, k).
        rng: random generator (index and goal draws).

    Returns:
        goals, shape (n, k).
    """
    if strategy == "random":
        return sample_training_goals(task, len(t), rng)
    j = relabel_indices(strategy, t, T, rng)
    return task.achieved_goal_for_obs(
        np.asarray(observations_at(j), dtype=np.float64), np.asarray(commanded, dtype=np.float64)
    )


def relabel(
    task: GoalTask,
    obs: np.ndarray,
    next_obs: np.ndarray,
    goals: FloatArray,
) -> tuple[np.ndarray, np.ndarray, FloatArray, np.ndarray]:
    """Replace the goal of transitions and recompute reward and termination.

    Args:
        task: the goal-conditioned task (its reward function decides the new rewards).
        obs, next_obs: flat agent observations ``concat(observe(s), g)``, shape (n, o + k).
        goals: substitute goals, shape (n, k).

    Returns:
        (obs, next_obs, rewards (n,), terminateds (n,)) with the goal entries replaced.
    """
    k = task.goal_dim
    obs = np.array(obs, dtype=np.float32, copy=True)
    next_obs = np.array(next_obs, dtype=np.float32, copy=True)
    goals = np.asarray(goals, dtype=np.float64).reshape(len(obs), k)
    obs[:, -k:] = goals
    next_obs[:, -k:] = goals
    plain_next = next_obs[:, :-k].astype(np.float64)
    rewards = task.reward_from_obs(plain_next, goals)
    terminateds = task.terminal_from_obs(plain_next, goals)
    return obs, next_obs, rewards, terminateds


def check_k(k: object) -> int:
    """The number of relabelled copies per transition, an integer >= 0."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise PlrayInputError(f"her k: relabelled goals per transition must be an integer >= 0, got {k!r}")
    return k


def resolve_task(task: str | GoalTask, task_kwargs: dict[str, Any] | None = None) -> GoalTask:
    """The task whose reward function relabels: a registry name (built with ``task_kwargs``) or an instance."""
    if isinstance(task, str):
        from plray.envs.registry import make_task

        return make_task(task, **(task_kwargs or {}))
    return task


def relabel_fragments(
    task: GoalTask,
    observations: list[FloatArray],
    actions: list[np.ndarray],
    rewards: list[FloatArray],
    terminated: list[bool],
    strategy: str,
    k: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Flat one-step transitions of rollout fragments, with k hindsight copies of each (on-policy learners).

    A fragment is a contiguous piece of one episode as sampled in one rollout: observations o_0..o_T
    and T actions and rewards. ``future``, ``final`` and ``episode`` pick achieved goals inside the
    fragment (the paper's PQN relabels within its rollout window); ``random`` draws training goals
    (from the goal set's distribution when it has one).

    Args:
        task: the goal-conditioned task.
        observations: per fragment, flat agent observations, shape (T_i + 1, o + k).
        actions: per fragment, shape (T_i,).
        rewards: per fragment, the environment's rewards, shape (T_i,).
        terminated: per fragment, whether its last step ended the episode at the goal.
        strategy: ``future``, ``final``, ``episode`` or ``random``.
        k: relabelled copies per real transition (0: none).
        rng: random generator (goal draws).

    Returns:
        ``obs``, ``next_obs`` (N, o + k) float32, ``actions`` (N,), ``rewards`` (N,) float32 and
        ``terminateds`` (N,) bool, N = (k + 1) Σ T_i: the real transitions first, then the copies.
    """
    check_choice(strategy, "her strategy", HER_STRATEGIES)
    k = check_k(k)
    if not (len(observations) == len(actions) == len(rewards) == len(terminated)):
        raise PlrayInputError("relabel_fragments: observations, actions, rewards and terminated differ in length")
    lengths = np.array([len(a) for a in actions], dtype=np.int64)
    keep = lengths > 0
    for i in np.flatnonzero(keep):
        if len(observations[i]) != lengths[i] + 1 or len(rewards[i]) != lengths[i]:
            raise PlrayInputError(f"relabel_fragments: fragment {i} needs T + 1 observations and T rewards")
    frags = np.flatnonzero(keep)
    if frags.size == 0:
        raise PlrayInputError("relabel_fragments: no transitions (every fragment is empty)")
    all_obs = np.concatenate([np.asarray(observations[i], dtype=np.float64) for i in frags])
    starts = np.concatenate([[0], np.cumsum(lengths[frags] + 1)[:-1]])  # offset of each fragment's o_0
    frag_of = np.repeat(np.arange(frags.size), lengths[frags])  # fragment of each transition
    t = np.arange(frag_of.size) - np.repeat(np.cumsum(lengths[frags]) - lengths[frags], lengths[frags])
    first = starts[frag_of] + t
    obs, next_obs = all_obs[first], all_obs[first + 1]
    acts = np.concatenate([np.asarray(actions[i]) for i in frags])
    rews = np.concatenate([np.asarray(rewards[i], dtype=np.float64) for i in frags])
    terms = np.zeros(frag_of.size, dtype=bool)
    ends = np.cumsum(lengths[frags]) - 1
    terms[ends] = np.asarray(terminated, dtype=bool)[frags]
    parts_obs, parts_next, parts_rew, parts_term = [obs], [next_obs], [rews], [terms]
    n = frag_of.size
    if k > 0:
        reps = np.tile(np.arange(n), k)
        first_of = starts[frag_of[reps]]
        goals = substitute_goals(
            task, strategy, t[reps], lengths[frags][frag_of[reps]],
            lambda j: all_obs[first_of + j, : -task.goal_dim], obs[reps, -task.goal_dim :], rng,
        )  # fmt: skip
        r_obs, r_next, r_rew, r_term = relabel(task, obs[reps], next_obs[reps], goals)
        parts_obs.append(r_obs)
        parts_next.append(r_next)
        parts_rew.append(r_rew)
        parts_term.append(r_term)
        acts = np.tile(acts, k + 1)
    return {
        "obs": np.concatenate(parts_obs).astype(np.float32),
        "next_obs": np.concatenate(parts_next).astype(np.float32),
        "actions": acts,
        "rewards": np.concatenate(parts_rew).astype(np.float32),
        "terminateds": np.concatenate(parts_term).astype(bool),
    }


def _import_rllib() -> tuple[Any, Any]:
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode
    from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer

    return EpisodeReplayBuffer, SingleAgentEpisode


EpisodeReplayBuffer, SingleAgentEpisode = _import_rllib()


class HindsightEpisodeReplayBuffer(EpisodeReplayBuffer):  # type: ignore[misc, valid-type]
    """RLlib episode replay buffer that returns k hindsight-relabelled copies of each sampled transition.

    Configure it through ``config.training(replay_buffer_config={"type":
    HindsightEpisodeReplayBuffer, "capacity": ..., "task": "mountaincar-position",
    "strategy": "random", "k": 4, "seed": 0})``.

    Args:
        task: registry name of the :class:`GoalTask` (or a task instance).
        task_kwargs: keyword arguments for the task's constructor.
        strategy: ``future``, ``final``, ``episode`` or ``random``.
        k: relabelled copies per real transition (0 disables relabelling).
        seed: seeds the buffer's sampling and relabelling.
        **kwargs: passed to ``EpisodeReplayBuffer`` (``capacity``, ``batch_size_B``, ...).
    """

    def __init__(
        self,
        *,
        task: str | GoalTask,
        task_kwargs: dict[str, Any] | None = None,
        strategy: str = "future",
        k: int = 4,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.task: GoalTask = resolve_task(task, task_kwargs)
        self.strategy = check_choice(strategy, "her strategy", HER_STRATEGIES)
        self.k = check_k(k)
        self.rng = np.random.default_rng(seed)
        self._relabel_rng = np.random.default_rng(None if seed is None else [seed, 1])
        self.num_relabelled = 0

    def _full_episode(self, sampled: Any) -> Any:
        return self.episodes[self.episode_id_to_index[sampled.id_] - self._num_episodes_evicted]

    def sample(self, num_items: int | None = None, *, batch_size_B: int | None = None, **kwargs: Any) -> list[Any]:
        """Sample B one-step transitions: ⌈B / (k + 1)⌉ real ones, each followed by k relabelled copies.

        Returns a list of one-step ``SingleAgentEpisode`` objects (what RLlib's DQN and SAC learners take).
        """
        B = num_items or batch_size_B or self.batch_size_B
        n_step = kwargs.get("n_step", 1)
        if self.k > 0 and (kwargs.get("batch_length_T") or (n_step not in (None, 1))):
            raise PlrayInputError("hindsight relabelling needs one-step transitions: set n_step=1 and no sequences")
        n_real = math.ceil(B / (self.k + 1)) if self.k else B
        kwargs["sample_episodes"] = True  # relabelling works on episodes (RLlib's DQN/SAC always ask for them)
        real = super().sample(num_items=n_real, **kwargs)
        if self.k == 0:
            return real
        goal_dim = self.task.goal_dim
        obs = np.stack([ep.get_observations(0) for ep in real])
        next_obs = np.stack([ep.get_observations(-1) for ep in real])
        n = len(real)
        reps = np.repeat(np.arange(n), self.k)
        t = np.array([ep.t_started for ep in real], dtype=np.int64)
        fulls = [self._full_episode(ep) for ep in real] if self.strategy != "random" else []
        T = np.array([len(full) for full in fulls], dtype=np.int64) if fulls else t + 1

        def observations_at(idx: IntArray) -> np.ndarray:
            chosen = np.stack([fulls[i].get_observations(int(j)) for i, j in zip(reps, idx, strict=True)])
            return chosen[:, :-goal_dim]

        new_goals = substitute_goals(
            self.task, self.strategy, t[reps], T[reps], observations_at, obs[reps, -goal_dim:], self._relabel_rng
        )
        r_obs, r_next, r_rew, r_term = relabel(self.task, obs[reps], next_obs[reps], new_goals)
        out: list[Any] = []
        for i, ep in enumerate(real):
            out.append(ep)
            for j in range(i * self.k, (i + 1) * self.k):
                out.append(self._copy_with(ep, r_obs[j], r_next[j], float(r_rew[j]), bool(r_term[j])))
        self.num_relabelled += len(reps)
        return out[:B]

    @staticmethod
    def _copy_with(ep: Any, obs: np.ndarray, next_obs: np.ndarray, reward: float, terminated: bool) -> Any:
        """A one-step episode like ``ep`` with new observations, reward and termination."""
        copy = SingleAgentEpisode(
            id_=ep.id_,
            agent_id=ep.agent_id,
            module_id=ep.module_id,
            observation_space=ep.observation_space,
            action_space=ep.action_space,
            observations=[obs, next_obs],
            actions=[ep.get_actions(0)],
            rewards=[reward],
            infos=[ep.get_infos(0), ep.get_infos(-1)],
            terminated=terminated,
            truncated=ep.is_truncated and not terminated,
            t_started=ep.t_started,
            len_lookback_buffer=0,
        )
        # the per-step model outputs of the original step, incl. RLlib's "n_step" and "weights"
        # buffers, hold for the copy too: share them (they are read, never written, downstream)
        for key, buffer in ep.extra_model_outputs.items():
            copy.extra_model_outputs[key] = buffer
        return copy

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["her"] = {"num_relabelled": self.num_relabelled}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.num_relabelled = state.get("her", {}).get("num_relabelled", 0)


class HindsightTransitionStore:
    """Replay of one-step transitions in flat numpy arrays, sampled with hindsight relabelling.

    The off-policy learners' fast path (:mod:`plray.agents.sac`): the same sampling as
    :class:`HindsightEpisodeReplayBuffer` (⌈B / (k + 1)⌉ real transitions drawn uniformly from
    every stored one, each followed by k copies relabelled by ``strategy``) without one RLlib
    episode object per transition, so a batch costs a few vectorised numpy operations.

    Storage: one row per episode, ``max_episode_steps + 1`` observations long. An episode that
    arrives in fragments (the env runners' rollouts) fills its row fragment by fragment; rows
    are reused oldest first once ``capacity`` transitions' worth of rows are taken. A fragment
    whose episode has no row (its start was evicted, or the store is new after a resume) opens
    one at its own first step, so ``future`` goals always come from the same episode.

    Args:
        task: the goal-conditioned task (its reward function relabels).
        capacity: transitions at full episode length (rows = ⌈capacity / max_episode_steps⌉).
        strategy: ``future``, ``final``, ``episode`` or ``random``.
        k: relabelled copies per real transition.
        seed: seeds sampling and relabelling.
    """

    def __init__(
        self, task: GoalTask, capacity: int, strategy: str = "future", k: int = 4, seed: int | None = None
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise PlrayInputError(f"replay capacity: a positive integer of transitions, got {capacity!r}")
        self.task = task
        self.strategy = check_choice(strategy, "her strategy", HER_STRATEGIES)
        self.k = check_k(k)
        self.horizon = int(task.max_episode_steps)
        self.rows = max(1, math.ceil(capacity / self.horizon))
        self.obs = np.zeros((self.rows, self.horizon + 1, task.obs_dim + task.goal_dim), dtype=np.float32)
        self.rewards = np.zeros((self.rows, self.horizon), dtype=np.float32)
        self.actions: np.ndarray | None = None  # (rows, horizon, *action shape), typed by the first fragment
        self.length = np.zeros(self.rows, dtype=np.int64)  # transitions stored in each row
        self.ends_terminal = np.zeros(self.rows, dtype=bool)  # the row's last transition reached the goal
        self._row_of: dict[Any, tuple[int, int]] = {}  # open episode id -> (row, its t at the row's start)
        self._next_row = 0
        self.num_added = 0
        self.num_relabelled = 0
        self.rng = np.random.default_rng(seed)
        self._relabel_rng = np.random.default_rng(None if seed is None else [seed, 1])

    def __len__(self) -> int:
        return int(self.length.sum())

    def _open_row(self, episode_id: Any, t_started: int) -> tuple[int, int]:
        row = self._next_row
        self._next_row = (row + 1) % self.rows
        self._row_of = {e: rb for e, rb in self._row_of.items() if rb[0] != row}  # an open episode loses its row
        self.length[row] = 0
        self.ends_terminal[row] = False
        self._row_of[episode_id] = (row, t_started)
        return row, t_started

    def add_fragment(
        self, episode_id: Any, t_started: int, observations: np.ndarray, actions: np.ndarray,
        rewards: np.ndarray, terminated: bool, done: bool,
    ) -> None:  # fmt: skip
        """Store one fragment: observations o_t..o_{t+T} (T + 1, o + k), actions (T, ...), rewards (T,)."""
        n = len(actions)
        if n == 0:
            return
        if len(observations) != n + 1 or len(rewards) != n:
            raise PlrayInputError("replay fragment: needs T + 1 observations and T rewards")
        if n > self.horizon:
            raise PlrayInputError(f"replay fragment: {n} steps exceed the task's episode length {self.horizon}")
        row, base = self._row_of.get(episode_id) or self._open_row(episode_id, t_started)
        start = t_started - base
        if start != self.length[row] or start + n > self.horizon:
            row, base = self._open_row(episode_id, t_started)  # a gap or an over-long episode: a fresh row
            start = 0
        acts = np.asarray(actions)
        if self.actions is None:
            self.actions = np.zeros((self.rows, self.horizon, *acts.shape[1:]), dtype=acts.dtype)
        self.obs[row, start : start + n + 1] = observations
        self.actions[row, start : start + n] = acts
        self.rewards[row, start : start + n] = rewards
        self.length[row] = start + n
        self.ends_terminal[row] = bool(terminated)
        if done:
            self._row_of.pop(episode_id, None)
        self.num_added += n

    def add(self, episodes: list[Any]) -> None:
        """Store the fragments an RLlib env runner sampled (``SingleAgentEpisode`` chunks)."""
        for ep in episodes:
            self.add_fragment(
                ep.id_, int(ep.t_started), np.asarray(ep.get_observations()), np.asarray(ep.get_actions()),
                np.asarray(ep.get_rewards()), bool(ep.is_terminated), bool(ep.is_done),
            )  # fmt: skip

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        """A train batch of ``batch_size`` transitions: real ones, each followed by its k relabelled copies.

        Returns:
            ``obs``, ``new_obs`` (B, o + k) float32, ``actions`` (B, ...), ``rewards`` (B,) float32,
            ``terminateds`` (B,) bool (RLlib's column names).
        """
        total = len(self)
        if total == 0 or self.actions is None:
            raise PlrayInputError("replay: nothing stored yet to sample from")
        n_real = math.ceil(batch_size / (self.k + 1))
        ends = np.cumsum(self.length)
        u = self.rng.integers(0, total, size=n_real)
        row = np.searchsorted(ends, u, side="right")
        t = u - (ends[row] - self.length[row])
        obs, next_obs = self.obs[row, t], self.obs[row, t + 1]
        rewards = self.rewards[row, t]
        terms = self.ends_terminal[row] & (t == self.length[row] - 1)
        cols = [obs], [next_obs], [rewards], [terms]
        if self.k > 0:
            reps = np.repeat(np.arange(n_real), self.k)
            gd = self.task.goal_dim
            goals = substitute_goals(
                self.task, self.strategy, t[reps], self.length[row[reps]],
                lambda j: self.obs[row[reps], j, :-gd], obs[reps, -gd:], self._relabel_rng,
            )  # fmt: skip
            for col, part in zip(cols, relabel(self.task, obs[reps], next_obs[reps], goals), strict=True):
                col.append(part)
            self.num_relabelled += reps.size
        # each real transition, then its k copies (the episode buffer's order), cut to B
        copies = n_real + np.arange(n_real * self.k).reshape(n_real, self.k)
        order = np.column_stack([np.arange(n_real), copies]).ravel()[:batch_size]
        obs_all, next_all, rew_all, term_all = (np.concatenate(c) for c in cols)
        acts = self.actions[row, t]
        return {
            "obs": obs_all[order].astype(np.float32),
            "new_obs": next_all[order].astype(np.float32),
            "actions": np.concatenate([acts, np.repeat(acts, self.k, axis=0)])[order],
            "rewards": rew_all[order].astype(np.float32),
            "terminateds": term_all[order].astype(bool),
        }
