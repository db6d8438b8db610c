"""What a start asks of nft, given what pydock's table already holds."""

from __future__ import annotations

from pydock.network import nft

ISOLATION_RULE = {"chain": "forward", "comment": nft.ISOLATION}


def kinds(commands: list[nft.Json]) -> list[str]:
    return [f"{verb} {next(iter(body))}" for c in commands for verb, body in c.items()]  # type: ignore[attr-defined]


def test_a_complete_table_needs_no_command() -> None:
    current = nft.Table(frozenset(nft.CHAINS), [ISOLATION_RULE])
    assert nft.ensure_table(current) == []


def test_no_table_gets_table_chains_and_isolation() -> None:
    commands = nft.ensure_table(nft.Table(frozenset(), []))
    assert kinds(commands) == ["add table"] + ["add chain"] * 4 + ["add rule"]
    chains = [c["add"]["chain"]["name"] for c in commands[1:5]]  # type: ignore[index]
    assert chains == ["forward", "prerouting", "output", "postrouting"]
    assert commands[-1]["add"]["rule"]["comment"] == nft.ISOLATION  # type: ignore[index]


def test_a_missing_chain_or_rule_is_added_again() -> None:
    partial = nft.Table(frozenset({"forward", "prerouting"}), [ISOLATION_RULE])
    assert kinds(nft.ensure_table(partial)) == ["add table"] + ["add chain"] * 4
    no_rule = nft.Table(frozenset(nft.CHAINS), [{"chain": "forward", "comment": "other"}])
    assert kinds(nft.ensure_table(no_rule)) == ["add rule"]
