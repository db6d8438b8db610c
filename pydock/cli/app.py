"""Parsing the command line and running one command, with the one failure path.

Failures of pydock itself print one line, ``pydock: <what failed>: <why>``, and exit 125
(130 on Ctrl-C). Only the module of the command that runs is imported (see ``commands``).
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import re
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, cast

import graphdriver
from pydock import reserve
from pydock.cli import commands
from pydock.cli.base import EXIT_FAILURE, EXIT_INTERRUPTED, Command, fail
from pydock.errors import PydockError, UsageError
from pydock.paths import default_root, default_run_root, is_rootless
from pydock.settings import EngineConfig


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and exit 125, as Docker's are."""

    #: The parser of each command, by name (``system prune``), to point at its own help.
    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        unknown = _INVALID_CHOICE.match(message)
        if unknown is not None:  # not the list of choices: it names unlisted commands too
            message = f"{unknown.group(1)} is not a {self.prog} command"
        sys.stderr.write(f"pydock: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_FAILURE)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: None = None
    ) -> argparse.Namespace:
        """Parse; an unknown option is reported by the command it was given to."""
        words = list(sys.argv[1:] if args is None else args)
        parsed, extra = self.parse_known_args(words)
        if extra:
            name = str(getattr(parsed, "command_name", ""))
            owner = getattr(self, "commands", {}).get(name, self)
            first = name.partition(" ")[0]
            if first in words and extra[0] in words and words.index(extra[0]) < words.index(first):
                owner = self  # given before the command: an option of pydock itself
            owner.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


_INVALID_CHOICE = re.compile(r"argument COMMAND: invalid choice: ('[^']*')")


_GLOBAL_WITH_VALUE = ("--root", "--run-root", "--storage", "--storage-opt")


class _Unbuilt:
    """Stands in for the parser of a command that is not running: whatever ``commands``
    declares on it is dropped, so a command pays for building its own arguments only."""

    def __getattr__(self, name: str) -> Callable[..., _Unbuilt]:
        return self._drop

    def _drop(self, *args: object, **kwargs: object) -> _Unbuilt:
        return self


def command_word(argv: Sequence[str]) -> str | None:
    """The command that ``argv`` runs (its first word after the global options), or ``None``
    when it asks for help or version, or names none."""
    words = iter(argv)
    for word in words:
        if word in ("-h", "--help", "--version") or word == "--":
            return None
        if word.startswith("-"):
            name = word.partition("=")[0]
            takes_value = any(option.startswith(name) for option in _GLOBAL_WITH_VALUE)
            if takes_value and "=" not in word and name.startswith("--"):
                next(words, None)
            continue
        return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``pydock`` argument parser, with every command and its help; given the command
    line, only the command it runs gets its arguments (building all costs ~15 ms)."""
    only = command_word(argv) if argv is not None else None
    built: set[str] = set()
    parser = _Parser(
        prog="pydock",
        description="A container storage engine: images and layers over pluggable drivers.",
    )
    parser.commands = {}
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("--root", type=Path, help="root of pydock's data (env PYDOCK_ROOT)")
    parser.add_argument(
        "--run-root", type=Path, help="root of pydock's run-time state (env PYDOCK_RUN_ROOT)"
    )
    parser.add_argument(
        "--storage", metavar="DRIVER", help="storage driver (overlay2, vfs, fuse; default: best)"
    )
    parser.add_argument(
        "--storage-opt",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="storage driver option (repeatable)",
    )
    top = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    top.required = True
    parents: dict[str, argparse._SubParsersAction[_Parser]] = {}

    def add(
        name: str, target: str, doing: str, summary: str, **defaults: object
    ) -> argparse.ArgumentParser:
        group, _, verb = name.rpartition(" ")
        if only is not None and (group or verb) != only:
            return cast(argparse.ArgumentParser, _Unbuilt())
        built.add(group or verb)
        commands_of = top
        if group:
            if group not in parents:
                parent = top.add_parser(group, help=f"{group} commands ({group} COMMAND)")
                parents[group] = parent.add_subparsers(
                    dest="verb", metavar="COMMAND", parser_class=_Parser
                )
                parents[group].required = True
            commands_of = parents[group]
        shown = {} if summary == argparse.SUPPRESS else {"help": summary}
        sub = commands_of.add_parser(verb, description=summary, **shown)  # type: ignore[arg-type]
        sub.set_defaults(implementation=target, doing=doing, command_name=name, **defaults)
        parser.commands[name] = sub
        return sub

    commands.register(add)
    if only is not None and only not in built:
        return build_parser()  # not a command: argparse's error lists them all
    # Commands meant for pydock itself (cleanup, run by a container's monitor) stay unlisted.
    top._choices_actions = [a for a in top._choices_actions if a.help != argparse.SUPPRESS]
    return parser


def engine_config(args: argparse.Namespace) -> EngineConfig:
    """The engine configuration the global options (and environment) ask for."""
    options: dict[str, str] = {}
    for text in args.storage_opt:
        key, equals, value = text.partition("=")
        if not equals or not key.strip():
            raise UsageError(f"parsing --storage-opt {text!r}: expected KEY=VALUE")
        options[key.strip()] = value
    return EngineConfig(
        root=args.root or default_root(),
        run_root=args.run_root or default_run_root(),
        storage=getattr(args, "container_storage", None) or args.storage or None,
        storage_options=options,
    )


def _resolve(target: str) -> Callable[..., int]:
    module, _, name = target.partition(":")
    return cast(Callable[..., int], getattr(importlib.import_module(module), name))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``pydock`` command; returns the exit status."""
    given = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(given).parse_args(given)
    args.argv = given
    doing: str = args.doing
    try:
        func = _resolve(args.implementation)
        if getattr(args, "standalone", False):  # needs no store of the user's
            standalone_status: int = func(args)
            return standalone_status
        config = engine_config(args)
        if is_rootless():
            from pydock.cli.run import prepare  # rootless: into pydock's user namespace

            prepare(args, config)
        if getattr(args, "frees_space", False):
            reserve.release_if_short(Path(config.root))
        from pydock.engine import Engine

        with Engine(config) as engine:
            status: int = cast(Command, func)(engine, args, sys.stdout)
        sys.stdout.flush()
        reserve.keep(Path(config.root))
        return status
    except KeyboardInterrupt:
        fail("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``pydock images | head``): nothing left to say to anyone.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except PydockError as exc:
        fail(str(exc))
    except graphdriver.GraphDriverError as exc:
        fail(f"{doing}: {exc}")
    except OSError as exc:
        fail(f"{doing}: {_describe_os_error(exc)}")
    except sqlite3.Error as exc:
        fail(f"{doing}: store: {str(exc).lower()}")
    except Exception as exc:
        if os.environ.get("PYDOCK_DEBUG"):
            raise
        fail(f"{doing}: internal error: {type(exc).__name__}: {exc} (PYDOCK_DEBUG=1 shows more)")
    return EXIT_FAILURE


def console() -> NoReturn:
    """The ``pydock`` command (and ``python -m pydock``): :func:`main`, then :func:`leave`."""
    leave(main())


def leave(status: int) -> NoReturn:
    """Exit with ``status`` without tearing the interpreter down.

    Python's own exit frees every module and object one by one, about 25 ms after a ``run``,
    for nothing: the process is ending. The output is flushed and the ``atexit`` handlers
    (``weakref.finalize`` among them) run as they would; while another thread still runs, the
    normal exit waits for it as usual.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    if threading.active_count() > 1:
        sys.exit(status)
    atexit._run_exitfuncs()
    os._exit(status)


def _describe_os_error(exc: OSError) -> str:
    reason = (exc.strerror or str(exc)).lower()
    return f"{exc.filename}: {reason}" if exc.filename else reason


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked for (the lookup is slow to import)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from pydock.info import package_version

        print(f"pydock {package_version('pydock')}")
        parser.exit()
