"""Every command has help text and a section in docs/cli.md (as sqlite-utils does it)."""

import argparse
from pathlib import Path

import pytest

from app.cli import build_parser

DOCS = (Path(__file__).parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")


def leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for action in subs:
        helps = {c.dest: c.help for c in action._choices_actions}
        for name, child in action.choices.items():
            assert helps.get(name), f"'commune {' '.join((*prefix, name))}' has no help text"
            yield from leaf_commands(child, (*prefix, name))


COMMANDS = list(leaf_commands(build_parser()))


def test_the_core_commands_exist():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"init", "dossiers import", "dossiers list", "wards list", "wipe"} <= names


@pytest.mark.parametrize("path", [" ".join(p) for p, _ in COMMANDS])
def test_command_is_documented(path):
    assert f"## `commune {path}`" in DOCS, f"docs/cli.md lacks a section for 'commune {path}'"


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_has_help(path, parser):
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"'commune {' '.join(path)} {action.option_strings[0]}' lacks help"
