"""The README's command list names every command that ``pydock --help`` lists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pydock.cli import build_parser

README = Path(__file__).resolve().parents[4] / "README.md"


def _listed(parser: argparse.ArgumentParser) -> set[str]:
    """Commands (``system df`` for a verb of a group) that ``--help`` shows."""
    names: set[str] = set()
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for shown in action._choices_actions:
            verbs = _listed(action.choices[shown.dest])
            names |= {f"{shown.dest} {verb}" for verb in verbs} if verbs else {shown.dest}
    return names


def _readme_commands() -> set[str]:
    """What starts an entry of the README's command block: a line indented by two spaces, or
    a column after a gap of three spaces or more; one word, or two (``system df``)."""
    text = README.read_text()
    block = text[text.index("## Commands") :].split("```")[1]
    found: set[str] = set()
    for line in block.splitlines():
        columns = re.split(r" {3,}", line.strip())
        if not (line.startswith("  ") and not line.startswith("   ")):
            columns = columns[1:]  # a continuation of the entry above
        for column in columns:
            words = re.match(r"([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", column)
            if words:
                found.add(words.group(1))
                found.add(f"{words.group(1)} {words.group(2)}")
    return found


def test_the_readme_lists_every_command_of_the_help() -> None:
    listed = _listed(build_parser())
    assert {"run", "images", "system df", "bench"} <= listed
    assert "cleanup" not in listed  # pydock's own, unlisted
    missing = listed - _readme_commands()
    assert missing == set(), f"in pydock --help but not in the README: {sorted(missing)}"
