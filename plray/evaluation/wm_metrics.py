"""World-model accuracy of continuous-state models: the paper's WM_MSE / WM_NMSE (docs/method.md#world-model-error).

For a world model f̂ (``predict_fn``) and the task's exact dynamics f (``task.next_state``), on
evaluation states s_1 … s_B drawn from the **same distribution the model was trained on**
(Reacher: ``env.reset()`` states, the paper uses 80² = 6 400 of them; MountainCar: states uniform
over the state box, the paper uses 500² = 250 000), for every action a and dim j::

    e_{i,a,j}   = f̂(s_i, a)_j − f(s_i, a)_j        (wrapped to [−π, π) on angle dims)
    MSE_{a,j}   = mean_i e_{i,a,j}²
    NMSE_{a,j}  = MSE_{a,j} / Var_i(f(s_i, a)_j)

The headline WM_MSE / WM_NMSE are the means over all (a, j) pairs. Discrete tasks use every action;
continuous-action tasks use a given set of sampled actions, each applied to every state.

Spaces: ``space="state"`` compares states (d dims, angle dims ``task.angle_dims``);
``space="obs"`` compares ``task.observe`` of both (o dims), which is what the paper averages over
for Reacher: the 6 observation dims [θ₁, θ₂, ω₁, ω₂, fp_x, fp_y], fingertip included; obs dims 0
and 1 are angles there (see :func:`obs_angle_dims`).

The variance of an angle dim is the ordinary variance of its wrapped values (as a plain
``var`` over the coordinate would be in the paper's code), not a circular variance.

:func:`cross_model_nmse` compares two models with the second as the reference (the paper's
cross-WM NMSE between the MountainCar position and velocity agents' models): the same formula with
f replaced by the reference model's prediction, normalised by the variance of that prediction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from plray.core.types import FloatArray, IntArray
from plray.envs.base import GoalTask, wrap_angle
from plray.utils.validation import PlrayInputError, as_float_array, check_shape

PredictFn = Callable[[FloatArray, np.ndarray], FloatArray]
"""predict_fn(states (B, d), actions (B,) ints or (B, action_dim)) -> next states (B, d), numpy."""

Space = Literal["state", "obs"]
Distribution = Literal["reset", "uniform"]

PAPER_EVALUATION: dict[str, tuple[Distribution, int]] = {
    "reacher": ("reset", 80**2),
    "reacher-continuous": ("reset", 80**2),  # not in the paper: the Reacher's own set
    "mountaincar-position": ("uniform", 500**2),
    "mountaincar-velocity": ("uniform", 500**2),
    "mountaincar-position-noisy": ("uniform", 500**2),
}
"""The paper's WM evaluation set per task name: (distribution, number of states) (docs/method.md#world-model-error)."""


def obs_angle_dims(task: GoalTask) -> tuple[int, ...]:
    """Observation dims of a task that are angles (compared with wrapped differences).

    A task may declare them as an ``obs_angle_dims`` attribute. Otherwise the known tasks are
    mapped here: the kinematic Reacher's obs [θ₁, θ₂, ω₁, ω₂, fp_x, fp_y] has angles at (0, 1);
    MountainCar's obs [x, v] has none; the MuJoCo Reacher observes cos/sin, so none either.

    Raises:
        PlrayInputError: for a task that is neither declared nor known.
    """
    declared = getattr(task, "obs_angle_dims", None)
    if declared is not None:
        return tuple(int(j) for j in declared)
    from plray.envs.mountaincar import MountainCarTask
    from plray.envs.mujoco_reacher import MujocoReacherTask
    from plray.envs.reacher import KinematicReacherTask

    if isinstance(task, KinematicReacherTask):
        return (0, 1)
    if isinstance(task, MountainCarTask | MujocoReacherTask):
        return ()
    raise PlrayInputError(
        f"task: no known observation angle dims for {getattr(task, 'name', type(task).__name__)!r}; "
        "pass obs_angle_dims explicitly"
    )


def evaluation_states(
    task: GoalTask, n: int, rng: np.random.Generator, distribution: Distribution = "reset"
) -> FloatArray:
    """Evaluation states for WM metrics, from the distribution the world model was trained on.

    Args:
        task: the task.
        n: number of states, >= 2 (a variance needs two).
        rng: numpy generator (seeds the draw).
        distribution: ``"reset"`` (``task.reset_states``, the paper's Reacher choice) or
            ``"uniform"`` (``task.sample_states``: uniform over [state_low, state_high], the
            paper's MountainCar choice).

    Returns:
        States, shape (n, d).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or int(n) < 2:
        raise PlrayInputError(f"n: expected an integer >= 2, got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise PlrayInputError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if distribution == "reset":
        return np.asarray(task.reset_states(int(n), rng), dtype=np.float64)
    if distribution == "uniform":
        return np.asarray(task.sample_states(int(n), rng), dtype=np.float64)
    raise PlrayInputError(f"distribution: unknown value {distribution!r}; choose one of reset, uniform")


EVALUATION_ACTIONS = 16
"""Continuous-action tasks: actions drawn uniformly from the action box for WM metrics (each applied
to every evaluation state)."""


def evaluation_actions(task: GoalTask, rng: np.random.Generator, n: int = EVALUATION_ACTIONS) -> FloatArray | None:
    """The action set of WM metrics: None (every action) for discrete tasks, else n uniform draws.

    Args:
        task: the task; continuous tasks need ``action_low`` / ``action_high``.
        rng: numpy generator (seeds the draw).
        n: number of continuous actions, >= 1.

    Returns:
        None for a discrete task, else actions uniform over [action_low, action_high], shape (n, action_dim).
    """
    if task.num_actions is not None:
        return None
    if task.action_low is None or task.action_high is None:
        raise PlrayInputError(f"task: {task.name!r} has continuous actions but no action_low / action_high")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or int(n) < 1:
        raise PlrayInputError(f"n: expected a positive integer, got {n!r}")
    low, high = np.asarray(task.action_low, dtype=np.float64), np.asarray(task.action_high, dtype=np.float64)
    return rng.uniform(low, high, size=(int(n), task.action_dim))


def network_predict_fn(network: Any) -> PredictFn:
    """Wrap a torch successor model (e.g. :class:`~plray.core.neural.SuccessorNetwork`) as a numpy predict_fn.

    The network is called under ``torch.no_grad`` on float32 inputs; outputs come back float64.
    """
    import torch

    def predict(states: FloatArray, actions: np.ndarray) -> FloatArray:
        with torch.no_grad():
            s = torch.as_tensor(np.asarray(states), dtype=torch.float32)
            a = torch.as_tensor(np.asarray(actions))
            return network(s, a).double().numpy()

    return predict


def _action_set(task: GoalTask, actions: object) -> list[np.int64 | np.ndarray]:
    """One action per evaluated "action" a: ints for discrete tasks, (action_dim,) rows otherwise."""
    if task.num_actions is not None:
        if actions is None:
            return [np.int64(a) for a in range(task.num_actions)]
        arr = np.asarray(actions)
        if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise PlrayInputError(f"actions: expected a non-empty 1-D array of action indices, got {arr.shape}")
        if (arr < 0).any() or (arr >= task.num_actions).any():
            raise PlrayInputError(f"actions: must lie in [0, {task.num_actions}), got {arr.tolist()}")
        return [np.int64(a) for a in arr]
    if actions is None:
        raise PlrayInputError(
            f"actions: task {task.name!r} has continuous actions; pass a set of sampled actions (A, action_dim)"
        )
    arr = as_float_array(actions, "actions", ndim=2)
    check_shape(arr, "actions", (None, task.action_dim), ("A", "action_dim"))
    if arr.shape[0] == 0:
        raise PlrayInputError("actions: need at least one action")
    return list(arr)


def _batch_actions(action: np.int64 | np.ndarray, b: int) -> np.ndarray:
    if np.ndim(action) == 0:
        return np.full(b, int(action), dtype=np.int64)
    return np.repeat(np.asarray(action, dtype=np.float64)[None], b, axis=0)


def _check_prediction(out: object, name: str, shape: tuple[int, int]) -> FloatArray:
    arr = np.asarray(out)
    if arr.shape != shape:
        raise PlrayInputError(f"{name}: expected an output of shape {shape} (B, d), got {arr.shape}")
    return as_float_array(arr, name)


def _space_setup(task: GoalTask, space: str, angle_dims: Sequence[int] | None) -> tuple[int, tuple[int, ...]]:
    if space == "state":
        width = task.state_dim
        default = tuple(task.angle_dims)
    elif space == "obs":
        width = task.obs_dim
        default = obs_angle_dims(task) if angle_dims is None else ()
    else:
        raise PlrayInputError(f"space: unknown value {space!r}; choose one of state, obs")
    dims = default if angle_dims is None else tuple(int(j) for j in angle_dims)
    if any(not 0 <= j < width for j in dims):
        raise PlrayInputError(f"angle_dims: entries must lie in [0, {width}), got {dims}")
    return width, dims


def _error_table(
    predict_fn: PredictFn,
    reference_fn: PredictFn,
    task: GoalTask,
    states: object,
    *,
    space: str,
    actions: object,
    angle_dims: Sequence[int] | None,
    names: tuple[str, str],
) -> tuple[FloatArray, FloatArray, int]:
    """MSE (A, w) of predict_fn against reference_fn and Var (A, w) of the reference, plus B."""
    s = as_float_array(states, "states", ndim=2)
    check_shape(s, "states", (None, task.state_dim), ("B", "d"))
    if s.shape[0] < 2:
        raise PlrayInputError(f"states: need at least 2 states to compute a variance, got {s.shape[0]}")
    width, dims = _space_setup(task, space, angle_dims)
    action_list = _action_set(task, actions)
    B, d = s.shape
    mse = np.empty((len(action_list), width))
    var = np.empty((len(action_list), width))
    for i, a in enumerate(action_list):
        acts = _batch_actions(a, B)
        pred = _check_prediction(predict_fn(s, acts), names[0], (B, d))
        ref = _check_prediction(reference_fn(s, acts), names[1], (B, d))
        if space == "obs":
            pred, ref = np.asarray(task.observe(pred)), np.asarray(task.observe(ref))
        diff = pred - ref
        if dims:
            # wrapped differences; the reference's angles wrapped to [−π, π) before taking Var
            idx = list(dims)
            diff[:, idx] = wrap_angle(diff[:, idx])
            ref = ref.copy()
            ref[:, idx] = wrap_angle(ref[:, idx])
        mse[i] = (diff**2).mean(axis=0)
        var[i] = ref.var(axis=0)
    flat = np.argwhere(var <= 0.0)
    if flat.size:
        pairs = [(int(p[0]), int(p[1])) for p in flat[:5]]
        raise PlrayInputError(
            f"states: the reference next state has zero variance for {len(flat)} (action, dim) pairs, "
            f"e.g. {pairs}; NMSE is undefined (use more varied evaluation states)"
        )
    return mse, var, B


KERNEL_SAMPLES = 256
"""Successor draws per (state, action) of :func:`kernel_moments` (stochastic tasks)."""


def kernel_moments(
    task: GoalTask,
    states: FloatArray,
    actions: np.ndarray,
    *,
    samples: int = KERNEL_SAMPLES,
    seed: int = 0,
    chunk: int = 4096,
) -> tuple[FloatArray, FloatArray]:
    """Mean and standard deviation of a task's successor distribution per (state, action), by Monte Carlo.

    Deterministic tasks return (``next_state``, 0) exactly. For stochastic ones each row draws
    ``samples`` successors with ``task.sample_next_state``; angle dims are averaged as deviations
    from the noise-free step f(s, a), wrapped, so the mean does not straddle the seam.

    Args:
        task: the task.
        states: (B, d); actions: (B,) ints or (B, action_dim).
        samples: draws per row, >= 2.
        seed: seeds the draws (the same seed gives the same moments).
        chunk: rows per batch of draws (memory: chunk · samples · d floats).

    Returns:
        (mean (B, d), std (B, d)), float64.
    """
    s = as_float_array(states, "states", ndim=2)
    f = np.asarray(task.next_state(s, actions), dtype=np.float64)
    if not task.stochastic:
        return f, np.zeros_like(f)
    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or samples < 2:
        raise PlrayInputError(f"samples: expected an integer >= 2, got {samples!r}")
    acts = np.asarray(actions)
    rng = np.random.default_rng([seed, 17])
    mean, std = np.empty_like(f), np.empty_like(f)
    angles = list(task.angle_dims)
    for lo in range(0, len(s), chunk):
        hi = min(lo + chunk, len(s))
        rep_s = np.repeat(s[lo:hi], samples, axis=0)
        rep_a = np.repeat(acts[lo:hi], samples, axis=0)
        dev = task.sample_next_state(rep_s, rep_a, rng).reshape(hi - lo, samples, -1) - f[lo:hi, None]
        if angles:
            dev[..., angles] = wrap_angle(dev[..., angles])
        mean[lo:hi] = f[lo:hi] + dev.mean(axis=1)
        std[lo:hi] = dev.std(axis=1, ddof=1)
    if angles:
        mean[:, angles] = wrap_angle(mean[:, angles])
    return mean, std


def wm_errors(
    predict_fn: PredictFn,
    task: GoalTask,
    states: FloatArray,
    *,
    space: Space = "state",
    actions: IntArray | FloatArray | None = None,
    angle_dims: Sequence[int] | None = None,
    reference_fn: PredictFn | None = None,
) -> dict[str, Any]:
    """The paper's WM_MSE and WM_NMSE of a model against the task's true dynamics (docs/method.md#world-model-error).

    Per (action a, dim j): MSE_{a,j} = mean_i (f̂(s_i, a)_j − f(s_i, a)_j)² (wrapped on angle dims)
    and NMSE_{a,j} = MSE_{a,j} / Var_i(f(s_i, a)_j); headline numbers average over all (a, j).
    For a stochastic task (not in the paper) f is the mean successor E[s' | s, a]
    (:func:`kernel_moments`, seeded) and f̂ the model's mean prediction; :func:`kernel_errors` adds
    the spread.

    Args:
        predict_fn: the model, predict_fn(states (B, d), actions (B,) or (B, action_dim)) -> (B, d)
            numpy (see :func:`network_predict_fn` for torch models).
        task: the task; ``task.next_state`` is the truth (the kernel's mean if stochastic).
        states: evaluation states, shape (B, d), B >= 2; draw them from the model's training
            distribution (:func:`evaluation_states`).
        space: ``"state"`` (d dims, angles ``task.angle_dims``) or ``"obs"`` (compare
            ``task.observe`` of both, o dims, angles :func:`obs_angle_dims`; the paper's Reacher
            headline averages over its 6 obs dims).
        actions: discrete tasks: optional subset of action indices (default: all A actions);
            continuous tasks: required set of sampled actions, shape (A, action_dim), each applied
            to every state.
        angle_dims: override the angle dims of the chosen space.
        reference_fn: the truth as a function like ``predict_fn``, if already computed (e.g. cached
            kernel means); default ``task.next_state``, or the kernel's mean for stochastic tasks.

    Returns:
        A dict with ``wm_mse`` and ``wm_nmse`` (floats, means over (a, j)),
        ``per_action_dim_mse`` / ``per_action_dim_nmse`` (A × w nested lists, w = d or o),
        ``per_dim_mse`` / ``per_dim_nmse`` (w lists, means over actions), ``num_states`` (B),
        ``num_actions`` (A) and ``space``.
    """
    truth: PredictFn = task.next_state if reference_fn is None else reference_fn
    if reference_fn is None and task.stochastic:

        def truth(s: FloatArray, a: np.ndarray) -> FloatArray:
            return kernel_moments(task, s, a)[0]

    mse, var, B = _error_table(
        predict_fn,
        truth,
        task,
        states,
        space=space,
        actions=actions,
        angle_dims=angle_dims,
        names=("predict_fn", "task.next_state"),
    )
    nmse = mse / var
    return {
        "wm_mse": float(mse.mean()),
        "wm_nmse": float(nmse.mean()),
        "per_action_dim_mse": mse.tolist(),
        "per_action_dim_nmse": nmse.tolist(),
        "per_dim_mse": mse.mean(axis=0).tolist(),
        "per_dim_nmse": nmse.mean(axis=0).tolist(),
        "num_states": int(B),
        "num_actions": int(mse.shape[0]),
        "space": space,
    }


def kernel_errors(
    mean_fn: PredictFn,
    std_fn: PredictFn | None,
    task: GoalTask,
    states: FloatArray,
    *,
    samples: int = KERNEL_SAMPLES,
    seed: int = 0,
    actions: IntArray | FloatArray | None = None,
) -> dict[str, Any]:
    """How well a model's successor distribution matches a stochastic task's kernel, per state dim.

    Not in the paper (its tasks are deterministic). With the true moments (μ, σ) from
    :func:`kernel_moments` and the model's (μ̂, σ̂) (σ̂ = 0 for a deterministic model,
    ``std_fn=None``), over every (state, action) pair:

    * ``mean_nmse``: WM_NMSE of μ̂ against μ, per dim (as :func:`wm_errors`);
    * ``std_true`` / ``std_model``: mean σ and mean σ̂ per dim;
    * ``std_rel_error``: median |σ̂ − σ| / σ per dim over pairs with σ > 0 (None where σ = 0);
    * ``w2``: mean 2-Wasserstein distance between the diagonal Gaussians N(μ, σ²) and N(μ̂, σ̂²),
      sqrt(‖μ̂ − μ‖² + ‖σ̂ − σ‖²), in state units (angle differences wrapped).

    Args:
        mean_fn: the model's mean successor, (B, d), (B,) -> (B, d).
        std_fn: its per-dim standard deviation, same signature, or None (deterministic model).
        task: the task.
        states: evaluation states (B, d), B >= 2.
        samples, seed: Monte Carlo draws per pair and their seed (:func:`kernel_moments`).
        actions: the evaluated actions as in :func:`wm_errors` (discrete: default every action;
            continuous: required, (A, action_dim)).

    Returns:
        A dict with the per-dim lists above, ``w2`` (float), ``num_states`` and ``samples``.
    """
    s = as_float_array(states, "states", ndim=2)
    check_shape(s, "states", (None, task.state_dim), ("B", "d"))
    if s.shape[0] < 2:
        raise PlrayInputError(f"states: need at least 2 states, got {s.shape[0]}")
    B, d = s.shape
    angles = list(task.angle_dims)
    mse, var, sig, sig_hat, rel, w2 = [], [], [], [], [], []
    for a in _action_set(task, actions):
        acts = _batch_actions(a, B)
        mu, sigma = kernel_moments(task, s, acts, samples=samples, seed=seed)
        mu_hat = _check_prediction(mean_fn(s, acts), "mean_fn", (B, d))
        sigma_hat = np.zeros((B, d)) if std_fn is None else _check_prediction(std_fn(s, acts), "std_fn", (B, d))
        diff = mu_hat - mu
        if angles:
            diff[:, angles] = wrap_angle(diff[:, angles])
        mse.append((diff**2).mean(axis=0))
        var.append(mu.var(axis=0))
        sig.append(sigma)
        sig_hat.append(sigma_hat)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel.append(np.where(sigma > 0, np.abs(sigma_hat - sigma) / sigma, np.nan))
        w2.append(np.sqrt((diff**2).sum(axis=1) + ((sigma_hat - sigma) ** 2).sum(axis=1)))
    mse_arr, var_arr = np.array(mse), np.array(var)
    rel_all = np.concatenate(rel)
    rel_med = [None if np.isnan(rel_all[:, j]).all() else float(np.nanmedian(rel_all[:, j])) for j in range(d)]
    return {
        "mean_nmse": float((mse_arr / var_arr).mean()),
        "mean_nmse_per_dim": (mse_arr / var_arr).mean(axis=0).tolist(),
        "std_true": np.concatenate(sig).mean(axis=0).tolist(),
        "std_model": np.concatenate(sig_hat).mean(axis=0).tolist(),
        "std_rel_error": rel_med,
        "w2": float(np.concatenate(w2).mean()),
        "num_states": int(B),
        "samples": int(samples),
    }


def cross_model_nmse(
    predict_a: PredictFn,
    predict_b: PredictFn,
    task: GoalTask,
    states: FloatArray,
    *,
    space: Space = "state",
    actions: IntArray | FloatArray | None = None,
    angle_dims: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Cross-WM NMSE: model A's predictions against model B's as the reference (docs/method.md#cross-model-error).

    NMSE_{a,j} = mean_i (f_A(s_i, a)_j − f_B(s_i, a)_j)² / Var_i(f_B(s_i, a)_j), averaged over all
    (a, j). With ``predict_b = task.next_state`` this is :func:`wm_errors`'s WM_NMSE. The measure is
    not symmetric (the normaliser is B's).

    Args:
        predict_a: the compared model, numpy (B, d), (B,) -> (B, d).
        predict_b: the reference model, same signature.
        task: the task (state layout, angle dims, observation, action set).
        states: evaluation states, shape (B, d), B >= 2 (the paper: a grid over MountainCar's box).
        space, actions, angle_dims: as :func:`wm_errors`.

    Returns:
        A dict with ``nmse`` and ``mse`` (floats), ``per_action_dim_nmse`` (A × w list),
        ``per_dim_nmse`` (w list) and ``num_states``.
    """
    mse, var, B = _error_table(
        predict_a,
        predict_b,
        task,
        states,
        space=space,
        actions=actions,
        angle_dims=angle_dims,
        names=("predict_a", "predict_b"),
    )
    nmse = mse / var
    return {
        "nmse": float(nmse.mean()),
        "mse": float(mse.mean()),
        "per_action_dim_nmse": nmse.tolist(),
        "per_dim_nmse": nmse.mean(axis=0).tolist(),
        "num_states": int(B),
    }
