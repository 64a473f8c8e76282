"""The serving layer without Ray: registry (layouts, versions, unsafe ids, reload), codec, engine."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from plray.core.worldmodel import TabularWorldModel
from plray.envs import FourRooms
from plray.envs.reacher import KinematicReacherTask
from plray.evaluation.cem import CEMPlanner
from plray.evaluation.unseen import unseen_goal
from plray.serve import codec, engine
from plray.serve.errors import ApiError
from plray.serve.registry import ModelRegistry, check_name, version_key
from tests.serve.conftest import continuous_model, populate, reacher_model, write_model


@pytest.fixture
def root(tmp_path: Path) -> Path:
    populate(tmp_path / "models")
    return tmp_path / "models"


def test_registry_layouts_versions_and_failures(root: Path) -> None:
    reg = ModelRegistry(root)
    assert reg.ids() == ["broken", "fourrooms", "hot", "mc-gauss", "pets", "reacher"]
    assert reg.versions("reacher") == ["1", "2"] and reg.versions("fourrooms") == ["0"]
    assert reg.get("reacher").version == "2" and reg.get("reacher", "1").version == "1"
    assert isinstance(reg.get("fourrooms").model, TabularWorldModel)
    with pytest.raises(ApiError) as err:
        reg.get("broken")
    assert err.value.status == 503 and "checksum mismatch" in err.value.detail and str(root) not in err.value.detail
    with pytest.raises(ApiError) as err:
        reg.get("nope")
    assert err.value.status == 404
    with pytest.raises(ApiError) as err:
        reg.get("reacher", "7")
    assert err.value.status == 404 and "versions: 1, 2" in err.value.detail
    assert reg.load_all() == ["broken"]


@pytest.mark.parametrize("bad", ["..", "../etc", ".hidden", "a/b", "a\\b", "", "x" * 200, "a..b", "%2e%2e", "é"])
def test_unsafe_ids_are_refused_before_any_path_is_built(root: Path, bad: str) -> None:
    reg = ModelRegistry(root)
    with pytest.raises(ApiError) as err:
        reg.get(bad)
    assert err.value.status == 400 and err.value.kind == "invalid_model_id"


def test_symlinks_out_of_the_directory_are_invisible(root: Path, tmp_path: Path) -> None:
    write_model(tmp_path / "outside", "secret", None, reacher_model(3))
    os.symlink(tmp_path / "outside" / "secret", root / "escape")
    reg = ModelRegistry(root)
    assert "escape" not in reg.ids()
    with pytest.raises(ApiError) as err:
        reg.get("escape")
    assert err.value.status in (400, 404)


def test_version_order_and_names() -> None:
    assert sorted(["10", "9", "v11", "beta"], key=version_key) == ["beta", "9", "10", "v11"]
    assert check_name("model-1.2_x") == "model-1.2_x"


def test_refresh_swaps_new_versions_and_keeps_serving_on_failure(root: Path) -> None:
    reg = ModelRegistry(root)
    reg.load_all()
    old = reg.get("hot")
    assert reg.refresh() == []  # nothing new (the broken artifact is not retried)
    write_model(root, "hot", "2", reacher_model(5), task="reacher")
    assert ("hot", "1", "2") in reg.refresh()
    assert reg.get("hot").version == "2" and old.version == "1"  # the old entry stays usable
    broken = write_model(root, "hot", "3", reacher_model(6))
    (broken / "tensors.npz").write_bytes(b"not a zip")
    assert reg.refresh() == [] and reg.get("hot").version == "2"
    write_model(root, "hot", "3", reacher_model(6), task="reacher")  # rewritten: new checksum, retried
    assert ("hot", "2", "3") in reg.refresh()


def test_pyarrow_uri_store(root: Path, tmp_path: Path) -> None:
    reg = ModelRegistry(f"file://{root}", cache_dir=tmp_path / "cache")
    assert "reacher" in reg.ids() and reg.versions("reacher") == ["1", "2"]
    local = ModelRegistry(root).get("reacher").model
    s, a = np.zeros((3, 4)), np.array([0, 4, 8])
    np.testing.assert_array_equal(reg.get("reacher").model.predict(s, a), local.predict(s, a))


def test_arrow_codec_round_trip() -> None:
    arrays = {"states": np.arange(12.0).reshape(3, 4), "actions": np.arange(18.0).reshape(3, 3, 2), "i": np.arange(3)}
    body = codec.encode_request_arrow(arrays, {"goal": {"kind": "region"}})
    params, back = codec.decode_arrow(body)
    assert params == {"goal": {"kind": "region"}}
    for k, v in arrays.items():
        np.testing.assert_array_equal(back[k], v)
    out = codec.decode_response_arrow(codec.encode_arrow(arrays, {"model": "m"}))
    assert out["model"] == "m" and out["actions"].shape == (3, 3, 2)
    with pytest.raises(ApiError, match="not a valid Arrow IPC stream"):
        codec.decode_arrow(b"garbage")


def test_media_types() -> None:
    assert codec.media_type(None) == codec.JSON
    assert codec.media_type("application/vnd.apache.arrow.stream") == codec.ARROW
    with pytest.raises(ApiError) as err:
        codec.media_type("application/x-python-pickle")
    assert err.value.status == 415
    assert codec.response_type("application/json", codec.ARROW) == codec.JSON
    with pytest.raises(ApiError) as err:
        codec.response_type("text/html", codec.JSON)
    assert err.value.status == 406


def test_check_batch_refusals() -> None:
    m = reacher_model()
    cases = [
        (np.zeros((2, 5)), [0, 1], "expected shape"),
        (np.full((2, 4), np.nan), [0, 1], "NaN or infinite"),
        (np.zeros((2, 4)), [0, 9], r"must lie in \[0, 9\)"),
        (np.zeros((2, 4)), [0.5, 1], "fractions"),
        (np.zeros((2, 4)), [0, 1, 2], "expected shape"),
        ([[0.0, 0, 0, 0], [0.0]], [0, 1], "rectangular"),
        (np.full((1, 4), 1e300), [0], "float32 range"),
        (np.array([["a", "b", "c", "d"]]), [0], "not numeric"),
    ]
    for states, actions, msg in cases:
        with pytest.raises(ApiError, match=msg):
            engine.check_batch(m, states, actions)
    with pytest.raises(ApiError, match="integer indices"):
        engine.check_batch(TabularWorldModel(FourRooms("windy").kernel), [[0.5]], [0])
    with pytest.raises(ApiError, match=r"\(1, 2\)"):
        engine.check_batch(continuous_model(), np.zeros((1, 4)), np.zeros((1, 3)))


def test_rollout_returns_match_the_cem_planner() -> None:
    """The replica's vectorised rollout scores sequences exactly as the in-process CEM planner does."""
    task = KinematicReacherTask()
    m = reacher_model(hidden=16)
    goal = unseen_goal(task, "target_velocity")
    rng = np.random.default_rng(0)
    s0 = task.reset_states(64, rng)
    s0[:, 2:4] = 1.9  # near the target velocity so some sequences earn a reward
    acts = rng.integers(9, size=(64, 8))
    out = engine.rollout(m, s0, acts, goal=goal, gamma=0.9)
    ref = CEMPlanner(
        m.predict,
        goal.reward_fn,
        goal.terminal_fn,
        horizon=8,
        population=1,
        elites=1,
        iterations=1,
        num_actions=9,
        gamma=0.9,
    ).sequence_returns(s0, acts)
    np.testing.assert_allclose(out["returns"], ref)
    assert out["states"].shape == (64, 8, 4) and out["returns"].max() > 0


def test_tabular_value_iteration_reaches_a_cell() -> None:
    env = FourRooms("deterministic")
    m = TabularWorldModel(env.kernel)
    goal = engine.build_goal({"kind": "region", "target": [40.0], "tolerance": 0.5}, m, lambda: None)
    s = 3
    for _ in range(100):
        out = engine.plan(m, np.array([float(s)]), goal, method="value_iteration", gamma=0.95, task_fn=lambda: None)
        s = int(m.predict([[s]], [out["action"]])[0, 0])
        if s == 40:
            break
    assert s == 40


def test_limits_are_enforced() -> None:
    m = reacher_model()
    lim = engine.Limits(max_batch=4, max_rollout_steps=10, max_output_elements=100, max_plan_rows=100)
    with pytest.raises(ApiError) as err:
        engine.predict(m, np.zeros((5, 4)), np.zeros(5, dtype=np.int64), limits=lim)
    assert err.value.status == 413
    with pytest.raises(ApiError) as err:
        engine.rollout(m, np.zeros((3, 4)), np.zeros((3, 4), dtype=np.int64), limits=lim)
    assert err.value.status == 413


def test_a_cem_plan_stops_at_the_deadline() -> None:
    """CEM checks the request's deadline at every model step, as rollout and value iteration do."""
    task = KinematicReacherTask()
    m = reacher_model(hidden=16)
    goal = unseen_goal(task, "target_velocity")
    state = task.reset_states(1, np.random.default_rng(0))[0]
    kwargs = {"method": "cem", "gamma": 0.9, "task_fn": lambda: task, "horizon": 5, "population": 20, "elites": 4}
    assert engine.plan(m, state, goal, **kwargs)["value"] is None  # finishes without a deadline
    with pytest.raises(ApiError) as info:
        engine.plan(m, state, goal, **kwargs, deadline=engine.Deadline(0.0))
    assert info.value.kind == "deadline_exceeded"


def test_a_mixture_models_goal_meaning_names_its_kinds() -> None:
    from plray.envs.registry import make_task
    from plray.serve.summaries import _goal_meaning

    parts = [
        {"kind": "fingertip", "placement": "spread", "count": 4},
        {"kind": "angle", "placement": "spread", "count": 2},
    ]
    task = make_task("reacher", goals={"kind": "mixture", "parts": parts})
    meaning = _goal_meaning(task)
    assert task.goal_dim == 4 and "one_hot(kind, 2)" in meaning and "['fingertip', 'angle']" in meaning
    assert "‖achieved_goal(s) − g‖" in _goal_meaning(make_task("reacher"))  # plain sets keep their words
