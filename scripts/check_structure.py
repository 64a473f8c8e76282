"""List import cycles and long functions; exit 1 when either list is non-empty.

Two checks, both static (the code is parsed with :mod:`ast`, never imported):

* **Import cycles** among ``plray`` modules, counting only module-level imports (imports inside
  functions, and inside ``if TYPE_CHECKING:`` blocks, are not edges: they do not run at import time).
  A package ``plray.x`` is the module ``plray/x/__init__.py``; ``from plray.x import y`` is an edge to
  ``plray.x.y`` when that module exists, else to ``plray.x``.
* **Long functions**: every function or method (nested ones included) whose body spans more than
  ``--max-lines`` source lines (default 80, decorators and docstring included), in ``plray/`` and ``bench/``.

Usage::

    python scripts/check_structure.py            # both checks over plray/ and bench/
    python scripts/check_structure.py --max-lines 80 --root .
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "plray"


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of ``path`` (``plray/core/x.py`` -> ``plray.core.x``; ``__init__`` -> package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    """Whether an ``if`` test is ``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _module_level_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run at import time (top level, or inside top-level try/if, not TYPE_CHECKING)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _module_level_imports(node.body)
            yield from _module_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _module_level_imports(block)


def _resolve_from(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    """Absolute module named by a ``from ... import`` (relative levels resolved against ``current``)."""
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _all_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in the module, function-level ones included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def import_graph(root: Path, deferred: bool = False) -> dict[str, set[str]]:
    """Map every ``plray`` module to the ``plray`` modules it imports at module level.

    With ``deferred``, imports inside functions (and ``TYPE_CHECKING`` blocks) count too: this shows the
    cycles that function-level imports only hide.
    """
    files = {module_name(p, root): p for p in sorted((root / PACKAGE).rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        nodes = _all_imports(tree) if deferred else _module_level_imports(tree.body)
        for node in nodes:
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve_from(node, name, path.name == "__init__.py")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted, list sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def long_functions(root: Path, dirs: tuple[str, ...], max_lines: int) -> list[tuple[str, int, str, int]]:
    """``(file, line, qualified name, length)`` for every function longer than ``max_lines`` lines."""
    out: list[tuple[str, int, str, int]] = []
    for d in dirs:
        for path in sorted((root / d).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            rel = str(path.relative_to(root))

            def walk(node: ast.AST, prefix: str, rel: str = rel) -> None:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        qual = f"{prefix}{child.name}"
                        if not isinstance(child, ast.ClassDef):
                            start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                            length = (child.end_lineno or child.lineno) - start + 1
                            if length > max_lines:
                                out.append((rel, child.lineno, qual, length))
                        walk(child, qual + ".")
                    else:
                        walk(child, prefix)

            walk(tree, "")
    return out


def main(argv: list[str] | None = None) -> int:
    """Print both lists; return 0 when both are empty, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--max-lines", type=int, default=80)
    parser.add_argument(
        "--deferred", action="store_true", help="also report cycles through function-level imports (informational)"
    )
    args = parser.parse_args(argv)
    found_cycles = cycles(import_graph(args.root))
    found_long = long_functions(args.root, (PACKAGE, "bench"), args.max_lines)
    print(f"import cycles (module-level imports in {PACKAGE}/): {len(found_cycles)}")
    for component in found_cycles:
        print("  " + " <-> ".join(component))
    print(f"functions over {args.max_lines} lines ({PACKAGE}/, bench/): {len(found_long)}")
    for rel, line, qual, length in found_long:
        print(f"  {rel}:{line} {qual} {length}")
    if args.deferred:
        hidden = cycles(import_graph(args.root, deferred=True))
        print(f"cycles counting function-level imports too (informational): {len(hidden)}")
        for component in hidden:
            print("  " + " <-> ".join(component))
    return 1 if found_cycles or found_long else 0


if __name__ == "__main__":
    sys.exit(main())
