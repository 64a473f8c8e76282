"""Offline validation of the KubeRay manifests under ``k8s/`` (base and every overlay).

Each check is a function returning the problems it finds in one rendered object (an empty list:
valid). Every check runs on every object of every kustomization, and on deliberately broken copies
of the base's manifests, which must fail it:

1. the KubeRay v1.7.0 CRD schema (``../shared/kuberay-crds``), strict: unknown fields are errors;
2. the operator's own rules that the schema does not hold (names, replicas, TTL, cluster selection,
   Ray version of ``rayVersion`` and of every image, no inline credentials);
3. every pod template against Kubernetes' own schemas (``kubernetes-validate``, strict);
4. the RayService's ``serveConfigV2``: Ray's ``ServeDeploySchema``, no unknown keys, an importable
   ``import_path`` whose args ``build_app`` accepts (no Ray is started);
5. the RayJobs' entrypoints: plray's own CLI parser, files present, the config loads;
6. the PodMonitor: selector and port names match the pods.

No network, no API server, no kubectl needed (where kubectl is installed, :func:`render` is also
compared with ``kubectl kustomize``).
"""

from __future__ import annotations

import copy
import functools
import gzip
import importlib
import os
import re
import shlex
import shutil
import subprocess
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml

import plray
from plray.deploy_manifests import (
    K8S_DIR,
    MODELS_URI,
    RAYSERVICE_PATH,
    kustomizations,
    render,
    replace_serve_config_v2,
    serve_config_v2,
)

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = Path(os.environ.get("PLRAY_KUBERAY_CRDS") or ROOT.parent / "shared" / "kuberay-crds")
"""KubeRay v1.7.0's CRDs (gzip YAML): ``PLRAY_KUBERAY_CRDS``, else ``../shared/kuberay-crds`` beside the checkout."""
CRD_FILES = {
    "RayCluster": "ray.io_rayclusters.yaml.gz",
    "RayJob": "ray.io_rayjobs.yaml.gz",
    "RayService": "ray.io_rayservices.yaml.gz",
}
K8S_VERSION = "1.32.0"
IMAGE_WORKDIR = "/home/ray/plray"  # deploy/Dockerfile's WORKDIR, where the image keeps configs/
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_NAME = {"RayCluster": 53, "RayJob": 47, "RayService": 47}
SUBMISSION_MODES = {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}
SECRET_LIKE = re.compile(r"(SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL)", re.IGNORECASE)

Obj = dict[str, Any]


# ---------------------------------------------------------------------- rendering
@functools.cache
def rendered(directory: str) -> tuple[Obj, ...]:
    return tuple(render(Path(directory)))


def label(directory: Path) -> str:
    return str(directory.relative_to(K8S_DIR))


ALL_DIRS = kustomizations()
ALL_OBJECTS = [
    pytest.param(str(d), i, id=f"{label(d)}:{o['kind']}/{o['metadata']['name']}")
    for d in ALL_DIRS
    for i, o in enumerate(rendered(str(d)))
]


def base_object(kind: str, name: str) -> Obj:
    """A deep copy of one object of k8s/base (what the mutations break)."""
    for obj in rendered(str(K8S_DIR / "base")):
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return copy.deepcopy(obj)
    raise LookupError(f"{kind}/{name} not in k8s/base")


def cluster_specs(obj: Obj) -> list[tuple[str, Obj]]:
    """(path, RayClusterSpec) of an object: RayCluster.spec, RayJob.spec.rayClusterSpec, RayService's."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "RayCluster":
        return [("spec", spec)]
    if obj.get("kind") == "RayJob" and isinstance(spec.get("rayClusterSpec"), dict):
        return [("spec.rayClusterSpec", spec["rayClusterSpec"])]
    if obj.get("kind") == "RayService" and isinstance(spec.get("rayClusterConfig"), dict):
        return [("spec.rayClusterConfig", spec["rayClusterConfig"])]
    return []


def pod_templates(obj: Obj) -> Iterator[tuple[str, str, Obj]]:
    """(path, node type, pod template) of every head and worker group of an object."""
    for path, spec in cluster_specs(obj):
        head = (spec.get("headGroupSpec") or {}).get("template")
        if head is not None:
            yield f"{path}.headGroupSpec", "head", head
        for i, group in enumerate(spec.get("workerGroupSpecs") or []):
            yield f"{path}.workerGroupSpecs[{i}]", "worker", group.get("template") or {}


def containers(template: Obj) -> list[Obj]:
    return list((template.get("spec") or {}).get("containers") or [])


# ---------------------------------------------------------------------- 1. CRD schemas, strict
def strict_schema(schema: Any) -> Any:
    """A copy of an OpenAPI v3 schema that rejects unknown fields (and reads Kubernetes' extensions).

    Every object schema that lists ``properties``, without ``x-kubernetes-preserve-unknown-fields``
    and without ``additionalProperties``, gets ``additionalProperties: false``;
    ``x-kubernetes-int-or-string`` becomes integer-or-string and ``nullable`` admits null.
    """
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) if k in ("items", "additionalProperties", "not") else v for k, v in schema.items()}
    for key in ("anyOf", "allOf", "oneOf"):
        if key in schema:
            out[key] = [strict_schema(s) for s in schema[key]]
    if "properties" in schema:
        out["properties"] = {k: strict_schema(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
            out["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    return out


@functools.cache
def crd_validator(kind: str) -> Any:
    import jsonschema

    if not CRD_DIR.is_dir():
        pytest.skip(
            f"KubeRay CRDs not found at {CRD_DIR} (the shared reference data; set PLRAY_KUBERAY_CRDS to their "
            "folder); CRD checks skipped"
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with gzip.open(CRD_DIR / CRD_FILES[kind], "rt") as fh:
        crd = yaml.load(fh, Loader=loader)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1" and v["served"] and v["storage"]]
    schema = strict_schema(version["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def crd_errors(obj: Obj) -> list[str]:
    """Problems of a ray.io object against its CRD's strict schema (other kinds: none)."""
    if obj.get("kind") not in CRD_FILES:
        return []
    if obj.get("apiVersion") != "ray.io/v1":
        return [f"apiVersion {obj.get('apiVersion')!r}, expected ray.io/v1"]
    errors = crd_validator(obj["kind"]).iter_errors(obj)
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


# ---------------------------------------------------------------------- 2. operator rules
def name_errors(obj: Obj) -> list[str]:
    name = str((obj.get("metadata") or {}).get("name", ""))
    kind = obj.get("kind", "")
    if kind in MAX_NAME:
        problems = [] if DNS_1035.match(name) and len(name) <= 63 else [f"name {name!r} is not a DNS-1035 label"]
        if len(name) > MAX_NAME[kind]:
            problems.append(f"{kind} name {name!r} is longer than {MAX_NAME[kind]} characters")
        return problems
    return [] if DNS_1123_SUBDOMAIN.match(name) and len(name) <= 253 else [f"name {name!r} is not a DNS-1123 name"]


def image_errors(image: str) -> list[str]:
    """Ray's images must carry the installed Ray version; plray's the project version (built on that Ray)."""
    repo, _, tag = image.rpartition(":")
    if not repo or "/" in tag:
        return [f"image {image!r} has no tag"]
    if repo.endswith("rayproject/ray") or repo.endswith("rayproject/ray-ml"):
        ok = tag.split("-")[0] == ray.__version__
        return [] if ok else [f"image {image!r}: Ray {tag.split('-')[0]}, installed Ray is {ray.__version__}"]
    if repo.rpartition("/")[2] == "plray":
        ok = tag.split("-")[0] == plray.__version__
        return [] if ok else [f"image {image!r}: tag is not plray's version {plray.__version__} (deploy/Dockerfile)"]
    return [f"image {image!r} is neither plray's nor Ray's"]


def group_errors(path: str, group: Obj) -> list[str]:
    problems: list[str] = []
    params = group.get("rayStartParams") or {}
    if "labels" in params:
        problems.append(f"{path}: rayStartParams['labels'] is refused (use labels)")
    if {"num-cpus", "num-gpus", "memory", "resources"} & set(params) and group.get("resources"):
        problems.append(f"{path}: resources set in both rayStartParams and resources")
    lo, hi = group.get("minReplicas", 0), group.get("maxReplicas", 2**31 - 1)
    replicas = group.get("replicas", lo)
    if not lo <= replicas <= hi:
        problems.append(f"{path}: needs minReplicas {lo} <= replicas {replicas} <= maxReplicas {hi}")
    return problems


def cluster_spec_errors(path: str, spec: Obj) -> list[str]:
    problems: list[str] = []
    if spec.get("rayVersion") != ray.__version__:
        problems.append(f"{path}.rayVersion {spec.get('rayVersion')!r} != installed Ray {ray.__version__}")
    head = spec.get("headGroupSpec") or {}
    problems += group_errors(f"{path}.headGroupSpec", {**head, "replicas": 1, "minReplicas": 1, "maxReplicas": 1})
    if (head.get("rayStartParams") or {}).get("num-cpus") != "0":
        problems.append(f'{path}.headGroupSpec: the head must schedule no work (rayStartParams num-cpus "0")')
    names = [g.get("groupName") for g in spec.get("workerGroupSpecs") or []]
    if len(set(names)) != len(names):
        problems.append(f"{path}: duplicate worker group names {names}")
    for i, group in enumerate(spec.get("workerGroupSpecs") or []):
        problems += group_errors(f"{path}.workerGroupSpecs[{i}]", group)
    head_env = {e.get("name") for c in containers(head.get("template") or {}) for e in c.get("env") or []}
    if spec.get("gcsFaultToleranceOptions") is not None and {"RAY_REDIS_ADDRESS", "REDIS_PASSWORD"} & head_env:
        problems.append(f"{path}: RAY_REDIS_ADDRESS / REDIS_PASSWORD env with gcsFaultToleranceOptions")
    if spec.get("gcsFaultToleranceOptions") is None and "RAY_REDIS_ADDRESS" in head_env:
        problems.append(f"{path}: RAY_REDIS_ADDRESS without gcsFaultToleranceOptions")
    return problems


def container_errors(path: str, template: Obj) -> list[str]:
    problems: list[str] = []
    for c in containers(template):
        problems += [f"{path}: {p}" for p in image_errors(str(c.get("image", "")))]
        for env in c.get("env") or []:
            if SECRET_LIKE.search(str(env.get("name", ""))) and "value" in env:
                problems.append(f"{path}: {env['name']} is inline; take it from a Secret (valueFrom.secretKeyRef)")
    return problems


def rayjob_errors(spec: Obj) -> list[str]:
    problems: list[str] = []
    has_spec, selector = spec.get("rayClusterSpec") is not None, spec.get("clusterSelector")
    if has_spec == bool(selector):
        problems.append("exactly one of rayClusterSpec / clusterSelector is needed")
    if selector is not None and not (selector or {}).get("ray.io/cluster"):
        problems.append("clusterSelector needs a non-empty ray.io/cluster")
    ttl = spec.get("ttlSecondsAfterFinished", 0)
    if ttl < 0 or (ttl > 0 and not spec.get("shutdownAfterJobFinishes")):
        problems.append("ttlSecondsAfterFinished > 0 needs shutdownAfterJobFinishes (and must be >= 0)")
    if not isinstance(spec.get("activeDeadlineSeconds"), int) or spec["activeDeadlineSeconds"] <= 0:
        problems.append("activeDeadlineSeconds must be a positive integer (jobs stuck initialising)")
    if spec.get("submissionMode") not in SUBMISSION_MODES:
        problems.append(f"submissionMode {spec.get('submissionMode')!r} not in {sorted(SUBMISSION_MODES)}")
    if selector and spec.get("submissionMode") == "SidecarMode":
        problems.append("clusterSelector is not supported in SidecarMode")
    if spec.get("backoffLimit", 0) < 0:
        problems.append("backoffLimit must be >= 0")
    return problems


def operator_errors(obj: Obj) -> list[str]:
    """The KubeRay operator's validation that the CRD schema does not express, plus plray's own rules."""
    problems = name_errors(obj)
    for path, spec in cluster_specs(obj):
        problems += cluster_spec_errors(path, spec)
    for path, _, template in pod_templates(obj):
        problems += container_errors(path, template)
    if obj.get("kind") == "RayJob":
        problems += rayjob_errors(obj.get("spec") or {})
    if obj.get("kind") == "RayService":
        head = ((obj.get("spec") or {}).get("rayClusterConfig") or {}).get("headGroupSpec") or {}
        if (head.get("headService") or {}).get("metadata", {}).get("name"):
            problems.append("a RayService's headService must not set a name")
    return problems


# ---------------------------------------------------------------------- 3. pod templates
def pod_errors(obj: Obj) -> list[str]:
    """Kubernetes' own schemas, strict (kubernetes-validate): every pod template, as a PodTemplate, and
    the object's metadata (as a ConfigMap's: the CRD schemas leave metadata open)."""
    import kubernetes_validate

    wrapped = [("metadata", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata") or {}})]
    for path, _, template in pod_templates(obj):
        pod = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template}
        wrapped.append((path, pod))
    problems = []
    for path, resource in wrapped:
        try:
            kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{path}: {str(exc).splitlines()[0]}")
    return problems


# ---------------------------------------------------------------------- 4. serveConfigV2
def _models_in(annotation: Any) -> list[type]:
    """The pydantic model classes inside a field's annotation (Optional, List, Union, ...)."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def unknown_keys(data: Any, model: type, path: str = "") -> list[str]:
    """Keys of ``data`` that ``model`` (a pydantic model) does not declare, recursively (Ray ignores them)."""
    if not isinstance(data, dict):
        return []
    fields = model.model_fields  # type: ignore[attr-defined]
    names = {n: f for n, f in fields.items()} | {f.alias: f for f in fields.values() if f.alias}
    problems = []
    for key, value in data.items():
        if key not in names:
            problems.append(f"{path}{key}: unknown key of {model.__name__}")
            continue
        for sub in _models_in(names[key].annotation):
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                where = f"{path}{key}[{i}]." if isinstance(value, list) else f"{path}{key}."
                problems += unknown_keys(item, sub, where)
    return problems


def serve_application_errors(app: Any) -> list[str]:
    from plray.serve.app import build_app

    module, _, attr = app.import_path.partition(":")
    try:
        builder = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        return [f"import_path {app.import_path!r} does not import: {exc}"]
    if builder is not build_app:
        return [f"import_path {app.import_path!r} is not plray.serve.app:build_app"]
    problems = []
    try:
        builder(dict(app.args))  # the settings check; binds the deployment, starts nothing
    except (TypeError, ValueError) as exc:
        problems.append(f"args refused by build_app: {exc}")
    if not str(app.args.get("models", "")).startswith("s3://"):
        problems.append(f"args.models {app.args.get('models')!r} is not on object storage (pods share no disk)")
    return problems


def serve_errors(obj: Obj) -> list[str]:
    """The RayService's serveConfigV2 against Ray's schema, unknown keys, import_path and args."""
    if obj.get("kind") != "RayService":
        return []
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    text = (obj.get("spec") or {}).get("serveConfigV2")
    if not isinstance(text, str):
        return ["serveConfigV2 must be a string holding a Serve config"]
    try:
        data = yaml.safe_load(text)
        schema = ServeDeploySchema.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        return [f"serveConfigV2: {str(exc).splitlines()[0]}"]
    problems = unknown_keys(data, ServeDeploySchema)
    for app in schema.applications:
        problems += serve_application_errors(app)
    ports = {
        p.get("containerPort") for _, _, t in pod_templates(obj) for c in containers(t) for p in c.get("ports") or []
    }
    if schema.http_options.port not in ports:
        problems.append(f"Serve's port {schema.http_options.port} is not a container port of the pods")
    return problems


# ---------------------------------------------------------------------- 5. entrypoints
def repo_path(path: str) -> Path:
    """Where a path inside the image (``/home/ray/plray/...``, or relative to it) lives in the checkout."""
    if path.startswith(IMAGE_WORKDIR + "/"):
        return ROOT / path[len(IMAGE_WORKDIR) + 1 :]
    return ROOT / path


def entrypoint_errors(obj: Obj) -> list[str]:
    """A RayJob's entrypoint: ``plray run CONFIG ...`` that plray's parser accepts, CONFIG shipped and loading."""
    if obj.get("kind") != "RayJob":
        return []
    from plray.cli import build_parser
    from plray.experiments.schema import load_experiment

    argv = shlex.split(str((obj.get("spec") or {}).get("entrypoint", "")))
    if argv[:2] != ["plray", "run"]:
        return [f"entrypoint {argv[:2]} is not `plray run ...`"]
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit:
        return [f"plray's parser refuses {shlex.join(argv)!r}"]
    if not (args.run_dir or "").startswith("s3://"):
        return [f"--run-dir {args.run_dir!r} is not on object storage (pods share no disk)"]
    config = repo_path(args.config)
    if not config.is_file() or not str(config.resolve()).startswith(str((ROOT / "configs").resolve())):
        return [f"config {args.config} is not a shipped file under configs/ (the image copies configs/)"]
    try:
        load_experiment(config)
    except Exception as exc:  # any refusal of the loader is a broken manifest
        return [f"{args.config} does not load: {exc}"]
    return []


# ---------------------------------------------------------------------- 6. PodMonitor
def pods(objects: typing.Iterable[Obj]) -> list[tuple[dict[str, str], list[Obj]]]:
    """(labels, containers) of every Ray pod the objects make, with the labels KubeRay adds."""
    out = []
    for obj in objects:
        for _, node_type, template in pod_templates(obj):
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            labels.update({"ray.io/is-ray-node": "yes", "ray.io/node-type": node_type})
            out.append((labels, containers(template)))
    return out


def podmonitor_errors(obj: Obj, objects: typing.Iterable[Obj]) -> list[str]:
    """A PodMonitor selects plray's Ray pods and scrapes container ports that exist on them."""
    if obj.get("kind") != "PodMonitor" and "monitoring.coreos.com" not in str(obj.get("apiVersion")):
        return []
    if (obj.get("apiVersion"), obj.get("kind")) != ("monitoring.coreos.com/v1", "PodMonitor"):
        return [f"{obj.get('apiVersion')}/{obj.get('kind')} is not monitoring.coreos.com/v1 PodMonitor"]
    spec = obj.get("spec") or {}
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    selected = [p for p in pods(objects) if wanted and all(p[0].get(k) == v for k, v in wanted.items())]
    if not selected:
        return [f"selector {wanted} matches no Ray pod"]
    ports = {p.get("name"): p.get("containerPort") for _, cs in selected for c in cs for p in c.get("ports") or []}
    problems = []
    endpoints = spec.get("podMetricsEndpoints") or []
    for ep in endpoints:
        if ep.get("port") not in ports:
            problems.append(f"endpoint port {ep.get('port')!r} is no named container port of the selected pods")
        if ep.get("path", "/metrics") != "/metrics":
            problems.append(f"endpoint {ep.get('port')}: path {ep.get('path')!r}, the exporters serve /metrics")
    expected = {"metrics": 8080, "serve": 8000}  # Ray's metrics-export port; Serve's proxy (plray's /metrics)
    for name, number in expected.items():
        if name not in {ep.get("port") for ep in endpoints} or ports.get(name) != number:
            problems.append(f"no endpoint for port {name} ({number}) on the selected pods")
    return problems


# ---------------------------------------------------------------------- the checks, on every object
CHECKS: dict[str, Callable[[Obj], list[str]]] = {
    "crd": crd_errors,
    "operator": operator_errors,
    "pod": pod_errors,
    "serve": serve_errors,
    "entrypoint": entrypoint_errors,
}


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize(("directory", "index"), ALL_OBJECTS)
def test_every_manifest_passes(directory: str, index: int, check: str) -> None:
    obj = rendered(directory)[index]
    assert CHECKS[check](obj) == []


@pytest.mark.parametrize("directory", [str(d) for d in ALL_DIRS], ids=[label(d) for d in ALL_DIRS])
def test_podmonitors_match_the_pods(directory: str) -> None:
    objects = rendered(directory)
    monitors = [o for o in objects if o["kind"] == "PodMonitor"]
    assert monitors, "every kustomization carries the PodMonitor"
    for monitor in monitors:
        assert podmonitor_errors(monitor, objects) == []


def test_the_kustomizations_and_kinds() -> None:
    assert {label(d) for d in ALL_DIRS} >= {"base", "overlays/large-workers", "overlays/gpu", "overlays/gcs-ft"}
    kinds = sorted(o["kind"] for o in rendered(str(K8S_DIR / "base")))
    assert kinds == ["PodMonitor", "RayCluster", "RayJob", "RayJob", "RayService"]
    jobs = [o for o in rendered(str(K8S_DIR / "base")) if o["kind"] == "RayJob"]
    assert sorted(bool(j["spec"].get("clusterSelector")) for j in jobs) == [False, True]
    clusters = {o["metadata"]["name"] for o in rendered(str(K8S_DIR / "base")) if o["kind"] == "RayCluster"}
    for job in jobs:  # the clusterSelector names the RayCluster of the base
        selector = job["spec"].get("clusterSelector")
        assert not selector or selector["ray.io/cluster"] in clusters


def test_overlays_change_what_they_say() -> None:
    def cluster(directory: str) -> Obj:
        (obj,) = [o for o in rendered(str(K8S_DIR / directory)) if o["kind"] == "RayCluster"]
        return obj

    base_cpu = cluster("base")["spec"]["workerGroupSpecs"][0]
    large_cpu = cluster("overlays/large-workers")["spec"]["workerGroupSpecs"][0]
    assert large_cpu["maxReplicas"] > base_cpu["maxReplicas"]
    big = large_cpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(big["cpu"]) > int(base_cpu["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])
    groups = {g["groupName"]: g for g in cluster("overlays/gpu")["spec"]["workerGroupSpecs"]}
    assert groups["cpu"] == base_cpu
    assert groups["gpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    for obj in rendered(str(K8S_DIR / "overlays/gcs-ft")):
        for _, spec in cluster_specs(obj):
            if obj["kind"] in ("RayCluster", "RayService"):
                gcs = spec["gcsFaultToleranceOptions"]
                assert gcs["redisAddress"] and gcs["redisPassword"]["valueFrom"]["secretKeyRef"]["name"]


# ---------------------------------------------------------------------- broken copies fail
def _set(path: str, value: Any) -> Callable[[Obj], None]:
    """A mutation setting a dotted path (``a.b[0].c``) to ``value`` (None: delete it)."""
    parts = [int(p) if p.isdigit() else p for p in re.split(r"\.|\[|\]\.?", path) if p != ""]

    def mutate(obj: Obj) -> None:
        node: Any = obj
        for part in parts[:-1]:
            node = node[part]
        if value is None:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value

    return mutate


def _rename(path: str, old: str, new: str) -> Callable[[Obj], None]:
    """A mutation renaming key ``old`` of the mapping at ``path`` to ``new`` (a typo)."""

    def mutate(obj: Obj) -> None:
        node: Any = obj
        for part in [int(p) if p.isdigit() else p for p in re.split(r"\.|\[|\]\.?", path) if p != ""]:
            node = node[part]
        node[new] = node.pop(old)

    return mutate


def _serve_config(edit: Callable[[Obj], None]) -> Callable[[Obj], None]:
    """A mutation editing the RayService's serveConfigV2 document."""

    def mutate(obj: Obj) -> None:
        cfg = yaml.safe_load(obj["spec"]["serveConfigV2"])
        edit(cfg)
        obj["spec"]["serveConfigV2"] = yaml.safe_dump(cfg)

    return mutate


def _entrypoint(text: str) -> Callable[[Obj], None]:
    return _set("spec.entrypoint", text)


RC, JOB, JOB_SEL, SVC = (
    ("RayCluster", "plray"),
    ("RayJob", "plray-tiny"),
    ("RayJob", "plray-mountaincar-tiny"),
    (
        "RayService",
        "plray-api",
    ),
)
HEAD = "spec.headGroupSpec"
WORKER0 = "spec.workerGroupSpecs[0]"
JHEAD, SHEAD = "spec.rayClusterSpec.headGroupSpec", "spec.rayClusterConfig.headGroupSpec"
SWORKER0 = "spec.rayClusterConfig.workerGroupSpecs[0]"
LONG = "x" * 40

MUTATIONS: list[tuple[str, tuple[str, str], str, Callable[[Obj], None]]] = [
    # 1. CRD schema (strict)
    ("crd", RC, "typo-rayStartParams", _rename(HEAD, "rayStartParams", "rayStartParam")),
    ("crd", RC, "replicas-not-integer", _set(f"{WORKER0}.replicas", "two")),
    ("crd", RC, "typo-in-pod-spec", _rename(f"{HEAD}.template.spec", "volumes", "volume")),
    (
        "crd",
        JOB,
        "typo-shutdownAfterJobFinishes",
        _rename("spec", "shutdownAfterJobFinishes", "shutdownAfterJobFinish"),
    ),
    ("crd", JOB_SEL, "selector-value-not-string", _set("spec.clusterSelector", {"ray.io/cluster": 5})),
    ("crd", SVC, "serveConfigV2-not-string", _set("spec.serveConfigV2", {"applications": []})),
    ("crd", SVC, "unknown-field", _set("spec.rayClusterConfig.enableInTreeAutoscaler", True)),
    ("crd", SVC, "wrong-apiVersion", _set("apiVersion", "ray.io/v1alpha2")),
    # 2. operator rules
    ("operator", RC, "name-too-long", _set("metadata.name", "plray-" + "c" * 48)),
    ("operator", RC, "name-not-dns-1035", _set("metadata.name", "9plray")),
    ("operator", RC, "min-above-max", _set(f"{WORKER0}.minReplicas", 9)),
    ("operator", RC, "replicas-above-max", _set(f"{WORKER0}.replicas", 99)),
    ("operator", RC, "rayVersion-mismatch", _set("spec.rayVersion", "2.59.0")),
    ("operator", RC, "head-schedules-work", _set(f"{HEAD}.rayStartParams.num-cpus", "2")),
    ("operator", RC, "ray-image-version", _set(f"{HEAD}.template.spec.containers[0].image", "rayproject/ray:2.9.0")),
    (
        "operator",
        RC,
        "inline-credentials",
        _set(f"{WORKER0}.template.spec.containers[0].env[1]", {"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}),
    ),
    ("operator", JOB, "name-too-long", _set("metadata.name", "plray-" + LONG + "12")),
    ("operator", JOB, "ttl-without-shutdown", _set("spec.shutdownAfterJobFinishes", False)),
    ("operator", JOB, "spec-and-selector", _set("spec.clusterSelector", {"ray.io/cluster": "plray"})),
    ("operator", JOB, "no-deadline", _set("spec.activeDeadlineSeconds", None)),
    ("operator", JOB, "plray-image-version", _set(f"{JHEAD}.template.spec.containers[0].image", "plray:0.0.9")),
    ("operator", JOB_SEL, "neither-spec-nor-selector", _set("spec.clusterSelector", None)),
    ("operator", JOB_SEL, "selector-without-cluster", _set("spec.clusterSelector", {"app": "plray"})),
    ("operator", JOB_SEL, "bad-submission-mode", _set("spec.submissionMode", "K8sJob")),
    ("operator", SVC, "name-too-long", _set("metadata.name", "plray-" + LONG + "12")),
    ("operator", SVC, "rayVersion-mismatch", _set("spec.rayClusterConfig.rayVersion", "2.59.0")),
    (
        "operator",
        SVC,
        "inline-token",
        _set(f"{SHEAD}.template.spec.containers[0].env[0]", {"name": "PLRAY_SERVE_TOKEN", "value": "t"}),
    ),
    ("operator", ("PodMonitor", "plray"), "name-invalid", _set("metadata.name", "Plray_Metrics")),
    # 3. pod templates (Kubernetes' schema)
    ("pod", RC, "container-typo", _rename(f"{HEAD}.template.spec.containers[0]", "imagePullPolicy", "imagePullPolcy")),
    ("pod", RC, "port-not-integer", _set(f"{WORKER0}.template.spec.containers[0].ports[0].containerPort", "http")),
    ("pod", JOB, "resources-typo", _rename(f"{JHEAD}.template.spec.containers[0]", "resources", "resource")),
    (
        "pod",
        SVC,
        "secretKeyRef-typo",
        _set(f"{SWORKER0}.template.spec.containers[0].env[0].valueFrom.secretKeyRef.optinal", True),
    ),
    ("pod", JOB_SEL, "metadata-typo", _rename("metadata", "labels", "label")),
    ("pod", ("PodMonitor", "plray"), "metadata-label-not-string", _set("metadata.labels.tier", 3)),
    ("pod", SVC, "emptyDir-typo", _rename(f"{SWORKER0}.template.spec.volumes[0]", "emptyDir", "emptydir")),
    # 4. serveConfigV2
    (
        "serve",
        SVC,
        "unknown-autoscaling-key",
        _serve_config(lambda c: c["applications"][0]["deployments"][0]["autoscaling_config"].update(max_replica=4)),
    ),
    ("serve", SVC, "unknown-application-key", _serve_config(lambda c: c["applications"][0].update(import_paths="x"))),
    (
        "serve",
        SVC,
        "import-path-missing",
        _serve_config(lambda c: c["applications"][0].update(import_path="plray.serve.app:build_ap")),
    ),
    ("serve", SVC, "unknown-setting", _serve_config(lambda c: c["applications"][0]["args"].update(max_bodybytes=1))),
    ("serve", SVC, "models-local", _serve_config(lambda c: c["applications"][0]["args"].update(models="/models"))),
    (
        "serve",
        SVC,
        "schema-refuses",
        _serve_config(lambda c: c["applications"][0]["deployments"][0].update(max_ongoing_requests="many")),
    ),
    ("serve", SVC, "port-not-exposed", _serve_config(lambda c: c["http_options"].update(port=8001))),
    # 5. entrypoints
    (
        "entrypoint",
        JOB,
        "missing-config",
        _entrypoint("plray run /home/ray/plray/configs/experiments/nope.yaml --run-dir s3://plray/runs/x"),
    ),
    (
        "entrypoint",
        JOB,
        "unknown-command",
        _entrypoint("plray runn configs/experiments/tiny.yaml --run-dir s3://plray/runs/x"),
    ),
    ("entrypoint", JOB, "not-plray", _entrypoint("python train.py")),
    (
        "entrypoint",
        JOB,
        "unknown-flag",
        _entrypoint("plray run configs/experiments/tiny.yaml --rundir s3://plray/runs/x"),
    ),
    ("entrypoint", JOB, "local-run-dir", _entrypoint("plray run configs/experiments/tiny.yaml --run-dir runs/tiny")),
    (
        "entrypoint",
        JOB_SEL,
        "not-a-config",
        _entrypoint("plray run /home/ray/plray/pyproject.toml --run-dir s3://plray/runs/x"),
    ),
    (
        "entrypoint",
        JOB_SEL,
        "config-does-not-load",
        _entrypoint("plray run configs/agents/mountaincar-position.yaml --run-dir s3://plray/runs/x"),
    ),
]


@pytest.mark.parametrize(
    ("check", "target", "mutate"), [pytest.param(c, t, m, id=f"{c}:{t[0]}/{t[1]}:{n}") for c, t, n, m in MUTATIONS]
)
def test_a_broken_copy_fails(check: str, target: tuple[str, str], mutate: Callable[[Obj], None]) -> None:
    obj = base_object(*target)
    assert CHECKS[check](obj) == [], "the unbroken object passes"
    mutate(obj)
    assert CHECKS[check](obj), f"{check} missed the mutation"


def test_every_manifest_has_a_broken_copy_for_every_check_that_applies() -> None:
    covered = {(c, t) for c, t, _, _ in MUTATIONS}
    applies = {"crd": [RC, JOB, JOB_SEL, SVC], "operator": [RC, JOB, JOB_SEL, SVC, ("PodMonitor", "plray")]}
    applies |= {"pod": [RC, JOB, JOB_SEL, SVC, ("PodMonitor", "plray")], "serve": [SVC], "entrypoint": [JOB, JOB_SEL]}
    missing = [(c, t) for c, targets in applies.items() for t in targets if (c, t) not in covered]
    assert missing == []


PODMONITOR_MUTATIONS = {
    "selector-matches-nothing": _set("spec.selector.matchLabels", {"app.kubernetes.io/part-of": "plray-x"}),
    "no-selector": _set("spec.selector", {}),
    "port-name-typo": _set("spec.podMetricsEndpoints[0].port", "metric"),
    "no-serve-endpoint": _set("spec.podMetricsEndpoints", [{"port": "metrics", "path": "/metrics"}]),
    "wrong-path": _set("spec.podMetricsEndpoints[1].path", "/stats"),
    "wrong-apiVersion": _set("apiVersion", "monitoring.coreos.com/v1alpha1"),
}


@pytest.mark.parametrize("mutate", list(PODMONITOR_MUTATIONS.values()), ids=list(PODMONITOR_MUTATIONS))
def test_a_broken_podmonitor_fails(mutate: Callable[[Obj], None]) -> None:
    objects = rendered(str(K8S_DIR / "base"))
    monitor = base_object("PodMonitor", "plray")
    assert podmonitor_errors(monitor, objects) == []
    mutate(monitor)
    assert podmonitor_errors(monitor, objects)


def test_podmonitor_needs_the_pods_ports() -> None:
    objects = [copy.deepcopy(o) for o in rendered(str(K8S_DIR / "base"))]
    for obj in objects:  # drop the named serve ports: nothing to scrape /metrics of the replicas from
        for _, _, template in pod_templates(obj):
            for c in containers(template):
                c["ports"] = [p for p in c.get("ports") or [] if p.get("name") != "serve"]
    (monitor,) = [o for o in objects if o["kind"] == "PodMonitor"]
    assert podmonitor_errors(monitor, objects)


def test_strict_schema_rejects_unknown_fields_and_reads_int_or_string() -> None:
    import jsonschema

    schema = strict_schema(
        {
            "type": "object",
            "properties": {
                "a": {"type": "object", "properties": {"b": {"type": "string"}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
                "map": {"type": "object", "additionalProperties": {"type": "string"}},
                "q": {"x-kubernetes-int-or-string": True},
                "n": {"type": "string", "nullable": True},
            },
        }
    )
    validator = jsonschema.Draft7Validator(schema)
    assert not list(validator.iter_errors({"a": {"b": "x"}, "free": {"z": 1}, "map": {"k": "v"}, "q": 1, "n": None}))
    assert not list(validator.iter_errors({"q": "2Gi"}))
    assert list(validator.iter_errors({"a": {"c": "x"}}))
    assert list(validator.iter_errors({"z": 1}))
    assert list(validator.iter_errors({"q": 1.5}))


# ---------------------------------------------------------------------- one source of the Serve config
def test_serve_config_v2_is_generated_from_deploy_serve_config() -> None:
    service = yaml.safe_load(RAYSERVICE_PATH.read_text())
    assert service["spec"]["serveConfigV2"] == serve_config_v2()
    deploy = yaml.safe_load((ROOT / "deploy" / "serve_config.yaml").read_text())
    generated = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert generated["applications"][0]["args"].pop("models") == MODELS_URI
    deploy["applications"][0]["args"].pop("models")
    assert generated == deploy


def test_a_stale_serve_config_v2_is_detected(tmp_path: Path) -> None:
    source = yaml.safe_load((ROOT / "deploy" / "serve_config.yaml").read_text())
    source["applications"][0]["args"]["max_batch"] = 7
    edited = tmp_path / "serve_config.yaml"
    edited.write_text(yaml.safe_dump(source))
    current = RAYSERVICE_PATH.read_text()
    regenerated = replace_serve_config_v2(current, serve_config_v2(path=edited))
    assert regenerated != current
    assert yaml.safe_load(regenerated)["spec"]["serveConfigV2"] == serve_config_v2(path=edited)
    assert replace_serve_config_v2(regenerated, serve_config_v2()) == current  # and back: nothing else moves


def test_python_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\nnamePrefix: x-\n")
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    with pytest.raises(ValueError, match="not supported"):
        render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\npatches: [{path: p.yaml}]\n")
    (tmp_path / "p.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n")
    with pytest.raises(ValueError, match="built-in kinds"):
        render(tmp_path)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed: the Python renderer is used alone")
@pytest.mark.parametrize("directory", [str(d) for d in ALL_DIRS], ids=[label(d) for d in ALL_DIRS])
def test_python_renderer_equals_kubectl_kustomize(directory: str) -> None:
    out = subprocess.run(["kubectl", "kustomize", directory], capture_output=True, text=True, timeout=60, check=True)

    def key(o: Obj) -> tuple[str, str, str]:
        return o["apiVersion"], o["kind"], o["metadata"]["name"]

    theirs = sorted((d for d in yaml.safe_load_all(out.stdout) if d), key=key)
    assert sorted(rendered(directory), key=key) == theirs
