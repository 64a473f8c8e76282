"""One batched rollout routine: a model (or the true dynamics), a :class:`~plray.evaluation.goals.Goal`, returns.

In the spirit of mbrl-lib's ``ModelEnv`` (a model plus reward and termination functions, used by
every planner), :func:`rollout` steps B rows at once through ``next_state_fn`` for up to H steps,
scores every successor with the goal and discounts:

    return_b = Σ_{t<H} γ^t r(s_{t+1}),   up to and including the first termination,

a forbidden successor terminating with reward 0 (:meth:`Goal.score`). Actions come from action
sequences (open loop: CEM, the API's rollouts) or from a policy of the current states (closed
loop: unseen-goal returns, agent evaluation). CEM (:mod:`plray.evaluation.cem`), the grid
helpers' rollouts (:func:`~plray.evaluation.grid.rollout_returns`), the serve engine and
``plray.agents.train.evaluate_greedy`` all call it.

What happens to rows that have terminated (their later rewards are 0 in every case):

* ``"freeze"``: they keep their last state and are stepped with the others (CEM: one model call
  per step over the whole batch, results ignored);
* ``"continue"``: they are stepped on from their successors (the API returns those states;
  agent evaluation draws successors for the whole batch);
* ``"drop"``: only live rows are stepped (rollouts on a stochastic task draw noise for them only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from plray.core.types import BoolArray, FloatArray, IntArray, NextStateFn, PolicyFn
from plray.evaluation.goals import Goal
from plray.utils.validation import PlrayInputError, as_float_array, check_gamma, check_shape

if TYPE_CHECKING:
    from plray.envs.base import GoalTask

AfterDone = Literal["freeze", "continue", "drop"]


@dataclass(frozen=True)
class Rollout:
    """What :func:`rollout` computed for B rows over a horizon H.

    Attributes:
        rewards: r(s_{t+1}) paid at each step, shape (B, H): up to and including the first
            termination, 0 after it (and at steps skipped once every row had terminated).
        terminated: whether the row has terminated at or before step t, shape (B, H) bool.
        returns: Σ_t γ^t rewards_t, shape (B,).
        states: the successors s_1..s_H, shape (B, H, d), when recorded (else None).
    """

    rewards: FloatArray
    terminated: BoolArray
    returns: FloatArray
    states: FloatArray | None = None

    @property
    def done(self) -> BoolArray:
        """Whether each row terminated within the horizon, shape (B,) bool."""
        return self.terminated[:, -1].copy()

    @property
    def steps(self) -> IntArray:
        """Steps taken up to and including the first termination (H for rows that never terminate), shape (B,)."""
        H = self.terminated.shape[1]
        first = np.argmax(self.terminated, axis=1)
        return np.where(self.done, first + 1, H).astype(np.int64)


def rollout(
    next_state_fn: NextStateFn,
    goal: Goal | None,
    starts: FloatArray,
    horizon: int,
    gamma: float,
    *,
    actions: np.ndarray | None = None,
    policy: PolicyFn | None = None,
    after_done: AfterDone = "freeze",
    stop_when_done: bool = True,
    record_states: bool = False,
    validate: bool = False,
) -> Rollout:
    """Roll B rows out for ``horizon`` steps, one ``next_state_fn`` call per step, and score them.

    Args:
        next_state_fn: the model or true dynamics, (states (b, d), actions (b,) / (b, ad)) -> (b, d).
        goal: scores each step's successors; None records states only (rewards and returns 0).
        starts: start states, shape (B, d).
        horizon: H >= 1.
        gamma: discount γ; step t weighs γ^t.
        actions: open-loop action sequences, shape (B, H) ints or (B, H, ad).
        policy: closed-loop actions, policy(states (b, d)) -> (b,) / (b, ad). Give exactly one
            of ``actions`` and ``policy``.
        after_done: ``"freeze"``, ``"continue"`` or ``"drop"`` (see the module docstring).
        stop_when_done: stop stepping once every row has terminated.
        record_states: keep the successors (B, H, d) (rows not stepped hold NaN).
        validate: check the goal's outputs (:meth:`Goal.score`).

    Returns:
        The :class:`Rollout`: rewards (B, H), terminated (B, H), returns (B,), states.
    """
    if (actions is None) == (policy is None):
        raise PlrayInputError("actions: give either action sequences or a policy")
    s = np.array(starts, dtype=np.float64, copy=True)
    B, H = s.shape[0], int(horizon)
    if actions is not None and actions.shape[:2] != (B, H):
        raise PlrayInputError(f"actions: expected leading shape ({B}, {H}), got {actions.shape}")
    discount = gamma ** np.arange(H)
    rewards = np.zeros((B, H))
    terminated = np.zeros((B, H), dtype=bool)
    traj = np.full((B, H, s.shape[1]), np.nan) if record_states else None
    alive = np.ones(B, dtype=bool)
    for t in range(H):
        rows: slice | IntArray = np.flatnonzero(alive) if after_done == "drop" else slice(None)
        s_t = s[rows]
        a_t = actions[rows, t] if actions is not None else _act(policy, s_t)
        nxt = np.asarray(next_state_fn(s_t, a_t), dtype=np.float64)
        if nxt.shape != s_t.shape:
            raise PlrayInputError(f"next_state_fn: expected an output of shape {s_t.shape}, got {nxt.shape}")
        if traj is not None:
            traj[rows, t] = nxt
        if goal is not None:
            r, done = goal.score(nxt, validate=validate)
            rewards[rows, t] = np.where(alive[rows], r, 0.0)
            alive[rows] &= ~done
        terminated[:, t] = ~alive
        if after_done == "freeze":
            s = np.where(alive[:, None], nxt, s)
        else:
            s[rows] = nxt
        if stop_when_done and not alive.any():
            terminated[:, t + 1 :] = True
            break
    return Rollout(rewards, terminated, (rewards * discount).sum(axis=1), traj)


def _act(policy: PolicyFn | None, states: FloatArray) -> np.ndarray:
    assert policy is not None
    return policy(states)


def task_returns(
    task: GoalTask,
    policy_fn: PolicyFn,
    goal: Goal,
    starts: FloatArray,
    horizon: int,
    gamma: float | None = None,
    seed: int = 0,
) -> FloatArray:
    """Discounted returns of a policy for a goal on a task's **true** dynamics, all starts at once.

    Step t pays r(s_{t+1}) with weight γ^t; a row stops at termination (the goal's, or a forbidden
    state, which pays 0) or after ``horizon`` steps. Only live rows are stepped.

    Args:
        task: the task (discrete actions).
        policy_fn: policy(states (B, d)) -> actions (B,) ints, e.g. ``GridSolution.act``.
        goal: the goal (scored with validation).
        starts: start states, shape (n, d).
        horizon: steps per rollout, >= 1.
        gamma: discount in (0, 1); default ``task.gamma``.
        seed: seeds the successor draws of a stochastic task (one trajectory per start); unused
            by deterministic ones.

    Returns:
        Discounted returns, shape (n,).
    """
    if task.num_actions is None:
        raise PlrayInputError(f"task: rollout_returns needs discrete actions; {task.name} has continuous ones")
    gamma = check_gamma(task.gamma if gamma is None else gamma)
    states = as_float_array(starts, "starts", ndim=2)
    check_shape(states, "starts", (None, task.state_dim), ("n", "d"))
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or int(horizon) < 1:
        raise PlrayInputError(f"horizon: expected an integer >= 1, got {horizon!r}")
    rng = np.random.default_rng([seed, 13])

    def act(s: FloatArray) -> np.ndarray:
        try:
            return task.check_actions(np.asarray(policy_fn(s)), len(s))
        except PlrayInputError as exc:
            raise PlrayInputError(f"policy_fn: returned invalid {exc}") from exc

    def step(s: FloatArray, a: np.ndarray) -> FloatArray:
        return task.sample_next_state(s, a, rng)

    out = rollout(step, goal, states, int(horizon), gamma, policy=act, after_done="drop", validate=True)
    return out.returns
