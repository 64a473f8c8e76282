"""A batched cross-entropy-method (CEM) model-predictive planner for goals given as state functions.

The paper plans unseen goals by grid value iteration (:mod:`plray.evaluation.unseen`,
docs/method.md#unseen-goal-planning), which scales as (nodes per dim)^d. CEM is the grid-free
alternative for larger state spaces (e.g. the MuJoCo Reacher, or continuous actions); it is **not**
the paper's planner.

At every call, for each query state s and ``iterations`` rounds:

1. sample ``population`` action sequences a_{0:H} from a per-step distribution (discrete:
   independent categoricals, initially uniform; continuous: independent Gaussians clipped to the
   action bounds, initially centred with std (high − low)/2);
2. roll every sequence out **inside the model** (all states × population rows at once, one model
   call per step, :func:`plray.evaluation.rollout.rollout`) and score it by the discounted return
   Σ_{t<H} γ^t r(s_{t+1}) up to termination (forbidden successors end the sequence with reward 0);
3. refit the distribution to the ``elites`` best sequences (discrete: elite action frequencies;
   continuous: elite mean and std), mixed with the previous distribution by ``smoothing``.

The action returned is the first action of the best sequence seen over all rounds (ties: the first
found), i.e. receding-horizon MPC when called at every step. Sparse rewards beyond the horizon are
invisible: with no rewarding sequence found the choice is that of a random sequence, so the horizon
must cover the distance to the goal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plray.core.types import FloatArray, ForbiddenFn, NextStateFn, StateRewardFn, StateTerminalFn
from plray.evaluation.goals import Goal
from plray.evaluation.rollout import rollout
from plray.utils.validation import PlrayInputError, as_float_array, check_gamma


def _positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
        raise PlrayInputError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


class CEMPlanner:
    """Batched CEM model-predictive control (see the module docstring).

    Args:
        next_state_fn: the model (or true dynamics), numpy (B, d), (B,) / (B, action_dim) -> (B, d).
        reward_fn: r(next_states (B, d)) -> (B,).
        terminal_fn: done(next_states (B, d)) -> (B,) bool.
        horizon: H, planning steps per sequence.
        population: sequences sampled per state and round.
        elites: sequences the distribution is refitted to, 1 <= elites <= population.
        iterations: CEM rounds per call.
        num_actions: A for discrete actions (give either this or the action bounds).
        action_low, action_high: bounds of continuous actions, shape (action_dim,).
        gamma: discount in (0, 1).
        seed: seeds the sampler (the planner keeps one generator across calls).
        forbidden_fn: optional forbidden(next_states) -> (B,) bool (ends the sequence, reward 0).
        smoothing: weight of the previous distribution in each refit, in [0, 1).
        min_std: lower bound of the continuous std, as a fraction of (high − low).
        constant_sequences: seed every round's population with the A constant sequences
            (a, a, …, a) (discrete) or the current mean sequence (continuous). With sparse rewards
            random sequences rarely find the goal (e.g. MountainCar needs sustained pushing);
            these candidates are a cheap, deterministic exploration aid.
    """

    def __init__(
        self,
        next_state_fn: NextStateFn,
        reward_fn: StateRewardFn,
        terminal_fn: StateTerminalFn,
        *,
        horizon: int,
        population: int,
        elites: int,
        iterations: int,
        num_actions: int | None = None,
        action_low: FloatArray | None = None,
        action_high: FloatArray | None = None,
        gamma: float = 0.99,
        seed: int = 0,
        forbidden_fn: ForbiddenFn | None = None,
        smoothing: float = 0.1,
        min_std: float = 0.02,
        constant_sequences: bool = True,
    ) -> None:
        for fn, name in ((next_state_fn, "next_state_fn"), (reward_fn, "reward_fn"), (terminal_fn, "terminal_fn")):
            if not callable(fn):
                raise PlrayInputError(f"{name}: expected a callable, got {type(fn).__name__}")
        if forbidden_fn is not None and not callable(forbidden_fn):
            raise PlrayInputError(f"forbidden_fn: expected a callable or None, got {type(forbidden_fn).__name__}")
        self.next_state_fn = next_state_fn
        self.reward_fn = reward_fn
        self.terminal_fn = terminal_fn
        self.forbidden_fn = forbidden_fn
        self.goal = Goal("cem", reward_fn, terminal_fn, forbidden_fn)
        self.horizon = _positive_int(horizon, "horizon")
        self.population = _positive_int(population, "population")
        self.elites = _positive_int(elites, "elites")
        if self.elites > self.population:
            raise PlrayInputError(f"elites: must not exceed population ({self.population}), got {elites}")
        self.iterations = _positive_int(iterations, "iterations")
        self.gamma = check_gamma(gamma)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
            raise PlrayInputError(f"seed: expected a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        if not (0.0 <= float(smoothing) < 1.0):
            raise PlrayInputError(f"smoothing: expected a number in [0, 1), got {smoothing!r}")
        self.smoothing = float(smoothing)
        if not (float(min_std) >= 0.0):
            raise PlrayInputError(f"min_std: expected a non-negative number, got {min_std!r}")
        self.min_std = float(min_std)
        if (num_actions is None) == (action_low is None or action_high is None):
            raise PlrayInputError("num_actions: give either num_actions (discrete) or action_low and action_high")
        self.num_actions = None if num_actions is None else _positive_int(num_actions, "num_actions")
        if self.num_actions is None:
            self.action_low = as_float_array(action_low, "action_low", ndim=1)
            self.action_high = as_float_array(action_high, "action_high", ndim=1)
            if self.action_high.shape != self.action_low.shape or not (self.action_high > self.action_low).all():
                raise PlrayInputError(
                    f"action_high: must have the shape of action_low and exceed it, got {self.action_low} and "
                    f"{self.action_high}"
                )
        self.constant_sequences = bool(constant_sequences)

    @classmethod
    def for_goal(cls, task: Any, goal: Any, next_state_fn: NextStateFn | None = None, **kwargs: Any) -> CEMPlanner:
        """A planner for an :class:`~plray.evaluation.unseen.UnseenGoal` of a task.

        Args:
            task: the task (its action set, γ and, by default, its true dynamics).
            goal: the unseen goal (reward, termination, forbidden region).
            next_state_fn: the model (default ``task.next_state``).
            **kwargs: the remaining constructor arguments (horizon, population, elites, iterations, seed…).
        """
        kwargs.setdefault("gamma", task.gamma)
        if task.num_actions is not None:
            kwargs.setdefault("num_actions", task.num_actions)
        else:
            kwargs.setdefault("action_low", task.action_low)
            kwargs.setdefault("action_high", task.action_high)
        return cls(
            task.next_state if next_state_fn is None else next_state_fn,
            goal.reward_fn,
            goal.terminal_fn,
            forbidden_fn=goal.forbidden_fn,
            **kwargs,
        )

    # ------------------------------------------------------------------ rollouts
    def sequence_returns(self, states: FloatArray, actions: np.ndarray) -> FloatArray:
        """Discounted returns of action sequences inside the model, all at once.

        Args:
            states: start states, shape (M, d).
            actions: one sequence per start, shape (M, H) ints or (M, H, action_dim).

        Returns:
            Σ_{t<H} γ^t r(s_{t+1}) up to (and including) the first terminal or forbidden successor,
            shape (M,).
        """
        s = as_float_array(states, "states", ndim=2)
        M = s.shape[0]
        if actions.shape[:2] != (M, self.horizon):
            raise PlrayInputError(f"actions: expected leading shape ({M}, {self.horizon}), got {actions.shape}")
        # finished rows keep their last state (their later model calls are ignored)
        return rollout(self.next_state_fn, self.goal, s, self.horizon, self.gamma, actions=actions).returns

    # ------------------------------------------------------------------ CEM
    def _sample(self, dist: dict[str, np.ndarray], S: int) -> np.ndarray:
        P, H = self.population, self.horizon
        if self.num_actions is not None:
            cdf = np.cumsum(dist["probs"], axis=-1)  # (S, H, A)
            u = self.rng.random((S, P, H, 1))
            seqs = np.minimum((u > cdf[:, None]).sum(-1), self.num_actions - 1).astype(np.int64)  # (S, P, H)
            if self.constant_sequences:
                k = min(self.num_actions, P)
                seqs[:, :k] = np.arange(k)[None, :, None]
            return seqs
        noise = self.rng.standard_normal((S, P, H, self.action_low.size))
        seqs = np.clip(dist["mean"][:, None] + dist["std"][:, None] * noise, self.action_low, self.action_high)
        if self.constant_sequences:
            seqs[:, 0] = dist["mean"]
        return seqs

    def _refit(self, dist: dict[str, np.ndarray], elite: np.ndarray) -> dict[str, np.ndarray]:
        k = self.smoothing
        if self.num_actions is not None:
            freq = np.eye(self.num_actions)[elite].mean(axis=1)  # (S, H, A)
            return {"probs": k * dist["probs"] + (1.0 - k) * freq}
        width = self.action_high - self.action_low
        mean = k * dist["mean"] + (1.0 - k) * elite.mean(axis=1)
        std = k * dist["std"] + (1.0 - k) * elite.std(axis=1)
        return {"mean": mean, "std": np.maximum(std, self.min_std * width)}

    def plan_batch(self, states: FloatArray) -> np.ndarray:
        """First actions of CEM plans from each state.

        Args:
            states: current states, shape (S, d).

        Returns:
            Actions, shape (S,) int64 (discrete) or (S, action_dim) (continuous).
        """
        s = as_float_array(states, "states", ndim=2)
        S = s.shape[0]
        P, H = self.population, self.horizon
        if self.num_actions is not None:
            dist = {"probs": np.full((S, H, self.num_actions), 1.0 / self.num_actions)}
        else:
            centre = 0.5 * (self.action_low + self.action_high)
            half = 0.5 * (self.action_high - self.action_low)
            dist = {
                "mean": np.broadcast_to(centre, (S, H, centre.size)).copy(),
                "std": np.broadcast_to(half, (S, H, half.size)).copy(),
            }
        best_return = np.full(S, -np.inf)
        best_first: np.ndarray | None = None
        rows = np.repeat(s, P, axis=0)  # (S·P, d), state-major
        for _ in range(self.iterations):
            seqs = self._sample(dist, S)  # (S, P, H[, ad])
            ret = self.sequence_returns(rows, seqs.reshape(S * P, H, *seqs.shape[3:])).reshape(S, P)
            order = np.argsort(-ret, axis=1, kind="stable")
            elite = np.take_along_axis(seqs, order[:, : self.elites].reshape(S, -1, *([1] * (seqs.ndim - 2))), axis=1)
            top = ret[np.arange(S), order[:, 0]]
            first = seqs[np.arange(S), order[:, 0], 0]
            better = top > best_return
            best_first = (
                first
                if best_first is None
                else np.where(better.reshape(-1, *([1] * (first.ndim - 1))), first, best_first)
            )
            best_return = np.maximum(best_return, top)
            dist = self._refit(dist, elite)
        assert best_first is not None
        return best_first

    def plan(self, state: FloatArray) -> int | FloatArray:
        """The CEM action from one state (d,): an int (discrete) or an array (action_dim,) (continuous)."""
        s = as_float_array(state, "state", ndim=1)
        a = self.plan_batch(s[None])[0]
        return int(a) if self.num_actions is not None else np.asarray(a, dtype=np.float64)
