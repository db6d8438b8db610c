"""Messages between the caller, the monitor and the container's init over a seqpacket socket.

Each message is one JSON object in one packet, optionally carrying one file descriptor (the
console). The socket is close-on-exec, so the caller reads end-of-file once the command has
been executed, and an error message if it could not be.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field

MAX_MESSAGE = 64 * 1024


@dataclass(frozen=True)
class Message:
    """One message: a ``kind`` plus its fields, and a received descriptor if one came along."""

    kind: str
    fields: dict[str, object] = field(default_factory=dict)
    fd: int | None = None

    def text(self, key: str, default: str = "") -> str:
        """Return a string field."""
        value = self.fields.get(key, default)
        return value if isinstance(value, str) else default

    def number(self, key: str) -> int | None:
        """Return an integer field, or None."""
        value = self.fields.get(key)
        return value if isinstance(value, int) else None


def pair() -> tuple[socket.socket, socket.socket]:
    """Return a connected pair of close-on-exec seqpacket sockets (caller side, child side)."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send(
    sock: socket.socket,
    kind: str,
    fields: dict[str, object] | None = None,
    *,
    fd: int | None = None,
) -> None:
    """Send one message, with ``fd`` attached when given."""
    payload = json.dumps({"kind": kind, **(fields or {})}).encode()
    if fd is None:
        sock.send(payload)
    else:
        socket.send_fds(sock, [payload], [fd])


def receive(sock: socket.socket) -> Message | None:
    """Receive one message; None at end-of-file (every peer closed or executed)."""
    data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 1)
    if not data:
        for extra in fds:
            socket.close(extra)
        return None
    decoded = json.loads(data)
    kind = str(decoded.pop("kind", ""))
    return Message(kind, decoded, fds[0] if fds else None)
