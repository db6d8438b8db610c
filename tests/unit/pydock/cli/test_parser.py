"""The parser built for one command line parses it as the full parser does."""

from __future__ import annotations

import pytest

from pydock.cli.app import build_parser, command_word

LINES = [
    ["run", "--rm", "-e", "A=1", "busybox", "echo", "hi"],
    ["--root", "/r", "--storage", "vfs", "run", "-d", "--name", "x", "busybox"],
    ["--storage=fuse", "--storage-opt", "fsync=false", "images", "-q"],
    ["--run-root", "/run/x", "system", "check", "--repair"],
    ["ps", "-a"],
    ["save", "-o", "out.tar", "busybox"],
]


@pytest.mark.parametrize("argv", LINES, ids=lambda argv: " ".join(argv))
def test_one_command_parser_agrees_with_the_full_one(argv: list[str]) -> None:
    assert vars(build_parser(argv).parse_args(argv)) == vars(build_parser().parse_args(argv))


def test_command_word_skips_global_options_and_their_values() -> None:
    assert command_word(["--root", "run", "images"]) == "images"  # "run" is --root's value
    assert command_word(["--storage-opt=a=b", "--storage", "vfs", "ps"]) == "ps"
    assert command_word(["--help"]) is None
    assert command_word(["--root", "/r"]) is None
    assert command_word(["--version", "run"]) is None


def test_an_unknown_command_is_refused_by_the_full_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser(["frob"]).parse_args(["frob"])
    assert "'frob' is not a pydock command" in capsys.readouterr().err
