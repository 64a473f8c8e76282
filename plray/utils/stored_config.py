"""A config kept as YAML next to the run it describes, and the refusal to mix two configs in one place.

A run directory (``plray run``'s, or ``plray train``'s output folder) keeps the validated config it
was started with. A later run on the same folder must describe the same experiment, or it would
resume one run's state with another's settings: :func:`check_stored_config` is that rule's one
owner, :func:`write_stored_config` writes the file it reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from plray.utils.io import atomic_write_text
from plray.utils.schema import ConfigError, from_mapping, to_mapping


def check_stored_config(path: Path, cfg: Any, *, different: str, unreadable: str | None = None) -> bool:
    """Refuse a config other than the one stored at ``path``.

    Args:
        path: a YAML file written by :func:`write_stored_config` (it need not exist).
        cfg: the config (a dataclass instance :func:`plray.utils.schema.from_mapping` reads) the
            caller is about to run; the stored one is read as the same type.
        different: the :class:`ConfigError` message when the stored config is another one.
        unreadable: when given, a stored file that is not a valid config of that type raises
            ``ConfigError("<path>: <unreadable> (<why>)")``; when None, the reader's own error
            (a ``ConfigError`` or a YAML error) propagates.

    Returns:
        whether ``path`` held a config (the same one: otherwise this raised).
    """
    if not path.is_file():
        return False
    try:
        previous = from_mapping(type(cfg), yaml.safe_load(path.read_text(encoding="utf-8")))
    except (ConfigError, yaml.YAMLError) as exc:
        if unreadable is None:
            raise
        raise ConfigError(f"{path}: {unreadable} ({exc})") from exc
    if to_mapping(previous) != to_mapping(cfg):
        raise ConfigError(different)
    return True


def write_stored_config(path: Path, cfg: Any) -> None:
    """Write ``cfg`` (a typed config dataclass) to ``path`` as YAML, atomically, fields in order."""
    atomic_write_text(path, yaml.safe_dump(to_mapping(cfg), sort_keys=False))
