"""The example planner drives a served model through ``rollout`` and reaches an unseen goal in the true env.

A reacher world model is fitted (supervised, a few seconds) and dropped into the served directory;
``POST /v1/admin/reload`` picks it up; CEM-based MPC, one rollout request per CEM round, then acts
in the true kinematic reacher until the fingertip reaches (√2, √2), a goal the agent's training
goals (radius 1) never included.
"""

from __future__ import annotations

import numpy as np
import pytest

from plray.core.neural import NeuralPConfig
from plray.core.neural_baselines import train_supervised_successor
from plray.core.worldmodel_neural import NeuralWorldModel
from plray.envs.reacher import KinematicReacherTask
from plray.evaluation.unseen import unseen_goal
from plray.serve.client import WorldModelClient
from plray.serve.planner import RemoteCEMPlanner, reacher_shaping, run_episode
from tests.serve.conftest import write_model

pytestmark = pytest.mark.ray


def test_remote_cem_reaches_an_unseen_goal(server) -> None:
    url, models_dir = server
    task = KinematicReacherTask()
    cfg = NeuralPConfig(hidden=64, steps=400, batch_size=512, lr=1e-3, schedule="cosine", seed=0)
    res = train_supervised_successor(task, lambda rng, n: task.sample_states(n, rng), cfg)
    write_model(models_dir, "reacher-sup", "1", NeuralWorldModel(res.network, cfg), task="reacher", gamma=0.99)
    client = WorldModelClient(url, fmt="arrow")
    client.reload()
    assert any(m["id"] == "reacher-sup" for m in client.models())
    goal = unseen_goal(task, "far_fingertip")
    planner = RemoteCEMPlanner(
        client,
        "reacher-sup",
        9,
        {"kind": "unseen", "name": "far_fingertip"},
        cost_fn=reacher_shaping("far_fingertip"),
        horizon=10,
        population=200,
        elites=20,
        iterations=2,
        seed=0,
    )
    start = np.array([-2.0, -2.5, 0.0, 0.0])  # fingertip near (-1.2, -1.2): the far side of the goal
    out = run_episode(planner, task, goal, start, max_steps=100)
    assert out["reached"], out
    assert out["requests"] == 2 * out["steps"]
