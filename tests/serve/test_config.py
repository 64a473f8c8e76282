"""Deployment config, application builder, OpenAPI documentation and the CLI, without starting Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plray.cli import main
from plray.serve.app import ServeSettings, app, build_app

ROOT = Path(__file__).resolve().parents[2]


def test_serve_config_validates_and_builds() -> None:
    from ray.serve.schema import ServeDeploySchema

    cfg = yaml.safe_load((ROOT / "deploy" / "serve_config.yaml").read_text())
    schema = ServeDeploySchema.model_validate(cfg)
    application = schema.applications[0]
    assert application.import_path == "plray.serve.app:build_app"
    assert application.deployments[0].name == "WorldModelServer"
    build_app(dict(application.args))
    assert set(application.args) <= {f for f in ServeSettings.__dataclass_fields__}
    defaults = ServeSettings()
    for key, value in application.args.items():  # one set of defaults: the yaml repeats them, never diverges
        if key != "models":
            assert getattr(defaults, key) == value, (key, value, getattr(defaults, key))
    assert cfg["http_options"]["request_timeout_s"] >= defaults.request_deadline_s


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown serve settings"):
        build_app({"models": "x", "max_bodybytes": 1})


def test_openapi_documents_every_request_field() -> None:
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    for name in ("PredictRequest", "RolloutRequest", "PlanRequest", "TaskGoal", "UnseenGoalSpec", "RegionGoal"):
        for field, prop in schemas[name]["properties"].items():
            assert prop.get("description"), f"{name}.{field} has no description"
    for name in ("PredictResponse", "RolloutResponse", "PlanResponse", "ModelSummary", "ErrorBody"):
        for field, prop in schemas[name]["properties"].items():
            assert prop.get("description") or field == "status", f"{name}.{field} has no description"
    predict = spec["paths"]["/v1/models/{model_id}/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"application/json", "application/vnd.apache.arrow.stream"}
    assert {"400", "404", "413", "415", "422"} <= set(predict["responses"])
    assert "(B, d)" in schemas["PredictRequest"]["properties"]["states"]["description"]


def test_cli_serve_refuses_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--models", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["serve", "--models", str(tmp_path), "--route-prefix", "x"]) == 2
