"""Hostile requests against the real Serve deployment of conftest.py (issue 16): Arrow metadata bombs and
the IPC file format, compressed bodies, Accept on every endpoint, non-finite goal fields, huge action
indices, the error format of routing and protocol errors (raw sockets), the schema's completeness,
an offline /docs page, typed model summaries, no server paths in answers, rollout semantics."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import shutil
import socket
import time
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pytest
import requests

from plray.serve import codec
from plray.serve.client import ApiClientError, WorldModelClient, _client_error
from tests.serve.conftest import PORT, PREFIX, reacher_model, write_model

pytestmark = pytest.mark.ray

ARROW = {"Content-Type": codec.ARROW}
GOAL = {"kind": "region", "target": [0.5, 0.5], "dims": [0, 1], "tolerance": 0.3}


def _error(resp: requests.Response, status: int, kind: str | None = None) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"error", "detail"}, body
    if kind is not None:
        assert body["error"] == kind, body
    return body


def _arrow_request(meta: bytes, rows: int = 2, compression: str | None = None) -> bytes:
    states = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(rows * 4)), 4)
    table = pa.table({"states": states, "actions": pa.array(np.zeros(rows, dtype=np.int64))})
    table = table.replace_schema_metadata({codec.PARAMS_KEY: meta})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=compression)) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


# ---------------------------------------------------------------------- 1. Arrow bodies
@pytest.mark.parametrize("depth", [100, 50_000])
def test_nested_arrow_params_are_a_400(server, depth: int) -> None:
    url, _ = server
    body = _arrow_request(b"[" * depth + b"]" * depth)
    for route in ("predict", "rollout"):
        resp = requests.post(f"{url}/v1/models/reacher/{route}", data=body, headers=ARROW, timeout=60)
        assert "plray.params" in _error(resp, 400, "invalid_input")["detail"]


def test_arrow_file_format_is_read_and_written_as_a_file(server) -> None:
    url, _ = server
    s, a = np.random.default_rng(0).uniform(-1, 1, (3, 4)), np.array([0, 4, 8])
    body = codec.encode_arrow({"states": s, "actions": a}, {}, codec.PARAMS_KEY, file=True)
    headers = {"Content-Type": codec.ARROW_FILE}
    resp = requests.post(f"{url}/v1/models/reacher/predict", data=body, headers=headers, timeout=60)
    assert resp.status_code == 200 and resp.headers["content-type"] == codec.ARROW_FILE, resp.text[:300]
    assert resp.content[:6] == b"ARROW1"
    out = codec.decode_response_arrow(resp.content)
    ref = WorldModelClient(f"{url}", fmt="json").predict("reacher", s, a)
    np.testing.assert_allclose(out["next_states"], ref["next_states"], atol=1e-12)
    stream = codec.encode_request_arrow({"states": s, "actions": a}, {})
    resp = requests.post(f"{url}/v1/models/reacher/predict", data=stream, headers=headers, timeout=60)
    assert "Arrow IPC file" in _error(resp, 400, "invalid_input")["detail"]


def test_compressed_ipc_buffers_are_bounded(server) -> None:
    url, _ = server
    body = _arrow_request(b"{}", rows=2_000_000, compression="zstd")  # ~5 KB, 80 MB decoded; the cap is 4 MiB
    resp = requests.post(f"{url}/v1/models/reacher/predict", data=body, headers=ARROW, timeout=60)
    assert "decodes past" in _error(resp, 413, "payload_too_large")["detail"]


# ---------------------------------------------------------------------- 2. Content-Encoding
@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_a_compressed_bomb_is_refused_while_inflating(server, coding: str) -> None:
    url, _ = server
    raw = b"\0" * (256 << 20)
    bomb = gzip.compress(raw, 9) if coding == "gzip" else pa.compress(raw, codec="zstd", asbytes=True)
    assert len(bomb) < 512 << 10
    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    resp = requests.post(f"{url}/v1/models/reacher/predict", data=bomb, headers=headers, timeout=60)
    assert "inflates past" in _error(resp, 413, "payload_too_large")["detail"]
    good = json.dumps({"states": [[0.0] * 4], "actions": [1]}).encode()
    small = gzip.compress(good) if coding == "gzip" else pa.compress(good, codec="zstd", asbytes=True)
    resp = requests.post(f"{url}/v1/models/reacher/predict", data=small, headers=headers, timeout=60)
    assert resp.status_code == 200 and resp.json()["batch_size"] == 1, resp.text
    resp = requests.post(
        f"{url}/v1/models/reacher/predict", data=good, headers={**headers, "Content-Encoding": "br"}, timeout=60
    )
    assert "gzip" in _error(resp, 415, "unsupported_media_type")["detail"]


# ---------------------------------------------------------------------- 3. Accept
def test_plan_and_every_endpoint_honour_accept(server) -> None:
    url, _ = server
    body = {"state": [0.1, -0.2, 0.0, 0.0], "goal": GOAL, "horizon": 3, "population": 20, "elites": 4, "iterations": 1}
    plan = f"{url}/v1/models/reacher/plan"
    js = requests.post(plan, json=body, timeout=60)
    assert js.status_code == 200 and js.headers["content-type"] == codec.JSON
    arrow = requests.post(plan, json=body, headers={"Accept": codec.ARROW}, timeout=60)
    assert arrow.status_code == 200 and arrow.headers["content-type"] == codec.ARROW, arrow.text[:300]
    out = codec.decode_response_arrow(arrow.content)
    assert out["action"].tolist() == [js.json()["action"]] and out["method"] == "cem" and out["value"] is None
    for route, method, payload in (
        ("v1/models/reacher/plan", "POST", body),
        ("v1/models/reacher/predict", "POST", {"states": [[0.0] * 4], "actions": [0]}),
        ("v1/models/reacher/rollout", "POST", {"states": [[0.0] * 4], "actions": [[0]]}),
        ("v1/models", "GET", None),
        ("v1/models/reacher", "GET", None),
        ("v1/admin/reload", "POST", None),
    ):
        resp = requests.request(method, f"{url}/{route}", json=payload, headers={"Accept": "text/csv"}, timeout=60)
        assert "text/csv" in _error(resp, 406, "not_acceptable")["detail"], route
    assert requests.get(f"{url}/v1/models", headers={"Accept": "*/*"}, timeout=30).status_code == 200
    resp = requests.get(f"{url}/v1/models", headers={"Accept": codec.ARROW}, timeout=30)
    _error(resp, 406, "not_acceptable")


# ---------------------------------------------------------------------- 4. numbers
@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "-1.0", "0"])
def test_non_finite_or_negative_tolerance_is_a_422_naming_the_field(server, value: str) -> None:
    url, _ = server
    goal = '{"kind": "region", "target": [0.5], "dims": [0], "tolerance": ' + value + "}"
    bodies = {
        "rollout": '{"states": [[0, 0, 0, 0]], "actions": [[0]], "goal": ' + goal + "}",
        "plan": '{"state": [0, 0, 0, 0], "goal": ' + goal + "}",
    }
    for route, raw in bodies.items():
        resp = requests.post(f"{url}/v1/models/reacher/{route}", data=raw, headers={"Content-Type": "application/json"})
        assert "tolerance" in _error(resp, 422, "validation")["detail"], (route, value)
    meta = json.dumps({"goal": {"kind": "region", "target": [0.5], "dims": [0], "tolerance": float(value)}})
    states = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(4)), 4)
    actions = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(1, dtype=np.int64)), 1)
    table = pa.table({"states": states, "actions": actions}).replace_schema_metadata({codec.PARAMS_KEY: meta})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    resp = requests.post(f"{url}/v1/models/reacher/rollout", data=sink.getvalue().to_pybytes(), headers=ARROW)
    assert "tolerance" in _error(resp, 422, "validation")["detail"]


def test_a_huge_action_is_not_a_valid_action_index(server) -> None:
    url, _ = server
    for actions in (np.array([1.0, 1e30]), np.array([1.0, -1e30])):
        body = codec.encode_request_arrow({"states": np.zeros((2, 4)), "actions": actions}, {})
        resp = requests.post(f"{url}/v1/models/reacher/predict", data=body, headers=ARROW, timeout=60)
        detail = _error(resp, 400, "invalid_input")["detail"]
        assert "not a valid action index" in detail and "[0, 9)" in detail and "e+30" in detail, detail
        assert "9223372036854775808" not in detail
    resp = requests.post(
        f"{url}/v1/models/reacher/predict",
        data='{"states": [[0, 0, 0, 0]], "actions": [1e30]}',
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    detail = _error(resp, 422, "validation")["detail"]
    assert "actions" in detail and "valid integer" in detail and "1e+30" in detail, detail


# ---------------------------------------------------------------------- 5. error format
def _raw(request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes to the proxy; (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", PORT), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        out, rest = b"", body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size.split(b";")[0], 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2 :]
        body = out
    return int(lines[0].split()[1]), headers, body


def test_routing_and_validation_errors_are_json_over_raw_sockets(server) -> None:
    cases = [
        (b"GET %s/no/such/route HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % PREFIX.encode(), 404, "not_found"),
        (b"DELETE %s/v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % PREFIX.encode(), 405, None),
        (
            b"GET %s/v1/models/reacher?version=%%ff%%fe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            % PREFIX.encode(),
            None,
            None,
        ),
        (
            b"POST %s/v1/models/reacher/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5\r\nConnection: close\r\n\r\n{bad}" % PREFIX.encode(),
            422,
            "validation",
        ),
    ]
    for request, status, kind in cases:
        got, headers, body = _raw(request)
        assert status is None or got == status, (request, got, body[:200])
        assert headers.get("content-type", "").startswith("application/json"), (request, headers)
        err = json.loads(body)
        assert set(err) == {"error", "detail"} and (kind is None or err["error"] == kind), err


def test_malformed_chunked_encoding_is_the_proxys_plain_400_and_the_client_maps_it(server) -> None:
    """uvicorn in Serve's proxy answers a broken chunked body before the application sees it (docs/serve.md)."""
    request = (
        b"POST %s/v1/models/reacher/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n" % PREFIX.encode()
    )
    status, headers, body = _raw(request)
    assert status == 400, (status, body)
    if headers.get("content-type", "").startswith("application/json"):  # intercepted after all: must be ours
        assert set(json.loads(body)) == {"error", "detail"}
    else:
        err = _client_error(status, body)
        assert isinstance(err, ApiClientError) and err.kind == "proxy_error" and err.status == status


def test_the_client_maps_plain_text_answers_to_proxy_error() -> None:
    err = _client_error(500, b"Internal Server Error")
    assert err.kind == "proxy_error" and "Internal Server Error" in err.detail
    assert _client_error(408, b"").kind == "proxy_error"
    assert _client_error(400, b'{"error": "invalid_input", "detail": "x"}').kind == "invalid_input"
    assert _client_error(502, b'["not", "ours"]').kind == "proxy_error"


# ---------------------------------------------------------------------- 6. schema, docs, summaries
def _walk(node: object, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}/{i}")


def test_schema_examples_caps_security_and_no_min_length_on_arrays(server) -> None:
    from plray.serve.engine import DEFAULT_LIMITS

    url, _ = server
    spec = requests.get(f"{url}/openapi.json", timeout=30).json()
    comps = spec["components"]["schemas"]
    for name in ("PredictRequest", "RolloutRequest", "PlanRequest"):
        assert comps[name].get("examples"), name
    for path, node in _walk(spec):
        if "minLength" in node:
            assert node.get("type") == "string", path
    caps = {n["maxItems"] for _, n in _walk(comps) if "maxItems" in n}
    assert {DEFAULT_LIMITS.max_batch, DEFAULT_LIMITS.max_horizon, DEFAULT_LIMITS.max_rollout_steps} <= caps
    assert spec["info"]["x-plray-limits"]["max_horizon"] == DEFAULT_LIMITS.max_horizon
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert spec["paths"]["/v1/models/{model_id}/predict"]["post"]["security"] == [{"bearerAuth": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    summary = comps["ModelSummary"]["properties"]
    assert {"goal_dim", "goal_meaning", "state_low", "action_low", "cells"} <= set(summary)
    assert "null for cem" in comps["PlanResponse"]["properties"]["value"]["description"]
    plan_answers = spec["paths"]["/v1/models/{model_id}/plan"]["post"]["responses"]
    assert codec.ARROW in plan_answers["200"]["content"] and "406" in plan_answers


def test_docs_work_offline(server) -> None:
    url, _ = server
    resp = requests.get(f"{url}/docs", timeout=30)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", resp.text, re.I), "the page references a host"
    assert "<script src" not in resp.text and "<link" not in resp.text and "openapi.json" in resp.text


def test_summaries_are_typed_and_answers_reveal_no_server_paths(server, tmp_path) -> None:
    url, models_dir = server
    ids = {m["id"]: m for m in requests.get(f"{url}/v1/models", timeout=30).json()["models"]}
    fr, reacher, pets = ids["fourrooms"], ids["reacher"], ids["pets"]
    assert fr["goal_dim"] == 68 and len(fr["cells"]) == fr["num_states"] == 68 and fr["cells"][0] == [1, 1]
    assert "one_hot" in fr["goal_meaning"]
    assert reacher["goal_dim"] == 2 and len(reacher["state_low"]) == 4 and reacher["action_low"] is None
    assert len(pets["action_low"]) == 2 and len(pets["action_high"]) == 2
    assert ids["hot"]["goal_dim"] is None  # no task: nothing invented
    secret = str(tmp_path / "runs" / "agent")
    built = write_model(
        tmp_path, "pathy", None, reacher_model(0), agent=secret, world_model=secret, members=[secret, secret]
    )
    shutil.move(str(built), str(models_dir / "pathy"))
    try:
        deadline = time.time() + 30
        while (resp := requests.get(f"{url}/v1/models/pathy", timeout=30)).status_code != 200:
            assert time.time() < deadline, resp.text
            time.sleep(0.5)
        text = resp.text
        assert str(tmp_path) not in text and str(models_dir) not in text
        assert not {"agent", "world_model", "members"} & set(resp.json()["manifest"])
        assert resp.json()["manifest"]["task"] == "none"
    finally:
        shutil.rmtree(models_dir / "pathy")


def test_rollout_rewards_stop_after_termination(server) -> None:
    url, _ = server
    goal = {"kind": "region", "target": [0.0, 0.0, 0.0, 0.0], "tolerance": 100.0}  # every arrival terminates
    out = WorldModelClient(url, fmt="json").rollout(
        "reacher", np.zeros((2, 4)), np.zeros((2, 5), dtype=np.int64), goal=goal, gamma=0.5
    )
    assert out["rewards"].tolist() == [[1.0, 0, 0, 0, 0]] * 2
    assert out["terminated"].tolist() == [[True] * 5] * 2
    np.testing.assert_allclose(out["returns"], [1.0, 1.0])
    assert out["states"].shape == (2, 5, 4)  # the model keeps stepping


def test_client_from_url_reports_proxy_errors_kind(server) -> None:
    """A real plain-text answer from below the app reaches the client as proxy_error (here: a bad chunk)."""
    parts = urlsplit(server[0])
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("POST", f"{PREFIX}/v1/models/reacher/predict")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.putheader("Content-Type", "application/json")
    conn.endheaders()
    conn.send(b"not-hex\r\n{}\r\n0\r\n\r\n")
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert 400 <= resp.status < 500
    if not resp.getheader("content-type", "").startswith("application/json"):
        assert _client_error(resp.status, body).kind == "proxy_error"
