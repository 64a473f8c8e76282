"""Tabular P-learning: recover a kernel P (S, A, K) from Q (S, A, G) and the Bellman matrix M (G, K).

Every (s, a) gives one linear system ``M @ P(s, a, :) = Q(s, a, :)`` (see :mod:`plray.core.bellman`).
The methods differ in how they solve it (docs/method.md#extraction-methods):

* ``closed-form``: P(s, a) = M⁺ Q(s, a) (+ (I − M⁺M) P₀(s, a) when P₀ is given), Theorem 1's limit.
  With ``project=True`` each row is then projected (Euclidean) onto the probability simplex; the
  paper does not project, so it is off by default. It changes nothing when M has full column rank
  and Q is exact, and it turns least-squares rows into distributions when it has not or Q is noisy.
* ``gradient``: full-batch gradient descent on ½‖M P(s, a) − Q(s, a)‖², P ← P − α Mᵀ(M P − Q), for
  any 0 < α < 2/σ_max(M)²; from P₀ it converges to M⁺Q + (I − M⁺M) P₀ (Theorem 1).
* ``sampled``: the paper's general algorithm (docs/method.md#sampled) over softmax logits φ: sample (s, a, g) ~ d,
  two independent next states s'₁, s'₂ ~ P_φ(s, a), δⁱ = M[g, s'ᵢ] − Q(s, a, g) and the
  score-function gradient ĝ = δ¹ δ² ∇_φ log P_φ(s'₂ | s, a), an unbiased estimate of the gradient
  of ½ E_d[δ_φ²]. Here the a' ~ π(s', g) draw is integrated exactly: M already holds
  r + γ(1 − done)V with V the agent's own state value.
* ``simplex``: least squares constrained to the probability simplex, min Σ ½‖M P(s, a) − Q(s, a)‖²
  subject to P(s, a) ∈ Δ, solved by accelerated projected gradient (FISTA), optionally with each
  row supported on a candidate set of successors (e.g. a state's neighbours). Not in the paper: it
  adds what every kernel row is known to be, a distribution, which identifies sparse kernels from
  far fewer goals than |S| (see docs/extraction.md for the FourRooms figures).
* ``column-match``: deterministic kernels from few goals: the successor of (s, a) is the column of M
  nearest Q(s, a, ·) in ℓ₁, k̂ = argmin_k ‖M[:, k] − Q(s, a, :)‖₁ (docs/method.md#column-match).
* ``value-argmin`` and ``wvf``: the baselines of :mod:`plray.core.baselines`.

The dispatch over all methods is :func:`plray.core.extraction.extract`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from plray.core.kernel import check_qm, one_hot_kernel, project_simplex
from plray.core.types import FloatArray, IntArray
from plray.utils.validation import PlrayInputError, as_float_array, check_choice, check_shape

__all__ = ["check_qm", "one_hot_kernel", "project_simplex"]  # re-exported: the kernel primitives' home is kernel.py


def _check_p0(P0: object | None, S: int, A: int, K: int) -> FloatArray | None:
    if P0 is None:
        return None
    P0 = as_float_array(P0, "P0", ndim=3)
    check_shape(P0, "P0", (S, A, K), ("S", "A", "K"))
    return P0


def closed_form(Q: FloatArray, M: FloatArray, *, P0: FloatArray | None = None, project: bool = False) -> FloatArray:
    """P(s, a) = M⁺ Q(s, a) + (I − M⁺M) P₀(s, a), optionally projected onto the simplex.

    Args:
        Q: (S, A, G); M: (G, K); P0: optional (S, A, K) initial kernel for the null-space part.

    Returns:
        kernel, shape (S, A, K).
    """
    Q, M = check_qm(Q, M)
    S, A, _ = Q.shape
    P0 = _check_p0(P0, S, A, M.shape[1])
    pinv = np.linalg.pinv(M)  # (K, G)
    P = np.einsum("kg,sag->sak", pinv, Q)
    if P0 is not None:
        null = np.eye(M.shape[1]) - pinv @ M
        P = P + np.einsum("kj,saj->sak", null, P0)
    return project_simplex(P) if project else P


def gradient_descent(
    Q: FloatArray,
    M: FloatArray,
    *,
    P0: FloatArray | None = None,
    step_size: float | None = None,
    max_iters: int = 200_000,
    tol: float = 1e-12,
) -> tuple[FloatArray, dict[str, Any]]:
    """Full-batch gradient descent P ← P − α Mᵀ(M P − Q) on every (s, a) at once.

    Args:
        Q: (S, A, G); M: (G, K).
        P0: initial kernel (S, A, K); default uniform over the K candidates.
        step_size: α, which must satisfy 0 < α < 2/σ_max(M)²; default 1/σ_max(M)².
        max_iters: iteration cap.
        tol: stop when the largest entry of the update is below this.

    Returns:
        the kernel (S, A, K) and ``{"iterations", "converged", "step_size", "residual"}``.
    """
    Q, M = check_qm(Q, M)
    S, A, G = Q.shape
    K = M.shape[1]
    P0 = _check_p0(P0, S, A, K)
    sigma_max = float(np.linalg.norm(M, 2))
    limit = 2.0 / sigma_max**2
    alpha = 1.0 / sigma_max**2 if step_size is None else float(step_size)
    if not 0.0 < alpha < limit:
        raise PlrayInputError(
            "step_size: gradient P-learning converges only for " f"0 < α < 2/σ_max(M)² = {limit:.6g}; got {alpha!r}"
        )
    P = (np.full((S * A, K), 1.0 / K) if P0 is None else P0.reshape(S * A, K)).copy()
    Qf = Q.reshape(S * A, G)
    # P Mᵀ M − Q M, with MᵀM and QM precomputed: one (SA × K) @ (K × K) product per iteration
    MtM = M.T @ M
    QM = Qf @ M
    converged = False
    it = 0
    for it in range(1, max_iters + 1):  # noqa: B007
        update = alpha * (P @ MtM - QM)
        P -= update
        if np.abs(update).max() < tol:
            converged = True
            break
    residual = float(np.abs(P @ M.T - Qf).max())
    return P.reshape(S, A, K), {
        "iterations": it,
        "converged": converged,
        "step_size": alpha,
        "residual": residual,
    }


# --------------------------------------------------------------------------- sampled (score function)
def _softmax(logits: FloatArray) -> FloatArray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def bellman_residual(logits: FloatArray, Q: FloatArray, M: FloatArray) -> FloatArray:
    """δ_φ(s, a, g) = Σ_k P_φ(k | s, a) M[g, k] − Q(s, a, g), shape (S, A, G)."""
    return np.einsum("sak,gk->sag", _softmax(logits), M) - Q


def exact_gradient(logits: FloatArray, Q: FloatArray, M: FloatArray) -> FloatArray:
    """∇_φ of L(φ) = ½ Σ_{s,a} mean_g δ_φ(s, a, g)² for softmax logits φ, shape (S, A, K).

    ∂δ(s, a, g)/∂φ[s, a, j] = p_j (M[g, j] − Σ_k p_k M[g, k]), p = softmax(φ[s, a]).
    """
    p = _softmax(logits)
    mean_next = np.einsum("sak,gk->sag", p, M)  # (S, A, G)
    delta = mean_next - Q
    G = Q.shape[2]
    # Σ_g δ_g (M[g, j] − mean_next_g) / G, times p_j
    weighted = np.einsum("sag,gj->saj", delta, M) - (delta * mean_next).sum(-1, keepdims=True)
    return p * weighted / G


def _sample_rows(cdf_offset: FloatArray, rows: IntArray, u: FloatArray, K: int) -> IntArray:
    """Inverse-CDF draws from many categorical rows at once.

    ``cdf_offset`` is the row-wise CDF with row r shifted by +r, flattened (one sorted array),
    so one ``searchsorted`` finds, for each draw, the first k with CDF(rows[i], k) >= u[i].
    """
    flat = np.searchsorted(cdf_offset, rows + u, side="left")
    return np.minimum(flat - rows * K, K - 1)


def score_function_gradient(
    logits: FloatArray,
    Q: FloatArray,
    M: FloatArray,
    s: IntArray,
    a: IntArray,
    g: IntArray,
    rng: np.random.Generator,
    *,
    weight: float | FloatArray = 1.0,
    pairs: int = 1,
) -> FloatArray:
    """The paper's double-sampling estimate of ∇_φ L, summed over a batch of tuples (docs/method.md#sampled).

    For each tuple (s, a, g), draws ``pairs`` independent pairs s'₁, s'₂ ~ P_φ(s, a) and
    accumulates ``weight`` × mean over pairs of δ¹ δ² (e_{s'₂} − P_φ(s, a)) into block φ[s, a].
    Cost is O(B log(S·A·K) + S·A·K): per block the sum is Σ δ¹δ² e_{s'₂} − (Σ δ¹δ²) P_φ(s, a),
    so no (B, K) array is formed.

    Args:
        logits: φ, shape (S, A, K).
        Q: (S, A, G); M: (G, K).
        s, a, g: the batch's tuples, each shape (B,).
        rng: random generator for the next-state draws.
        weight: scalar or (B,) importance weight making the sum an unbiased estimate of ∇L.
        pairs: independent sample pairs per tuple, averaged (variance reduction; still unbiased).

    Returns:
        the gradient estimate, shape (S, A, K).
    """
    S, A, K = logits.shape
    p = _softmax(logits).reshape(S * A, K)
    cdf = np.cumsum(p, axis=1)
    cdf[:, -1] = 1.0
    cdf_offset = (cdf + np.arange(S * A)[:, None]).ravel()
    rows = s * A + a
    q = Q[s, a, g]
    w = np.broadcast_to(np.asarray(weight, dtype=np.float64), rows.shape) / pairs
    at_s2 = np.zeros(S * A * K)
    per_block = np.zeros(S * A)
    for _ in range(pairs):
        s1 = _sample_rows(cdf_offset, rows, rng.random(rows.shape), K)
        s2 = _sample_rows(cdf_offset, rows, rng.random(rows.shape), K)
        dd = w * (M[g, s1] - q) * (M[g, s2] - q)
        at_s2 += np.bincount(rows * K + s2, weights=dd, minlength=S * A * K)
        per_block += np.bincount(rows, weights=dd, minlength=S * A)
    grad = at_s2.reshape(S * A, K) - per_block[:, None] * p
    return grad.reshape(S, A, K)


def sampled(
    Q: FloatArray,
    M: FloatArray,
    *,
    num_updates: int = 20_000,
    batch_size: int | None = None,
    learning_rate: float = 0.1,
    optimizer: str = "adam",
    schedule: str = "constant",
    pairs: int = 1,
    average: float = 0.5,
    seed: int = 0,
    logits0: FloatArray | None = None,
    callback: Any = None,
    state: dict[str, Any] | None = None,
    checkpoint: Any = None,
    checkpoint_every: int = 1000,
) -> tuple[FloatArray, dict[str, Any]]:
    """Stochastic P-learning with the double-sampling score-function gradient (docs/method.md#sampled).

    d is uniform over (s, a, g). With ``batch_size=None`` every update sweeps all S·A·G tuples
    once (each weighted 1/G, an unbiased estimate of ∇L); otherwise it draws ``batch_size``
    tuples uniformly (each weighted S·A/B).

    Args:
        Q: (S, A, G); M: (G, K).
        num_updates, batch_size: parameter updates; tuples per update (None: a full sweep).
        learning_rate: α (SGD) or Adam's step size.
        optimizer: ``"adam"`` (default: at a uniform start the gradient shrinks as 1/K, which
            Adam's normalisation removes) or ``"sgd"``, the paper's plain φ ← φ − α ĝ.
        schedule: ``"constant"`` (best with averaging; measured on windy FourRooms), ``"linear"``
            (decay to 0) or ``"cosine"``.
        pairs: independent next-state pairs per tuple.
        average: Polyak-Ruppert averaging: the kernel returned is the mean of P_φ over the last
            ``average`` fraction of updates (0: the last iterate), which cancels much of the noise.
        seed: seeds every draw; the same seed gives the same kernel.
        logits0: initial φ (S, A, K); default zeros (uniform P_φ).
        callback: optional ``callback(update, logits)`` every 100 updates (progress, logging).
        state: resume from an optimiser state that ``checkpoint`` received: the run continues
            exactly as if it had never stopped (same seed, same kernel).
        checkpoint, checkpoint_every: ``checkpoint(state)`` every ``checkpoint_every`` updates with
            ``update`` (int), ``logits``, ``m``, ``v``, ``kernel_sum`` ((S, A, K) each) and ``rng``.

    Returns:
        softmax(φ) (S, A, K) and ``{"updates", "updates_per_s", "loss", "seconds", "resumed_from"}``.
    """
    Q, M = check_qm(Q, M)
    _check_sampled_options(optimizer, schedule, num_updates, pairs, learning_rate, average, batch_size)
    S, A, G = Q.shape
    K = M.shape[1]
    if checkpoint_every < 1:
        raise PlrayInputError(f"checkpoint_every: must be >= 1, got {checkpoint_every}")
    rng = np.random.default_rng(seed)
    logits = np.zeros((S, A, K)) if logits0 is None else as_float_array(logits0, "logits0", ndim=3).copy()
    check_shape(logits, "logits0", (S, A, K), ("S", "A", "K"))
    resumed_from, m, v, kernel_sum = 0, np.zeros_like(logits), np.zeros_like(logits), np.zeros_like(logits)
    if state is not None:
        resumed_from, logits, m, v, kernel_sum = _restore_sampled(state, rng, (S, A, K), num_updates)
    full = np.indices((S, A, G)).reshape(3, -1) if batch_size is None else None
    first_averaged = num_updates - max(1, int(average * num_updates)) + 1  # average 0: the last iterate
    start = time.perf_counter()
    for n in range(resumed_from + 1, num_updates + 1):
        s, a, g, w = _draw_tuples(rng, (S, A, G), batch_size, full)
        grad = score_function_gradient(logits, Q, M, s, a, g, rng, weight=w, pairs=pairs)
        lr = learning_rate * _schedule_factor(schedule, (n - 1) / num_updates)
        m, v = _step(optimizer, logits, grad, m, v, n, lr)
        if n >= first_averaged:
            kernel_sum += _softmax(logits)
        if callback is not None and n % 100 == 0:
            callback(n, logits)
        if checkpoint is not None and n % checkpoint_every == 0 and n < num_updates:
            state_now = {"update": n, "logits": logits, "m": m, "v": v, "kernel_sum": kernel_sum}
            checkpoint(state_now | {"rng": rng.bit_generator.state})
    seconds = time.perf_counter() - start
    kernel = kernel_sum / (num_updates - first_averaged + 1)
    loss = float((0.5 * (np.einsum("sak,gk->sag", kernel, M) - Q) ** 2).mean(axis=2).sum())
    rate = (num_updates - resumed_from) / seconds if seconds > 0 else float("nan")
    info = {"updates": num_updates, "updates_per_s": rate, "loss": loss, "seconds": seconds}
    return kernel, info | {"resumed_from": resumed_from}


def _check_sampled_options(
    optimizer: str,
    schedule: str,
    num_updates: int,
    pairs: int,
    learning_rate: float,
    average: float,
    batch_size: int | None,
) -> None:
    """:func:`sampled`'s options, each checked with a message naming it."""
    check_choice(optimizer, "optimizer", ("adam", "sgd"))
    check_choice(schedule, "schedule", ("constant", "linear", "cosine"))
    if num_updates < 1 or pairs < 1 or not learning_rate > 0:
        raise PlrayInputError("num_updates, pairs and learning_rate must be positive")
    if not 0.0 <= average < 1.0:
        raise PlrayInputError(f"average: fraction of updates to average must be in [0, 1), got {average}")
    if batch_size is not None and batch_size < 1:
        raise PlrayInputError(f"batch_size: must be >= 1 or None (full sweep), got {batch_size}")


def _draw_tuples(
    rng: np.random.Generator, shape: tuple[int, int, int], batch_size: int | None, full: IntArray | None
) -> tuple[IntArray, IntArray, IntArray, float]:
    """One update's (s, a, g) tuples (B,) each and their weight: the full sweep ``full`` (3, S·A·G)
    weighted 1/G, or ``batch_size`` uniform draws weighted S·A/B."""
    S, A, G = shape
    if batch_size is None:
        assert full is not None
        return full[0], full[1], full[2], 1.0 / G
    s = rng.integers(S, size=batch_size)
    a = rng.integers(A, size=batch_size)
    g = rng.integers(G, size=batch_size)
    return s, a, g, S * A / batch_size


ADAM_BETAS = (0.9, 0.999)
"""Adam's moment decay rates in :func:`sampled`."""
ADAM_EPS = 1e-8


def _schedule_factor(schedule: str, frac: float) -> float:
    """The step-size multiplier at fraction ``frac`` of the run: constant, linear or cosine decay."""
    if schedule == "linear":
        return 1.0 - frac
    if schedule == "cosine":
        return 0.5 * (1.0 + np.cos(np.pi * frac))
    return 1.0


def _step(
    optimizer: str, logits: FloatArray, grad: FloatArray, m: FloatArray, v: FloatArray, n: int, lr: float
) -> tuple[FloatArray, FloatArray]:
    """Update ``logits`` in place by SGD or by Adam's ``n``-th step; returns Adam's moments (m, v)."""
    if optimizer == "sgd":
        logits -= lr * grad
        return m, v
    beta1, beta2 = ADAM_BETAS
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    logits -= lr * (m / (1 - beta1**n)) / (np.sqrt(v / (1 - beta2**n)) + ADAM_EPS)
    return m, v


def _restore_sampled(
    state: dict[str, Any], rng: np.random.Generator, shape: tuple[int, int, int], num_updates: int
) -> tuple[int, FloatArray, FloatArray, FloatArray, FloatArray]:
    """A checkpoint of :func:`sampled`: (update, logits, m, v, kernel_sum), each array (S, A, K); sets ``rng``."""
    try:
        resumed_from = int(state["update"])
        logits, m, v, kernel_sum = (np.array(state[k], dtype=np.float64) for k in ("logits", "m", "v", "kernel_sum"))
        rng.bit_generator.state = state["rng"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PlrayInputError(f"state: not a state saved by this method ({exc})") from exc
    if logits.shape != shape or not 0 <= resumed_from <= num_updates:
        raise PlrayInputError(f"state: saved for shape {logits.shape} at update {resumed_from}, not for this run")
    return resumed_from, logits, m, v, kernel_sum


# --------------------------------------------------------------------------- simplex-constrained
def simplex_least_squares(
    Q: FloatArray,
    M: FloatArray,
    *,
    candidates: Any = None,
    max_iters: int = 5000,
    tol: float = 1e-10,
) -> tuple[FloatArray, dict[str, Any]]:
    """min_P Σ_{s,a} ½‖M P(s, a) − Q(s, a)‖²  s.t.  P(s, a) ∈ Δ, supported on ``candidates[s]``.

    Accelerated projected gradient (FISTA, step 1/σ_max(M)²) in the space of each state's
    candidates, padded to the largest candidate set; the Euclidean projection onto the simplex
    enforces non-negativity and unit mass every step.

    Args:
        Q: (S, A, G); M: (G, K).
        candidates: per state s, the indices (into K) its successors may take; None: all K.
        max_iters: iteration cap.
        tol: stop when the largest change of an entry is below this.

    Returns:
        the kernel (S, A, K) and ``{"iterations", "converged", "residual"}``.
    """
    Q, M = check_qm(Q, M)
    S, A, G = Q.shape
    K = M.shape[1]
    if candidates is None:
        idx = np.tile(np.arange(K), (S, 1))
        valid = np.ones((S, K), dtype=bool)
    else:
        if len(candidates) != S:
            raise PlrayInputError(f"candidates: need one candidate list per state ({S}), got {len(candidates)}")
        width = max(len(c) for c in candidates)
        idx = np.zeros((S, width), dtype=np.int64)
        valid = np.zeros((S, width), dtype=bool)
        for st, cand in enumerate(candidates):
            c = np.asarray(cand, dtype=np.int64)
            if c.size == 0 or c.min() < 0 or c.max() >= K:
                raise PlrayInputError(f"candidates[{st}]: indices must lie in [0, {K}) and be non-empty")
            idx[st, : len(c)] = c
            valid[st, : len(c)] = True
    Mg = np.where(valid[None], M[:, idx], 0.0)  # (G, S, C): candidate columns of M per state
    idx = np.where(valid, idx, K)  # padding points at a dummy column K, dropped at the end
    step = 1.0 / float(np.linalg.norm(M, 2)) ** 2
    mask = np.broadcast_to(valid[:, None, :], (S, A, idx.shape[1]))

    def project(X: FloatArray) -> FloatArray:
        return project_simplex(np.where(mask, X, -1e9))

    P = project(np.zeros(mask.shape))
    Y, t = P.copy(), 1.0
    converged, it = False, 0
    for it in range(1, max_iters + 1):  # noqa: B007
        resid = np.einsum("gsc,sac->sag", Mg, Y) - Q
        P_new = project(Y - step * np.einsum("gsc,sag->sac", Mg, resid))
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        change = float(np.abs(P_new - P).max())
        Y = P_new + ((t - 1.0) / t_new) * (P_new - P)
        P, t = P_new, t_new
        if change < tol:
            converged = True
            break
    kernel = np.zeros((S, A, K + 1))
    np.put_along_axis(kernel, np.broadcast_to(idx[:, None, :], mask.shape), np.where(mask, P, 0.0), axis=-1)
    kernel = kernel[..., :K]
    residual = float(np.abs(np.einsum("gk,sak->sag", M, kernel) - Q).max())
    return kernel, {"iterations": it, "converged": converged, "residual": residual}


# --------------------------------------------------------------------------- column matching
def column_match_indices(Q: FloatArray, M: FloatArray, *, norm: int = 1, chunk: int = 4096) -> IntArray:
    """k̂(s, a) = argmin_k ‖M[:, k] − Q(s, a, :)‖, shape (S, A); ``norm`` is 1 (default) or 2."""
    Q, M = check_qm(Q, M)
    if norm not in (1, 2):
        raise PlrayInputError(f"norm: must be 1 or 2, got {norm!r}")
    S, A, G = Q.shape
    flat = Q.reshape(S * A, G)
    out = np.empty(S * A, dtype=np.int64)
    for start in range(0, S * A, chunk):
        diff = flat[start : start + chunk, None, :] - M.T[None, :, :]  # (c, K, G)
        dist = np.abs(diff).sum(-1) if norm == 1 else (diff**2).sum(-1)
        out[start : start + chunk] = dist.argmin(axis=1)
    return out.reshape(S, A)


def column_match(Q: FloatArray, M: FloatArray, *, norm: int = 1) -> FloatArray:
    """Deterministic kernel from column matching, shape (S, A, K)."""
    return one_hot_kernel(column_match_indices(Q, M, norm=norm), M.shape[1])
