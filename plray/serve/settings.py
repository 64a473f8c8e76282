"""The API's settings: one set of defaults for the Serve config, the engine's limits and the docs.

:class:`ServeSettings` is what ``deploy/serve_config.yaml``'s ``args`` (and KubeRay's
``serveConfigV2``) set; :class:`DeploymentOptions` the replicas. ``tests/serve/test_config.py``
checks the YAML repeats these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from plray.serve import engine

TOKEN_ENV = "PLRAY_SERVE_TOKEN"
"""Environment variable holding the bearer token (auth is off when it is unset)."""


@dataclass
class ServeSettings:
    """What a replica needs (the ``args`` of :func:`build_app`; every field has a default but ``models``).

    Attributes:
        models: models directory or pyarrow URI.
        cache_dir: local copies of remote artifacts.
        max_models: most model ids served at once.
        max_body_bytes: largest request body (413 beyond).
        max_batch: largest predict B.
        max_rollout_steps: largest rollout B·H.
        max_output_elements: most numbers in one answer.
        max_plan_rows: most model rows one plan may evaluate.
        batch_rows: predict requests with B up to this go through ``@serve.batch``.
        max_batch_rows: rows of one batched model call.
        batch_wait_timeout_s: how long a batch waits for more requests.
        reload_interval_s: period of the hot-reload check (0: only ``POST /v1/admin/reload``).
        auth_token_env: environment variable holding the bearer token (unset or empty: no auth).
        compute_threads: threads running decode / model / encode.
        inline_body_bytes: predict bodies up to this size are decoded and checked on the event loop.
        torch_threads: torch intra-op threads per replica (None: leave it as Ray sets it).
        max_horizon: largest rollout H.
        max_grid_rows: most grid nodes × actions of one grid value iteration.
        request_deadline_s: rollout / plan work stops (503 ``deadline_exceeded``) past this many seconds.
        heavy_threads: threads running rollout and plan, apart from predict's, so big requests never
            starve small ones.
        max_tensor_bytes: cap on one artifact's decompressed tensors (checked before decompressing).
    """

    models: str = "models"
    cache_dir: str | None = None
    max_models: int = 64
    max_body_bytes: int = 256 << 20
    max_batch: int = 1 << 20
    max_rollout_steps: int = engine.DEFAULT_LIMITS.max_rollout_steps
    max_output_elements: int = engine.DEFAULT_LIMITS.max_output_elements
    max_plan_rows: int = engine.DEFAULT_LIMITS.max_plan_rows
    batch_rows: int = 1024
    max_batch_rows: int = 8192
    batch_wait_timeout_s: float = 0.001
    reload_interval_s: float = 5.0
    auth_token_env: str = TOKEN_ENV
    compute_threads: int = 2
    inline_body_bytes: int = 16384
    torch_threads: int | None = 1
    max_horizon: int = engine.DEFAULT_LIMITS.max_horizon
    max_grid_rows: int = engine.DEFAULT_LIMITS.max_grid_rows
    request_deadline_s: float = 5.0
    heavy_threads: int = 1
    max_tensor_bytes: int = 1 << 30

    @classmethod
    def from_args(cls, args: dict[str, Any] | None) -> ServeSettings:
        """Settings from a plain dict, refusing unknown keys."""
        args = dict(args or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ValueError(f"unknown serve settings {unknown}; known: {sorted(known)}")
        return cls(**args)

    def limits(self) -> engine.Limits:
        return engine.Limits(
            self.max_batch,
            self.max_rollout_steps,
            self.max_output_elements,
            self.max_plan_rows,
            self.max_horizon,
            self.max_grid_rows,
        )


@dataclass
class DeploymentOptions:
    """Replica options (``serve_config.yaml`` may override them per deployment)."""

    num_replicas: int | str | None = None
    """replicas of the API deployment (``"auto"``: Serve's autoscaling; None: Serve's default, 1)"""
    max_ongoing_requests: int = 64
    """requests one replica handles at once before the proxy queues or routes elsewhere"""
    autoscaling_config: dict[str, Any] | None = None
    """Serve's ``autoscaling_config`` (min/max replicas, target ongoing requests), with ``num_replicas: auto``"""
    ray_actor_options: dict[str, Any] = field(default_factory=lambda: {"num_cpus": 1})
    """Ray resources of each replica (default one CPU)"""
