"""The in-cluster paths answer what HTTP answers: the DeploymentHandle client and the gRPC service.

* :class:`~plray.serve.handle.WorldModelHandle` against the world-model deployment (the session's
  ``plray-test`` application when ``WorldModelServer`` has the handle methods, else the same
  deployment built with them by :func:`~plray.serve.app.build_app`);
* the gRPC deployment's RPC methods on the session's Serve, called through a handle (Serve's gRPC
  proxy needs ``grpc_options`` at the first ``serve.start``, which the session fixture made without);
* Serve's gRPC proxy end to end in a subprocess with its own Ray (slow).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from plray.serve.client import ApiClientError, WorldModelClient
from plray.serve.registry import ModelRegistry

pytestmark = pytest.mark.ray

REGION = {"kind": "region", "target": [0.5, 0.5], "dims": [0, 1], "tolerance": 0.3}
CASES = {
    "reacher": (np.array([[0.1, -0.2, 0.0, 0.0], [1.0, 0.5, 0.1, -0.1]]), np.array([3, 8])),
    "pets": (np.array([[0.1, -0.2, 0.0, 0.0]]), np.array([[0.5, -0.5]])),
    "mc-gauss": (np.array([[-0.5, 0.0], [0.1, 0.01]]), np.array([0, 2])),
    "fourrooms": (np.array([[0.0], [5.0]]), np.array([1, 3])),
}
ARRAYS = ("next_states", "std", "distribution")


def _free_port() -> int:
    """A port free on every interface (the gRPC proxy binds [::], dual-stack), else on loopback."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::", 0))
            return int(s.getsockname()[1])
    except OSError:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def handle_app(server) -> Iterator[str]:
    """Name of a Serve application whose world-model deployment has the handle methods."""
    from ray import serve

    from plray.serve.app import WorldModelServer, build_app

    if hasattr(WorldModelServer.func_or_class, "handle_predict"):
        yield "plray-test"
        return
    _, models_dir = server
    settings = {
        "models": str(models_dir),
        "reload_interval_s": 0.5,
        "deployment": {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0}},
    }
    serve.run(build_app(settings), name="plray-handle-test", route_prefix=None, blocking=False)
    serve.get_app_handle("plray-handle-test")
    yield "plray-handle-test"
    serve.delete("plray-handle-test")


@pytest.fixture(scope="module")
def grpc_handle(server):
    """A handle to the gRPC deployment (``plray.serve.grpc_app:build_grpc_app``) on the session's Serve."""
    from ray import serve

    from plray.serve.grpc_app import build_grpc_app

    _, models_dir = server
    args = {
        "models": str(models_dir),
        "reload_interval_s": 0,
        "deployment": {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0}},
    }
    serve.run(build_grpc_app(args), name="plray-grpc-test", route_prefix="/plray-grpc-test", blocking=False)
    yield serve.get_app_handle("plray-grpc-test")
    serve.delete("plray-grpc-test")


def _same(a: dict, b: dict) -> None:
    for key in ARRAYS:
        assert (key in a) == (key in b), key
        if key in a:
            np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("model_id", sorted(CASES))
def test_handle_predict_equals_http(server, handle_app: str, model_id: str) -> None:
    from plray.serve.handle import WorldModelHandle

    url, _ = server
    states, actions = CASES[model_id]
    http = WorldModelClient(url, fmt="json").predict(model_id, states, actions)
    out = WorldModelHandle(handle_app).predict(model_id, states, actions)
    _same(http, out)
    assert (out["model"], out["version"], out["batch_size"]) == (http["model"], http["version"], http["batch_size"])


def test_handle_rollout_models_and_refusals_equal_http(server, handle_app: str) -> None:
    from plray.serve.handle import WorldModelHandle

    url, _ = server
    http, wm = WorldModelClient(url, fmt="arrow"), WorldModelHandle(handle_app)
    s, a = CASES["reacher"][0], np.array([[3, 3, 8, 0], [0, 1, 2, 4]])
    ref = http.rollout("reacher", s, a, goal=REGION, gamma=0.9)
    out = wm.rollout("reacher", s, a, goal=REGION, gamma=0.9)
    for key in ("states", "rewards", "terminated", "returns"):
        np.testing.assert_allclose(np.asarray(out[key], float), np.asarray(ref[key], float), err_msg=key)
    assert sorted(m["id"] for m in wm.models()) == sorted(m["id"] for m in http.models())
    sampled = wm.predict("mc-gauss", *CASES["mc-gauss"], n_samples=3, seed=7)
    np.testing.assert_allclose(
        sampled["samples"], http.predict("mc-gauss", *CASES["mc-gauss"], n_samples=3, seed=7)["samples"]
    )
    for args in (("nope", s, [3, 8]), ("reacher", s, [3, 99]), ("broken", s, [3, 8])):
        with pytest.raises(ApiClientError) as want:
            http.predict(*args)
        with pytest.raises(ApiClientError) as got:
            wm.predict(*args)
        assert (got.value.status, got.value.kind) == (want.value.status, want.value.kind)


@pytest.mark.parametrize("model_id", sorted(CASES))
def test_grpc_deployment_predict_equals_http(server, grpc_handle, model_id: str) -> None:
    from plray.serve.grpc import world_model_pb2 as pb
    from plray.serve.grpc_app import from_array, to_array

    url, _ = server
    states, actions = CASES[model_id]
    http = WorldModelClient(url, fmt="arrow").predict(model_id, states, actions)
    req = pb.PredictRequest(model_id=model_id, states=to_array(states), actions=to_array(actions))
    reply = grpc_handle.Predict.remote(req).result(timeout_s=60)
    out = {k: from_array(getattr(reply, k), k) for k in ARRAYS if len(getattr(reply, k).shape)}
    _same(http, out)
    assert (reply.model, reply.version) == (http["model"], http["version"])


def test_grpc_deployment_rollout_equals_http(server, grpc_handle) -> None:
    from plray.serve.grpc import world_model_pb2 as pb
    from plray.serve.grpc_app import from_array, to_array

    url, _ = server
    s, a = CASES["reacher"][0], np.array([[3, 3, 8, 0], [0, 1, 2, 4]])
    ref = WorldModelClient(url, fmt="json").rollout("reacher", s, a, goal=REGION, gamma=0.9)
    req = pb.RolloutRequest(model_id="reacher", states=to_array(s), actions=to_array(a), goal_json=json.dumps(REGION))
    req.gamma = 0.9
    reply = grpc_handle.Rollout.remote(req).result(timeout_s=60)
    np.testing.assert_allclose(from_array(reply.states, "states"), ref["states"])
    np.testing.assert_allclose(from_array(reply.returns, "returns"), ref["returns"])
    assert list(reply.terminated.data) == np.asarray(ref["terminated"]).ravel().tolist()


GRPC_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import numpy as np, ray
    from ray import serve
    from plray.serve.client import ApiClientError
    from plray.serve.grpc_app import WorldModelGrpcClient, build_grpc_app, grpc_options

    models, http_port, grpc_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": http_port}, grpc_options=grpc_options(grpc_port))
    args = {"models": models, "reload_interval_s": 0, "deployment": {"ray_actor_options": {"num_cpus": 0}}}
    serve.run(build_grpc_app(args), name="plray-grpc", route_prefix="/plray-grpc", blocking=False)
    client = WorldModelGrpcClient(f"127.0.0.1:{grpc_port}", app_name="plray-grpc")
    cases = json.loads(sys.argv[4])
    out = {m: {k: np.asarray(v).tolist() for k, v in client.predict(m, *c).items()} for m, c in cases.items()}
    try:
        client.predict("nope", *cases["reacher"])
    except ApiClientError as exc:
        out["refusal"] = [exc.status, exc.kind]
    r = client.rollout("reacher", cases["reacher"][0], [[3, 3], [8, 0]], goal=json.loads(sys.argv[5]), gamma=0.9)
    out["rollout_returns"] = r["returns"].tolist()
    print("RESULT " + json.dumps(out), flush=True)
    serve.shutdown()
    ray.shutdown()
    """
)


@pytest.mark.slow
def test_grpc_proxy_end_to_end_equals_in_process(models_dir: Path) -> None:
    """Serve's gRPC proxy (own Ray in a subprocess) answers the in-process model's predictions."""
    from plray.serve import engine

    cases = {m: [c[0].tolist(), c[1].tolist()] for m, c in CASES.items()}
    for _attempt in range(3):  # a port found free can be taken before the proxy binds it: try others
        ports = [str(_free_port()), str(_free_port())]
        cmd = [sys.executable, "-c", GRPC_SCRIPT, str(models_dir), *ports, json.dumps(cases), json.dumps(REGION)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if lines or "Failed to bind" not in proc.stderr:
            break
    assert lines, proc.stdout[-2000:] + proc.stderr[-4000:]
    got = json.loads(lines[-1][len("RESULT ") :])
    registry = ModelRegistry(models_dir)
    for model_id, (states, actions) in CASES.items():
        entry = registry.get(model_id)
        s, a = engine.check_batch(entry.model, states, actions)
        ref = engine.predict(entry.model, s, a)
        _same(ref, {k: np.asarray(v) for k, v in got[model_id].items() if k in ARRAYS})
    assert got["refusal"] == [404, "not_found"]
    assert len(got["rollout_returns"]) == 2
