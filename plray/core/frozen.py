"""Fast paths for frozen networks: snapshots that follow their network, and oneDNN linears for P-learning.

P-learning evaluates the agent's frozen Q-network three times per sample (Q at s, Q at the
predicted s', and the backward pass to s'), and at the official network sizes (4 x 1024,
6 x 2048) those matmuls are ~90% of the time. torch sends a float32 matmul to MKL, which on AMD
processors runs its AVX2 kernels; oneDNN, bundled with torch, dispatches on the instruction set
(AVX-512 where there is one); :func:`onednn_preferred` says whether that is worth it here (not on
Intel processors, where MKL runs AVX-512 itself). :func:`frozen_copy` gives a copy of a network whose wide
``nn.Linear`` layers run through oneDNN with their weights pre-packed once, forward and the
input-gradient of the backward pass (a frozen layer has no weight gradient). Measured on this
project's machine (AMD EPYC, 2 cores), a whole P-learning step ran 1.2-1.3x faster
(``bench/throughput.py``). The numbers agree with torch's to float32 rounding (|Δ| ~ 1e-6
relative: oneDNN sums in another order), not bit for bit; gradients through a ReLU may differ
more where a pre-activation lies within rounding of 0. A run is still deterministic: the same
seed gives the same numbers on the same machine.

:class:`ParameterWatch` tells whether a module's parameters or buffers changed in place or were
replaced since a snapshot (torch's version counters), so a snapshot (this module's copies,
:class:`plray.core.small_forward.SmallForward`) is rebuilt when its network changes.
"""

from __future__ import annotations

import copy
import functools
import os
from typing import Any

import torch
from torch import Tensor, nn

from plray.utils.validation import PlrayInputError

ONEDNN_MIN_FEATURES = 512
"""``nn.Linear`` layers with at least this many inputs and outputs take oneDNN in :func:`frozen_copy`.

Measured with ``bench/throughput.py`` on an AMD EPYC (a run before
bench/results/throughput_run_amd_3rounds.md): oneDNN made a P-learning step 1.33x faster at
4 x 1024 (batch 4096) and 1.22x at 6 x 2048 (batch 1024), but plray's own 3 x 256 Reacher
network ran 0.85x as fast on it (batch 1024) and 2 x 256 1.05x: the default networks stay on
torch's matmul, and their results stay bit for bit what they were."""

Slot = tuple[dict[str, Any], str, Tensor | None, int]


class ParameterWatch:
    """Whether a module's parameters and buffers changed since :meth:`mark` (in place, loaded or replaced).

    Args:
        module: the module to watch.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self._slots: list[Slot] = []

    def _current(self) -> list[Slot]:
        slots: list[Slot] = []
        for m in self.module.modules():
            for d in (m._parameters, m._buffers):
                slots += [(d, k, t, -1 if t is None else t._version) for k, t in d.items()]
        return slots

    def stale(self) -> bool:
        """True before the first :meth:`mark` and after any change to a parameter or buffer (~1 µs)."""
        if not self._slots:
            return True
        return any(d.get(k) is not t or (t is not None and t._version != v) for d, k, t, v in self._slots)

    def mark(self) -> None:
        """Remember the current parameters and buffers (call after taking a snapshot)."""
        self._slots = self._current()


ONEDNN_ENV = "PLRAY_FROZEN_ONEDNN"
"""Environment override of :func:`onednn_preferred`: ``1`` (oneDNN wherever available), ``0`` (never)."""


@functools.cache
def cpu_vendor() -> str | None:
    """The x86 processor's vendor string (``GenuineIntel``, ``AuthenticAMD``) from /proc/cpuinfo; None elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def onednn_preferred() -> bool:
    """Whether frozen networks should take oneDNN here: available, and the processor is not Intel's.

    MKL, torch's float32 matmul, runs AVX-512 kernels on Intel processors and AVX2 on others;
    oneDNN dispatches on the instruction set. Measured with ``bench/throughput.py`` (medians of 3
    rounds): on an AMD EPYC a P-learning step ran 1.23x (4 x 1024, batch 4096) and 1.28x (6 x 2048,
    batch 1024) faster on oneDNN; on an Intel Xeon with AVX-512 the two were at parity (1.05x and
    0.98x; a single earlier timing gave 0.80x), so there torch's own matmul is kept and results
    stay bit for bit those of torch. ``PLRAY_FROZEN_ONEDNN=1`` / ``0`` overrides.
    """
    forced = os.environ.get(ONEDNN_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1" and onednn_available()
    if forced:
        raise PlrayInputError(f"{ONEDNN_ENV}: expected 0 or 1 (or unset: automatic), got {forced!r}")
    return onednn_available() and cpu_vendor() != "GenuineIntel"


@functools.cache
def onednn_available() -> bool:
    """Whether this torch build runs oneDNN's packed float32 linear (tried once, on a tiny input)."""
    try:
        w = torch.ones(2, 3)
        packed = torch.ops.mkldnn._reorder_linear_weight(w)
        out = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 3), packed, torch.zeros(2), "none", [], "")
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    return bool(torch.allclose(out, torch.full((1, 2), 3.0)))


class _PackedLinearFn(torch.autograd.Function):
    """y = x Wᵀ + b with pre-packed W; backward: ∂L/∂x = (∂L/∂y) W only (the layer is frozen)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, packed: Tensor, packed_t: Tensor, bias: Tensor) -> Tensor:
        ctx.packed_t = packed_t
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        return (
            torch.ops.mkldnn._linear_pointwise(grads[0].contiguous(), ctx.packed_t, None, "none", [], ""),
            None,
            None,
            None,
        )


class PackedLinear(nn.Module):
    """A frozen ``nn.Linear`` (in → out) on oneDNN: (B, in) -> (B, out), differentiable in its input only.

    Args:
        linear: the layer to copy; its weight (out, in) is packed twice (for y = x Wᵀ + b and for
            the backward's (∂L/∂y) W).
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach().float().contiguous()
        bias = linear.bias.detach().float() if linear.bias is not None else torch.zeros(w.shape[0])
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("bias", bias.clone(), persistent=False)
        self._packed = torch.ops.mkldnn._reorder_linear_weight(w)  # opaque oneDNN tensors, not state
        self._packed_t = torch.ops.mkldnn._reorder_linear_weight(w.t().contiguous())

    def forward(self, x: Tensor) -> Tensor:
        """x Wᵀ + b for x (B, in) float32 -> (B, out)."""
        return _PackedLinearFn.apply(x.contiguous(), self._packed, self._packed_t, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, oneDNN"


def frozen_copy(module: nn.Module, min_features: int = ONEDNN_MIN_FEATURES) -> tuple[nn.Module, int]:
    """A frozen copy of ``module`` whose float32 ``nn.Linear`` layers of ≥ ``min_features`` run on oneDNN.

    Args:
        module: any module (left unchanged); its copy has no trainable parameters.
        min_features: the narrowest layer (inputs and outputs) worth oneDNN.

    Returns:
        (the copy in eval mode, the number of layers moved to oneDNN; 0 without oneDNN).
    """
    clone = copy.deepcopy(module).eval().requires_grad_(False)
    if not onednn_available():
        return clone, 0
    wide = [
        (parent, name, child)
        for parent in clone.modules()
        for name, child in parent.named_children()
        if isinstance(child, nn.Linear)
        and min(child.in_features, child.out_features) >= min_features
        and child.weight.dtype == torch.float32
    ]
    for parent, name, child in wide:
        setattr(parent, name, PackedLinear(child))
    return clone, len(wide)
