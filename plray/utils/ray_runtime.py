"""Start an embedded local Ray or join a cluster, in one place for every entry point.

``address`` means the same everywhere (``plray run``, ``plray train``, ``plray serve``):

- ``None``: join the cluster named by ``RAY_ADDRESS`` when that variable is set (as under
  ``ray job submit``), otherwise start a fresh embedded local Ray;
- ``"local"``: always a fresh embedded local Ray, even if a ``ray start`` cluster runs on this host
  (Ray's own ``address=None`` would attach to that cluster through ``/tmp/ray/ray_current_cluster``);
- ``"auto"``, ``"ray://host:10001"``, ``"host:6379"``: join that cluster.

An embedded Ray has no dashboard and ``num_cpus`` CPUs (default: all); a joined cluster keeps its
own resources. ``RAY_AUTH_MODE`` defaults to ``disabled`` (a local ``ray.init`` with it unset turns
token auth on host-wide, which breaks later ``ray job submit`` calls; see the Ray reference).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOCAL = "local"
"""The address that always means a fresh embedded Ray."""


def resolve_address(address: str | None) -> str:
    """The address to pass to ``ray.init``: ``"local"`` for an embedded Ray, else the cluster's."""
    if address is None:
        return os.environ.get("RAY_ADDRESS") or LOCAL
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"Ray address: expected 'local', 'auto', 'ray://host:port' or 'host:port', got {address!r}")
    return address.strip()


def is_local(address: str | None) -> bool:
    """Whether ``address`` (as :func:`connect` reads it) starts an embedded Ray."""
    return resolve_address(address) == LOCAL


def start(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    log_to_driver: bool = False,
    **init_kwargs: Any,
) -> bool:
    """Start or join Ray unless this process already has it; returns whether this call did.

    Args:
        address: see the module docstring.
        num_cpus: CPUs of an embedded Ray (ignored when joining a cluster).
        log_to_driver: stream workers' output to this process.
        init_kwargs: further ``ray.init`` keywords (e.g. ``runtime_env``).
    """
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        return False
    target = resolve_address(address)
    kwargs: dict[str, Any] = {"log_to_driver": log_to_driver, **init_kwargs}
    if target == LOCAL:
        kwargs.setdefault("include_dashboard", False)
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
    ray.init(address=target, **kwargs)
    return True


@contextmanager
def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    log_to_driver: bool = False,
    **init_kwargs: Any,
) -> Iterator[bool]:
    """Ray for the duration of a ``with`` block; yields whether this block started (or joined) it.

    Shuts down only what it started: inside a process that already runs Ray (a Tune trial, a test
    fixture) it does nothing on entry or exit. Arguments as :func:`start`.
    """
    started = start(address, num_cpus=num_cpus, log_to_driver=log_to_driver, **init_kwargs)
    try:
        yield started
    finally:
        if started:
            import ray

            ray.shutdown()
