"""Frozen networks on oneDNN (plray.core.frozen): the same numbers as torch's to float32 rounding, deterministic."""

import numpy as np
import pytest
import torch
from torch import nn

from plray.core import frozen
from plray.core.frozen import ONEDNN_MIN_FEATURES, PackedLinear, ParameterWatch, frozen_copy, onednn_available
from plray.core.neural import Checkpointing, NeuralPConfig, train_successor
from plray.utils.validation import PlrayInputError

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN linear")
WIDE = ONEDNN_MIN_FEATURES


def _mlp(act: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, WIDE), act(), nn.Linear(WIDE, WIDE), nn.LayerNorm(WIDE), act(), nn.Linear(WIDE, 3)
    )


@needs_onednn
def test_the_copy_computes_what_the_network_does_and_leaves_it_alone() -> None:
    net = _mlp()
    copy, moved = frozen_copy(net)
    assert moved == 1 and isinstance(copy[2], PackedLinear)  # only the WIDE x WIDE layer is wide enough
    assert isinstance(net[2], nn.Linear) and all(p.requires_grad for p in net.parameters())
    assert not any(p.requires_grad for p in copy.parameters())
    x = torch.randn(300, 6, requires_grad=True)
    y0 = net(x)
    (g0,) = torch.autograd.grad(y0.sum(), x)
    x1 = x.detach().clone().requires_grad_(True)
    y1 = copy(x1)
    (g1,) = torch.autograd.grad(y1.sum(), x1)
    torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g1, g0, rtol=1e-5, atol=1e-6)  # tanh: no ReLU kink to flip


@needs_onednn
def test_narrow_layers_and_no_onednn_keep_torch() -> None:
    net = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))
    copy, moved = frozen_copy(net)
    assert moved == 0 and all(isinstance(m, nn.Linear | nn.ReLU) for m in copy)
    x = torch.randn(5, 4)
    assert torch.equal(copy(x), net(x))


def test_the_watch_sees_in_place_loaded_and_replaced_weights() -> None:
    net = _mlp()
    watch = ParameterWatch(net)
    assert watch.stale()
    watch.mark()
    assert not watch.stale()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    assert watch.stale()
    watch.mark()
    net.load_state_dict(net.state_dict())
    assert watch.stale()
    watch.mark()
    net[0].bias = nn.Parameter(torch.zeros(WIDE))
    assert watch.stale()


@pytest.fixture(scope="module")
def mountaincar():
    from plray.agents.modules import GoalQNetwork
    from plray.envs.registry import make_task

    task = make_task("mountaincar-position")
    torch.manual_seed(0)
    return task, GoalQNetwork(task.obs_dim + task.goal_dim, 3, hiddens=(WIDE, WIDE), sigmoid=True)


def _train(task, net, onednn: bool, steps: int = 30, **kwargs):
    from plray.agents.qsource import NetworkQSource

    source = NetworkQSource(net, task, task.gamma, onednn=onednn)
    cfg = NeuralPConfig(steps=steps, batch_size=256, schedule="cosine", lr=1e-3)
    res = train_successor(source, task, lambda rng, n: task.sample_states(n, rng), task.training_goals, cfg, **kwargs)
    return res, source


@needs_onednn
def test_p_learning_on_onednn_matches_torch_within_float32_rounding_and_repeats_bit_for_bit(mountaincar) -> None:
    task, net = mountaincar
    ref, src_ref = _train(task, net, onednn=False)
    fast, src_fast = _train(task, net, onednn=True)
    again, _ = _train(task, net, onednn=True)
    assert src_ref.onednn_layers == 0 and src_fast.onednn_layers == 1
    np.testing.assert_allclose(fast.losses, ref.losses, rtol=1e-4)  # the documented tolerance
    for k, v in ref.network.state_dict().items():
        torch.testing.assert_close(fast.network.state_dict()[k], v, rtol=1e-3, atol=1e-5)
    assert fast.losses == again.losses  # deterministic: the same seed, the same numbers
    for k, v in fast.network.state_dict().items():
        assert torch.equal(again.network.state_dict()[k], v)


@needs_onednn
def test_p_learning_on_onednn_resumes_bit_for_bit(mountaincar, tmp_path) -> None:
    task, net = mountaincar
    whole, _ = _train(task, net, onednn=True, steps=20)
    saved: list[dict] = []
    _train(task, net, onednn=True, steps=20, checkpoint=Checkpointing(save=saved.append, every=10))
    resumed, _ = _train(
        task, net, onednn=True, steps=20, checkpoint=Checkpointing(save=lambda s: None, every=10, state=saved[0])
    )
    assert resumed.losses == whole.losses
    for k, v in whole.network.state_dict().items():
        assert torch.equal(resumed.network.state_dict()[k], v)


@needs_onednn
def test_the_q_source_follows_a_change_of_its_networks_weights(mountaincar) -> None:
    from plray.agents.modules import GoalQNetwork
    from plray.agents.qsource import NetworkQSource

    task, _ = mountaincar
    torch.manual_seed(1)
    net = GoalQNetwork(task.obs_dim + task.goal_dim, 3, hiddens=(WIDE, WIDE), sigmoid=False)
    source = NetworkQSource(net, task, task.gamma, onednn=True)
    obs, goals = torch.rand(64, task.obs_dim), torch.rand(64, task.goal_dim)
    torch.testing.assert_close(source.q_values(obs, goals), net(torch.cat([obs, goals], 1)), rtol=1e-5, atol=1e-6)
    assert source.onednn_layers == 1
    with torch.no_grad():
        net.trunk[3].weight.mul_(-1.0)  # the 512 x 512 layer, changed in place: the copy is rebuilt
    torch.testing.assert_close(source.q_values(obs, goals), net(torch.cat([obs, goals], 1)), rtol=1e-5, atol=1e-6)


@needs_onednn
def test_onednn_is_preferred_off_intel_and_can_be_forced(monkeypatch) -> None:
    from plray.agents.modules import GoalQNetwork
    from plray.agents.qsource import NetworkQSource
    from plray.envs.mountaincar import MountainCarTask

    monkeypatch.delenv(frozen.ONEDNN_ENV, raising=False)
    monkeypatch.setattr(frozen, "cpu_vendor", lambda: "GenuineIntel")  # MKL runs AVX-512 there itself
    assert not frozen.onednn_preferred()
    task = MountainCarTask(goal="position")
    net = GoalQNetwork(task.obs_dim + task.goal_dim, 3, hiddens=(WIDE, WIDE), sigmoid=False)
    obs, goals = torch.rand(8, task.obs_dim), torch.rand(8, task.goal_dim)
    source = NetworkQSource(net, task, task.gamma)
    source.q_values(obs, goals)
    assert not source.onednn and source.onednn_layers == 0
    monkeypatch.setattr(frozen, "cpu_vendor", lambda: "AuthenticAMD")
    assert frozen.onednn_preferred()
    source = NetworkQSource(net, task, task.gamma)
    source.q_values(obs, goals)
    assert source.onednn and source.onednn_layers == 1
    monkeypatch.setenv(frozen.ONEDNN_ENV, "0")
    assert not frozen.onednn_preferred()
    monkeypatch.setattr(frozen, "cpu_vendor", lambda: "GenuineIntel")
    monkeypatch.setenv(frozen.ONEDNN_ENV, "1")
    assert frozen.onednn_preferred()
    monkeypatch.setenv(frozen.ONEDNN_ENV, "yes")
    with pytest.raises(PlrayInputError, match="PLRAY_FROZEN_ONEDNN: expected 0 or 1"):
        frozen.onednn_preferred()


def test_cpu_vendor_reads_proc_cpuinfo() -> None:
    from pathlib import Path

    info = Path("/proc/cpuinfo")
    text = info.read_text(errors="replace") if info.exists() else ""
    vendor = frozen.cpu_vendor()
    if "vendor_id" in text:  # x86 Linux: the first vendor_id line's value
        assert vendor and f"vendor_id\t: {vendor}" in text
    else:
        assert vendor is None
