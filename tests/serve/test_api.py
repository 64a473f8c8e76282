"""Every endpoint of a real Serve deployment (started by tests/serve/conftest.py), batched and single,
in JSON and Arrow, against the same models called in-process; every kind of bad input; auth."""

from __future__ import annotations

import concurrent.futures as cf
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import requests

from plray.core.model_io import load_world_model
from plray.serve import codec, engine
from plray.serve.client import ApiClientError, WorldModelClient
from tests.serve.conftest import PORT, TOKEN, wait_healthy

pytestmark = pytest.mark.ray


def local(models_dir: Path, model_id: str, version: str):
    path = models_dir / model_id if version == "0" else models_dir / model_id / version
    return load_world_model(path)[0]


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_healthz_models_detail_and_metrics(server) -> None:
    url, models_dir = server
    health = requests.get(f"{url}/healthz", timeout=10).json()
    assert health["status"] == "ok" and str(models_dir) not in json.dumps(health)
    listing = requests.get(f"{url}/v1/models", timeout=30).json()
    ids = {m["id"]: m for m in listing["models"]}
    assert {"reacher", "pets", "mc-gauss", "fourrooms", "hot"} <= set(ids)
    assert "escape" not in ids and "checksum mismatch" in listing["unavailable"]["broken"]
    assert ids["reacher"]["version"] == "2" and ids["pets"]["num_actions"] is None and ids["pets"]["action_dim"] == 2
    detail = requests.get(f"{url}/v1/models/reacher", timeout=10).json()
    assert detail["versions"] == ["1", "2"] and detail["metrics"] == {"state": {"wm_nmse": 0.1}}
    assert detail["manifest"]["kind"] == "world-model"
    assert requests.get(f"{url}/v1/models/reacher?version=1", timeout=10).json()["metrics"]["state"]["wm_nmse"] == 0.5
    fr = requests.get(f"{url}/v1/models/fourrooms", timeout=10).json()
    assert fr["identifiability"]["rank"] == 68 and fr["identifiability"]["kernel"]["num_states"] == 68
    text = requests.get(f"{url}/metrics", timeout=10).text
    for name in ("plray_serve_requests_total", "plray_serve_request_latency_seconds", "plray_serve_model_loads_total"):
        assert name in text
    assert metric(text, 'plray_serve_model_loads_total{model="broken",outcome="error"}') >= 1


@pytest.mark.parametrize("fmt", ["json", "arrow"])
def test_predict_single_and_batched_match_in_process(server, fmt: str) -> None:
    url, models_dir = server
    client = WorldModelClient(url, fmt=fmt)
    rng = np.random.default_rng(0)
    for B in (1, 300):
        s = rng.uniform(-2, 2, size=(B, 4))
        a = rng.integers(9, size=B)
        out = client.predict("reacher", s, a)
        assert out["version"] == "2" and out["batch_size"] == B and out["model_type"] == "deterministic"
        np.testing.assert_allclose(out["next_states"], local(models_dir, "reacher", "2").predict(s, a), atol=1e-12)
        pinned = client.predict("reacher", s, a, version="1")
        np.testing.assert_allclose(pinned["next_states"], local(models_dir, "reacher", "1").predict(s, a), atol=1e-12)
        ca = rng.uniform(-1, 1, size=(B, 2))
        out = client.predict("pets", s, ca)
        np.testing.assert_allclose(out["next_states"], local(models_dir, "pets", "1").predict(s, ca), atol=1e-12)
    g = local(models_dir, "mc-gauss", "1")
    s2 = rng.uniform(-1, 0.5, size=(5, 2))
    a2 = np.array([0, 1, 2, 1, 0])
    out = client.predict("mc-gauss", s2, a2, n_samples=7, seed=3)
    np.testing.assert_allclose(out["next_states"], g.predict(s2, a2), atol=1e-12)
    np.testing.assert_allclose(out["std"], g.std(s2, a2), atol=1e-12)
    assert out["samples"].shape == (5, 7, 2)
    again = client.predict("mc-gauss", s2, a2, n_samples=7, seed=3)
    np.testing.assert_array_equal(out["samples"], again["samples"])
    assert "std" not in client.predict("mc-gauss", s2, a2, include_std=False)
    t = local(models_dir, "fourrooms", "0")
    out = client.predict("fourrooms", [[5.0], [10.0], [20.0]], [0, 1, 3])
    np.testing.assert_allclose(out["distribution"], t.distribution([[5.0], [10.0], [20.0]], [0, 1, 3]))
    assert out["next_states"].shape == (3, 1) and out["version"] == "0"


def test_concurrent_single_predicts_are_batched_on_the_replica(server) -> None:
    url, models_dir = server
    client = WorldModelClient(url, fmt="json")
    before = client.metrics()
    ref = local(models_dir, "reacher", "2")
    rng = np.random.default_rng(1)
    rows = [(rng.uniform(-2, 2, size=(1, 4)), rng.integers(9, size=1)) for _ in range(96)]

    def one(i: int) -> np.ndarray:
        s, a = rows[i]
        # POST: awaiting its body lets requests overlap on the replica. A small GET has no await
        # before its answer, so the replica runs each inline, one after another (nothing to batch).
        return client.predict("reacher", s, a, method="POST")["next_states"]

    with cf.ThreadPoolExecutor(16) as pool:
        outs = list(pool.map(one, range(len(rows))))
    for (s, a), out in zip(rows, outs, strict=True):
        np.testing.assert_allclose(out, ref.predict(s, a), atol=1e-5)  # each request got its own rows back (float32)
    after = client.metrics()
    calls = metric(after, "plray_serve_model_batch_requests_count") - metric(
        before, "plray_serve_model_batch_requests_count"
    )
    reqs = metric(after, "plray_serve_model_batch_requests_sum") - metric(
        before, "plray_serve_model_batch_requests_sum"
    )
    # a request that finds the replica idle runs inline; the concurrent rest share model calls
    assert reqs >= len(rows) // 2 and calls < reqs / 2, f"{reqs} batched requests in {calls} model calls"


@pytest.mark.parametrize("fmt", ["json", "arrow"])
def test_rollout_under_goals_matches_in_process(server, fmt: str) -> None:
    url, models_dir = server
    client = WorldModelClient(url, fmt=fmt)
    rng = np.random.default_rng(2)
    m = local(models_dir, "reacher", "2")
    s0 = rng.uniform(-1, 1, size=(20, 4))
    acts = rng.integers(9, size=(20, 6))
    goals = [
        {"kind": "unseen", "name": "target_velocity"},
        {"kind": "task", "goal": [1.0, 0.0]},
        {"kind": "region", "target": [0.5, -0.5], "dims": [2, 3], "tolerance": 0.7},
    ]
    from plray.envs.reacher import KinematicReacherTask

    task = KinematicReacherTask()
    for goal in goals:
        out = client.rollout("reacher", s0, acts, goal=goal, gamma=0.9)
        ref = engine.rollout(m, s0, acts, goal=engine.build_goal(goal, m, lambda: task), gamma=0.9)
        for key in ("states", "rewards", "terminated", "returns"):
            np.testing.assert_allclose(np.asarray(out[key], dtype=float), np.asarray(ref[key], dtype=float), atol=1e-12)
        assert out["horizon"] == 6 and out["batch_size"] == 20
    plain = client.rollout("pets", s0, rng.uniform(-1, 1, size=(20, 6, 2)))
    assert plain["states"].shape == (20, 6, 4) and "returns" not in {k for k, v in plain.items() if v is not None}
    g1 = client.rollout("mc-gauss", s0[:, :2], acts % 3, mode="sample", seed=5)
    g2 = client.rollout("mc-gauss", s0[:, :2], acts % 3, mode="sample", seed=5)
    np.testing.assert_array_equal(g1["states"], g2["states"])


def test_plan_cem_and_value_iteration(server) -> None:
    url, _ = server
    client = WorldModelClient(url)
    out = client.plan(
        "reacher", [0.0, 0.0, 0.0, 0.0], {"kind": "unseen", "name": "far_fingertip"}, population=40, elites=4
    )
    assert out["method"] == "cem" and 0 <= out["action"] < 9
    region = {"kind": "region", "target": [1.0, 1.0], "dims": [0, 1], "tolerance": 0.3}
    out = client.plan("pets", [0.0] * 4, region, population=30, elites=3, action_low=[-1, -1], action_high=[1, 1])
    assert len(out["action"]) == 2 and all(-1 <= x <= 1 for x in out["action"])
    out = client.plan(
        "fourrooms", [5.0], {"kind": "region", "target": [30.0], "tolerance": 0.5}, method="value_iteration"
    )
    assert 0 <= out["action"] < 4 and out["value"] > 0
    out = client.plan(
        "mc-gauss", [-0.5, 0.0], {"kind": "unseen", "name": "fast_car"}, method="value_iteration", resolution=12
    )
    assert 0 <= out["action"] < 3


def _arrow(arrays: dict, params: dict | None = None) -> bytes:
    return codec.encode_request_arrow(arrays, params or {})


def _strings_arrow() -> bytes:
    table = pa.table({"states": pa.array(["a", "b"]), "actions": pa.array([0, 1])})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


JS = {"Content-Type": "application/json"}
AR = {"Content-Type": codec.ARROW}
GOOD = {"states": [[0.0, 0.0, 0.0, 0.0]], "actions": [0]}
BAD_INPUTS = [
    # (name, path, body, headers, status, kind, fragment of the message)
    (
        "wrong state dim",
        "reacher/predict",
        {"states": [[0.0, 0.0]], "actions": [0]},
        JS,
        400,
        "invalid_input",
        "(B, 4)",
    ),
    (
        "wrong action dim",
        "pets/predict",
        {"states": [[0.0] * 4], "actions": [[0.0]]},
        JS,
        400,
        "invalid_input",
        "(1, 2)",
    ),
    (
        "action out of range",
        "reacher/predict",
        {"states": [[0.0] * 4], "actions": [9]},
        JS,
        400,
        "invalid_input",
        "[0, 9)",
    ),
    (
        "string in JSON",
        "reacher/predict",
        {"states": [["x", 0, 0, 0]], "actions": [0]},
        JS,
        422,
        "validation",
        "states",
    ),
    ("missing field", "reacher/predict", {"states": [[0.0] * 4]}, JS, 422, "validation", "actions"),
    ("unknown field", "reacher/predict", {**GOOD, "pickle": 1}, JS, 422, "validation", "pickle"),
    ("NaN", "reacher/predict", b'{"states": [[NaN, 0, 0, 0]], "actions": [0]}', JS, 400, "invalid_input", "NaN"),
    (
        "infinity",
        "reacher/predict",
        b'{"states": [[1e999, 0, 0, 0]], "actions": [0]}',
        JS,
        400,
        "invalid_input",
        "NaN or inf",
    ),
    ("huge", "reacher/predict", {"states": [[1e300, 0, 0, 0]], "actions": [0]}, JS, 400, "invalid_input", "float32"),
    (
        "ragged",
        "reacher/predict",
        {"states": [[0.0] * 4, [0.0]], "actions": [0, 1]},
        JS,
        400,
        "invalid_input",
        "rectangular",
    ),
    ("not JSON", "reacher/predict", b"{not json", JS, 422, "validation", "JSON"),
    ("Arrow strings", "reacher/predict", _strings_arrow(), AR, 400, "invalid_input", "not numeric"),
    ("Arrow garbage", "reacher/predict", b"\x00" * 64, AR, 400, "invalid_input", "Arrow"),
    (
        "Arrow NaN",
        "reacher/predict",
        _arrow({"states": np.full((2, 4), np.nan), "actions": np.zeros(2, dtype=np.int64)}),
        AR,
        400,
        "invalid_input",
        "NaN",
    ),
    (
        "Arrow missing column",
        "reacher/predict",
        _arrow({"states": np.zeros((2, 4))}),
        AR,
        400,
        "invalid_input",
        "missing",
    ),
    (
        "Arrow bad params",
        "reacher/predict",
        _arrow({"states": np.zeros((1, 4)), "actions": np.zeros(1, dtype=np.int64)}, {"n_samples": -1}),
        AR,
        422,
        "validation",
        "n_samples",
    ),
    (
        "batch over cap",
        "reacher/predict",
        _arrow({"states": np.zeros((100_001, 4)), "actions": np.zeros(100_001, dtype=np.int64)}),
        AR,
        413,
        "payload_too_large",
        "100,001",
    ),
    ("body over cap", "reacher/predict", b"{" + b" " * (5 << 20) + b"}", JS, 413, "payload_too_large", "cap"),
    (
        "rollout over cap",
        "reacher/rollout",
        _arrow({"states": np.zeros((2000, 4)), "actions": np.zeros((2000, 101), dtype=np.int64)}),
        AR,
        413,
        "payload_too_large",
        "B·H",
    ),
    (
        "samples over cap",
        "mc-gauss/predict",
        {"states": [[0.0, 0.0]] * 50_000, "actions": [0] * 50_000, "n_samples": 1000},
        JS,
        413,
        "payload_too_large",
        "samples",
    ),
    (
        "unsupported type",
        "reacher/predict",
        json.dumps(GOOD).encode(),
        {"Content-Type": "application/x-python-pickle"},
        415,
        "unsupported_media_type",
        "pickle",
    ),
    ("unacceptable", "reacher/predict", GOOD, {**JS, "Accept": "text/html"}, 406, "not_acceptable", "text/html"),
    ("unknown model", "nope/predict", GOOD, JS, 404, "not_found", "'nope'"),
    ("unknown version", "reacher/predict", {**GOOD, "version": "9"}, JS, 404, "not_found", "versions: 1, 2"),
    ("broken model", "broken/predict", GOOD, JS, 503, "model_unavailable", "checksum"),
    ("dotted id", ".hidden/predict", GOOD, JS, 400, "invalid_model_id", "safe name"),
    ("dot-dot id", "a..b/predict", GOOD, JS, 400, "invalid_model_id", "safe name"),
    ("encoded traversal", "%2e%2e/predict", GOOD, JS, 400, "invalid_model_id", "safe name"),
    ("symlink escape", "escape/predict", GOOD, JS, 400, "invalid_model_id", "outside the models directory"),
    (
        "unknown goal",
        "reacher/rollout",
        {"states": [[0.0] * 4], "actions": [[0]], "goal": {"kind": "unseen", "name": "x"}},
        JS,
        400,
        "invalid_input",
        "unknown unseen goal",
    ),
    (
        "goal without task",
        "hot/rollout",
        {"states": [[0.0] * 4], "actions": [[0]], "goal": {"kind": "task", "goal": [1.0]}},
        JS,
        400,
        "invalid_input",
        "no usable task",
    ),
    (
        "wrong goal shape",
        "reacher/rollout",
        {"states": [[0.0] * 4], "actions": [[0]], "goal": {"kind": "task", "goal": [1.0]}},
        JS,
        400,
        "invalid_input",
        "goals of shape (2,)",
    ),
    (
        "bad tabular state",
        "fourrooms/predict",
        {"states": [[0.5]], "actions": [0]},
        JS,
        400,
        "invalid_input",
        "indices",
    ),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_are_4xx_with_a_message(server, case) -> None:
    url, _ = server
    _, path, body, headers, status, kind, fragment = case
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = requests.post(f"{url}/v1/models/{path}", data=data, headers=headers, timeout=60)
    assert resp.status_code == status, resp.text
    err = resp.json()
    assert err["error"] == kind and fragment in err["detail"], err


@pytest.mark.parametrize(
    "path", ["/v1/models/..%2F..%2Fetc%2Fpasswd", "/v1/models/../../etc/passwd/predict", "/v1/models/%2Fetc"]
)
def test_traversal_paths_never_reach_the_filesystem(server, path: str) -> None:
    url, _ = server
    resp = requests.get(f"{url}{path}", timeout=10)
    assert 400 <= resp.status_code < 500
    assert "root:" not in resp.text
    assert resp.json()["error"] in ("not_found", "invalid_model_id", "method_not_allowed")


def test_client_raises_with_the_servers_message(server) -> None:
    url, _ = server
    with pytest.raises(ApiClientError) as err:
        WorldModelClient(url).predict("reacher", np.zeros((1, 3)), [0])
    assert err.value.status == 400 and "(B, 4)" in err.value.detail


def test_bearer_token_auth(ray_local, server, models_dir: Path) -> None:
    """A second application with a token: /v1 and /metrics need it, /healthz does not."""
    from ray import serve

    from plray.serve.app import build_app

    app = build_app(
        {
            "models": str(models_dir),
            "reload_interval_s": 0,
            "auth_token_env": "PLRAY_TEST_TOKEN",
            "deployment": {
                "num_replicas": 1,
                "ray_actor_options": {"num_cpus": 0, "runtime_env": {"env_vars": {"PLRAY_TEST_TOKEN": TOKEN}}},
            },
        }
    )
    serve.run(app, name="plray-auth", route_prefix="/plray-auth", blocking=False)
    url = f"http://127.0.0.1:{PORT}/plray-auth"
    try:
        wait_healthy(url)
        assert requests.get(f"{url}/v1/models", timeout=10).status_code == 401
        wrong = requests.get(f"{url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
        assert wrong.headers.get("www-authenticate") == "Bearer"
        client = WorldModelClient(url, token=TOKEN)
        assert client.predict("reacher", np.zeros((1, 4)), [0])["next_states"].shape == (1, 4)
        assert "plray_serve_requests_total" in client.metrics()
    finally:
        serve.delete("plray-auth")
