"""The Bellman-consistency probe on hand-built Q sources whose dynamics are known."""

import numpy as np
import pytest
import torch

from plray.agents.qsource import QSource
from plray.envs.reacher import KinematicReacherTask
from plray.evaluation.probe import PROBE_SCALES, bellman_probe
from plray.utils.validation import PlrayInputError


class SmoothValueSource(QSource):
    """V(s, g) = −|fp(s) − g|² − 0.05 |ω|², and Q made Bellman-consistent with a chosen model of the dynamics.

    ``frozen_dims``: state dims the model believes the action does not change (s'[j] = s[j]).
    """

    def __init__(self, task: KinematicReacherTask, frozen_dims: tuple[int, ...] = ()) -> None:
        super().__init__(task, task.gamma)
        self.frozen_dims = frozen_dims

    def v(self, obs, goals):  # type: ignore[no-untyped-def]
        o, g = self._inputs(obs, goals)
        return -((o[:, 4:6] - g) ** 2).sum(1) - 0.05 * (o[:, 2:4] ** 2).sum(1)

    def q_values(self, obs, goals):  # type: ignore[no-untyped-def]
        o, g = self._inputs(obs, goals)
        states = o[:, : self.task.state_dim].double().numpy()
        cols = []
        for a in range(int(self.task.num_actions or 0)):
            nxt = self.task.next_state(states, np.full(len(states), a))
            for j in self.frozen_dims:
                nxt[:, j] = states[:, j]
            next_obs = self.task.observe(nxt)
            r = self.reward(next_obs, g).double()
            done = self.terminal(next_obs, g).double()
            v = self.v(torch.as_tensor(next_obs, dtype=torch.float32), g).double()
            cols.append(r + self.gamma * (1 - done) * v)
        return torch.stack(cols, 1).float()


@pytest.fixture(scope="module")
def task() -> KinematicReacherTask:
    return KinematicReacherTask()


def test_consistent_q_values_favour_the_true_change(task) -> None:
    states = task.reset_states(64, np.random.default_rng(0))
    result = bellman_probe(SmoothValueSource(task), states)
    assert result.residual.shape == (4, len(PROBE_SCALES))
    np.testing.assert_array_equal(result.favoured(), np.ones(4))
    assert np.all(result.residual[:, list(PROBE_SCALES).index(1.0)] < 1e-10)  # float32 Q: rounding only
    assert np.all(result.contrast() > 10)


def test_q_values_blind_to_velocity_favour_no_change(task) -> None:
    states = task.reset_states(64, np.random.default_rng(1))
    result = bellman_probe(SmoothValueSource(task, frozen_dims=(2, 3)), states)
    fav = result.favoured()
    assert fav[2] == 0.0 and fav[3] == 0.0  # the model in the Q-values: ω does not change
    assert np.all(result.contrast()[2:] < 1)
    d = result.to_dict()
    assert d["favoured_scale"][2] == 0.0 and len(d["residual"]) == 4


def test_probe_refuses_bad_input(task) -> None:
    source = SmoothValueSource(task)
    with pytest.raises(PlrayInputError, match="states"):
        bellman_probe(source, np.zeros((3, 2)))
    with pytest.raises(PlrayInputError, match="scales"):
        bellman_probe(source, task.reset_states(4, np.random.default_rng(0)), scales=(0.5, 1.0))


class NoisyValueSource(SmoothValueSource):
    """A stochastic V, as SAC's soft value is (an estimate from policy draws through torch's RNG)."""

    def v(self, obs, goals):  # type: ignore[no-untyped-def]
        return super().v(obs, goals) + 0.01 * torch.randn(len(obs))


def test_probe_of_a_stochastic_value_repeats_and_leaves_the_callers_rng_alone(task) -> None:
    states = task.reset_states(16, np.random.default_rng(2))
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = bellman_probe(NoisyValueSource(task), states, scales=(0.0, 1.0))
    assert torch.equal(torch.random.get_rng_state(), before)
    b = bellman_probe(NoisyValueSource(task), states, scales=(0.0, 1.0))
    np.testing.assert_array_equal(a.residual, b.residual)
    c = bellman_probe(NoisyValueSource(task), states, scales=(0.0, 1.0), seed=1)
    assert not np.array_equal(a.residual, c.residual)
