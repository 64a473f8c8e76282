"""bench/bellman_probe.py's report and its refusals (the probe itself: tests/evaluation/test_probe.py)."""

import pytest

from bench import bellman_probe


def _row() -> dict:
    return {
        "task": "reacher", "source": "agent", "algorithm": "pqn", "goal_set": "paper4", "num_goals": 4,
        "env_steps": 1000, "success_rate": 0.5, "dims": ["θ1", "θ2", "ω1", "ω2"],
        "probe": {"scales": [0.0, 1.0], "residual": [[2.0, 1.0], [1.0, 2.0], [3.0, 1.0], [1.0, 1.5]],
                  "favoured_scale": [1.0, 0.0, 1.0, 0.0], "contrast": [2.0, 0.5, 3.0, 0.667]},
    }  # fmt: skip


def test_report_names_each_dimension() -> None:
    flat = bellman_probe._flat(_row())
    assert flat["c*_ω1"] == 1.0 and flat["R0/R1_θ2"] == 0.5
    text = bellman_probe.markdown([_row()], {"argv": ["--agent", "a"], "load": 1.0,
                                             "machine": {"cpus": 2, "commit": "abc", "date": "today"}})  # fmt: skip
    assert "c*_ω2" in text and "## reacher pqn 1000 steps: residual R(c)" in text
    assert "c=0" in text and "c=1" in text and "load average 1.00" in text


def test_refuses_a_directory_without_an_agent(tmp_path) -> None:
    with pytest.raises(SystemExit):
        bellman_probe.main(["--agent", str(tmp_path)])
