"""Evaluation of continuous-action world models: WM action sets and grid planning on a declared subset."""

from __future__ import annotations

import numpy as np
import pytest

from plray.core import PlrayInputError
from plray.envs.reacher import TORQUES
from plray.envs.registry import make_task
from plray.evaluation.unseen import evaluate_all_unseen, planning_view
from plray.evaluation.wm_metrics import EVALUATION_ACTIONS, evaluation_actions, evaluation_states, wm_errors


def test_evaluation_actions_are_uniform_seeded_and_none_for_discrete() -> None:
    cont = make_task("reacher-continuous")
    assert evaluation_actions(make_task("reacher"), np.random.default_rng(0)) is None
    a = evaluation_actions(cont, np.random.default_rng(0))
    b = evaluation_actions(cont, np.random.default_rng(0))
    assert a is not None and b is not None
    assert a.shape == (EVALUATION_ACTIONS, 2) and np.array_equal(a, b)
    assert (np.abs(a) <= 1.0).all() and np.abs(a).max() > 0.5
    with pytest.raises(PlrayInputError, match="positive integer"):
        evaluation_actions(cont, np.random.default_rng(0), 0)


def test_true_model_has_zero_error_and_a_wrong_one_does_not() -> None:
    cont = make_task("reacher-continuous")
    states = evaluation_states(cont, 256, np.random.default_rng(1))
    acts = evaluation_actions(cont, np.random.default_rng(2))
    assert wm_errors(cont.next_state, cont, states, actions=acts, space="obs")["wm_nmse"] == 0.0

    def lazy(s: np.ndarray, a: np.ndarray) -> np.ndarray:  # ignores the torque's second component
        return cont.next_state(s, np.asarray(a) * np.array([1.0, 0.0]))

    assert wm_errors(lazy, cont, states, actions=acts)["wm_nmse"] > 1e-4


def test_planning_view_restricts_the_model_to_the_nine_torques() -> None:
    cont, disc = make_task("reacher-continuous"), make_task("reacher")
    view, model, text = planning_view(disc, disc.next_state)
    assert view is disc and model == disc.next_state and text == ""
    view, model, text = planning_view(cont, cont.next_state)
    assert view.num_actions == 9 and view.name == "reacher" and "9 actions" in text
    states = evaluation_states(cont, 64, np.random.default_rng(4))
    idx = np.arange(64) % 9
    np.testing.assert_array_equal(model(states, idx), disc.next_state(states, idx))
    np.testing.assert_array_equal(model(states[:1], np.array([8])), cont.next_state(states[:1], TORQUES[8][None]))
    mujoco_view, _, text = planning_view(make_task("mujoco-reacher"), lambda s, a: s)
    assert mujoco_view.name == "mujoco-reacher-discrete" and "9 actions" in text

    class NoPlanningActions(type(cont)):  # type: ignore[misc]
        planning_actions = None

    with pytest.raises(PlrayInputError, match="planning_actions"):
        planning_view(NoPlanningActions(), lambda s, a: s)


def test_unseen_returns_of_the_true_continuous_model_are_the_discrete_tasks() -> None:
    cont, disc = make_task("reacher-continuous"), make_task("reacher")
    view, model, _ = planning_view(cont, cont.next_state)
    ours = evaluate_all_unseen(view, model, resolution=5, num_starts=32, seed=0)
    theirs = evaluate_all_unseen(disc, disc.next_state, resolution=5, num_starts=32, seed=0)
    assert [r["goal"] for r in ours] == ["far_fingertip", "target_angle", "target_velocity"]
    for a, b in zip(ours, theirs, strict=True):
        assert a["return_wm"] == a["return_opt"] == b["return_opt"]
