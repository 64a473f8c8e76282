"""Neural P-learning's progress output leaves results bit-equal, and matches the numbers of the code before it.

The reference values below were produced by plray/core/neural.py as it was before the progress
output (issue 18) was added, on the same setup (MountainCar, a 2 x 64 LayerNorm sigmoid Q-network,
seed 0, one torch thread). They are compared at a relative 1e-6: bit-equal on the machine that made
them; MKL may reorder float32 sums on another CPU.
"""

import io
import logging

import numpy as np
import pytest
import torch

from plray.core import PlrayInputError
from plray.core.neural import Checkpointing, NeuralPConfig, PLearningResult, ProgressPrinter, train_successor

REFERENCE = {  # losses[0], losses[-1], sum(losses), sum of every network weight (float64)
    "first": 0.12314438074827194,
    "last": 0.07199804484844208,
    "sum": 2.7225230745971203,
    "weights": -30.917326320697043,
}
CFG = NeuralPConfig(steps=30, batch_size=128, schedule="cosine", lr=1e-3)


@pytest.fixture(scope="module")
def setup():
    from plray.agents.modules import GoalQNetwork
    from plray.agents.qsource import NetworkQSource
    from plray.envs.registry import make_task

    task = make_task("mountaincar-position")
    torch.manual_seed(0)
    net = GoalQNetwork(task.obs_dim + task.goal_dim, 3, hiddens=(64, 64), sigmoid=True)
    return NetworkQSource(net, task, task.gamma), task


def run(setup, **kwargs) -> PLearningResult:
    source, task = setup
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sampler = lambda rng, n: task.sample_states(n, rng)  # noqa: E731
        return train_successor(source, task, sampler, np.asarray(task.training_goals), CFG, **kwargs)
    finally:
        torch.set_num_threads(threads)


def weights(res: PLearningResult) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in res.network.state_dict().items()}


def test_matches_the_numbers_of_the_code_before_the_change(setup) -> None:
    res = run(setup)
    got = {
        "first": res.losses[0],
        "last": res.losses[-1],
        "sum": sum(res.losses),
        "weights": sum(float(p.double().sum()) for p in res.network.state_dict().values()),
    }
    assert got == pytest.approx(REFERENCE, rel=1e-6)


def test_progress_printer_and_logging_leave_results_bit_equal(setup, caplog) -> None:
    plain = run(setup)
    stream = io.StringIO()
    printer = ProgressPrinter("P-learning", CFG.steps, CFG.batch_size, every_s=0.0, stream=stream)
    printed = run(setup, progress=printer, progress_every=1)
    with caplog.at_level(logging.INFO, logger="plray.core.neural"):
        logged = run(setup)
    assert plain.losses == printed.losses == logged.losses
    for a, b in ((plain, printed), (plain, logged)):
        wa, wb = weights(a), weights(b)
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    lines = stream.getvalue().splitlines()
    assert len(lines) == CFG.steps  # every step, as asked (every_s=0)
    assert lines[-1].startswith(f"[P-learning] step {CFG.steps}/{CFG.steps}  loss ")
    assert "samples/s" in lines[-1] and "s left" in lines[-1]
    assert any("samples/s" in r.getMessage() for r in caplog.records)  # the last step is always logged


def test_printer_is_rate_limited_but_reports_the_last_step() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter("x", 300, 10, every_s=3600.0, stream=stream)
    for step in (100, 200, 300):
        printer(step, 0.5)
    lines = stream.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ["100/300", "300/300"]
    assert "1 s left" not in lines[0] and "samples/s" in lines[1]


def test_resume_with_progress_is_bit_equal_to_the_uninterrupted_run(setup) -> None:
    saved: list[dict[str, np.ndarray]] = []
    full = run(setup, checkpoint=Checkpointing(saved.append, every=10))
    printer = ProgressPrinter("resume", CFG.steps, CFG.batch_size, every_s=0.0, stream=io.StringIO())
    resumed = run(setup, progress=printer, progress_every=5, checkpoint=Checkpointing(lambda _s: None, state=saved[0]))
    assert resumed.losses == full.losses
    wa, wb = weights(full), weights(resumed)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert printer.lines[0].split()[2] == "15/30"  # the resumed run reports from where it resumed


def test_bad_progress_every(setup) -> None:
    with pytest.raises(PlrayInputError, match="progress_every"):
        run(setup, progress=lambda _s, _l: None, progress_every=0)
