"""A two-node Ray cluster on this machine (``ray start --head`` plus a worker node, each on its own
ports, with the job server) accepts ``ray job submit`` of a small experiment, spreads its work over
both nodes, and the results land in the run directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.experiments.processes import free_ports, kill_tree

pytestmark = [pytest.mark.ray, pytest.mark.slow]

BIN = Path(sys.executable).parent
CURRENT_CLUSTER = Path("/tmp/ray/ray_current_cluster")  # `ray start` records itself here


def _node_flags(ports: list[int]) -> list[str]:
    agent, grpc, metrics, runtime_env = ports
    return [
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={grpc}",
        f"--metrics-export-port={metrics}",
        f"--runtime-env-agent-port={runtime_env}",
        "--num-cpus=1",
        "--block",
    ]


@pytest.fixture
def two_node_cluster(tmp_path: Path):
    """Head (1 CPU, dashboard and job server) and one worker node (1 CPU), torn down afterwards."""
    gcs, dashboard, client, *rest = free_ports(11)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    previous = CURRENT_CLUSTER.read_bytes() if CURRENT_CLUSTER.exists() else None
    procs = []
    try:
        head_log = (tmp_path / "head.log").open("w")
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "ray"),
                    "start",
                    "--head",
                    f"--port={gcs}",
                    f"--dashboard-port={dashboard}",
                    "--dashboard-host=127.0.0.1",
                    "--include-dashboard=true",
                    f"--ray-client-server-port={client}",
                    *_node_flags(rest[0:4]),
                ],
                stdout=head_log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        )
        _wait_for(lambda: _status(gcs, env) >= 1, 90, "head node did not start", tmp_path / "head.log")
        worker_log = (tmp_path / "worker.log").open("w")
        procs.append(
            subprocess.Popen(
                [str(BIN / "ray"), "start", f"--address=127.0.0.1:{gcs}", *_node_flags(rest[4:8])],
                stdout=worker_log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        )
        _wait_for(lambda: _status(gcs, env) >= 2, 90, "worker node did not join", tmp_path / "worker.log")
        yield f"http://127.0.0.1:{dashboard}", env
    finally:
        for p in procs:
            kill_tree(p.pid, sig=15, grace_s=10)
            p.wait()
        # leave no pointer to our (dead) cluster: a later bare ray.init() would try to join it
        if previous is None:
            CURRENT_CLUSTER.unlink(missing_ok=True)
        else:
            CURRENT_CLUSTER.write_bytes(previous)


def _status(gcs: int, env: dict) -> int:
    """Alive nodes of the cluster at 127.0.0.1:gcs (0 while it is not up)."""
    code = (
        f"import ray, json; ray.init(address='127.0.0.1:{gcs}', log_to_driver=False); "
        "print(json.dumps(sum(n['Alive'] for n in ray.nodes())))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    try:
        return int(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0


def _wait_for(cond, timeout_s: float, message: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message}:\n{log.read_text()[-3000:]}")
        time.sleep(1)


def test_ray_job_submit_spreads_an_experiment_over_two_nodes(two_node_cluster, tmp_path: Path) -> None:
    address, env = two_node_cluster
    cfg = {
        "name": "cluster",
        "task": "fourrooms",
        "sweep": [{"variant": ["windy"], "num_goals": [2, 3, 4, 5]}],
        "agent": {"kind": "tabular-q", "tabular": {"env_steps": 200_000}},
        "extraction": {"methods": ["closed-form", "simplex-local"]},
        "resources": {"num_actors": 2},
    }
    cfg_path = tmp_path / "cluster.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    job = subprocess.run(
        [
            str(BIN / "ray"),
            "job",
            "submit",
            f"--address={address}",
            "--",
            sys.executable,
            "-m",
            "plray.cli",
            "run",
            str(cfg_path),
            "--run-dir",
            str(run),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=480,
        cwd=tmp_path,
    )
    output = job.stdout + job.stderr
    assert job.returncode == 0, output[-4000:]
    assert "succeeded" in output and "on a Ray cluster of 2 node(s)" in output, output[-4000:]
    results = run / "results"
    agents = pq.read_table(results / "agents.parquet").to_pylist()
    jobs = pq.read_table(results / "extractions.parquet").to_pylist()
    assert len(agents) == 4 and len(jobs) == 8
    # 1 CPU per node and 1 per trial / actor: the work had to use both nodes
    assert len({a["node_id"] for a in agents}) == 2, [a["node_id"] for a in agents]
    assert len({j["node_id"] for j in jobs}) == 2, [j["node_id"] for j in jobs]
    assert json.loads((run / "extractions" / jobs[0]["job"] / "result.json").read_text())["job"] == jobs[0]["job"]
