"""The numeric side of the API: validated, vectorised predict / rollout / plan on a loaded model.

Everything here is plain numpy / torch on whole batches and raises :class:`~plray.serve.errors.ApiError`
for bad input, so the HTTP layer only parses and encodes. The benchmark calls these same
functions in-process as the reference for the API's overhead.

Shapes: B rows, d = state_dim, ad = action_dim, H horizon, n samples, S finite-model states.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plray.core.types import BoolArray, FloatArray
from plray.core.validation import PlrayInputError
from plray.core.worldmodel import TabularWorldModel, WorldModel
from plray.envs.base import wrap_angle
from plray.evaluation.goals import Goal, task_goal
from plray.evaluation.rollout import rollout as run_rollout
from plray.serve.errors import ApiError

FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Limits:
    """Caps on what one request may ask for (each breach is a 413).

    Attributes:
        max_batch: B of predict.
        max_rollout_steps: B·H of rollout (model rows evaluated).
        max_output_elements: numbers in one answer (B·n·d samples, B·S distributions, B·H·d trajectories).
        max_plan_rows: model rows one plan may evaluate (CEM: population·horizon·iterations; grids: nodes·A).

    The defaults are sized so that the costliest admitted rollout or plan finishes in a few seconds
    on a 2-core machine (``bench/serve.py`` records ``slowest_admitted_s``); the request deadline
    stops anything slower.
    """

    max_batch: int = 1 << 20
    max_rollout_steps: int = 1 << 19
    max_output_elements: int = 1 << 25
    max_plan_rows: int = 1 << 19
    max_horizon: int = 1000
    max_grid_rows: int = 1 << 16


DEFAULT_LIMITS = Limits()


@dataclass
class Deadline:
    """When a request must stop: a wall-clock budget and a flag set when its client goes away.

    :meth:`check` is called between steps of long work (rollout steps, value-iteration sweeps).
    """

    seconds: float = 10.0
    cancelled: threading.Event = field(default_factory=threading.Event)
    start: float = field(default_factory=time.monotonic)

    def check(self) -> None:
        """Raise ``ApiError(cancelled)`` if the client left, ``deadline_exceeded`` past the budget."""
        if self.cancelled.is_set():
            raise ApiError("cancelled", "the client closed the connection; the work was stopped")
        if time.monotonic() - self.start > self.seconds:
            raise ApiError("deadline_exceeded", f"the request ran past this server's deadline of {self.seconds:g} s")


NO_DEADLINE = Deadline(float("inf"))


def _too_large(what: str, got: int, cap: int) -> ApiError:
    return ApiError("payload_too_large", f"{what}: {got:,} exceeds this server's cap of {cap:,}")


def _numeric(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ApiError("invalid_input", f"{name}: not a rectangular array ({exc})") from exc
    if arr.dtype == object:
        raise ApiError("invalid_input", f"{name}: not a rectangular array of numbers (rows of different lengths?)")
    if arr.dtype.kind not in "fiu":
        raise ApiError("invalid_input", f"{name}: dtype {arr.dtype} is not numeric")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ApiError(
                "invalid_input", f"{name}: {int(bad.sum())} entries are NaN or infinite (first at index {first})"
            )
    if arr.size and float(np.max(np.abs(arr))) > FLOAT32_MAX:
        raise ApiError("invalid_input", f"{name}: values beyond ±{FLOAT32_MAX:.3g} (the float32 range models run in)")
    return arr


def check_batch(model: WorldModel, states: Any, actions: Any, *, steps: bool = False) -> tuple[FloatArray, np.ndarray]:
    """Validate states (B, d) and actions (B,) / (B, ad), or with ``steps`` (B, H) / (B, H, ad).

    Returns:
        states as float64 (B, d); actions as int64 (B[, H]) for discrete models, float64 otherwise.
    """
    s = _numeric(states, "states")
    a = _numeric(actions, "actions")
    d = model.state_dim
    if s.ndim != 2 or s.shape[1] != d:
        raise ApiError("invalid_input", f"states: expected shape (B, {d}), got {s.shape}")
    B = s.shape[0]
    if B < 1:
        raise ApiError("invalid_input", "states: the batch is empty")
    lead = (B, a.shape[1]) if steps and a.ndim >= 2 else (B,)
    if steps and a.ndim < 2:
        raise ApiError("invalid_input", f"actions: expected shape (B, H{', ad' if not model.discrete_actions else ''})")
    if model.discrete_actions:
        if a.shape != lead:
            raise ApiError(
                "invalid_input",
                f"actions: expected shape {('(B, H)' if steps else '(B,)')} = {lead} of integers, got {a.shape}",
            )
        _check_action_indices(a, int(model.num_actions or 0))
        a = a.astype(np.int64)
    else:
        want = (*lead, model.action_dim)
        if a.shape != want:
            raise ApiError(
                "invalid_input", f"actions: expected shape {want} (B{', H' if steps else ''}, ad), got {a.shape}"
            )
        a = a.astype(np.float64)
    s = s.astype(np.float64)
    if isinstance(model, TabularWorldModel):
        idx = s[:, 0]
        if idx.min() < 0 or idx.max() >= model.num_states or not np.all(idx == np.round(idx)):
            raise ApiError(
                "invalid_input", f"states: finite-model states are integer indices in [0, {model.num_states})"
            )
    return s, a


def _check_action_indices(a: np.ndarray, num_actions: int) -> None:
    """Discrete actions must be integers in [0, A): checked on the values as sent, before any cast to int64."""
    if a.dtype.kind == "f" and not np.all(a == np.round(a)):
        raise ApiError("invalid_input", f"actions: expected integers in [0, {num_actions}), got fractions")
    bad = (a < 0) | (a >= num_actions)
    if a.size and bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ApiError(
            "invalid_input",
            f"actions: {int(bad.sum())} entries are not a valid action index: actions must lie in "
            f"[0, {num_actions}) (integers 0 … {num_actions - 1}); first {a[first]:g} at index {first}",
        )


def _finite_output(arr: FloatArray, name: str) -> FloatArray:
    if not np.isfinite(arr).all():
        raise ApiError(
            "invalid_input",
            f"{name}: the model's output is not finite for these inputs (states far outside its domain?)",
        )
    return arr


def _call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except PlrayInputError as exc:
        raise ApiError("invalid_input", str(exc)) from exc


# ---------------------------------------------------------------------- predict
def predict(
    model: WorldModel,
    states: FloatArray,
    actions: np.ndarray,
    *,
    n_samples: int = 0,
    seed: int | None = None,
    include_std: bool = True,
    include_distribution: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, np.ndarray]:
    """One-step predictions for validated inputs (see :func:`check_batch`).

    Returns:
        ``next_states`` (B, d); ``std`` (B, d) for gaussian and ensemble models if asked; ``samples`` (B, n, d)
        if n > 0; ``distribution`` (B, S) for tabular models if asked.
    """
    B, d = states.shape
    if limits.max_batch < B:
        raise _too_large("batch size B", B, limits.max_batch)
    if n_samples * B * d > limits.max_output_elements:
        raise _too_large("samples B·n·d", n_samples * B * d, limits.max_output_elements)
    out: dict[str, np.ndarray] = {"next_states": _finite_output(_call(model.predict, states, actions), "next_states")}
    if include_std and model.model_type in ("gaussian", "ensemble"):
        out["std"] = _finite_output(_call(model.std, states, actions), "std")
    if n_samples > 0:
        rng = np.random.default_rng(seed)
        draws = _call(model.sample, states, actions, n_samples, rng)  # (n, B, d)
        out["samples"] = _finite_output(np.ascontiguousarray(np.swapaxes(draws, 0, 1)), "samples")
    if include_distribution and isinstance(model, TabularWorldModel):
        if B * model.num_states > limits.max_output_elements:
            raise _too_large("distribution B·S", B * model.num_states, limits.max_output_elements)
        out["distribution"] = _call(model.distribution, states, actions)
    return out


# ---------------------------------------------------------------------- goals
def build_goal(spec: dict[str, Any], model: WorldModel, task_fn: Any) -> Goal:
    """A :class:`~plray.evaluation.goals.Goal` (reward, termination, forbidden region of next states) from a spec.

    Args:
        spec: a validated goal (``schemas.Goal`` as a dict): kind ``task``, ``unseen`` or ``region``.
        model: the model (its dims and angle dims).
        task_fn: () -> the model's task (raises ApiError if it has none); called only when needed.
    """
    kind = spec.get("kind")
    if kind == "task":
        task = task_fn()
        g = _numeric(spec["goal"], "goal.goal").astype(np.float64)
        if g.shape != (task.goal_dim,):
            raise ApiError(
                "invalid_input", f"goal.goal: task {task.name!r} has goals of shape ({task.goal_dim},), got {g.shape}"
            )
        own = task_goal(task, g)
        return Goal(own.name, _guard(own.reward_fn), _guard(own.terminal_fn), None, own.description)
    if kind == "unseen":
        from plray.evaluation.unseen import unseen_goal

        task = task_fn()
        try:
            return unseen_goal(task, spec["name"])
        except PlrayInputError as exc:
            raise ApiError("invalid_input", f"goal.name: {exc}") from exc
    if kind == "region":
        d = model.state_dim
        dims = list(range(d)) if spec.get("dims") is None else list(spec["dims"])
        if not dims or min(dims) < 0 or max(dims) >= d or len(set(dims)) != len(dims):
            raise ApiError("invalid_input", f"goal.dims: expected distinct indices in [0, {d}), got {dims}")
        target = _numeric(spec["target"], "goal.target").astype(np.float64)
        if target.shape != (len(dims),):
            raise ApiError(
                "invalid_input", f"goal.target: expected shape ({len(dims)},) to match dims, got {target.shape}"
            )
        tol = float(spec["tolerance"])
        limit = spec.get("forbidden_above")
        angles = np.array([i in model.angle_dims for i in dims])

        def dist(s: FloatArray) -> FloatArray:
            diff = np.asarray(s)[:, dims] - target
            diff = np.where(angles, wrap_angle(diff), diff)
            return np.linalg.norm(diff, axis=-1)

        def hit(s: FloatArray) -> BoolArray:
            return dist(s) < tol

        def reward_r(s: FloatArray) -> FloatArray:
            return hit(s).astype(np.float64)

        forbidden = None if limit is None else (lambda s: dist(s) > float(limit))
        return Goal("region", reward_r, hit, forbidden, f"within {tol} of {target.tolist()} on dims {dims}")
    raise ApiError("invalid_input", f"goal.kind: unknown {kind!r}; choose task, unseen or region")


def _guard(fn: Any) -> Any:
    def wrapped(s: FloatArray) -> Any:
        try:
            return fn(s)
        except PlrayInputError as exc:
            raise ApiError("invalid_input", f"goal: {exc}") from exc

    return wrapped


# ---------------------------------------------------------------------- rollout
def rollout(
    model: WorldModel,
    states: FloatArray,
    actions: np.ndarray,
    *,
    goal: Goal | None = None,
    gamma: float = 0.99,
    mode: str = "mean",
    seed: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    deadline: Deadline = NO_DEADLINE,
) -> dict[str, np.ndarray]:
    """Roll B action sequences out inside the model, one vectorised model call per step.

    The steps and the scoring are :func:`plray.evaluation.rollout.rollout`'s (rows are stepped on
    after they terminate, so ``states`` always holds H steps).

    Args:
        states: start states (B, d), validated.
        actions: (B, H) ints or (B, H, ad), validated with ``steps=True``.
        goal: scores every step if given.
        gamma: discount of the returns.
        mode: ``mean`` (predict) or ``sample`` (a draw per step).

    Returns:
        ``states`` (B, H, d) = s_1..s_H (predicted also after a termination); with a goal also
        ``rewards`` (B, H) = r(s_{t+1}) up to and including the first termination, 0 after it;
        ``terminated`` (B, H), true from the first termination on; ``returns`` (B,) = Σ_t γ^t rewards_t.
    """
    B, d = states.shape
    H = actions.shape[1]
    if H < 1:
        raise ApiError("validation", "actions: the horizon H is 0; give at least one action per sequence")
    if limits.max_horizon < H:
        raise _too_large("horizon H", H, limits.max_horizon)
    if limits.max_rollout_steps < B * H:
        raise _too_large("rollout rows B·H", B * H, limits.max_rollout_steps)
    if B * H * d > limits.max_output_elements:
        raise _too_large("trajectory numbers B·H·d", B * H * d, limits.max_output_elements)
    rng = np.random.default_rng(seed)

    def step(s: FloatArray, a_t: np.ndarray) -> FloatArray:
        deadline.check()
        nxt = _call(model.predict, s, a_t) if mode == "mean" else _call(model.sample, s, a_t, 1, rng)[0]
        return _finite_output(nxt, "states")

    ro = run_rollout(
        step, goal, states, H, gamma, actions=actions, after_done="continue", stop_when_done=False, record_states=True
    )
    assert ro.states is not None
    out: dict[str, np.ndarray] = {"states": ro.states}
    if goal is not None:
        out["rewards"] = ro.rewards  # the terminating step pays, later ones do not
        out["terminated"] = ro.terminated
        out["returns"] = ro.returns
    return out


# ---------------------------------------------------------------------- plan
def tabular_value_iteration(
    model: TabularWorldModel,
    goal: Goal,
    gamma: float,
    tol: float = 1e-10,
    max_iters: int = 10_000,
    deadline: Deadline = NO_DEADLINE,
) -> tuple[FloatArray, FloatArray]:
    """Exact value iteration on a finite kernel for a goal: (Q (S, A), V (S,))."""
    P = model.P  # (S, A, S)
    S = model.num_states
    r, done = goal.score(np.arange(S, dtype=np.float64)[:, None])
    V = np.zeros(S)
    Q = np.zeros((S, int(model.num_actions or 0)))  # finite models always have discrete actions
    for _ in range(max_iters):
        deadline.check()
        Q = P @ (r + gamma * (~done) * V)
        V_new = Q.max(axis=1)
        if np.max(np.abs(V_new - V)) < tol:
            V = V_new
            break
        V = V_new
    return Q, V


def _check_reachable(Q: FloatArray, where: str) -> None:
    """A 422 when every action value is 0: the goal pays nowhere the planner can see, so no action is better."""
    if not np.any(Q):
        raise ApiError(
            "validation",
            f"goal: {where} lies in the goal region or earns a reward; value iteration cannot tell actions apart "
            "(use a finer resolution, a larger tolerance, or cem)",
        )


def _plan_value_iteration(
    model: WorldModel,
    s: FloatArray,
    goal: Goal,
    gamma: float,
    task_fn: Any,
    resolution: int | None,
    limits: Limits,
    deadline: Deadline,
) -> tuple[int, float]:
    """(action, value) of value iteration: exact on a finite kernel, on a grid over the task's box otherwise."""
    if isinstance(model, TabularWorldModel):
        Q, V = tabular_value_iteration(model, goal, gamma, deadline=deadline)
        _check_reachable(Q, "no state of the finite model")
        i = int(s[0, 0])
        return int(np.argmax(Q[i])), float(V[i])
    if not model.discrete_actions:
        raise ApiError("invalid_input", "method: value_iteration needs discrete actions; use cem")
    from plray.evaluation.unseen import plan_in_model

    res = 20 if resolution is None else int(resolution)
    rows = res**model.state_dim * int(model.num_actions or 1)
    if rows > limits.max_grid_rows:
        raise _too_large(f"grid nodes·actions ({res}^{model.state_dim}·A)", rows, limits.max_grid_rows)
    task = task_fn()

    def next_fn(x: FloatArray, a: np.ndarray) -> FloatArray:
        deadline.check()  # once per model step of every CEM round: a plan stops at the deadline too
        return _call(model.predict, x, a)

    try:
        sol = plan_in_model(task, next_fn, goal, res, gamma=gamma, max_iters=2000, tol=1e-8)
    except PlrayInputError as exc:
        raise ApiError("invalid_input", str(exc)) from exc
    _check_reachable(sol.Q, f"no grid node's predicted successor (resolution {res})")
    return int(sol.act(s)[0]), float(sol.values(s)[0])


def _action_box(model: WorldModel, task_fn: Any, action_low: Any, action_high: Any) -> dict[str, Any]:
    """CEM's action space: ``num_actions``, or validated ``action_low`` / ``action_high`` (default: the task's)."""
    if model.discrete_actions:
        return {"num_actions": model.num_actions}
    low, high = action_low, action_high
    if low is None or high is None:
        task = task_fn()
        low, high = task.action_low, task.action_high
    low, high = _numeric(low, "action_low").astype(float), _numeric(high, "action_high").astype(float)
    if low.shape != (model.action_dim,) or high.shape != (model.action_dim,) or not (high > low).all():
        raise ApiError("invalid_input", f"action_low/action_high: expected shape ({model.action_dim},) with high > low")
    return {"action_low": low, "action_high": high}


def plan(
    model: WorldModel,
    state: FloatArray,
    goal: Goal,
    *,
    method: str,
    gamma: float,
    task_fn: Any,
    horizon: int = 15,
    population: int = 200,
    elites: int = 20,
    iterations: int = 5,
    seed: int = 0,
    resolution: int | None = None,
    action_low: Any = None,
    action_high: Any = None,
    limits: Limits = DEFAULT_LIMITS,
    deadline: Deadline = NO_DEADLINE,
) -> dict[str, Any]:
    """The action to take from ``state`` (d,) toward ``goal``: ``{"action", "value", "seconds"}``.

    ``value`` is value iteration's estimate of the state's optimal return, None for CEM.
    """
    start = time.perf_counter()
    s = state.reshape(1, -1)
    if method == "value_iteration":
        act, value = _plan_value_iteration(model, s, goal, gamma, task_fn, resolution, limits, deadline)
        return {"action": act, "value": value, "seconds": time.perf_counter() - start}
    from plray.evaluation.cem import CEMPlanner

    rows = population * horizon * iterations
    if rows > limits.max_plan_rows:
        raise _too_large("CEM model rows population·horizon·iterations", rows, limits.max_plan_rows)
    if elites > population:
        raise ApiError("invalid_input", f"elites: must not exceed population ({population}), got {elites}")
    kwargs = _action_box(model, task_fn, action_low, action_high)

    def next_fn(x: FloatArray, a: np.ndarray) -> FloatArray:
        deadline.check()  # once per model step of every CEM round: a plan stops at the deadline too
        return _call(model.predict, x, a)

    try:
        planner = CEMPlanner(
            next_fn,
            goal.reward_fn,
            goal.terminal_fn,
            forbidden_fn=goal.forbidden_fn,
            horizon=horizon,
            population=population,
            elites=elites,
            iterations=iterations,
            gamma=gamma,
            seed=seed,
            **kwargs,
        )
        a = planner.plan_batch(s)[0]
    except PlrayInputError as exc:
        raise ApiError("invalid_input", str(exc)) from exc
    action: Any = int(a) if model.discrete_actions else np.asarray(a, dtype=np.float64).tolist()
    return {"action": action, "value": None, "seconds": time.perf_counter() - start}
