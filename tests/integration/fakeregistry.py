"""A tiny scripted registry for failures a real one will not produce on demand.

It serves one image from memory and can: demand a Bearer token from its own token endpoint
(as Docker Hub does), answer 500 to everything, or cut a layer download off half-way.
Runs on 127.0.0.1 in a thread; stopped by the context manager even when the test fails.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from .imagebuild import OCI_MANIFEST, compress, config_for, sha256

TOKEN = "fake-token-1234"


@dataclass
class Script:
    """What the fake registry serves and how it misbehaves."""

    manifest: bytes
    blobs: dict[str, bytes]
    mode: str = "ok"  # ok | token | error500 | truncate
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    seen_auth: list[str] = field(default_factory=list)


def image_script(layers: list[bytes], mode: str = "ok") -> Script:
    """A script serving an OCI image of gzip ``layers``."""
    config = config_for(layers)
    packed = [compress(layer, "gzip") for layer in layers]
    blobs = {sha256(config): config} | {sha256(blob): blob for blob in packed}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha256(blob),
                "size": len(blob),
            }
            for blob in packed
        ],
    }
    return Script(json.dumps(manifest).encode(), blobs, mode)


class _Handler(BaseHTTPRequestHandler):
    script: Script
    address: str

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        script = self.script
        url = urlparse(self.path)
        if url.path == "/token":
            script.token_requests.append(parse_qs(url.query))
            self._send(200, json.dumps({"token": TOKEN}).encode())
            return
        script.seen_auth.append(self.headers.get("Authorization", ""))
        if script.mode == "token" and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            realm = f'Bearer realm="http://{self.address}/token",service="fake"'
            self._error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": realm})
            return
        if url.path == "/v2/":
            self._send(200, b"{}")
            return
        if script.mode == "error500":
            self._error(500, "UNKNOWN", "the disk caught fire")
            return
        parts = url.path.split("/")
        if "manifests" in parts:
            self._send(200, script.manifest, {"Content-Type": OCI_MANIFEST})
            return
        digest = parts[-1]
        blob = script.blobs.get(digest)
        if blob is None:
            self._error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            return
        if script.mode == "truncate" and len(blob) > 1000 and self.command == "GET":
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob[: len(blob) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(200, blob, {"Content-Type": "application/octet-stream"})


@contextmanager
def fake_registry(script: Script) -> Iterator[str]:
    """Serve ``script`` on 127.0.0.1; yields ``host:port``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    address = f"127.0.0.1:{server.server_address[1]}"
    handler = type("Handler", (_Handler,), {"script": script, "address": address})
    server.RequestHandlerClass = handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield address
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
