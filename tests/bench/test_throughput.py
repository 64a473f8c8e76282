"""bench/throughput.py's bookkeeping: differenced rates, medians, ratios, and the skipped official side."""

import sys

import pytest

from bench import throughput


def test_differenced_rates_cancel_the_fixed_cost() -> None:
    small = {"wall_s": 12.0, "cpu_s": 20.0, "load1": 0.5}
    large = {"wall_s": 22.0, "cpu_s": 40.0, "load1": 0.7}  # 10 s and 20 CPU-s more for 1000 more samples
    got = throughput.differenced(small, large, 1000)
    assert got["per_s"] == pytest.approx(100.0) and got["per_cpu_s"] == pytest.approx(50.0)
    assert got["load1"] == [0.5, 0.7]
    assert throughput.differenced(large, small, 1000)["per_s"] is None  # noise can invert a difference


def test_summary_medians_and_ratios() -> None:
    rows = [
        {"figure": "f", "impl": "plray", "per_s": r, "per_cpu_s": r / 2, "load1": [1.0, 1.2]} for r in (90, 100, 300)
    ] + [{"figure": "f", "impl": "official", "per_s": 50.0, "per_cpu_s": 25.0, "load1": [0.9, 1.4]}]
    (row,) = throughput.summarise(rows)
    assert row["plray_per_s"] == 100 and row["official_per_s"] == 50
    assert row["ratio"] == pytest.approx(2.0) and row["ratio_cpu"] == pytest.approx(2.0)
    assert row["plray_max_load"] == 1.2 and row["official_max_load"] == 1.4 and row["rounds"] == 3


def test_plray_only_summary_has_no_ratio() -> None:
    rows = [{"figure": "g", "impl": "plray", "per_s": 10.0, "per_cpu_s": None, "load1": [0.1, 0.2]}]
    (row,) = throughput.summarise(rows)
    assert "ratio" not in row and row["plray_per_cpu_s"] is None


def test_the_official_side_is_skipped_without_a_checkout(tmp_path, monkeypatch, capsys) -> None:
    calls: list[str] = []
    monkeypatch.setattr(throughput, "plray_plearning", lambda *a: calls.append("p") or {"per_s": 1.0})
    monkeypatch.setattr(throughput, "official_plearning", lambda *a: pytest.fail("official side ran"))
    monkeypatch.setattr(sys, "argv", ["throughput.py", "--official", str(tmp_path / "absent")])
    args = throughput.build_parser().parse_args(sys.argv[1:] + ["--rounds", "1", "--pqn-rounds", "0"])
    rows: list[dict] = []
    throughput.one_round(args, 0, False, rows.append)
    # 2 tasks x (the official size, plray's default size) x (oneDNN, torch's matmul)
    assert {r["impl"] for r in rows} == {"plray", throughput.other_path()[0]} and len(rows) == len(calls) == 8


def test_speedup_over_torch_matmul_is_reported() -> None:
    rows = [
        {"figure": "f", "impl": "plray", "per_s": 150.0, "per_cpu_s": 75.0, "load1": [0.5, 0.6]},
        {"figure": "f", "impl": "plray-torch", "per_s": 100.0, "per_cpu_s": 50.0, "load1": [0.5, 0.6]},
    ]
    (row,) = throughput.summarise(rows)
    assert row["onednn_speedup"] == pytest.approx(1.5) and row["plray-torch_per_s"] == 100.0
    rows = [
        {"figure": "f", "impl": "plray", "per_s": 100.0, "per_cpu_s": 50.0, "load1": [0.5, 0.6]},  # shipped: torch
        {"figure": "f", "impl": "plray-onednn", "per_s": 80.0, "per_cpu_s": 40.0, "load1": [0.5, 0.6]},
    ]
    (row,) = throughput.summarise(rows)
    assert row["onednn_speedup"] == pytest.approx(0.8) and row["plray-onednn_per_s"] == 80.0


def test_settling_waits_for_the_load_to_fall(monkeypatch) -> None:
    loads = iter([2.0, 1.6, 0.9])
    monkeypatch.setattr(throughput.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    monkeypatch.setattr(throughput.time, "sleep", lambda s: None)
    monkeypatch.setitem(throughput.SETTLE, "below", 1.0)
    throughput.settle_load()
    with pytest.raises(StopIteration):  # it read the load three times, and stopped at 0.9
        next(loads)


def test_pqn_rollouts_are_parsed_and_checked() -> None:
    parser = throughput.build_parser()
    assert parser.parse_args([]).pqn_rollouts == (1, 2)
    assert parser.parse_args(["--pqn-rollouts", "1,4"]).pqn_rollouts == (1, 4)
    for bad in ("4,1", "0,2", "2", "a,b"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--pqn-rollouts", bad])
