"""Every world-model row of bench/results/*.json can be read back by machine (bench.common.WM_ROW_KEYS)."""

from __future__ import annotations

import json

import pytest

from bench.common import RESULTS, WM_ROW_KEYS, check_rows, write_results

FILES = sorted(RESULTS.glob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_world_model_rows_carry_the_identifying_fields(path) -> None:
    rows = json.loads(path.read_text()).get("rows")
    check_rows(path.stem, rows)
    for row in rows if isinstance(rows, list) else []:
        if "wm_nmse" in row and row["wm_nmse"] is not None:
            assert isinstance(row["wm_nmse"], float) and row["wm_nmse"] >= 0, (path.name, row)
        if "source" in row and "goal_set" in row:
            assert row["source"] in ("agent", "oracle", "supervised", "truth", "constructed"), (path.name, row)


def test_write_results_refuses_a_world_model_row_without_them(tmp_path, monkeypatch) -> None:
    import bench.common as common

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    row = dict.fromkeys(WM_ROW_KEYS, "x")
    write_results("ok", {"rows": [row, {"samples_per_s": 1.0}]}, "# ok")  # a throughput row is not a WM row
    assert (tmp_path / "ok.json").is_file()
    with pytest.raises(ValueError, match=r"rows\[0\]: a world-model row without \['algorithm', 'goal_set'\]"):
        write_results("bad", {"rows": [{"task": "reacher", "source": "agent", "num_goals": 4, "wm_nmse": 0.1}]}, "")
    assert not (tmp_path / "bad.json").exists()
