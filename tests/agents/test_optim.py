"""FusedRAdam against torch's RAdam: the same update up to rounding, the same state, the same fallbacks."""

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch

from plray.agents.optim import FusedRAdam, fused_adam_like, rectification


def _params(dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(64, 32), (32,), (7, 3, 5)]
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_(True) for s in shapes]


def _grads(params: list[torch.Tensor], steps: int, seed: int = 1) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params] for _ in range(steps)]


def _run(
    opt: torch.optim.Optimizer,
    params: list[torch.Tensor],
    grads: list[list[torch.Tensor]],
    lr_at: Callable[[int], Any] | None = None,
    skip: Callable[[int, int], bool] | None = None,
) -> None:
    """Step ``opt`` through ``grads``; ``lr_at(i)``: set the lr before step i; ``skip(i, j)``: param j has no grad."""
    for i, step_grads in enumerate(grads):
        if lr_at is not None:
            for group in opt.param_groups:
                group["lr"] = lr_at(i)
        for j, (p, g) in enumerate(zip(params, step_grads, strict=True)):
            p.grad = None if skip is not None and skip(i, j) else g.clone()
        opt.step()


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-13), (torch.float32, 2e-6)])
def test_same_trajectory_as_torch_radam_on_fixed_gradients(dtype: torch.dtype, tol: float) -> None:
    # 200 steps cover the momentum-only start (rho_t <= 5: steps 1-5) and the rectified phase
    ref, fused = _params(dtype), _params(dtype)
    grads = _grads(ref, 200)
    _run(torch.optim.RAdam(ref, lr=1e-2, betas=(0.9, 0.999), eps=1e-8), ref, grads)
    _run(FusedRAdam(fused, lr=1e-2, betas=(0.9, 0.999), eps=1e-8), fused, grads)
    for a, b in zip(ref, fused, strict=True):
        torch.testing.assert_close(b, a, rtol=tol, atol=tol)


def test_momentum_phase_then_rectified_phase() -> None:
    assert [rectification(t, 0.999) is None for t in range(1, 8)] == [True] * 5 + [False] * 2
    assert 0 < rectification(6, 0.999) < rectification(1000, 0.999) < 1.0 + 1e-12  # r_t rises towards 1
    # one step from zero state: m = (1 - b1) g, bias-corrected to g, so the first step is theta - lr * g
    (p,) = _params(torch.float64)[:1]
    start, g = p.detach().clone(), torch.full_like(p, 0.5)
    opt = FusedRAdam([p], lr=0.1)
    p.grad = g
    opt.step()
    torch.testing.assert_close(p.detach(), start - 0.1 * g)


def test_learning_rate_changed_between_steps_is_used() -> None:
    # RLlib's schedulers write group["lr"] (sometimes as a tensor) before a step
    ref, fused = _params(torch.float64), _params(torch.float64)
    grads = _grads(ref, 20)
    _run(torch.optim.RAdam(ref, lr=1e-2), ref, grads, lr_at=lambda i: 1e-2 / (1 + i))
    _run(FusedRAdam(fused, lr=1e-2), fused, grads, lr_at=lambda i: torch.tensor(1e-2 / (1 + i), dtype=torch.float64))
    for a, b in zip(ref, fused, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


def test_state_dicts_interchange_with_torch_radam() -> None:
    # an RLlib checkpoint taken with either class resumes under the other
    params = _params(torch.float64)
    grads = _grads(params, 30)
    torch_opt = torch.optim.RAdam(params, lr=1e-2)
    _run(torch_opt, params, grads[:10])
    saved_params = [p.detach().clone() for p in params]
    state = copy.deepcopy(torch_opt.state_dict())
    _run(torch_opt, params, grads[10:])
    expected = [p.detach().clone() for p in params]

    resumed = [p.clone().detach().requires_grad_(True) for p in saved_params]
    fused = FusedRAdam(resumed, lr=1e-2)
    fused.load_state_dict(state)
    _run(fused, resumed, grads[10:])
    for a, b in zip(expected, resumed, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    back = torch.optim.RAdam(_params(torch.float64), lr=1e-2)
    back.load_state_dict(fused.state_dict())  # and the other way
    assert float(back.state_dict()["state"][0]["step"]) == 30


def test_checkpoint_resume_is_bit_for_bit() -> None:
    params = _params(torch.float32)
    grads = _grads(params, 40)
    opt = FusedRAdam(params, lr=1e-3)
    _run(opt, params, grads[:20])
    saved = ([p.detach().clone() for p in params], copy.deepcopy(opt.state_dict()))
    _run(opt, params, grads[20:])
    resumed = [p.clone().requires_grad_(True) for p in saved[0]]
    again = FusedRAdam(resumed, lr=1e-3)
    again.load_state_dict(saved[1])
    _run(again, resumed, grads[20:])
    for a, b in zip(params, resumed, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs", [{"weight_decay": 0.1}, {"weight_decay": 0.1, "decoupled_weight_decay": True}])
def test_groups_the_fused_kernel_cannot_take_run_torch_radam_exactly(kwargs: dict) -> None:
    ref, fused = _params(torch.float32), _params(torch.float32)
    grads = _grads(ref, 15)
    _run(torch.optim.RAdam(ref, lr=1e-2, **kwargs), ref, grads)
    _run(FusedRAdam(fused, lr=1e-2, **kwargs), fused, grads)
    for a, b in zip(ref, fused, strict=True):
        assert torch.equal(a, b)


def test_parameters_at_different_step_counts_fall_back_to_torch_radam() -> None:
    # a parameter without a gradient for a while lags behind: the fused kernel needs one step count
    ref, fused = _params(torch.float64), _params(torch.float64)
    grads = _grads(ref, 12)
    lagging = lambda i, j: j == 0 and i < 3  # noqa: E731
    _run(torch.optim.RAdam(ref, lr=1e-2), ref, grads, skip=lagging)
    _run(FusedRAdam(fused, lr=1e-2), fused, grads, skip=lagging)
    for a, b in zip(ref, fused, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


def test_non_finite_gradients_poison_the_step_as_in_torch_radam() -> None:
    ref, fused = _params(torch.float32), _params(torch.float32)
    grads = _grads(ref, 8)
    grads[7][1][3] = float("nan")
    _run(torch.optim.RAdam(ref, lr=1e-2), ref, grads)
    _run(FusedRAdam(fused, lr=1e-2), fused, grads)
    assert torch.isnan(ref[1][3]) and torch.isnan(fused[1][3])
    assert torch.isfinite(fused[0]).all() and torch.isfinite(fused[1][:3]).all()


# ---------------------------------------------------------------- fused_adam_like (the SAC learner's Adam)
def test_fused_adam_like_follows_torch_adam() -> None:
    ours, ref = _params(torch.float32), _params(torch.float32)
    fused = fused_adam_like(torch.optim.Adam(ours, lr=3e-4, eps=1e-7))
    assert fused.defaults["fused"] and fused.defaults["eps"] == 1e-7 and fused.defaults["lr"] == 3e-4
    grads = _grads(ours, 100)
    _run(fused, ours, grads)
    _run(torch.optim.Adam(ref, lr=3e-4, eps=1e-7), ref, grads)
    for p, q in zip(ours, ref, strict=True):
        torch.testing.assert_close(p, q, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: torch.optim.Adam(ps, weight_decay=0.1),
        lambda ps: torch.optim.Adam(ps, amsgrad=True),
        lambda ps: torch.optim.AdamW(ps),
        lambda ps: torch.optim.SGD(ps, lr=0.1),
        lambda ps: torch.optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 1e-2}]),
    ],
)
def test_fused_adam_like_leaves_other_optimizers_alone(make: Callable[[list], torch.optim.Optimizer]) -> None:
    opt = make(_params(torch.float32))
    assert fused_adam_like(opt) is opt
