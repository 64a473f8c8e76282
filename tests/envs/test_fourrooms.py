import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from plray.core import PlrayInputError
from plray.envs import FourRooms, FourRoomsGoalEnv
from plray.envs.fourrooms import DOORWAYS, TELEPORTS


def test_layout_has_68_free_states_and_four_doorways() -> None:
    env = FourRooms()
    assert env.num_states == 68
    assert env.walls.shape == (11, 11)
    assert env.walls[0].all() and env.walls[-1].all() and env.walls[:, 0].all() and env.walls[:, -1].all()
    assert env.walls[5, 5]
    for cell in DOORWAYS:
        assert not env.walls[cell]
    # the cross has exactly four gaps
    assert (~env.walls[5, 1:10]).sum() == 2 and (~env.walls[1:10, 5]).sum() == 2
    assert "#" in env.render()


def test_kernels_are_distributions(variant: str) -> None:
    P = FourRooms(variant).kernel
    assert P.shape == (68, 4, 68)
    assert (P >= 0).all()
    np.testing.assert_allclose(P.sum(-1), 1.0)


def test_deterministic_moves_and_walls() -> None:
    env = FourRooms("deterministic")
    P = env.kernel
    s = env.index((1, 1))
    assert P[s, 0, s] == 1.0  # up into the border: stay
    assert P[s, 1, env.index((1, 2))] == 1.0  # right
    assert P[s, 2, env.index((2, 1))] == 1.0  # down
    door = env.index((5, 2))
    assert P[door, 0, env.index((4, 2))] == 1.0 and P[door, 2, env.index((6, 2))] == 1.0
    assert P[door, 1, door] == 1.0  # walls either side of the doorway
    assert env.deterministic


def test_windy_probabilities() -> None:
    env = FourRooms("windy")
    P = env.kernel
    s = env.index((2, 2))
    # intended up w.p. 1/2, rotated to right/left w.p. 1/4 each
    assert P[s, 0, env.index((1, 2))] == pytest.approx(0.5)
    assert P[s, 0, env.index((2, 3))] == pytest.approx(0.25)
    assert P[s, 0, env.index((2, 1))] == pytest.approx(0.25)
    # at a corner the blocked outcomes pile up on staying put
    c = env.index((1, 1))
    assert P[c, 0, c] == pytest.approx(0.5 + 0.25)
    assert not env.deterministic


def test_teleport_reemits_into_opposite_room() -> None:
    env = FourRooms("teleport")
    P = env.kernel
    s = env.index((3, 4))  # just above the top-left T cell (4, 4)
    row = P[s, 2]  # move down onto T
    targets = np.flatnonzero(row)
    assert len(targets) == 15
    np.testing.assert_allclose(row[targets], 1 / 15)
    for t in targets:
        r, c = env.cell(int(t))
        assert r > 5 and c > 5, "re-emitted into the bottom-right room"
        assert (r, c) not in TELEPORTS
    # no move ever ends on a T cell
    for t in TELEPORTS:
        assert P[:, :, env.index(t)].sum() == 0


def test_sample_next_matches_kernel_frequencies() -> None:
    env = FourRooms("windy")
    rng = np.random.default_rng(0)
    s, a = env.index((2, 2)), 0
    nxt = env.sample_next(np.full(40_000, s), np.full(40_000, a), rng)
    freq = np.bincount(nxt, minlength=68) / len(nxt)
    np.testing.assert_allclose(freq, env.kernel[s, a], atol=0.01)


def test_reward_families() -> None:
    env = FourRooms()
    ind = env.goal_set(5, "indicator", seed=1)
    assert ind.rewards.shape == (68, 5) and ind.rewards.sum() == 5
    np.testing.assert_array_equal(ind.rewards, ind.dones)
    gauss = env.goal_set(5, "gaussian", seed=1)
    assert gauss.rewards.max() == 1.0 and (gauss.rewards > 0).all()
    gen = env.goal_set(5, "generic", seed=1)
    assert np.abs(gen.rewards - ind.rewards).max() <= 0.1
    np.testing.assert_array_equal(gen.rewards, env.goal_set(5, "generic", seed=1).rewards)  # seeded
    assert not np.array_equal(gen.rewards, env.goal_set(5, "generic", seed=2).rewards)
    no_term = env.goal_set(5, "indicator", terminate_on_goal=False)
    assert no_term.dones.sum() == 0
    np.testing.assert_array_equal(env.goal_set(68, "indicator").states, np.arange(68))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: FourRooms("stormy"), "unknown value 'stormy'"),
        (lambda: FourRooms().goal_set(0), "num_goals"),
        (lambda: FourRooms().goal_set(69), "num_goals"),
        (lambda: FourRooms().goal_set(3, "sparse"), "goal family"),
        (lambda: FourRooms().index((5, 5)), "wall"),
    ],
)
def test_bad_arguments(call, match: str) -> None:
    with pytest.raises(PlrayInputError, match=match):
        call()


def test_gymnasium_env_passes_checker_and_is_goal_conditioned() -> None:
    env = FourRoomsGoalEnv("windy", num_goals=4, goal_family="generic")
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0, options={"goal": 2})
    assert obs.shape == (68 + 4,) and obs[68 + 2] == 1.0 and obs[info["state"]] == 1.0
    for _ in range(300):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert r == pytest.approx(env.goals.rewards[info["state"], 2])
        if term or trunc:
            assert term == bool(env.goals.dones[info["state"], 2]) or trunc
            break
    made = gym.make("plray/FourRooms-v0", variant="teleport", num_goals=3)
    assert made.observation_space.shape == (71,)


def test_env_rejects_bad_goal_option() -> None:
    env = FourRoomsGoalEnv(num_goals=2)
    with pytest.raises(PlrayInputError, match="goal"):
        env.reset(options={"goal": 5})
