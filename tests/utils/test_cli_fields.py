"""Flags generated from dataclasses: every annotation kind, help from docstrings, args -> dataclass round trip."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from plray.utils.cli_fields import (
    FlagSpec,
    LazyArgumentParser,
    add_dataclass_arguments,
    dataclass_from_args,
    field_docs,
    given_values,
)
from plray.utils.schema import positive

COLOURS = ("red", "green", "blue")


@dataclass(frozen=True)
class Toy:
    """A config with one field of every kind a flag can carry."""

    name: str
    """What the run is called."""
    steps: int = field(default=10, metadata={"check": positive})
    """Gradient steps."""
    lr: float = 1e-3
    """Adam step size (100% of the base rate)."""
    fast: bool = False
    """Use the fast path."""
    tidy: bool = True
    """Tidy up afterwards."""
    mode: Literal["a", "b"] = "a"
    """Which of ``a`` and ``b`` (see :func:`plray.core.extract`)."""
    colour: str = "red"
    """Paint colour."""
    widths: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden widths."""
    box: tuple[float, ...] | None = None
    """State box corner; None: none."""
    pair: tuple[int, int] = (1, 2)
    """Exactly two numbers."""
    limit: int | None = None
    """Optional cap; None: no cap."""
    extra: dict[str, Any] = field(default_factory=dict)
    """A mapping: not a flag."""


@dataclass
class Google:
    """A config documented in a Google-style section.

    Attributes:
        size: how many,
            over two lines.
        label (str): a name.
    """

    size: int = 3
    label: str = "x"
    hidden: int = 0


def _parser(**kwargs: Any) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toy")
    add_dataclass_arguments(parser, Toy, exclude=("extra",), **kwargs)
    return parser


def test_field_docs_reads_attribute_docstrings_and_google_sections() -> None:
    docs = field_docs(Toy)
    assert docs["steps"] == "Gradient steps."
    assert docs["mode"] == "Which of a and b (see plray.core.extract)."
    assert field_docs(Google) == {"size": "how many, over two lines.", "label": "a name."}


def test_each_annotation_maps_to_its_flag() -> None:
    args = _parser().parse_args(
        "--name n --steps 5 --lr 0.5 --fast --no-tidy --mode b --colour blue --widths 1 2 3 --box 0 1.5 --pair 3 4 "
        "--limit 9".split()
    )
    cfg = dataclass_from_args(Toy, args)
    assert cfg == Toy(
        name="n", steps=5, lr=0.5, fast=True, tidy=False, mode="b", colour="blue", widths=[1, 2, 3], box=(0.0, 1.5),
        pair=(3, 4), limit=9,
    )  # fmt: skip
    assert isinstance(cfg.box, tuple) and isinstance(cfg.pair, tuple)


def test_defaults_come_from_the_fields() -> None:
    assert dataclass_from_args(Toy, _parser().parse_args(["--name", "n"])) == Toy(name="n")


@pytest.mark.parametrize(
    "values",
    [
        {"name": "a"},
        {"name": "b", "steps": 1, "fast": True, "tidy": False, "mode": "b", "widths": [4], "limit": 0},
        {"name": "c", "lr": 2.5, "colour": "green", "box": (0.5, -1.0, 2.0), "pair": (7, 8)},
    ],
)
def test_round_trip_args_to_dataclass(values: dict[str, Any]) -> None:
    """Flags written from a dataclass's values parse back into the same dataclass."""
    expected = Toy(**values)
    argv: list[str] = []
    for f in dataclasses.fields(Toy):
        value = getattr(expected, f.name)
        if f.name == "extra" or value is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list | tuple):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    assert dataclass_from_args(Toy, _parser().parse_args(argv)) == expected


def test_help_holds_each_docstring_and_default(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(_parser().format_help().split())
    for name, doc in field_docs(Toy).items():
        if name != "extra":
            assert doc.rstrip(".") in text, name
    assert "(default: 10)" in text and "(default: --no-fast)" in text and "(default: --tidy)" in text
    assert "(default: 256 256)" in text and "100% of the base rate" in text
    assert "{a,b}" in text and "--fast, --no-fast" in text
    assert "(default: None)" not in text, "None defaults are explained by the docstring"


def test_errors_name_what_was_expected(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser()
    for argv, message in [
        (["--name", "n", "--steps", "x"], "argument --steps: expected an integer, got 'x'"),
        (["--name", "n", "--steps", "0"], "argument --steps: must be > 0, got 0"),  # the field's metadata check
        (["--name", "n", "--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
        (["--name", "n", "--mode", "c"], "argument --mode: invalid choice: 'c'"),
        (["--name", "n", "--pair", "1"], "argument --pair: expected 2 arguments"),
        ([], "the following arguments are required: --name"),
    ]:
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert message in capsys.readouterr().err


def test_flag_specs_rename_restrict_and_negate(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser(
        flags={
            "steps": FlagSpec(names=("--iters",), metavar="N", default=7),
            "colour": FlagSpec(choices=COLOURS, note="as the palette names them"),
            "tidy": FlagSpec(negative_names=("--messy",)),
            "lr": FlagSpec(type=float, default_text="the task's"),
        }
    )
    args = parser.parse_args(["--name", "n", "--iters", "3", "--messy"])
    assert dataclass_from_args(Toy, args) == Toy(name="n", steps=3, tidy=False)
    assert dataclass_from_args(Toy, parser.parse_args(["--name", "n", "--steps", "4"])).steps == 4
    assert dataclass_from_args(Toy, parser.parse_args(["--name", "n"])).steps == 7, "the command's default"
    text = " ".join(parser.format_help().split())
    assert "--iters N, --steps N" in text and "(default: the task's)" in text and "same as --no-tidy" in text
    assert "Paint colour; as the palette names them (default: red)" in text
    with pytest.raises(SystemExit):
        parser.parse_args(["--name", "n", "--colour", "pink"])
    assert "invalid choice: 'pink'" in capsys.readouterr().err


def test_overrides_only_keeps_what_the_command_line_set() -> None:
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Toy, only=("steps", "lr", "fast"), overrides_only=True)
    assert given_values(Toy, parser.parse_args([])) == {}
    assert given_values(Toy, parser.parse_args(["--lr", "0.1", "--no-fast"])) == {"lr": 0.1, "fast": False}


def test_prefix_and_only_keep_two_configs_apart() -> None:
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Toy, only=("name", "steps"))
    add_dataclass_arguments(parser, Toy, prefix="inner-", only=("steps",))
    args = parser.parse_args(["--name", "n", "--steps", "2", "--inner-steps", "3"])
    assert dataclass_from_args(Toy, args).steps == 2
    assert given_values(Toy, args, prefix="inner_", only=("steps",)) == {"steps": 3}
    assert given_values(Google, args, only=("size",)) == {}, "only the named fields are read"


def test_unmappable_or_undocumented_fields_are_refused() -> None:
    with pytest.raises(TypeError, match="extra"):
        add_dataclass_arguments(argparse.ArgumentParser(), Toy)
    with pytest.raises(TypeError, match="no docstring"):
        add_dataclass_arguments(argparse.ArgumentParser(), Google, only=("hidden",))
    with pytest.raises(TypeError, match="no field 'nope'"):
        add_dataclass_arguments(argparse.ArgumentParser(), Toy, only=("nope",))
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Google, only=("hidden",), flags={"hidden": FlagSpec(help="kept out of sight")})
    assert "kept out of sight (default: 0)" in " ".join(parser.format_help().split())


def test_lazy_parser_adds_its_flags_on_first_use() -> None:
    calls: list[int] = []
    parser = argparse.ArgumentParser(prog="top")
    sub = parser.add_subparsers(dest="command", parser_class=LazyArgumentParser)
    child = sub.add_parser("child")

    def add(p: argparse.ArgumentParser) -> None:
        calls.append(1)
        add_dataclass_arguments(p, Google, only=("size",))

    child.defer(add)
    assert "child" in parser.format_help() and calls == [], "the top-level help does not build subcommands"
    assert parser.parse_args(["child", "--size", "5"]).size == 5
    assert "how many" in child.format_help() and calls == [1]
