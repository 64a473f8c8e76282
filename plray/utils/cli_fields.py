"""Command-line flags generated from config dataclasses (fields, types, defaults, field docstrings).

The config dataclasses own each setting's name, type, default and one-line doc; a command adds
their fields as flags instead of repeating them, as tyro does for CleanRL's configs::

    add_dataclass_arguments(parser, FourRoomsSpec, flags={"num_goals": FlagSpec(names=("--goals",))})
    spec = dataclass_from_args(FourRoomsSpec, parser.parse_args(argv))

Annotations map to flags as follows (``X | None`` maps as ``X``; None stays the default):

* ``bool``: ``--name`` / ``--no-name``;
* ``int``, ``float``, ``str``: one value, checked with a message that names what was expected;
* ``Literal[...]``: ``choices``;
* ``list[X]``, ``tuple[X, ...]``: one or more values (``tuple[X, Y]``: exactly that many).

A field's help is its docstring (an attribute docstring under the field, or its line in the class
docstring's ``Attributes:`` section) followed by its default. Field ``metadata={"check": fn}`` (see
:mod:`plray.utils.schema`) and ``metadata={"choices": ...}`` apply on the command line too.
Nested dataclasses and mappings are not flags: leave them out with ``only`` / ``exclude``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import functools
import inspect
import itertools
import re
import textwrap
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")

__all__ = [
    "FlagSpec",
    "LazyArgumentParser",
    "add_dataclass_arguments",
    "dataclass_from_args",
    "field_docs",
    "given_values",
]


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    """How one field appears on the command line, where it differs from what its annotation gives."""

    names: tuple[str, ...] = ()
    """Option strings listed before the field's own ``--field-name`` (names scripts already use)."""
    negative_names: tuple[str, ...] = ()
    """bool fields: extra flags that set the field to False (e.g. ``--raw-inputs`` for ``normalize_inputs``)."""
    choices: Sequence[Any] | None = None
    """Allowed values, imported from the module that owns them (overrides a ``Literal``)."""
    type: Callable[[str], Any] | None = None
    """Parser of one value (overrides the annotation's)."""
    metavar: str | None = None
    """Placeholder of the value in ``--help``."""
    help: str | None = None
    """Help where the field has no docstring."""
    note: str | None = None
    """Text appended to the docstring (command-line specifics, e.g. the list of valid names)."""
    default: Any = dataclasses.field(default_factory=lambda: dataclasses.MISSING)
    """The command's default where it differs from the field's."""
    default_text: str | None = None
    """Replaces the default shown in ``--help`` (e.g. ``the task's``)."""


class LazyArgumentParser(argparse.ArgumentParser):
    """An argument parser whose arguments are added on first use (parsing or ``--help``).

    Subcommands whose flags come from heavy modules (torch) defer them, so ``plray fourrooms`` does not
    import what ``plray extract`` needs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[argparse.ArgumentParser], None]] = []

    def defer(self, add: Callable[[argparse.ArgumentParser], None]) -> None:
        """Call ``add(self)`` before this parser first parses or formats its help."""
        self._deferred.append(add)

    def populate(self) -> None:
        """Add the deferred arguments now."""
        while self._deferred:
            self._deferred.pop(0)(self)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self.populate()
        return super().parse_known_args(*args, **kwargs)

    def _parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self.populate()
        return super()._parse_known_args(*args, **kwargs)

    def format_help(self) -> str:
        self.populate()
        return super().format_help()

    def format_usage(self) -> str:
        self.populate()
        return super().format_usage()


# ------------------------------------------------------------------------------------------ docstrings
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def _clean(text: str) -> str:
    """One line of plain text from reST: roles and double backticks dropped, whitespace collapsed."""
    text = _ROLE.sub(r"\1", text).replace("``", "")
    return " ".join(text.split())


def _attributes_section(doc: str) -> dict[str, str]:
    """``name: text`` entries of a Google-style ``Attributes:`` section (continuation lines indented)."""
    out: dict[str, str] = {}
    lines = inspect.cleandoc(doc).splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return out
    name, indent = None, None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent or depth == 0:
            break
        match = re.match(r"(\w+)(?: \([^)]*\))?: ?(.*)", line.strip())
        if depth == indent and match:
            name = match.group(1)
            out[name] = match.group(2)
        elif name is not None:
            out[name] += " " + line.strip()
    return out


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """Docstrings written under annotated class attributes (``x: int = 0`` then ``\"\"\"doc\"\"\"``)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # built at run time, or no source shipped
        return {}
    body = next((n.body for n in ast.parse(source).body if isinstance(n, ast.ClassDef)), [])
    out = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            out[node.target.id] = inspect.cleandoc(after.value.value)
    return out


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Each documented field's docstring as one plain line, base classes first, attribute docstrings winning."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        section = _attributes_section(klass.__doc__) if klass.__doc__ else {}
        docs.update({k: _clean(v) for k, v in {**section, **_attribute_docstrings(klass)}.items()})
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in docs.items() if k in names}


# ------------------------------------------------------------------------------------------ value parsers
def parse_int(text: str) -> int:
    """An integer; argparse reports anything else as ``expected an integer``."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def parse_float(text: str) -> float:
    """A number (``nan`` and ``inf`` included: checks belong to the config)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _checked(parse: Callable[[str], Any], check: Callable[[Any], str | None]) -> Callable[[str], Any]:
    """``parse`` followed by a schema field check, whose message becomes argparse's."""

    def parse_and_check(text: str) -> Any:
        value = parse(text)
        if message := check(value):
            raise argparse.ArgumentTypeError(message)
        return value

    parse_and_check.__name__ = getattr(parse, "__name__", "value")
    return parse_and_check


_PARSERS: dict[Any, Callable[[str], Any]] = {int: parse_int, float: parse_float, str: str}


# ------------------------------------------------------------------------------------------ flags
def _strip_none(tp: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if get_origin(tp) in (typing.Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return options[0]
    return tp


def _value_kwargs(tp: Any, name: str) -> dict[str, Any]:
    """argparse keywords (type, choices, nargs) of one annotation."""
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        return {"type": _PARSERS.get(type(allowed[0]), str), "choices": allowed}
    if origin in (list, tuple):
        items = get_args(tp) or (str,)
        fixed = origin is tuple and items[-1] is not Ellipsis
        item = _value_kwargs(_strip_none(items[0]), name)
        if "nargs" in item or (fixed and len(set(items)) > 1):
            raise TypeError(f"{name}: {tp} cannot be a flag (nested or mixed items)")
        return {**item, "nargs": len(items) if fixed else "+"}
    if tp in _PARSERS:
        return {"type": _PARSERS[tp]}
    raise TypeError(f"{name}: {tp} cannot be a flag; leave the field out with only= or exclude=")


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _shown(value: Any, flag: str, is_bool: bool) -> str:
    if is_bool:
        return flag if value else "--no-" + flag[2:]
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return str(value)


def _help(f: dataclasses.Field[Any], cls: type, spec: FlagSpec, default: Any, flag: str, is_bool: bool) -> str:
    """The field's docstring (or ``spec.help``), ``spec.note`` and the default, ready for argparse."""
    text = spec.help or field_docs(cls).get(f.name)
    if text is None:
        raise TypeError(f"{cls.__name__}.{f.name} has no docstring; give FlagSpec(help=...)")
    text = text.rstrip().removesuffix(".")
    if spec.note:
        text += f"; {spec.note}"
    if spec.default_text is not None:
        text += f" (default: {spec.default_text})"
    elif default is not dataclasses.MISSING and default is not None:
        text += f" (default: {_shown(default, flag, is_bool)})"
    return text.replace("%", "%%")


def _add_field(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    f: dataclasses.Field[Any],
    tp: Any,
    dest: str,
    flag: str,
    spec: FlagSpec,
    overrides_only: bool,
) -> None:
    """One field's flag(s)."""
    default = _default_of(f) if spec.default is dataclasses.MISSING else spec.default
    names = list(dict.fromkeys((*spec.names, flag)))
    tp = _strip_none(tp)
    is_bool = tp is bool
    kwargs: dict[str, Any] = {"dest": dest, "help": _help(f, cls, spec, default, names[0], is_bool)}
    if default is dataclasses.MISSING:
        kwargs["required"] = True
    else:
        kwargs["default"] = argparse.SUPPRESS if overrides_only else default
    if is_bool:
        parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kwargs)
        for negative in spec.negative_names:
            parser.add_argument(
                negative, dest=dest, action="store_false", default=argparse.SUPPRESS, help=f"same as --no-{flag[2:]}"
            )
        return
    if spec.type is None:
        kwargs |= _value_kwargs(tp, f"{cls.__name__}.{f.name}")
    else:  # a parser of the caller's: the annotation may be one argparse cannot map (int | str)
        with contextlib.suppress(TypeError):
            kwargs |= _value_kwargs(tp, f"{cls.__name__}.{f.name}")
        kwargs["type"] = spec.type
    if (check := f.metadata.get("check")) is not None and kwargs.get("nargs") is None:
        kwargs["type"] = _checked(kwargs["type"], check)
    choices = spec.choices if spec.choices is not None else f.metadata.get("choices", kwargs.get("choices"))
    if choices is not None:
        kwargs["choices"] = tuple(choices)
    if spec.metavar is not None:
        kwargs["metavar"] = spec.metavar
    parser.add_argument(*names, **kwargs)


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    prefix: str = "",
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    flags: Mapping[str, FlagSpec] | None = None,
    overrides_only: bool = False,
) -> list[str]:
    """Add one flag per field of dataclass ``cls``; returns the field names added, in field order.

    Args:
        parser: the parser (or argument group) to add to.
        cls: a dataclass whose fields have docstrings (see :func:`field_docs`).
        prefix: put before every flag and destination: ``prefix="p-learning-"`` gives
            ``--p-learning-lr`` stored as ``args.p_learning_lr``.
        only: the fields to add (default: all), in field order.
        exclude: fields to leave out.
        flags: per-field :class:`FlagSpec` (names scripts use, choices from their owner, a stricter
            parser, help where the docstring is missing).
        overrides_only: flags not given leave no attribute on the namespace, so
            :func:`given_values` holds only what the command line set (for overrides of defaults that
            live elsewhere).

    Raises:
        TypeError: a chosen field's annotation has no flag form, a field has no docstring nor help, or
            ``only`` / ``flags`` names a field ``cls`` does not have.
    """
    flags = dict(flags or {})
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    chosen = list(fields) if only is None else list(only)
    unknown = sorted((set(chosen) | set(flags) | set(exclude)) - set(fields))
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {unknown[0]!r}")
    added = [name for name in fields if name in chosen and name not in set(exclude)]
    for name in added:
        flag = "--" + (prefix + name).replace("_", "-")
        dest = (prefix + name).replace("-", "_")
        _add_field(parser, cls, fields[name], hints[name], dest, flag, flags.get(name, FlagSpec()), overrides_only)
    return added


def given_values(
    cls: type, args: argparse.Namespace, *, prefix: str = "", only: Iterable[str] | None = None
) -> dict[str, Any]:
    """``{field: value}`` of ``cls``'s fields found on ``args`` (lists become tuples for tuple fields).

    Pass the ``only`` given to :func:`add_dataclass_arguments` when another dataclass on the same parser
    has a field of the same name (both read ``args.seed``); the result follows its order.
    """
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    out: dict[str, Any] = {}
    for name in names if only is None else [n for n in only if n in names]:
        dest = (prefix + name).replace("-", "_")
        if not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        if isinstance(value, list) and get_origin(_strip_none(hints[name])) is tuple:
            value = tuple(value)
        out[name] = value
    return out


def dataclass_from_args(
    cls: type[T], args: argparse.Namespace, *, prefix: str = "", only: Iterable[str] | None = None, **fixed: Any
) -> T:
    """``cls`` built from the flags :func:`add_dataclass_arguments` added; ``fixed`` sets or replaces fields.

    Fields without a flag on ``args`` keep the dataclass default. The result equals ``cls(**values)``
    for the values the flags carried; validation stays the caller's (``cls.validate()``).
    """
    return cls(**{**given_values(cls, args, prefix=prefix, only=only), **fixed})
