"""``pydock-forward``: a rootless container's published ports (see ``rootlessnet``).

    python -m pydock.network.forwarder pydock-forward NETNS PID READY_FD FD/PROTO/ADDR/PORT...

The listening sockets (the FDs) were bound by pydock in the host's network namespace; this
process then moves into NETNS, so every connection it makes to ADDR:PORT starts there, where
the container's bridge is. It writes ``ok`` (or why not) to READY_FD once it serves, and
leaves when process PID (the container) ends or on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import cast

import runtime.linux

CHUNK = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


async def _tcp(listener: socket.socket, address: str, port: int) -> asyncio.Server:
    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            target_r, target_w = await asyncio.open_connection(address, port)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(_pipe(client_r, target_w), _pipe(target_r, client_w))
        finally:
            client_w.close()
            target_w.close()

    return await asyncio.start_server(serve, sock=listener)


class _Back(asyncio.DatagramProtocol):
    """Replies from the container to one client, sent back through the host port."""

    def __init__(self, front: asyncio.DatagramTransport, client: tuple[str, int]) -> None:
        self.front, self.client = front, client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.front.sendto(data, self.client)


class _Front(asyncio.DatagramProtocol):
    """Datagrams to the host port: each client gets its own socket towards the container."""

    def __init__(self, address: str, port: int) -> None:
        self.target = (address, port)
        self.transport: asyncio.DatagramTransport | None = None
        self.clients: dict[tuple[str, int], asyncio.DatagramTransport] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport is not a registered DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        back = self.clients.get(addr)
        if back is not None:
            back.sendto(data)
        else:
            asyncio.get_running_loop().create_task(self._open(data, addr))

    async def _open(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        front = self.transport
        with contextlib.suppress(OSError):
            back, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Back(front, addr), remote_addr=self.target
            )
            self.clients[addr] = back
            back.sendto(data)


def _front_factory(address: str, port: int) -> Callable[[], _Front]:
    return lambda: _Front(address, port)


async def _serve(netns_fd: int, pid: int, ready: int, specs: list[str]) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, done.set)
    try:
        watched = os.pidfd_open(pid)
    except OSError as exc:
        os.write(ready, f"watching the container: {exc.strerror}".encode())
        return
    loop.add_reader(watched, done.set)
    runtime.linux.setns(netns_fd, runtime.linux.CLONE_NEWNET)
    servers = []
    for spec in specs:
        fd, protocol, address, port = spec.split("/")
        kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET, kind, fileno=int(fd))
        sock.setblocking(False)
        if protocol == "tcp":
            servers.append(await _tcp(sock, address, int(port)))
        else:
            await loop.create_datagram_endpoint(_front_factory(address, int(port)), sock=sock)
    os.write(ready, b"ok")
    os.close(ready)
    await done.wait()
    for server in servers:
        server.close()


def main(argv: list[str]) -> int:
    _mark, netns, pid, ready, *specs = argv
    ready_fd = int(ready)
    try:
        netns_fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        os.write(ready_fd, f"opening {netns}: {exc.strerror}".encode())
        return 1
    try:
        asyncio.run(_serve(netns_fd, int(pid), ready_fd, specs))
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.write(ready_fd, f"forwarding: {exc.strerror or exc}".encode())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
