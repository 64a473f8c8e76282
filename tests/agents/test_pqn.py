"""The PQN learner's loss and update, checked by hand on a tiny batch (no Ray cluster needed)."""

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from plray.agents.pqn import PQNConfig
from plray.core import PlrayInputError
from plray.envs.mountaincar import MountainCarTask

TASK = MountainCarTask("position")
SPACES = {"default_policy": (TASK.observation_space(), TASK.action_space())}


def _learner(optimizer: str = "adam", lr: float = 1e-2):
    cfg = (
        PQNConfig()
        .training(lr=lr, gamma=0.9, her={"task": "mountaincar-position"}, optimizer=optimizer, grad_clip=None)
        .rl_module(model_config={"hiddens": [16], "layernorm": True, "sigmoid": True})
        .debugging(seed=0)
    )
    return cfg.build_learner(spaces=SPACES)


def _batch() -> dict[str, torch.Tensor]:
    return {
        Columns.OBS: torch.tensor([[-0.5, 0.0, 0.6], [0.55, 0.02, 0.6], [-1.0, -0.01, -1.2]]),
        Columns.NEXT_OBS: torch.tensor([[-0.49, 0.01, 0.6], [0.57, 0.02, 0.6], [-1.1, -0.02, -1.2]]),
        Columns.ACTIONS: torch.tensor([2, 1, 0]),
        Columns.REWARDS: torch.tensor([0.0, 1.0, 1.0]),
        Columns.TERMINATEDS: torch.tensor([False, True, True]),
    }


def test_loss_is_half_squared_td_error_against_the_current_network() -> None:
    learner = _learner()
    module = learner.module["default_policy"]
    batch = _batch()
    fwd = module.forward_train(batch)
    loss = learner.compute_loss_for_module(module_id="default_policy", config=learner.config, batch=batch, fwd_out=fwd)
    net = module.to_network()
    with torch.no_grad():
        q = net(batch[Columns.OBS])
        q_next = net(batch[Columns.NEXT_OBS]).max(-1).values
    target = batch[Columns.REWARDS] + 0.9 * (~batch[Columns.TERMINATEDS]).float() * q_next
    expected = 0.5 * ((q[torch.arange(3), batch[Columns.ACTIONS]] - target) ** 2).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    # the gradient flows through Q(s, a) only, never through the bootstrap target
    assert fwd["qf_next_preds"].requires_grad is False
    loss.backward()
    assert module.af.head.weight.grad is not None and module.af.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("optimizer", ["radam", "adam"])
def test_update_lowers_the_loss_with_the_chosen_optimizer(optimizer: str) -> None:
    learner = _learner(optimizer)
    opt = next(iter(learner._named_optimizers.values()))
    # both fused: plray's FusedRAdam (torch's RAdam in one kernel), torch's Adam with fused=True
    assert type(opt).__name__ == {"radam": "FusedRAdam", "adam": "Adam"}[optimizer]
    assert isinstance(opt, torch.optim.RAdam if optimizer == "radam" else torch.optim.Adam)
    assert optimizer == "radam" or opt.defaults["fused"]
    module = learner.module["default_policy"]
    batch = _batch()

    def current_loss() -> float:
        with torch.no_grad():
            fwd = module.forward_train(batch)
            out = learner.compute_loss_for_module(
                module_id="default_policy", config=learner.config, batch=batch, fwd_out=fwd
            )
        return float(out)

    before = current_loss()
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

    sample = SampleBatch({k: v.numpy() for k, v in batch.items()})
    for _ in range(50):
        learner.update(batch=MultiAgentBatch({"default_policy": sample}, env_steps=3), timesteps={})
    assert current_loss() < 0.5 * before


def test_config_errors() -> None:
    with pytest.raises(PlrayInputError, match="optimizer"):
        PQNConfig().training(her={"task": "reacher"}, optimizer="sgd").validate()
    with pytest.raises(PlrayInputError, match="needs a 'task'"):
        PQNConfig().validate()
    with pytest.raises(PlrayInputError, match="num_epochs"):
        PQNConfig().training(her={"task": "reacher"}, num_epochs=0).validate()
    assert np.isclose(PQNConfig().training(her={"task": "reacher"}).lr, 1e-4)


def _sample_batch():
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

    sample = SampleBatch({k: v.numpy() for k, v in _batch().items()})
    return MultiAgentBatch({"default_policy": sample}, env_steps=3)


def _grads(learner) -> dict:
    module = learner.module["default_policy"]
    batch = _batch()
    loss = learner.compute_loss_for_module(
        module_id="default_policy", config=learner.config, batch=batch, fwd_out=module.forward_train(batch)
    )
    return learner.compute_gradients({"default_policy": loss})


def _weights(learner) -> list[torch.Tensor]:
    return [p.detach().clone() for p in learner.module["default_policy"].parameters()]


def test_apply_gradients_steps_exactly_as_rllibs_with_one_finiteness_test() -> None:
    from ray.rllib.core.learner.torch.torch_learner import TorchLearner

    ours, rllib = _learner("radam"), _learner("radam")
    for a, b in zip(_weights(ours), _weights(rllib), strict=True):
        assert torch.equal(a, b)  # same seed, same initial network
    for _ in range(8):  # past RAdam's momentum-only start
        ours.apply_gradients(_grads(ours))
        TorchLearner.apply_gradients(rllib, _grads(rllib))
    for a, b in zip(_weights(ours), _weights(rllib), strict=True):
        assert torch.equal(a, b)


def test_non_finite_gradients_take_rllibs_path_and_are_zeroed() -> None:
    learner = _learner("radam")
    grads = _grads(learner)
    first = next(iter(grads))
    grads[first] = grads[first].clone()
    grads[first].view(-1)[0] = float("nan")
    learner.apply_gradients(grads)
    weights = _weights(learner)
    assert all(torch.isfinite(w).all() for w in weights)  # RLlib zeroes NaN entries, then steps


def test_learner_state_round_trip_resumes_bit_for_bit() -> None:
    # what an RLlib checkpoint holds for the learner: module weights and FusedRAdam's state
    learner = _learner("radam", lr=1e-3)
    for _ in range(7):
        learner.update(batch=_sample_batch(), timesteps={})
    state = learner.get_state()
    resumed = _learner("radam", lr=1e-3)
    resumed.set_state(state)
    for lrn in (learner, resumed):
        for _ in range(3):
            lrn.update(batch=_sample_batch(), timesteps={})
    for a, b in zip(_weights(learner), _weights(resumed), strict=True):
        assert torch.equal(a, b)
