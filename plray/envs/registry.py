"""Continuous goal-conditioned tasks by name, and an RLlib-style env creator over them.

Names: ``mountaincar-position``, ``mountaincar-velocity``, ``mountaincar-position-noisy`` (position
goals, dynamics with Gaussian process noise: not in the paper), ``reacher`` (the paper's kinematic
reacher), ``mujoco-reacher`` (gymnasium's ``Reacher-v5`` physics; ``mujoco-reacher-discrete``: its 9
corner and centre controls as discrete actions) and ``fourrooms`` (the tabular
FourRooms as a goal task). A name fixes the continuous tasks completely; keyword arguments are
passed on only where a task's constructor declares them (``fourrooms``: variant, goal count and
family, seed; the MountainCar tasks: goal count, placement and seed, defaulting to the paper's four
evenly spaced goals), so the same name and arguments always mean the same dynamics and rewards.

``reacher``, ``reacher-continuous`` and the MountainCar tasks also take ``goals``: a training goal set in its plain-dict
(YAML) form, :meth:`plray.envs.goalsets.GoalSet.from_spec`, e.g.::

    task: reacher
    task_kwargs: {goals: {kind: fingertip, count: 8, placement: spread}}

    task: reacher   # a mixture of kinds: goals [target, one-hot of the kind]
    task_kwargs: {goals: {kind: mixture, parts: [{kind: fingertip, placement: spread, count: 16},
                                                 {kind: angle, placement: spread, count: 4}]}}

    task: mountaincar-position
    task_kwargs: {goals: {kind: position, count: 8, distribution: {shape: box, low: [-1.2], high: [0.6]}}}

(MountainCar: instead of ``num_goals``/``placement``/``seed``, not with them.)

:func:`make_env` is the creator to register with ``ray.tune.register_env``. RLlib's
``SingleAgentEnvRunner`` calls it with the user's ``env_config`` for a single env and, for a vector
env, with a plain-dict copy of it plus ``"num_envs"``; the latter yields one numpy-batched
:class:`~plray.envs.base.GoalVectorEnv` (NEXT_STEP autoreset, as RLlib expects). When RLlib's own
``config.seed`` is set, the env runner reseeds the env at its first reset with a per-runner seed,
which overrides ``env_config["seed"]``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from plray.envs.base import GoalEnv, GoalTask, GoalVectorEnv
from plray.envs.fourrooms import FourRoomsTask
from plray.envs.goalsets import GoalMixture, GoalSet, goal_set_kwarg
from plray.envs.mountaincar import NOISE_STD, MountainCarTask
from plray.envs.mujoco_reacher import DiscreteMujocoReacherTask, MujocoReacherTask
from plray.envs.reacher import ContinuousKinematicReacherTask, KinematicReacherTask
from plray.utils.validation import PlrayInputError, check_keys

ENV_CONFIG_KEYS: tuple[str, ...] = ("task", "task_kwargs", "seed", "num_envs", "start_states")


GoalsArg = GoalSet | GoalMixture | Mapping[str, Any] | None
"""A ``goals`` task argument: a :class:`GoalSet` or :class:`GoalMixture`, either's plain-dict form, or
None (the task's default)."""


def _mountaincar_position(
    num_goals: int = 4, placement: str = "spread", seed: int = 0, goals: GoalsArg = None
) -> MountainCarTask:
    return MountainCarTask("position", num_goals, placement, seed, goal_set=_goal_set(goals))


def _mountaincar_velocity(
    num_goals: int = 4, placement: str = "spread", seed: int = 0, goals: GoalsArg = None
) -> MountainCarTask:
    return MountainCarTask("velocity", num_goals, placement, seed, goal_set=_goal_set(goals))


def _mountaincar_position_noisy(
    num_goals: int = 4, placement: str = "spread", seed: int = 0, goals: GoalsArg = None
) -> MountainCarTask:
    return MountainCarTask("position", num_goals, placement, seed, noise_std=NOISE_STD, goal_set=_goal_set(goals))


def _reacher(goals: GoalsArg = None) -> KinematicReacherTask:
    return KinematicReacherTask(goal_set=_goal_set(goals))


def _reacher_continuous(goals: GoalsArg = None) -> ContinuousKinematicReacherTask:
    return ContinuousKinematicReacherTask(goal_set=_goal_set(goals))


def _goal_set(goals: GoalsArg) -> GoalSet | GoalMixture | None:
    return goal_set_kwarg(goals)


TASKS: dict[str, Callable[..., GoalTask]] = {
    "mountaincar-position": _mountaincar_position,
    "mountaincar-velocity": _mountaincar_velocity,
    "mountaincar-position-noisy": _mountaincar_position_noisy,
    "reacher": _reacher,
    "reacher-continuous": _reacher_continuous,
    "mujoco-reacher": MujocoReacherTask,
    "mujoco-reacher-discrete": DiscreteMujocoReacherTask,
    "fourrooms": FourRoomsTask,
}


def make_task(name: str, **kwargs: Any) -> GoalTask:
    """Build the task registered under ``name``.

    Args:
        name: one of :data:`TASKS`.
        **kwargs: constructor arguments the task declares (see the module docstring).

    Returns:
        a fresh task instance.

    Raises:
        PlrayInputError: unknown name, or keyword arguments the task does not accept.
    """
    if not isinstance(name, str) or name not in TASKS:
        raise PlrayInputError(f"task: unknown task {name!r}; choose one of {', '.join(TASKS)}")
    factory = TASKS[name]
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        params = [p for p in inspect.signature(factory).parameters if p != "self"]
        accepted = ", ".join(params) if params else "none"
        raise PlrayInputError(
            f"task_kwargs: task {name!r} does not accept {sorted(kwargs)} ({exc}); accepted: {accepted}"
        ) from exc
    return factory(**kwargs)


def make_env(env_config: Mapping[str, Any]) -> GoalEnv | GoalVectorEnv:
    """RLlib-style env creator: a :class:`GoalEnv`, or a :class:`GoalVectorEnv` when ``num_envs`` is given.

    Args:
        env_config: a mapping (a dict or RLlib's ``EnvContext``) with keys

            * ``"task"`` (required): a name in :data:`TASKS`;
            * ``"task_kwargs"``: dict of keyword arguments for :func:`make_task`;
            * ``"seed"``: non-negative int seeding reset states and goal draws (default: fresh
              entropy);
            * ``"num_envs"``: B ≥ 1; added by RLlib when it wants a vector env;
            * ``"start_states"``: ``"reset"`` (default) or ``"uniform"`` (vector envs only; see
              :class:`GoalVectorEnv`).

    Returns:
        ``GoalVectorEnv(task, num_envs, seed=seed)`` if ``"num_envs"`` is present, else
        ``GoalEnv(task)`` whose generator is seeded with ``seed``.

    Raises:
        PlrayInputError: a missing task, an unknown key, or a malformed value.
    """
    if not isinstance(env_config, Mapping):
        raise PlrayInputError(f"env_config: expected a dict, got {type(env_config).__name__}")
    check_keys(env_config, "env_config", ENV_CONFIG_KEYS)
    if "task" not in env_config:
        raise PlrayInputError(f"env_config: missing 'task'; choose one of {', '.join(TASKS)}")
    task_kwargs = env_config.get("task_kwargs") or {}
    if not isinstance(task_kwargs, Mapping):
        raise PlrayInputError(f"env_config['task_kwargs']: expected a dict, got {type(task_kwargs).__name__}")
    seed = env_config.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
        raise PlrayInputError(f"env_config['seed']: expected a non-negative integer or None, got {seed!r}")
    seed = None if seed is None else int(seed)
    task = make_task(env_config["task"], **dict(task_kwargs))
    if "num_envs" in env_config:
        num_envs = env_config["num_envs"]
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise PlrayInputError(f"env_config['num_envs']: expected a positive integer, got {num_envs!r}")
        return GoalVectorEnv(task, int(num_envs), seed=seed, start_states=str(env_config.get("start_states", "reset")))
    if env_config.get("start_states", "reset") != "reset":
        raise PlrayInputError("env_config['start_states']: only vector envs (with 'num_envs') take other start states")
    env = GoalEnv(task)
    if seed is not None:
        env.np_random = np.random.default_rng(seed)
    return env
