"""The task pipelines ``plray run`` knows: one :class:`~plray.experiments.taskapi.TaskPipeline` per task.

Adding a task to the experiment pipeline is one entry here (and its implementation): the schema
reads its vocabulary, the jobs, the sweep and the report call its methods.
"""

from __future__ import annotations

from plray.experiments.continuous_task import ContinuousPipeline, MujocoReacherPipeline, ReacherPipeline
from plray.experiments.tabular_task import TabularPipeline
from plray.experiments.taskapi import TaskPipeline

PIPELINES: dict[str, TaskPipeline] = {
    "fourrooms": TabularPipeline(),
    "mountaincar-position": ContinuousPipeline(),
    "mountaincar-velocity": ContinuousPipeline(),
    "reacher": ReacherPipeline(),
    "reacher-continuous": ReacherPipeline(),
    "mujoco-reacher": MujocoReacherPipeline(),
    "mujoco-reacher-discrete": MujocoReacherPipeline(),
}
"""Tasks the pipeline runs end to end, by :mod:`plray.envs.registry` name."""


def pipeline_for(task: str) -> TaskPipeline:
    """The pipeline of ``task`` (a name :meth:`ExperimentConfig.validate` accepted)."""
    try:
        return PIPELINES[task]
    except KeyError:
        raise KeyError(f"task {task!r} has no experiment pipeline; known: {', '.join(PIPELINES)}") from None
