"""Plots for reports: where people would rather look than read. Written atomically as PNG files."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from plray.utils.io import default_mode

PredictFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        _figure().close(fig)
    return path


def mountaincar_quiver(task: Any, predict: PredictFn, path: str | os.PathLike[str], n: int = 21) -> Path:
    """Quiver of the true vs extracted one-step dynamics over (x, v), one panel per action."""
    plt = _figure()
    xs = np.linspace(task.state_low[0], task.state_high[0], n)
    vs = np.linspace(task.state_low[1], task.state_high[1], n)
    X, V = np.meshgrid(xs, vs)
    states = np.stack([X.ravel(), V.ravel()], axis=1)
    names = ("push left", "no push", "push right")
    fig, axes = plt.subplots(1, task.num_actions, figsize=(5 * task.num_actions, 4.2), sharey=True)
    for a, ax in enumerate(np.atleast_1d(axes)):
        acts = np.full(len(states), a)
        true = task.next_state(states, acts) - states
        pred = predict(states, acts) - states
        scale = np.abs(true).max(axis=0) + 1e-12
        ax.quiver(states[:, 0], states[:, 1], true[:, 0] / scale[0], true[:, 1] / scale[1], color="0.6", label="true")
        ax.quiver(
            states[:, 0], states[:, 1], pred[:, 0] / scale[0], pred[:, 1] / scale[1], color="tab:red", label="extracted"
        )
        ax.set_title(names[a] if a < 3 else f"action {a}")
        ax.set_xlabel("position x")
    np.atleast_1d(axes)[0].set_ylabel("velocity v")
    np.atleast_1d(axes)[0].legend(loc="lower left")
    fig.suptitle("MountainCar: one-step change (s' - s), true (grey) vs extracted (red), per-dim normalised")
    return _save(fig, path)


def reacher_error_heatmap(task: Any, predict: PredictFn, path: str | os.PathLike[str], n: int = 41) -> Path:
    """Prediction error |s'_pred - s'_true| over (θ₁, ω₁) with θ₂ = ω₂ = 0, mean over actions, per dim."""
    plt = _figure()
    th = np.linspace(-np.pi, np.pi, n)
    om = np.linspace(task.state_low[2], task.state_high[2], n)
    T, O = np.meshgrid(th, om)
    states = np.zeros((T.size, task.state_dim))
    states[:, 0], states[:, 2] = T.ravel(), O.ravel()
    err = np.zeros((T.size, task.state_dim))
    for a in range(task.num_actions):
        acts = np.full(len(states), a)
        diff = predict(states, acts) - task.next_state(states, acts)
        for d in task.angle_dims:
            diff[:, d] = (diff[:, d] + np.pi) % (2 * np.pi) - np.pi
        err += np.abs(diff) / task.num_actions
    labels = ("θ₁", "θ₂", "ω₁", "ω₂")
    fig, axes = plt.subplots(1, task.state_dim, figsize=(4.2 * task.state_dim, 3.6))
    for d, ax in enumerate(axes):
        im = ax.imshow(err[:, d].reshape(T.shape), origin="lower", aspect="auto", extent=(th[0], th[-1], om[0], om[-1]))
        ax.set_title(f"|error| in {labels[d] if d < 4 else d}")
        ax.set_xlabel("θ₁")
        fig.colorbar(im, ax=ax, fraction=0.046)
    axes[0].set_ylabel("ω₁")
    fig.suptitle("Reacher: one-step prediction error of the extracted model (θ₂ = ω₂ = 0, mean over 9 actions)")
    return _save(fig, path)


def reacher_rollouts(
    task: Any, predict: PredictFn, path: str | os.PathLike[str], horizon: int = 40, starts: int = 4, seed: int = 0
) -> Path:
    """Open-loop fingertip trajectories from a few reset states under random actions: true vs model."""
    plt = _figure()
    rng = np.random.default_rng(seed)
    s_true = task.reset_states(starts, rng)
    s_model = s_true.copy()
    actions = rng.integers(task.num_actions, size=(horizon, starts))
    tips_true, tips_model = [task.fingertip(s_true)], [task.fingertip(s_model)]
    for t in range(horizon):
        s_true = task.next_state(s_true, actions[t])
        s_model = predict(s_model, actions[t])
        tips_true.append(task.fingertip(s_true))
        tips_model.append(task.fingertip(s_model))
    tt, tm = np.stack(tips_true), np.stack(tips_model)
    fig, ax = plt.subplots(figsize=(5, 5))
    for i in range(starts):
        ax.plot(tt[:, i, 0], tt[:, i, 1], color=f"C{i}", lw=2, alpha=0.5, label="true" if i == 0 else None)
        ax.plot(tm[:, i, 0], tm[:, i, 1], color=f"C{i}", ls="--", lw=1.2, label="extracted" if i == 0 else None)
    ax.add_patch(plt.Circle((0, 0), 2.0, fill=False, color="0.8"))
    ax.set_aspect("equal")
    ax.set_xlim(-2.2, 2.2)
    ax.set_ylim(-2.2, 2.2)
    ax.legend()
    ax.set_title(f"Reacher fingertip, {horizon}-step open-loop rollouts")
    return _save(fig, path)
