"""HTTP/1.1 over a trio stream with h11: requests in, JSON/streamed/hijacked responses out.

h11 does all the parsing; this module only drives it. A request body is read whole only up to
:data:`MAX_JSON_BODY` (413 beyond); uploads (``images/load``) are read chunk by chunk and
bounded by :data:`MAX_UPLOAD`. A hijacked connection (``attach``, ``exec start``) answers
``101 UPGRADED`` when the client asked for ``Upgrade: tcp`` (Docker's 200 otherwise) and from
then on is a plain byte stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import h11
import trio

CHUNK = 1 << 16
MAX_HEADERS = 64 * 1024
MAX_JSON_BODY = 4 * 1024 * 1024
MAX_UPLOAD = 64 * 1024 * 1024 * 1024
RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"
_VERSION = re.compile(r"/v(\d+)\.(\d+)(/.*)")
SERVER = "pydock"
# h11 has the state but does not list it among its exports.
_MIGHT_SWITCH: object = getattr(h11, "MIGHT_SWITCH_PROTOCOL")  # noqa: B009


class HttpError(Exception):
    """A request that fails with ``status`` and Docker's ``{"message": ...}`` body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ClientGone(Exception):
    """The client closed the connection (or broke it) while we were talking to it."""


@dataclass
class Request:
    """One request: its method, path (version prefix removed), query and headers."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    version: tuple[int, int] | None = None
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str = "") -> str:
        """The last value of query parameter ``name``."""
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter (``1``, ``true``; Docker's reading)."""
        values = self.query.get(name)
        if not values:
            return default
        return values[-1].lower() in ("1", "true", "yes")

    def number(self, name: str, default: int | None = None) -> int | None:
        """An integer query parameter."""
        text = self.arg(name)
        if not text:
            return default
        try:
            return int(text)
        except ValueError as exc:
            raise HttpError(400, f"invalid value for {name}: {text!r}") from exc

    @property
    def wants_upgrade(self) -> bool:
        """Whether the client asked to switch to a raw stream (``Upgrade: tcp``)."""
        return "upgrade" in self.headers.get("connection", "").lower()


def parse_target(target: str) -> tuple[str, dict[str, list[str]], tuple[int, int] | None]:
    """Path, query and ``/vX.Y`` version of a request target."""
    parts = urlsplit(target)
    path = unquote(parts.path)
    version = None
    match = _VERSION.fullmatch(path)
    if match is not None:
        version = (int(match.group(1)), int(match.group(2)))
        path = match.group(3)
    return path.rstrip("/") or "/", parse_qs(parts.query, keep_blank_values=True), version


class HttpConnection:
    """The server side of one connection."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
        self.hijacked = False
        self.declared_length = 0
        self.head = False  # a HEAD request: its response has headers only

    async def _receive(self) -> None:
        try:
            data = await self.stream.receive_some(CHUNK)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ClientGone() from exc
        self.h11.receive_data(bytes(data))

    async def next_event(self) -> object:
        """The next h11 event, reading from the socket as needed."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise HttpError(exc.error_status_hint, f"bad request: {exc}") from exc
            if event is h11.NEED_DATA:
                await self._receive()
                continue
            return event

    async def read_request(self) -> Request | None:
        """The next request, or ``None`` when the client is done with the connection."""
        event = await self.next_event()
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        if not isinstance(event, h11.Request):
            raise HttpError(400, "bad request")
        path, query, version = parse_target(event.target.decode("latin-1"))
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers
        }
        self.declared_length = int(headers.get("content-length", "0") or 0)
        self.head = event.method == b"HEAD"
        return Request(event.method.decode("ascii"), path, query, headers, version)

    async def body_chunks(self, limit: int = MAX_UPLOAD) -> AsyncIterator[bytes]:
        """The request body, chunk by chunk; 413 past ``limit`` bytes."""
        total = 0
        while True:
            event = await self.next_event()
            if isinstance(event, h11.Data):
                total += len(event.data)
                if total > limit:
                    raise HttpError(413, f"request body is larger than {limit} bytes")
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            elif isinstance(event, h11.ConnectionClosed):
                raise ClientGone()

    async def body(self, limit: int = MAX_JSON_BODY) -> bytes:
        """The whole request body (at most ``limit`` bytes; a longer one is refused unread)."""
        if self.declared_length > limit:
            raise HttpError(413, f"request body is larger than {limit} bytes")
        return b"".join([chunk async for chunk in self.body_chunks(limit)])

    async def json_body(self) -> dict[str, object]:
        """The body as a JSON object (an empty body is ``{}``)."""
        data = await self.body()
        if not data.strip():
            return {}
        try:
            document = json.loads(data)
        except ValueError as exc:
            raise HttpError(400, f"invalid JSON body: {exc}") from exc
        if not isinstance(document, dict):
            raise HttpError(400, "invalid JSON body: expected an object")
        return document

    async def drain(self) -> None:
        """Read and drop what is left of the request body."""
        if self.h11.their_state is h11.SEND_BODY:
            async for _ in self.body_chunks():
                pass

    # -- responses ----------------------------------------------------------------------------

    async def _send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ClientGone() from exc

    @property
    def responded(self) -> bool:
        """Whether a response has begun."""
        return self.hijacked or self.h11.our_state is not h11.SEND_RESPONSE

    async def respond(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """A whole response."""
        all_headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        all_headers += [("Server", SERVER), *(headers or [])]
        await self._send(h11.Response(status_code=status, headers=all_headers))
        if body and not self.head:  # h11 refuses a body after HEAD, even an error's
            await self._send(h11.Data(data=body))
        await self._send(h11.EndOfMessage())

    async def json(self, status: int, document: object) -> None:
        """A JSON response."""
        await self.respond(status, json.dumps(document).encode() + b"\n")

    async def error(self, status: int, message: str) -> None:
        """Docker's error body."""
        await self.json(status, {"message": message})

    async def start_stream(
        self,
        status: int = 200,
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Begin a response of unknown length (chunked)."""
        headers = [("Content-Type", content_type), ("Server", SERVER), *(headers or [])]
        await self._send(h11.Response(status_code=status, headers=headers))

    async def write(self, data: bytes) -> None:
        """More of a streamed response."""
        if data and not self.head:
            await self._send(h11.Data(data=data))

    async def end_stream(self) -> None:
        """End a streamed response."""
        await self._send(h11.EndOfMessage())

    async def hijack(self, request: Request, content_type: str) -> bytes:
        """Answer a hijack request; returns bytes the client already sent past the request.

        After this the connection's stream is the raw, bidirectional stream.
        """
        await self.drain()
        headers = [("Content-Type", content_type)]
        if request.wants_upgrade and self.h11.their_state is _MIGHT_SWITCH:
            headers += [("Connection", "Upgrade"), ("Upgrade", "tcp")]
            await self._send(h11.InformationalResponse(status_code=101, headers=headers))
            leftover = self.h11.trailing_data[0]
        else:
            # Docker's answer to an old-style hijack: a 200 head, then the raw stream.
            # h11 would frame the body, so the head goes out as bytes of its own.
            leftover = self.h11.trailing_data[0]
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nServer: {SERVER}\r\n\r\n"
            try:
                await self.stream.send_all(head.encode())
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ClientGone() from exc
        self.hijacked = True
        return bytes(leftover)

    def next_request_allowed(self) -> bool:
        """Whether the connection may carry another request (keep-alive)."""
        if self.hijacked:
            return False
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False


def frame(stream: int, data: bytes) -> bytes:
    """Docker's multiplexed framing: stream (1 stdout, 2 stderr), 3 zero bytes, length."""
    return bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big") + data
