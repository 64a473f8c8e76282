"""Benchmark of the world-model API on Ray Serve, each figure next to the same model called in-process.

    python bench/serve.py            # full: 60 s of load
    python bench/serve.py --quick    # fewer repeats, 10 s of load

Starts a local Ray (2 CPUs, no dashboard, auth off) and Serve's HTTP proxy on --port, deploys the
application (one replica) over a temporary models directory holding two models with the paper's
architecture (2 x 256 tanh, residual): ``reacher`` (d = 4, 9 discrete actions) and ``pets``
(d = 4, 2-D continuous actions, the MuJoCo reacher's shapes). Measures:

1. latency of a single-transition predict (p50 / p99 over sequential requests, JSON and Arrow);
2. transitions per second through the API for batches of 1,024 and 65,536 rows, JSON and Arrow,
   next to in-process ``engine.check_batch`` + ``engine.predict`` (the replica's own code) on the
   same model with the replica's torch thread count (1);
3. a rollout request of the PETS size on Reacher: population 350 x 20 particles = 7,000 sequences
   x horizon 15 (one CEM iteration), and the 5 iterations of one control step, next to in-process;
4. load: concurrent client threads for --load-seconds mixing single predicts, 1,024-row Arrow
   batches and small rollouts; requests, errors and latency.

Results: bench/results/serve.json and serve.md. Absolute numbers depend on what else runs on the
machine (the client, the proxy and the replica share its cores); the ratios to in-process are
measured in the same run.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import statistics
import sys
import tempfile
import threading
import time
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
    return float(np.percentile(np.asarray(xs), q))


def single_latency(client: WorldModelClient, n: int) -> dict[str, float]:
    s, a = np.zeros((1, 4)), np.array([3])
    for _ in range(20):
        client.predict("reacher", s, a)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        client.predict("reacher", s, a)
        times.append(time.perf_counter() - t)
    return {"p50_ms": 1e3 * pct(times, 50), "p99_ms": 1e3 * pct(times, 99), "mean_ms": 1e3 * statistics.mean(times)}


def throughput(fn: Any, rows: int, repeats: int) -> dict[str, float]:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"seconds_median": med, "transitions_per_s": rows / med, "repeats": repeats}


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
                    client.rollout("reacher", ro_s, ro_a, goal={"kind": "unseen", "name": "far_fingertip"})
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
    return {
        **stats,
        "seconds": wall,
        "threads": threads,
        "requests_per_s": stats["requests"] / wall,
        "p50_ms": 1e3 * pct(lat, 50),
        "p99_ms": 1e3 * pct(lat, 99),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 10 s of load")
    parser.add_argument("--port", type=int, default=18300)
    parser.add_argument("--load-seconds", type=float, default=None)
    parser.add_argument("--threads", type=int, default=8, help="load-test client threads")
    args = parser.parse_args(argv)
    quick = args.quick
    load_seconds = args.load_seconds if args.load_seconds is not None else (10.0 if quick else 60.0)

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import serve

    from plray.serve.app import build_app

    torch.set_num_threads(1)  # what a replica gets (Ray sets OMP_NUM_THREADS=1 in workers)
    root = Path(tempfile.mkdtemp(prefix="plray-bench-models-"))
    models = make_models(root)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    results: dict[str, Any] = {"machine": machine(), "quick": quick, "load_average_start": os.getloadavg()}
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        settings = {
            "models": str(root),
            "reload_interval_s": 0,
            "deployment": {"num_replicas": 1, "max_ongoing_requests": 64, "ray_actor_options": {"num_cpus": 0}},
        }
        t = time.perf_counter()
        serve.run(build_app(settings), name="plray-bench", route_prefix="/bench", blocking=False)
        results["deploy_seconds"] = time.perf_counter() - t
        url = f"http://127.0.0.1:{args.port}/bench"
        clients = {fmt: WorldModelClient(url, fmt=fmt) for fmt in ("json", "arrow")}
        clients["json"].healthz()

        # 1. single-transition latency
        n_single = 300 if quick else 1000
        results["single_predict"] = {fmt: single_latency(c, n_single) for fmt, c in clients.items()}
        print("single predict:", results["single_predict"], flush=True)

        # 2. throughput vs in-process
        rng = np.random.default_rng(0)
        results["throughput"] = []
        for rows in (1024, 65536):
            s, a = rng.uniform(-2, 2, (rows, 4)), rng.integers(9, size=rows)
            reps = (10 if rows == 1024 else 3) if quick else (30 if rows == 1024 else 8)
            m = models["reacher"]

            def in_process(s: np.ndarray = s, a: np.ndarray = a, m: NeuralWorldModel = m) -> None:
                st, ac = engine.check_batch(m, s, a)
                engine.predict(m, st, ac)

            ref = throughput(in_process, rows, reps)
            row: dict[str, Any] = {"rows": rows, "in_process": ref}
            for fmt, c in clients.items():
                res = throughput(lambda c=c, s=s, a=a: c.predict("reacher", s, a), rows, reps)
                res["ratio_to_in_process"] = res["transitions_per_s"] / ref["transitions_per_s"]
                row[fmt] = res
            results["throughput"].append(row)
            print("throughput:", rows, {k: v for k, v in row.items() if k != "rows"}, flush=True)

        # 3. PETS-size rollout
        B, H = PETS["population"] * PETS["particles"], PETS["horizon"]
        s0 = rng.uniform(-1, 1, (B, 4))
        acts = rng.uniform(-1, 1, (B, H, 2))
        goal = {"kind": "region", "target": [1.0, 1.0], "dims": [0, 1], "tolerance": 0.2}
        pm = models["pets"]
        egoal = engine.build_goal(goal, pm, lambda: None)

        def rollout_in_process() -> None:
            st, ac = engine.check_batch(pm, s0, acts, steps=True)
            engine.rollout(pm, st, ac, goal=egoal)

        reps = 3 if quick else 5
        ref = throughput(rollout_in_process, B * H, reps)
        pets: dict[str, Any] = {"B": B, "H": H, "action_dim": 2, "in_process": ref}
        for fmt, c in clients.items():
            res = throughput(lambda c=c: c.rollout("pets", s0, acts, goal=goal), B * H, reps)
            res["ratio_to_in_process"] = res["transitions_per_s"] / ref["transitions_per_s"]
            pets[fmt] = res
        t = time.perf_counter()
        for _ in range(PETS["iterations"]):
            clients["arrow"].rollout("pets", s0, acts, goal=goal)
        pets["control_step_seconds_arrow"] = time.perf_counter() - t
        pets["control_step_seconds_in_process"] = PETS["iterations"] * ref["seconds_median"]
        results["pets_rollout"] = pets
        print("pets rollout:", pets, flush=True)

        # 4. load
        results["load"] = load_test(url, load_seconds, args.threads)
        print("load:", results["load"], flush=True)
        serve.delete("plray-bench")
    finally:
        serve.shutdown()
        ray.shutdown()

    results["load_average_end"] = os.getloadavg()
    write_results("serve", results, markdown(results))
    print("wrote bench/results/serve.json and serve.md")
    return 0


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    sp = r["single_predict"]
    lines = [
        "# World-model API on Ray Serve: latency, throughput, load",
        "",
        f"Command: `python bench/serve.py{' --quick' if r['quick'] else ''}`  ",
        f"Machine: {m['cpus']} CPUs ({m['processor']}), Python {m['python']}, commit {m['commit']}, {m['date']}. "
        f"Load average (1 min) at start / end: {r['load_average_start'][0]:.1f} / {r['load_average_end'][0]:.1f} "
        "(other jobs shared the cores). "
        "One replica; client, proxy and replica share the machine. In-process: the replica's own "
        "`engine.check_batch` + `engine.predict` / `engine.rollout` on the same model, 1 torch thread (as a replica).",
        "",
        "Models: the paper's architecture (2 x 256 tanh, residual): reacher (d = 4, 9 actions) for predict, "
        "d = 4 with 2-D continuous actions for the PETS rollout.",
        "",
        "## Single-transition predict (sequential requests)",
        "",
        "| format | p50 ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|",
    ]
    for fmt, v in sp.items():
        lines.append(f"| {fmt} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | {v['mean_ms']:.2f} |")
    lines += [
        "",
        "Target: p50 < 5 ms.",
        "",
        "## Predict throughput (transitions per second)",
        "",
        "| batch | in-process | JSON | JSON / in-process | Arrow | Arrow / in-process |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["throughput"]:
        lines.append(
            f"| {row['rows']:,} | {row['in_process']['transitions_per_s']:.3g} "
            f"| {row['json']['transitions_per_s']:.3g} "
            f"| {row['json']['ratio_to_in_process']:.2f} | {row['arrow']['transitions_per_s']:.3g} "
            f"| {row['arrow']['ratio_to_in_process']:.2f} |"
        )
    p = r["pets_rollout"]
    lines += [
        "",
        "Target: Arrow at 65,536 rows >= 0.5 of in-process.",
        "",
        f"## PETS-size rollout (Reacher: 350 x 20 = {p['B']:,} sequences x H = {p['H']}, 2-D actions)",
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
    lines += [
        "",
        f"One control step (5 CEM iterations = 5 rollout requests, Arrow): {p['control_step_seconds_arrow']:.2f} s "
        f"(in-process {p['control_step_seconds_in_process']:.2f} s).",
        "",
        f"## Load ({r['load']['seconds']:.0f} s, {r['load']['threads']} client threads)",
        "",
        "Mix per client: 8 single-row predicts, 1 predict of 1,024 rows, 1 rollout of 64 x 15 (goal scored); "
        "half the clients JSON, half Arrow.",
        "",
        "| requests | requests/s | errors | p50 ms | p99 ms |",
        "|---:|---:|---:|---:|---:|",
        f"| {r['load']['requests']:,} | {r['load']['requests_per_s']:.1f} | {r['load']['errors']} "
        f"| {r['load']['p50_ms']:.1f} | {r['load']['p99_ms']:.1f} |",
        "",
        "Target: zero errors.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
