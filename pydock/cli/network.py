"""``network create|ls|inspect|rm|prune|connect|disconnect`` and ``port``, in Docker's words."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from pydock.cli.base import EXIT_FAILURE, fail
from pydock.containers import lifecycle, networking
from pydock.engine import Engine
from pydock.errors import PydockError
from pydock.format import table
from pydock.network.service import Networks, network_view
from pydock.network.views import port_lines


def _networks(engine: Engine) -> Networks:
    return networking.service(engine.containers)


def cmd_network_create(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Create a network and print its id."""
    record = _networks(engine).create(
        args.name, driver=args.driver, subnet=args.subnet, gateway=args.gateway,
        internal=args.internal,
    )  # fmt: skip
    out.write(record.id + "\n")
    return 0


def cmd_network_ls(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """List networks: NETWORK ID, NAME, DRIVER, SCOPE."""
    records = _networks(engine).list_networks()
    if args.quiet:
        out.write("".join(r.id[:12] + "\n" for r in records))
        return 0
    if args.format == "json":
        for r in records:
            row = {
                "ID": r.id[:12],
                "Name": r.name,
                "Driver": r.driver,
                "Scope": "local",
                "Internal": str(r.internal).lower(),
                "IPv6": "false",
                "CreatedAt": r.created,
            }
            out.write(json.dumps(row) + "\n")
        return 0
    rows = [[r.id[:12], r.name, r.driver, "local"] for r in records]
    out.write(table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], rows) + "\n")
    return 0


def cmd_network_inspect(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Print a JSON array describing each network."""
    networks = _networks(engine)
    found: list[dict[str, object]] = []
    status = 0
    for name in args.networks:
        try:
            record = networks.lookup(name, doing="inspecting network")
        except PydockError as exc:
            fail(str(exc))
            status = EXIT_FAILURE
            continue
        found.append(network_view(record, networks.members(record)))
    out.write(json.dumps(found, indent=4) + "\n")
    return status


def cmd_network_rm(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Remove networks that no container uses."""
    networks = _networks(engine)
    networks.forget_stale()
    status = 0
    for name in args.networks:
        try:
            networks.remove(networks.lookup(name, doing="removing network"))
        except PydockError as exc:
            fail(str(exc))
            status = EXIT_FAILURE
            continue
        out.write(name + "\n")
    return status


def cmd_network_prune(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Remove every user-defined network that no container uses."""
    removed = _networks(engine).prune()
    if removed:
        out.write("Deleted Networks:\n" + "".join(name + "\n" for name in removed))
    return 0


def cmd_network_connect(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Connect a container to a network."""
    manager = engine.containers
    record = manager.lookup(args.container, doing="connecting")
    networking.connect(manager, record, args.network, tuple(args.alias))
    return 0


def cmd_network_disconnect(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Disconnect a container from a network."""
    manager = engine.containers
    record = manager.lookup(args.container, doing="disconnecting")
    networking.disconnect(manager, record, args.network)
    return 0


def cmd_port(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """List a container's published ports (or the host address of one of them)."""
    manager = engine.containers
    record = manager.lookup(args.container, doing="listing ports of")
    record = lifecycle.refresh(manager, record) or record
    lines = port_lines(manager.store.networks.ports(record.id), args.port)
    if args.port is not None and not lines:
        fail(f"listing ports of {args.container}: no public port '{args.port}' published")
        return EXIT_FAILURE
    out.write("".join(line + "\n" for line in lines))
    return 0
