"""One owner of the goal rule: a goal scores successors (reward, termination, forbidden region).

A :class:`Goal` is a reward and a termination as functions of the *next* state alone, with an
optional forbidden region: a forbidden successor ends the episode and pays 0, whatever the reward
says (the gentle-car goal's |v| > 0.05, docs/method.md#unseen-goals). :meth:`Goal.score` applies
that rule; grid value iteration (:mod:`plray.evaluation.grid`), rollouts
(:mod:`plray.evaluation.rollout`: CEM, agent evaluation, unseen-goal returns) and the serve engine
all score successors through it, so the rule is written once.

A task's goal-conditioned reward r(s', g) becomes a :class:`Goal` by fixing g
(:meth:`Goal.conditioned`, :func:`task_goal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from plray.core.types import (
    BoolArray,
    FloatArray,
    ForbiddenFn,
    RewardFn,
    StateForbiddenFn,
    StateRewardFn,
    StateTerminalFn,
    TerminalFn,
)
from plray.utils.validation import PlrayInputError, as_float_array, check_finite

if TYPE_CHECKING:
    from plray.envs.base import GoalTask


def check_output(out: object, name: str, shape: tuple[int, ...], boolean: bool = False) -> np.ndarray:
    """Validate what a user function returned: its shape, and finite (float) or 0/1 (bool) entries.

    Args:
        out: the function's output.
        name: the function's name, for the error message.
        shape: the expected shape.
        boolean: expect booleans (numbers 0 / 1 are accepted and converted).

    Returns:
        The output as float64 (or bool), of shape ``shape``.

    Raises:
        PlrayInputError: wrong shape, non-numeric, non-finite or non-boolean entries.
    """
    arr = np.asarray(out)
    if arr.shape != shape:
        raise PlrayInputError(f"{name}: expected an output of shape {shape}, got {arr.shape}")
    if boolean:
        if arr.dtype != np.bool_:
            if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
                raise PlrayInputError(f"{name}: expected booleans, got {arr.dtype} values")
            arr = arr != 0
        return arr
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise PlrayInputError(f"{name}: expected numbers, got {arr.dtype}") from exc
    check_finite(arr, name)
    return arr


@dataclass(frozen=True)
class Goal:
    """A goal as functions of the (next) state.

    Attributes:
        name: short identifier, e.g. ``"far_fingertip"``.
        reward_fn: r(s') for next states (B, d), shape (B,), paid on arrival.
        terminal_fn: done(s') for next states (B, d), shape (B,) bool.
        forbidden_fn: optional forbidden(s') (B, d) -> (B,) bool: such a successor ends the
            episode with reward 0, whatever ``reward_fn`` says.
        description: one line saying what the goal is.
    """

    name: str
    reward_fn: StateRewardFn
    terminal_fn: StateTerminalFn
    forbidden_fn: StateForbiddenFn | None = None
    description: str = ""

    def score(self, next_states: FloatArray, *, validate: bool = False) -> tuple[FloatArray, BoolArray]:
        """Rewards and terminations of successors, forbidden ones paying 0 and terminating.

        Args:
            next_states: successors s', shape (B, d).
            validate: check every function's output (shape (B,), finite rewards, booleans) and
                raise :class:`PlrayInputError` naming the function; otherwise outputs are only
                cast (float64, bool) and reshaped to (B,).

        Returns:
            ``(rewards (B,) float64, done (B,) bool)``: r(s') and done(s'), with r = 0 and done
            = True where ``forbidden_fn(s')`` holds.
        """
        B = len(next_states)
        if validate:
            r = check_output(self.reward_fn(next_states), "reward_fn", (B,))
            done = check_output(self.terminal_fn(next_states), "terminal_fn", (B,), boolean=True)
        else:
            r = np.asarray(self.reward_fn(next_states), dtype=np.float64).reshape(B)
            done = np.asarray(self.terminal_fn(next_states), dtype=bool).reshape(B)
        if self.forbidden_fn is not None:
            out = self.forbidden_fn(next_states)
            bad = (
                check_output(out, "forbidden_fn", (B,), boolean=True)
                if validate
                else np.asarray(out, dtype=bool).reshape(B)
            )
            r = np.where(bad, 0.0, r)
            done = done | bad
        return r, done

    @classmethod
    def conditioned(
        cls,
        reward_fn: RewardFn,
        terminal_fn: TerminalFn,
        goal: FloatArray,
        *,
        forbidden_fn: ForbiddenFn | None = None,
        name: str = "goal",
        description: str = "",
    ) -> Goal:
        """A goal-conditioned reward and termination at a fixed goal g.

        Args:
            reward_fn: r(next_states (B, d), goals (B, k)) -> (B,).
            terminal_fn: done(next_states (B, d), goals (B, k)) -> (B,) bool.
            goal: g, shape (k,), repeated to (B, k) for every call.
            forbidden_fn: optional forbidden(next_states (B, d)) -> (B,) bool.
            name, description: as the attributes.
        """
        g = as_float_array(goal, "goal", ndim=1)

        def reward(states: FloatArray) -> FloatArray:
            return reward_fn(states, np.repeat(g[None], len(states), axis=0))

        def terminal(states: FloatArray) -> BoolArray:
            return terminal_fn(states, np.repeat(g[None], len(states), axis=0))

        return cls(name, reward, terminal, forbidden_fn, description)


def task_goal(task: GoalTask, goal: FloatArray, *, forbidden_fn: ForbiddenFn | None = None) -> Goal:
    """A task's own reward and termination (``reward_at`` / ``terminal_at``) at goal g (k,) as a :class:`Goal`."""
    g = as_float_array(goal, "goal", ndim=1)
    return Goal.conditioned(
        task.reward_at,
        task.terminal_at,
        g,
        forbidden_fn=forbidden_fn,
        name="task",
        description=f"task goal {g.tolist()}",
    )
