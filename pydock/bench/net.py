"""The net workloads' HTTP client, and the network namespace of the benchmark's own.

A busybox ``httpd`` in a container serves the seeded site (:class:`pydock.bench.data.Site`):
``small.bin`` is fetched over and over on new connections (connections per second) and
``big.bin`` once (MiB/s). The client is this process: plain sockets and HTTP/1.0 to
127.0.0.1, so each reply ends when the server closes; every reply is checked (status 200,
exactly the file's size) and every wait is bounded.

As root the benchmark first moves into a network namespace of its own with only ``lo``
(:func:`enter_own_network`). Bridges, veths and nftables or iptables rules that pydock and
podman make for the published ports then live there and go with the benchmark's last
process, and they never meet the host's own ``pydock0`` or ``cni-podman0``.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import time
from dataclasses import dataclass

from pydock.bench.data import BIG_NAME, SMALL_NAME, Site
from pydock.errors import PydockError
from runtime import linux

HOST = "127.0.0.1"
IO_TIMEOUT = 10.0  # seconds any one connect, send or receive may wait
SAMPLE_DEADLINE = 300.0  # seconds one sample may take in all
READY_TIMEOUT = 20.0  # seconds a new server has to answer its first request
RECEIVE_BLOCK = 1 << 20

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


class NetBenchError(PydockError):
    """A request of the net workloads failed or was answered wrongly."""


def enter_own_network() -> str:
    """Move this process into a new network namespace with ``lo`` up; a note for the report."""
    linux.unshare(linux.CLONE_NEWNET)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
    return "net workloads: the benchmark runs in a network namespace of its own (lo only)"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _split_reply(head: bytes, port: int, path: str) -> tuple[int, int | None]:
    """Status code and Content-Length (None if absent) of a reply's header block."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise NetBenchError(f"GET {path} on port {port}: not an HTTP reply: {lines[0]!r}")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    return int(parts[1]), length


def get(port: int, path: str, expect: int, buffer: memoryview | None = None) -> int:
    """``GET path`` on 127.0.0.1:port over a new connection; the body's size, checked.

    The body is received into ``buffer`` (one block, overwritten) and only counted.
    NetBenchError when the reply is not 200 or its body is not ``expect`` bytes long.
    """
    if buffer is None:
        buffer = memoryview(bytearray(RECEIVE_BLOCK))
    request = f"GET /{path} HTTP/1.0\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    try:
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as sock:
            sock.sendall(request)
            head = b""
            while True:
                got = sock.recv_into(buffer)
                if got == 0:
                    raise NetBenchError(f"GET {path} on port {port}: connection closed early")
                head += bytes(buffer[:got])
                if b"\r\n\r\n" in head:
                    break
                if len(head) > 65536:
                    raise NetBenchError(f"GET {path} on port {port}: header too long")
            header, _, rest = head.partition(b"\r\n\r\n")
            status, length = _split_reply(header, port, path)
            body = len(rest)
            while got := sock.recv_into(buffer):
                body += got
    except OSError as exc:
        reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
        raise NetBenchError(f"GET {path} on port {port}: {reason}") from exc
    if status != 200:
        raise NetBenchError(f"GET {path} on port {port}: HTTP status {status}")
    if body != expect or (length is not None and length != expect):
        raise NetBenchError(f"GET {path} on port {port}: received {body} bytes, expected {expect}")
    return body


def wait_ready(port: int, site: Site, timeout: float = READY_TIMEOUT) -> None:
    """Wait until the server on ``port`` serves the small file (untimed, after a start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            get(port, SMALL_NAME, site.small_bytes)
            return
        except NetBenchError as exc:
            if time.monotonic() > deadline:
                raise NetBenchError(f"the server on port {port} did not answer: {exc}") from exc
            time.sleep(0.05)


@dataclass(frozen=True)
class Transfer:
    """What one sample moved: the figure, and the body bytes received."""

    value: float
    received: int


def connection_rate(port: int, site: Site, count: int) -> Transfer:
    """``count`` GETs of the small file, one connection each: connections per second."""
    buffer = memoryview(bytearray(RECEIVE_BLOCK))
    received = 0
    begin = time.perf_counter()
    for _ in range(count):
        received += get(port, SMALL_NAME, site.small_bytes, buffer)
        if time.perf_counter() - begin > SAMPLE_DEADLINE:
            raise NetBenchError(f"{count} connections took longer than {SAMPLE_DEADLINE:.0f} s")
    return Transfer(count / (time.perf_counter() - begin), received)


def throughput(port: int, site: Site) -> Transfer:
    """One GET of the big file: MiB/s of body received."""
    begin = time.perf_counter()
    received = get(port, BIG_NAME, site.big_bytes)
    return Transfer((received / (1 << 20)) / (time.perf_counter() - begin), received)
