"""The world-model API over gRPC: a Serve application behind Serve's gRPC proxy, and its client.

The service (``plray/serve/grpc/world_model.proto``) has ``Predict`` and ``Rollout``, the HTTP
bodies with arrays as packed doubles plus shapes. Serve must be started with the servicer::

    from ray import serve
    from plray.serve.grpc_app import build_grpc_app, grpc_options

    # Serve routes gRPC only to applications deployed with a route_prefix
    serve.start(grpc_options=grpc_options(9000))          # only at the first serve.start
    serve.run(build_grpc_app({"models": "/models"}), name="plray-grpc", route_prefix="/grpc")

    client = WorldModelGrpcClient("127.0.0.1:9000", app_name="plray-grpc")
    out = client.predict("reacher", states, actions)      # the HTTP client's dict of arrays

Serve's gRPC options cannot change once Serve runs (a later ``serve.start`` ignores them). The
deployment loads models through :class:`~plray.serve.registry.ModelRegistry` (with hot reload) and
computes with :mod:`plray.serve.engine` under the caps of :class:`plray.serve.app.ServeSettings`.
Refusals carry a gRPC status (400 / 422: INVALID_ARGUMENT, 404: NOT_FOUND, 413: RESOURCE_EXHAUSTED,
503: UNAVAILABLE, deadline: DEADLINE_EXCEEDED, ...) and details ``{"error": kind, "detail": message}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np
from ray import serve

from plray.serve import engine
from plray.serve.client import ApiClientError
from plray.serve.errors import ApiError
from plray.serve.grpc import SERVICER_FUNCTION
from plray.serve.grpc import world_model_pb2 as pb
from plray.serve.grpc import world_model_pb2_grpc as pb_grpc
from plray.serve.registry import ModelRegistry

DEPLOYMENT_NAME = "WorldModelGrpc"
DEFAULT_APP = "plray-grpc"
INLINE_ROWS = 64
"""Predict requests with up to this many rows compute on the event loop (no thread hop)."""

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    499: grpc.StatusCode.CANCELLED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
}
_STATUS = {"deadline_exceeded": grpc.StatusCode.DEADLINE_EXCEEDED}


def grpc_options(port: int = 9000, request_timeout_s: float | None = None) -> dict[str, Any]:
    """``serve.start(grpc_options=...)`` for this service."""
    opts: dict[str, Any] = {"port": int(port), "grpc_servicer_functions": [SERVICER_FUNCTION]}
    if request_timeout_s is not None:
        opts["request_timeout_s"] = float(request_timeout_s)
    return opts


# ---------------------------------------------------------------------- arrays
def to_array(x: Any) -> pb.Array:
    """A numpy array as an ``Array`` message (float64, row-major)."""
    arr = np.asarray(x, dtype=np.float64)
    return pb.Array(data=arr.ravel().tolist(), shape=list(arr.shape))


def from_array(msg: pb.Array, name: str) -> np.ndarray:
    """An ``Array`` message as a float64 numpy array; 400 when its shape does not hold its data."""
    shape = tuple(int(n) for n in msg.shape)
    n = len(msg.data)
    if any(k < 0 for k in shape) or int(np.prod(shape, dtype=np.int64)) != n:
        raise ApiError("invalid_input", f"{name}: shape {list(shape)} does not hold {n} values")
    return np.fromiter(msg.data, dtype=np.float64, count=n).reshape(shape)


def _bool_array(x: Any) -> pb.BoolArray:
    arr = np.asarray(x, dtype=bool)
    return pb.BoolArray(data=arr.ravel().tolist(), shape=list(arr.shape))


def _present(msg: Any) -> bool:
    return len(msg.shape) > 0


# ---------------------------------------------------------------------- deployment
@serve.deployment(name=DEPLOYMENT_NAME, max_ongoing_requests=64, logging_config={"enable_access_log": False})
class WorldModelGrpcServer:
    """One replica of the gRPC service: a model registry and the engine (methods named as the RPCs)."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        from plray.serve.app import ServeSettings

        self.settings = ServeSettings.from_args(settings)
        if self.settings.torch_threads:
            import torch

            torch.set_num_threads(int(self.settings.torch_threads))
        self.limits = self.settings.limits()
        self.registry = ModelRegistry(
            self.settings.models,
            cache_dir=self.settings.cache_dir,
            max_models=self.settings.max_models,
            max_tensor_bytes=self.settings.max_tensor_bytes,
        )
        self.registry.load_all()
        self.pool = ThreadPoolExecutor(max(1, self.settings.compute_threads), thread_name_prefix="plray-grpc")
        self.heavy_pool = ThreadPoolExecutor(max(1, self.settings.heavy_threads), thread_name_prefix="plray-grpc-h")
        self._stop = threading.Event()
        if self.settings.reload_interval_s > 0:
            threading.Thread(target=self._reload_loop, name="plray-grpc-reload", daemon=True).start()

    def _reload_loop(self) -> None:
        while not self._stop.wait(self.settings.reload_interval_s):
            with contextlib.suppress(Exception):  # keep reloading whatever one pass hit
                self.registry.refresh()

    def _entry(self, model_id: str, version: str) -> Any:
        loaded = None if version else self.registry.loaded_entry(model_id)
        return loaded if loaded is not None else self.registry.get(model_id, version or None)

    @staticmethod
    def _refuse(exc: ApiError, context: Any) -> None:
        context.set_code(_STATUS.get(exc.kind, _CODES.get(exc.status, grpc.StatusCode.UNKNOWN)))
        context.set_details(json.dumps(exc.body()))

    def _predict(self, request: pb.PredictRequest) -> pb.PredictReply:
        from plray.serve import schemas

        entry = self._entry(request.model_id, request.version)
        states, actions = engine.check_batch(
            entry.model, from_array(request.states, "states"), from_array(request.actions, "actions")
        )
        if request.n_samples < 0 or request.n_samples > schemas.MAX_SAMPLES:
            raise ApiError("validation", f"n_samples: must lie in [0, {schemas.MAX_SAMPLES}]")
        out = engine.predict(
            entry.model,
            states,
            actions,
            n_samples=int(request.n_samples),
            seed=request.seed if request.HasField("seed") else None,
            include_std=request.include_std if request.HasField("include_std") else True,
            include_distribution=request.include_distribution if request.HasField("include_distribution") else True,
            limits=self.limits,
        )
        arrays = {k: to_array(v) for k, v in out.items()}
        return pb.PredictReply(
            model=entry.model_id,
            version=entry.version,
            model_type=entry.model.model_type,
            batch_size=len(states),
            **arrays,
        )

    async def Predict(self, request: pb.PredictRequest, grpc_context: Any = None) -> pb.PredictReply:
        """The ``Predict`` RPC: ``POST /v1/models/{id}/predict``."""
        try:
            rows = int(request.states.shape[0]) if request.states.shape else 0
            if rows <= INLINE_ROWS:
                return self._predict(request)
            return await asyncio.get_running_loop().run_in_executor(self.pool, self._predict, request)
        except ApiError as exc:
            if grpc_context is None:
                raise
            self._refuse(exc, grpc_context)
            return pb.PredictReply()

    def _rollout(self, request: pb.RolloutRequest, deadline: engine.Deadline) -> pb.RolloutReply:
        from pydantic import ValidationError

        from plray.serve import schemas

        entry = self._entry(request.model_id, request.version)
        options: dict[str, Any] = {"mode": request.mode or "mean"}
        try:
            if request.goal_json:
                options["goal"] = json.loads(request.goal_json)
            if request.HasField("gamma"):
                options["gamma"] = request.gamma
            if request.HasField("seed"):
                options["seed"] = request.seed
            params = schemas.RolloutParams.model_validate(options)
        except (ValueError, ValidationError) as exc:
            raise ApiError("validation", f"rollout options: {str(exc).splitlines()[0]}") from None
        states, actions = engine.check_batch(
            entry.model, from_array(request.states, "states"), from_array(request.actions, "actions"), steps=True
        )
        goal = None if params.goal is None else engine.build_goal(params.goal.model_dump(), entry.model, entry.task)
        gamma = params.gamma or float(entry.manifest.get("gamma") or 0.99)
        out = engine.rollout(
            entry.model, states, actions, goal=goal, gamma=gamma, mode=params.mode, seed=params.seed,
            limits=self.limits, deadline=deadline,
        )  # fmt: skip
        reply = pb.RolloutReply(
            model=entry.model_id,
            version=entry.version,
            batch_size=len(states),
            horizon=int(actions.shape[1]),
            states=to_array(out["states"]),
        )
        if goal is not None:
            reply.rewards.CopyFrom(to_array(out["rewards"]))
            reply.terminated.CopyFrom(_bool_array(out["terminated"]))
            reply.returns.CopyFrom(to_array(out["returns"]))
        return reply

    async def Rollout(self, request: pb.RolloutRequest, grpc_context: Any = None) -> pb.RolloutReply:
        """The ``Rollout`` RPC: ``POST /v1/models/{id}/rollout`` (on the heavy pool, under the deadline)."""
        deadline = engine.Deadline(float(self.settings.request_deadline_s))
        try:
            return await asyncio.get_running_loop().run_in_executor(self.heavy_pool, self._rollout, request, deadline)
        except asyncio.CancelledError:
            deadline.cancelled.set()
            raise
        except ApiError as exc:
            if grpc_context is None:
                raise
            self._refuse(exc, grpc_context)
            return pb.RolloutReply()


def build_grpc_app(args: dict[str, Any] | None = None) -> serve.Application:
    """The gRPC Serve application (``import_path: plray.serve.grpc_app:build_grpc_app``).

    Args:
        args: :class:`plray.serve.app.ServeSettings` fields, plus optionally ``deployment``:
            ``num_replicas``, ``max_ongoing_requests``, ``ray_actor_options``.
    """
    from dataclasses import asdict

    from plray.serve.app import ServeSettings

    args = dict(args or {})
    deployment = dict(args.pop("deployment", None) or {})
    settings = asdict(ServeSettings.from_args(args))
    known = {"num_replicas", "max_ongoing_requests", "ray_actor_options", "autoscaling_config"}
    options = {k: v for k, v in deployment.items() if k in known and v is not None}
    options.setdefault("ray_actor_options", {"num_cpus": 1})
    return WorldModelGrpcServer.options(**options).bind(settings)  # type: ignore[attr-defined]  # @serve.deployment


# ---------------------------------------------------------------------- client
def _refusal(err: grpc.RpcError) -> ApiClientError | None:
    """The server's refusal behind an RpcError (details ``{error, detail}``), else None."""
    try:
        body = json.loads(err.details() or "")
    except ValueError:
        return None
    if not isinstance(body, dict) or "error" not in body:
        return None
    from plray.serve.errors import ERROR_KINDS

    kind = str(body["error"])
    return ApiClientError(ERROR_KINDS.get(kind, 500), kind, str(body.get("detail", "")))


class WorldModelGrpcClient:
    """Client of the gRPC service through Serve's gRPC proxy (same answers as the HTTP client).

    Args:
        target: the proxy's ``host:port``.
        app_name: the Serve application (sent as the ``application`` metadata).
        timeout: seconds per call.
        retries: further attempts when the call failed without the server's answer (a lost replica).
    """

    def __init__(
        self, target: str = "127.0.0.1:9000", *, app_name: str = DEFAULT_APP, timeout: float = 120.0, retries: int = 6
    ) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.WorldModelStub(self.channel)
        self.metadata = (("application", app_name),)
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()

    def _call(self, rpc: Any, request: Any) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return rpc(request, metadata=self.metadata, timeout=self.timeout)
            except grpc.RpcError as err:
                refusal = _refusal(err)
                if refusal is not None:
                    raise refusal from None
                if attempt == self.retries or err.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL):
                    raise
            time.sleep(min(2.0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

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
        """Next states for states (B, d) and actions (B,) / (B, ad): ``next_states`` and per model kind more."""
        req = pb.PredictRequest(
            model_id=model_id,
            version=version or "",
            states=to_array(states),
            actions=to_array(actions),
            n_samples=int(n_samples),
            include_std=include_std,
            include_distribution=include_distribution,
        )
        if seed is not None:
            req.seed = int(seed)
        reply = self._call(self.stub.Predict, req)
        out: dict[str, Any] = {f: getattr(reply, f) for f in ("model", "version", "model_type", "batch_size")}
        for name in ("next_states", "std", "samples", "distribution"):
            if _present(getattr(reply, name)):
                out[name] = from_array(getattr(reply, name), name)
        return out

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
        """Trajectories: ``states`` (B, H, d); with a goal ``rewards``, ``terminated``, ``returns``."""
        req = pb.RolloutRequest(
            model_id=model_id,
            version=version or "",
            states=to_array(states),
            actions=to_array(actions),
            goal_json=json.dumps(goal) if goal is not None else "",
            mode=mode or "",
        )
        if gamma is not None:
            req.gamma = float(gamma)
        if seed is not None:
            req.seed = int(seed)
        reply = self._call(self.stub.Rollout, req)
        out: dict[str, Any] = {f: getattr(reply, f) for f in ("model", "version", "batch_size", "horizon")}
        for name in ("states", "rewards", "returns"):
            if _present(getattr(reply, name)):
                out[name] = from_array(getattr(reply, name), name)
        if _present(reply.terminated):
            t = reply.terminated
            out["terminated"] = np.asarray(list(t.data), dtype=bool).reshape(tuple(t.shape))
        return out
