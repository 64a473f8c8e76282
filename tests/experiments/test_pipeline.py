"""``plray run`` end to end on the session's local Ray: FourRooms with learned tabular agents, and
the RLlib path on MountainCar; reruns resume without redoing or duplicating anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from plray.core.ensemble import TabularEnsemble
from plray.core.model_io import load_world_model
from plray.envs.fourrooms import FourRooms
from plray.envs.registry import make_task
from plray.evaluation import kernel_metrics
from plray.evaluation.wm_metrics import evaluation_states, wm_errors
from plray.experiments.pipeline import run_experiment
from plray.experiments.schema import experiment_from_mapping, load_experiment
from plray.serve.registry import ModelRegistry
from plray.utils.schema import ConfigError

CONFIGS = Path(__file__).parents[2] / "configs" / "experiments"

pytestmark = pytest.mark.ray


def _small(**over):
    base = {
        "name": "small",
        "task": "fourrooms",
        "sweep": [{"variant": ["windy"], "num_goals": [4]}, {"variant": ["deterministic"], "num_goals": [1]}],
        "seeds": [0, 1],
        "agent": {"kind": "tabular-q", "tabular": {"env_steps": 100_000}},
        "extraction": {"methods": ["simplex-local", "column-match"]},
        "resources": {"num_actors": 2},
    }
    return experiment_from_mapping(base | over)


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (fails on anything that is not a PNG)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _jobs_of(cfg) -> int:
    from plray.experiments.jobs import jobs_for

    return len(jobs_for(cfg, cfg.cells()))


def test_small_pipeline_end_to_end(ray_local, tmp_path: Path) -> None:
    # jobs per seed: windy |G|=4: 2 methods x (all 4 goals, a 2-goal subset) + 2 at the 50k-step snapshot;
    # deterministic |G|=1: 2 methods (no smaller subset) + 2 at the snapshot
    cfg = _small(
        extraction={"methods": ["simplex-local", "column-match"], "goal_subsets": [2], "checkpoints": [50_000]}
    )
    assert _jobs_of(cfg) == 20
    lines: list[str] = []
    summary = run_experiment(cfg, tmp_path / "run", say=lines.append)
    assert summary.ok, summary.failures
    assert (summary.agents, summary.extractions, summary.ensembles) == (4, 20, 10)
    text = "\n".join(lines)
    for stage in ("stage 1/4", "stage 2/4", "stage 3/4", "stage 4/4", "[train 4/4]", "[extract 20/20]"):
        assert stage in text, f"no progress line {stage!r}"
    results = summary.results_dir
    agents = pq.read_table(results / "agents.parquet").to_pylist()
    jobs = pq.read_table(results / "extractions.parquet").to_pylist()
    assert sorted(a["cell"] for a in agents) == sorted(c.key for c in cfg.cells())
    assert len({j["job"] for j in jobs}) == len(jobs) == 20
    assert {(j["goals_used"], j["agent_steps"]) for j in jobs if j["variant"] == "windy"} == {
        (4, 100_000),
        (2, 100_000),
        (4, 50_000),
    }
    subset = next(j for j in jobs if j["goals_used"] == 2)
    assert len(load_world_model(subset["world_model"])[1]["goals"]) == 2
    # learned agents, measured against the truth
    assert all(0 <= a["q_nmse"] < 0.5 and a["env_steps"] == 100_000 for a in agents)
    assert all(j["return_opt"] > 0 for j in jobs)
    for j in jobs:  # the recorded error is the artifact's, measured again against the true kernel
        truth = FourRooms(j["variant"]).kernel
        assert kernel_metrics(load_world_model(j["world_model"])[0].kernel(), truth)["tv_mean"] == pytest.approx(
            j["tv_mean"], rel=1e-9, abs=1e-12
        )
    # a real extraction, even from a briefly trained agent: far nearer the truth than a uniform guess
    windy = [j for j in jobs if j["variant"] == "windy" and j["method"] == "simplex-local"]
    assert all(j["tv_mean"] < 0.3 for j in windy), [j["tv_mean"] for j in windy]
    # every world model is a loadable artifact; ensembles are mixtures with a disagreement
    for j in jobs:
        load_world_model(j["world_model"])
    ens = pq.read_table(results / "ensembles.parquet").to_pylist()
    model, _ = load_world_model(ens[0]["world_model"])
    assert isinstance(model, TabularEnsemble) and model.size == 2
    for e in ens:
        member, _ = load_world_model(e["world_model"])
        assert member.disagreement().mean() == pytest.approx(e["disagreement_mean"], rel=1e-9, abs=1e-12)
    # the run's models directory is a registry the Serve API reads as it is
    registry = ModelRegistry(tmp_path / "run" / "models")
    assert set(registry.ids()) == {j["job"] for j in jobs} | {Path(e["world_model"]).name for e in ens}
    served = registry.get(jobs[0]["job"])
    assert served.model.num_states == 68 and served.task().goals.num_goals == jobs[0]["num_goals"]
    summary_rows = pq.read_table(results / "summary.parquet").to_pylist()
    assert {(r["variant"], r["method"]) for r in summary_rows} >= {("windy", "simplex-local")}
    rows = [line for line in (results / "results.md").read_text().splitlines() if line.startswith("|")]
    for r in summary_rows:  # every summary row is in the report's table
        assert any(f" {r['variant']} " in line and f" {r['method']} " in line for line in rows), r
    for name in ("kernel_error.png", "return_ratio.png", "kernel_error_vs_steps.png"):
        width, height = _png_size(results / name)
        assert width >= 200 and height >= 150, (name, width, height)

    # a rerun resumes: nothing is trained or extracted again, nothing is reported twice
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").glob("*/*/result.json")}
    lines.clear()
    again = run_experiment(cfg, tmp_path / "run", say=lines.append)
    assert (again.agents, again.extractions) == (4, 20)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert "all 4 agents already trained" in "\n".join(lines)
    assert "0 of 20 jobs to run" in "\n".join(lines)


def test_a_run_directory_refuses_another_config(ray_local, tmp_path: Path) -> None:
    run_experiment(
        _small(seeds=[0], extraction={"methods": ["column-match"]}, sweep=[{"num_goals": [1]}]),
        tmp_path,
        say=lambda _m: None,
    )
    with pytest.raises(ConfigError, match="holds a run of a different configuration"):
        run_experiment(_small(seeds=[1]), tmp_path, say=lambda _m: None)


def test_rllib_agents_run_through_the_same_pipeline(ray_local, tmp_path: Path) -> None:
    cfg = load_experiment(CONFIGS / "mountaincar-tiny.yaml")
    summary = run_experiment(cfg, tmp_path / "mc", base_dir=CONFIGS, say=lambda _m: None)
    assert summary.ok, summary.failures
    agents = pq.read_table(summary.results_dir / "agents.parquet").to_pylist()
    jobs = pq.read_table(summary.results_dir / "extractions.parquet").to_pylist()
    assert sorted(a["num_goals"] for a in agents) == [1, 2]
    # the agent config file was read into the run's own config: it resumes from that alone
    stored = load_experiment(tmp_path / "mc" / "config.yaml")
    assert stored.agent.rllib.config == "" and stored.agent.rllib.overrides["training"]["total_env_steps"] == 512
    again = run_experiment(stored, tmp_path / "mc", base_dir=tmp_path, say=lambda _m: None)
    assert (again.agents, again.extractions) == (2, 2)
    assert all(a["env_steps"] >= 512 for a in agents)
    for j in jobs:
        model, manifest = load_world_model(j["world_model"])
        # P-learning used the goal set this agent was trained on
        assert len(manifest["goals"]) == j["num_goals"]
        assert "return_ratio" in j
        # the recorded WM_NMSE is the artifact's: measured again on fresh states, it agrees
        task = make_task(cfg.task)
        states = evaluation_states(task, 4096, np.random.default_rng(123), "uniform")
        again_nmse = wm_errors(model.predict, task, states, space="state")["wm_nmse"]
        assert again_nmse == pytest.approx(j["wm_nmse"], rel=0.3), (again_nmse, j["wm_nmse"])
