"""Goal sets: placements, validation, the unseen goals kept out, per-episode distributions."""

import hashlib

import numpy as np
import pytest

from plray.agents.export import goal_set_record
from plray.core import PlrayInputError
from plray.envs.base import GoalEnv, GoalTask, GoalVectorEnv
from plray.envs.goalsets import GoalRegion, GoalSet
from plray.envs.mountaincar import MountainCarTask
from plray.envs.reacher import FAR_FINGERTIP, KinematicReacherTask
from plray.envs.registry import make_env, make_task

# sha256 of a fixed rollout (see _digest), recorded with the code before goal sets existed (686ce6a)
PAPER_DIGESTS = {
    "reacher": "ae6947dcb61faf52dc39e2a313c5ecc1c1a933467d9b2d0a73dc684ca58b4da7",
    "mountaincar-position": "0d88046495cd8efe47fc1174d4c6a3f611cd3ffc242140f4f5f43035541b03df",
}


def _digest(task: GoalTask, seed: int = 3, steps: int = 300, n: int = 16) -> str:
    """Hash of the obs, rewards, terminations and truncations of seeded vector and single-env rollouts."""
    env = GoalVectorEnv(task, n, seed=seed)
    h = hashlib.sha256()
    obs, _ = env.reset()
    h.update(obs.tobytes())
    rng = np.random.default_rng(99)
    assert task.num_actions is not None
    for _ in range(steps):
        obs, r, te, tr, _ = env.step(rng.integers(task.num_actions, size=n))
        for x in (obs, r.astype(np.float64), te, tr):
            h.update(np.ascontiguousarray(x).tobytes())
    single = GoalEnv(task)
    o, _ = single.reset(seed=5)
    h.update(o.tobytes())
    for _ in range(50):
        o, reward, term, trunc, _ = single.step(int(rng.integers(task.num_actions)))
        h.update(o.tobytes())
        h.update(np.float64(reward).tobytes())
        if term or trunc:
            o, _ = single.reset()
            h.update(o.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize(
    "task",
    [
        KinematicReacherTask(),
        KinematicReacherTask(goal_set={"kind": "fingertip"}),
        make_task("reacher", goals={"kind": "fingertip", "placement": "paper", "count": 4}),
    ],
)
def test_paper_reacher_is_bit_identical(task: KinematicReacherTask) -> None:
    np.testing.assert_array_equal(task.training_goals, [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert _digest(task) == PAPER_DIGESTS["reacher"]


@pytest.mark.parametrize("task", [MountainCarTask("position"), MountainCarTask(goal_set={"kind": "position"})])
def test_paper_mountaincar_is_bit_identical(task: MountainCarTask) -> None:
    assert _digest(task) == PAPER_DIGESTS["mountaincar-position"]
    legacy = MountainCarTask("position", 5, "random", 3)  # the legacy arguments build what they always built
    np.testing.assert_array_equal(legacy.training_goals, MountainCarTask("position", 5, "random", 3).training_goals)


def test_reacher_fingertip_placements() -> None:
    ring = KinematicReacherTask(goal_set=GoalSet("fingertip", "spread", 8, radius=1.5)).training_goals
    assert ring.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.5)
    np.testing.assert_allclose(ring[2], [0.0, 1.5], atol=1e-12)  # angle 2π·2/8 = π/2
    a = KinematicReacherTask(goal_set={"kind": "fingertip", "placement": "random", "count": 500, "seed": 1})
    b = KinematicReacherTask(goal_set={"kind": "fingertip", "placement": "random", "count": 500, "seed": 1})
    c = KinematicReacherTask(goal_set={"kind": "fingertip", "placement": "random", "count": 500, "seed": 2})
    np.testing.assert_array_equal(a.training_goals, b.training_goals)
    assert not np.array_equal(a.training_goals, c.training_goals)
    r = np.linalg.norm(a.training_goals, axis=1)
    assert r.max() <= 2.0 and r.min() < 0.3 and r.max() > 1.7  # the whole reachable disc
    explicit = KinematicReacherTask(goal_set={"kind": "fingertip", "placement": "explicit", "values": [[0.5, 0.5]]})
    np.testing.assert_array_equal(explicit.training_goals, [[0.5, 0.5]])


def test_unseen_goals_are_kept_out_of_every_fingertip_set() -> None:
    # a ring of radius 2 puts its π/4 goal on the far fingertip (√2, √2)
    with pytest.raises(PlrayInputError, match="far_fingertip"):
        KinematicReacherTask(goal_set={"kind": "fingertip", "placement": "spread", "count": 8, "radius": 2.0})
    with pytest.raises(PlrayInputError, match="far_fingertip"):
        KinematicReacherTask(goal_set={"kind": "fingertip", "placement": "explicit", "values": [[1.2, 1.3]]})
    # 0.4 = 0.2 + 0.2 away touches without overlapping: allowed
    apart = np.array(FAR_FINGERTIP) - 0.4 * np.array([1.0, 0.0])
    KinematicReacherTask(goal_set={"kind": "fingertip", "placement": "explicit", "values": [apart.tolist()]})
    # rejection sampling: random sets and distributions near the far fingertip never hit it
    region = {"shape": "annulus", "inner": 1.7, "outer": 2.0}
    task = KinematicReacherTask(goal_set={"kind": "fingertip", "count": 400, "distribution": region})
    draws = np.concatenate([task.training_goals, task.goal_set.sample(4000, np.random.default_rng(0), task)])
    assert np.linalg.norm(draws - FAR_FINGERTIP, axis=1).min() >= 0.4 - 1e-9
    assert np.linalg.norm(draws, axis=1).min() >= 1.7 - 1e-12
    rand = KinematicReacherTask(goal_set={"kind": "fingertip", "placement": "random", "count": 4000})
    assert np.linalg.norm(rand.training_goals - FAR_FINGERTIP, axis=1).min() >= 0.4 - 1e-9
    # a region inside the excluded ball cannot be sampled
    with pytest.raises(PlrayInputError, match="wholly inside"):
        KinematicReacherTask(
            goal_set={"kind": "fingertip", "distribution": {"shape": "box", "low": [1.3, 1.3], "high": [1.5, 1.5]}}
        )


def test_reacher_angle_goals() -> None:
    task = KinematicReacherTask(goal_set={"kind": "angle", "placement": "explicit", "values": [[3.1, -1.0]]})
    states = np.array([[-3.1, -1.0, 0.5, 0.0], [2.0, -1.0, 0.0, 0.0]])
    np.testing.assert_allclose(task.achieved_goal(states), states[:, :2])
    obs = task.observe(states)
    np.testing.assert_allclose(task.achieved_goal_from_obs(obs), states[:, :2])
    goals = np.repeat(task.training_goals, 2, axis=0)
    # θ₁ = −3.1 is 2π − 6.2 ≈ 0.083 from 3.1 once wrapped: reached; θ₁ = 2.0 is not
    np.testing.assert_array_equal(task.reward_at(states, goals), [1.0, 0.0])
    np.testing.assert_array_equal(task.terminal_at(states, goals), [True, False])
    assert task.observation_space().shape == (8,)
    # the target angle (0, π) is excluded, wrapped: (0, −π + 0.1) lies 0.1 from it
    with pytest.raises(PlrayInputError, match="target_angle"):
        KinematicReacherTask(goal_set={"kind": "angle", "placement": "explicit", "values": [[0.0, -np.pi + 0.1]]})
    spread = KinematicReacherTask(goal_set={"kind": "angle", "placement": "spread", "count": 7}).training_goals
    assert spread.shape == (7, 2) and (np.abs(spread) <= np.pi).all()
    with pytest.raises(PlrayInputError, match="paper has no 'angle'"):
        KinematicReacherTask(goal_set={"kind": "angle"})


def test_mountaincar_goal_sets_and_exclusion() -> None:
    spread = MountainCarTask(goal_set={"kind": "position", "placement": "spread", "count": 3})
    np.testing.assert_allclose(spread.training_goals.ravel(), [-1.2, -0.3, 0.6])
    # six evenly spread goals put −0.84 within 0.2 of the shortest-path target −1.0
    with pytest.raises(PlrayInputError, match="shortest_path"):
        MountainCarTask(goal_set={"kind": "position", "placement": "spread", "count": 6})
    # the paper's velocity goal 0.07 succeeds on (0.06, 0.08), which meets the fast car's (0.05, 0.07)
    with pytest.raises(PlrayInputError, match="fast_car"):
        MountainCarTask("velocity", goal_set={"kind": "velocity"})
    rand = MountainCarTask(goal_set={"kind": "position", "placement": "random", "count": 2000, "seed": 4})
    x = rand.training_goals.ravel()
    assert (x >= -1.2).all() and (x <= 0.6).all()
    assert (np.abs(x[:, None] - np.array([-1.0, 0.4])) >= 0.2 - 1e-9).all()
    with pytest.raises(PlrayInputError, match="not both"):
        MountainCarTask("position", 6, goal_set={"kind": "position"})
    with pytest.raises(PlrayInputError, match="no 'velocity' goals; choose one of position"):
        MountainCarTask("position", goal_set={"kind": "velocity"})
    with pytest.raises(PlrayInputError, match="no 'angle' goals"):
        make_task("mountaincar-position-noisy", goals={"kind": "angle"})


def test_vector_env_samples_goals_from_the_distribution() -> None:
    spec = {"kind": "position", "count": 4, "distribution": {"shape": "box", "low": [-0.9], "high": [0.3]}}
    venv = make_env({"task": "mountaincar-position", "task_kwargs": {"goals": spec}, "num_envs": 256, "seed": 1})
    assert isinstance(venv, GoalVectorEnv)
    obs, _ = venv.reset()
    g = obs[:, -1].astype(np.float64)
    assert len(np.unique(g)) == 256  # one goal per episode, not the finite set
    assert (g >= -0.9).all() and (g <= 0.3).all()
    assert (np.abs(g - 0.4) >= 0.2 - 1e-6).all() and (np.abs(g + 1.0) >= 0.2 - 1e-6).all()
    # the env's own stream: same seed, same goals; the finite set is not what episodes get
    again = make_env({"task": "mountaincar-position", "task_kwargs": {"goals": spec}, "num_envs": 256, "seed": 1})
    np.testing.assert_array_equal(again.reset()[0], obs)
    assert not np.isin(g, venv.task.training_goals.ravel().astype(np.float32)).any()
    # explicit goals still win
    fixed = GoalVectorEnv(venv.task, 8, goals=np.array([[0.0]]), seed=0)
    assert (fixed.reset()[0][:, -1] == 0.0).all()
    single = make_env({"task": "mountaincar-position", "task_kwargs": {"goals": spec}, "seed": 2})
    goals = {float(single.reset()[0][-1]) for _ in range(20)}
    assert len(goals) == 20


def test_goal_set_spec_validation_and_round_trip() -> None:
    gs = GoalSet.from_spec(
        {"kind": "fingertip", "count": 8, "seed": 3, "distribution": {"shape": "annulus", "inner": 0.5, "outer": 1.5}}
    )
    assert gs.resolved_placement == "random" and gs.distribution == GoalRegion("annulus", inner=0.5, outer=1.5)
    assert GoalSet.from_spec(gs.to_spec()) == gs
    ex = GoalSet.from_spec({"kind": "position", "placement": "explicit", "values": [[0.1], [-0.3]]})
    assert GoalSet.from_spec(ex.to_spec()) == ex
    bad = [
        ({"kind": "fingertip", "colour": 1}, "unknown keys \\['colour'\\]"),
        ({"count": 4}, "missing 'kind'"),
        ({"kind": "fingertip", "placement": "grid"}, "unknown 'grid'"),
        ({"kind": "fingertip", "placement": "spread"}, "needs a count"),
        ({"kind": "fingertip", "placement": "random", "count": 0}, "integer >= 1"),
        ({"kind": "fingertip", "placement": "explicit"}, "exactly when placement is 'explicit'"),
        ({"kind": "fingertip", "placement": "paper", "distribution": {"shape": "annulus"}}, "at random"),
        ({"kind": "fingertip", "distribution": {"shape": "annulus", "inner": 2, "outer": 1}}, "inner < outer"),
        ({"kind": "fingertip", "distribution": {"shape": "box", "low": [1], "high": [0]}}, "low < high"),
        ({"kind": "fingertip", "distribution": {"shape": "blob"}}, "unknown 'blob'"),
        ({"kind": "fingertip", "radius": 1.0}, "placement 'spread' only"),
    ]
    for spec, match in bad:
        with pytest.raises(PlrayInputError, match=match):
            GoalSet.from_spec(spec)
    with pytest.raises(PlrayInputError, match="1-D, the region is 2-D"):
        MountainCarTask(goal_set={"kind": "position", "distribution": {"shape": "annulus", "outer": 1.0}})
    with pytest.raises(PlrayInputError, match="reaches radius 2.0"):
        KinematicReacherTask(goal_set={"kind": "fingertip", "placement": "spread", "count": 3, "radius": 2.5})
    with pytest.raises(PlrayInputError, match="has 4 goals, not 5"):
        KinematicReacherTask(goal_set={"kind": "fingertip", "count": 5})
    with pytest.raises(PlrayInputError, match="does not accept"):
        make_task("mujoco-reacher", goals={"kind": "fingertip"})


def test_goal_set_record_for_the_manifest() -> None:
    rec = goal_set_record(make_task("reacher", goals={"kind": "fingertip", "placement": "spread", "count": 8}))
    assert rec["goal_set"] == {"kind": "fingertip", "placement": "spread", "seed": 0, "count": 8}
    assert rec["goal_kind"] == "fingertip" and np.array(rec["training_goals"]).shape == (8, 2)
    assert rec["unseen_overlap"] == []
    assert goal_set_record(make_task("reacher"))["goal_set"] is None
    assert goal_set_record(make_task("mountaincar-velocity"))["unseen_overlap"] == ["fast_car"]
    assert goal_set_record(make_task("fourrooms"))["unseen_overlap"] is None
    # the record rebuilds the same goals
    spec = rec["goal_set"]
    np.testing.assert_array_equal(KinematicReacherTask(goal_set=spec).training_goals, rec["training_goals"])


def test_tasks_with_goal_sets_pickle_and_sample_edge_cases() -> None:
    import pickle

    spec = {"kind": "position", "count": 3, "distribution": {"shape": "box", "low": [-0.9], "high": [0.3]}}
    for task in (
        MountainCarTask(goal_set=spec),
        KinematicReacherTask(goal_set={"kind": "angle", "placement": "random", "count": 3}),
    ):
        again = pickle.loads(pickle.dumps(task))
        np.testing.assert_array_equal(again.training_goals, task.training_goals)
        assert again.goal_set == task.goal_set
    task = MountainCarTask(goal_set=spec)
    assert task.goal_set is not None
    assert task.goal_set.sample(0, np.random.default_rng(0), task).shape == (0, 1)
    with pytest.raises(PlrayInputError, match="no distribution"):
        GoalSet("position", "spread", 3).sample(2, np.random.default_rng(0), task)


# ---------------------------------------------------------------------- labels
def test_goal_set_labels_name_what_the_set_is() -> None:
    from plray.envs.goalsets import goal_set_label, task_goal_set_label
    from plray.envs.registry import make_task

    assert goal_set_label("fingertip", "paper", 4) == "paper4"
    assert goal_set_label("generic", "random", 68) == "generic-random68"
    assert task_goal_set_label(make_task("reacher")) == "paper4"
    # MountainCar's four evenly spaced goals are the paper's set, however they were asked for
    assert task_goal_set_label(make_task("mountaincar-position")) == "paper4"
    assert (
        task_goal_set_label(make_task("mountaincar-position", goals={"kind": "position", "placement": "paper"}))
        == "paper4"
    )
    assert task_goal_set_label(make_task("mountaincar-position", num_goals=8)) == "position8"
    assert task_goal_set_label(make_task("mountaincar-velocity", num_goals=2)) == "velocity2"
    assert task_goal_set_label(make_task("mountaincar-position", num_goals=3, placement="random")) == "position-custom3"
    spread = {"kind": "fingertip", "count": 16, "placement": "spread"}
    assert task_goal_set_label(make_task("reacher", goals=spread)) == "fingertip16"
    angle = {"kind": "angle", "count": 8, "placement": "spread"}
    assert task_goal_set_label(make_task("reacher", goals=angle)) == "angle8"
    disc = {"kind": "fingertip", "count": 16, "distribution": {"shape": "annulus", "inner": 0.0, "outer": 2.0}}
    assert task_goal_set_label(make_task("reacher", goals=disc)) == "fingertip-dist16"
    rand = {"kind": "fingertip", "count": 5, "placement": "random", "seed": 3}
    assert task_goal_set_label(make_task("reacher", goals=rand)) == "fingertip-random5"


# ---------------------------------------------------------------------- mixtures
MIXTURE = {
    "kind": "mixture",
    "parts": [
        {"kind": "fingertip", "placement": "spread", "count": 16},
        {"kind": "angle", "placement": "spread", "count": 4},
    ],
}


def test_mixture_goals_are_each_part_with_the_one_hot_of_its_kind() -> None:
    from plray.envs.goalsets import GoalMixture
    from plray.envs.reacher import angle_lattice, fingertip_ring

    task = make_task("reacher", goals=MIXTURE)
    assert isinstance(task.goal_set, GoalMixture) and task.goal_set.kinds == ("fingertip", "angle")
    assert task.goal_kind == "mixture" and task.goal_dim == 4 and task.observation_space().shape == (10,)
    g = task.training_goals
    assert g.shape == (20, 4)
    np.testing.assert_array_equal(g[:16, :2], fingertip_ring(16))
    np.testing.assert_array_equal(g[16:, :2], angle_lattice(4))
    np.testing.assert_array_equal(g[:, 2:], [[1.0, 0.0]] * 16 + [[0.0, 1.0]] * 4)
    # the observation is concat(observe(s), g): the paper's 6 dims, then the 4-D goal
    s = task.reset_states(3, np.random.default_rng(0))
    obs = task.agent_obs(s, g[[0, 16, 17]])
    np.testing.assert_allclose(obs[:, :6], task.observe(s).astype(np.float32))
    np.testing.assert_allclose(obs[:, 6:], g[[0, 16, 17]].astype(np.float32))
    # vector envs command mixture goals; the continuous-torque Reacher takes the same mixture
    venv = GoalVectorEnv(task, 64, seed=0)
    o, _ = venv.reset()
    assert {tuple(row) for row in o[:, 6:].astype(np.float64).round(6)} <= {tuple(r) for r in g.round(6)}
    assert make_task("reacher-continuous", goals=MIXTURE).training_goals.shape == (20, 4)


def test_mixture_keeps_the_unseen_goals_out_of_every_part() -> None:
    from plray.envs.reacher import GOAL_TOLERANCE, REACHER_UNSEEN_TOLERANCE, TARGET_ANGLE

    near_far = {"kind": "fingertip", "placement": "spread", "count": 8, "radius": 2.0}  # (√2, √2) is on it
    with pytest.raises(PlrayInputError, match=r"goals.parts\[0\].*far_fingertip"):
        make_task(
            "reacher",
            goals={"kind": "mixture", "parts": [near_far, {"kind": "angle", "count": 2, "placement": "spread"}]},
        )
    near_angle = {"kind": "angle", "placement": "explicit", "values": [[0.0, -np.pi + 0.1]]}
    with pytest.raises(PlrayInputError, match=r"goals.parts\[1\].*target_angle"):
        make_task("reacher", goals={"kind": "mixture", "parts": [MIXTURE["parts"][0], near_angle]})
    # random parts are rejection-sampled away from their kind's unseen goal, as a plain set is
    rand = {
        "kind": "mixture",
        "parts": [
            {"kind": "fingertip", "placement": "random", "count": 2000, "seed": 1},
            {"kind": "angle", "placement": "random", "count": 2000, "seed": 1},
        ],
    }
    task = make_task("reacher", goals=rand)
    g = task.training_goals
    tip, ang = g[g[:, 2] == 1.0, :2], g[g[:, 3] == 1.0, :2]
    assert len(tip) == len(ang) == 2000
    gap = GOAL_TOLERANCE + REACHER_UNSEEN_TOLERANCE - 1e-9
    assert np.linalg.norm(tip - FAR_FINGERTIP, axis=1).min() >= gap
    wrapped = (ang - np.array(TARGET_ANGLE) + np.pi) % (2 * np.pi) - np.pi
    assert np.linalg.norm(wrapped, axis=1).min() >= gap
    # each part is what the same plain goal set builds
    for part, rows in zip(rand["parts"], (tip, ang), strict=True):
        np.testing.assert_array_equal(rows, make_task("reacher", goals=part).training_goals)
    assert goal_set_record(task)["unseen_overlap"] == []


def test_mixture_reward_and_terminal_by_kind_by_hand() -> None:
    task = make_task("reacher", goals=MIXTURE)
    # s0: θ = (0, π/2): fingertip (1, 1); s1: θ = (3.1, −1.0) (angles); s2: θ = (0, 0): fingertip (2, 0)
    states = np.array([[0.0, np.pi / 2, 0.3, 0.0], [3.1, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    goals = np.array(
        [
            [1.0, 0.9, 1.0, 0.0],  # fingertip goal 0.1 from (1, 1): reached
            [-3.1, -1.0, 0.0, 1.0],  # angle goal: wrap(3.1 − (−3.1)) = 6.2 − 2π ≈ −0.083: reached
            [0.0, 0.0, 0.0, 1.0],  # angle goal (0, 0): θ = (0, 0) reached, though fingertip (2, 0) is far from it
            [0.0, 0.0, 1.0, 0.0],  # the same target as a fingertip goal: ‖(2, 0)‖ = 2: not reached
        ]
    )
    np.testing.assert_array_equal(task.reward_at(states, goals), [1.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(task.terminal_at(states, goals), [True, True, True, False])
    obs = task.observe(states)
    np.testing.assert_array_equal(task.reward_from_obs(obs, goals), [1.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(task.terminal_from_obs(obs, goals), [True, True, True, False])
    achieved = task.achieved_goal_for(states, goals)
    np.testing.assert_allclose(achieved[:, :2], [[1.0, 1.0], [3.1, -1.0], [0.0, 0.0], [2.0, 0.0]], atol=1e-12)
    np.testing.assert_array_equal(achieved[:, 2:], goals[:, 2:])
    np.testing.assert_allclose(task.achieved_goal_for_obs(obs, goals), achieved, atol=1e-12)
    with pytest.raises(PlrayInputError, match="goals"):  # a plain 2-D goal is not a mixture goal
        task.reward_at(states, goals[:, :2])
    # without a goal, a state attains one goal of every kind: kind-major rows, (K·B, 4)
    every = task.achieved_goal(states)
    assert every.shape == (8, 4)
    np.testing.assert_allclose(every[:4, :2], task.fingertip(states))
    np.testing.assert_allclose(every[4:, :2], states[:, :2])
    # the same scores as the plain fingertip and angle tasks
    tip, ang = make_task("reacher"), make_task("reacher", goals={"kind": "angle", "placement": "spread", "count": 4})
    rng = np.random.default_rng(1)
    s = tip.sample_states(500, rng)
    targets = rng.uniform(-2, 2, size=(500, 2))
    mix = task.goal_mixture
    assert mix is not None
    for j, plain in enumerate((tip, ang)):
        g = mix.encode(targets, np.full(500, j))
        np.testing.assert_array_equal(task.reward_at(s, g), plain.reward_at(s, targets))


def test_mixture_specs_round_trip_and_bad_specs_are_refused() -> None:
    from plray.envs.goalsets import GoalMixture, goal_set_kwarg, mixture_spec_from_label

    mix = GoalMixture.from_spec(MIXTURE)
    assert GoalMixture.from_spec(mix.to_spec()) == mix and goal_set_kwarg(mix.to_spec()) == mix
    task = make_task("reacher", goals=mix.to_spec())
    np.testing.assert_array_equal(task.training_goals, make_task("reacher", goals=MIXTURE).training_goals)
    rec = goal_set_record(task)
    assert rec["goal_set"] == mix.to_spec() and rec["goal_kind"] == "mixture"
    assert rec["mixture_kinds"] == ["fingertip", "angle"] and np.shape(rec["training_goals"]) == (20, 4)
    np.testing.assert_array_equal(make_task("reacher", goals=rec["goal_set"]).training_goals, rec["training_goals"])
    tip = {"kind": "fingertip", "placement": "spread", "count": 4}
    ang = {"kind": "angle", "placement": "spread", "count": 2}
    bad = [
        ({"kind": "mixture"}, "expected a list of goal sets"),
        ({"kind": "mixture", "parts": []}, "expected a list of goal sets"),
        ({"kind": "mixture", "parts": [tip, ang], "count": 3}, "unknown keys \\['count'\\]"),
        ({"kind": "mixture", "parts": [tip, {"kind": "mixture", "parts": [tip, ang]}]}, "no nesting"),
        ({"kind": "mixture", "parts": [tip, tip | {"count": 8}]}, "at least two goal kinds"),
        ({"kind": "mixture", "parts": [tip, ang, tip]}, "the same part as goals.parts\\[0\\]"),
        ({"kind": "mixture", "parts": [tip, ang | {"placement": "grid"}]}, "parts\\[1\\]: goals.placement"),
        (
            {"kind": "mixture", "parts": [tip, {"kind": "angle", "count": 4, "distribution": {"shape": "annulus"}}]},
            "cannot sample from a distribution",
        ),
    ]
    for spec, match in bad:
        with pytest.raises(PlrayInputError, match=match):
            GoalMixture.from_spec(spec)
    with pytest.raises(PlrayInputError, match="parts\\[1\\]: goals.kind: task 'reacher' has no 'velocity'"):
        make_task("reacher", goals={"kind": "mixture", "parts": [tip, {"kind": "velocity", "count": 2}]})
    with pytest.raises(PlrayInputError, match="share one goal dim"):
        GoalMixture.from_spec({"kind": "mixture", "parts": [tip, ang]}).goal_kinds(_MixedDims())
    with pytest.raises(PlrayInputError, match="no 'fingertip' goals"):  # one kind: no mixtures on MountainCar
        MountainCarTask(goal_set={"kind": "mixture", "parts": [{"kind": "position"}, tip]})
    with pytest.raises(PlrayInputError, match="GoalMixture, not a GoalSet"):
        GoalSet.from_spec(MIXTURE)
    # labels: the mixture's name in tables, and the spec a sweep cell's label names
    from plray.envs.goalsets import task_goal_set_label

    assert task_goal_set_label(task) == "fingertip16+angle4"
    assert mixture_spec_from_label("fingertip16+angle4", seed=2) == {
        "kind": "mixture",
        "parts": [
            {"kind": "fingertip", "placement": "spread", "count": 16, "seed": 2},
            {"kind": "angle", "placement": "spread", "count": 4, "seed": 2},
        ],
    }
    paper = make_task("reacher", goals=mixture_spec_from_label("fingertip-paper4+angle-random3"))
    assert task_goal_set_label(paper) == "fingertip-paper4+angle-random3"
    for label in ("fingertip16+", "fingertip+angle4", "fingertip-grid4+angle2", "fingertip0+angle2", ""):
        with pytest.raises(PlrayInputError, match="mixture"):
            mixture_spec_from_label(label)


class _MixedDims:
    """A stand-in task whose two goal kinds differ in dim."""

    name = "mixed"

    def __init__(self) -> None:
        from plray.envs.reacher import REACHER_GOAL_KINDS

        angle = REACHER_GOAL_KINDS["angle"]
        self.goal_kinds = {
            "fingertip": REACHER_GOAL_KINDS["fingertip"],
            "angle": type(angle)("angle", 3, angle.tolerance, True, angle.domain, angle.spread),
        }


def test_mixture_tasks_pickle() -> None:
    import pickle

    task = make_task("reacher", goals=MIXTURE)
    again = pickle.loads(pickle.dumps(task))
    assert again.goal_set == task.goal_set and again.goal_dim == 4
    np.testing.assert_array_equal(again.training_goals, task.training_goals)
