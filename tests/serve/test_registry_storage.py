"""The model registry on object storage: a real S3-protocol server (moto) on loopback.

``plray serve --models s3://...`` reads through this registry; the HTTP path is exercised by
``tests/experiments/test_rundir.py`` (a run's models served from the bucket)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plray.serve.errors import ApiError
from plray.serve.registry import ModelRegistry
from plray.utils.storage import parse
from tests.serve.conftest import reacher_model, write_model


def _upload(tmp_path: Path, uri: str, model_id: str, version: str, seed: int) -> None:
    local = tmp_path / f"{model_id}-{version}"
    write_model(local, model_id, version, reacher_model(seed), task="reacher")
    parse(uri).join(model_id, version).upload_dir(local / model_id / version)


def test_registry_serves_and_hot_reloads_models_from_s3(bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/models"
    _upload(tmp_path, uri, "reacher", "1", seed=0)
    registry = ModelRegistry(uri, cache_dir=tmp_path / "cache")
    assert registry.ids() == ["reacher"]
    s, a = np.zeros((3, 4)), np.array([0, 4, 8])
    first = registry.get("reacher")
    assert first.version == "1"
    np.testing.assert_allclose(first.model.predict(s, a), reacher_model(0).predict(s, a), atol=1e-12)

    _upload(tmp_path, uri, "reacher", "2", seed=1)  # a new version dropped into the bucket
    assert registry.refresh() == [("reacher", "1", "2")]
    np.testing.assert_allclose(registry.get("reacher").model.predict(s, a), reacher_model(1).predict(s, a))
    assert registry.get("reacher", "1").version == "1"  # pinned versions stay readable


def test_a_corrupt_artifact_in_the_bucket_is_contained(bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/models"
    _upload(tmp_path, uri, "good", "1", seed=0)
    bad = parse(uri).join("bad", "1")
    bad.join("manifest.json").write_text("{not json")
    bad.join("tensors.npz").write_bytes(b"PK\x03\x04garbage")
    registry = ModelRegistry(uri, cache_dir=tmp_path / "cache")
    assert registry.get("good").version == "1"
    with pytest.raises(ApiError) as err:
        registry.get("bad")
    assert err.value.kind == "model_unavailable"
    registry.refresh()
    assert registry.get("good").version == "1"
