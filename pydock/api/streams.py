"""Copying a process's streams to hijacked clients: attach sessions and exec sessions.

A session owns the service's ends of a process's standard streams: pipes for stdout and
stderr (multiplexed with Docker's 8-byte headers to the clients), or the terminal's master
(raw). Every byte goes to each client still connected and, for containers, to the log files;
a client that goes away is dropped and costs nothing more. Standard input comes from clients
that asked for it; its end of file closes the process's stdin (not a terminal's).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import termios
from dataclasses import dataclass, field

import trio

from pydock.api.http import CHUNK, frame

STDOUT, STDERR = 1, 2
INPUT_BUFFER = 64


@dataclass
class Client:
    """One hijacked connection attached to a process."""

    stream: trio.abc.Stream
    stdin: bool
    stdout: bool
    stderr: bool
    leftover: bytes = b""
    done: trio.Event = field(default_factory=trio.Event)
    gone: bool = False
    input_send: trio.MemorySendChannel[bytes] | None = None
    input_receive: trio.MemoryReceiveChannel[bytes] | None = None

    def __post_init__(self) -> None:
        self.input_send, self.input_receive = trio.open_memory_channel[bytes](INPUT_BUFFER)

    async def read_input(self) -> None:
        """Copy what the client sends into its input channel; ``b""`` marks its end."""
        assert self.input_send is not None
        async with self.input_send:
            if self.leftover:
                await self.input_send.send(self.leftover)
            while True:
                try:
                    data = await self.stream.receive_some(CHUNK)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                await self.input_send.send(bytes(data))
                if not data:
                    return


@dataclass
class Fds:
    """The service's ends of a process's streams (each may be absent)."""

    stdout: int | None = None
    stderr: int | None = None
    stdin: int | None = None
    console: int | None = None
    logs: tuple[int, int] | None = None

    def close(self) -> None:
        """Close every descriptor still held."""
        for fd in (self.stdout, self.stderr, self.stdin, self.console):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        for fd in self.logs or ():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.stdout = self.stderr = self.stdin = self.console = None
        self.logs = None


class Session:
    """The clients of one running process and the copying between them."""

    def __init__(self, fds: Fds, clients: list[Client]) -> None:
        self.fds = fds
        self.clients = clients
        self._lock = trio.Lock()
        self.console: trio.lowlevel.FdStream | None = None

    @property
    def tty(self) -> bool:
        """Whether the process has a terminal."""
        return self.fds.console is not None

    def add(self, client: Client) -> None:
        """Another client (``docker attach`` to a running session)."""
        self.clients.append(client)

    def resize(self, height: int, width: int) -> None:
        """Resize the process's terminal."""
        if self.fds.console is not None:
            size = struct.pack("HHHH", height, width, 0, 0)
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.fds.console, termios.TIOCSWINSZ, size)

    async def _deliver(self, which: int, data: bytes) -> None:
        if self.fds.logs is not None:
            log = self.fds.logs[0 if which == STDOUT or self.tty else 1]
            with contextlib.suppress(OSError):
                os.write(log, data)
        message = data if self.tty else frame(which, data)
        async with self._lock:
            for client in list(self.clients):
                wanted = client.stdout if which == STDOUT else client.stderr
                if client.gone or not wanted:
                    continue
                try:
                    await client.stream.send_all(message)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    client.gone = True
                    client.done.set()

    async def _copy_out(self, stream: trio.lowlevel.FdStream, which: int) -> None:
        async with contextlib.AsyncExitStack() as stack:
            if stream is not self.console:
                await stack.enter_async_context(stream)
            while True:
                try:
                    data = await stream.receive_some(CHUNK)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""  # a terminal reads EIO once the process side is gone
                if not data:
                    return
                await self._deliver(which, data)

    async def _copy_in(self, client: Client, stdin: trio.abc.SendStream | None) -> None:
        assert client.input_receive is not None
        async for data in client.input_receive:
            if not data:
                break
            if stdin is None or not client.stdin:
                continue
            try:
                await stdin.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
        # Docker's clients close their side when their input ends (or at once without -i);
        # only a write that fails tells that a client has gone.
        if stdin is not None and client.stdin and stdin is not self.console:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stdin.aclose()

    async def run(self) -> None:
        """Copy until the process's output ends; then let every client go."""
        fds = self.fds
        stdin: trio.abc.SendStream | None = None
        try:
            async with trio.open_nursery() as copying:
                if fds.console is not None:
                    self.console = trio.lowlevel.FdStream(os.dup(fds.console))
                    stdin = self.console
                elif fds.stdin is not None:
                    stdin = trio.lowlevel.FdStream(fds.stdin)
                    fds.stdin = None
                async with trio.open_nursery() as inputs:
                    for client in self.clients:
                        inputs.start_soon(self._copy_in, client, stdin)
                    async with trio.open_nursery() as outputs:
                        if self.console is not None:
                            outputs.start_soon(self._copy_out, self.console, STDOUT)
                        for which in (STDOUT, STDERR):
                            fd = fds.stdout if which == STDOUT else fds.stderr
                            if fd is not None:
                                outputs.start_soon(
                                    self._copy_out, trio.lowlevel.FdStream(fd), which
                                )
                        fds.stdout = fds.stderr = None
                    inputs.cancel_scope.cancel()
                copying.cancel_scope.cancel()
        finally:
            if self.console is not None:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self.console.aclose()
            elif stdin is not None:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stdin.aclose()
            fds.close()
            for client in self.clients:
                client.done.set()
