"""Unseen-goal evaluation for finite MDPs: plan inside the extracted kernel, act in the true one.

For a task (reward and termination on arrival, never part of the agent's training set):

1. value iteration inside P̂ gives a greedy policy π_WM. P̂ is first projected row-wise onto the
   probability simplex (:func:`plray.core.project_simplex`): planning needs a distribution, and
   the projection is the identity whenever P̂ already is one;
2. π_WM is evaluated exactly under the true P (policy evaluation), giving the expected discounted
   return of greedy rollouts in the true environment from each start state;
3. the same with the optimal policy of the true P gives R*.

Returns average over start states drawn uniformly from the states that do not end the task. The
expectation is computed exactly, so R_WM and R* carry no Monte-Carlo noise; sampled rollouts in
the gymnasium environment agree with it within their standard error (see the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from plray.core.kernel import project_simplex
from plray.core.types import FloatArray, IntArray
from plray.evaluation.ground_truth import policy_evaluation, value_iteration
from plray.utils.validation import PlrayInputError, as_float_array


@dataclass(frozen=True)
class TaskReturns:
    """R_WM and R* on one task, with the greedy policies behind them (shape (S,))."""

    task: str
    return_wm: float
    return_opt: float
    policy_wm: IntArray
    policy_opt: IntArray

    @property
    def ratio(self) -> float:
        """R_WM / R*; 1.0 when both are zero."""
        if self.return_opt == 0.0:
            return 1.0 if self.return_wm == 0.0 else float("-inf")
        return self.return_wm / self.return_opt


def greedy_policy(P: FloatArray, rewards: FloatArray, dones: FloatArray, gamma: float) -> IntArray:
    """Optimal policy of one task inside kernel P (S, A, S), shape (S,)."""
    res = value_iteration(P, rewards[:, None], dones[:, None], gamma)
    return res.policy[:, 0]


def expected_return(
    P: FloatArray,
    rewards: FloatArray,
    dones: FloatArray,
    gamma: float,
    policy: IntArray,
    starts: IntArray | None = None,
) -> float:
    """Mean over start states of the expected discounted return of ``policy`` (S,) under P."""
    Q = policy_evaluation(P, rewards[:, None], dones[:, None], gamma, policy[:, None])[:, :, 0]
    V = Q[np.arange(Q.shape[0]), policy]
    if starts is None:
        starts = np.flatnonzero(dones == 0)
    return float(V[starts].mean())


def unseen_goal_returns(
    P_hat: FloatArray,
    P_true: FloatArray,
    rewards: FloatArray,
    dones: FloatArray,
    gamma: float,
    task: str = "task",
) -> TaskReturns:
    """R_WM (plan in P̂, act in P) next to R* (plan and act in P) for one task.

    Args:
        P_hat: extracted kernel, shape (S, A, S); any real numbers (projected before planning).
        P_true: true kernel, shape (S, A, S).
        rewards, dones: the task's reward and termination on arrival, shape (S,).
        gamma: discount.
    """
    P_hat = as_float_array(P_hat, "P_hat", ndim=3)
    P_true = as_float_array(P_true, "P_true", ndim=3)
    if P_hat.shape != P_true.shape:
        raise PlrayInputError(f"P_hat has shape {P_hat.shape} but the true kernel has shape {P_true.shape}")
    rewards = as_float_array(rewards, "rewards", ndim=1)
    dones = as_float_array(dones, "dones", ndim=1)
    pi_wm = greedy_policy(project_simplex(P_hat), rewards, dones, gamma)
    pi_opt = greedy_policy(P_true, rewards, dones, gamma)
    return TaskReturns(
        task=task,
        return_wm=expected_return(P_true, rewards, dones, gamma, pi_wm),
        return_opt=expected_return(P_true, rewards, dones, gamma, pi_opt),
        policy_wm=pi_wm,
        policy_opt=pi_opt,
    )


def unseen_summary(P_hat: FloatArray, mdp: Any, gamma: float) -> dict[str, Any]:
    """R_WM next to R* on every unseen task of a finite MDP, and their means.

    Args:
        P_hat: extracted kernel, shape (S, A, S).
        mdp: the true MDP: its ``kernel`` (S, A, S) and ``unseen_tasks()`` (e.g. :class:`plray.envs.FourRooms`).
        gamma: discount.

    Returns:
        ``return_wm`` and ``return_opt`` (means over tasks), ``return_ratio`` (their ratio; NaN if
        R* = 0) and ``unseen``: per task ``{"return_wm", "return_opt"}``.
    """
    P = mdp.kernel
    tasks = [unseen_goal_returns(P_hat, P, t.rewards, t.dones, gamma, t.name) for t in mdp.unseen_tasks()]
    return_wm = float(np.mean([t.return_wm for t in tasks]))
    return_opt = float(np.mean([t.return_opt for t in tasks]))
    return {
        "return_wm": return_wm,
        "return_opt": return_opt,
        "return_ratio": return_wm / return_opt if return_opt else float("nan"),
        "unseen": {t.task: {"return_wm": t.return_wm, "return_opt": t.return_opt} for t in tasks},
    }
