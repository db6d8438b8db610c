"""Netlink into a container's network namespace without forking the caller."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from pydock.network import bridge

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="entering a namespace needs root")


@pytest.fixture
def holder() -> Iterator[int]:
    """A process in a fresh network namespace with a veth pair of the test's own."""
    process = subprocess.Popen(
        ["unshare", "--net", "sh", "-c",
         "ip link add pdtest0 type veth peer name pdtest1 && echo up && exec sleep 60"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"up\n"
        yield process.pid
    finally:
        process.kill()
        process.wait()


def names(ip: bridge.IPRoute) -> set[str]:
    return {link.get_attr("IFLA_IFNAME") for link in ip.get_links()}


def test_the_namespace_is_entered_by_a_thread_not_a_fork(
    holder: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fork() -> int:
        raise AssertionError("forked to reach a network namespace")

    own = os.stat("/proc/thread-self/ns/net").st_ino
    monkeypatch.setattr(os, "fork", no_fork)
    with bridge._netlink(holder) as inside:
        assert names(inside) == {"lo", "pdtest0", "pdtest1"}
    # The caller's own thread never left its namespace.
    assert os.stat("/proc/thread-self/ns/net").st_ino == own
    with bridge._netlink(None) as here:
        assert "pdtest0" not in names(here)


def test_a_gone_namespace_is_an_error_in_the_callers_thread() -> None:
    with pytest.raises(FileNotFoundError), bridge._netlink(2**22 + 12345):
        pass
