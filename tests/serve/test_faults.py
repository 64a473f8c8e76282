"""Faults under load: a replica SIGKILLed, bad artifacts dropped into the served directory; no call fails.

Both run their own application (two replicas, its own models directory) on the session's Serve,
with client threads of the Python HTTP client (which retries a lost replica's calls) and of the
DeploymentHandle client.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from plray.serve.client import WorldModelClient
from tests.serve.conftest import PORT, continuous_model, reacher_model, wait_healthy, write_model

pytestmark = [pytest.mark.slow, pytest.mark.ray]

APP = "plray-fault"
URL = f"http://127.0.0.1:{PORT}/{APP}"


class Load:
    """Client threads calling ``calls`` round-robin until stopped; counts calls and failures."""

    def __init__(self, calls: list[Callable[[], object]]) -> None:
        self.calls = calls
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.done = 0
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._work, args=(i,), daemon=True) for i in range(len(calls))]

    def _work(self, i: int) -> None:
        call = self.calls[i]
        while not self.stop.is_set():
            try:
                call()
                with self.lock:
                    self.done += 1
            except Exception as exc:  # every failure counts, whatever its type
                with self.lock:
                    self.failures.append(f"{type(exc).__name__}: {exc}"[:300])

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)


@pytest.fixture(scope="module")
def fault_app(server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A two-replica application over its own models directory (hot reload every 0.3 s)."""
    from ray import serve

    from plray.serve.app import build_app

    root = tmp_path_factory.mktemp("fault-models")
    write_model(root, "reacher", "1", reacher_model(0), task="reacher")
    write_model(root, "pets", "1", continuous_model(0), task="mujoco-reacher")
    settings = {
        "models": str(root),
        "reload_interval_s": 0.3,
        "deployment": {"num_replicas": 2, "max_ongoing_requests": 64, "ray_actor_options": {"num_cpus": 0}},
    }
    serve.run(build_app(settings), name=APP, route_prefix=f"/{APP}", blocking=False)
    wait_healthy(URL)
    yield root
    serve.delete(APP)


def _calls() -> list[Callable[[], object]]:
    from plray.serve.handle import WorldModelHandle

    rng = np.random.default_rng(0)
    s, a = rng.uniform(-1, 1, (4, 4)), rng.integers(9, size=4)
    ca = rng.uniform(-1, 1, (4, 2))
    json_c, arrow_c = WorldModelClient(URL, fmt="json"), WorldModelClient(URL, fmt="arrow")
    wm = WorldModelHandle(APP)
    return [
        lambda: json_c.predict("reacher", s, a),
        lambda: arrow_c.predict("pets", s, ca),
        lambda: arrow_c.rollout("reacher", s, np.tile(a[:, None], (1, 5))),
        lambda: wm.predict("reacher", s, a),
    ]


def _wait_replicas(n: int, timeout: float = 90.0) -> dict[str, int]:
    from plray.serve.handle import replica_pids

    deadline = time.time() + timeout
    while True:
        pids = replica_pids(APP)
        if len(pids) >= n or time.time() > deadline:
            return pids
        time.sleep(0.5)


def test_sigkill_of_one_replica_under_load_fails_no_call(fault_app: Path) -> None:
    pids = _wait_replicas(2)
    assert len(pids) == 2, pids
    victim = sorted(pids.values())[0]
    with Load(_calls()) as load:
        time.sleep(3.0)
        before = load.done
        os.kill(victim, signal.SIGKILL)  # this test's own replica, looked up in its own Ray
        time.sleep(8.0)
    assert load.failures == [], load.failures[:5]
    assert before > 20 and load.done > before + 20, (before, load.done)
    assert victim not in _wait_replicas(2).values()


def _drop_bad_artifacts(root: Path) -> None:
    """A corrupt new model, an unbuildable new version of a served model, a symlink loop."""
    corrupt = write_model(root, "junk", "1", reacher_model(2))
    raw = bytearray((corrupt / "tensors.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (corrupt / "tensors.npz").write_bytes(bytes(raw))
    staging = root.parent / f"{root.name}-staging"
    bad = write_model(staging, "reacher", "9", reacher_model(3))
    manifest = (bad / "manifest.json").read_text().replace('"hidden": 32', '"hidden": -1')
    (bad / "manifest.json").write_text(manifest)
    shutil.move(str(bad), str(root / "reacher" / "9"))  # appears whole, as a deploy would write it
    os.symlink(root / "loop", root / "loop")


def test_bad_artifacts_dropped_mid_load_fail_no_call_on_good_models(fault_app: Path) -> None:
    assert len(_wait_replicas(2)) == 2
    with Load(_calls()) as load:
        time.sleep(2.0)
        before = load.done
        _drop_bad_artifacts(fault_app)
        time.sleep(6.0)  # 20 reload passes on each replica
    assert load.failures == [], load.failures[:5]
    assert load.done > before + 20, (before, load.done)
    client = WorldModelClient(URL, fmt="json")
    assert client.predict("reacher", np.zeros((1, 4)), [0])["version"] == "1"
    listing = client.request("GET", "/v1/models")
    assert listing[0] == 200, listing
