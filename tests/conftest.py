"""Shared fixtures: FourRooms variants with exact goal-conditioned Q-values, a local Ray, a real S3 server."""

from __future__ import annotations

import functools
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from plray.core import bellman_matrix_from_q
from plray.envs import FourRooms, GoalSet
from plray.envs.fourrooms import DEFAULT_GAMMA
from plray.evaluation import value_iteration

GAMMA = DEFAULT_GAMMA

# Small models run faster on one thread, and CI has two cores shared with Ray's workers.
torch.set_num_threads(1)


@dataclass(frozen=True)
class ExactAgent:
    """A FourRooms variant with the exact Q* of a goal set and its Bellman matrix."""

    env: FourRooms
    goals: GoalSet
    Q: np.ndarray  # (S, A, G)
    M: np.ndarray  # (G, S)

    @property
    def P(self) -> np.ndarray:
        return self.env.kernel


@functools.cache
def exact_agent(variant: str, num_goals: int, family: str = "generic", seed: int = 0) -> ExactAgent:
    env = FourRooms(variant)
    goals = env.goal_set(num_goals, family, seed=seed)
    Q = value_iteration(env.kernel, goals.rewards, goals.dones, GAMMA).Q
    M = bellman_matrix_from_q(Q, goals.rewards, GAMMA, goals.dones)
    return ExactAgent(env, goals, Q, M)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray runtime for the tests that need it (2 CPUs, no dashboard, auth off)."""
    import os

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # address="local": always a fresh runtime, never a cluster some `ray start` left on this host
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(params=["deterministic", "windy", "teleport"])
def variant(request: pytest.FixtureRequest) -> str:
    return request.param


# ---------------------------------------------------------------- object storage
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 server (moto) on loopback; yields its endpoint URL."""
    moto_server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the moto server, with the environment pointing to it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    import uuid

    name = f"plray-{uuid.uuid4().hex[:8]}"
    boto3 = pytest.importorskip("boto3")
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


# ---------------------------------------------------------------- markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that starts Ray (the ``ray_local`` fixture or the ``ray`` marker) is also ``slow``,
    so ``make test-fast`` (``-m "not slow"``) runs the suite that needs no Ray in a minute or two."""
    for item in items:
        if "ray_local" in getattr(item, "fixturenames", ()) or item.get_closest_marker("ray") is not None:
            item.add_marker(pytest.mark.slow)
