"""bench/goalsets.py: rows of an earlier collection join a new one (seeds whose run directories are gone)."""

import argparse
import json

import pytest

from bench import goalsets


def test_included_rows_are_marked_with_their_file(tmp_path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"task": "mountaincar-position", "rows": [{"cell": "c", "seed": 0, "wm_nmse": 0.1}]}))
    task, rows = goalsets.included_rows(path, argparse.ArgumentParser())
    assert task == "mountaincar-position" and rows == [{"cell": "c", "seed": 0, "wm_nmse": 0.1, "from": str(path)}]


def test_a_file_that_is_not_a_collection_is_refused(tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("[1, 2]")
    with pytest.raises(SystemExit):
        goalsets.included_rows(path, argparse.ArgumentParser())
    with pytest.raises(SystemExit):  # neither --run-dir nor --include
        goalsets.main(["--name", "never-written"])
