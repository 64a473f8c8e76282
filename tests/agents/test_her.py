"""Hindsight relabelling, checked against transitions computed by hand."""

import numpy as np
import pytest
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from plray.agents.her import (
    HindsightEpisodeReplayBuffer,
    HindsightTransitionStore,
    relabel,
    relabel_fragments,
    relabel_indices,
)
from plray.core import PlrayInputError
from plray.envs.mountaincar import MountainCarTask
from plray.envs.reacher import KinematicReacherTask
from tests.agents.episodes import episode

TASK = MountainCarTask("position")
XS = [-0.5, -0.3, 0.05, 0.55]  # positions of one 3-step episode, goal x = 0.0


def _episode(xs=XS, goal=0.0, rewards=(0.0, 1.0, 0.0)) -> SingleAgentEpisode:
    return episode(TASK, [np.array([x, 0.01, goal]) for x in xs], [2] * (len(xs) - 1), rewards)


def test_relabel_indices_ranges() -> None:
    rng = np.random.default_rng(0)
    t = np.full(20_000, 2)
    T = np.full(20_000, 6)
    fut = relabel_indices("future", t, T, rng)
    assert set(np.unique(fut)) == {3, 4, 5, 6}  # uniform over t+1..T
    np.testing.assert_allclose(np.bincount(fut)[3:] / len(fut), 0.25, atol=0.02)
    assert (relabel_indices("final", t, T, rng) == 6).all()
    assert set(np.unique(relabel_indices("episode", t, T, rng))) == set(range(7))
    with pytest.raises(PlrayInputError, match="T > t"):
        relabel_indices("future", np.array([3]), np.array([3]), rng)
    with pytest.raises(PlrayInputError, match="draws no index"):
        relabel_indices("random", t, T, rng)


def test_relabel_recomputes_reward_and_termination_by_hand() -> None:
    obs = np.array([[0.05, 0.01, 0.0], [0.05, 0.01, 0.0]], dtype=np.float32)
    nxt = np.array([[0.55, 0.02, 0.0], [0.55, 0.02, 0.0]], dtype=np.float32)
    goals = np.array([[0.6], [-0.6]])
    o, n, r, d = relabel(TASK, obs, nxt, goals)
    np.testing.assert_allclose(o[:, 2], [0.6, -0.6])
    np.testing.assert_allclose(n[:, 2], [0.6, -0.6])
    np.testing.assert_allclose(o[:, :2], obs[:, :2])  # the state part is untouched
    # |0.55 - 0.6| = 0.05 < a = 0.1: goal reached; |0.55 + 0.6| = 1.15: not
    np.testing.assert_array_equal(r, [1.0, 0.0])
    np.testing.assert_array_equal(d, [True, False])


def test_relabel_reacher_fingertip_goal() -> None:
    task = KinematicReacherTask()
    # theta = (0, pi/2): fingertip (cos 0 + cos pi/2, sin 0 + sin pi/2) = (1, 1)
    state = np.array([[0.0, np.pi / 2, 0.0, 0.0]])
    plain = task.observe(state)
    obs = np.concatenate([plain, [[1.0, 0.0]]], axis=1).astype(np.float32)
    _, _, r, d = relabel(task, obs, obs, np.array([[1.0, 0.9]]))
    assert r[0] == 1.0 and d[0]  # distance 0.1 < 0.2
    _, _, r, d = relabel(task, obs, obs, np.array([[1.0, 0.7]]))
    assert r[0] == 0.0 and not d[0]  # distance 0.3


@pytest.mark.parametrize("k", [1, 3])
def test_buffer_future_strategy(k: int) -> None:
    buf = HindsightEpisodeReplayBuffer(task="mountaincar-position", strategy="future", k=k, seed=0, capacity=100)
    buf.add([_episode()])
    out = buf.sample(num_items=4 * (k + 1), n_step=1, gamma=0.99)
    assert len(out) == 4 * (k + 1)
    for i in range(0, len(out), k + 1):
        real, copies = out[i], out[i + 1 : i + k + 1]
        t = real.t_started
        assert real.get_observations(0)[2] == 0.0  # the real transition keeps its goal
        future = {XS[j] for j in range(t + 1, len(XS))}
        for c in copies:
            o, n = c.get_observations(0), c.get_observations(-1)
            np.testing.assert_allclose(o[:2], real.get_observations(0)[:2])
            np.testing.assert_allclose(n[:2], real.get_observations(-1)[:2])
            g = float(o[2])
            assert min(abs(g - f) for f in future) < 1e-6, f"goal {g} is not a future achieved x of t={t}"
            reached = abs(float(n[0]) - g) < 0.1
            assert c.get_rewards(0) == float(reached) and c.is_terminated == reached
            np.testing.assert_array_equal(c.get_actions(0), real.get_actions(0))


def test_buffer_final_and_random_strategies() -> None:
    buf = HindsightEpisodeReplayBuffer(task="mountaincar-position", strategy="final", k=2, seed=1, capacity=100)
    buf.add([_episode()])
    for c in buf.sample(num_items=9, n_step=1, gamma=0.99)[1::3]:
        assert c.get_observations(0)[2] == pytest.approx(XS[-1])
    buf = HindsightEpisodeReplayBuffer(task="mountaincar-position", strategy="random", k=4, seed=1, capacity=100)
    buf.add([_episode()])
    out = buf.sample(num_items=50, n_step=1, gamma=0.99)
    goals = {round(float(c.get_observations(0)[2]), 6) for i, c in enumerate(out) if i % 5}
    assert goals <= {-1.2, -0.6, 0.0, 0.6} and len(goals) > 1
    assert buf.num_relabelled == 40


def test_buffer_is_reproducible_and_rejects_multistep() -> None:
    def draw(seed: int) -> list:
        buf = HindsightEpisodeReplayBuffer(task="mountaincar-position", strategy="future", k=2, seed=seed, capacity=100)
        buf.add([_episode()])
        return [float(e.get_observations(0)[2]) for e in buf.sample(num_items=30, n_step=1, gamma=0.99)]

    assert draw(5) == draw(5)
    buf = HindsightEpisodeReplayBuffer(task="mountaincar-position", k=2, seed=0, capacity=100)
    buf.add([_episode()])
    with pytest.raises(PlrayInputError, match="one-step"):
        buf.sample(num_items=6, n_step=3, gamma=0.99)
    with pytest.raises(PlrayInputError, match="her strategy"):
        HindsightEpisodeReplayBuffer(task="mountaincar-position", strategy="past", capacity=10)
    with pytest.raises(PlrayInputError, match="integer >= 0"):
        HindsightEpisodeReplayBuffer(task="mountaincar-position", k=-1, capacity=10)


# ---------------------------------------------------------------- rollout fragments (PQN)
def _fragments() -> tuple[list, list, list, list]:
    """Two fragments, goal x = 0.0: XS (3 steps, truncated) and one that ends at the goal (2 steps)."""
    second = [-0.2, -0.05, 0.02]
    obs = [np.array([[x, 0.01, 0.0] for x in xs]) for xs in (XS, second)]
    actions = [np.array([2, 2, 2]), np.array([1, 0])]
    return obs, actions, [np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0])], [False, True]


def test_relabel_fragments_real_transitions_first() -> None:
    obs, acts, rews, terms = _fragments()
    out = relabel_fragments(TASK, obs, acts, rews, terms, "future", 0, np.random.default_rng(0))
    np.testing.assert_allclose(out["obs"][:, 0], [-0.5, -0.3, 0.05, -0.2, -0.05])
    np.testing.assert_allclose(out["next_obs"][:, 0], [-0.3, 0.05, 0.55, -0.05, 0.02])
    np.testing.assert_array_equal(out["actions"], [2, 2, 2, 1, 0])
    np.testing.assert_array_equal(out["rewards"], [0.0, 1.0, 0.0, 1.0, 1.0])  # the environment's own rewards
    np.testing.assert_array_equal(out["terminateds"], [False, False, False, False, True])  # only a fragment's end


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_relabel_fragments_goals_come_from_the_same_fragment(strategy: str) -> None:
    obs, acts, rews, terms = _fragments()
    out = relabel_fragments(TASK, obs, acts, rews, terms, strategy, 4, np.random.default_rng(1))
    n = 5
    assert len(out["actions"]) == 5 * n
    np.testing.assert_array_equal(out["actions"][n:], np.tile(out["actions"][:n], 4))
    copies_goal = out["obs"][n:, 2].reshape(4, n)
    own = {0: XS, 1: XS, 2: XS, 3: [-0.2, -0.05, 0.02], 4: [-0.2, -0.05, 0.02]}
    t = [0, 1, 2, 0, 1]
    for i in range(n):
        xs = np.array(own[i], dtype=np.float32)
        allowed = {"future": xs[t[i] + 1 :], "final": xs[-1:], "episode": xs}[strategy]
        assert np.isin(copies_goal[:, i], allowed).all(), (strategy, i, copies_goal[:, i], allowed)
    # relabelled rewards and terminations are recomputed: |x' - g| < 0.1
    x_next = out["next_obs"][n:, 0]
    hit = np.abs(x_next - out["obs"][n:, 2]) < 0.1
    np.testing.assert_array_equal(out["rewards"][n:], hit.astype(np.float32))
    np.testing.assert_array_equal(out["terminateds"][n:], hit)
    np.testing.assert_array_equal(out["obs"][n:, 2], out["next_obs"][n:, 2])


def test_relabel_fragments_random_goals_and_errors() -> None:
    obs, acts, rews, terms = _fragments()
    out = relabel_fragments(TASK, obs, acts, rews, terms, "random", 2, np.random.default_rng(2))
    goals = out["obs"][5:, 2]
    assert np.isclose(goals[:, None], [-1.2, -0.6, 0.0, 0.6], atol=1e-6).any(-1).all() and len(set(goals)) > 1
    with pytest.raises(PlrayInputError, match="T \\+ 1 observations"):
        relabel_fragments(TASK, [obs[0][:2]], [acts[0]], [rews[0]], [False], "future", 1, np.random.default_rng(0))
    with pytest.raises(PlrayInputError, match="no transitions"):
        empty = np.array([])
        relabel_fragments(TASK, [obs[0][:1]], [empty], [empty], [False], "future", 1, np.random.default_rng(0))
    with pytest.raises(PlrayInputError, match="differ in length"):
        relabel_fragments(TASK, obs, acts[:1], rews, terms, "future", 1, np.random.default_rng(0))


# ---------------------------------------------------------------- goal mixtures
MIXTURE = {
    "kind": "mixture",
    "parts": [
        {"kind": "fingertip", "placement": "spread", "count": 4},
        {"kind": "angle", "placement": "spread", "count": 2},
    ],
}
MIX_TASK = KinematicReacherTask(goal_set=MIXTURE)
# θ of one 3-step fragment; o_2 = (0, 1.1) has the fingertip of o_3 = (1.1, 0) (the links swapped)
# but angles 1.56 away from it
THETAS = [(0.0, 0.0), (0.5, 0.0), (0.0, 1.1), (1.1, 0.0)]
TIP_GOAL = np.array([1.0, 0.0, 1.0, 0.0])  # commanded: a fingertip goal
ANGLE_GOAL = np.array([0.5, 0.5, 0.0, 1.0])  # commanded: an angle goal


def _mixture_fragments() -> tuple[list, list, list, list]:
    states = np.array([[t1, t2, 0.0, 0.0] for t1, t2 in THETAS])
    obs = [MIX_TASK.agent_obs(states, np.repeat(g[None], 4, axis=0)).astype(np.float64) for g in (TIP_GOAL, ANGLE_GOAL)]
    return obs, [np.array([4, 4, 4])] * 2, [np.zeros(3)] * 2, [False, False]


def test_relabel_mixture_final_keeps_each_goal_kind_by_hand() -> None:
    out = relabel_fragments(MIX_TASK, *_mixture_fragments(), "final", 1, np.random.default_rng(0))
    tip3 = np.array([np.cos(1.1) + 1.0, np.sin(1.1)])  # fingertip of o_3
    copies = out["obs"][6:].astype(np.float64)
    # fingertip-commanded copies: goal [fingertip(o_3), 1, 0]; angle-commanded: [θ(o_3), 0, 1]
    np.testing.assert_allclose(copies[:3, 6:], np.tile([*tip3, 1.0, 0.0], (3, 1)), atol=1e-6)
    np.testing.assert_allclose(copies[3:, 6:], np.tile([1.1, 0.0, 0.0, 1.0], (3, 1)), atol=1e-6)
    np.testing.assert_array_equal(out["next_obs"][6:, 6:], out["obs"][6:, 6:])
    # rewards recomputed by each goal's kind, next observations o_1, o_2, o_3:
    #   fingertip: fp(0.5, 0) is 0.59 away: 0; fp(0, 1.1) = fp(o_3): 1; o_3: 1
    #   angle: (0.5, 0) is 0.6 away: 0; (0, 1.1) is 1.56 away: 0; o_3: 1
    np.testing.assert_array_equal(out["rewards"][6:], [0, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(out["terminateds"][6:], [False, True, True, False, False, True])
    np.testing.assert_allclose(out["obs"][:3, 6:], np.tile(TIP_GOAL, (3, 1)))  # real transitions untouched
    np.testing.assert_allclose(out["obs"][3:6, 6:], np.tile(ANGLE_GOAL, (3, 1)))


@pytest.mark.parametrize("strategy", ["future", "episode", "random"])
def test_relabel_mixture_goals_are_valid_goals_of_their_kind(strategy: str) -> None:
    obs, acts, rews, terms = _mixture_fragments()
    out = relabel_fragments(MIX_TASK, obs, acts, rews, terms, strategy, 4, np.random.default_rng(3))
    goals = out["obs"][6:, 6:].astype(np.float64)
    onehot = goals[:, 2:]
    assert set(map(tuple, onehot)) <= {(1.0, 0.0), (0.0, 1.0)}
    states = np.array([[t1, t2, 0.0, 0.0] for t1, t2 in THETAS])
    if strategy == "random":  # training goals, of both kinds
        assert np.isclose(goals[:, None], MIX_TASK.training_goals.astype(np.float32), atol=1e-6).all(-1).any(-1).all()
    else:  # the achieved goal, of the commanded kind, of an observation of the same fragment
        np.testing.assert_array_equal(onehot, np.tile([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3, (4, 1)))
        tips, angles = MIX_TASK.fingertip(states), states[:, :2]
        for g in goals:
            pool = tips if g[2] == 1.0 else angles
            assert np.isclose(pool, g[:2], atol=1e-6).all(-1).any(), g
    nxt = out["next_obs"][6:, :6].astype(np.float64)
    expected = MIX_TASK.reward_from_obs(nxt, goals)
    np.testing.assert_array_equal(out["rewards"][6:], expected.astype(np.float32))


def test_buffer_relabels_a_mixture_with_the_commanded_kind() -> None:
    obs, _, _, _ = _mixture_fragments()
    buf = HindsightEpisodeReplayBuffer(
        task="reacher", task_kwargs={"goals": MIXTURE}, strategy="final", k=1, seed=0, capacity=100
    )
    assert buf.task.goal_dim == 4
    for o in obs:
        buf.add([episode(MIX_TASK, list(o), [4, 4, 4])])
    out = buf.sample(num_items=40, n_step=1, gamma=0.99)
    for real, copy in zip(out[::2], out[1::2], strict=True):
        commanded, g = real.get_observations(0)[6:], copy.get_observations(0)[6:]
        np.testing.assert_array_equal(g[2:], commanded[2:])  # the copy keeps the commanded kind
        final = obs[0][-1] if commanded[2] == 1.0 else obs[1][-1]
        achieved = final[4:6] if commanded[2] == 1.0 else final[0:2]  # fingertip or θ of o_3
        np.testing.assert_allclose(g[:2], achieved, atol=1e-6)
        nxt = copy.get_observations(-1)[:6].astype(np.float64)[None]
        reached = bool(MIX_TASK.terminal_from_obs(nxt, g.astype(np.float64)[None])[0])
        assert copy.get_rewards(0) == float(reached) and copy.is_terminated == reached


# ---------------------------------------------------------------- flat transition store (SAC)
def _store(k: int = 2, strategy: str = "future", capacity: int = 1000, seed: int = 0) -> HindsightTransitionStore:
    return HindsightTransitionStore(TASK, capacity, strategy=strategy, k=k, seed=seed)


def _obs(xs, goal=0.0) -> np.ndarray:
    return np.array([[x, 0.01, goal] for x in xs], dtype=np.float32)


def test_store_real_transitions_are_stored_ones_across_fragments() -> None:
    store = _store(k=0)
    # episode "a" in two fragments (t 0..2, then 2..4, ends at the goal); episode "b" truncated
    store.add_fragment("a", 0, _obs(XS[:3]), np.array([2, 2]), np.array([0.0, 0.0]), False, False)
    store.add_fragment("b", 0, _obs([0.3, 0.4], 0.6), np.array([1]), np.array([0.0]), False, True)
    store.add_fragment("a", 2, _obs([0.05, 0.55, 0.05]), np.array([0, 1]), np.array([0.0, 1.0]), True, True)
    assert len(store) == 5 and store.num_added == 5
    a = [-0.5, -0.3, 0.05, 0.55, 0.05]  # episode a's observations in order, one row
    steps = enumerate(zip([2, 2, 0, 1], [0, 0, 0, 1], strict=True))
    expected = {(a[i], a[i + 1], act, r, i == 3) for i, (act, r) in steps}
    expected.add((0.3, 0.4, 1, 0.0, False))
    batch = store.sample(400)
    seen = set()
    columns = (batch[c] for c in ("obs", "new_obs", "actions", "rewards", "terminateds"))
    for o, n, act, r, d in zip(*columns, strict=True):
        seen.add((round(float(o[0]), 6), round(float(n[0]), 6), int(act), float(r), bool(d)))
    assert seen == {(round(x, 6), round(y, 6), act, r, d) for x, y, act, r, d in expected}  # all five, nothing else
    assert batch["obs"].dtype == np.float32 and batch["terminateds"].dtype == bool


@pytest.mark.parametrize("k", [1, 3])
def test_store_future_goals_come_later_in_the_same_episode(k: int) -> None:
    store = _store(k=k, seed=3)
    store.add_fragment("a", 0, _obs(XS), np.array([2, 2, 2]), np.array([0.0, 1.0, 0.0]), False, True)
    store.add_fragment("b", 0, _obs([0.9, 0.8, 0.7], 0.6), np.array([0, 0]), np.array([0.0, 0.0]), False, True)
    batch = store.sample(60 * (k + 1))
    assert len(batch["rewards"]) == 60 * (k + 1) and store.num_relabelled == 60 * k
    episodes = [XS, [0.9, 0.8, 0.7]]
    for i in range(0, len(batch["rewards"]), k + 1):
        x, x_next = float(batch["obs"][i, 0]), float(batch["new_obs"][i, 0])
        ep = next(e for e in episodes if any(abs(x - v) < 1e-6 for v in e[:-1]))
        t = next(j for j, v in enumerate(ep[:-1]) if abs(x - v) < 1e-6)
        for c in range(i + 1, i + k + 1):
            g = float(batch["obs"][c, 2])
            assert float(batch["new_obs"][c, 2]) == g and float(batch["obs"][c, 0]) == pytest.approx(x)
            assert min(abs(g - f) for f in ep[t + 1 :]) < 1e-6, f"goal {g} is not a future x of t={t} in {ep}"
            reached = abs(x_next - g) < 0.1  # MountainCar-position: |x' - g| < 0.1 (hand-computed)
            assert batch["rewards"][c] == float(reached) and batch["terminateds"][c] == reached
            assert batch["actions"][c] == batch["actions"][i]


def test_store_random_goals_are_training_goals_and_draws_repeat_with_the_seed() -> None:
    def draw(seed: int) -> dict:
        store = _store(k=4, strategy="random", seed=seed)
        store.add_fragment("a", 0, _obs(XS), np.array([2, 2, 2]), np.array([0.0, 1.0, 0.0]), False, True)
        return store.sample(50)

    out = draw(1)
    goals = {round(float(g), 6) for i, g in enumerate(out["obs"][:, 2]) if i % 5}
    assert goals <= {-1.2, -0.6, 0.0, 0.6} and len(goals) > 1
    again = draw(1)
    for key in out:
        np.testing.assert_array_equal(out[key], again[key])


def test_store_reuses_the_oldest_rows_and_reopens_an_evicted_episode() -> None:
    store = _store(k=0, capacity=2 * TASK.max_episode_steps)  # two rows
    assert store.rows == 2
    store.add_fragment("a", 0, _obs([0.1, 0.2]), np.array([0]), np.array([0.0]), False, False)  # row 0, open
    store.add_fragment("b", 0, _obs([0.3, 0.4]), np.array([1]), np.array([0.0]), False, True)  # row 1
    store.add_fragment("c", 0, _obs([0.5, 0.6]), np.array([2]), np.array([0.0]), False, True)  # row 0 again
    store.add_fragment("a", 1, _obs([0.2, 0.25]), np.array([0]), np.array([0.0]), False, True)  # a lost its row
    assert len(store) == 2
    starts = {round(float(x), 6) for x in store.sample(100)["obs"][:, 0]}
    assert starts == {0.5, 0.2}  # b's row was the oldest when a needed one; a's first step is gone


def test_store_errors() -> None:
    with pytest.raises(PlrayInputError, match="capacity"):
        _store(capacity=0)
    with pytest.raises(PlrayInputError, match="her strategy"):
        _store(strategy="past")
    with pytest.raises(PlrayInputError, match="nothing stored"):
        _store().sample(8)
    with pytest.raises(PlrayInputError, match="T \\+ 1 observations"):
        _store().add_fragment("a", 0, _obs(XS), np.array([2]), np.array([0.0]), False, True)
    with pytest.raises(PlrayInputError, match="exceed"):
        long = TASK.max_episode_steps + 1
        _store().add_fragment("a", 0, _obs([0.0] * (long + 1)), np.zeros(long, int), np.zeros(long), False, True)
