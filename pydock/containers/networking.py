"""A container's network around its runtime start: the generated /etc files it is given.

The files live in the container's directory and are bound over ``/etc/hostname``,
``/etc/hosts`` and ``/etc/resolv.conf`` in every network mode, as Docker does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import runtime
from pydock.containers.config import ContainerConfig
from pydock.network import etcfiles
from pydock.store import ContainerRecord


def hostname_of(record: ContainerRecord, config: ContainerConfig) -> str:
    """``--hostname``, else the first 12 characters of the id (as the runtime sets it)."""
    return config.hostname or record.id[:12]


def extra_hosts(config: ContainerConfig) -> list[etcfiles.HostEntry]:
    """The ``--add-host`` entries (kept as NAME:IP, the address may hold colons)."""
    entries = []
    for item in config.add_hosts:
        name, _, address = item.partition(":")
        entries.append(etcfiles.HostEntry(address, (name,)))
    return entries


def write_etc_files(
    record: ContainerRecord,
    config: ContainerConfig,
    directory: Path,
    *,
    addresses: Sequence[str] = (),
    peers: Sequence[etcfiles.HostEntry] = (),
) -> dict[str, Path]:
    """(Re)write the container's three files; their paths by name."""
    return etcfiles.write_all(
        directory,
        hostname=hostname_of(record, config),
        addresses=addresses,
        extra=extra_hosts(config),
        peers=peers,
        dns=config.dns,
        host_network=config.network == "host",
    )


def etc_mounts(
    record: ContainerRecord,
    config: ContainerConfig,
    directory: Path,
    *,
    addresses: Sequence[str] = (),
    peers: Sequence[etcfiles.HostEntry] = (),
) -> tuple[runtime.BindMount, ...]:
    """Write the files and return their bind mounts for the runtime's spec."""
    paths = write_etc_files(record, config, directory, addresses=addresses, peers=peers)
    return tuple(runtime.BindMount(paths[name], f"/etc/{name}") for name in etcfiles.NAMES)
