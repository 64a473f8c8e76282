"""A models directory of small world models and one real Serve deployment over it, shared by tests/serve.

The deployment runs on the suite's Ray runtime (``ray_local``) with Serve's HTTP proxy on
:data:`PORT` and the application under :data:`PREFIX`; it is deleted and Serve shut down at the end.
"""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from plray.core.model_io import save_world_model
from plray.core.neural import NeuralPConfig, SuccessorNetwork
from plray.core.neural_stochastic import GaussianSuccessorNetwork
from plray.core.worldmodel import TabularWorldModel, WorldModel
from plray.core.worldmodel_gaussian import GaussianWorldModel
from plray.core.worldmodel_neural import NeuralWorldModel
from plray.envs import FourRooms

PORT = 18231
PREFIX = "/plray-test"
BASE_URL = f"http://127.0.0.1:{PORT}{PREFIX}"
TOKEN = "test-token-0123456789"


def reacher_model(seed: int = 0, hidden: int = 32) -> NeuralWorldModel:
    """A small deterministic model with the kinematic reacher's shapes (d = 4, 9 actions, angles 0 and 1)."""
    torch.manual_seed(seed)
    cfg = NeuralPConfig(hidden=hidden, output_init_scale=0.5)
    return NeuralWorldModel(SuccessorNetwork(4, 9, angle_dims=(0, 1), config=cfg), cfg)


def continuous_model(seed: int = 0) -> NeuralWorldModel:
    """A small deterministic model with continuous actions (d = 4, ad = 2), the MuJoCo reacher's shapes."""
    torch.manual_seed(seed)
    cfg = NeuralPConfig(hidden=32, output_init_scale=0.5)
    return NeuralWorldModel(SuccessorNetwork(4, None, action_dim=2, angle_dims=(0, 1), config=cfg), cfg)


def gaussian_model(seed: int = 0) -> GaussianWorldModel:
    """A small Gaussian model with MountainCar's shapes (d = 2, 3 actions)."""
    torch.manual_seed(seed)
    cfg = NeuralPConfig(hidden=16, output_init_scale=0.5)
    return GaussianWorldModel(GaussianSuccessorNetwork(2, 3, config=cfg), cfg)


def write_model(root: Path, model_id: str, version: str | None, model: WorldModel, **manifest: object) -> Path:
    """Save an artifact as ``<root>/<id>/<version>/`` (or ``<root>/<id>/`` when version is None)."""
    path = root / model_id if version is None else root / model_id / version
    fields = {"task": "none", "method": "test", "gamma": 0.9, **manifest}
    return save_world_model(path, model, fields)


def populate(root: Path) -> None:
    """The test models: every model kind, both layouts, two versions, one broken artifact."""
    write_model(root, "reacher", "1", reacher_model(0), task="reacher", metrics={"state": {"wm_nmse": 0.5}})
    write_model(root, "reacher", "2", reacher_model(1), task="reacher", metrics={"state": {"wm_nmse": 0.1}})
    write_model(root, "pets", "1", continuous_model(0), task="mujoco-reacher")
    write_model(root, "mc-gauss", "1", gaussian_model(0), task="mountaincar-position")
    write_model(
        root,
        "fourrooms",
        None,
        TabularWorldModel(FourRooms("windy").kernel),
        task="fourrooms",
        identifiability={"rank": 68, "sigma_min": 0.01},
    )
    broken = write_model(root, "broken", "1", reacher_model(2))
    raw = bytearray((broken / "tensors.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (broken / "tensors.npz").write_bytes(bytes(raw))
    write_model(root, "hot", "1", reacher_model(0))  # task "none": goals of kind task are refused


def wait_healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.time() > deadline:
            raise TimeoutError(f"{url}/healthz did not answer in {timeout} s")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    populate(root)
    outside = tmp_path_factory.mktemp("outside")
    write_model(outside, "secret", None, reacher_model(3))
    os.symlink(outside / "secret", root / "escape")  # a symlink out of the directory: must stay invisible
    return root


@pytest.fixture(scope="session")
def server(ray_local, models_dir: Path):
    """One Serve deployment for every test in tests/serve: (base URL, models directory)."""
    from ray import serve

    from plray.serve.app import build_app

    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    settings = {
        "models": str(models_dir),
        "reload_interval_s": 0.5,
        "max_body_bytes": 4 << 20,
        "max_batch": 100_000,
        "max_rollout_steps": 200_000,
        "compute_threads": 2,
        "deployment": {"num_replicas": 1, "max_ongoing_requests": 64, "ray_actor_options": {"num_cpus": 0}},
    }
    serve.run(build_app(settings), name="plray-test", route_prefix=PREFIX, blocking=False)
    wait_healthy(BASE_URL)
    yield BASE_URL, models_dir
    serve.delete("plray-test")
    serve.shutdown()
