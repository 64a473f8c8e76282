"""Bad artifacts never break the service: each defect of issue 16 as a file dropped into a models
directory, first against the registry (no Ray), then against the real Serve deployment of conftest.py.

Each defect is contained to its artifact: listed under ``unavailable`` with its reason, listing and
reload continue past it, and a good version dropped beside it is served.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests

from plray.core.worldmodel import TabularWorldModel
from plray.serve.registry import ModelRegistry
from plray.utils.artifact import MANIFEST, TENSORS, sha256_file
from tests.serve.conftest import reacher_model, write_model


def _edit_manifest(path: Path, edit) -> None:
    manifest = json.loads((path / MANIFEST).read_text())
    edit(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest))


def _set(*keys: str, value: object):
    def edit(manifest: dict) -> None:
        node = manifest
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


def _zip_bomb(path: Path) -> None:
    """Replace one tensor by a member that inflates to 64 MiB (declared: its real, small shape)."""
    manifest = json.loads((path / MANIFEST).read_text())
    name = sorted(manifest["tensors"])[0]
    buf = io.BytesIO()
    with zipfile.ZipFile(path / TENSORS) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == f"{name}.npy":
                data = data + bytes(64 << 20)
            dst.writestr(info.filename, data)
    (path / TENSORS).write_bytes(buf.getvalue())
    manifest["sha256"][TENSORS] = sha256_file(path / TENSORS)
    (path / MANIFEST).write_text(json.dumps(manifest))


def drop_bad_artifacts(root: Path) -> dict[str, str]:
    """Write one artifact per defect under ``root``; return {model id: words expected in its reason}."""
    expected = {}
    for model_id, edit, words in [
        ("bad-hidden", _set("model", "config", "hidden", value=-1), "failed to load"),
        ("bad-angles", _set("model", "angle_dims", value=[0, 7]), "angle_dims"),
        ("bad-gamma", _set("gamma", value="fast"), "gamma"),
        ("bad-gamma-range", _set("gamma", value=3.0), "gamma"),
        ("bad-task", _set("task", value={"nested": [1]}), "task"),
    ]:
        _edit_manifest(write_model(root, model_id, "1", reacher_model(0)), edit)
        expected[model_id] = words
    rng = np.random.default_rng(0)
    P = rng.random((5, 2, 5))
    half = P / P.sum(-1, keepdims=True) * 0.5
    write_model(root, "bad-kernel-sum", None, TabularWorldModel(half, project=False))
    expected["bad-kernel-sum"] = "sums to 0.5"
    neg = P / P.sum(-1, keepdims=True)
    neg[0, 0, 0], neg[0, 0, 1] = -0.2, neg[0, 0, 1] + neg[0, 0, 0] + 0.2
    write_model(root, "bad-kernel-neg", None, TabularWorldModel(neg, project=False))
    expected["bad-kernel-neg"] = "negative"
    _zip_bomb(write_model(root, "bad-bomb", "1", reacher_model(0)))
    expected["bad-bomb"] = "inflates"
    os.symlink("bad-loop", root / "bad-loop")  # a symlink loop: invisible, never a 500
    (root / "bad-loop2").mkdir()
    os.symlink("1", root / "bad-loop2" / "1")
    return expected


def test_each_bad_artifact_is_contained_in_the_registry(tmp_path: Path) -> None:
    write_model(tmp_path, "good", "1", reacher_model(0))
    expected = drop_bad_artifacts(tmp_path)
    registry = ModelRegistry(tmp_path)
    failed = registry.load_all()  # a replica's start: never raises
    assert sorted(failed) == sorted(expected)
    assert set(registry.loaded()) == {"good"}
    assert "bad-loop" not in registry.ids() and "bad-loop2" not in registry.ids()
    for model_id, words in expected.items():
        with pytest.raises(Exception) as info:
            registry.get(model_id)
        assert getattr(info.value, "kind", None) == "model_unavailable", (model_id, info.value)
        assert words in info.value.detail, (model_id, info.value.detail)
        assert str(tmp_path) not in info.value.detail
    # reload continues past the bad ones: a good version beside a bad one is served
    write_model(tmp_path, "bad-hidden", "2", reacher_model(1))
    write_model(tmp_path, "good", "2", reacher_model(1))
    swaps = registry.refresh()
    assert {(m, new) for m, _, new in swaps} >= {("bad-hidden", "2"), ("good", "2")}
    assert registry.get("bad-hidden").version == "2"


def test_the_zip_bomb_is_refused_before_decompressing(tmp_path: Path) -> None:
    path = write_model(tmp_path, "bomb", "1", reacher_model(0))
    _zip_bomb(path)
    assert (path / TENSORS).stat().st_size < 2 << 20  # small on disk, 64 MiB inflated
    registry = ModelRegistry(tmp_path)
    with pytest.raises(Exception, match="inflates to"):
        registry.get("bomb")


@pytest.mark.ray
@pytest.mark.slow
def test_bad_artifacts_in_a_served_directory(server, tmp_path: Path) -> None:
    url, models_dir = server
    expected = drop_bad_artifacts(tmp_path)  # built aside, then each moved in whole (no half-written artifact)
    for name in sorted(os.listdir(tmp_path)):
        os.rename(tmp_path / name, models_dir / name)
    deadline = time.time() + 30
    while True:
        listing = requests.get(f"{url}/v1/models", timeout=30)
        assert listing.status_code == 200, listing.text
        unavailable = listing.json()["unavailable"]
        if set(expected) <= set(unavailable) or time.time() > deadline:
            break
        time.sleep(0.5)
    for model_id, words in expected.items():
        assert words in unavailable[model_id], (model_id, unavailable.get(model_id))
        r = requests.post(f"{url}/v1/models/{model_id}/predict", json={"states": [[0, 0, 0, 0]], "actions": [0]})
        assert r.status_code == 503 and r.json()["error"] == "model_unavailable", (model_id, r.text)
        assert str(models_dir) not in r.text
    for loop in ("bad-loop", "bad-loop2"):
        r = requests.post(f"{url}/v1/models/{loop}/predict", json={"states": [[0, 0, 0, 0]], "actions": [0]})
        assert r.status_code == 404, (loop, r.status_code, r.text)
    assert requests.post(f"{url}/v1/admin/reload", timeout=30).status_code == 200
    ok = requests.post(f"{url}/v1/models/reacher/predict", json={"states": [[0, 0, 0, 0]], "actions": [0]})
    assert ok.status_code == 200, ok.text


def test_rollout_costs_are_bounded_before_computing() -> None:
    from plray.serve import engine
    from plray.serve.errors import ApiError

    model = reacher_model(0)
    s = np.zeros((1, 4))
    with pytest.raises(ApiError) as info:
        engine.rollout(model, s, np.zeros((1, 0), dtype=np.int64))
    assert info.value.status == 422 and "horizon" in info.value.detail
    with pytest.raises(ApiError) as info:
        engine.rollout(model, s, np.zeros((1, 20_000), dtype=np.int64))
    assert info.value.status == 413 and "horizon H" in info.value.detail and "1,000" in info.value.detail
    stop = engine.Deadline(60.0)
    stop.cancelled.set()  # the client left: the work stops at the next step
    with pytest.raises(ApiError, match="closed the connection"):
        engine.rollout(model, s, np.zeros((1, 10), dtype=np.int64), deadline=stop)
    with pytest.raises(ApiError) as info:
        engine.rollout(model, s, np.zeros((1, 10), dtype=np.int64), deadline=engine.Deadline(0.0))
    assert info.value.kind == "deadline_exceeded"
