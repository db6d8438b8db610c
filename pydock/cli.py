"""The ``pydock`` command line: Docker's words and flags, one small function per command.

Each command function calls one engine verb and prints the result. Failures of pydock itself
print one line, ``pydock: <what failed>: <why>``, and exit 125 (130 on Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

import graphdriver
from pydock import cli_containers, reserve
from pydock.cli_bench import add_bench_command
from pydock.cli_images import add_image_commands
from pydock.clock import parse_rfc3339, utc_now
from pydock.engine import Engine, EngineConfig
from pydock.errors import PydockError, UsageError
from pydock.format import human_age, human_size, short_id, table
from pydock.info import package_version
from pydock.paths import default_root, default_run_root

EXIT_FAILURE = 125
EXIT_INTERRUPTED = 130

Command = Callable[[Engine, argparse.Namespace, TextIO], int]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and exit 125, as Docker's are."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"pydock: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_FAILURE)


# -- commands ---------------------------------------------------------------------------------


def cmd_info(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Show the versions, the storage drivers of this host and where data lives."""
    facts = engine.info()
    if args.format == "json":
        out.write(json.dumps(facts) + "\n")
        return 0
    lines = [
        "Client:",
        f" Version: {facts['Version']}",
        f" Python: {facts['Python']}",
        f" SQLite: {facts['SQLite']} (sqlite-utils {facts['SqliteUtils']})",
        f"Storage Driver: {facts['Driver']}",
    ]
    lines += [f" {key}: {value}" for key, value in _pairs(facts["DriverStatus"])]
    lines.append("Drivers:")
    for driver in _dicts(facts["Drivers"]):
        state = "supported" if driver["Supported"] else f"not supported: {driver['Reason']}"
        lines.append(f" {driver['Name']}: {state}")
    lines += [
        f"Root Dir: {facts['RootDir']}",
        f"Run Root: {facts['RunRoot']}",
        f"Store: {facts['Store']}",
        f"Rootless: {str(facts['Rootless']).lower()}",
        f"Images: {facts['Images']}",
        f"Layers: {facts['Layers']}",
        f"Kernel Version: {facts['KernelVersion']}",
        f"Architecture: {facts['Architecture']}",
    ]
    out.write("\n".join(lines) + "\n")
    return 0


def cmd_import(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Import a root filesystem tar as an image and print its id."""
    image_id = engine.images.import_image(
        args.file, args.reference, message=args.message or "", stdin=sys.stdin.buffer
    )
    out.write(image_id + "\n")
    return 0


def cmd_images(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """List images: REPOSITORY, TAG, IMAGE ID, CREATED, SIZE."""
    rows = engine.images.list_images()
    if args.quiet:
        ids = dict.fromkeys(short_id(row.id) for row in rows)
        out.write("".join(f"{image_id}\n" for image_id in ids))
        return 0
    now = utc_now()
    if args.format == "json":
        for row in rows:
            created = parse_rfc3339(row.created)
            document = {
                "ID": short_id(row.id),
                "Repository": row.repository,
                "Tag": row.tag,
                "Digest": "<none>",
                "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
                "CreatedSince": human_age(created, now),
                "Size": human_size(row.size),
            }
            out.write(json.dumps(document) + "\n")
        return 0
    cells = [
        [
            row.repository,
            row.tag,
            short_id(row.id),
            human_age(parse_rfc3339(row.created), now),
            human_size(row.size),
        ]
        for row in rows
    ]
    out.write(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], cells) + "\n")
    return 0


def cmd_rmi(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Untag images; delete those left without a tag, and their unused layers."""
    status = 0
    for name in args.images:
        try:
            lines = engine.images.remove_image(name, force=args.force)
        except PydockError as exc:
            _fail(str(exc))
            status = EXIT_FAILURE
            continue
        out.write("".join(f"{line}\n" for line in lines))
    return status


def cmd_inspect(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Print a JSON array describing each image."""
    found: list[dict[str, object]] = []
    status = 0
    for name in args.images:
        try:
            found.append(cli_containers.inspect_any(engine, name))
        except PydockError as exc:
            _fail(str(exc))
            status = EXIT_FAILURE
    out.write(json.dumps(found, indent=4) + "\n")
    return status


# -- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``pydock`` argument parser, with every command and its help."""
    parser = _Parser(
        prog="pydock",
        description="A container storage engine: images and layers over pluggable drivers.",
    )
    parser.add_argument("--version", action="version", version=_version_text())
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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    def add(name: str, func: Command, doing: str) -> argparse.ArgumentParser:
        summary = (func.__doc__ or "").strip()
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(func=func, doing=doing)
        return sub

    sub = add("info", cmd_info, "reading system information")
    sub.add_argument("--format", choices=["json"], help="print JSON")

    sub = add("import", cmd_import, "importing an image")
    sub.add_argument("file", metavar="FILE|-", help="tar (plain, gzip, zstd), - or builtin:busybox")
    sub.add_argument("reference", metavar="NAME[:TAG]", nargs="?", help="name of the new image")
    sub.add_argument("-m", "--message", help="commit message of the image's history")

    sub = add("images", cmd_images, "listing images")
    sub.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    sub.add_argument("--format", choices=["json", "table"], help="print JSON lines or a table")

    sub = add("rmi", cmd_rmi, "removing images")
    sub.set_defaults(frees_space=True)
    sub.add_argument("-f", "--force", action="store_true", help="remove every tag of the image")
    sub.add_argument("images", metavar="IMAGE", nargs="+", help="name, tag or id")

    sub = add("inspect", cmd_inspect, "inspecting images")
    sub.add_argument("images", metavar="IMAGE", nargs="+", help="name, tag or id")

    cli_containers.register(add)
    add_bench_command(commands)

    add_image_commands(add)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``pydock`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    doing: str = args.doing
    try:
        if hasattr(args, "bench"):  # needs no store of the user's
            bench_status: int = args.bench(args)
            return bench_status
        config = engine_config(args)
        cli_containers.prepare(args, config)
        if getattr(args, "frees_space", False):
            reserve.release_if_short(Path(config.root))
        with Engine(config) as engine:
            status: int = args.func(engine, args, sys.stdout)
        sys.stdout.flush()
        reserve.keep(Path(config.root))
        return status
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``pydock images | head``): nothing left to say to anyone.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except PydockError as exc:
        _fail(str(exc))
    except graphdriver.GraphDriverError as exc:
        _fail(f"{doing}: {exc}")
    except OSError as exc:
        _fail(f"{doing}: {_describe_os_error(exc)}")
    except sqlite3.Error as exc:
        _fail(f"{doing}: store: {str(exc).lower()}")
    except Exception as exc:
        if os.environ.get("PYDOCK_DEBUG"):
            raise
        _fail(f"{doing}: internal error: {type(exc).__name__}: {exc} (PYDOCK_DEBUG=1 shows more)")
    return EXIT_FAILURE


def _fail(message: str) -> None:
    sys.stderr.write("pydock: " + " ".join(message.split("\n")) + "\n")
    sys.stderr.flush()


def _describe_os_error(exc: OSError) -> str:
    reason = (exc.strerror or str(exc)).lower()
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _version_text() -> str:
    return f"pydock {package_version('pydock')}"


def _pairs(value: object) -> list[tuple[str, str]]:
    items = value if isinstance(value, list) else []
    return [(str(item[0]), str(item[1])) for item in items if len(item) == 2]


def _dicts(value: object) -> list[dict[str, object]]:
    items = value if isinstance(value, list) else []
    return [item for item in items if isinstance(item, dict)]
