"""The one rollout routine: hand-computed returns, termination, forbidden regions, the after-done modes."""

from __future__ import annotations

import numpy as np
import pytest

from plray.evaluation.goals import Goal
from plray.evaluation.rollout import rollout
from plray.utils.validation import PlrayInputError

GAMMA = 0.5


def _step(calls: list[np.ndarray]):
    """s' = s + a on a line; records the states each call saw."""

    def step(s: np.ndarray, a: np.ndarray) -> np.ndarray:
        calls.append(s[:, 0].copy())
        return s + np.asarray(a, dtype=np.float64).reshape(-1, 1)

    return step


def _goal() -> Goal:
    """Reward x' on arrival (dense), terminate at x' >= 3, x' < 0 forbidden (pays 0, terminates)."""
    return Goal("line", lambda s: s[:, 0].copy(), lambda s: s[:, 0] >= 3.0, lambda s: s[:, 0] < 0.0)


# three rows from x = 0, three steps:
#   row 0: +1 +1 +1 -> x' = 1, 2, 3: pays 1, 2, 3 (terminates at step 2): 1 + γ·2 + γ²·3 = 2.75
#   row 1: +1 -2 +5 -> x' = 1, -1 (forbidden: pays 0, terminates), later steps pay nothing: 1
#   row 2: +3 +1 +1 -> x' = 3 (terminates at once): 3; later rewards (4, 5) are not paid
ACTIONS = np.array([[1, 1, 1], [1, -2, 5], [3, 1, 1]])
RETURNS = [1 + GAMMA * 2 + GAMMA**2 * 3, 1.0, 3.0]
REWARDS = [[1.0, 2.0, 3.0], [1.0, 0.0, 0.0], [3.0, 0.0, 0.0]]
TERMINATED = [[False, False, True], [False, True, True], [True, True, True]]


@pytest.mark.parametrize("after_done", ["freeze", "continue", "drop"])
def test_hand_computed_three_step_rollout(after_done: str) -> None:
    calls: list[np.ndarray] = []
    out = rollout(_step(calls), _goal(), np.zeros((3, 1)), 3, GAMMA, actions=ACTIONS, after_done=after_done)  # type: ignore[arg-type]
    np.testing.assert_allclose(out.returns, RETURNS, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(out.rewards, REWARDS)  # rewards stop after termination
    np.testing.assert_array_equal(out.terminated, TERMINATED)
    np.testing.assert_array_equal(out.done, [True, True, True])
    np.testing.assert_array_equal(out.steps, [3, 2, 1])
    # what each mode steps once a row has ended
    expected = {
        "freeze": [[0, 0, 0], [1, 1, 0], [2, 1, 0]],  # ended rows keep their last live state
        "continue": [[0, 0, 0], [1, 1, 3], [2, -1, 4]],  # ended rows step on from their successor
        "drop": [[0, 0, 0], [1, 1], [2]],  # only live rows are stepped
    }[after_done]
    assert [c.tolist() for c in calls] == expected


def test_policy_rollout_stops_when_every_row_has_ended() -> None:
    calls: list[np.ndarray] = []
    out = rollout(_step(calls), _goal(), np.array([[2.0], [1.0]]), 10, GAMMA, policy=lambda s: np.ones(len(s)))
    # row 0 arrives at 3 at once; row 1 at 2 then 3
    np.testing.assert_allclose(out.returns, [3.0, 2.0 + GAMMA * 3.0])
    assert len(calls) == 2 and out.rewards.shape == (2, 10) and out.terminated[:, 2:].all()
    np.testing.assert_array_equal(out.steps, [1, 2])


def test_no_termination_and_recorded_states() -> None:
    goal = Goal("never", lambda s: np.ones(len(s)), lambda s: np.zeros(len(s), dtype=bool))
    out = rollout(
        _step([]),
        goal,
        np.zeros((2, 1)),
        4,
        GAMMA,
        actions=np.ones((2, 4)),
        after_done="continue",
        stop_when_done=False,
        record_states=True,
    )
    np.testing.assert_allclose(out.returns, sum(GAMMA**t for t in range(4)))
    assert not out.done.any() and out.steps.tolist() == [4, 4]
    assert out.states is not None and out.states[:, :, 0].tolist() == [[1, 2, 3, 4]] * 2


def test_without_a_goal_only_states_are_recorded() -> None:
    out = rollout(_step([]), None, np.zeros((1, 1)), 3, GAMMA, actions=ACTIONS[:1], record_states=True)
    assert out.returns.tolist() == [0.0] and out.states is not None and out.states[0, :, 0].tolist() == [1, 2, 3]


def test_bad_calls_are_refused() -> None:
    with pytest.raises(PlrayInputError, match="actions"):
        rollout(_step([]), _goal(), np.zeros((3, 1)), 3, GAMMA)
    with pytest.raises(PlrayInputError, match="actions"):
        rollout(_step([]), _goal(), np.zeros((3, 1)), 3, GAMMA, actions=ACTIONS[:, :2])
    with pytest.raises(PlrayInputError, match="next_state_fn"):
        rollout(lambda s, a: s[:, :0], _goal(), np.zeros((3, 1)), 3, GAMMA, actions=ACTIONS)
    bad = Goal("bad", lambda s: np.zeros((len(s), 2)), lambda s: s[:, 0] > 0)
    with pytest.raises(PlrayInputError, match="reward_fn"):
        rollout(_step([]), bad, np.zeros((3, 1)), 3, GAMMA, actions=ACTIONS, validate=True)
