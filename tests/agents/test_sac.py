"""plray's SAC (RLlib's SAC learning from the flat hindsight store), on a real RLlib algorithm."""

import numpy as np
import pytest
import torch

from plray.agents.config import AgentConfig
from plray.agents.her import HindsightTransitionStore
from plray.agents.sac import MODULE_ID, HindsightSAC
from plray.agents.train import build_algorithm
from plray.utils.schema import from_mapping

pytestmark = pytest.mark.ray

TINY_SAC = {
    "task": "reacher-continuous",
    "algorithm": "sac",
    "seed": 1,
    "her": {"strategy": "future", "k": 3},
    "network": {"hiddens": [32, 32], "layernorm": False},
    "training": {
        "total_env_steps": 400,
        "num_envs": 8,
        "rollout_fragment_length": 2,
        "learning_starts": 64,
        "train_batch_size": 32,
        "training_intensity": 4,
        "tau": 0.01,
    },
}


@pytest.fixture(scope="module")
def algo(ray_local):
    algo = build_algorithm(from_mapping(AgentConfig, TINY_SAC))
    yield algo
    algo.stop()


def test_sac_samples_into_the_store_and_trains_from_it(algo) -> None:
    assert isinstance(algo, HindsightSAC) and isinstance(algo.local_replay_buffer, HindsightTransitionStore)
    result = algo.train()
    sampled = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
    assert len(algo.local_replay_buffer) == sampled == algo.local_replay_buffer.num_added
    # 16 env steps per round, training_intensity 4: 4 x 16 / 32 = 2 updates of 32 per round once learning starts
    trained = int(result["learners"][MODULE_ID]["num_module_steps_trained_lifetime"])
    rounds_learning = sum(1 for steps in range(16, sampled + 1, 16) if steps >= 64)
    assert trained == rounds_learning * 2 * 32
    batch = algo._train_batch(32).policy_batches[MODULE_ID]
    assert batch["obs"].shape == (32, 8) and batch["actions"].shape == (32, 2) and (batch["weights"] == 1).all()


def test_sac_learner_steps_fused_adam_and_updates_targets_every_step(algo) -> None:
    learner = algo.learner_group._learner
    names = {"qf", "qf_twin", "policy", "alpha"}
    for name in names:
        opt = learner.get_optimizer(MODULE_ID, name)
        assert type(opt) is torch.optim.Adam and opt.defaults["fused"] and opt.defaults["eps"] == 1e-7
    module = learner.module[MODULE_ID].unwrapped()
    pairs = module.get_target_network_pairs()
    for _ in range(2):  # two updates at the same env-step count: both move the targets
        before = [[p.detach().clone() for p in t.parameters()] for _, t in pairs]
        algo.learner_group.update(batch=algo._train_batch(32), timesteps={"num_env_steps_sampled_lifetime": 1000})
        for (main, target), old in zip(pairs, before, strict=True):
            for p, tp, o in zip(main.parameters(), target.parameters(), old, strict=True):
                torch.testing.assert_close(tp.detach(), 0.99 * o + 0.01 * p.detach(), rtol=1e-5, atol=1e-7)


def test_sac_same_seed_same_agent(ray_local) -> None:
    def trained() -> tuple[np.ndarray, np.ndarray]:
        a = build_algorithm(from_mapping(AgentConfig, TINY_SAC))
        try:
            a.train()
            a.train()  # iterations are rounds of sampling, never wall-clock (RLlib's SAC default: >= 1 s)
            module = a.learner_group._learner.module[MODULE_ID]
            weights = np.concatenate([p.detach().numpy().ravel() for p in module.parameters()])
            return a._train_batch(32).policy_batches[MODULE_ID]["obs"], weights
        finally:
            a.stop()

    (obs1, w1), (obs2, w2) = trained(), trained()
    np.testing.assert_array_equal(obs1, obs2)
    np.testing.assert_array_equal(w1, w2)


def test_sac_config_without_a_relabelling_task_is_refused() -> None:
    from plray.agents.sac import HindsightSACConfig
    from plray.utils.validation import PlrayInputError

    with pytest.raises(PlrayInputError, match="needs a 'task'"):
        HindsightSACConfig().environment("Pendulum-v1").validate()
