"""Image commands of the CLI: load, save, tag, history, pull, push, login, logout, system.

Registered on the main parser by :func:`add_image_commands`; each function calls one engine
verb and prints what Docker prints.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from typing import TextIO

from pydock.clock import parse_rfc3339, utc_now
from pydock.engine import Engine
from pydock.errors import UsageError
from pydock.format import human_age, human_size, short_id, table
from pydock.image.save import ArchiveFormat

Command = Callable[[Engine, argparse.Namespace, TextIO], int]
AddCommand = Callable[[str, Command, str], argparse.ArgumentParser]


def _tls_verify(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def cmd_load(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Load images from a docker-archive tar or an OCI layout (directory or tar)."""
    lines = engine.images.load_images(args.input, platform=args.platform)
    if not args.quiet:
        out.write("".join(f"{line}\n" for line in lines))
    return 0


def cmd_save(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Save images to a docker-archive or oci-archive tar."""
    if args.output is None and sys.stdout.isatty():
        raise UsageError("saving: refusing to write an archive to a terminal (use -o FILE)")
    engine.images.save_images(args.images, args.output, kind=args.format)
    return 0


def cmd_tag(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Create a tag TARGET that refers to the image SOURCE."""
    engine.images.tag_image(args.source, args.target)
    return 0


def cmd_history(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Show the history of an image: IMAGE, CREATED, CREATED BY, SIZE, COMMENT."""
    rows = engine.images.image_history(args.image)
    if args.quiet:
        out.write(
            "".join(f"{row.image if args.no_trunc else short_id(row.image)}\n" for row in rows)
        )
        return 0
    if args.format == "json":
        for row in rows:
            out.write(json.dumps(row.__dict__) + "\n")
        return 0
    now = utc_now()
    cells = []
    for row in rows:
        image = row.image if args.no_trunc or row.image == "<missing>" else short_id(row.image)
        created = human_age(parse_rfc3339(row.created), now) if row.created else "N/A"
        by = (
            row.created_by
            if args.no_trunc or len(row.created_by) <= 45
            else row.created_by[:44] + "…"
        )
        cells.append([image, created, by, human_size(row.size), row.comment])
    out.write(table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], cells) + "\n")
    return 0


def cmd_pull(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Pull an image from a registry."""
    if (
        not args.quiet
        and ":" not in args.reference.rpartition("/")[2]
        and "@" not in args.reference
    ):
        out.write("Using default tag: latest\n")
    ref, result = engine.images.pull_image(
        args.reference,
        platform=args.platform,
        tls_verify=args.tls_verify,
        quiet=args.quiet,
        out=out,
    )
    full = str(ref)
    if not args.quiet:
        status = "Downloaded newer image" if result.downloaded else "Image is up to date"
        out.write(f"Digest: {result.digest}\nStatus: {status} for {ref.familiar}\n")
    out.write(full + "\n")
    return 0


def cmd_push(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Push an image to a registry."""
    ref, result = engine.images.push_image(
        args.image, args.destination, tls_verify=args.tls_verify, quiet=args.quiet, out=out
    )
    if args.quiet:
        out.write(f"{ref}\n")
    else:
        out.write(f"{ref.tag or 'latest'}: digest: {result.digest} size: {result.size}\n")
    return 0


def cmd_login(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Log in to a registry; credentials go to the Docker client config."""
    username = args.username or input("Username: ")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = args.password if args.password is not None else getpass.getpass("Password: ")
    if not username or not password:
        raise UsageError(f"logging in to {args.server}: a user name and a password are needed")
    path = engine.images.login(args.server, username, password, tls_verify=args.tls_verify)
    out.write(f"Credentials saved in {path}\nLogin Succeeded\n")
    return 0


def cmd_logout(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Forget the stored credentials of a registry."""
    if engine.images.logout(args.server):
        out.write(f"Removing login credentials for {args.server}\n")
    else:
        out.write(f"Not logged in to {args.server}\n")
    return 0


def cmd_system_prune(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Delete blobs of the content store that no image or layer refers to."""
    report = engine.images.prune_blobs()
    out.write("".join(f"Deleted blob: {digest}\n" for digest in report.deleted))
    out.write(f"Total reclaimed space: {human_size(report.reclaimed)}\n")
    return 0


def cmd_system_check(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Check that the store agrees with the disk (--repair: fix what can be fixed)."""
    from pydock import syscheck  # only this command needs it

    findings, alone = syscheck.check(engine)
    left = 0
    for finding in findings:
        if args.repair and finding.repair is not None:
            finding.repair()
            out.write(f"repaired: {finding.text}\n")
        else:
            out.write(f"{finding.text}\n")
            left += 1
    if not alone:
        out.write("other pydock commands are running: mounts, directories and blobs that may be "
                  "their work in progress were not checked\n")  # fmt: skip
    if not findings:
        out.write("no problems found\n")
    return 1 if left else 0


def cmd_system_df(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Show how much disk images, layers and blobs use."""
    usage = engine.images.disk_usage()
    if args.format == "json":
        for kind, facts in usage.items():
            out.write(json.dumps({"Type": kind, **facts}) + "\n")
        return 0
    cells = []
    for kind, facts in usage.items():
        size = facts["Size"]
        spare = facts.get("Reclaimable")
        share = f" ({100 * spare // size}%)" if spare is not None and size else ""
        reclaim = "-" if spare is None else human_size(spare) + share
        cells.append([kind, str(facts["Total"]), str(facts["Active"]), human_size(size), reclaim])
    out.write(table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], cells) + "\n")
    return 0


def add_image_commands(add: AddCommand) -> None:
    """Add the image commands to the main parser through its ``add`` helper."""
    sub = add("load", cmd_load, "loading images")
    sub.add_argument("-i", "--input", metavar="FILE", help="archive or OCI layout (default: stdin)")
    sub.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    sub.add_argument("--platform", help="OS/ARCH to choose from an index (default: this host)")

    sub = add("save", cmd_save, "saving images")
    sub.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    sub.add_argument(
        "--format",
        choices=[kind.value for kind in ArchiveFormat],
        default=ArchiveFormat.DOCKER.value,
        help="archive format (default: docker-archive)",
    )
    sub.add_argument("images", metavar="IMAGE", nargs="+", help="name, tag or id")

    sub = add("tag", cmd_tag, "tagging an image")
    sub.add_argument("source", metavar="SOURCE", help="image name, tag or id")
    sub.add_argument("target", metavar="TARGET", help="new NAME[:TAG]")

    sub = add("history", cmd_history, "showing history")
    sub.add_argument("image", metavar="IMAGE", help="name, tag or id")
    sub.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    sub.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    sub.add_argument("--format", choices=["json", "table"], help="print JSON lines or a table")

    sub = add("pull", cmd_pull, "pulling an image")
    sub.add_argument("reference", metavar="NAME[:TAG|@DIGEST]", help="image to pull")
    sub.add_argument("--platform", help="OS/ARCH[/VARIANT] to choose from an index")
    _registry_options(sub, "print only the image reference")

    sub = add("push", cmd_push, "pushing an image")
    sub.add_argument("image", metavar="IMAGE", help="name, tag or id")
    sub.add_argument("destination", metavar="DEST", nargs="?", help="NAME[:TAG] to push to")
    _registry_options(sub, "print only the pushed reference")

    sub = add("login", cmd_login, "logging in")
    sub.add_argument("server", metavar="SERVER", help="registry (host[:port])")
    sub.add_argument("-u", "--username", help="user name")
    sub.add_argument("-p", "--password", help="password (prefer --password-stdin)")
    sub.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    sub.add_argument(
        "--tls-verify", type=_tls_verify, default=True, metavar="BOOL",
        help="require HTTPS and verify certificates (default: true)",
    )  # fmt: skip

    sub = add("logout", cmd_logout, "logging out")
    sub.add_argument("server", metavar="SERVER", help="registry (host[:port])")

    system = add("system", cmd_system_df, "managing the system")
    verbs = system.add_subparsers(dest="verb", metavar="COMMAND", parser_class=type(system))
    verbs.required = True
    prune = verbs.add_parser("prune", help=_summary(cmd_system_prune))
    prune.set_defaults(func=cmd_system_prune, doing="pruning", frees_space=True)
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt (never does)")
    check = verbs.add_parser("check", help=_summary(cmd_system_check))
    check.set_defaults(func=cmd_system_check, doing="checking the store", frees_space=True)
    check.add_argument("--repair", action="store_true", help="repair what can be repaired")
    df = verbs.add_parser("df", help=_summary(cmd_system_df))
    df.set_defaults(func=cmd_system_df, doing="reading disk usage")
    df.add_argument("--format", choices=["json", "table"], help="print JSON lines or a table")


def _registry_options(sub: argparse.ArgumentParser, quiet_help: str) -> None:
    sub.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    sub.add_argument(
        "--tls-verify", type=_tls_verify, default=True, metavar="BOOL",
        help="require HTTPS and verify certificates (default: true; false allows plain HTTP)",
    )  # fmt: skip


def _summary(func: Command) -> str:
    return (func.__doc__ or "").strip()
