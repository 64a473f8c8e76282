"""Hot reload under concurrent requests: new versions are swapped in while clients keep asking, with
zero failed requests, and every answer is exactly the prediction of the version it names."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from plray.serve.client import WorldModelClient
from tests.serve.conftest import reacher_model, write_model

pytestmark = pytest.mark.ray


def test_hot_reload_under_concurrent_requests(server) -> None:
    url, models_dir = server
    rng = np.random.default_rng(0)
    states, actions = rng.uniform(-2, 2, size=(8, 4)), rng.integers(9, size=8)
    models = {"1": reacher_model(0), **{str(v): reacher_model(seed=10 + v) for v in range(2, 5)}}  # "1": conftest's
    expected = {v: m.predict(states, actions) for v, m in models.items()}
    stop = threading.Event()
    seen: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker(fmt: str) -> None:
        client = WorldModelClient(url, fmt=fmt)
        while not stop.is_set():
            try:
                out = client.predict("hot", states, actions)
                version = out["version"]
                if not np.allclose(out["next_states"], expected[version], atol=1e-5):
                    raise AssertionError(f"answer of version {version} is not that version's prediction")
                with lock:
                    seen.append(version)
            except Exception as exc:  # every failure counts
                with lock:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(fmt,)) for fmt in ("json", "arrow", "json", "arrow")]
    for t in threads:
        t.start()
    try:
        for version in ("2", "3", "4"):
            time.sleep(1.0)
            write_model(models_dir, "hot", version, models[version])
        deadline = time.time() + 30
        while time.time() < deadline:
            with lock:
                if seen and seen[-1] == "4":
                    break
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert failures == [], failures[:5]
    assert seen[-1] == "4" and {"1", "4"} <= set(seen), sorted(set(seen))
    assert len(seen) > 50
    # versions only move forward for each client's successive answers as a whole
    order = [int(v) for v in seen]
    assert order.index(4) > order.index(1)
