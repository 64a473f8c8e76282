"""RAdam in one fused pass per step: torch's RAdam update through torch's fused Adam kernel.

``torch.optim.RAdam`` on a CPU runs its update tensor by tensor in about ten elementwise passes
(no fused or foreach kernel is used there by default). With PQN's 4 x 1024 Q-network (3.2M
parameters) that is ~23 ms per minibatch, about half of a training step, where optax's RAdam,
jitted by XLA in the official code, is one fused loop. :class:`FusedRAdam` computes the same update
with ``torch.optim.adam.adam(..., fused=True)`` (one multi-threaded C++ loop over the parameters):

* once the variance estimate is tractable (ρ_t > 5), RAdam's step is Adam's with the learning rate
  scaled by the rectification r_t and ε divided by √(1 − β₂ᵗ):

      θ ← θ − lr · r_t · m̂_t · √(1 − β₂ᵗ) / (√v_t + ε)
        = θ − (lr · r_t) · m̂_t / (√v_t / √(1 − β₂ᵗ) + ε / √(1 − β₂ᵗ));

* in the first steps (ρ_t ≤ 5, t ≤ 5 with β₂ = 0.999) it is momentum SGD, θ ← θ − lr · m̂_t,
  done here with three in-place ops per tensor.

It is a subclass of ``torch.optim.RAdam`` with the same parameter groups and state (``step``,
``exp_avg``, ``exp_avg_sq``), so its state dicts load into either class. The numbers are torch's
RAdam's up to floating-point rounding (the same terms, summed in another order): parameters agree
to ~1e-6 relative after hundreds of steps (tests/agents/test_optim.py). Groups the fused kernel
cannot take (weight decay, ``maximize``, ``differentiable``, ``capturable``, parameters other
than real float32/float64, parameters at different step counts) go through torch's own RAdam step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim.adam import adam
from torch.optim.radam import radam

FUSED_DTYPES = (torch.float32, torch.float64)


def rectification(step: float, beta2: float) -> float | None:
    """RAdam's variance rectification r_t at step t (1-based), or None while ρ_t <= 5 (no adaptive step)."""
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * step * beta2**step / (1.0 - beta2**step)
    if rho_t <= 5.0:
        return None
    return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))


@dataclass
class _GroupTensors:
    """One parameter group's tensors with gradients, as ``torch.optim.RAdam._init_group`` lists them."""

    params: list[torch.Tensor] = field(default_factory=list)
    grads: list[torch.Tensor] = field(default_factory=list)
    exp_avgs: list[torch.Tensor] = field(default_factory=list)
    exp_avg_sqs: list[torch.Tensor] = field(default_factory=list)
    steps: list[torch.Tensor] = field(default_factory=list)


class FusedRAdam(torch.optim.RAdam):
    """``torch.optim.RAdam`` whose step runs through torch's fused Adam kernel (see the module docstring)."""

    @staticmethod
    def _fusable(group: dict[str, Any], t: _GroupTensors) -> bool:
        """Whether the fused kernel can take this group (``_init_group`` has refused sparse gradients)."""
        if group["weight_decay"] != 0 or group["maximize"] or group["differentiable"] or group["capturable"]:
            return False
        return all(p.dtype in FUSED_DTYPES for p in t.params)  # real float32/float64 only

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One RAdam step for every parameter group (fused where :meth:`_fusable`)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            t = _GroupTensors()
            self._init_group(group, t.params, t.grads, t.exp_avgs, t.exp_avg_sqs, t.steps)
            if not t.params:
                continue
            step_values = {float(s) for s in t.steps}
            if len(step_values) != 1 or not self._fusable(group, t):
                self._reference_step(group, t)
                continue
            self._fused_step(group, t, step_values.pop() + 1.0)
        return loss

    @staticmethod
    def _fused_step(group: dict[str, Any], t: _GroupTensors, step: float) -> None:
        """Step ``step`` (1-based) of one group: fused Adam with scaled lr and ε, or momentum SGD early on."""
        beta1, beta2 = (float(b) for b in group["betas"])
        lr = float(group["lr"])
        rect = rectification(step, beta2)
        if rect is not None:
            correction2 = math.sqrt(1.0 - beta2**step)
            adam(t.params, t.grads, t.exp_avgs, t.exp_avg_sqs, [], t.steps, fused=True, amsgrad=False, beta1=beta1,
                 beta2=beta2, lr=lr * rect, weight_decay=0.0, eps=float(group["eps"]) / correction2,
                 maximize=False)  # fmt: skip
            return
        torch._foreach_add_(t.steps, 1.0)
        step_size = lr / (1.0 - beta1**step)
        for param, grad, exp_avg, exp_avg_sq in zip(t.params, t.grads, t.exp_avgs, t.exp_avg_sqs, strict=True):
            exp_avg.lerp_(grad, 1.0 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
            param.add_(exp_avg, alpha=-step_size)

    @staticmethod
    def _reference_step(group: dict[str, Any], t: _GroupTensors) -> None:
        """torch's own RAdam update of one group (what ``torch.optim.RAdam.step`` runs)."""
        beta1, beta2 = group["betas"]
        radam(
            t.params, t.grads, t.exp_avgs, t.exp_avg_sqs, t.steps, beta1=beta1, beta2=beta2, lr=group["lr"],
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
            foreach=group["foreach"], capturable=group["capturable"], differentiable=group["differentiable"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            has_complex=any(torch.is_complex(p) for p in t.params),
        )  # fmt: skip


class GlobalFinitenessStep:
    """Mixin for an RLlib ``TorchLearner``: ``apply_gradients`` with one finiteness test, not two per tensor.

    RLlib tests ``torch.isfinite(grad).all()`` for every gradient tensor, twice; on a CPU that is
    ~18 ms per minibatch with PQN's 4 x 1024 network, more than the optimizer. The global norm is
    non-finite exactly when some entry is NaN or infinite (or the squares overflow), so when it is
    finite every test would pass and the optimizers step as RLlib would; otherwise RLlib's own
    path runs (zeroing non-finite entries, its warnings). LR schedulers and grad scalers, which
    plray does not use, also take RLlib's path. Put it before the learner class in the bases.
    """

    _lr_scheduler_classes: Any  # the TorchLearner's
    _grad_scalers: Any
    _params: Any
    _module_optimizers: Any
    get_optimizer: Callable[..., Any]

    def apply_gradients(self, gradients_dict: dict[Any, Any]) -> None:
        """Set the gradients and step every optimizer (RLlib's path when a gradient is not finite)."""
        grads = [g for g in gradients_dict.values() if g is not None]
        special = self._lr_scheduler_classes is not None or self._grad_scalers is not None
        if special or (grads and not bool(torch.isfinite(torch.nn.utils.get_total_norm(grads, foreach=True)))):
            super().apply_gradients(gradients_dict)  # type: ignore[misc]
            return
        for pid, grad in gradients_dict.items():
            self._params[pid].grad = grad
        for module_id, optimizer_names in self._module_optimizers.items():
            for optimizer_name in optimizer_names:
                self.get_optimizer(module_id, optimizer_name).step()


def fused_adam_like(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """A plain ``torch.optim.Adam`` rebuilt with ``fused=True`` (same parameters and defaults), else itself.

    torch's fused Adam is the same update in one multi-threaded loop (rounding aside); anything else
    (another class, weight decay, amsgrad, maximize, state already built) is returned unchanged.
    """
    if type(optimizer) is not torch.optim.Adam or optimizer.state:
        return optimizer
    d = optimizer.defaults
    if d.get("fused") or d["weight_decay"] or d["amsgrad"] or d["maximize"] or d["differentiable"] or d["capturable"]:
        return optimizer
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if len(optimizer.param_groups) != 1 or not all(p.dtype in (torch.float32, torch.float64) for p in params):
        return optimizer
    return torch.optim.Adam(params, lr=d["lr"], betas=d["betas"], eps=d["eps"], fused=True)
