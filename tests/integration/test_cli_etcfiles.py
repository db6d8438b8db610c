"""Generated /etc/hostname, /etc/hosts and /etc/resolv.conf, seen from inside the container."""

from __future__ import annotations

from pathlib import Path

import pytest

from .containers_support import ROOT_CONTAINER_TESTS, Snapshot, Workspace, assert_no_leaks, fails

pytestmark = ROOT_CONTAINER_TESTS

SHOW = (
    "cat /etc/hostname; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf;"
    " echo ---; hostname"
)


def sections(output: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for line in output.splitlines():
        if line == "---":
            parts.append([])
        else:
            parts[-1].append(line)
    return parts


@pytest.mark.parametrize("network", ["none", "host"])
def test_files_in_every_mode(one: Workspace, network: str) -> None:
    out = one.pydock.ok(
        "run", "--rm", "--network", network, "--hostname", "web1",
        "--add-host", "db:10.11.12.13", "--add-host", "v6=[fd00::5]", "--dns", "192.0.2.53",
        "--dns-search", "corp.example", "--dns-option", "ndots:3",
        "busybox", "sh", "-c", SHOW,
    )  # fmt: skip
    hostname, hosts, resolv, said = sections(out)
    assert hostname[0] == "web1"
    assert said == ["web1"]  # what `hostname` says agrees with the file
    assert "10.11.12.13\tdb" in hosts
    assert "fd00::5\tv6" in hosts
    assert resolv == ["search corp.example", "options ndots:3", "nameserver 192.0.2.53"]
    if network == "none":
        assert hosts[0] == "127.0.0.1\tlocalhost"
    else:
        host_lines = Path("/etc/hosts").read_text().splitlines()
        assert hosts[: len(host_lines)] == host_lines


def test_default_hostname_is_the_short_id(one: Workspace) -> None:
    cid = one.pydock.ok("run", "-d", "busybox", "cat", "/etc/hostname").strip()
    try:
        one.pydock.ok("wait", cid)
        assert one.pydock.ok("logs", cid) == cid[:12] + "\n"
    finally:
        one.pydock.run("rm", "-f", cid)


def test_files_on_a_read_only_root_and_a_user(one: Workspace) -> None:
    out = one.pydock.ok(
        "run", "--rm", "--read-only", "-u", "daemon", "--hostname", "ro1",
        "busybox", "sh", "-c",
        "cat /etc/hostname; (echo x >> /etc/hosts) 2>/dev/null || echo denied",
    )  # fmt: skip
    assert out.splitlines()[0] == "ro1"
    assert "denied" in out  # a user other than root may not write the hosts file


def test_a_volume_on_etc_hosts_wins(one: Workspace, tmp_path: Path) -> None:
    mine = tmp_path / "hosts"
    mine.write_text("10.0.0.99 mine\n")
    volume = f"{mine}:/etc/hosts:ro"
    out = one.pydock.ok("run", "--rm", "-v", volume, "busybox", "cat", "/etc/hosts")
    assert out == "10.0.0.99 mine\n"


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [("--add-host", "db:not-an-ip", "--add-host"), ("--dns", "resolver", "--dns")],
)
def test_bad_values_fail_before_anything_exists(
    one: Workspace, flag: str, value: str, needle: str
) -> None:
    before = Snapshot.take(one.root)
    fails(one.pydock.run("run", "--rm", flag, value, "busybox", "true"), needle)
    assert_no_leaks(one.root, before)
