"""The goal-conditioned tabular Q-learner for FourRooms and its pickle-free artifact."""

import json

import numpy as np
import pytest

from plray.agents.export import ArtifactError
from plray.agents.qsource import TabularQSource, load_qsource
from plray.agents.tabular import (
    TabularQConfig,
    _StepSizes,
    load_tabular_agent,
    recommended_config,
    save_tabular_agent,
    train_tabular_q,
)
from plray.core import PlrayInputError, bellman_matrix_from_q, extract
from plray.envs.fourrooms import FourRooms
from plray.evaluation import kernel_metrics, value_iteration

GAMMA = 0.95


def _problem(variant: str = "deterministic", num_goals: int = 3, seed: int = 0):
    mdp = FourRooms(variant)
    goals = mdp.goal_set(num_goals, "generic", seed=seed)
    Q_star = value_iteration(mdp.kernel, goals.rewards, goals.dones, GAMMA).Q
    return mdp, goals, Q_star


class _NoKernel(FourRooms):
    """A FourRooms whose kernel cannot be read: the learner must only sample."""

    @property
    def kernel(self):  # type: ignore[override]
        raise AssertionError("the learner read the kernel")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("env_steps", 0, "env_steps"),
        ("env_steps", 1.5, "env_steps"),
        ("num_envs", True, "num_envs"),
        ("episode_length", -1, "episode_length"),
        ("lr_power", 0.5, "lr_power"),
        ("lr_power", 1.2, "lr_power"),
        ("lr_offset", 0.0, "lr_offset"),
        ("lr_offset", float("inf"), "lr_offset"),
        ("lr_min", 1.5, "lr_min"),
        ("seed", -1, "seed"),
    ],
)
def test_config_validation_names_the_field(field, value, match) -> None:
    with pytest.raises(PlrayInputError, match=match):
        TabularQConfig(**{field: value}).validate()


def test_train_rejects_bad_arguments() -> None:
    mdp, goals, _ = _problem()
    cfg = TabularQConfig(env_steps=1000)
    with pytest.raises(PlrayInputError, match="gamma"):
        train_tabular_q(mdp, goals, 1.0, cfg)
    with pytest.raises(PlrayInputError, match="snapshot_steps"):
        train_tabular_q(mdp, goals, GAMMA, cfg, snapshot_steps=[2000])
    with pytest.raises(PlrayInputError, match="initial_q"):
        train_tabular_q(mdp, goals, GAMMA, cfg, start_step=500)
    with pytest.raises(PlrayInputError, match="initial_q"):
        train_tabular_q(mdp, goals, GAMMA, cfg, initial_q=np.zeros((68, 4, 2)))
    with pytest.raises(PlrayInputError, match="variant"):
        recommended_config("stormy")


def test_deterministic_given_the_seed_and_never_reads_the_kernel() -> None:
    mdp = _NoKernel("windy")
    goals = FourRooms("windy").goal_set(4, "generic", seed=1)
    cfg = TabularQConfig(env_steps=20_000, seed=3)
    a = train_tabular_q(mdp, goals, GAMMA, cfg)
    b = train_tabular_q(mdp, goals, GAMMA, cfg)
    c = train_tabular_q(mdp, goals, GAMMA, TabularQConfig(env_steps=20_000, seed=4))
    np.testing.assert_array_equal(a.Q, b.Q)
    np.testing.assert_array_equal(a.visits, b.visits)
    assert not np.array_equal(a.Q, c.Q)
    assert a.env_steps == 20_000 and a.visits.sum() == 20_000 and a.steps_per_s > 0


def test_learned_q_converges_toward_q_star() -> None:
    mdp, goals, Q_star = _problem("deterministic", 3)
    untrained = np.abs(Q_star).max()  # the error of the all-zero initial table
    res = train_tabular_q(mdp, goals, GAMMA, TabularQConfig(env_steps=300_000), snapshot_steps=[30_000])
    early = np.abs(res.snapshots[30_000] - Q_star).max()
    final = np.abs(res.Q - Q_star).max()
    assert final < 0.1 * untrained and final < early
    assert (res.visits > 0).all()
    # with α ≡ 1 deterministic dynamics make Q-learning value iteration: Q* to machine precision
    exact = train_tabular_q(mdp, goals, GAMMA, recommended_config("deterministic", env_steps=300_000))
    np.testing.assert_allclose(exact.Q, Q_star, atol=1e-10)


def test_stochastic_variant_averages_the_transition_noise() -> None:
    mdp, goals, Q_star = _problem("windy", 4)
    res = train_tabular_q(mdp, goals, GAMMA, TabularQConfig(env_steps=300_000), snapshot_steps=[30_000])
    rel = lambda Q: ((Q - Q_star) ** 2).sum() / (Q_star**2).sum()  # noqa: E731
    assert rel(res.Q) < 2e-3 and rel(res.Q) < 0.5 * rel(res.snapshots[30_000])


def test_p_learning_recovers_the_kernel_from_the_learned_agent() -> None:
    """The point of the agent: deterministic |G| = 1 by column matching, teleport |G| = 20 by simplex."""
    mdp, goals, _ = _problem("deterministic", 1, seed=1)
    res = train_tabular_q(mdp, goals, GAMMA, recommended_config("deterministic"))
    M = bellman_matrix_from_q(res.Q, goals.rewards, GAMMA, goals.dones)
    np.testing.assert_array_equal(extract(res.Q, M, "column-match").kernel, mdp.kernel)
    mdp, goals, _ = _problem("teleport", 20)
    res = train_tabular_q(mdp, goals, GAMMA, TabularQConfig(env_steps=100_000))
    M = bellman_matrix_from_q(res.Q, goals.rewards, GAMMA, goals.dones)
    kernel = extract(res.Q, M, "simplex", candidates=mdp.local_candidates()).kernel
    assert kernel_metrics(kernel, mdp.kernel)["tv_mean"] < 0.08  # 0.037 measured; 0.75 after one step


def test_duplicate_state_actions_in_a_batch_average_their_td_errors() -> None:
    """One batch where every walker takes the same (s, a): the row moves to the mean target."""
    mdp = FourRooms("windy")
    goals = mdp.goal_set(2, "generic", seed=0)
    cfg = TabularQConfig(env_steps=4096, num_envs=4096, episode_length=1, seed=0)
    start = np.full((68, 4, 2), 0.3)
    visits = np.zeros((68, 4), dtype=np.int64)
    res = train_tabular_q(mdp, goals, GAMMA, cfg, initial_q=start)
    # reproduce the batch's draws (block 0 of the seeded walk) and apply the update by hand
    rng = np.random.default_rng([0, 0])
    states = rng.integers(68, size=4096)
    actions = rng.integers(4, size=4096)
    nxt = mdp.sample_next(states, actions, rng)
    targets = goals.rewards + GAMMA * (1 - goals.dones) * start.max(axis=1)
    expected = start.copy()
    rows = states * 4 + actions
    for row in np.unique(rows):
        s, a = divmod(int(row), 4)
        m = int((rows == row).sum())
        mean_td = (targets[nxt[rows == row]] - start[s, a]).mean(axis=0)
        expected[s, a] += 1.0 * mean_td  # first visit: α(0) = 1 for all m samples together
        visits[s, a] = m
    np.testing.assert_allclose(res.Q, expected, atol=1e-12)
    np.testing.assert_array_equal(res.visits, visits)


def test_effective_step_equals_consecutive_samples() -> None:
    steps = _StepSizes(power=0.8, offset=20.0, floor=0.01)
    n = np.array([0, 1, 5, 100, 7])
    m = np.array([3, 1, 4, 2, 1])
    keep = np.ones(len(n))
    for i, (ni, mi) in enumerate(zip(n, m, strict=True)):
        for j in range(mi):
            keep[i] *= 1 - steps.alpha(np.array([ni + j]))[0]
    np.testing.assert_allclose(steps.effective(n, m), 1 - keep, rtol=1e-12)


@pytest.mark.parametrize("with_visits", [True, False])
def test_resume_from_a_snapshot_equals_the_uninterrupted_run(with_visits) -> None:
    mdp, goals, _ = _problem("teleport", 5)
    cfg = TabularQConfig(env_steps=40_000, num_envs=64, episode_length=7, lr_power=0.9)
    full = train_tabular_q(mdp, goals, GAMMA, cfg, snapshot_steps=[10_000, 25_000])
    k = 10_000  # not a batch boundary (64 ∤ 10 000) nor an episode boundary
    resumed = train_tabular_q(
        mdp,
        goals,
        GAMMA,
        cfg,
        snapshot_steps=[10_000, 25_000],
        initial_q=full.snapshots[k],
        initial_visits=full.snapshot_visits[k] if with_visits else None,
        start_step=k,
    )
    np.testing.assert_array_equal(resumed.Q, full.Q)
    np.testing.assert_array_equal(resumed.visits, full.visits)
    np.testing.assert_array_equal(resumed.snapshots[25_000], full.snapshots[25_000])
    assert set(resumed.snapshots) == {25_000} and resumed.env_steps == 40_000
    with pytest.raises(PlrayInputError, match="initial_visits"):
        train_tabular_q(mdp, goals, GAMMA, cfg, initial_q=full.Q, initial_visits=full.visits, start_step=k)


def test_artifact_round_trip_through_load_qsource(tmp_path) -> None:
    mdp = FourRooms("windy")
    goals = mdp.goal_set(3, "generic", seed=2)
    cfg = TabularQConfig(env_steps=5_000)
    res = train_tabular_q(mdp, goals, GAMMA, cfg)
    path = save_tabular_agent(tmp_path / "agent", res, "windy", goals, GAMMA, {"note": "test"}, config=cfg)
    Q, manifest = load_tabular_agent(path)
    np.testing.assert_array_equal(Q, res.Q)
    assert manifest["algorithm"] == "tabular-q" and manifest["env_steps"] == 5_000
    assert manifest["goals"]["states"] == goals.states.tolist() and manifest["config"]["env_steps"] == 5_000
    src = load_qsource(path)
    assert isinstance(src, TabularQSource) and src.gamma == GAMMA
    np.testing.assert_array_equal(src.task.goals.states, goals.states)
    states = np.arange(68, dtype=np.float64)[:, None].repeat(3, axis=0)
    goal_index = np.repeat(np.arange(3), 68)
    got = src.q_values_at_states(states, np.eye(3)[goal_index])
    np.testing.assert_array_equal(got, res.Q[states[:, 0].astype(int), :, goal_index])


def test_artifact_errors_are_clear(tmp_path) -> None:
    mdp = FourRooms("deterministic")
    goals = mdp.goal_set(1, "generic", seed=0)
    res = train_tabular_q(mdp, goals, GAMMA, TabularQConfig(env_steps=1_000))
    path = save_tabular_agent(tmp_path / "agent", res, "deterministic", goals, GAMMA)
    # a flipped byte in the tensors
    tensors = path / "tensors.npz"
    data = bytearray(tensors.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_qsource(path)
    # a manifest whose goal set is not the stored one
    path = save_tabular_agent(tmp_path / "agent2", res, "deterministic", goals, GAMMA)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["task_kwargs"]["seed"] = 7
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="goal set rebuilt from the manifest differs"):
        load_tabular_agent(path)
    # a goal set that its parameters do not rebuild is refused at save time
    other = mdp.goal_set(1, "generic", seed=5)
    with pytest.raises(PlrayInputError, match="rebuildable"):
        save_tabular_agent(
            tmp_path / "bad", res, "deterministic", type(goals)(**{**goals.__dict__, "params": other.params}), GAMMA
        )
