"""The world-model API for callers inside the Ray cluster: a client over a Serve ``DeploymentHandle``.

A planner running as a Ray task, actor or Serve deployment skips the HTTP proxy, JSON / Arrow
encoding and FastAPI: arrays travel as Ray objects straight to a replica's Python methods.

    from plray.serve.handle import WorldModelHandle

    wm = WorldModelHandle("plray")                       # the Serve application's name
    out = wm.predict("reacher", states, actions)         # {"next_states": (B, d), ...} as in HTTP
    traj = wm.rollout("reacher", s0, seqs, goal={"kind": "unseen", "name": "far_fingertip"})
    out = await wm.apredict("reacher", states, actions)  # inside a deployment's async method

Answers and refusals are those of :class:`plray.serve.client.WorldModelClient`: the same dict of
numpy arrays, and :class:`~plray.serve.client.ApiClientError` with the HTTP status and error kind.
Calls are retried (with backoff) when the replica that held them dies.

Server side, :class:`HandleMethods` holds the replica methods the handle calls (``handle_predict``,
``handle_rollout``, ``handle_models``); :class:`plray.serve.app.WorldModelServer` inherits them
(``class WorldModelServer(HandleMethods)``), so every application :func:`plray.serve.app.build_app`
builds answers handle calls.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import numpy as np

from plray.serve import engine
from plray.serve.client import ApiClientError
from plray.serve.errors import ApiError
from plray.serve.summaries import summary

DEFAULT_APP = "plray"
INLINE_ROWS = 64
"""Handle predicts with up to this many rows (no samples) run on the replica's event loop, unbatched."""


def _refused(exc: ApiError) -> dict[str, Any]:
    """A refusal as a handle call's answer: ``{"error": kind, "detail": message, "status": HTTP status}``.

    Returned, not raised: a raised exception would be logged with its traceback by the replica and
    wrapped by Ray; answers never have an ``error`` key.
    """
    return {**exc.body(), "status": exc.status}


def _validation(model: Any, options: dict[str, Any]) -> Any:
    """Validated request options (the pydantic params model of the HTTP route), or a 422."""
    from pydantic import ValidationError

    try:
        return model.model_validate(options)
    except ValidationError as exc:
        msgs = [f"{'.'.join(str(x) for x in e.get('loc', ())) or 'body'}: {e.get('msg')}" for e in exc.errors()[:5]]
        raise ApiError("validation", "; ".join(msgs)) from None


# ---------------------------------------------------------------------- server side
class HandleMethods:
    """Replica methods for :class:`WorldModelHandle`, mixed into the world-model deployment.

    They use the deployment's registry, limits, batcher and thread pools (the attributes below),
    so a handle call does what the HTTP route does minus parsing and encoding.
    """

    settings: Any
    limits: engine.Limits
    registry: Any
    metrics: Any
    heavy_pool: Any
    _entry_async: Any
    _run: Any
    _predict_batched: Any

    def _count(self, endpoint: str, status: int, start: float) -> None:
        """Record the call in the replica's request metrics."""
        self.metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - start)

    async def handle_predict(
        self, model_id: str, states: Any, actions: Any, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``POST /v1/models/{id}/predict`` for a handle: arrays in, the answer's dict of arrays out.

        Args:
            options: the predict body's other fields (n_samples, seed, version, include_std, include_distribution).

        Returns:
            the HTTP answer's fields, or a refusal (see :func:`_refused`) with the HTTP route's status and kind.
        """
        from plray.serve import schemas

        start = time.perf_counter()
        try:
            params = _validation(schemas.PredictParams, dict(options or {}))
            entry = await self._entry_async(model_id, params.version)
            s, a = engine.check_batch(entry.model, states, actions)
            B = len(s)
            if self.limits.max_batch < B:
                raise ApiError("payload_too_large", f"batch size B: {B:,} exceeds this server's cap")
            if B <= INLINE_ROWS and params.n_samples == 0:  # the model call is shorter than a thread hop
                kw = params.model_dump(include={"include_std", "include_distribution"})
                out = engine.predict(entry.model, s, a, limits=self.limits, **kw)
            elif self.settings.batch_rows >= B and params.n_samples == 0:
                out = await self._predict_batched((entry, s, a))
                if isinstance(out, ApiError):
                    raise out
                out = dict(out)
                if not params.include_std:
                    out.pop("std", None)
                if not params.include_distribution:
                    out.pop("distribution", None)
            else:
                kw = params.model_dump(include={"n_samples", "seed", "include_std", "include_distribution"})
                out = await self._run(lambda: engine.predict(entry.model, s, a, limits=self.limits, **kw))
        except ApiError as exc:
            self._count("handle_predict", exc.status, start)
            return _refused(exc)
        self._count("handle_predict", 200, start)
        info = {"model": entry.model_id, "version": entry.version, "model_type": entry.model.model_type}
        return {**info, "batch_size": B, **out}

    async def handle_rollout(
        self, model_id: str, states: Any, actions: Any, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``POST /v1/models/{id}/rollout`` for a handle (options: goal, gamma, mode, seed, version).

        Runs on the replica's heavy pool under its request deadline; cancelling the call stops the work.
        """
        from plray.serve import schemas

        start = time.perf_counter()
        deadline = engine.Deadline(float(self.settings.request_deadline_s))
        try:
            params = _validation(schemas.RolloutParams, dict(options or {}))
            entry = await self._entry_async(model_id, params.version)

            def compute(deadline: engine.Deadline) -> dict[str, Any]:
                s, a = engine.check_batch(entry.model, states, actions, steps=True)
                goal = None
                if params.goal is not None:
                    goal = engine.build_goal(params.goal.model_dump(), entry.model, entry.task)
                gamma = params.gamma or float(entry.manifest.get("gamma") or 0.99)
                out = engine.rollout(
                    entry.model, s, a, goal=goal, gamma=gamma, mode=params.mode, seed=params.seed,
                    limits=self.limits, deadline=deadline,
                )  # fmt: skip
                info = {"model": entry.model_id, "version": entry.version, "batch_size": len(s), "horizon": a.shape[1]}
                return {**info, **out}

            loop = asyncio.get_running_loop()
            try:
                answer = await loop.run_in_executor(self.heavy_pool, compute, deadline)
            except asyncio.CancelledError:
                deadline.cancelled.set()
                raise
        except ApiError as exc:
            self._count("handle_rollout", exc.status, start)
            return _refused(exc)
        self._count("handle_rollout", 200, start)
        return answer

    async def handle_models(self) -> dict[str, Any]:
        """``GET /v1/models``: ``{"models": [summaries], "unavailable": {id: reason}}``."""

        def collect() -> dict[str, Any]:
            models, unavailable = [], {}
            for model_id in self.registry.ids():
                try:
                    models.append(summary(self.registry.get(model_id)))
                except ApiError as exc:
                    unavailable[model_id] = exc.detail
            return {"models": models, "unavailable": unavailable}

        return await self._run(collect)


# ---------------------------------------------------------------------- client side
def _retryable() -> tuple[type[BaseException], ...]:
    """Exceptions of a lost or restarting replica (the call did not reach an answer)."""
    import ray.exceptions as rex
    from ray.serve import exceptions as sex

    return (rex.RayActorError, rex.ActorUnavailableError, sex.DeploymentUnavailableError, sex.BackPressureError)


def _answer(out: Any) -> Any:
    """A handle call's answer, or ApiClientError when it is a refusal."""
    if isinstance(out, dict) and "error" in out:
        raise ApiClientError(int(out.get("status", 500)), str(out["error"]), str(out.get("detail", "")))
    return out


class WorldModelHandle:
    """Client of the world-model deployment over a ``DeploymentHandle`` (same calls as WorldModelClient).

    Args:
        app_name: the Serve application (``serve.run(..., name=...)``); ignored when ``handle`` is given.
        handle: a ``DeploymentHandle`` to the deployment (default: ``serve.get_app_handle(app_name)``).
        timeout_s: seconds per call.
        retries: further attempts after the replica holding a call died.
        backoff_s: first wait between attempts, doubled each time (at most 2 s).
    """

    def __init__(
        self,
        app_name: str = DEFAULT_APP,
        *,
        handle: Any = None,
        timeout_s: float = 120.0,
        retries: int = 6,
        backoff_s: float = 0.05,
    ) -> None:
        if handle is None:
            from ray import serve

            handle = serve.get_app_handle(app_name)
        self.handle = handle
        self.timeout_s = float(timeout_s)
        self.retries = max(0, int(retries))
        self.backoff_s = float(backoff_s)

    def _wait_s(self, attempt: int) -> float:
        return min(2.0, self.backoff_s * 2**attempt)

    def _call(self, method: str, *args: Any) -> Any:
        retryable = _retryable()
        for attempt in range(self.retries + 1):
            try:
                out = getattr(self.handle, method).remote(*args).result(timeout_s=self.timeout_s)
            except retryable:
                if attempt == self.retries:
                    raise
            else:
                return _answer(out)
            time.sleep(self._wait_s(attempt))
        raise AssertionError("unreachable")

    async def _acall(self, method: str, *args: Any) -> Any:
        retryable = _retryable()
        for attempt in range(self.retries + 1):
            try:
                out = await asyncio.wait_for(getattr(self.handle, method).remote(*args), self.timeout_s)
            except retryable:
                if attempt == self.retries:
                    raise
            else:
                return _answer(out)
            await asyncio.sleep(self._wait_s(attempt))
        raise AssertionError("unreachable")

    @staticmethod
    def _predict_options(
        n_samples: int, seed: int | None, version: str | None, include_std: bool, include_distribution: bool
    ) -> dict[str, Any]:
        opts: dict[str, Any] = {"include_std": include_std, "include_distribution": include_distribution}
        if n_samples:
            opts["n_samples"] = n_samples
        opts.update({k: v for k, v in (("seed", seed), ("version", version)) if v is not None})
        return opts

    @staticmethod
    def _rollout_options(**kw: Any) -> dict[str, Any]:
        return {k: v for k, v in kw.items() if v is not None}

    def predict(
        self,
        model_id: str,
        states: Any,
        actions: Any,
        *,
        n_samples: int = 0,
        seed: int | None = None,
        version: str | None = None,
        include_std: bool = True,
        include_distribution: bool = True,
    ) -> dict[str, Any]:
        """Next states for states (B, d) and actions (B,) / (B, ad), as :meth:`WorldModelClient.predict`."""
        opts = self._predict_options(n_samples, seed, version, include_std, include_distribution)
        return self._call("handle_predict", model_id, np.asarray(states), np.asarray(actions), opts)

    async def apredict(
        self,
        model_id: str,
        states: Any,
        actions: Any,
        *,
        n_samples: int = 0,
        seed: int | None = None,
        version: str | None = None,
        include_std: bool = True,
        include_distribution: bool = True,
    ) -> dict[str, Any]:
        """:meth:`predict` for async callers (inside a deployment: never block its event loop)."""
        opts = self._predict_options(n_samples, seed, version, include_std, include_distribution)
        return await self._acall("handle_predict", model_id, np.asarray(states), np.asarray(actions), opts)

    def rollout(
        self,
        model_id: str,
        states: Any,
        actions: Any,
        *,
        goal: dict[str, Any] | None = None,
        gamma: float | None = None,
        mode: str | None = None,
        seed: int | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        """Trajectories of action sequences (B, H) / (B, H, ad) from states (B, d), as the HTTP client."""
        opts = self._rollout_options(goal=goal, gamma=gamma, mode=mode, seed=seed, version=version)
        return self._call("handle_rollout", model_id, np.asarray(states), np.asarray(actions), opts)

    async def arollout(
        self,
        model_id: str,
        states: Any,
        actions: Any,
        *,
        goal: dict[str, Any] | None = None,
        gamma: float | None = None,
        mode: str | None = None,
        seed: int | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`rollout` for async callers."""
        opts = self._rollout_options(goal=goal, gamma=gamma, mode=mode, seed=seed, version=version)
        return await self._acall("handle_rollout", model_id, np.asarray(states), np.asarray(actions), opts)

    def models(self) -> list[dict[str, Any]]:
        """The served models' summaries (``GET /v1/models``'s ``models``)."""
        return self._call("handle_models")["models"]

    async def amodels(self) -> list[dict[str, Any]]:
        """:meth:`models` for async callers."""
        return (await self._acall("handle_models"))["models"]


# ---------------------------------------------------------------------- replicas
def replica_pids(app_name: str, deployment: str = "WorldModelServer") -> dict[str, int]:
    """PIDs of the live replicas of ``deployment`` in Serve application ``app_name``, by actor name.

    Reads Ray's actor table (GCS), so it works without the dashboard. For fault tests and benchmarks.
    """
    from ray._private import state

    suffix = f":{app_name}:{deployment}"
    out = {}
    for info in state.actors().values():
        if info.get("State") == "ALIVE" and str(info.get("ActorClassName", "")).endswith(suffix):
            out[str(info.get("Name") or info["ActorID"])] = int(info["Pid"])
    if not out:  # the class-name format differs: fall back to the actor name Serve gives replicas
        for info in state.actors().values():
            name = str(info.get("Name", ""))
            if (
                info.get("State") == "ALIVE"
                and name.startswith("SERVE_REPLICA::")
                and f"{app_name}#{deployment}" in name
            ):
                out[name] = int(info["Pid"])
    return {k: v for k, v in out.items() if v and v != os.getpid()}
