"""The API's documentation: the OpenAPI schema (security, caps, request bodies), ``/docs``.

Nothing here serves a request: :func:`install` gives the FastAPI app its schema builder and the
offline ``/docs`` page; the route decorators in :mod:`plray.serve.app` take :func:`body_doc`,
:func:`answer_doc` and :data:`MODEL_ID`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import FastAPI
from fastapi import Path as PathParam
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from plray.serve import codec, engine, schemas
from plray.serve.settings import TOKEN_ENV, ServeSettings

AUTHED = ("/v1/", "/metrics")
"""Path prefixes that need the bearer token when one is configured."""

DESCRIPTION = """World-model predictions for planners (plray).

Bodies are JSON or Arrow IPC streams (`application/vnd.apache.arrow.stream`), chosen by
`Content-Type`; answers follow `Accept` (default: the request's format). In Arrow, arrays are
columns with B rows (a (B, m1, m2) array is a `fixed_size_list[m1*m2]` column with field metadata
`shape` = `[m1, m2]`) and the other fields are JSON in the schema metadata `plray.params`
(answers: `plray.info`); `application/vnd.apache.arrow.file` (the IPC file format) is read and
written as such. `Content-Encoding: gzip` or `zstd` bodies are inflated up to the body cap (413
beyond). `GET /v1/models/{id}/predict?states=[[...]]&actions=[...]` takes a predict request in the
query string (each field JSON, `version` text; at most `max_query_bytes`): Serve's proxy passes a
query in its first hop but fetches a body in a second one, so GET is the fastest path for a few
transitions and POST the one for batches. Every refusal the application writes is
`{"error": kind, "detail": message}` (Serve's proxy writes a few plain-text ones itself:
malformed HTTP, its request timeout, a lost replica).
With a token configured, `/v1/*` and `/metrics` need `Authorization: Bearer <token>` (security
scheme `bearerAuth`). The caps are under `info.x-plray-limits` (defaults; a deployment may differ).
"""

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>plray world-model API</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70em;padding:1em 2em;color:#222}
h2{border-bottom:1px solid #ccc;margin-top:2em}
.op{border:1px solid #ddd;border-radius:6px;margin:1em 0;padding:.6em 1em}
.m{display:inline-block;min-width:4.5em;font-weight:bold;text-transform:uppercase}.get{color:#0a6}.post{color:#06c}
pre{background:#f6f8fa;padding:.6em;overflow:auto;font-size:12px}code{background:#f6f8fa}
details>summary{cursor:pointer;color:#555}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px}
</style></head><body><div id="app">Loading the schema ...</div>
<script>
"use strict";
const el = (tag, attrs, ...kids) => {
  const e = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
  kids.flat().forEach(k => e.append(k instanceof Node ? k : document.createTextNode(String(k))));
  return e;
};
const json = v => el("pre", {}, JSON.stringify(v, null, 2));
const fold = (title, body) => el("details", {}, el("summary", {}, title), body);
function operation(path, method, op) {
  const box = el("div", {class: "op", id: op.operationId || (method + path)},
    el("span", {class: "m " + method}, method), el("code", {}, path), " ", op.summary || "");
  if (op.description) box.append(el("p", {}, op.description));
  if (op.security) box.append(el("p", {}, "Needs Authorization: Bearer <token> when the server has one."));
  if (op.parameters && op.parameters.length) {
    box.append(el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "about")),
      op.parameters.map(p => el("tr", {}, el("td", {}, p.name), el("td", {}, p.in),
        el("td", {}, p.description || "")))));
  }
  const body = op.requestBody && op.requestBody.content;
  if (body) Object.entries(body).forEach(([type, c]) => box.append(fold("request body: " + type, json(c.schema || c))));
  Object.entries(op.responses || {}).forEach(([code, r]) => box.append(
    fold(code + " " + (r.description || ""), json(r.content || {}))));
  return box;
}
function render(spec) {
  const root = document.getElementById("app");
  root.replaceChildren(el("h1", {}, spec.info.title, " ", el("small", {}, spec.info.version)),
    el("pre", {}, spec.info.description || ""));
  if (spec.info["x-plray-limits"]) root.append(fold("server caps (defaults)", json(spec.info["x-plray-limits"])));
  root.append(el("h2", {}, "Operations"));
  Object.entries(spec.paths).forEach(([path, ops]) =>
    Object.entries(ops).forEach(([method, op]) => root.append(operation(path, method, op))));
  root.append(el("h2", {}, "Schemas"));
  const comps = (spec.components || {}).schemas || {};
  Object.entries(comps).forEach(([name, sch]) => root.append(
    el("h3", {id: "schema-" + name}, name), el("p", {}, sch.description || ""), fold("schema", json(sch))));
  root.append(el("h2", {}, "Security"), json((spec.components || {}).securitySchemes || {}));
}
const url = location.pathname.replace(/\\/docs\\/?$/, "") + "/openapi.json";
fetch(url).then(r => r.json()).then(render).catch(e => {
  document.getElementById("app").textContent = "could not load " + url + ": " + e;
});
</script></body></html>
"""

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody, "description": "Invalid input (shape, dtype, NaN/inf, range, unsafe id)."},
    401: {"model": schemas.ErrorBody, "description": "Missing or wrong bearer token (when auth is on)."},
    404: {"model": schemas.ErrorBody, "description": "Unknown model id or version."},
    406: {"model": schemas.ErrorBody, "description": "Accept names no supported format."},
    413: {"model": schemas.ErrorBody, "description": "Body, batch or answer over the server's caps."},
    415: {"model": schemas.ErrorBody, "description": "Content-Type is neither JSON nor Arrow IPC."},
    422: {"model": schemas.ErrorBody, "description": "JSON body does not match the schema."},
    503: {"model": schemas.ErrorBody, "description": "The model's artifact does not load."},
}
MODEL_ID = PathParam(
    description="Model id: a directory name under the models directory (letters, digits, '.', '_', '-'; "
    "not starting with '.', no '..'); anything else is a 400."
)
ARROW_DOC = {
    "schema": {"type": "string", "format": "binary"},
    "description": "Arrow IPC stream: array fields as columns, the rest as JSON in schema metadata `plray.params`.",
}


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                codec.JSON: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}},
                codec.ARROW: ARROW_DOC,
            },
        }
    }


def query_doc(model: type[BaseModel], json_keys: tuple[str, ...]) -> dict[str, Any]:
    """The query parameters of ``GET .../predict``: ``model``'s fields, JSON-valued where listed in ``json_keys``."""
    js = model.model_json_schema(ref_template="#/components/schemas/{model}")
    required = set(js.get("required", ()))
    params = []
    for name, prop in js["properties"].items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        param["description"] = prop.get("description", "")
        if name in json_keys:
            param["content"] = {codec.JSON: {"schema": prop}}
        else:
            param["schema"] = {"type": "string", "maxLength": 128}
        params.append(param)
    return {"parameters": params}


def answer_doc(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"model": model, "content": {codec.ARROW: {"schema": {"type": "string", "format": "binary"}}}},
        **ERRORS,
    }


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The schema of ``app``'s routes with the bodies, security and caps added (built once)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, servers=app.servers
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (schemas.PredictRequest, schemas.RolloutRequest, schemas.PlanRequest):
        js = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(js.pop("$defs", {}))
        components[model.__name__] = js
    schema["components"]["securitySchemes"] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": f"The token in the server's {TOKEN_ENV} environment variable; only enforced when it "
            "is set (then a missing or wrong token is a 401).",
        }
    }
    for path, ops in schema.get("paths", {}).items():
        if path.startswith(AUTHED):
            for op in ops.values():
                op["security"] = [{"bearerAuth": []}]
    schema["info"]["x-plray-limits"] = default_caps()
    app.openapi_schema = schema
    return schema


def default_caps() -> dict[str, Any]:
    """The server's caps by default (engine.DEFAULT_LIMITS and ServeSettings); a deployment may set its own."""
    defaults = ServeSettings()
    caps = asdict(engine.DEFAULT_LIMITS)
    for name in ("max_body_bytes", "request_deadline_s"):
        caps[name] = getattr(defaults, name)
    caps["max_samples"] = schemas.MAX_SAMPLES
    caps["max_query_bytes"] = codec.MAX_QUERY_BYTES
    return caps


def install(app: FastAPI) -> None:
    """Give ``app`` its OpenAPI schema builder and the self-contained ``/docs`` page."""
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    async def _docs() -> HTMLResponse:
        """A self-contained page rendering ``openapi.json`` (no CDN: it works offline)."""
        return HTMLResponse(DOCS_HTML)
