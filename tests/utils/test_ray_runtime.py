"""plray.utils.ray_runtime: which address means what (no Ray started here)."""

from __future__ import annotations

import pytest

from plray.utils.ray_runtime import LOCAL, is_local, resolve_address


def test_resolve_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address(None) == LOCAL and is_local(None)
    assert resolve_address("local") == LOCAL
    assert resolve_address("auto") == "auto" and not is_local("auto")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert resolve_address(None) == "10.0.0.1:6379"
    assert resolve_address("local") == LOCAL  # "local" wins over RAY_ADDRESS
    with pytest.raises(ValueError, match="Ray address"):
        resolve_address("  ")
