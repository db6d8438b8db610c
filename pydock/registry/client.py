"""The HTTP side of the OCI distribution API v2, over one thread-safe ``httpx.Client``.

Every request may meet a 401 challenge: the client then authenticates (see
:mod:`pydock.registry.auth`) and tries once more. Transport failures and error statuses
become :class:`RegistryError` with what was being done and the registry's own words.
``tls_verify=False`` accepts any certificate and falls back to plain HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping

import httpx

from pydock.closing import Closing
from pydock.image import manifest as mf
from pydock.image.content import CHUNK_SIZE, digest_bytes
from pydock.info import package_version
from pydock.registry.auth import Challenge, basic_header, parse_challenges, repository_scope
from pydock.registry.credentials import Credentials
from pydock.registry.errors import AuthenticationError, RegistryError

MANIFEST_LIMIT = 4 << 20
UPLOAD_CHUNK = 32 << 20
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
_HUB = {"docker.io": "registry-1.docker.io"}

Progress = Callable[[int], None]


class RegistryClient(Closing):
    """One registry (``domain``), possibly with credentials; share it between threads."""

    def __init__(
        self,
        domain: str,
        *,
        tls_verify: bool | None = None,
        credentials: Credentials | None = None,
        timeout: httpx.Timeout = TIMEOUT,
    ) -> None:
        self.domain = domain
        self.host = _HUB.get(domain, domain)
        # As Docker: a registry on this machine is insecure unless told otherwise.
        self.tls_verify = not is_local(self.host) if tls_verify is None else tls_verify
        self.credentials = credentials
        agent = f"pydock/{package_version('pydock')}"
        self.http = httpx.Client(
            verify=self.tls_verify,
            timeout=timeout,
            follow_redirects=True,
            headers={"User-Agent": agent},
        )
        self._base: str | None = None
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], str] = {}

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    # -- plumbing -----------------------------------------------------------------------------

    def base(self) -> str:
        """``https://host`` or (without TLS verification, if HTTPS fails) ``http://host``."""
        with self._lock:
            if self._base is not None:
                return self._base
        schemes = ("https",) if self.tls_verify else ("https", "http")
        failure: httpx.HTTPError | None = None
        for scheme in schemes:
            try:
                response = self.http.get(f"{scheme}://{self.host}/v2/")
            except httpx.HTTPError as exc:
                failure = exc
                continue
            response.close()
            with self._lock:
                self._base = f"{scheme}://{self.host}"
                return self._base
        assert failure is not None
        raise _transport_error(f"reaching registry {self.domain}", failure) from failure

    def request(
        self,
        method: str,
        target: str,
        *,
        what: str,
        scopes: tuple[str, ...] = (),
        ok: tuple[int, ...] = (200,),
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send a request (authenticating on a 401) and check its status is one of ``ok``."""
        url = target if "://" in target else self.base() + target
        response: httpx.Response | None = None
        for attempt in range(2):
            sent = dict(headers or {})
            authorization = self._authorization(scopes)
            if authorization:
                sent["Authorization"] = authorization
            try:
                request = self.http.build_request(method, url, headers=sent, content=content)
                response = self.http.send(request, stream=stream)
            except httpx.HTTPError as exc:
                raise _transport_error(what, exc) from exc
            if response.status_code == 401 and attempt == 0:
                response.close()
                self._authenticate(response, scopes, what)
                continue
            break
        assert response is not None
        if response.status_code not in ok:
            with contextlib.suppress(httpx.HTTPError):
                response.read()
            response.close()
            raise _status_error(what, response)
        return response

    def _authorization(self, scopes: tuple[str, ...]) -> str | None:
        with self._lock:
            challenge = self._challenge
            if challenge is None:
                return None
            if challenge.scheme == "basic":
                return basic_header(self.credentials) if self.credentials else None
            return self._tokens.get(scopes)

    def _authenticate(self, response: httpx.Response, scopes: tuple[str, ...], what: str) -> None:
        challenges = parse_challenges(response.headers.get_list("www-authenticate"))
        bearer = [c for c in challenges if c.scheme == "bearer" and c.params.get("realm")]
        if bearer:
            token = self._fetch_token(bearer[0], scopes, what)
            with self._lock:
                self._challenge = bearer[0]
                self._tokens[scopes] = f"Bearer {token}"
            return
        if any(c.scheme == "basic" for c in challenges) and self.credentials is not None:
            with self._lock:
                self._challenge = Challenge("basic")
            return
        raise AuthenticationError(
            f"{what}: unauthorized: {self.domain} asks for credentials"
            f" (pydock login {self.domain})",
            status=401,
        )

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...], what: str) -> str:
        realm = challenge.params["realm"]
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("scope", scope) for scope in scopes
        ]
        if challenge.params.get("service"):
            params.insert(0, ("service", challenge.params["service"]))
        headers = {"Authorization": basic_header(self.credentials)} if self.credentials else {}
        try:
            response = self.http.get(realm, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise _transport_error(f"{what}: getting a token from {realm}", exc) from exc
        if response.status_code != 200:
            raise _status_error(f"{what}: getting a token from {realm}", response)
        try:
            document = response.json()
            token = document.get("token") or document.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise AuthenticationError(f"{what}: the token server {realm} sent no token")
        return token

    # -- the API ------------------------------------------------------------------------------

    def ping(self) -> None:
        """Check the registry answers (and accepts the credentials, if it asks for some)."""
        self.request("GET", "/v2/", what="checking the credentials")

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """A manifest or index by tag or digest: ``(bytes, media type, digest)``, checked."""
        sep = "@" if ":" in reference else ":"
        what = f"fetching manifest {self.domain}/{repository}{sep}{reference}"
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            what=what,
            scopes=(repository_scope(repository, "pull"),),
            headers={"Accept": ", ".join(mf.ACCEPTED)},
        )
        data = response.content
        if len(data) > MANIFEST_LIMIT:
            raise RegistryError(f"{what}: larger than {MANIFEST_LIMIT} bytes")
        digest = digest_bytes(data)
        if sep == "@" and digest != reference:
            raise RegistryError(
                f"{what}: content has digest {digest}, not {reference}", digest=reference
            )
        media_type = response.headers.get("content-type", "").partition(";")[0].strip()
        return data, media_type, digest

    def has_blob(self, repository: str, digest: str, *, push: bool = False) -> bool:
        """Whether the repository holds blob ``digest``."""
        actions = ("pull", "push") if push else ("pull",)
        response = self.request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            what=f"checking blob {digest} in {self.domain}/{repository}",
            scopes=(repository_scope(repository, *actions),),
            ok=(200, 404),
        )
        return response.status_code == 200

    def blob_chunks(
        self,
        repository: str,
        digest: str,
        size: int,
        *,
        progress: Progress | None = None,
        cancelled: threading.Event | None = None,
    ) -> Iterator[bytes]:
        """The bytes of blob ``digest``, exactly ``size`` of them or an error."""
        what = f"downloading blob {digest}"
        response = self.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            what=what,
            scopes=(repository_scope(repository, "pull"),),
            stream=True,
        )
        count = 0
        try:
            for chunk in response.iter_bytes(CHUNK_SIZE):
                if cancelled is not None and cancelled.is_set():
                    raise RegistryError(f"{what}: cancelled", digest=digest)
                count += len(chunk)
                if count > size:
                    raise RegistryError(f"{what}: more than the {size} bytes announced")
                if progress is not None:
                    progress(len(chunk))
                yield chunk
        except httpx.HTTPError as exc:
            raise _transport_error(f"{what} (after {count} of {size} bytes)", exc) from exc
        finally:
            response.close()
        if count != size:
            raise RegistryError(f"{what}: got {count} of {size} bytes", digest=digest)

    def mount_blob(self, repository: str, digest: str, source: str) -> str | None:
        """Mount ``digest`` from ``source``; ``None`` if done, else an upload location."""
        response = self.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/?mount={digest}&from={source}",
            what=f"mounting blob {digest} from {source}",
            scopes=(
                repository_scope(repository, "pull", "push"),
                repository_scope(source, "pull"),
            ),
            ok=(201, 202),
        )
        if response.status_code == 201:
            return None
        return self._location(response, f"mounting blob {digest}")

    def upload_blob(
        self,
        repository: str,
        chunks: Iterable[bytes],
        *,
        location: str | None = None,
        progress: Progress | None = None,
    ) -> tuple[str, int]:
        """Upload a blob in chunks (PATCH ... PUT ?digest=); returns its digest and size."""
        scopes = (repository_scope(repository, "pull", "push"),)
        what = f"uploading a blob to {self.domain}/{repository}"
        if location is None:
            started = self.request(
                "POST", f"/v2/{repository}/blobs/uploads/", what=what, scopes=scopes, ok=(202,)
            )
            location = self._location(started, what)
        hasher = hashlib.sha256()
        offset = 0
        for piece in _rechunk(chunks, UPLOAD_CHUNK):
            hasher.update(piece)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(piece) - 1}",
            }
            response = self.request(
                "PATCH", location, what=what, scopes=scopes, ok=(202,), headers=headers,
                content=piece,
            )  # fmt: skip
            location = self._location(response, what)
            offset += len(piece)
            if progress is not None:
                progress(len(piece))
        digest = f"sha256:{hasher.hexdigest()}"
        final = httpx.URL(location).copy_merge_params({"digest": digest})
        self.request("PUT", str(final), what=what, scopes=scopes, ok=(201,), content=b"")
        return digest, offset

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """Store a manifest under a tag (or digest); returns its digest."""
        what = f"pushing manifest {self.domain}/{repository}:{reference}"
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            what=what,
            scopes=(repository_scope(repository, "pull", "push"),),
            ok=(201,),
            headers={"Content-Type": media_type},
            content=data,
        )
        digest = digest_bytes(data)
        answered = response.headers.get("docker-content-digest", digest)
        if answered != digest:
            raise RegistryError(f"{what}: the registry stored digest {answered}, not {digest}")
        return digest

    def _location(self, response: httpx.Response, what: str) -> str:
        location = response.headers.get("location")
        if not location:
            raise RegistryError(f"{what}: the registry sent no upload location")
        return str(httpx.URL(self.base() + "/").join(location))


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _transport_error(what: str, exc: httpx.HTTPError) -> RegistryError:
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        reason = f"timed out ({type(exc).__name__})"
    elif isinstance(exc, httpx.ConnectError):
        reason = f"cannot connect: {reason}"
    elif isinstance(exc, httpx.RemoteProtocolError):
        reason = f"connection broken: {reason}"
    return RegistryError(f"{what}: {reason.lower()}")


def _status_error(what: str, response: httpx.Response) -> RegistryError:
    status = response.status_code
    detail = f"{status} {response.reason_phrase}".strip()
    try:
        errors = json.loads(response.content or b"{}").get("errors") or []
        messages = [str(item.get("message") or item.get("code")) for item in errors]
    except (ValueError, AttributeError, httpx.HTTPError, httpx.StreamError):
        messages = []
    if messages:
        detail += ": " + "; ".join(messages)
    kind = AuthenticationError if status in (401, 403) else RegistryError
    return kind(f"{what}: {detail.lower()}", status=status)


def is_local(host: str) -> bool:
    """Whether ``host[:port]`` is this machine: ``localhost``, 127.0.0.0/8 or ::1.

    Docker treats such registries as insecure (HTTPS unverified, then plain HTTP) by default.
    """
    name = host.rpartition("]")[0].lstrip("[") if host.startswith("[") else host.partition(":")[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
