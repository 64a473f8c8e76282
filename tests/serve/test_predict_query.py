"""``GET /v1/models/{id}/predict`` (the request in the query string) against POST on a real Serve
deployment, its refusals, and the :class:`~plray.serve.app.FastPredict` middleware in front of FastAPI."""

from __future__ import annotations

import asyncio
import json
import types
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
import requests

from plray.serve import app as app_module
from plray.serve import codec
from plray.serve.client import WorldModelClient

CASES = [
    ("reacher", {"states": [[0.1, -0.2, 0.3, 0.0], [1.0, 0.5, -0.1, 2.0]], "actions": [3, 8]}),
    ("reacher", {"states": [[0.1, -0.2, 0.3, 0.0]], "actions": [0], "version": "1"}),
    ("pets", {"states": [[0.1, -0.2, 0.3, 0.0]], "actions": [[0.5, -0.5]]}),
    ("mc-gauss", {"states": [[-0.5, 0.01]], "actions": [2], "n_samples": 3, "seed": 7, "include_std": False}),
    ("fourrooms", {"states": [[3], [10]], "actions": [0, 2], "include_distribution": False}),
]


def query(body: dict[str, Any]) -> str:
    return "&".join(f"{k}={quote(v if k == 'version' else json.dumps(v), safe='')}" for k, v in body.items())


@pytest.mark.ray
@pytest.mark.parametrize(("model_id", "body"), CASES)
def test_get_answers_exactly_what_post_answers(server, model_id: str, body: dict[str, Any]) -> None:
    url, _ = server
    post = requests.post(f"{url}/v1/models/{model_id}/predict", json=body, timeout=30)
    get = requests.get(f"{url}/v1/models/{model_id}/predict?{query(body)}", timeout=30)
    assert post.status_code == get.status_code == 200, (post.text, get.text)
    assert get.headers["content-type"].startswith(codec.JSON)
    assert get.json() == post.json()


@pytest.mark.ray
def test_client_methods_agree_and_auto_uses_get_for_small_requests(server) -> None:
    url, _ = server
    client = WorldModelClient(url, fmt="json")
    s, a = np.array([[0.1, -0.2, 0.3, 1e-7]]), np.array([4])
    answers = [client.predict("reacher", s, a, method=m) for m in ("auto", "GET", "POST")]
    for other in answers[1:]:
        np.testing.assert_array_equal(other["next_states"], answers[0]["next_states"])
    big_s, big_a = np.zeros((2000, 4)), np.zeros(2000, dtype=int)  # ~20 KB of JSON: too long for a query
    assert len(client.predict("reacher", big_s, big_a)["next_states"]) == 2000


@pytest.mark.ray
def test_get_answers_arrow_when_accept_asks_for_it(server) -> None:
    url, _ = server
    body = CASES[0][1]
    resp = requests.get(f"{url}/v1/models/reacher/predict?{query(body)}", headers={"Accept": codec.ARROW}, timeout=30)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith(codec.ARROW)
    post = requests.post(f"{url}/v1/models/reacher/predict", json=body, timeout=30).json()
    np.testing.assert_array_equal(codec.decode_response_arrow(resp.content)["next_states"], post["next_states"])


BAD = [
    ("unknown key", "states=[[0,0,0,0]]&actions=[3]&bogus=1", 422, "bogus"),
    ("repeated key", "states=[[0,0,0,0]]&actions=[3]&actions=[4]", 422, "twice"),
    ("not JSON", "states=[[0,0,0,0&actions=[3]", 400, "not JSON"),
    ("missing actions", "states=[[0,0,0,0]]", 422, "actions"),
    ("NaN state", "states=[[NaN,0,0,0]]&actions=[3]", 400, "NaN"),
    ("deep nesting", "states=" + "[" * 200 + "]" * 200 + "&actions=[3]", 400, "nested"),
    ("too long", "states=[[" + ",".join(["0"] * 5000) + "]]&actions=[3]", 413, "query string"),
    ("action out of range", "states=[[0,0,0,0]]&actions=[99]", 400, "action"),
]


@pytest.mark.ray
@pytest.mark.parametrize(("name", "qs", "status", "says"), BAD, ids=[b[0] for b in BAD])
def test_bad_query_strings_are_4xx_json(server, name: str, qs: str, status: int, says: str) -> None:
    url, _ = server
    resp = requests.get(f"{url}/v1/models/reacher/predict?{qs}", timeout=30)
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "detail"} and says.lower() in body["detail"].lower(), body


def test_query_parameters_are_documented_in_the_schema() -> None:
    op = app_module.app.openapi()["paths"]["/v1/models/{model_id}/predict"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert {"states", "actions", "version", "n_samples", "seed"} <= set(params)
    assert params["states"]["required"] and params["actions"]["required"] and not params["version"]["required"]
    assert codec.JSON in params["states"]["content"]


# ---------------------------------------------------------------------- FastPredict, without Ray
class _Server:
    """Records what the middleware hands it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def _predict_request(self, request: Any, model_id: str) -> Any:
        from starlette.responses import Response

        self.calls.append((request.method, model_id))
        return Response(b"fast", media_type="text/plain")


def _call(mw: app_module.FastPredict, method: str, path: str, root_path: str = "") -> bytes:
    scope = {"type": "http", "method": method, "path": path, "root_path": root_path, "query_string": b"", "headers": []}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(mw(scope, receive, send))
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def _inner(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"fastapi"})


def test_fast_path_takes_predicts_only_inside_a_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    server = _Server()
    outside = app_module.FastPredict(_inner)
    assert _call(outside, "POST", "/v1/models/m/predict") == b"fastapi"  # no replica context: FastAPI

    context = types.SimpleNamespace(servable_object=server)
    monkeypatch.setattr(app_module.serve, "get_replica_context", lambda: context)
    mw = app_module.FastPredict(_inner)
    assert _call(mw, "POST", "/v1/models/m/predict") == b"fast"
    assert _call(mw, "GET", "/api/v1/models/a.b/predict", root_path="/api") == b"fast"
    assert _call(mw, "GET", "/v1/models/a/b/predict") == b"fastapi"  # not one path segment
    assert _call(mw, "PUT", "/v1/models/m/predict") == b"fastapi"  # FastAPI answers the 405
    assert _call(mw, "POST", "/v1/models/m/rollout") == b"fastapi"
    assert _call(mw, "GET", "/healthz") == b"fastapi"
    assert server.calls == [("POST", "m"), ("GET", "a.b")]


def test_the_api_takes_predicts_before_fastapis_own_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """The served app runs the fast path ahead of FastAPI's middleware: predicts never reach it."""
    server = _Server()
    context = types.SimpleNamespace(servable_object=server)
    monkeypatch.setattr(app_module.serve, "get_replica_context", lambda: context)
    monkeypatch.setattr(app_module._FAST_PREDICT, "_server", None)

    def no_stack() -> Any:
        raise AssertionError("a predict reached FastAPI's middleware stack")

    monkeypatch.setattr(app_module.app, "build_middleware_stack", no_stack)
    monkeypatch.setattr(app_module.app, "middleware_stack", None)
    assert isinstance(app_module.app, app_module.FastAPI)  # serve.ingress binds the class-based routes
    assert _call(app_module.app, "GET", "/v1/models/m/predict") == b"fast"  # type: ignore[arg-type]
    assert server.calls == [("GET", "m")]
    with pytest.raises(AssertionError, match="middleware stack"):
        _call(app_module.app, "GET", "/healthz")  # type: ignore[arg-type]
