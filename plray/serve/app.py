"""The Ray Serve application: a FastAPI ingress over the model registry.

Routes (all JSON unless the request is Arrow IPC; see :mod:`plray.serve.codec`):

* ``GET  /healthz``: liveness and the number of loaded models (never needs a token);
* ``GET  /metrics``: this replica's Prometheus metrics (:mod:`plray.serve.metrics`);
* ``GET  /v1/models``, ``GET /v1/models/{id}``: summaries; manifest, metrics, identifiability;
* ``POST /v1/models/{id}/predict``: (B, d) states and (B,) / (B, ad) actions to next states, std,
  samples, distributions;
* ``POST /v1/models/{id}/rollout``: B start states × H-step action sequences to trajectories,
  rewards, terminations and returns under a goal;
* ``POST /v1/models/{id}/plan``: a state and a goal to an action (CEM or value iteration);
* ``POST /v1/admin/reload``: check the models directory for new versions now;
* ``GET  /openapi.json``, ``/docs``: the schema (``/docs`` is a self-contained page, no CDN).

Small predict requests (B <= ``batch_rows``, no samples) go through ``@serve.batch``: requests that
arrive within ``batch_wait_timeout_s`` of each other are concatenated into one model call (up to
``max_batch_rows`` rows). Decoding, the model and encoding run in a small thread pool so the
replica's event loop keeps accepting requests. A background thread calls
:meth:`~plray.serve.registry.ModelRegistry.refresh` every ``reload_interval_s`` (hot reload).

Build the application with :func:`build_app` (the ``import_path`` of ``deploy/serve_config.yaml``).

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at runtime.
"""

import asyncio
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from ray import serve
from ray.serve.exceptions import RayServeException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from plray import __version__
from plray.core.worldmodel import TabularWorldModel
from plray.serve import codec, engine, openapi, schemas, summaries
from plray.serve.errors import ApiError
from plray.serve.handle import HandleMethods
from plray.serve.metrics import ServeMetrics
from plray.serve.registry import LoadedModel, ModelRegistry
from plray.serve.settings import DeploymentOptions, ServeSettings

log = logging.getLogger(__name__)

_JSON_ONLY = ("models", "model", "reload")
"""Endpoints that answer JSON only: an Accept that excludes JSON is a 406 there."""
DEPLOYMENT_NAME = "WorldModelServer"
INLINE_ROWS = 64
"""Predicts of at most this many rows (small bodies, an otherwise idle replica) run on the event loop."""


class _PlrayAPI(FastAPI):
    """FastAPI with :class:`FastPredict` in front of its whole stack (its error middleware included).

    As an ``add_middleware`` middleware, FastPredict would sit inside Starlette's outer layers, which
    cost a predict ~20-45 µs more; a subclass keeps ``isinstance(app, FastAPI)``, so
    ``serve.ingress`` still binds the class-based routes to the replica.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await _FAST_PREDICT.take(scope, receive, send):
            await super().__call__(scope, receive, send)


app = _PlrayAPI(
    title="plray world-model API", version=__version__, description=openapi.DESCRIPTION, docs_url=None, redoc_url=None
)
openapi.install(app)


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Routing errors (no such route, wrong method) in the API's error format."""
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_input")
    detail = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
    return JSONResponse({"error": kind, "detail": detail}, status_code=exc.status_code, headers=exc.headers)


@app.exception_handler(Exception)
async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    """Anything that escapes a route (the routes map their own errors): a 500 in the API's format."""
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return JSONResponse(ApiError("internal", f"internal error ({type(exc).__name__})").body(), status_code=500)


@app.exception_handler(RequestValidationError)
async def _request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own parameter validation (query parameters) in the API's error format."""
    errors = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:5]]
    return JSONResponse({"error": "validation", "detail": "; ".join(errors)}, status_code=422)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "body"
        got = err.get("input")
        shown = f" (got {got!r:.40})" if isinstance(got, int | float | str | bool) else ""
        parts.append(f"{loc}: {err.get('msg')}{shown}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _parse(model: type[BaseModel], raw: bytes) -> BaseModel:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise ApiError("validation", _validation_message(exc)) from exc


def _split(
    params: type[BaseModel], body: bytes, media: str, array_fields: tuple[str, ...], max_bytes: int = 256 << 20
) -> tuple[Any, dict[str, Any]]:
    """(validated params, raw arrays) from a JSON or Arrow request (Arrow decoding bounded by ``max_bytes``)."""
    if media == codec.JSON:
        full: type[BaseModel] = schemas.PredictRequest if params is schemas.PredictParams else schemas.RolloutRequest
        req = _parse(full, body)
        return req, {name: getattr(req, name) for name in array_fields}
    meta, arrays = codec.decode_arrow(body, file=media == codec.ARROW_FILE, max_bytes=max_bytes)
    missing = [n for n in array_fields if n not in arrays]
    extra = sorted(set(arrays) - set(array_fields))
    if missing or extra:
        raise ApiError(
            "invalid_input",
            f"Arrow columns: expected {list(array_fields)}, got {list(arrays)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else ""),
        )
    import json as _json

    return _parse(params, _json.dumps(meta).encode()), arrays


def _plan_answer(media: str, body: dict[str, Any]) -> Response:
    """A plan's answer: JSON, or Arrow with one row (column ``action``: (1,) or (1, ad)), the rest in ``plray.info``."""
    if media == codec.JSON:
        return Response(codec.encode_json(body), media_type=codec.JSON)
    info = {k: v for k, v in body.items() if k != "action"}
    action = np.asarray([body["action"]])
    return Response(codec.encode_arrow({"action": action}, info, file=media == codec.ARROW_FILE), media_type=media)


_PREDICT_PATH = re.compile(r"/v1/models/([^/]+)/predict")
_QUERY_JSON_KEYS = tuple(k for k in schemas.PredictRequest.model_fields if k not in codec.QUERY_TEXT_KEYS)
"""Fields of ``GET .../predict`` given as JSON in the query string (the rest, ``version``, is text)."""


class FastPredict:
    """Pure ASGI middleware: ``GET`` / ``POST /v1/models/{id}/predict`` straight to the replica's handler.

    FastAPI's own middleware stack, route matching and parameter solving cost a predict about as
    much as the model call (bench/serve.py); this sends predicts to
    :meth:`WorldModelServer._predict_request`, the handler the FastAPI route also calls, so both
    answer identically. Everything else, and any call outside a Serve replica, goes on to FastAPI.
    """

    def __init__(self, app: ASGIApp | None) -> None:
        self.app = app
        self._server: Any = None

    def _find_server(self) -> Any:
        try:
            self._server = serve.get_replica_context().servable_object
        except RayServeException:  # not inside a replica (an in-process test client): use FastAPI
            return None
        return self._server

    async def take(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer the request if it is a predict inside a replica; False: not taken, call the app."""
        if scope["type"] == "http" and scope["method"] in ("GET", "POST"):
            path, root = scope["path"], scope.get("root_path", "")
            match = _PREDICT_PATH.fullmatch(path[len(root) :] if root and path.startswith(root) else path)
            server = (self._server or self._find_server()) if match else None
            if server is not None and hasattr(server, "_predict_request"):
                response = await server._predict_request(Request(scope, receive), match.group(1))  # type: ignore[union-attr]
                await response(scope, receive, send)
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self.take(scope, receive, send):
            if self.app is None:
                raise RuntimeError("FastPredict(None) only takes predicts; call take() and fall back yourself")
            await self.app(scope, receive, send)


_FAST_PREDICT = FastPredict(None)
"""The fast path :class:`_PlrayAPI` takes before FastAPI (one per process: it caches the replica's server)."""


# ---------------------------------------------------------------------- deployment
@serve.deployment(
    name=DEPLOYMENT_NAME,
    max_ongoing_requests=64,
    health_check_period_s=10,
    logging_config={"enable_access_log": False},
)
@serve.ingress(app)
class WorldModelServer(HandleMethods):
    """One replica: a registry, metrics, and the routes of the module docstring."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.settings = ServeSettings.from_args(settings)
        if self.settings.torch_threads:
            import torch

            torch.set_num_threads(int(self.settings.torch_threads))
        self.limits = self.settings.limits()
        self.metrics = ServeMetrics()
        self._predicts_in_flight = 0  # on the event loop only: no lock needed
        self.registry = ModelRegistry(
            self.settings.models,
            cache_dir=self.settings.cache_dir,
            max_models=self.settings.max_models,
            on_load=self.metrics.on_load,
            max_tensor_bytes=self.settings.max_tensor_bytes,
        )
        token = os.environ.get(self.settings.auth_token_env, "") if self.settings.auth_token_env else ""
        self._token = token.encode() if token else None
        self.pool = ThreadPoolExecutor(max_workers=max(1, self.settings.compute_threads), thread_name_prefix="plray")
        self.heavy_pool = ThreadPoolExecutor(
            max_workers=max(1, self.settings.heavy_threads), thread_name_prefix="plray-heavy"
        )
        self.registry.load_all()
        self.metrics.models_loaded.set(len(self.registry.loaded()))
        self._predict_batched.set_max_batch_size(self.settings.max_batch_rows)
        self._predict_batched.set_batch_wait_timeout_s(self.settings.batch_wait_timeout_s)
        self._stop = threading.Event()
        self._reloader: threading.Thread | None = None
        if self.settings.reload_interval_s > 0:
            self._reloader = threading.Thread(target=self._reload_loop, name="plray-reload", daemon=True)
            self._reloader.start()

    # ------------------------------------------------------------------ plumbing
    def _reload_loop(self) -> None:
        while not self._stop.wait(self.settings.reload_interval_s):
            try:
                self.registry.refresh()
                self.metrics.models_loaded.set(len(self.registry.loaded()))
            except Exception:  # keep reloading whatever one pass hit
                log.exception("model refresh failed")

    def __del__(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()

    def _authorize(self, request: Request) -> None:
        if self._token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
            raise ApiError("unauthorized", "missing or wrong bearer token (Authorization: Bearer <token>)")

    async def _body(self, request: Request) -> bytes:
        cap = self.settings.max_body_bytes
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > cap:
            raise ApiError("payload_too_large", f"body of {int(length):,} bytes exceeds the cap of {cap:,} bytes")
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > cap:
                raise ApiError("payload_too_large", f"body exceeds the cap of {cap:,} bytes")
            chunks.append(chunk)
        return codec.decode_content(b"".join(chunks), request.headers.get("content-encoding"), cap)

    async def _run(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn)

    async def _run_heavy(self, request: Request, fn: Callable[[engine.Deadline], Any]) -> Any:
        """Run rollout / plan work on its own pool under the request deadline; stop it if the client leaves."""
        deadline = engine.Deadline(self.settings.request_deadline_s)
        future = asyncio.get_running_loop().run_in_executor(self.heavy_pool, fn, deadline)
        while True:
            done, _ = await asyncio.wait({future}, timeout=0.05)
            if done:
                return future.result()
            if await request.is_disconnected():
                deadline.cancelled.set()

    async def _answer(self, endpoint: str, request: Request, work: Callable[[], Any]) -> Response:
        """Run ``work`` (a coroutine function) with auth, metrics and error mapping."""
        start = time.perf_counter()
        try:
            if endpoint not in ("healthz",):
                self._authorize(request)
            if endpoint in _JSON_ONLY:
                codec.json_only(request.headers.get("accept"))
            response = await work()
        except ApiError as exc:
            self.metrics.errors.labels(kind=exc.kind).inc()
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            response = JSONResponse(exc.body(), status_code=exc.status, headers=headers)
        except Exception as exc:  # a bug: say what kind, log the rest
            log.exception("internal error in %s", endpoint)
            self.metrics.errors.labels(kind="internal").inc()
            body = ApiError("internal", f"internal error ({type(exc).__name__})").body()
            response = JSONResponse(body, status_code=500)
        self.metrics.requests.labels(endpoint=endpoint, status=str(response.status_code)).inc()
        self.metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - start)
        return response

    def _entry(self, model_id: str, version: str | None = None) -> LoadedModel:
        entry = self.registry.get(model_id, version)
        self.metrics.models_loaded.set(len(self.registry.loaded()))
        return entry

    async def _entry_async(self, model_id: str, version: str | None = None) -> LoadedModel:
        if version is None:
            loaded = self.registry.loaded_entry(model_id)
            if loaded is not None:  # the common case: a dict lookup, no thread hop
                return loaded
        return await self._run(lambda: self._entry(model_id, version))

    def _encode(self, media: str, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> Response:
        if media in (codec.ARROW, codec.ARROW_FILE):
            body = codec.encode_arrow(arrays, info, file=media == codec.ARROW_FILE)
            return Response(body, media_type=media)
        return Response(codec.encode_json({**info, **arrays}), media_type=codec.JSON)

    # ------------------------------------------------------------------ batched predict
    @serve.batch(
        max_batch_size=8192, batch_wait_timeout_s=0.001, batch_size_fn=lambda items: sum(len(i[1]) for i in items)
    )
    async def _predict_batched(self, items: list[tuple[LoadedModel, np.ndarray, np.ndarray]]) -> list[dict[str, Any]]:
        """One model call per distinct model version among the batch's requests; each gets its rows."""

        def compute() -> list[dict[str, Any]]:
            results: list[Any] = [None] * len(items)
            groups: dict[int, list[int]] = {}
            for i, (entry, _, _) in enumerate(items):
                groups.setdefault(id(entry), []).append(i)
            for idx in groups.values():
                entry = items[idx[0]][0]
                states = np.concatenate([items[i][1] for i in idx]) if len(idx) > 1 else items[idx[0]][1]
                actions = np.concatenate([items[i][2] for i in idx]) if len(idx) > 1 else items[idx[0]][2]
                self.metrics.model_batch_rows.observe(len(states))
                self.metrics.model_batch_requests.observe(len(idx))
                try:
                    out = engine.predict(entry.model, states, actions, limits=self.limits)
                except ApiError as exc:
                    for i in idx:
                        results[i] = exc
                    continue
                offset = 0
                for i in idx:
                    n = len(items[i][1])
                    results[i] = {k: v[offset : offset + n] for k, v in out.items()}
                    offset += n
            return results

        return await self._run(compute)

    # ------------------------------------------------------------------ routes
    @app.get("/healthz", response_model=schemas.Health, summary="Liveness")
    async def healthz(self, request: Request) -> Response:
        async def work() -> Response:
            body = {"status": "ok", "models": len(self.registry.loaded())}
            return JSONResponse(body)

        return await self._answer("healthz", request, work)

    @app.get(
        "/metrics",
        summary="Prometheus metrics of this replica",
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, 401: openapi.ERRORS[401]},
        response_class=Response,
    )
    async def metrics_route(self, request: Request) -> Response:
        async def work() -> Response:
            from prometheus_client import CONTENT_TYPE_LATEST

            return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

        return await self._answer("metrics", request, work)

    @app.get(
        "/v1/models", response_model=schemas.ModelList, responses={401: openapi.ERRORS[401]}, summary="List models"
    )
    async def list_models(self, request: Request) -> Response:
        async def work() -> Response:
            def collect() -> dict[str, Any]:
                models, unavailable = [], {}
                for model_id in self.registry.ids():
                    try:
                        models.append(summaries.summary(self._entry(model_id)))
                    except ApiError as exc:
                        unavailable[model_id] = exc.detail
                return {"models": models, "unavailable": unavailable}

            return JSONResponse(await self._run(collect))

        return await self._answer("models", request, work)

    @app.get(
        "/v1/models/{model_id}",
        response_model=schemas.ModelDetail,
        responses=openapi.ERRORS,
        summary="A model's manifest, metrics and identifiability diagnostics",
    )
    async def model_detail(
        self,
        request: Request,
        model_id: str = openapi.MODEL_ID,
        version: str | None = Query(None, description="A version to describe (default: the one served)."),
    ) -> Response:
        async def work() -> Response:
            entry = await self._entry_async(model_id, version)
            ident = summaries.public(entry.manifest.get("identifiability"))
            if isinstance(entry.model, TabularWorldModel):
                ident = {**(ident if isinstance(ident, dict) else {}), "kernel": summaries.kernel_facts(entry.model)}
            body = {
                "summary": summaries.summary(entry),
                "versions": await self._run(lambda: self.registry.versions(model_id)),
                "manifest": summaries.public(entry.manifest),
                "metrics": summaries.public(entry.manifest.get("metrics")),
                "identifiability": ident if isinstance(ident, dict) else None,
            }
            return Response(codec.encode_json(body), media_type=codec.JSON)

        return await self._answer("model", request, work)

    @app.post(
        "/v1/models/{model_id}/predict",
        response_model=schemas.PredictResponse,
        responses=openapi.answer_doc(schemas.PredictResponse),
        openapi_extra=openapi.body_doc(schemas.PredictRequest),
        summary="One-step predictions for a batch of (state, action)",
    )
    async def predict(self, request: Request, model_id: str = openapi.MODEL_ID) -> Response:
        return await self._predict_request(request, model_id)

    @app.get(
        "/v1/models/{model_id}/predict",
        response_model=schemas.PredictResponse,
        responses=openapi.answer_doc(schemas.PredictResponse),
        openapi_extra=openapi.query_doc(schemas.PredictRequest, _QUERY_JSON_KEYS),
        summary="One-step predictions for a few (state, action), in the query string",
    )
    async def predict_query(self, request: Request, model_id: str = openapi.MODEL_ID) -> Response:
        return await self._predict_request(request, model_id)

    async def _predict_request(self, request: Request, model_id: str) -> Response:
        """The predict route's handler (also reached from :class:`FastPredict`, without FastAPI)."""

        async def work() -> Response:
            if request.method == "GET":  # the query string is the body: one proxy hop, no body to fetch
                media, body = codec.JSON, codec.query_json(request.scope.get("query_string", b""), _QUERY_JSON_KEYS)
            else:
                media = codec.media_type(request.headers.get("content-type"))
                body = await self._body(request)
            answer = codec.response_type(request.headers.get("accept"), media)
            small = len(body) <= self.settings.inline_body_bytes  # decode, check and encode inline: no thread hops
            cap = self.settings.max_body_bytes
            parse = lambda: _split(schemas.PredictParams, body, media, ("states", "actions"), cap)  # noqa: E731
            params, raw = parse() if small else await self._run(parse)
            entry = await self._entry_async(model_id, params.version)
            check = lambda: engine.check_batch(entry.model, raw["states"], raw["actions"])  # noqa: E731
            states, actions = check() if small else await self._run(check)
            B = len(states)
            self.metrics.rows.labels(endpoint="predict").observe(B)
            if self.limits.max_batch < B:
                raise ApiError(
                    "payload_too_large", f"batch size B: {B:,} exceeds this server's cap of {self.limits.max_batch:,}"
                )

            def compute() -> dict[str, Any]:
                return engine.predict(
                    entry.model,
                    states,
                    actions,
                    n_samples=params.n_samples,
                    seed=params.seed,
                    include_std=params.include_std,
                    include_distribution=params.include_distribution,
                    limits=self.limits,
                )

            if small and B <= INLINE_ROWS and params.n_samples == 0 and self._predicts_in_flight <= 1:
                # a few rows on an idle replica: the model call costs less than a thread hop or a batch
                # wait; with other predicts in flight they go through @serve.batch together instead
                out = compute()
            elif self.settings.batch_rows >= B and params.n_samples == 0:
                out = await self._predict_batched((entry, states, actions))
                if isinstance(out, ApiError):
                    raise out
                if not params.include_std:
                    out.pop("std", None)
                if not params.include_distribution:
                    out.pop("distribution", None)
            else:
                out = await self._run(compute)
            info = {
                "model": entry.model_id,
                "version": entry.version,
                "model_type": entry.model.model_type,
                "batch_size": B,
            }
            if small and B <= INLINE_ROWS:
                return self._encode(answer, out, info)
            return await self._run(lambda: self._encode(answer, out, info))

        self._predicts_in_flight += 1
        try:
            return await self._answer("predict", request, work)
        finally:
            self._predicts_in_flight -= 1

    @app.post(
        "/v1/models/{model_id}/rollout",
        response_model=schemas.RolloutResponse,
        responses=openapi.answer_doc(schemas.RolloutResponse),
        openapi_extra=openapi.body_doc(schemas.RolloutRequest),
        summary="Trajectories of B action sequences inside the model, scored under a goal",
    )
    async def rollout(self, request: Request, model_id: str = openapi.MODEL_ID) -> Response:
        async def work() -> Response:
            if request.method == "GET":  # the query string is the body: one proxy hop, no body to fetch
                media, body = codec.JSON, codec.query_json(request.scope.get("query_string", b""), _QUERY_JSON_KEYS)
            else:
                media = codec.media_type(request.headers.get("content-type"))
                body = await self._body(request)
            answer = codec.response_type(request.headers.get("accept"), media)
            cap = self.settings.max_body_bytes
            params, raw = await self._run(
                lambda: _split(schemas.RolloutParams, body, media, ("states", "actions"), cap)
            )
            entry = await self._entry_async(model_id, params.version)

            def compute(deadline: engine.Deadline) -> Response:
                states, actions = engine.check_batch(entry.model, raw["states"], raw["actions"], steps=True)
                B, H = actions.shape[:2]
                self.metrics.rows.labels(endpoint="rollout").observe(B * H)
                goal = None
                if params.goal is not None:
                    goal = engine.build_goal(params.goal.model_dump(), entry.model, entry.task)
                gamma = params.gamma or float(entry.manifest.get("gamma") or 0.99)
                out = engine.rollout(
                    entry.model,
                    states,
                    actions,
                    goal=goal,
                    gamma=gamma,
                    mode=params.mode,
                    seed=params.seed,
                    limits=self.limits,
                    deadline=deadline,
                )
                info = {"model": entry.model_id, "version": entry.version, "batch_size": B, "horizon": H}
                return self._encode(answer, out, info)

            return await self._run_heavy(request, compute)

        return await self._answer("rollout", request, work)

    @app.post(
        "/v1/models/{model_id}/plan",
        response_model=schemas.PlanResponse,
        responses=openapi.answer_doc(schemas.PlanResponse),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {codec.JSON: {"schema": {"$ref": "#/components/schemas/PlanRequest"}}},
            }
        },
        summary="The action to take from a state toward a goal (CEM or value iteration inside the model)",
    )
    async def plan(self, request: Request, model_id: str = openapi.MODEL_ID) -> Response:
        async def work() -> Response:
            media = codec.media_type(request.headers.get("content-type"))
            if media != codec.JSON:
                raise ApiError("unsupported_media_type", f"plan takes {codec.JSON} bodies only, not {media}")
            answer = codec.response_type(request.headers.get("accept"), codec.JSON)
            body = await self._body(request)
            req = _parse(schemas.PlanRequest, body)
            assert isinstance(req, schemas.PlanRequest)
            entry = await self._entry_async(model_id, req.version)

            def compute(deadline: engine.Deadline) -> dict[str, Any]:
                model = entry.model
                state = engine._numeric(req.state, "state").astype(np.float64)
                if state.shape != (model.state_dim,):
                    raise ApiError("invalid_input", f"state: expected shape ({model.state_dim},), got {state.shape}")
                engine.check_batch(
                    model,
                    state[None],
                    np.zeros(1, dtype=np.int64) if model.discrete_actions else np.zeros((1, model.action_dim)),
                )
                goal = engine.build_goal(req.goal.model_dump(), model, entry.task)
                gamma = req.gamma or float(entry.manifest.get("gamma") or 0.99)
                return engine.plan(
                    model,
                    state,
                    goal,
                    method=req.method,
                    gamma=gamma,
                    task_fn=entry.task,
                    horizon=req.horizon,
                    population=req.population,
                    elites=req.elites,
                    iterations=req.iterations,
                    seed=req.seed,
                    resolution=req.resolution,
                    action_low=req.action_low,
                    action_high=req.action_high,
                    limits=self.limits,
                    deadline=deadline,
                )

            out = await self._run_heavy(request, compute)
            return _plan_answer(
                answer, {"model": entry.model_id, "version": entry.version, "method": req.method, **out}
            )

        return await self._answer("plan", request, work)

    @app.post(
        "/v1/admin/reload",
        summary="Check the models directory for new versions now (this replica)",
        responses={200: {"content": {codec.JSON: {"schema": {"type": "object"}}}}, 401: openapi.ERRORS[401]},
        response_class=Response,
    )
    async def reload(self, request: Request) -> Response:
        async def work() -> Response:
            swaps = await self._run(self.registry.refresh)
            self.metrics.models_loaded.set(len(self.registry.loaded()))
            body = {"swapped": [{"model": m, "old": o, "new": n} for m, o, n in swaps]}
            return JSONResponse(body)

        return await self._answer("reload", request, work)


# ---------------------------------------------------------------------- building


def build_app(args: dict[str, Any] | None = None) -> serve.Application:
    """The Serve application (``import_path: plray.serve.app:build_app``).

    Args:
        args: :class:`ServeSettings` fields, plus optionally ``deployment``: a dict of
            :class:`DeploymentOptions` fields (replicas, autoscaling, actor options).
    """
    args = dict(args or {})
    opts = DeploymentOptions(**dict(args.pop("deployment", None) or {}))
    settings = ServeSettings.from_args(args)
    options: dict[str, Any] = {
        "max_ongoing_requests": opts.max_ongoing_requests,
        "ray_actor_options": opts.ray_actor_options,
    }
    if opts.autoscaling_config is not None:
        options["autoscaling_config"] = opts.autoscaling_config
    elif opts.num_replicas is not None:
        options["num_replicas"] = opts.num_replicas
    return WorldModelServer.options(**options).bind(asdict(settings))  # type: ignore[attr-defined]  # @serve.deployment


def run(
    models: str,
    *,
    address: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    route_prefix: str = "/",
    name: str = "plray",
    settings: dict[str, Any] | None = None,
    deployment: dict[str, Any] | None = None,
    block: bool = True,
) -> str:
    """Start (or join) Ray, start Serve's HTTP proxy and deploy the application; return the base URL.

    Args:
        models: models directory or URI (made absolute if local, since replicas may run elsewhere).
        address: Ray cluster address (``auto``, ``ray://...``, ``host:port``); None: ``RAY_ADDRESS``
            when set, else a fresh local Ray (see :mod:`plray.utils.ray_runtime`).
        host, port: Serve's HTTP proxy (only when this call starts Serve).
        block: wait until interrupted (Ctrl-C), then delete the application.
    """
    import ray

    from plray.utils import ray_runtime

    if "://" not in models:
        models = os.path.abspath(models)
    started_ray = ray_runtime.start(address, log_to_driver=True)  # address None: RAY_ADDRESS, else a local Ray
    deadline = ServeSettings.from_args({**(settings or {}), "models": models}).request_deadline_s
    serve.start(http_options={"host": host, "port": port, "request_timeout_s": 2 * deadline})
    args = {**(settings or {}), "models": models}
    if deployment:
        args["deployment"] = deployment
    serve.run(build_app(args), name=name, route_prefix=route_prefix, blocking=False)
    prefix = "" if route_prefix == "/" else route_prefix
    url = f"http://{host}:{port}{prefix}"
    if block:
        print(f"plray serving {models} at {url} (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping plray serve ...", flush=True)
            serve.delete(name)
            if started_ray and ray_runtime.is_local(address):  # our own local Ray: take Serve and Ray down too
                serve.shutdown()
                ray.shutdown()
    return url
