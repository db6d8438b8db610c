"""Image commands: import, images, rmi, load, save, tag, history, pull, push, login, logout."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import TextIO

from pydock.cli.base import EXIT_FAILURE, fail
from pydock.clock import parse_rfc3339, utc_now
from pydock.engine import Engine
from pydock.errors import PydockError, UsageError
from pydock.filters import boolean, labels_match, parse_filters, reference_matches
from pydock.format import human_age, human_size, short_id, table
from pydock.template import Row, render_rows, template_step


def cmd_import(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Import a root filesystem tar as an image and print its id."""
    image_id = engine.images.import_image(
        args.file, args.reference, message=args.message or "", stdin=sys.stdin.buffer
    )
    out.write(image_id + "\n")
    return 0


IMAGE_FILTERS = ("dangling", "label", "reference")
IMAGE_HEADERS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
}
IMAGE_DEFAULT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"


def cmd_images(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """List images: REPOSITORY, TAG, IMAGE ID, CREATED, SIZE."""
    doing = "listing images"
    wanted = parse_filters(args.filter, IMAGE_FILTERS, doing=doing)
    rows = engine.images.list_images()
    if "dangling" in wanted:
        dangling = boolean(wanted["dangling"], "dangling", doing=doing)
        rows = [row for row in rows if (row.tag == "<none>") == dangling]
    if "reference" in wanted:
        rows = [r for r in rows if reference_matches(wanted["reference"], r.repository, r.tag)]
    rows = [row for row in rows if labels_match(wanted.get("label", []), row.labels)]
    if args.quiet:
        ids = dict.fromkeys(short_id(row.id) for row in rows)
        out.write("".join(f"{image_id}\n" for image_id in ids))
        return 0
    now = utc_now()
    documents = []
    for row in rows:
        created = parse_rfc3339(row.created)
        documents.append(
            {
                "ID": short_id(row.id),
                "Repository": row.repository,
                "Tag": row.tag,
                "Digest": "<none>",
                "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
                "CreatedSince": human_age(created, now),
                "Size": human_size(row.size),
            }
        )
    if args.format == "json":
        out.write("".join(json.dumps(document) + "\n" for document in documents))
        return 0
    text = IMAGE_DEFAULT if args.format in (None, "table") else args.format
    labelled = [
        Row(document, {"Label": lambda key, found=row.labels: found.get(str(key), "")})
        for document, row in zip(documents, rows, strict=True)
    ]
    with template_step(doing):
        out.write(render_rows(text, labelled, IMAGE_HEADERS, IMAGE_DEFAULT))
    return 0


def cmd_rmi(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Untag images; delete those left without a tag, and their unused layers."""
    status = 0
    for name in args.images:
        try:
            lines = engine.images.remove_image(name, force=args.force)
        except PydockError as exc:
            fail(str(exc))
            status = EXIT_FAILURE
            continue
        out.write("".join(f"{line}\n" for line in lines))
    return status


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
