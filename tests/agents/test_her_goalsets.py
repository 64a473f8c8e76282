"""Hindsight relabelling with goal sets that sample a goal per episode, against hand-computed transitions."""

import numpy as np
import pytest

from plray.agents.her import HindsightEpisodeReplayBuffer, relabel_fragments
from plray.envs.mountaincar import MountainCarTask
from tests.agents.episodes import episode

SPEC = {"kind": "position", "count": 4, "distribution": {"shape": "box", "low": [-0.9], "high": [0.3]}}
TASK = MountainCarTask(goal_set=SPEC)
XS = [-0.5, -0.3, 0.1, 0.15]  # positions of one 3-step fragment, commanded goal x = 0.3 (never reached)
GOAL = 0.3


def _fragment() -> tuple[list, list, list, list]:
    obs = [np.array([[x, 0.01, GOAL] for x in XS])]
    return obs, [np.array([2, 2, 2])], [np.zeros(3)], [False]


def test_final_strategy_by_hand() -> None:
    out = relabel_fragments(TASK, *_fragment(), "final", 1, np.random.default_rng(0))
    # copies: goal = achieved x of o_3 = 0.15; |x' − 0.15| < 0.1 for x' = −0.3, 0.1, 0.15: no, yes, yes
    np.testing.assert_allclose(out["obs"][3:, 2], [0.15, 0.15, 0.15])
    np.testing.assert_allclose(out["next_obs"][3:, 2], [0.15, 0.15, 0.15])
    np.testing.assert_array_equal(out["rewards"], [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(out["terminateds"], [False, False, False, False, True, True])
    np.testing.assert_allclose(out["obs"][:3, 2], [GOAL] * 3)  # the real transitions keep the commanded goal


def test_future_strategy_by_hand() -> None:
    # future index j = t + 1 + floor(u (T − t)), T = 3, u = default_rng(0).random(3)
    u = np.random.default_rng(0).random(3)
    np.testing.assert_allclose(u, [0.63696169, 0.26978671, 0.04097352], atol=1e-8)
    # t = 0: j = 1 + floor(1.91) = 2 -> goal x_2 = 0.1; next x −0.3: |−0.4| -> 0
    # t = 1: j = 2 + floor(0.54) = 2 -> goal 0.1;       next x 0.1: 0 -> 1, terminal
    # t = 2: j = 3 + floor(0.04) = 3 -> goal x_3 = 0.15; next x 0.15: 0 -> 1, terminal
    out = relabel_fragments(TASK, *_fragment(), "future", 1, np.random.default_rng(0))
    np.testing.assert_allclose(out["obs"][3:, 2], [0.1, 0.1, 0.15], atol=1e-7)
    np.testing.assert_array_equal(out["rewards"][3:], [0, 1, 1])
    np.testing.assert_array_equal(out["terminateds"][3:], [False, True, True])
    np.testing.assert_allclose(out["obs"][3:, :2], out["obs"][:3, :2])  # states untouched
    np.testing.assert_array_equal(out["actions"], [2] * 6)


def test_random_strategy_draws_from_the_distribution() -> None:
    out = relabel_fragments(TASK, *_fragment(), "random", 2, np.random.default_rng(7))
    expected = TASK.goal_set.sample(6, np.random.default_rng(7), TASK).ravel()  # the same stream, by hand
    goals = out["obs"][3:, 2].astype(np.float64)
    np.testing.assert_allclose(goals, expected, atol=1e-7)
    assert (goals >= -0.9).all() and (goals <= 0.3).all()
    assert not np.isin(goals, TASK.training_goals.ravel().astype(np.float32)).any()  # not the finite set
    assert (np.abs(goals[:, None] - np.array([-1.0, 0.4])) >= 0.2 - 1e-6).all()  # shortest path kept out
    x_next = np.tile([-0.3, 0.1, 0.15], 2)
    hit = np.abs(x_next - expected) < 0.1
    np.testing.assert_array_equal(out["rewards"][3:], hit.astype(np.float32))
    np.testing.assert_array_equal(out["terminateds"][3:], hit)


@pytest.mark.parametrize("by_name", [True, False])
def test_buffer_random_strategy_draws_from_the_distribution(by_name: bool) -> None:
    kwargs = {"task": "mountaincar-position", "task_kwargs": {"goals": SPEC}} if by_name else {"task": TASK}
    buf = HindsightEpisodeReplayBuffer(strategy="random", k=4, seed=1, capacity=100, **kwargs)
    buf.add([episode(TASK, [np.array([x, 0.01, GOAL]) for x in XS], [2, 2, 2])])
    out = buf.sample(num_items=50, n_step=1, gamma=0.99)
    copies = [c for i, c in enumerate(out) if i % 5]
    goals = np.array([float(c.get_observations(0)[2]) for c in copies])
    assert len(np.unique(goals)) == len(goals) and (goals >= -0.9).all() and (goals <= 0.3).all()
    for c, g in zip(copies, goals, strict=True):
        hit = abs(float(c.get_observations(-1)[0]) - g) < 0.1
        assert c.get_rewards(0) == float(hit) and c.is_terminated == hit
