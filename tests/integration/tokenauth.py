"""A token server for a real registry configured with ``auth: token`` (as Docker Hub works).

The registry answers 401 with ``Bearer realm=...,service=...,scope=...``; this server, on
127.0.0.1 in a thread, checks the client's Basic credentials and issues an RS256 JWT granting
the scopes asked for, signed by a self-signed certificate the registry trusts (``x5c``).
Needs the ``cryptography`` package; the test skips, naming it, if it is missing.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

SERVICE = "pydock-test-registry"
ISSUER = "pydock-test-issuer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    """Where the server listens, its certificate, and what it was asked."""

    address: str
    certificate: Path
    requests: list[dict[str, list[str]]] = field(default_factory=list)

    @property
    def realm(self) -> str:
        """The token endpoint's URL."""
        return f"http://{self.address}/token"

    def registry_auth(self) -> str:
        """The ``auth:`` section of a registry config that trusts this server."""
        return (
            "auth:\n  token:\n"
            f"    realm: {self.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
            f"    rootcertbundle: {self.certificate}\n"
        )


def _keys(workdir: Path) -> tuple[Any, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (workdir / "token.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert.public_bytes(serialization.Encoding.DER)


def _token(key: Any, der: bytes, user: str, scopes: list[str]) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    now = int(dt.datetime.now(dt.UTC).timestamp())
    access = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        access.append({"type": kind, "name": name, "actions": actions.split(",")})
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    claims = {
        "iss": ISSUER,
        "sub": user,
        "aud": SERVICE,
        "exp": now + 600,
        "nbf": now - 60,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "access": access,
    }
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing}.{_b64(signature)}"


@contextmanager
def token_server(workdir: Path, credentials: tuple[str, str]) -> Iterator[TokenServer]:
    """Run the token server; only ``credentials`` get a token."""
    key, der = _keys(workdir)
    expected = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            served.requests.append(query)
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            token = _token(key, der, credentials[0], query.get("scope", []))
            body = json.dumps({"token": token, "expires_in": 600}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served = TokenServer(f"127.0.0.1:{server.server_address[1]}", workdir / "token.pem")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
