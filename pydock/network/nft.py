"""nftables through ``nft -j``: JSON in, JSON out, and only in pydock's own table.

Every rule pydock adds lives in the table ``ip pydock`` and carries a comment naming what it
belongs to (``pydock-net:<network id>`` or ``pydock-ctr:<container id>``), so it is removed by
its handle when its owner goes, and recovery can find the rules of containers that died.
Rootless, ``nft`` runs in the network namespace of pydock's pause process, where the bridges are
(see ``rootlessnet``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from pydock.network import rootlessnet
from pydock.network.errors import NetworkError

FAMILY = "ip"
TABLE = "pydock"
# name -> (type, hook, priority)
CHAINS = {
    "forward": ("filter", "forward", 0),
    "prerouting": ("nat", "prerouting", -100),
    "output": ("nat", "output", -100),
    "postrouting": ("nat", "postrouting", 100),
}
# Traffic between two different pydock bridges: dropped (networks are isolated).
ISOLATION = "pydock-isolation"
BRIDGE_PATTERN = "pydock*"

Json = dict[str, object]


NET_TAG = "pydock-net:"
CONTAINER_TAG = "pydock-ctr:"


def net_tag(network_id: str) -> str:
    return NET_TAG + network_id[:32]


def container_tag(container_id: str) -> str:
    return CONTAINER_TAG + container_id[:32]


def run(commands: list[Json], *, doing: str) -> None:
    """Apply ``commands`` (one nft transaction: all or nothing)."""
    document = json.dumps({"nftables": commands})
    try:
        done = subprocess.run(
            ["nft", "-j", "-f", "-"], input=document, capture_output=True, text=True,
            timeout=30, preexec_fn=rootlessnet.entering(rootlessnet.holder()),
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise NetworkError(f"{doing}: running nft: {exc}") from exc
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()
        raise NetworkError(f"{doing}: nft: {why[0] if why else done.returncode}")


@dataclass(frozen=True)
class Table:
    """What pydock's table holds now: its chains' names and its rules (none: no table)."""

    chains: frozenset[str]
    rules: list[Json]


def table() -> Table:
    """Read pydock's table with one ``nft -j list``."""
    try:
        done = subprocess.run(
            ["nft", "-j", "list", "table", FAMILY, TABLE],
            capture_output=True,
            text=True,
            timeout=30,
            preexec_fn=rootlessnet.entering(rootlessnet.holder()),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise NetworkError(f"reading nftables rules: {exc}") from exc
    if done.returncode != 0:
        return Table(frozenset(), [])
    items = json.loads(done.stdout).get("nftables", [])
    chains = frozenset(str(cast(Json, item["chain"])["name"]) for item in items if "chain" in item)
    return Table(chains, [cast(Json, item["rule"]) for item in items if "rule" in item])


def rules() -> list[Json]:
    """The rules of pydock's table (none when it does not exist)."""
    return table().rules


def ensure_table(current: Table) -> list[Json]:
    """Commands that make the table, its chains and the isolation rule exist, given what
    ``current`` holds: none when all of them do (a start then runs no nft to add nothing)."""
    commands: list[Json] = []
    if not current.chains >= set(CHAINS):
        commands.append({"add": {"table": {"family": FAMILY, "name": TABLE}}})
        for name, (kind, hook, prio) in CHAINS.items():
            chain = {"family": FAMILY, "table": TABLE, "name": name, "type": kind,
                     "hook": hook, "prio": prio, "policy": "accept"}  # fmt: skip
            commands.append({"add": {"chain": chain}})
    if not any(rule.get("comment") == ISOLATION for rule in current.rules):
        expr: list[Json] = [
            match_meta("iifname", BRIDGE_PATTERN),
            match_meta("oifname", BRIDGE_PATTERN),
            {"drop": None},
        ]
        commands.append(rule("forward", expr, ISOLATION))
    return commands


def rule(chain: str, expr: list[Json], comment: str, *, insert: bool = False) -> Json:
    body = {"family": FAMILY, "table": TABLE, "chain": chain, "expr": expr, "comment": comment}
    return {"insert" if insert else "add": {"rule": body}}


def match_meta(key: str, value: str, op: str = "==") -> Json:
    return {"match": {"op": op, "left": {"meta": {"key": key}}, "right": value}}


def match_payload(protocol: str, field: str, value: object, op: str = "==") -> Json:
    left = {"payload": {"protocol": protocol, "field": field}}
    return {"match": {"op": op, "left": left, "right": value}}


def prefix(subnet: str) -> Json:
    address, _, length = subnet.partition("/")
    return {"prefix": {"addr": address, "len": int(length)}}


def delete_tagged(tags: Iterable[str], *, doing: str) -> None:
    """Delete every rule whose comment is one of ``tags``."""
    wanted = set(tags)
    commands: list[Json] = []
    for found in rules():
        if found.get("comment") in wanted:
            target = {key: found[key] for key in ("family", "table", "chain", "handle")}
            commands.append({"delete": {"rule": target}})
    if commands:
        run(commands, doing=doing)


def tags_in_use() -> set[str]:
    """The comments of every rule in pydock's table."""
    return {str(found["comment"]) for found in rules() if "comment" in found}
