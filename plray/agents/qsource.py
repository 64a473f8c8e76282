"""Q sources: what P-learning sees of a trained agent, and nothing more (no RLlib object).

A :class:`QSource` answers, for batches of observations ``obs`` (B, o) of states (the task's
``observe``, without the goal) and goals (B, k):

* ``q_values(obs, goals)`` → Q(s, ·, g), shape (B, A) for discrete actions;
* ``q(obs, goals, actions)`` → Q(s, a, g), shape (B,);
* ``v(obs, goals)`` → V(s, g) as the agent defines it (greedy max for DQN-style agents), (B,);
* ``reward(next_obs, goals)`` and ``terminal(next_obs, goals)``: each goal's reward on arrival and
  termination, from the task, (B,).

Q and V are differentiable in ``obs`` (torch autograd), which neural P-learning needs to send
gradients through predicted next states.

Adapters: :class:`NetworkQSource` (a plain torch :class:`GoalQNetwork`, or the pickle-free
artifact ``plray train`` writes), :class:`TabularQSource` (a Q table over FourRooms, or the
``tabular-q`` artifact of :mod:`plray.agents.tabular`), and :func:`rllib_qsource` (an RLlib
checkpoint, which is pickle-based and so needs an explicit opt-in).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plray.agents.export import ArtifactError, load_agent
from plray.agents.modules import GoalQNetwork
from plray.core.frozen import ParameterWatch, frozen_copy, onednn_preferred
from plray.core.types import FloatArray
from plray.envs.base import GoalTask
from plray.envs.fourrooms import FourRoomsTask
from plray.utils.validation import PlrayInputError, check_gamma

Tensor = torch.Tensor


NETWORK_ALGORITHMS = ("dqn", "pqn")
"""Agent algorithms whose artifact is one goal Q-network (:class:`NetworkQSource`)."""


def _as_tensor(x: Any, name: str, dim: int) -> Tensor:
    t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if t.ndim != 2 or t.shape[1] != dim:
        raise PlrayInputError(f"{name}: expected shape (B, {dim}), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise PlrayInputError(f"{name}: non-finite entries")
    return t.float()


class QSource(ABC):
    """A goal-conditioned agent's Q-values, values, rewards and terminations (see module docstring).

    Args:
        task: the task the agent was trained on (rewards, terminations, observation layout).
        gamma: the agent's discount.
    """

    def __init__(self, task: GoalTask, gamma: float) -> None:
        self.task = task
        self.gamma = check_gamma(gamma)

    @property
    def discrete(self) -> bool:
        return self.task.num_actions is not None

    def _inputs(self, obs: Any, goals: Any) -> tuple[Tensor, Tensor]:
        o = _as_tensor(obs, "obs", self.task.obs_dim)
        g = _as_tensor(goals, "goals", self.task.goal_dim)
        if o.shape[0] != g.shape[0]:
            raise PlrayInputError(f"obs and goals: batch sizes differ ({o.shape[0]} vs {g.shape[0]})")
        return o, g

    @abstractmethod
    def q_values(self, obs: Any, goals: Any) -> Tensor:
        """Q(s, ·, g) for discrete actions, shape (B, A)."""

    def q(self, obs: Any, goals: Any, actions: Any) -> Tensor:
        """Q(s, a, g), shape (B,)."""
        a = torch.as_tensor(np.asarray(actions) if not isinstance(actions, Tensor) else actions).long().reshape(-1, 1)
        return self.q_values(obs, goals).gather(1, a)[:, 0]

    def v(self, obs: Any, goals: Any) -> Tensor:
        """V(s, g) = max_a Q(s, a, g) (greedy agents), shape (B,)."""
        return self.q_values(obs, goals).max(dim=1).values

    def greedy_actions(self, obs: Any, goals: Any) -> Tensor:
        """argmax_a Q(s, a, g), shape (B,)."""
        return self.q_values(obs, goals).argmax(dim=1)

    def reward(self, next_obs: Any, goals: Any) -> Tensor:
        """r(s', g) on arrival, shape (B,) (not differentiable: sparse rewards have zero gradient a.e.)."""
        o, g = self._inputs(next_obs, goals)
        return torch.as_tensor(self.task.reward_from_obs(o.detach().double().numpy(), g.detach().double().numpy()))

    def terminal(self, next_obs: Any, goals: Any) -> Tensor:
        """done(s', g) on arrival, shape (B,) bool."""
        o, g = self._inputs(next_obs, goals)
        return torch.as_tensor(self.task.terminal_from_obs(o.detach().double().numpy(), g.detach().double().numpy()))

    @torch.no_grad()
    def q_values_at_states(self, states: FloatArray, goals: FloatArray) -> FloatArray:
        """numpy convenience: Q(s, ·, g) at task states (B, d) and goals (B, k), shape (B, A)."""
        obs = self.task.observe(np.asarray(states, dtype=np.float64))
        return self.q_values(obs, goals).double().numpy()


class NetworkQSource(QSource):
    """Q source over a plain torch :class:`GoalQNetwork` that reads ``concat(obs, goal)``.

    Q-values come from a frozen copy of the network; where oneDNN beats torch's matmul (non-Intel
    x86, :func:`plray.core.frozen.onednn_preferred`) its wide layers run on oneDNN
    (:func:`plray.core.frozen.frozen_copy`: 1.2-1.3x faster P-learning at the official network
    sizes on an AMD EPYC, equal to torch's numbers to float32 rounding); the copy is rebuilt when
    the network's weights change.

    Args:
        network: the Q-network.
        task: its task.
        gamma: its discount.
        metadata: free-form information (the artifact's manifest).
        onednn: True: wide layers on oneDNN (where available); False: every layer on torch's own
            matmul (the numbers of plray before oneDNN); None: :func:`~plray.core.frozen.onednn_preferred`.
    """

    def __init__(
        self,
        network: GoalQNetwork,
        task: GoalTask,
        gamma: float,
        metadata: dict[str, Any] | None = None,
        *,
        onednn: bool | None = None,
    ) -> None:
        super().__init__(task, gamma)
        if not self.discrete:
            raise PlrayInputError(
                f"task {task.name!r} has continuous actions; a GoalQNetwork source needs discrete ones"
            )
        if network.num_actions != task.num_actions:
            raise PlrayInputError(
                f"network has {network.num_actions} actions, task {task.name!r} has {task.num_actions}"
            )
        self.network = network.eval()
        for p in self.network.parameters():
            p.requires_grad_(False)
        self.metadata = metadata or {}
        self.onednn = onednn_preferred() if onednn is None else bool(onednn)
        self._watch = ParameterWatch(self.network)
        self._frozen: torch.nn.Module = self.network
        self.onednn_layers = 0
        """Layers of the frozen copy that run on oneDNN (0 before the first call, or without oneDNN)."""

    def _evaluator(self) -> torch.nn.Module:
        if self._watch.stale():
            self._frozen, self.onednn_layers = frozen_copy(self.network) if self.onednn else (self.network, 0)
            self._watch.mark()
        return self._frozen

    def q_values(self, obs: Any, goals: Any) -> Tensor:
        o, g = self._inputs(obs, goals)
        return self._evaluator()(torch.cat([o, g], dim=1))

    @classmethod
    def from_artifact(cls, path: str | os.PathLike[str]) -> NetworkQSource:
        """Load the pickle-free agent artifact written by ``plray train`` (``<run>/agent``)."""
        from plray.envs.registry import make_task

        manifest, tensors = load_agent(path)
        if manifest.get("algorithm") not in NETWORK_ALGORITHMS or "q" not in tensors:
            raise ArtifactError(f"{path}: not a discrete-action (dqn or pqn) agent artifact")
        try:
            task = make_task(manifest["task"], **manifest.get("task_kwargs", {}))
            net = GoalQNetwork(task.obs_dim + task.goal_dim, int(task.num_actions or 0), **manifest["network"])
            net.load_state_dict(tensors["q"], strict=True)
        except (KeyError, TypeError, RuntimeError) as exc:
            raise ArtifactError(f"{path}: manifest and tensors do not describe a valid network ({exc})") from exc
        return cls(net, task, float(manifest["gamma"]), metadata=manifest)


class TabularQSource(QSource):
    """Q table over FourRooms as a Q source: Q(s, ·, g) = Σ_{s,g} obs_s goal_g Q[s, ·, g].

    With one-hot observations and goals this reads the table; it is linear (so differentiable)
    in the observation.

    Args:
        Q: table, shape (S, A, G).
        task: the FourRooms task whose goal set indexes G.
        gamma: discount.
        metadata: free-form information (the artifact's manifest).
    """

    def __init__(
        self, Q: FloatArray, task: FourRoomsTask, gamma: float, metadata: dict[str, Any] | None = None
    ) -> None:
        super().__init__(task, gamma)
        self.metadata = metadata or {}
        Q = np.asarray(Q, dtype=np.float64)
        expected = (task.mdp.num_states, task.num_actions, task.goals.num_goals)
        if Q.shape != expected:
            raise PlrayInputError(f"Q: expected shape (S, A, G) = {expected}, got {Q.shape}")
        if not np.isfinite(Q).all():
            raise PlrayInputError("Q: non-finite entries")
        self.table = torch.as_tensor(Q, dtype=torch.float64)

    def q_values(self, obs: Any, goals: Any) -> Tensor:
        o, g = self._inputs(obs, goals)
        return torch.einsum("bs,sag,bg->ba", o.double(), self.table, g.double())

    @classmethod
    def from_artifact(cls, path: str | os.PathLike[str]) -> TabularQSource:
        """Load the pickle-free ``tabular-q`` agent artifact (:func:`plray.agents.tabular.save_tabular_agent`).

        The FourRooms task is rebuilt from the manifest's ``task_kwargs`` (variant, num_goals,
        goal_family, placement, seed, noise/sigma); loading checks that its goal set is the one
        stored with the table.
        """
        from plray.agents.tabular import load_tabular_agent

        Q, manifest = load_tabular_agent(path)
        try:
            task = FourRoomsTask(**manifest["task_kwargs"])
        except (KeyError, TypeError, PlrayInputError) as exc:
            raise ArtifactError(f"{path}: task_kwargs do not describe a FourRooms task ({exc})") from exc
        return cls(Q, task, float(manifest["gamma"]), metadata=manifest)


def rllib_qsource(
    checkpoint: str | os.PathLike[str], task: GoalTask, gamma: float, *, allow_pickle: bool = False
) -> NetworkQSource:
    """Q source from an RLlib checkpoint of a plray DQN agent, loaded without building the algorithm.

    RLlib checkpoints are pickle files, and unpickling can run arbitrary code: pass
    ``allow_pickle=True`` only for checkpoints you made yourself. ``plray train`` also writes the
    pickle-free ``<run>/agent`` artifact; prefer :meth:`NetworkQSource.from_artifact`.

    Args:
        checkpoint: an algorithm checkpoint directory or its module directory
            (``.../learner_group/learner/rl_module/default_policy``).
    """
    if not allow_pickle:
        raise PlrayInputError(
            "RLlib checkpoints are pickle files, which can run code when loaded: pass allow_pickle=True only "
            "for checkpoints you trust, or load the pickle-free agent artifact with NetworkQSource.from_artifact"
        )
    from ray.rllib.core.rl_module.rl_module import RLModule

    root = Path(checkpoint)
    module_dir = root / "learner_group" / "learner" / "rl_module" / "default_policy"
    if not module_dir.is_dir():
        module_dir = root
    if not (module_dir / "module_state.pkl").is_file() and not any(module_dir.glob("module_state*")):
        raise ArtifactError(f"{checkpoint}: no RLlib module state found")
    module = RLModule.from_checkpoint(str(module_dir))
    if not hasattr(module, "to_network"):
        raise ArtifactError(f"{checkpoint}: not a plray goal-conditioned Q module ({type(module).__name__})")
    return NetworkQSource(module.to_network(), task, gamma)


def _jsonable(value: Any) -> bool:
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


SAC_VALUE_SAMPLES = 2
"""Policy draws per soft-value estimate (SAC's own critic target uses one). Each P-learning step
evaluates V at batch x |G| predicted successors, actor and twin critics each: 16 draws made a
1000-step Reacher extraction take over an hour on 2 shared cores (~5 s a step at batch 1024), 2 about
ten minutes; the estimate stays unbiased, only noisier."""


class SACQSource(QSource):
    """Continuous-action agent (RLlib SAC): twin critics and a squashed-Gaussian policy.

    * ``q(obs, goals, actions)``: min of the twin critics at actions (B, action_dim);
    * ``v(obs, goals)``: SAC's own soft value, E_{a~π}[Q(s, a, g) − α log π(a | s, g)], estimated
      with ``num_samples`` reparameterised draws (differentiable in ``obs``; default
      :data:`SAC_VALUE_SAMPLES`);
    * ``greedy_actions``: the policy's mean action (squashed).

    Actions are in the module's normalised [-1, 1] range, which equals the MuJoCo Reacher's.
    """

    def __init__(
        self,
        module: Any,
        task: GoalTask,
        gamma: float,
        alpha: float,
        *,
        num_samples: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(task, gamma)
        if self.discrete:
            raise PlrayInputError(f"task {task.name!r} has discrete actions; SACQSource is for continuous ones")
        self.module = module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.alpha = float(alpha)
        self.num_samples = SAC_VALUE_SAMPLES if num_samples is None else int(num_samples)
        self.metadata = metadata or {}

    def _dist(self, x: Tensor) -> Any:
        from ray.rllib.core.models.base import ENCODER_OUT

        inputs = self.module.pi(self.module.pi_encoder({"obs": x})[ENCODER_OUT])
        return self.module.get_train_action_dist_cls().from_logits(inputs)

    def q_values(self, obs: Any, goals: Any) -> Tensor:
        raise PlrayInputError(
            "q_values: a continuous-action agent has no finite action set; use q(obs, goals, actions)"
        )

    def q(self, obs: Any, goals: Any, actions: Any) -> Tensor:
        o, g = self._inputs(obs, goals)
        a = _as_tensor(actions, "actions", self.task.action_dim)
        return self.module.compute_q_values({"obs": torch.cat([o, g], dim=1), "actions": a})

    def v(self, obs: Any, goals: Any) -> Tensor:
        o, g = self._inputs(obs, goals)
        x = torch.cat([o, g], dim=1)
        x_rep = x.repeat(self.num_samples, 1)
        dist = self._dist(x_rep)
        a = dist.rsample()
        logp = dist.logp(a)
        q = self.module.compute_q_values({"obs": x_rep, "actions": a})
        return (q - self.alpha * logp).reshape(self.num_samples, -1).mean(dim=0)

    def greedy_actions(self, obs: Any, goals: Any) -> Tensor:
        o, g = self._inputs(obs, goals)
        return self._dist(torch.cat([o, g], dim=1)).to_deterministic().sample()

    @staticmethod
    def export(module: Any, alpha: float) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
        """Tensors and manifest fields that rebuild a SAC module without pickle (targets left out)."""
        state = {k: v for k, v in module.state_dict().items() if not k.lstrip("_").startswith("target_")}
        config = {k: v for k, v in dict(module.model_config).items() if _jsonable(v)}
        return {"module": state}, {"model_config": config, "alpha": float(alpha), "value_mode": "soft"}

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], tensors: dict[str, dict[str, Tensor]], path: Any) -> SACQSource:
        from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule

        from plray.envs.registry import make_task

        try:
            task = make_task(manifest["task"], **manifest.get("task_kwargs", {}))
            module = DefaultSACTorchRLModule(
                observation_space=task.observation_space(),
                action_space=task.action_space(),
                inference_only=False,
                model_config=dict(manifest["model_config"]),
            )
            module.load_state_dict(tensors["module"], strict=True)
            return cls(module, task, float(manifest["gamma"]), float(manifest["alpha"]), metadata=manifest)
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise ArtifactError(f"{path}: manifest and tensors do not describe a valid SAC module ({exc})") from exc


def load_qsource(path: str | os.PathLike[str]) -> QSource:
    """Load any agent artifact, pickle-free: ``plray train``'s (DQN, PQN or SAC) or a FourRooms Q table
    (algorithm ``tabular-q``, :func:`plray.agents.tabular.save_tabular_agent`)."""
    manifest, tensors = load_agent(path)
    algorithm = manifest.get("algorithm")
    if algorithm == "tabular-q":
        return TabularQSource.from_artifact(path)
    if algorithm in NETWORK_ALGORITHMS:
        return NetworkQSource.from_artifact(path)
    if algorithm == "sac":
        return SACQSource.from_manifest(manifest, tensors, path)
    raise ArtifactError(f"{path}: unknown agent algorithm {algorithm!r}")
