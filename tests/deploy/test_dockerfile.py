"""deploy/Dockerfile and .dockerignore, checked without a Docker engine.

The image must be Ray's own at the installed Ray version (= the manifests' rayVersion), install
torch at the Makefile's pin and then the project from its pyproject (the steps ``make test``
proves), without a venv, as the base image's non-root user, keeping wget (KubeRay's Serve readiness
probe execs it); and the build context must leave out the venv, git, runs and caches. Each check
also runs on deliberately broken copies, which must fail it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
import ray

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CPU_BASE = re.compile(r"^rayproject/ray:(?P<version>\d+\.\d+\.\d+)-py311-cpu$")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def build_args(text: str) -> dict[str, str]:
    """ARG defaults (``ARG NAME=value``)."""
    args = {}
    for word, rest in instructions(text):
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name.strip()] = value.strip().strip('"')
    return args


def expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)


def makefile_torch_pin() -> str:
    match = re.search(r"torch==([\w.+]+)", (ROOT / "Makefile").read_text())
    assert match, "the Makefile pins torch"
    return match.group(1)


def base_image_errors(text: str) -> list[str]:
    froms = [expand(rest, build_args(text)).split()[0] for word, rest in instructions(text) if word == "FROM"]
    if len(froms) != 1:
        return [f"expected one FROM, got {froms}"]
    match = CPU_BASE.match(froms[0])
    if match is None:
        return [f"base image {froms[0]!r} is not rayproject/ray:<version>-py311-cpu"]
    if match.group("version") != ray.__version__:
        return [f"base image Ray {match.group('version')} != installed Ray {ray.__version__}"]
    return []


def install_errors(text: str) -> list[str]:
    """torch first at the Makefile's pin from the CPU index, then the project (``pip install .``)."""
    args = build_args(text)
    runs = [expand(rest, args) for word, rest in instructions(text) if word == "RUN"]
    pips = [shlex.split(r) for r in runs if "pip install" in r]
    problems = []
    torch = [i for i, cmd in enumerate(pips) if any(a.startswith("torch==") for a in cmd)]
    project = [i for i, cmd in enumerate(pips) if "." in cmd]
    if not torch:
        problems.append("no pinned torch install")
    else:
        cmd = pips[torch[0]]
        if f"torch=={makefile_torch_pin()}" not in cmd:
            problems.append(
                f"torch pin {[a for a in cmd if a.startswith('torch==')]} != Makefile's {makefile_torch_pin()}"
            )
        if "https://download.pytorch.org/whl/cpu" not in cmd:
            problems.append("torch does not come from the CPU index")
    if not project or (torch and project[0] < torch[0]):
        problems.append("the project (`pip install .`) must be installed, after torch")
    if any("--no-cache-dir" not in cmd for cmd in pips):
        problems.append("pip installs must use --no-cache-dir")
    steps = instructions(text)
    copy_at = [i for i, (word, rest) in enumerate(steps) if word in ("COPY", "ADD") and "pyproject.toml" in rest]
    install_at = [i for i, (word, rest) in enumerate(steps) if word == "RUN" and "." in shlex.split(expand(rest, args))]
    if not copy_at or not install_at or copy_at[0] > install_at[0]:
        problems.append("the project's pyproject.toml is not copied before its install")
    return problems


def user_errors(text: str) -> list[str]:
    users = [rest.split(":")[0] for word, rest in instructions(text) if word == "USER"]
    if users and users[-1] in ("root", "0"):
        return ["the image ends as root; stay the base image's user ray (1000)"]
    return []


def forbidden_errors(text: str) -> list[str]:
    body = " ".join(rest for word, rest in instructions(text) if word == "RUN")
    problems = []
    if re.search(r"\bvenv\b|virtualenv", body):
        problems.append("no venv: install into the base image's Python")
    if (
        re.search(r"(apt(-get)?|dpkg|conda)\s+(remove|purge|-r|uninstall)[^&;]*\bwget\b", body)
        or "rm /usr/bin/wget" in body
    ):
        problems.append("wget must stay (KubeRay's Serve readiness probe)")
    return problems


def dockerfile_errors(text: str) -> list[str]:
    return base_image_errors(text) + install_errors(text) + user_errors(text) + forbidden_errors(text)


def test_dockerfile_passes() -> None:
    assert dockerfile_errors(DOCKERFILE.read_text()) == []


def test_the_makefile_pin_and_the_project_ray_pin_agree() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert f"ray[rllib,tune,serve]=={ray.__version__}" in text
    assert re.search(r'"torch>=[\d.]+,<[\d.]+"', text)
    major_minor = ".".join(makefile_torch_pin().split(".")[:2])
    assert f"torch>={major_minor}" in text


def _sub(old: str, new: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        assert old in text, old
        return text.replace(old, new)

    return mutate


DOCKERFILE_MUTATIONS = {
    "base-version": _sub(f"rayproject/ray:{ray.__version__}-py311-cpu", "rayproject/ray:2.9.0-py311-cpu"),
    "base-gpu-default": _sub("py311-cpu", "py311-gpu"),
    "torch-pin": _sub(f"TORCH_VERSION={makefile_torch_pin()}", "TORCH_VERSION=2.5.0"),
    "torch-index": _sub("whl/cpu", "whl/cu124"),
    "no-project-install": _sub("pip install --no-cache-dir . &&", "true &&"),
    "no-pyproject": _sub("COPY --chown=1000:100 pyproject.toml README.md ./", "COPY --chown=1000:100 README.md ./"),
    "venv": _sub("WORKDIR /home/ray/plray", "WORKDIR /home/ray/plray\nRUN python -m venv /home/ray/venv"),
    "root": _sub("USER 1000", "USER root"),
    "root-at-the-end": lambda text: text + "USER 0\n",
    "wget-removed": lambda text: text + "RUN sudo apt-get remove -y wget\n",
}


@pytest.mark.parametrize("mutate", list(DOCKERFILE_MUTATIONS.values()), ids=list(DOCKERFILE_MUTATIONS))
def test_a_broken_dockerfile_fails(mutate: Callable[[str], str]) -> None:
    assert dockerfile_errors(mutate(DOCKERFILE.read_text()))


def test_the_gpu_build_arg_is_documented() -> None:
    text = DOCKERFILE.read_text()
    assert build_args(text)["BASE_IMAGE"] == f"rayproject/ray:{ray.__version__}-py311-cpu"
    assert f"BASE_IMAGE=rayproject/ray:{ray.__version__}-py311-gpu" in text
    assert "BASE_IMAGE" in (ROOT / "k8s" / "overlays" / "gpu" / "kustomization.yaml").read_text()


# ---------------------------------------------------------------------- .dockerignore
def pattern_regex(pattern: str) -> str:
    """A .dockerignore pattern as a regex (Go's filepath.Match, plus ``**`` for any number of directories)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            out, i = out + "[" + ("^" + body[1:] if body.startswith(("!", "^")) else body) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides (``!`` re-includes)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        regex = pattern_regex(pat.strip().lstrip("/").removeprefix("./").rstrip("/"))
        if any(re.fullmatch(regex, c) for c in candidates):
            verdict = not negate
    return verdict


def dockerignore_patterns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def copied_sources(text: str) -> list[str]:
    sources = []
    for word, rest in instructions(text):
        if word == "COPY":
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            sources += words[:-1]
    return sources


MUST_SEND = ["pyproject.toml", "README.md", "plray/cli.py", "plray/serve/app.py", "configs/experiments/tiny.yaml"]
MUST_NOT_SEND = [
    ".venv/bin/python",
    ".git/HEAD",
    "runs/demo/results.md",
    "plray/__pycache__/cli.cpython-311.pyc",
    "plray/serve/__pycache__/app.cpython-311.pyc",
    ".pytest_cache/v/x",
    ".ruff_cache/x",
    "bench/results/serve.json",
    "plray.egg-info/PKG-INFO",
]


def dockerignore_errors(ignore_text: str, dockerfile_text: str) -> list[str]:
    patterns = dockerignore_patterns(ignore_text)
    problems = [f"{p} is left out of the build context" for p in MUST_SEND if ignored(p, patterns)]
    problems += [f"{p} is sent to the build" for p in MUST_NOT_SEND if not ignored(p, patterns)]
    for source in copied_sources(dockerfile_text):
        probe = source if (ROOT / source).is_file() else f"{source.rstrip('/')}/__init__.py"
        if ignored(probe, patterns) and ignored(source, patterns):
            problems.append(f"COPY {source}: excluded by .dockerignore")
        if not (ROOT / source).exists():
            problems.append(f"COPY {source}: no such path in the repository")
    return problems


def test_dockerignore_passes() -> None:
    assert dockerignore_errors(DOCKERIGNORE.read_text(), DOCKERFILE.read_text()) == []
    patterns = dockerignore_patterns(DOCKERIGNORE.read_text())
    assert ".venv" in patterns and ".git" in patterns


DOCKERIGNORE_MUTATIONS = {
    "venv-sent": lambda t: t.replace("\n.venv\n", "\n").replace("*\n", "", 1),
    "git-sent": lambda t: t.replace("\n.git\n", "\n").replace("*\n", "", 1),
    "caches-sent": lambda t: t.replace("**/__pycache__\n", "").replace("**/*.py[cod]\n", "").replace("*\n", "", 1),
    "package-excluded": lambda t: t + "plray\n",
    "configs-excluded": lambda t: t.replace("!configs\n", ""),
}


@pytest.mark.parametrize("mutate", list(DOCKERIGNORE_MUTATIONS.values()), ids=list(DOCKERIGNORE_MUTATIONS))
def test_a_broken_dockerignore_fails(mutate: Callable[[str], str]) -> None:
    assert dockerignore_errors(mutate(DOCKERIGNORE.read_text()), DOCKERFILE.read_text())


def test_a_copy_of_a_missing_path_fails() -> None:
    text = DOCKERFILE.read_text().replace("COPY --chown=1000:100 configs", "COPY --chown=1000:100 configz")
    assert dockerignore_errors(DOCKERIGNORE.read_text(), text)
