"""Ground truth, metrics and planning used to judge extracted world models.

Goals and rollouts have one owner each: :class:`Goal` (:mod:`plray.evaluation.goals`) scores
successors, :func:`plray.evaluation.rollout.rollout` computes discounted returns for grid
planning, CEM, the serve engine and agent evaluation.
"""

from plray.evaluation.goals import Goal, task_goal
from plray.evaluation.ground_truth import ValueIterationResult, backup, policy_evaluation, value_iteration
from plray.evaluation.metrics import kernel_metrics, kernel_mse, tv_distance
from plray.evaluation.planning import TaskReturns, expected_return, greedy_policy, unseen_goal_returns, unseen_summary
from plray.evaluation.rollout import Rollout, task_returns

__all__ = [
    "Goal",
    "Rollout",
    "TaskReturns",
    "ValueIterationResult",
    "backup",
    "expected_return",
    "greedy_policy",
    "kernel_metrics",
    "kernel_mse",
    "policy_evaluation",
    "task_goal",
    "task_returns",
    "tv_distance",
    "unseen_goal_returns",
    "unseen_summary",
    "value_iteration",
]
