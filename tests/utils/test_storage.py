"""plray.utils.storage on a local directory and on a real S3-protocol server (moto) on loopback."""

from __future__ import annotations

import pytest

from plray.utils.storage import Location, StorageError, parse, s3_options


def _roundtrip(root: Location, tmp_path) -> None:
    run = root / "run"
    assert not run.exists()
    (run / "agents" / "a" / "result.json").write_json({"x": 1})
    (run / "config.yaml").write_text("name: t\n")
    assert (run / "config.yaml").read_text() == "name: t\n"
    assert (run / "agents" / "a" / "result.json").is_file()
    assert run.join("agents").list() == ["a"]
    assert run.list() == ["agents", "config.yaml"]
    local = tmp_path / "src"
    (local / "sub").mkdir(parents=True)
    (local / "sub" / "w.bin").write_bytes(b"\x00\x01")
    (local / "m.json").write_text("{}")
    (run / "models" / "m").upload_dir(local)
    back = (run / "models" / "m").download_dir(tmp_path / "back")
    assert (back / "sub" / "w.bin").read_bytes() == b"\x00\x01"
    assert (back / "m.json").read_text() == "{}"
    with pytest.raises(StorageError, match="no such file"):
        (run / "missing.json").read_bytes()


def test_local_location(tmp_path) -> None:
    root = parse(tmp_path / "store")
    assert root.is_local and root.local_path == (tmp_path / "store").resolve()
    _roundtrip(root, tmp_path)
    assert parse(f"file://{tmp_path}/store").is_local
    assert not list((tmp_path / "store" / "run").glob(".*.tmp"))  # atomic writes leave no temporaries


def test_s3_location(bucket: str, tmp_path) -> None:
    root = parse(f"s3://{bucket}/prefix")
    assert not root.is_local and str(root) == f"s3://{bucket}/prefix"
    assert str(root / "a" / "b") == f"s3://{bucket}/prefix/a/b"
    _roundtrip(root, tmp_path)


def test_bad_locations(tmp_path) -> None:
    with pytest.raises(StorageError, match="needs a bucket"):
        parse("s3://")
    with pytest.raises(StorageError, match="not a location"):
        parse("nosuchscheme://x/y")
    with pytest.raises(StorageError, match="not a relative name"):
        parse(tmp_path).join("../escape")
    with pytest.raises(StorageError, match="AWS_ENDPOINT_URL"):
        s3_options({"AWS_ENDPOINT_URL": "ftp://h:1"})


def test_s3_options_from_environment() -> None:
    env = {
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000/",
        "AWS_ENDPOINT_URL": "http://other",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    assert s3_options(env) == {"endpoint_override": "127.0.0.1:9000", "scheme": "http", "region": "eu-west-1"}
    assert s3_options({}) == {}
