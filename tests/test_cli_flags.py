"""The subcommands' flags come from the config dataclasses: the same arguments give the same configs,
every flag the docs and scripts use still parses, choices are their owners', every flag has help."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest

from plray import cli
from plray.cli import METHOD_ALIASES, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
INVOCATION = re.compile(r"plray (fourrooms|train|extract|evaluate|serve|run|exact-table)\b([^`\n#|\"']*)")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(sub: argparse.ArgumentParser) -> set[str]:
    sub.format_help()  # builds deferred flags
    return {s for a in sub._actions for s in a.option_strings}


def _doc_flags() -> dict[str, set[str]]:
    """``--flags`` after ``plray <command>`` anywhere in the docs, deployment files, configs and benchmarks."""
    found: dict[str, set[str]] = {}
    places = ["README.md", "docs", "deploy", "k8s", "configs", "bench", "Makefile", "ray_config.yaml"]
    for place in places:
        path = ROOT / place
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for match in INVOCATION.finditer(text):
                flags = (re.split(r"[=),.;:]", t)[0] for t in match.group(2).split() if t.startswith("--"))
                found.setdefault(match.group(1), set()).update(flags)
    return found


def test_every_flag_the_docs_and_scripts_use_is_accepted() -> None:
    subs = _subparsers()
    found = _doc_flags()
    assert {"--goals", "--local", "--raw-inputs", "--no-unseen", "--replicas", "--run-dir"} <= set().union(
        *found.values()
    ), "the scan finds the documented invocations"
    for command, flags in found.items():
        unknown = flags - _options(subs[command])
        assert not unknown, f"plray {command} no longer accepts {sorted(unknown)}"


def test_every_flag_has_help_text() -> None:
    for command, sub in _subparsers().items():
        sub.format_help()
        for action in sub._actions:
            assert action.help and len(action.help) > 5, f"plray {command} {action.option_strings or action.dest}"


def _choices(command: str, flag: str) -> tuple[Any, ...]:
    sub = _subparsers()[command]
    sub.format_help()
    return tuple(next(a for a in sub._actions if flag in a.option_strings).choices)


def test_choices_are_their_owners() -> None:
    from plray.core.types import ESTIMATORS, EXTRACTION_METHODS, KERNEL_METHODS, VALUE_MODES
    from plray.envs.fourrooms import GOAL_FAMILIES, GOAL_PLACEMENTS, VARIANTS

    try:  # the experiments' FourRooms vocabulary, wherever the task pipeline keeps it
        from plray.experiments.tabular_task import TABULAR_METHODS
    except ImportError:
        from plray.experiments.schema import TABULAR_METHODS  # type: ignore[attr-defined,no-redef]

    assert _choices("fourrooms", "--variant") == tuple(VARIANTS)
    assert _choices("fourrooms", "--goal-family") == tuple(GOAL_FAMILIES)
    assert _choices("fourrooms", "--placement") == tuple(GOAL_PLACEMENTS)
    assert _choices("fourrooms", "--value-mode") == tuple(VALUE_MODES)
    assert _choices("fourrooms", "--method") == (*KERNEL_METHODS, *METHOD_ALIASES)
    assert set(METHOD_ALIASES) == set(TABULAR_METHODS) - set(KERNEL_METHODS), "the configs' names, no more"
    assert _choices("extract", "--method") == tuple(EXTRACTION_METHODS)
    assert _choices("extract", "--estimator") == tuple(ESTIMATORS)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """What the commands hand to the library (the runs themselves are replaced)."""
    import plray.experiments.extraction as extraction
    import plray.experiments.fourrooms as fourrooms

    seen: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def record(name: str, result: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            seen.append((name, args, kwargs))
            return result

        return call

    result = {"unseen": {}, "rank": 68, "sigma_min": 1.0, "column_gap": 1.0, "identifiable": True}
    monkeypatch.setattr(fourrooms, "run_fourrooms", record("fourrooms", result))
    monkeypatch.setattr(extraction, "run_extraction", record("extract", {}))
    monkeypatch.setattr(extraction, "run_evaluation", record("evaluate", {"metrics": {}}))
    return seen


def test_fourrooms_flags_build_the_same_spec(calls: list[Any], capsys: pytest.CaptureFixture[str]) -> None:
    from plray.experiments.fourrooms import FourRoomsSpec

    assert main(["fourrooms", "--json"]) == 0
    assert calls.pop()[1][0] == FourRoomsSpec()
    argv = "--variant teleport --goals 5 --goal-family indicator --method simplex --local --gamma 0.9"
    argv += " --placement spread --seed 3 --q-noise 0.1 --project --value-mode policy --updates 7 --json"
    assert main(["fourrooms", *argv.split()]) == 0
    expected = FourRoomsSpec(
        variant="teleport", num_goals=5, goal_family="indicator", method="simplex", local=True, gamma=0.9,
        placement="spread", seed=3, q_noise=0.1, project=True, value_mode="policy", updates=7,
    )  # fmt: skip
    assert calls.pop()[1][0] == expected
    config_names = argv.replace("--goals", "--num-goals").replace("--method simplex --local", "--method simplex-local")
    assert main(["fourrooms", *config_names.split()]) == 0
    assert calls.pop()[1][0] == expected, "the configs' names give the same spec"
    capsys.readouterr()


def test_extract_flags_build_the_same_config(calls: list[Any], tmp_path: Path) -> None:
    from plray.experiments.extraction import ExtractionConfig

    assert main(["extract", "--task", "reacher", "--out", str(tmp_path), "--quiet"]) == 0
    assert calls.pop()[1] == (ExtractionConfig(task="reacher"), str(tmp_path))
    argv = "--task mountaincar-position --agent a/agent --method gaussian --estimator score --steps 10 --lr 0.01"
    argv += f" --batch-size 32 --sampler reset --oracle-resolution 9 --seed 4 --out {tmp_path} --quiet"
    expected = ExtractionConfig(
        task="mountaincar-position", agent="a/agent", method="gaussian", sampler="reset", oracle_resolution=9,
        p_learning={"steps": 10, "batch_size": 32, "lr": 0.01}, normalize_inputs=False, estimator="score", seed=4,
    )  # fmt: skip
    for negation in ("--raw-inputs", "--no-normalize-inputs"):
        assert main(["extract", *argv.split(), negation]) == 0
        cfg = calls.pop()[1][0]
        assert cfg == expected and list(cfg.p_learning) == ["steps", "batch_size", "lr"]
    assert main(["extract", "--task", "reacher", "--lr", "0.5", "--out", str(tmp_path), "--quiet"]) == 0
    assert calls.pop()[1][0].p_learning == {"lr": 0.5}, "only the P-learning flags given override the task's"


def test_evaluate_flags_give_the_same_call(calls: list[Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "art"]) == 0
    defaults = {"unseen": True, "resolution": None, "num_starts": 512, "seed": 0, "eval_states": None}
    assert calls.pop()[2] == defaults
    for starts in ("--starts", "--num-starts"):
        argv = f"art --no-unseen --resolution 7 {starts} 9 --eval-states 100 --seed 2".split()
        assert main(["evaluate", *argv]) == 0
        assert calls.pop()[2] == {"unseen": False, "resolution": 7, "num_starts": 9, "seed": 2, "eval_states": 100}
    capsys.readouterr()


def test_serve_flags_give_the_same_call(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import plray.serve.app as app

    seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(app, "run", lambda *a, **k: seen.append((a, k)))
    assert main(["serve", "--models", str(tmp_path)]) == 0
    expected = {
        "address": None, "host": "127.0.0.1", "port": 8000, "route_prefix": "/",
        "settings": {"reload_interval_s": 5.0}, "deployment": {"num_replicas": 1},
    }  # fmt: skip
    assert seen.pop() == ((str(tmp_path),), expected)
    for replicas, interval in (("--replicas", "--reload-interval"), ("--num-replicas", "--reload-interval-s")):
        argv = ["--models", str(tmp_path), "--address", "auto", replicas, "3", interval, "0.5"]
        assert main(["serve", *argv]) == 0
        expected |= {"address": "auto", "settings": {"reload_interval_s": 0.5}, "deployment": {"num_replicas": 3}}
        assert seen.pop() == ((str(tmp_path),), expected)
    assert main(["serve", "--models", str(tmp_path), "--reload-interval", "-1"]) == 2


def test_top_level_help_builds_no_subcommand_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """``plray --help`` and ``plray run`` stay light: the generated flags are added when their command runs."""
    added: list[str] = []
    monkeypatch.setattr(cli, "add_dataclass_arguments", lambda _p, cls, **_k: added.append(cls.__name__) or [])
    build_parser().format_help()
    assert added == []
