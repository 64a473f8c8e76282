"""Request and response bodies of the HTTP API (pydantic), which also make its OpenAPI schema.

Shapes use B (batch: rows of a request), d (the model's ``state_dim``), ad (``action_dim`` of
continuous actions), H (horizon), n (samples), S (states of a finite model), k (a task's goal
dimension). Arrays are batch-first everywhere, including samples: (B, n, d).

JSON requests are validated strictly (a string where a number belongs is a 422); the values are
then checked against the model (shape, range, finiteness: a 400). The same fields travel in the
Arrow IPC format (see :mod:`plray.serve.codec`): arrays as columns, the rest as JSON metadata.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plray.serve.engine import DEFAULT_LIMITS

MAX_SAMPLES = 1000
MAX_HORIZON = DEFAULT_LIMITS.max_horizon
"""Largest rollout H by default (enforced by the engine with the deployment's own ``max_horizon``: a 413)."""

Vector = list[float]
Matrix = list[list[float]]


def _cap(n: int) -> dict[str, Any]:
    """``maxItems`` documenting a server cap (the default; the engine enforces the deployment's own, 413 beyond)."""
    return {"maxItems": n}


Rows = Annotated[Matrix, Field(min_length=1, json_schema_extra=_cap(DEFAULT_LIMITS.max_batch))]
Steps = Annotated[list[int], Field(min_length=1, json_schema_extra=_cap(DEFAULT_LIMITS.max_horizon))]
StepVectors = Annotated[Matrix, Field(min_length=1, json_schema_extra=_cap(DEFAULT_LIMITS.max_horizon))]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


# ---------------------------------------------------------------------- goals
class TaskGoal(_Strict):
    """A goal of the model's task (its manifest's ``task``): the task's own sparse reward and termination."""

    kind: Literal["task"] = Field(description="`task`: reward_at / terminal_at of the model's task.")
    goal: Vector = Field(
        description="The goal g, shape (k,) with k the task's goal_dim (e.g. a fingertip target (2,) for reacher).",
        min_length=1,
        max_length=4096,
    )


class UnseenGoalSpec(_Strict):
    """One of the paper's named unseen goals of the model's task (MountainCar, kinematic Reacher)."""

    kind: Literal["unseen"] = Field(description="`unseen`: a named goal from plray.evaluation.unseen.")
    name: str = Field(
        description="fast_car, gentle_car, shortest_path (MountainCar); far_fingertip, target_angle, "
        "target_velocity (reacher).",
        max_length=64,
    )


class RegionGoal(_Strict):
    """A ball in state space: reward 1 and termination on arrival within ``tolerance`` of ``target``.

    Needs no task, so it works with every model (for a finite model: target = [state index],
    tolerance 0.5 makes one state the goal). Differences along the model's angle dims are wrapped.
    """

    kind: Literal["region"] = Field(description="`region`: 1[‖s'[dims] − target‖ < tolerance].")
    target: Vector = Field(description="Centre, shape (m,) with m = len(dims) (or d).", min_length=1, max_length=4096)
    dims: list[int] | None = Field(
        None, description="State dims the target refers to, shape (m,); default all d dims.", max_length=4096
    )
    tolerance: float = Field(description="Radius, finite and > 0 (strict inequality).", gt=0.0, allow_inf_nan=False)
    forbidden_above: float | None = Field(
        None,
        description="Optional, finite and > 0: arriving at a state with ‖s'[dims] − target‖ > this ends the "
        "episode with reward 0.",
        gt=0.0,
        allow_inf_nan=False,
    )


Goal = Annotated[TaskGoal | UnseenGoalSpec | RegionGoal, Field(discriminator="kind")]


# ---------------------------------------------------------------------- predict
class PredictParams(_Strict):
    """Options of ``predict`` (in Arrow requests: the ``plray.params`` metadata)."""

    version: str | None = Field(None, description="Pin a model version (default: the newest served).", max_length=128)
    n_samples: int = Field(
        0, ge=0, le=MAX_SAMPLES, description="n: draws of the next state per row (0: none); (B, n, d) in the answer."
    )
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Seeds the samples (default: fresh entropy).")
    include_std: bool = Field(
        True, description="Return `std` (B, d) for stochastic (gaussian) models and ensembles (member disagreement)."
    )
    include_distribution: bool = Field(
        True, description="Return `distribution` (B, S), P(· | s, a), for finite (tabular) models."
    )


class PredictRequest(PredictParams):
    """A batch of (state, action) pairs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"states": [[0.1, -0.2, 0.0, 0.0], [1.0, 0.5, 0.1, -0.1]], "actions": [3, 8]},
                {"states": [[0.1, -0.2, 0.0, 0.0]], "actions": [[0.5, -0.5]], "n_samples": 0},
            ]
        }
    )

    states: Rows = Field(
        description="States, shape (B, d); finite-model states are indices in [0, S) as numbers "
        "(FourRooms: see the model summary's `cells` for each index's (row, col)).",
    )
    actions: Annotated[list[int], Field(min_length=1, json_schema_extra=_cap(DEFAULT_LIMITS.max_batch))] | Rows = Field(
        description="Actions: (B,) integers in [0, num_actions) for discrete-action models, "
        "(B, ad) numbers for continuous ones.",
    )


class PredictResponse(BaseModel):
    """Next-state predictions for every row."""

    model: str = Field(description="Model id.")
    version: str = Field(description="The version that answered.")
    model_type: Literal["tabular", "deterministic", "gaussian", "ensemble"] = Field(description="Kind of model.")
    batch_size: int = Field(description="B.")
    next_states: Matrix = Field(
        description="Shape (B, d): the expected next state (gaussian: the mean; tabular: the most likely state)."
    )
    std: Matrix | None = Field(
        None,
        description="Shape (B, d): per-dimension standard deviation (gaussian: predicted; ensemble: across members).",
    )
    samples: list[Matrix] | None = Field(None, description="Shape (B, n, d): draws of the next state (n_samples > 0).")
    distribution: Matrix | None = Field(None, description="Shape (B, S): P(s' | s, a) (tabular only).")


# ---------------------------------------------------------------------- rollout
class RolloutParams(_Strict):
    """Options of ``rollout`` (in Arrow requests: the ``plray.params`` metadata)."""

    version: str | None = Field(None, description="Pin a model version (default: the newest served).", max_length=128)
    goal: Goal | None = Field(None, description="Goal scoring the trajectories (rewards, terminations, returns).")
    gamma: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        allow_inf_nan=False,
        description="Discount of `returns` (default: the manifest's gamma, else 0.99).",
    )
    mode: Literal["mean", "sample"] = Field(
        "mean", description="`mean`: follow predict (the mean / mode); `sample`: draw each step from the model."
    )
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Seeds `sample` mode.")


class RolloutRequest(RolloutParams):
    """B start states, each with an H-step action sequence."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "states": [[0.1, -0.2, 0.0, 0.0]],
                    "actions": [[3, 3, 8, 0]],
                    "goal": {"kind": "region", "target": [0.5, 0.5], "dims": [0, 1], "tolerance": 0.3},
                    "gamma": 0.9,
                }
            ]
        }
    )

    states: Annotated[Matrix, Field(min_length=1, json_schema_extra=_cap(DEFAULT_LIMITS.max_rollout_steps))] = Field(
        description="Start states s_0, shape (B, d); B·H is capped (max_rollout_steps)."
    )
    actions: (
        Annotated[list[Steps], Field(min_length=1, json_schema_extra=_cap(DEFAULT_LIMITS.max_rollout_steps))]
        | Annotated[list[StepVectors], Field(min_length=1, json_schema_extra=_cap(DEFAULT_LIMITS.max_rollout_steps))]
    ) = Field(
        description=f"Action sequences: (B, H) integers (discrete) or (B, H, ad) numbers (continuous); "
        f"1 <= H <= max_horizon (default {DEFAULT_LIMITS.max_horizon}; H = 0 is a 422, beyond the cap a 413).",
    )


class RolloutResponse(BaseModel):
    """Trajectories inside the model, scored under the goal if one was given."""

    model: str = Field(description="Model id.")
    version: str = Field(description="The version that answered.")
    batch_size: int = Field(description="B.")
    horizon: int = Field(description="H.")
    states: list[Matrix] = Field(
        description="Shape (B, H, d): s_1 … s_H. Every step is predicted, also after a termination (the "
        "model keeps stepping; those steps earn nothing, see `rewards`)."
    )
    rewards: Matrix | None = Field(
        None,
        description="Shape (B, H): r(s_{t+1}) under the goal while the trajectory is alive: the step that "
        "terminates still pays, every later step is 0 (a forbidden arrival pays 0 and terminates).",
    )
    terminated: list[list[bool]] | None = Field(
        None,
        description="Shape (B, H): whether the trajectory has terminated at or before step t (done(s_{t'+1}) "
        "for some t' <= t; forbidden included): false up to the first termination, true from it on.",
    )
    returns: Vector | None = Field(
        None, description="Shape (B,): Σ_t γ^t rewards_t, i.e. up to and including the first termination."
    )


# ---------------------------------------------------------------------- plan
class PlanRequest(_Strict):
    """A state and a goal; the answer is the action to take now."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "state": [0.1, -0.2, 0.0, 0.0],
                    "goal": {"kind": "region", "target": [0.5, 0.5], "dims": [0, 1], "tolerance": 0.3},
                    "method": "cem",
                    "horizon": 5,
                    "population": 50,
                    "elites": 5,
                    "iterations": 2,
                },
                {
                    "state": [0.0],
                    "goal": {"kind": "region", "target": [67], "tolerance": 0.5},
                    "method": "value_iteration",
                },
            ]
        }
    )

    version: str | None = Field(None, description="Pin a model version (default: the newest served).", max_length=128)
    state: Vector = Field(description="The current state, shape (d,).", min_length=1, max_length=4096)
    goal: Goal = Field(description="What to reach.")
    method: Literal["cem", "value_iteration"] = Field(
        "cem",
        description="`cem`: cross-entropy method over action sequences inside the model; `value_iteration`: "
        "exact on a finite model's kernel, on a regular grid over the task's state box for continuous "
        "states with discrete actions.",
    )
    horizon: int = Field(15, ge=1, le=200, description="CEM: H, steps per sequence.")
    population: int = Field(200, ge=1, le=10_000, description="CEM: sequences per round.")
    elites: int = Field(20, ge=1, le=10_000, description="CEM: sequences refitted to, <= population.")
    iterations: int = Field(5, ge=1, le=50, description="CEM: rounds.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="CEM: seeds the sampler.")
    gamma: float | None = Field(
        None, gt=0.0, lt=1.0, allow_inf_nan=False, description="Discount (default: manifest gamma, else 0.99)."
    )
    resolution: int | None = Field(
        None, ge=2, le=400, description="Grid value iteration: nodes per dim (default 20; nodes^d capped)."
    )
    action_low: Vector | None = Field(
        None, description="CEM, continuous actions: lower bounds (ad,) (default: the task's).", max_length=64
    )
    action_high: Vector | None = Field(
        None, description="CEM, continuous actions: upper bounds (ad,) (default: the task's).", max_length=64
    )


class PlanResponse(BaseModel):
    """The planned action."""

    model: str = Field(description="Model id.")
    version: str = Field(description="The version that answered.")
    method: str = Field(description="The planner used.")
    action: int | Vector = Field(description="An integer (discrete actions) or a vector (ad,) (continuous).")
    value: float | None = Field(
        None,
        description="value_iteration: the planner's estimate of the optimal return from the state; "
        "always null for cem (CEM scores sampled sequences, it has no value estimate of the state).",
    )
    seconds: float = Field(description="Planning time on the replica.")


# ---------------------------------------------------------------------- models, errors
class ModelSummary(BaseModel):
    """One served model."""

    id: str = Field(description="Model id (a safe name).")
    version: str = Field(description="The version served.")
    model_type: str = Field(description="tabular, deterministic, gaussian or ensemble.")
    task: str | None = Field(None, description="The manifest's task name.")
    method: str | None = Field(None, description="How the model was made (manifest's method).")
    state_dim: int = Field(description="d.")
    num_actions: int | None = Field(None, description="A for discrete actions, null for continuous.")
    action_dim: int = Field(description="ad for continuous actions (1 for discrete).")
    num_states: int | None = Field(None, description="S for finite models.")
    angle_dims: list[int] = Field(description="State dims that are angles in [−π, π).")
    loaded_at: float = Field(description="UNIX time the version was loaded.")
    state_low: Vector | None = Field(None, description="The task's state box, lower corner (d,) (null: no task).")
    state_high: Vector | None = Field(None, description="The task's state box, upper corner (d,) (null: no task).")
    action_low: Vector | None = Field(
        None, description="Continuous actions: the task's lower bounds (ad,); null for discrete actions or no task."
    )
    action_high: Vector | None = Field(
        None, description="Continuous actions: the task's upper bounds (ad,); null for discrete actions or no task."
    )
    goal_dim: int | None = Field(
        None, description="k, the length of `goal` in a goal of kind `task` (null: the model has no task)."
    )
    goal_meaning: str | None = Field(None, description="What a task goal's k numbers mean for this task.")
    cells: list[list[int]] | None = Field(
        None,
        description="Finite grid models (FourRooms): cells[i] = [row, col] of state index i (row-major over the "
        "free cells of the 11 × 11 layout); the state sent and returned is the index i as a number.",
    )


class ModelList(BaseModel):
    """Every model in the models directory."""

    models: list[ModelSummary] = Field(description="Loaded models.")
    unavailable: dict[str, str] = Field(description="Ids whose artifacts did not load, with the reason.")


class ModelDetail(BaseModel):
    """A model's manifest, metrics and identifiability diagnostics."""

    summary: ModelSummary
    versions: list[str] = Field(description="Every version in the directory, oldest first.")
    manifest: dict[str, Any] = Field(description="The artifact's manifest.json.")
    metrics: dict[str, Any] | None = Field(None, description="The manifest's `metrics` (e.g. WM_NMSE).")
    identifiability: dict[str, Any] | None = Field(
        None, description="Identifiability diagnostics: the manifest's, plus kernel facts for finite models."
    )


class ErrorBody(BaseModel):
    """Every refusal."""

    error: str = Field(description="Machine-readable kind (invalid_input, not_found, payload_too_large, ...).")
    detail: str = Field(description="What was wrong.")


class Health(BaseModel):
    """Liveness and what the replica serves."""

    status: Literal["ok"] = "ok"
    models: int = Field(description="Models loaded on this replica (the server's paths are never shown).")
