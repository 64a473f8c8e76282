"""KubeRay manifests under ``k8s/``: the RayService's ``serveConfigV2`` and a small kustomize renderer.

``deploy/serve_config.yaml`` is the one source of the Serve configuration: the RayService in
``k8s/base/rayservice.yaml`` carries the same document as its ``serveConfigV2`` string, with
``args.models`` pointing at object storage (:data:`MODELS_URI`). Regenerate it after editing the
Serve config::

    python -m plray.deploy_manifests --write     # rewrite serveConfigV2 in k8s/base/rayservice.yaml
    python -m plray.deploy_manifests --check     # exit 1 when it is stale (tests/deploy does the same)
    python -m plray.deploy_manifests --render k8s/overlays/gpu   # print the rendered objects

:func:`render` renders a kustomization without the ``kustomize`` binary, for the subset ``k8s/``
uses: ``resources`` (files and directories) and ``patches`` (strategic-merge patch files or inline
patches, matched to their object by apiVersion, kind and name) of custom resources. Kustomize has no
schema for custom resources (RayCluster, RayJob, RayService, PodMonitor), so its strategic merge
merges mappings key by key, deletes a key whose patch value is ``null`` and replaces lists as a whole
(containers, env, volumes, workerGroupSpecs: a patch restates the complete list). Built-in kinds,
whose lists kustomize merges by their schema's keys, are refused. The tests compare the result with
``kubectl kustomize`` where kubectl is installed.

The paths are relative to the repository (``deploy/`` and ``k8s/`` are not package data): this
module serves the tests and the regeneration script of a checkout. It imports no Ray.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVE_CONFIG_PATH = REPO_ROOT / "deploy" / "serve_config.yaml"
K8S_DIR = REPO_ROOT / "k8s"
RAYSERVICE_PATH = K8S_DIR / "base" / "rayservice.yaml"
MODELS_URI = "s3://plray/models"
"""Where the RayService's replicas read (and hot-reload) model versions."""

GENERATED_HEADER = (
    "# Generated from deploy/serve_config.yaml by `python -m plray.deploy_manifests --write`; edit that file.\n"
)
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_SUPPORTED_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "patches"}
_SERVE_CONFIG_KEY = re.compile(r"^(?P<indent>[ \t]*)serveConfigV2:[ \t]*\|[-+]?[ \t]*$")


# ---------------------------------------------------------------------- serveConfigV2
def serve_config(models: str = MODELS_URI, path: Path = SERVE_CONFIG_PATH) -> dict[str, Any]:
    """``deploy/serve_config.yaml`` as a dict, with every application's ``args.models`` set to ``models``."""
    cfg = yaml.safe_load(Path(path).read_text())
    if not isinstance(cfg, dict) or not cfg.get("applications"):
        raise ValueError(f"{path}: expected a Serve config with applications")
    for app in cfg["applications"]:
        app.setdefault("args", {})["models"] = models
    return cfg


def serve_config_v2(models: str = MODELS_URI, path: Path = SERVE_CONFIG_PATH) -> str:
    """The RayService's ``serveConfigV2`` string: a header comment, then :func:`serve_config` as YAML."""
    return GENERATED_HEADER + yaml.safe_dump(serve_config(models, path), sort_keys=False, width=1000)


def replace_serve_config_v2(manifest: str, config_text: str) -> str:
    """``manifest`` (a RayService YAML text) with its ``serveConfigV2: |`` block replaced by ``config_text``.

    Everything else in the file (comments, order, layout) is kept.
    """
    lines = manifest.splitlines(keepends=True)
    for i, line in enumerate(lines):
        match = _SERVE_CONFIG_KEY.match(line.rstrip("\n"))
        if match is None:
            continue
        indent = match.group("indent")
        end = i + 1
        while end < len(lines) and (not lines[end].strip() or _indent_of(lines[end]) > len(indent)):
            end += 1
        while end > i + 1 and not lines[end - 1].strip():  # blank lines after the block stay outside it
            end -= 1
        body = "".join(f"{indent}  {row}\n" if row else "\n" for row in config_text.rstrip("\n").split("\n"))
        return "".join([*lines[:i], f"{indent}serveConfigV2: |\n", body, *lines[end:]])
    raise ValueError("no `serveConfigV2: |` block found")


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def write_rayservice(path: Path = RAYSERVICE_PATH, models: str = MODELS_URI) -> bool:
    """Regenerate the ``serveConfigV2`` of the RayService at ``path``; True when the file changed."""
    old = Path(path).read_text()
    new = replace_serve_config_v2(old, serve_config_v2(models))
    if new != old:
        Path(path).write_text(new)
    return new != old


# ---------------------------------------------------------------------- kustomize subset
def load_documents(path: Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of ``path``."""
    with open(path) as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected mappings, got {type(doc).__name__}")
    return docs


def kustomization_file(directory: Path) -> Path:
    """The kustomization file of ``directory``."""
    for name in KUSTOMIZATION_FILES:
        if (Path(directory) / name).is_file():
            return Path(directory) / name
    raise FileNotFoundError(f"{directory}: no kustomization.yaml")


def object_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    """(apiVersion, kind, metadata.name): how patches find their object."""
    return obj.get("apiVersion", ""), obj.get("kind", ""), (obj.get("metadata") or {}).get("name", "")


def render(directory: Path | str) -> list[dict[str, Any]]:
    """The objects the kustomization in ``directory`` produces (the subset of the module docstring)."""
    directory = Path(directory)
    spec = load_documents(kustomization_file(directory))[0]
    unsupported = sorted(set(spec) - _SUPPORTED_KUSTOMIZATION_KEYS)
    if unsupported:
        raise ValueError(f"{directory}: kustomization fields {unsupported} are not supported by this renderer")
    objects: list[dict[str, Any]] = []
    for entry in spec.get("resources") or []:
        target = (directory / entry).resolve()
        objects.extend(render(target) if target.is_dir() else load_documents(target))
    keys = [object_key(o) for o in objects]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"{directory}: duplicate objects {duplicates}")
    for patch in _patches(directory, spec.get("patches") or []):
        key = object_key(patch)
        if key not in keys:
            raise ValueError(f"{directory}: patch for {key} matches no resource")
        if is_builtin_kind(patch):
            raise ValueError(f"{directory}: patches of built-in kinds (schema-aware merges) are not supported: {key}")
        index = keys.index(key)
        objects[index] = strategic_merge(objects[index], patch)
    return objects


def _patches(directory: Path, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The patch documents of a kustomization's ``patches`` (``path`` or inline ``patch``; no ``target``)."""
    patches: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict) or "target" in entry or not ({"path", "patch"} & set(entry)):
            raise ValueError(f"{directory}: only strategic-merge patches by path or inline are supported: {entry}")
        if "path" in entry:
            patches.extend(load_documents(directory / entry["path"]))
        else:
            patches.extend(d for d in yaml.safe_load_all(entry["patch"]) if d is not None)
    return patches


def strategic_merge(base: Any, patch: Any) -> Any:
    """``patch`` merged into (a copy of) ``base``: kustomize's strategic merge for schemaless (custom) types.

    Mappings merge key by key, a ``None`` value deletes its key, anything else (lists included)
    replaces.
    """
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    return copy.deepcopy(patch)


def is_builtin_kind(obj: dict[str, Any]) -> bool:
    """Whether ``obj`` is a built-in Kubernetes kind (core, ``apps``, ``*.k8s.io``, ...), not a custom resource."""
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def kustomizations(root: Path = K8S_DIR) -> list[Path]:
    """Every directory under ``root`` holding a kustomization (base first, then the overlays, sorted)."""
    found = {p.parent for name in KUSTOMIZATION_FILES for p in Path(root).rglob(name)}
    return sorted(found, key=lambda p: (p.name != "base", str(p)))


# ---------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """``--write`` / ``--check`` the RayService's serveConfigV2, or ``--render DIR``."""
    parser = argparse.ArgumentParser(prog="python -m plray.deploy_manifests", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="regenerate serveConfigV2 in k8s/base/rayservice.yaml")
    group.add_argument("--check", action="store_true", help="exit 1 when serveConfigV2 is stale")
    group.add_argument("--render", metavar="DIR", help="print the objects of the kustomization in DIR")
    args = parser.parse_args(argv)
    if args.render:
        print(yaml.safe_dump_all(render(args.render), sort_keys=False), end="")
        return 0
    if args.write:
        changed = write_rayservice()
        print(f"{RAYSERVICE_PATH}: {'updated' if changed else 'up to date'}")
        return 0
    current = RAYSERVICE_PATH.read_text()
    if replace_serve_config_v2(current, serve_config_v2()) != current:
        print(
            f"{RAYSERVICE_PATH}: serveConfigV2 is stale; run python -m plray.deploy_manifests --write", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
