"""The cluster-launcher configs: ``ray_config.yaml`` (AWS) and ``deploy/ray_config.local.yaml``
(machines listed by IP) pass Ray's own launcher validation and install plray at the project's
version; and, for real, ``ray up`` of the local variant onto two private hosts on this machine,
``ray job submit`` of a small ``plray run``, ``ray down``.

The real test runs every host (and the driver that runs ``ray up``) in private network, PID and
mount namespaces with its own sshd, ``/tmp`` and home (see ``tests/deploy/_netns.py``): the
launcher's ``ray stop`` and ``/tmp/ray/ray_current_cluster`` never touch another Ray on this machine.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import jsonschema
import pyarrow.parquet as pq
import pytest
import yaml

from tests.deploy import _netns

REPO = Path(__file__).resolve().parents[2]
AWS_CONFIG = REPO / "ray_config.yaml"
LOCAL_CONFIG = REPO / "deploy" / "ray_config.local.yaml"
CONFIGS = {"aws": AWS_CONFIG, "local": LOCAL_CONFIG}
BIN = Path(sys.executable).parent
TORCH_PIN = "torch==2.13.0"


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load(CONFIGS[name].read_text())


def _validate(config: dict[str, Any]) -> dict[str, Any]:
    """Ray's own launcher checks, as ``ray up`` runs them before it touches a node."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def _project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture
def offline_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS credentials, and any attempt to reach AWS through boto3 fails the test."""
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    boto3 = pytest.importorskip("boto3")

    def no_aws(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"launcher validation tried to reach AWS: {args} {kwargs}")

    monkeypatch.setattr(boto3.session.Session, "client", no_aws)
    monkeypatch.setattr(boto3.session.Session, "resource", no_aws)


@pytest.mark.usefixtures("offline_aws")
def test_the_aws_config_passes_ray_launcher_validation_offline() -> None:
    prepared = _validate(_load("aws"))
    assert prepared["provider"]["type"] == "aws" and prepared["provider"]["region"]
    types = prepared["available_node_types"]
    head = types[prepared["head_node_type"]]
    assert head["resources"] == {"CPU": 0}, "the head runs no tasks"
    (worker,) = (t for name, t in types.items() if name != prepared["head_node_type"])
    assert worker["min_workers"] == 0 < worker["max_workers"] <= prepared["max_workers"]
    assert prepared["docker"]["image"] == f"rayproject/ray:{_ray_version()}-py311-cpu"
    assert prepared["file_mounts"] == {"~/plray-src": "."}


def _ray_version() -> str:
    import ray

    return ray.__version__


def test_the_local_config_passes_ray_launcher_validation() -> None:
    raw = _load("local")
    prepared = _validate(raw)
    assert prepared["provider"]["type"] == "local"
    (node_type,) = prepared["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == len(raw["provider"]["worker_ips"])
    assert raw["auth"]["ssh_user"] and raw["auth"]["ssh_private_key"]
    assert prepared["file_mounts"] == {"~/plray-src": "."}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_setup_commands_install_torch_and_plray_at_the_project_version(name: str) -> None:
    commands = " && ".join(_load(name)["setup_commands"])
    assert f"{TORCH_PIN} --index-url https://download.pytorch.org/whl/cpu" in commands
    assert f'"plray=={_project_version()}"' in commands
    assert commands.index(TORCH_PIN) < commands.index("plray=="), "torch first, or pip pulls a CUDA build"
    assert TORCH_PIN in (REPO / "Makefile").read_text(), "the Makefile's torch pin moved: update both configs"


def test_both_configs_set_up_and_start_nodes_alike() -> None:
    aws, local = _load("aws"), _load("local")
    for key in ("setup_commands", "worker_start_ray_commands", "file_mounts", "rsync_exclude", "rsync_filter"):
        assert aws[key] == local[key], key
    # on-premises, the head runs Ray's v1 autoscaler: v2 does not start the local provider's workers
    local_head = [c.replace("RAY_enable_autoscaler_v2=0 ", "") for c in local["head_start_ray_commands"]]
    assert local_head == aws["head_start_ray_commands"] != local["head_start_ray_commands"]
    head_start = " ".join(aws["head_start_ray_commands"])
    assert aws["head_start_ray_commands"][0] == "ray stop" == aws["worker_start_ray_commands"][0]
    assert "--dashboard-host=0.0.0.0" in head_start and "--dashboard-port=8265" in head_start


def _broken(name: str, how: str) -> dict[str, Any]:
    config = _load(name)
    if how == "unknown top-level key":
        config["head_nodes"] = 1
    elif how == "missing provider":
        del config["provider"]
    elif how == "typo in a node type":
        config["available_node_types"]["cpu_worker"]["min_wrokers"] = 1
    elif how == "head type not defined":
        config["head_node_type"] = "gpu_head"
    elif how == "missing head_ip":
        del config["provider"]["head_ip"]
    elif how == "node types on-premises":
        config["available_node_types"] = {"cpu": {"node_config": {}, "resources": {}}}
    return config


BROKEN = [
    ("aws", "unknown top-level key"),
    ("aws", "missing provider"),
    ("aws", "typo in a node type"),
    ("aws", "head type not defined"),
    ("local", "unknown top-level key"),
    ("local", "missing provider"),
    ("local", "missing head_ip"),
    ("local", "node types on-premises"),
]


@pytest.mark.usefixtures("offline_aws")
@pytest.mark.parametrize(("name", "how"), BROKEN, ids=[f"{n}-{h.replace(' ', '-')}" for n, h in BROKEN])
def test_a_broken_copy_fails_launcher_validation(name: str, how: str) -> None:
    with pytest.raises((jsonschema.ValidationError, KeyError, ValueError, click.ClickException)):
        _validate(_broken(name, how))


# --- the real thing: ray up / ray job submit / ray down on private hosts -------------------------


@pytest.fixture
def private_hosts() -> Iterator[tuple[list[_netns.Host], Path, Path]]:
    """A head and a worker host (network namespaces joined by a veth pair), each with its own sshd
    accepting a fresh key; yields (hosts, private key, scratch directory) and destroys them after."""
    reason = _netns.unavailable_reason()
    if reason:
        pytest.skip(f"private hosts for the launcher test are unavailable: {reason}")
    # Outside /tmp: the hosts mount their own /tmp, and they must all see the run directory.
    scratch = Path(tempfile.mkdtemp(prefix="plray-launcher-", dir="/var/tmp"))
    hosts: list[_netns.Host] = []
    try:
        hosts = _netns.make_hosts(f"plray-{os.getpid()}", scratch)
        key = _netns.make_ssh_key(scratch)
        login_env = {"PATH": f"{BIN}:$PATH", "RAY_AUTH_MODE": "disabled"}
        for host in hosts:
            _netns.start_sshd(host, scratch, key.with_suffix(".pub"), login_env)
        yield hosts, key, scratch
    finally:
        _netns.destroy(hosts)
        shutil.rmtree(scratch, ignore_errors=True)


def _cluster_config(hosts: list[_netns.Host], key: Path) -> dict[str, Any]:
    """deploy/ray_config.local.yaml for the private hosts: their IPs, root with the test's key,
    this checkout as the file mount, and setup commands that check (offline) instead of install."""
    config = _load("local")
    head, *workers = hosts
    config["cluster_name"] = f"plray-test-{os.getpid()}"
    config["provider"] = {"type": "local", "head_ip": head.ip, "worker_ips": [w.ip for w in workers]}
    config["auth"] = {"ssh_user": "root", "ssh_private_key": str(key)}
    config["file_mounts"] = {"~/plray-src": str(REPO)}
    # The hosts share this machine's virtual environment (on PATH through their ~/.bashrc) and have
    # no network: check what the shipped commands would have installed instead of installing it.
    config["setup_commands"] = [
        f"plray --version | grep -qx 'plray {_project_version()}'",
        "test -f ~/plray-src/pyproject.toml && test ! -e ~/plray-src/.venv && test ! -e ~/plray-src/.git",
    ]
    _validate(config)
    return config


class Driver:
    """Runs launcher and job commands on the head host, in namespaces of their own (private /tmp
    and home as well), as a user's laptop would from outside."""

    def __init__(self, head: _netns.Host, key: Path, scratch: Path) -> None:
        self.head, self.key, self.scratch = head, key, scratch
        self.state = _netns.make_state(scratch / "driver")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.env["RAY_AUTH_MODE"] = "disabled"
        self.log = (scratch / "driver.log").open("a")

    def ray(self, *args: str, timeout_s: float) -> tuple[int, str]:
        """``ray ARGS`` from this checkout's environment: (exit code, output)."""
        started = time.monotonic()
        done = _netns.run_in(self.head, self.state, [str(BIN / "ray"), *args], self.env, timeout_s, cwd=self.scratch)
        self.log.write(f"$ ray {' '.join(args)}  ({time.monotonic() - started:.0f} s, rc {done.returncode})\n")
        self.log.write(done.stdout + "\n")
        self.log.flush()
        return done.returncode, done.stdout

    def head_logs(self) -> str:
        """The end of the head's autoscaler and job logs, read from its private /tmp/ray."""
        sessions = sorted((self.head.state / "tmp" / "ray").glob("session_2*"))
        if not sessions:
            return "(the head has no Ray session)"
        logs = sessions[-1] / "logs"
        parts = []
        for path in [logs / "monitor.log", logs / "monitor.err", *sorted(logs.glob("job-driver-*.log"))]:
            if path.exists():
                parts.append(f"==> {path.name} <==\n" + "\n".join(path.read_text().splitlines()[-40:]))
        return "\n".join(parts)

    def job_status(self, submission_id: str) -> tuple[int, str]:
        """The job's status from Ray's job SDK (JobStatus, e.g. SUCCEEDED, last line of the output)."""
        code = (
            "from ray.job_submission import JobSubmissionClient; "
            f"print(JobSubmissionClient('http://{self.head.ip}:8265').get_job_status('{submission_id}').value)"
        )
        done = _netns.run_in(self.head, self.state, [sys.executable, "-c", code], self.env, 60)
        return done.returncode, done.stdout

    def alive_nodes(self) -> int:
        """Ray nodes alive in the cluster, from the dashboard's state API (0 while it is not up)."""
        rc, out = self.ray("list", "nodes", "--format=json", f"--address=http://{self.head.ip}:8265", timeout_s=60)
        match = re.search(r"^\[.*\]", out, re.S | re.M)
        if rc != 0 or match is None:
            return 0
        return sum(node.get("state") == "ALIVE" for node in json.loads(match.group(0)))


def _wait_for(cond: Any, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s:.0f} s:\n{log.read_text()[-4000:]}")
        time.sleep(2)


EXPERIMENT = {
    "name": "launcher",
    "task": "fourrooms",
    "sweep": [{"variant": ["windy"], "num_goals": [2, 4]}],
    "seeds": [0],
    "agent": {"kind": "tabular-q", "tabular": {"env_steps": 100_000}},
    "extraction": {"methods": ["closed-form"]},
    "resources": {"num_actors": 2},
}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ray_up_job_submit_ray_down_on_two_private_hosts(private_hosts) -> None:
    hosts, key, scratch = private_hosts
    head = hosts[0]
    cluster = scratch / "cluster.yaml"
    cluster.write_text(yaml.safe_dump(_cluster_config(hosts, key)))
    (scratch / "experiment.yaml").write_text(yaml.safe_dump(EXPERIMENT))
    driver, timings = Driver(head, key, scratch), {}
    log = scratch / "driver.log"
    up = ok = False
    try:
        started = time.monotonic()
        rc, out = driver.ray("up", "-y", "--no-config-cache", str(cluster), timeout_s=240)
        up = True
        assert rc == 0, out[-4000:]
        timings["ray up"] = time.monotonic() - started
        _wait_for(lambda: driver.alive_nodes() >= len(hosts), 180, "the worker did not join", log)
        timings["worker joined"] = time.monotonic() - started
        _submit_and_check(driver, scratch)
        timings["job done"] = time.monotonic() - started
        rc, out = driver.ray("down", "-y", str(cluster), timeout_s=120)
        up = False
        assert rc == 0, out[-4000:]
        assert driver.alive_nodes() == 0, "Ray still answers after `ray down`"
        timings["ray down"] = time.monotonic() - started
        ok = True
    finally:
        if not ok:  # shown by pytest with the failure
            print(f"--- driver log ---\n{log.read_text()[-6000:]}\n--- head logs ---\n{driver.head_logs()}")
        if up:
            driver.ray("down", "-y", str(cluster), timeout_s=120)
        print("launcher test timings (s from start):", {k: round(v) for k, v in timings.items()})


def _submit_and_check(driver: Driver, scratch: Path) -> None:
    """``ray job submit`` of ``plray run`` (config and run directory on the shared disk, the job's
    driver on the head), then its status and results."""
    run = scratch / "run"
    submission = f"plray-launcher-{os.getpid()}"
    address = f"--address=http://{driver.head.ip}:8265"
    entrypoint = ["plray", "run", str(scratch / "experiment.yaml"), "--run-dir", str(run)]
    rc, out = driver.ray("job", "submit", address, f"--submission-id={submission}", "--", *entrypoint, timeout_s=300)
    assert rc == 0, out[-4000:]
    assert "on a Ray cluster of 2 node(s)" in out, out[-4000:]
    rc, status = driver.job_status(submission)
    assert rc == 0 and status.strip().splitlines()[-1] == "SUCCEEDED", status[-2000:]
    agents = pq.read_table(run / "results" / "agents.parquet").to_pylist()
    jobs = pq.read_table(run / "results" / "extractions.parquet").to_pylist()
    assert len(agents) == 2 and len(jobs) == 2
    assert (run / "results" / "results.md").exists()
