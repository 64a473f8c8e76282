"""An example planner that drives a served world model through ``rollout``: CEM-based MPC, PETS-style.

At every control step :class:`RemoteCEMPlanner` samples ``population`` action sequences of length
``horizon``, sends them in **one** ``rollout`` request (B = population rows, H = horizon), scores
them by the goal's discounted return computed on the replica, breaks ties (sparse rewards are
mostly 0) with an optional shaping cost computed here from the returned trajectories (B, H, d),
refits the sampling distribution to the elites and repeats for ``iterations`` rounds. The first
action of the best sequence is executed in the **true** environment, and the loop repeats.

Run it against a server::

    python -m plray.serve.planner --url http://127.0.0.1:8000 --model reacher --goal far_fingertip

which plans for one of the paper's unseen goals of the kinematic reacher (the agent was trained on
fingertip targets at radius 1; (√2, √2) is at radius 2) and reports whether the true arm got there.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from plray.serve.client import WorldModelClient

CostFn = Callable[[np.ndarray], np.ndarray]
"""cost(trajectories (B, H, d)) -> (B,), lower is better (a tie-breaker for sparse returns)."""


def reacher_shaping(goal_name: str) -> CostFn:
    """Shaping cost for the kinematic reacher's unseen goals: the closest approach to the goal over the horizon."""
    from plray.envs.base import wrap_angle
    from plray.evaluation.unseen import FAR_FINGERTIP, TARGET_ANGLE, TARGET_VELOCITY

    def fingertip(th: np.ndarray) -> np.ndarray:
        return np.stack([np.cos(th[..., 0]) + np.cos(th[..., 1]), np.sin(th[..., 0]) + np.sin(th[..., 1])], -1)

    def cost(traj: np.ndarray) -> np.ndarray:
        if goal_name == "far_fingertip":
            dist = np.linalg.norm(fingertip(traj[..., :2]) - np.asarray(FAR_FINGERTIP), axis=-1)
        elif goal_name == "target_angle":
            dist = np.linalg.norm(wrap_angle(traj[..., :2] - np.asarray(TARGET_ANGLE)), axis=-1)
        elif goal_name == "target_velocity":
            dist = np.linalg.norm(traj[..., 2:4] - np.asarray(TARGET_VELOCITY), axis=-1)
        else:
            raise ValueError(f"no shaping for goal {goal_name!r}")
        return dist.min(axis=1)

    return cost


class RemoteCEMPlanner:
    """CEM over discrete action sequences, each round one ``rollout`` request to the server.

    Args:
        client: a :class:`~plray.serve.client.WorldModelClient`.
        model_id: the served model (discrete actions).
        num_actions: A.
        goal: the goal spec sent with every rollout (e.g. ``{"kind": "unseen", "name": "far_fingertip"}``).
        cost_fn: optional tie-breaking cost of trajectories (lower is better).
        horizon, population, elites, iterations: CEM sizes (one request per iteration).
        seed: seeds the sampler.
    """

    def __init__(
        self,
        client: WorldModelClient,
        model_id: str,
        num_actions: int,
        goal: dict[str, Any],
        *,
        cost_fn: CostFn | None = None,
        horizon: int = 12,
        population: int = 300,
        elites: int = 30,
        iterations: int = 3,
        seed: int = 0,
    ) -> None:
        self.client, self.model_id, self.goal = client, model_id, goal
        self.num_actions, self.cost_fn = int(num_actions), cost_fn
        self.horizon, self.population, self.elites, self.iterations = horizon, population, elites, iterations
        self.rng = np.random.default_rng(seed)
        self.requests = 0

    def plan(self, state: np.ndarray) -> int:
        """The first action of the best sequence found from ``state`` (d,)."""
        A, H, P = self.num_actions, self.horizon, self.population
        probs = np.full((H, A), 1.0 / A)
        best_score, best_first = -np.inf, 0
        starts = np.repeat(np.asarray(state, dtype=np.float64)[None], P, axis=0)
        for _ in range(self.iterations):
            u = self.rng.random((P, H, 1))
            seqs = np.minimum((u > np.cumsum(probs, -1)[None]).sum(-1), A - 1)
            seqs[:A] = np.arange(A)[:, None]  # constant sequences: cheap exploration
            out = self.client.rollout(self.model_id, starts, seqs, goal=self.goal)
            self.requests += 1
            score = np.asarray(out["returns"], dtype=np.float64)
            if self.cost_fn is not None:
                score = score - 1e-3 * self.cost_fn(np.asarray(out["states"]))
            order = np.argsort(-score, kind="stable")
            if score[order[0]] > best_score:
                best_score, best_first = float(score[order[0]]), int(seqs[order[0], 0])
            elite = seqs[order[: self.elites]]
            freq = np.eye(A)[elite].mean(axis=0)  # (H, A)
            probs = 0.1 * probs + 0.9 * freq
        return best_first


def run_episode(
    planner: RemoteCEMPlanner, task: Any, goal: Any, start: np.ndarray, max_steps: int | None = None
) -> dict[str, Any]:
    """Act with the planner in the true dynamics (``task.next_state``) until the goal or ``max_steps``.

    Returns:
        ``{"reached", "steps", "return", "seconds", "requests"}`` (return: Σ γ^t r_t, reward on arrival).
    """
    steps = task.max_episode_steps if max_steps is None else int(max_steps)
    state = np.asarray(start, dtype=np.float64).reshape(1, -1)
    t0, req0, ret = time.perf_counter(), planner.requests, 0.0
    for t in range(steps):
        action = planner.plan(state[0])
        state = task.next_state(state, np.array([action]))
        r = float(np.asarray(goal.reward_fn(state))[0])
        ret += task.gamma**t * r
        if bool(np.asarray(goal.terminal_fn(state))[0]):
            return {
                "reached": r > 0,
                "steps": t + 1,
                "return": ret,
                "seconds": time.perf_counter() - t0,
                "requests": planner.requests - req0,
            }
    return {
        "reached": False,
        "steps": steps,
        "return": ret,
        "seconds": time.perf_counter() - t0,
        "requests": planner.requests - req0,
    }


def main(argv: list[str] | None = None) -> int:
    """Plan for an unseen reacher goal through a served model; act in the true dynamics."""
    from plray.envs.reacher import KinematicReacherTask
    from plray.evaluation.unseen import unseen_goal

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--model", default="reacher", help="served model id (kinematic reacher, 9 actions)")
    parser.add_argument("--goal", default="far_fingertip", choices=("far_fingertip", "target_angle", "target_velocity"))
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("arrow", "json"), default="arrow")
    args = parser.parse_args(argv)
    task = KinematicReacherTask()
    goal = unseen_goal(task, args.goal)
    client = WorldModelClient(args.url, fmt=args.format)
    planner = RemoteCEMPlanner(
        client,
        args.model,
        int(task.num_actions or 0),
        {"kind": "unseen", "name": args.goal},
        cost_fn=reacher_shaping(args.goal),
        seed=args.seed,
    )
    starts = task.reset_states(args.episodes, np.random.default_rng(args.seed))
    reached = 0
    for i, s0 in enumerate(starts):
        res = run_episode(planner, task, goal, s0)
        reached += bool(res["reached"])
        print(
            f"episode {i}: {'reached' if res['reached'] else 'missed'} {args.goal} in {res['steps']} steps, "
            f"return {res['return']:.3f}, {res['requests']} rollout requests, {res['seconds']:.1f} s"
        )
    print(
        f"{reached}/{len(starts)} episodes reached the unseen goal ({math.sqrt(2):.3f}, {math.sqrt(2):.3f})"
        if args.goal == "far_fingertip"
        else f"{reached}/{len(starts)} episodes reached {args.goal}"
    )
    return 0 if reached else 1


if __name__ == "__main__":
    sys.exit(main())
