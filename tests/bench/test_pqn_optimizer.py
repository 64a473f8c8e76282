"""bench/pqn_optimizer.py's summary, report and refusals (the optimizer itself: tests/agents/test_optim.py)."""

import os

import pytest

from bench.common import check_rows


@pytest.fixture(scope="module")
def bench():
    saved = dict(os.environ)  # the bench sets OMP_NUM_THREADS=1 for its own runs; keep it out of the session
    from bench import pqn_optimizer

    os.environ.clear()
    os.environ.update(saved)
    return pqn_optimizer


def _row(optimizer: str, seed: int, wm: float) -> dict:
    return {
        "task": "mountaincar-position", "source": "agent", "algorithm": "pqn", "goal_set": "paper4",
        "num_goals": 4, "label": f"x-{optimizer}-s{seed}", "optimizer": optimizer, "seed": seed,
        "env_steps": 1000, "train_wall_s": 1.0, "env_steps_per_s": 1000.0 + seed, "success_rate": 0.5,
        "q_nmse": 0.1, "q_nmse_rollout": 0.2, "wm_nmse": wm, "wm_nmse_per_dim": [wm, wm],
        "p_steps": 10, "extraction_s": 1.0, "load1": 1.0,
    }  # fmt: skip


def test_summary_gives_mean_and_seed_range_per_optimizer(bench) -> None:
    rows = [_row("torch-radam", 0, 0.01), _row("fused-radam", 0, 0.02), _row("fused-radam", 1, 0.04)]
    check_rows("pqn_optimizer", rows)  # world-model rows carry the keys every results file needs
    summary = {r["optimizer"]: r for r in bench.summary_rows(rows)}
    assert summary["torch-radam"]["seeds"] == 1 and summary["fused-radam"]["seeds"] == 2
    assert summary["fused-radam"]["wm_nmse"] == "0.03 [0.02, 0.04]"
    machine = {"cpus": 2, "processor": "x", "plray": "0", "commit": "abc", "date": "today"}
    payload = {"command": "c", "machine": machine, "torch_threads": 1, "p_steps": 10, "rows": rows}
    text = bench.markdown(payload)
    assert "| fused-radam |" in text and "but 10 steps" in text and "wm_nmse_per_dim" not in text


def test_refuses_an_unknown_config(bench) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--config", "no-such-config.yaml"])
