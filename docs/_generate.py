"""Pages generated from the code at docs build time (see conf.py): the CLI reference and
the converter's support table. Written to docs/_generated/ (not checked in)."""

from __future__ import annotations

import argparse
import pathlib


def _write(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:  # keep Sphinx's incremental build quiet
        path.write_text(text)


def cli_reference() -> str:
    from bnnkit import cli

    parser = cli.build_parser()
    parser.prog = "bnnkit"
    out = ["# Command line (`bnnkit`)", "",
           "Generated from the argument parser; `bnnkit COMMAND --help` prints the same.", "",
           "```text", parser.format_help().rstrip(), "```", ""]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        out += [f"## `bnnkit {name}`", "", "```text", p.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def converter_support() -> str:
    from bnnkit.converter import lower

    ops = sorted(lower.HANDLERS)
    identity = sorted(lower.IDENTITY_OPS)
    out = ["# Converter: supported operations", "",
           "Generated from the converter's handler table (`bnnkit.converter.lower.HANDLERS`).",
           "`bnnkit.convert` exports the model with `torch.export` and lowers every ATen",
           "operation of the exported graph with one handler; an operation without one stops",
           "the conversion with a `ConversionError` naming it and the module it came from.", "",
           "| ATen operation | |", "|---|---|"]
    out += [f"| `{op}` | lowered |" for op in ops]
    out += [f"| `{op}` | removed (identity at inference) |" for op in identity if op not in lower.HANDLERS]
    out.append("")
    return "\n".join(out)


def write_all(directory: pathlib.Path) -> None:
    _write(directory / "cli.md", cli_reference())
    _write(directory / "converter_ops.md", converter_support())
