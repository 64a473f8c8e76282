"""Ground truth, metrics and planning used to judge extracted world models."""

from plray.evaluation.ground_truth import ValueIterationResult, backup, policy_evaluation, value_iteration
from plray.evaluation.metrics import kernel_metrics, kernel_mse, tv_distance
from plray.evaluation.planning import TaskReturns, expected_return, greedy_policy, unseen_goal_returns, unseen_summary

__all__ = [
    "TaskReturns",
    "ValueIterationResult",
    "backup",
    "expected_return",
    "greedy_policy",
    "kernel_metrics",
    "kernel_mse",
    "policy_evaluation",
    "tv_distance",
    "unseen_goal_returns",
    "unseen_summary",
    "value_iteration",
]
