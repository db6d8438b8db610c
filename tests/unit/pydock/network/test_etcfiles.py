"""The generated /etc/hosts, /etc/hostname and /etc/resolv.conf, as text."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydock.network import etcfiles
from pydock.network.errors import NetworkConfigError


def test_add_host_forms() -> None:
    assert etcfiles.parse_add_host("db:10.0.0.5") == etcfiles.HostEntry("10.0.0.5", ("db",))
    assert etcfiles.parse_add_host("db=10.0.0.5") == etcfiles.HostEntry("10.0.0.5", ("db",))
    assert etcfiles.parse_add_host("v6:[::1]").address == "::1"
    assert etcfiles.parse_add_host("v6:fe80::1").address == "fe80::1"


@pytest.mark.parametrize("text", ["db", "db:", ":1.2.3.4", "db:300.1.1.1", "db:name"])
def test_add_host_rejects(text: str) -> None:
    with pytest.raises(NetworkConfigError, match="--add-host"):
        etcfiles.parse_add_host(text)


def test_dns_checked() -> None:
    assert etcfiles.check_dns("1.1.1.1") == "1.1.1.1"
    with pytest.raises(NetworkConfigError, match="--dns"):
        etcfiles.check_dns("dns.example")


def test_hosts_own_network() -> None:
    text = etcfiles.hosts_text(
        "web",
        ["172.18.0.2"],
        extra=[etcfiles.HostEntry("10.0.0.5", ("db",))],
        peers=[etcfiles.HostEntry("172.18.0.3", ("api", "api-alias"))],
    )
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert lines[-3:] == ["10.0.0.5\tdb", "172.18.0.2\tweb", "172.18.0.3\tapi api-alias"]


def test_hosts_host_network_copies_the_host_file(tmp_path: Path) -> None:
    host = tmp_path / "hosts"
    host.write_text("127.0.0.1 localhost\n10.9.9.9 build-host\n")
    text = etcfiles.hosts_text(
        "ignored", [], extra=[etcfiles.HostEntry("10.0.0.5", ("db",))], host_network=True,
        host_hosts=host,
    )  # fmt: skip
    assert text == "127.0.0.1 localhost\n10.9.9.9 build-host\n10.0.0.5\tdb\n"


def test_resolv_conf_drops_loopback_servers() -> None:
    host = "# generated\nsearch corp.example\nnameserver 127.0.0.53\noptions edns0\n"
    text = etcfiles.resolv_conf_text((), host_text=host)
    assert "127.0.0.53" not in text
    assert "nameserver 8.8.8.8" in text.splitlines()
    assert "search corp.example" in text.splitlines()
    # The host's namespace reaches its own stub resolver: kept.
    kept = etcfiles.resolv_conf_text((), host_network=True, host_text=host)
    assert "nameserver 127.0.0.53" in kept


def test_resolv_conf_dns_replaces_servers() -> None:
    host = "nameserver 10.1.1.1\nnameserver 10.1.1.2\n"
    text = etcfiles.resolv_conf_text(("9.9.9.9",), host_text=host)
    assert text == "nameserver 9.9.9.9\n"


def test_rewrite_keeps_the_inode(tmp_path: Path) -> None:
    """A bind mount shows the file it was made on: the rewrite must not replace the inode."""
    path = tmp_path / "hosts"
    etcfiles.write_file(path, "a long first version\n")
    inode = path.stat().st_ino
    etcfiles.write_file(path, "short\n")
    assert path.stat().st_ino == inode
    assert path.read_text() == "short\n"
    assert path.stat().st_mode & 0o777 == 0o644


def test_resolv_conf_search_and_options() -> None:
    host = "search corp.example\nnameserver 10.1.1.1\noptions edns0\n"
    text = etcfiles.resolv_conf_text((), search=("a.example", "b.example"), options=("ndots:2",),
                                     host_text=host)  # fmt: skip
    assert text.splitlines() == [
        "search a.example b.example", "options ndots:2", "nameserver 10.1.1.1",
    ]  # fmt: skip
    with pytest.raises(NetworkConfigError, match="--dns-search"):
        etcfiles.check_word("two words", "--dns-search")
