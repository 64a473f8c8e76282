"""Benchmark of the world-model API on Ray Serve: the hop's floor, every path's latency, cost caps, faults.

    python bench/serve.py            # full
    python bench/serve.py --quick    # fewer repeats, short load and kill runs (about 3 minutes)

Starts a local Ray (2 CPUs, no dashboard, auth off), Serve's HTTP proxy on --port and its gRPC
proxy on --grpc-port, and deploys over a temporary models directory (the paper's architecture,
2 x 256 tanh, residual: ``reacher``, d = 4 with 9 actions; ``pets``, d = 4 with 2-D actions):

* ``floor``: a bare deployment returning a constant through the same HTTP proxy (the hop's floor);
* ``plray-bench``: the application with default limits, one replica, with the handle methods;
* ``plray-grpc``: the gRPC application (``plray.serve.grpc_app``).

Measures, in one run:

1. latency (p50 / p99), the paths interleaved request by request so each sees the same machine:
   the floor, ``/healthz``, single-transition predict in JSON and Arrow (the HTTP client), the
   DeploymentHandle client and the gRPC client;
2. ``slowest_admitted_s``: wall-clock of the most expensive requests the default limits admit
   (a rollout of B·H = max_rollout_steps at H = max_horizon, a CEM plan of max_plan_rows rows,
   grid value iteration of about max_grid_rows nodes·actions);
3. ``replica_kill``: a two-replica application under client threads, one replica SIGKILLed;
4. throughput of 1,024 / 65,536-row predicts and a PETS-size rollout next to in-process
   ``engine`` calls, and a mixed load test.

Results: bench/results/serve.json and serve.md, with the 1-minute load average at start and end
(other jobs share the cores; the figures of one run are comparable with each other).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, write_results
from plray.core.neural import NeuralPConfig, SuccessorNetwork
from plray.core.worldmodel import NeuralWorldModel, save_world_model
from plray.serve import engine
from plray.serve.client import ApiClientError, WorldModelClient

PETS = {"population": 350, "particles": 20, "horizon": 15, "iterations": 5}
GOAL = {"kind": "unseen", "name": "far_fingertip"}
REGION = {"kind": "region", "target": [1.0, 1.0], "dims": [0, 1], "tolerance": 0.2}
VI_GOAL = {"kind": "region", "target": [1.0, 1.0], "dims": [0, 1], "tolerance": 0.6}


def make_models(root: Path) -> dict[str, NeuralWorldModel]:
    """The two benchmark models (the paper's architecture, random weights), saved under ``root``."""
    torch.manual_seed(0)
    cfg = NeuralPConfig()  # 2 x 256 tanh, residual
    models = {
        "reacher": NeuralWorldModel(SuccessorNetwork(4, 9, angle_dims=(0, 1), config=cfg), cfg),
        "pets": NeuralWorldModel(SuccessorNetwork(4, None, action_dim=2, angle_dims=(0, 1), config=cfg), cfg),
    }
    save_world_model(root / "reacher" / "1", models["reacher"], {"task": "reacher", "method": "bench"})
    save_world_model(root / "pets" / "1", models["pets"], {"task": "mujoco-reacher", "method": "bench"})
    return models


def pct(xs: list[float], q: float) -> float:
    """The q-th percentile of ``xs``."""
    return float(np.percentile(np.asarray(xs), q))


def summary_ms(times: list[float]) -> dict[str, float]:
    """p50 / p99 / mean in milliseconds of durations in seconds."""
    return {
        "p50_ms": 1e3 * pct(times, 50),
        "p99_ms": 1e3 * pct(times, 99),
        "mean_ms": 1e3 * statistics.mean(times),
        "n": len(times),
    }


# ---------------------------------------------------------------------- deployments
def floor_app() -> Any:
    """A bare Serve deployment answering a constant JSON body: the HTTP proxy hop and nothing else."""
    from ray import serve
    from starlette.responses import Response

    body = b'{"status":"ok"}'

    @serve.deployment(name="Floor", max_ongoing_requests=64, logging_config={"enable_access_log": False})
    class Floor:
        """Returns the same bytes for every request."""

        async def __call__(self, request: Any) -> Response:
            return Response(body, media_type="application/json")

    return Floor.options(ray_actor_options={"num_cpus": 0}).bind()


def floor_post_app() -> Any:
    """A bare deployment that reads a POST body and answers a constant: the floor of any POST route.

    Serve's HTTP proxy hands a request body to the replica through a second call (the replica pulls
    it from the proxy), so a POST that reads its body costs more than a GET that does not.
    """
    from ray import serve
    from starlette.responses import Response

    body = b'{"status":"ok"}'

    @serve.deployment(name="FloorPost", max_ongoing_requests=64, logging_config={"enable_access_log": False})
    class FloorPost:
        """Reads the body, returns the same bytes for every request."""

        async def __call__(self, request: Any) -> Response:
            await request.body()
            return Response(body, media_type="application/json")

    return FloorPost.options(ray_actor_options={"num_cpus": 0}).bind()


def floor_grpc_app() -> Any:
    """A bare gRPC deployment answering every ``Predict`` with the same one-row reply: the gRPC hop's floor."""
    from ray import serve

    from plray.serve.grpc import world_model_pb2 as pb
    from plray.serve.grpc_app import to_array

    reply = pb.PredictReply(
        model="reacher", version="floor", model_type="neural", batch_size=1, next_states=to_array(np.zeros((1, 4)))
    )

    @serve.deployment(name="FloorGrpc", max_ongoing_requests=64, logging_config={"enable_access_log": False})
    class FloorGrpc:
        """Returns the same reply for every request."""

        async def Predict(self, request: Any, grpc_context: Any = None) -> Any:  # the proto's method name
            return reply

    return FloorGrpc.options(ray_actor_options={"num_cpus": 0}).bind()


def deploy(root: Path, port: int, grpc_port: int) -> dict[str, Any]:
    """Start Serve (HTTP and gRPC proxies) and deploy the floor, the API and the gRPC app; seconds each."""
    from ray import serve

    from plray.serve.app import build_app
    from plray.serve.grpc_app import build_grpc_app, grpc_options

    serve.start(http_options={"host": "127.0.0.1", "port": port}, grpc_options=grpc_options(grpc_port))
    one = {"num_replicas": 1, "max_ongoing_requests": 64, "ray_actor_options": {"num_cpus": 0}}
    settings = {"models": str(root), "reload_interval_s": 0, "deployment": one}
    seconds = {}
    for name, app, prefix in (
        ("floor", floor_app(), "/floor"),
        ("floor-post", floor_post_app(), "/floor-post"),
        ("plray-bench", build_app(settings), "/bench"),
        ("plray-grpc", build_grpc_app(settings), "/plray-grpc"),
        ("floor-grpc", floor_grpc_app(), "/floor-grpc"),
    ):
        t = time.perf_counter()
        serve.run(app, name=name, route_prefix=prefix, blocking=False)
        seconds[name] = time.perf_counter() - t
    return seconds


# ---------------------------------------------------------------------- latency
def interleaved(fns: dict[str, Callable[[], Any]], n: int, warmup: int = 20) -> dict[str, dict[str, float]]:
    """Latency of each call, the calls taken in turn ``n`` times (each sees the same machine state)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(n):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {k: summary_ms(v) for k, v in times.items()}


def latency_paths(url: str, port: int, grpc_port: int, n: int) -> dict[str, dict[str, float]]:
    """floor (GET), floor_post (POST reading a body), healthz, predict JSON / Arrow, handle and gRPC predict."""
    from plray.serve.grpc_app import WorldModelGrpcClient
    from plray.serve.handle import WorldModelHandle

    s, a = np.zeros((1, 4)), np.array([3])
    floor = WorldModelClient(f"http://127.0.0.1:{port}/floor", fmt="json")
    json_c, arrow_c = WorldModelClient(url, fmt="json"), WorldModelClient(url, fmt="arrow")
    handle = WorldModelHandle("plray-bench")
    grpc_c = WorldModelGrpcClient(f"127.0.0.1:{grpc_port}", app_name="plray-grpc")
    floor_grpc = WorldModelGrpcClient(f"127.0.0.1:{grpc_port}", app_name="floor-grpc")
    ref = json_c.predict("reacher", s, a)["next_states"]
    post = lambda *x: json_c.predict(*x, method="POST")  # noqa: E731
    for other in (post, arrow_c.predict, handle.predict, grpc_c.predict):  # every path answers the same
        np.testing.assert_allclose(other("reacher", s, a)["next_states"], ref, rtol=1e-12)

    floor_post = WorldModelClient(f"http://127.0.0.1:{port}/floor-post", fmt="json")
    body = json.dumps({"states": s.tolist(), "actions": a.tolist()}).encode()

    def get_floor() -> None:
        status, _, _ = floor.request("GET", "/")
        assert status == 200

    def post_floor() -> None:
        status, _, _ = floor_post.request("POST", "/", body, "application/json")
        assert status == 200

    fns = {
        "floor": get_floor,
        "floor_post": post_floor,
        "healthz": json_c.healthz,
        "json": lambda: json_c.predict("reacher", s, a),  # the client's choice: GET, the query string
        "json_post": lambda: json_c.predict("reacher", s, a, method="POST"),
        "arrow": lambda: arrow_c.predict("reacher", s, a),
        "handle": lambda: handle.predict("reacher", s, a),
        "grpc": lambda: grpc_c.predict("reacher", s, a),
        "floor_grpc": lambda: floor_grpc.predict("reacher", s, a),  # the same client, a constant reply
    }
    out = interleaved(fns, n)
    grpc_c.close()
    floor_grpc.close()
    return out


def in_process_single(model: NeuralWorldModel, n: int) -> dict[str, float]:
    """The replica's own work for one transition (check_batch + predict), in this process."""
    s, a = np.zeros((1, 4)), np.array([3])
    times = []
    for _ in range(n):
        t = time.perf_counter()
        st, ac = engine.check_batch(model, s, a)
        engine.predict(model, st, ac)
        times.append(time.perf_counter() - t)
    return summary_ms(times)


# ---------------------------------------------------------------------- cost caps
def _timed_call(fn: Callable[[], Any]) -> dict[str, Any]:
    t = time.perf_counter()
    try:
        fn()
        status: Any = 200
    except ApiClientError as exc:
        status = f"{exc.status} {exc.kind}"
    return {"seconds": time.perf_counter() - t, "status": status}


def slowest_admitted(url: str) -> dict[str, Any]:
    """The most expensive requests the default limits admit, each timed once (Arrow, no retries)."""
    lim = engine.DEFAULT_LIMITS
    client = WorldModelClient(url, fmt="arrow", retries=0, timeout=600)
    rng = np.random.default_rng(0)
    H = lim.max_horizon
    B = lim.max_rollout_steps // H
    s0, acts = rng.uniform(-1, 1, (B, 4)), rng.integers(9, size=(B, H))
    pop, iters = 10_000, 5
    horizon = min(200, lim.max_plan_rows // (pop * iters))
    res = int((lim.max_grid_rows / 9) ** 0.25)
    cases: dict[str, Any] = {
        "rollout": {"B": B, "H": H, **_timed_call(lambda: client.rollout("reacher", s0, acts, goal=GOAL))},
        "plan_cem": {
            "rows": pop * horizon * iters,
            **_timed_call(
                lambda: client.plan(
                    "reacher",
                    np.zeros(4),
                    GOAL,
                    method="cem",
                    population=pop,
                    elites=100,
                    horizon=horizon,
                    iterations=iters,
                )  # fmt: skip
            ),
        },
        "plan_value_iteration": {
            "resolution": res,
            "grid_rows": res**4 * 9,
            **_timed_call(lambda: client.plan("reacher", np.zeros(4), GOAL, method="value_iteration", resolution=res)),
        },
    }
    cases["limits"] = {
        k: getattr(lim, k) for k in ("max_rollout_steps", "max_horizon", "max_plan_rows", "max_grid_rows")
    }
    return cases


# ---------------------------------------------------------------------- replica kill
def replica_kill(root: Path, port: int, seconds: float, threads: int = 4) -> dict[str, Any]:
    """Two replicas under client threads; SIGKILL one a third of the way in; count failed calls."""
    from ray import serve

    from plray.serve.app import build_app
    from plray.serve.handle import replica_pids

    two = {"num_replicas": 2, "max_ongoing_requests": 64, "ray_actor_options": {"num_cpus": 0}}
    serve.run(
        build_app({"models": str(root), "reload_interval_s": 0, "deployment": two}),
        name="plray-kill", route_prefix="/kill", blocking=False,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/kill"
    pids = replica_pids("plray-kill")
    stop, lock = threading.Event(), threading.Lock()
    stats: dict[str, Any] = {"calls": 0, "failures": 0, "errors": []}
    s, a = np.zeros((4, 4)), np.array([0, 3, 5, 8])

    def worker(i: int) -> None:
        client = WorldModelClient(url, fmt="arrow" if i % 2 else "json")
        while not stop.is_set():
            try:
                client.predict("reacher", s, a)
                ok, err = True, ""
            except Exception as exc:  # every failure counts
                ok, err = False, f"{type(exc).__name__}: {exc}"[:200]
            with lock:
                stats["calls"] += 1
                if not ok:
                    stats["failures"] += 1
                    stats["errors"].append(err)

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    time.sleep(seconds / 3)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)  # a replica of this benchmark's own Ray
    time.sleep(2 * seconds / 3)
    stop.set()
    for t in pool:
        t.join(timeout=120)
    serve.delete("plray-kill")
    stats["errors"] = stats["errors"][:5]
    return {**stats, "replicas": len(pids), "killed_pid": victim, "seconds": seconds, "threads": threads}


# ---------------------------------------------------------------------- throughput, PETS, load
def throughput(fn: Callable[[], Any], rows: int, repeats: int) -> dict[str, float]:
    """Median seconds of ``fn`` and the transitions per second it makes of ``rows``."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"seconds_median": med, "transitions_per_s": rows / med, "repeats": repeats}


def predict_throughput(clients: dict[str, WorldModelClient], model: NeuralWorldModel, quick: bool) -> list[Any]:
    """Batches of 1,024 and 65,536 rows through the API next to in-process check_batch + predict."""
    rng = np.random.default_rng(0)
    rows_out = []
    for rows in (1024, 65536):
        s, a = rng.uniform(-2, 2, (rows, 4)), rng.integers(9, size=rows)
        reps = (5 if rows == 1024 else 2) if quick else (30 if rows == 1024 else 8)

        def in_process(s: np.ndarray = s, a: np.ndarray = a) -> None:
            st, ac = engine.check_batch(model, s, a)
            engine.predict(model, st, ac)

        ref = throughput(in_process, rows, reps)
        row: dict[str, Any] = {"rows": rows, "in_process": ref}
        for fmt, c in clients.items():
            res = throughput(lambda c=c, s=s, a=a: c.predict("reacher", s, a), rows, reps)
            res["ratio_to_in_process"] = res["transitions_per_s"] / ref["transitions_per_s"]
            row[fmt] = res
        rows_out.append(row)
        print("throughput:", rows, {k: v for k, v in row.items() if k != "rows"}, flush=True)
    return rows_out


def pets_rollout(clients: dict[str, WorldModelClient], model: NeuralWorldModel, quick: bool) -> dict[str, Any]:
    """A PETS-size rollout (350 x 20 sequences x 15 steps, 2-D actions) through the API and in-process."""
    rng = np.random.default_rng(0)
    B, H = PETS["population"] * PETS["particles"], PETS["horizon"]
    s0, acts = rng.uniform(-1, 1, (B, 4)), rng.uniform(-1, 1, (B, H, 2))
    egoal = engine.build_goal(REGION, model, lambda: None)

    def rollout_in_process() -> None:
        st, ac = engine.check_batch(model, s0, acts, steps=True)
        engine.rollout(model, st, ac, goal=egoal)

    reps = 2 if quick else 5
    ref = throughput(rollout_in_process, B * H, reps)
    pets: dict[str, Any] = {"B": B, "H": H, "action_dim": 2, "in_process": ref}
    for fmt, c in clients.items():
        res = throughput(lambda c=c: c.rollout("pets", s0, acts, goal=REGION), B * H, reps)
        res["ratio_to_in_process"] = res["transitions_per_s"] / ref["transitions_per_s"]
        pets[fmt] = res
    t = time.perf_counter()
    for _ in range(PETS["iterations"]):
        clients["arrow"].rollout("pets", s0, acts, goal=REGION)
    pets["control_step_seconds_arrow"] = time.perf_counter() - t
    pets["control_step_seconds_in_process"] = PETS["iterations"] * ref["seconds_median"]
    return pets


def load_test(url: str, seconds: float, threads: int) -> dict[str, Any]:
    """Concurrent clients for ``seconds``: a mix of single predicts, 1,024-row batches and rollouts."""
    stop = time.perf_counter() + seconds
    lock = threading.Lock()
    stats: dict[str, Any] = {"requests": 0, "errors": 0, "errors_by_status": {}, "latencies": []}
    rng = np.random.default_rng(0)
    big_s, big_a = rng.uniform(-2, 2, (1024, 4)), rng.integers(9, size=1024)
    ro_s, ro_a = rng.uniform(-2, 2, (64, 4)), rng.integers(9, size=(64, 15))

    def worker(i: int) -> None:
        client = WorldModelClient(url, fmt="json" if i % 2 else "arrow")
        k = 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                if k % 10 == 9:
                    client.rollout("reacher", ro_s, ro_a, goal=GOAL)
                elif k % 10 == 8:
                    client.predict("reacher", big_s, big_a)
                else:
                    client.predict("reacher", big_s[k % 1024 : k % 1024 + 1], big_a[k % 1024 : k % 1024 + 1])
                ok, status = True, 200
            except ApiClientError as exc:
                ok, status = False, exc.status
            except OSError as exc:
                ok, status = False, type(exc).__name__
            dt = time.perf_counter() - t
            with lock:
                stats["requests"] += 1
                stats["latencies"].append(dt)
                if not ok:
                    stats["errors"] += 1
                    stats["errors_by_status"][str(status)] = stats["errors_by_status"].get(str(status), 0) + 1
            k += 1

    start = time.perf_counter()
    with cf.ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    wall = time.perf_counter() - start
    lat = stats.pop("latencies")
    return {**stats, "seconds": wall, "threads": threads, "requests_per_s": stats["requests"] / wall,
            "p50_ms": 1e3 * pct(lat, 50), "p99_ms": 1e3 * pct(lat, 99)}  # fmt: skip


# ---------------------------------------------------------------------- main
def measure(args: argparse.Namespace, root: Path, models: dict[str, NeuralWorldModel]) -> dict[str, Any]:
    """Every figure of the benchmark, on a running Ray."""
    quick = args.quick
    results: dict[str, Any] = {"deploy_seconds": deploy(root, args.port, args.grpc_port)}
    url = f"http://127.0.0.1:{args.port}/bench"
    clients = {fmt: WorldModelClient(url, fmt=fmt) for fmt in ("json", "arrow")}
    paths = latency_paths(url, args.port, args.grpc_port, 300 if quick else 1000)
    results["floor"] = paths.pop("floor")
    results["floor_post"] = paths.pop("floor_post")
    results["healthz"] = paths.pop("healthz")
    results["single_predict"] = {k: paths.pop(k) for k in ("json", "json_post", "arrow")}
    results["handle"] = paths.pop("handle")
    results["grpc"] = paths.pop("grpc")
    results["floor_grpc"] = paths.pop("floor_grpc")
    results["single_predict_in_process"] = in_process_single(models["reacher"], 300 if quick else 1000)
    print({k: results[k] for k in ("floor", "floor_post", "healthz", "single_predict", "handle", "grpc")}, flush=True)
    cases = slowest_admitted(url)
    results["slowest_admitted"] = cases
    results["slowest_admitted_s"] = max(v["seconds"] for k, v in cases.items() if k != "limits")
    print("slowest admitted:", cases, flush=True)
    results["replica_kill"] = replica_kill(root, args.port, 6.0 if quick else 20.0)
    print("replica kill:", results["replica_kill"], flush=True)
    results["throughput"] = predict_throughput(clients, models["reacher"], quick)
    results["pets_rollout"] = pets_rollout(clients, models["pets"], quick)
    print("pets rollout:", results["pets_rollout"], flush=True)
    load_seconds = args.load_seconds if args.load_seconds is not None else (5.0 if quick else 60.0)
    results["load"] = load_test(url, load_seconds, args.threads)
    print("load:", results["load"], flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write bench/results/serve.json and serve.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, short load and kill runs")
    parser.add_argument("--port", type=int, default=18300)
    parser.add_argument("--grpc-port", type=int, default=18301)
    parser.add_argument("--load-seconds", type=float, default=None)
    parser.add_argument("--threads", type=int, default=8, help="load-test client threads")
    args = parser.parse_args(argv)

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import serve

    torch.set_num_threads(1)  # what a replica gets (Ray sets OMP_NUM_THREADS=1 in workers)
    root = Path(tempfile.mkdtemp(prefix="plray-bench-models-"))
    models = make_models(root)
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick, "load_average_start": os.getloadavg()}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results.update(measure(args, root, models))
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    results["load_average_end"] = os.getloadavg()
    results["wall_seconds"] = time.perf_counter() - started
    write_results("serve", results, markdown(results))
    print("wrote bench/results/serve.json and serve.md")
    return 0


# ---------------------------------------------------------------------- report
def _latency_md(r: dict[str, Any]) -> list[str]:
    floor = r["floor"]["p50_ms"]
    rows = [("floor (bare deployment, GET, constant)", r["floor"])]
    rows += [("floor_post (bare deployment, POST reading the body)", r["floor_post"]), ("GET /healthz", r["healthz"])]
    names = {"json": "JSON, GET (query string)", "json_post": "JSON, POST body", "arrow": "Arrow, POST body"}
    rows += [(f"predict, HTTP {names.get(fmt, fmt)}", v) for fmt, v in r["single_predict"].items()]
    rows += [("predict, DeploymentHandle", r["handle"]), ("predict, gRPC proxy", r["grpc"])]
    if "floor_grpc" in r:
        rows += [("floor_grpc (bare gRPC deployment, constant reply, same client)", r["floor_grpc"])]
    rows += [("predict, in-process (check_batch + predict)", r["single_predict_in_process"])]
    lines = [
        "## Latency of one transition (sequential requests, the paths interleaved)",
        "",
        "| path | p50 ms | p99 ms | mean ms | p50 − floor p50 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, v in rows:
        lines.append(
            f"| {name} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | {v['mean_ms']:.2f} | {v['p50_ms'] - floor:+.2f} |"
        )
    sp = r["single_predict"]
    http_best = min(v["p50_ms"] for v in sp.values())
    lines += [
        "",
        f"Targets: predict p50 <= floor p50 + 1 ms (JSON GET {sp['json']['p50_ms'] - floor:+.2f} ms); "
        f"handle and gRPC p50 below HTTP's "
        f"(handle {r['handle']['p50_ms']:.2f}, gRPC {r['grpc']['p50_ms']:.2f}, best HTTP {http_best:.2f} ms). "
        f"POST bodies against the POST floor ({r['floor_post']['p50_ms']:.2f} ms, a bare deployment reading "
        f"its body: Serve's proxy hands a body over in a second call): JSON "
        f"{sp.get('json_post', sp['json'])['p50_ms'] - r['floor_post']['p50_ms']:+.2f} ms, Arrow "
        f"{sp['arrow']['p50_ms'] - r['floor_post']['p50_ms']:+.2f} ms."
        + (
            f" gRPC against its own floor (Serve's gRPC proxy, the same client): "
            f"{r['grpc']['p50_ms'] - r['floor_grpc']['p50_ms']:+.2f} ms."
            if "floor_grpc" in r
            else ""
        ),
        "",
    ]
    return lines


def _caps_md(r: dict[str, Any]) -> list[str]:
    c = r["slowest_admitted"]
    lim = c["limits"]
    lines = [
        "## Slowest admitted requests (default limits)",
        "",
        f"Limits: max_rollout_steps {lim['max_rollout_steps']:,}, max_horizon {lim['max_horizon']:,}, "
        f"max_plan_rows {lim['max_plan_rows']:,}, max_grid_rows {lim['max_grid_rows']:,}.",
        "",
        "| request | size | seconds | answer |",
        "|---|---|---:|---|",
        f"| rollout | B = {c['rollout']['B']:,}, H = {c['rollout']['H']:,} | {c['rollout']['seconds']:.2f} "
        f"| {c['rollout']['status']} |",
        f"| plan, CEM | {c['plan_cem']['rows']:,} model rows | {c['plan_cem']['seconds']:.2f} "
        f"| {c['plan_cem']['status']} |",
        f"| plan, grid value iteration | resolution {c['plan_value_iteration']['resolution']}, "
        f"{c['plan_value_iteration']['grid_rows']:,} nodes·actions | {c['plan_value_iteration']['seconds']:.2f} "
        f"| {c['plan_value_iteration']['status']} |",
        "",
        f"slowest_admitted_s = {r['slowest_admitted_s']:.2f} (target <= 5 s).",
        "",
    ]
    k = r["replica_kill"]
    lines += [
        f"## Replica kill ({k['replicas']} replicas, {k['threads']} client threads, {k['seconds']:.0f} s, "
        "one replica SIGKILLed a third of the way in)",
        "",
        f"Calls {k['calls']:,}, failed {k['failures']} (target 0).",
        "",
    ]
    return lines


def _throughput_md(r: dict[str, Any]) -> list[str]:
    lines = [
        "## Predict throughput (transitions per second)",
        "",
        "| batch | in-process | JSON | JSON / in-process | Arrow | Arrow / in-process |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["throughput"]:
        lines.append(
            f"| {row['rows']:,} | {row['in_process']['transitions_per_s']:.3g} "
            f"| {row['json']['transitions_per_s']:.3g} | {row['json']['ratio_to_in_process']:.2f} "
            f"| {row['arrow']['transitions_per_s']:.3g} | {row['arrow']['ratio_to_in_process']:.2f} |"
        )
    p = r["pets_rollout"]
    lines += [
        "",
        f"## PETS-size rollout (350 x 20 = {p['B']:,} sequences x H = {p['H']}, 2-D actions)",
        "",
        "| | seconds per request (median) | transitions per s | / in-process |",
        "|---|---:|---:|---:|",
        f"| in-process | {p['in_process']['seconds_median']:.3f} | {p['in_process']['transitions_per_s']:.3g} | 1 |",
    ]
    for fmt in ("json", "arrow"):
        lines.append(
            f"| {fmt} | {p[fmt]['seconds_median']:.3f} | {p[fmt]['transitions_per_s']:.3g} "
            f"| {p[fmt]['ratio_to_in_process']:.2f} |"
        )
    ld = r["load"]
    lines += [
        "",
        f"One control step (5 rollout requests, Arrow): {p['control_step_seconds_arrow']:.2f} s "
        f"(in-process {p['control_step_seconds_in_process']:.2f} s).",
        "",
        f"## Load ({ld['seconds']:.0f} s, {ld['threads']} client threads; per client 8 single predicts, "
        "1 of 1,024 rows, 1 rollout of 64 x 15)",
        "",
        "| requests | requests/s | errors | p50 ms | p99 ms |",
        "|---:|---:|---:|---:|---:|",
        f"| {ld['requests']:,} | {ld['requests_per_s']:.1f} | {ld['errors']} | {ld['p50_ms']:.1f} "
        f"| {ld['p99_ms']:.1f} |",
        "",
    ]
    return lines


def markdown(r: dict[str, Any]) -> str:
    """serve.md: the run's figures as tables."""
    m = r["machine"]
    head = [
        "# World-model API on Ray Serve: floor, paths, cost caps, replica loss, throughput",
        "",
        f"Command: `python bench/serve.py{' --quick' if r['quick'] else ''}` ({r['wall_seconds']:.0f} s)  ",
        f"Machine: {m['cpus']} CPUs ({m['processor']}), Python {m['python']}, commit {m['commit']}, {m['date']}. "
        f"Load average (1 min) at start / end: {r['load_average_start'][0]:.1f} / {r['load_average_end'][0]:.1f} "
        "(other jobs shared the cores). One replica per application; client, proxies and replicas share the "
        "machine. Models: the paper's architecture (2 x 256 tanh, residual).",
        "",
    ]
    return "\n".join(head + _latency_md(r) + _caps_md(r) + _throughput_md(r))


if __name__ == "__main__":
    sys.exit(main())
