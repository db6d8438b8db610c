"""Content-addressed blob store: ``<root>/blobs/sha256/<hex>``.

A blob is written to a temporary file in its final directory while it is hashed, synced,
and renamed into place, so a reader never sees a partial blob and a crash leaves at most a
``.tmp-*`` file behind (swept by :meth:`ContentStore.sweep_temporary`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from graphdriver import syscalls
from pydock.errors import ContentError, DigestMismatchError

ALGORITHM = "sha256"
CHUNK_SIZE = 1 << 20
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Descriptor:
    """A stored blob: its digest (``sha256:<hex>``) and size in bytes."""

    digest: str
    size: int


def check_digest(digest: str) -> str:
    """Return ``digest`` if it reads ``sha256:<64 hex>``, else raise ``ContentError``."""
    if not _DIGEST.fullmatch(digest):
        raise ContentError(f"checking digest {digest!r}: not sha256:<64 hex>", digest=digest)
    return digest


def digest_bytes(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``."""
    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


class ContentStore:
    """Blobs by digest under ``<root>/blobs``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "blobs"
        self.directory = self.root / ALGORITHM

    def path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (whether or not it exists)."""
        return self.directory / check_digest(digest).partition(":")[2]

    def exists(self, digest: str) -> bool:
        """Whether the blob ``digest`` is stored."""
        return self.path(digest).is_file()

    def write(
        self,
        chunks: Iterable[bytes],
        *,
        expected: str | None = None,
        before_publish: Callable[[str], None] | None = None,
    ) -> Descriptor:
        """Store the concatenated ``chunks``; with ``expected``, refuse any other digest.

        ``before_publish(digest)`` runs once the digest is known and before the blob appears
        under it: a caller leases the digest there, so no collection can take the blob between
        its appearing and the caller recording it.
        """
        if expected is not None:
            check_digest(expected)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temp_name = _make_temp(self.directory)
        temp = Path(temp_name)
        try:
            hasher = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = f"{ALGORITHM}:{hasher.hexdigest()}"
            if expected is not None and digest != expected:
                raise DigestMismatchError(
                    f"writing blob {expected}: content has digest {digest}", digest=expected
                )
            if before_publish is not None:
                before_publish(digest)
            os.rename(temp, self.path(digest))
            _fsync_directory(self.directory)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return Descriptor(digest, size)

    def write_stream(self, stream: BinaryIO, *, expected: str | None = None) -> Descriptor:
        """Store everything read from ``stream``; see :meth:`write`."""
        return self.write(iter_chunks(stream), expected=expected)

    def write_bytes(
        self,
        data: bytes,
        *,
        expected: str | None = None,
        before_publish: Callable[[str], None] | None = None,
    ) -> Descriptor:
        """Store ``data``; see :meth:`write`."""
        return self.write([data], expected=expected, before_publish=before_publish)

    def open(self, digest: str) -> BinaryIO:
        """Open the blob ``digest`` for reading."""
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError as exc:
            raise _missing(digest) from exc

    def read_bytes(self, digest: str) -> bytes:
        """The whole blob ``digest``."""
        with self.open(digest) as stream:
            return stream.read()

    def size(self, digest: str) -> int:
        """Size in bytes of the blob ``digest``."""
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError as exc:
            raise _missing(digest) from exc

    def delete(self, digest: str) -> bool:
        """Remove the blob ``digest``; ``False`` if it was not there."""
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def list_digests(self) -> list[str]:
        """Digests of every stored blob, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(
            f"{ALGORITHM}:{entry.name}"
            for entry in self.directory.iterdir()
            if not entry.name.startswith(_TEMP_PREFIX)
        )

    def sweep_temporary(self) -> int:
        """Remove temporary files left by interrupted writes of dead processes."""
        if not self.directory.is_dir():
            return 0
        removed = 0
        for entry in self.directory.glob(f"{_TEMP_PREFIX}*"):
            pid_text = entry.name[len(_TEMP_PREFIX) :].partition("-")[0]
            if pid_text.isdigit() and syscalls.pid_alive(int(pid_text)):
                continue
            entry.unlink(missing_ok=True)
            removed += 1
        return removed


def iter_chunks(stream: BinaryIO, size: int = CHUNK_SIZE) -> Iterable[bytes]:
    """Read ``stream`` to its end in chunks of at most ``size`` bytes."""
    while chunk := stream.read(size):
        yield chunk


def _missing(digest: str) -> ContentError:
    return ContentError(f"reading blob {digest}: not in the content store", digest=digest)


def _make_temp(directory: Path) -> tuple[int, str]:
    # The writer's pid is in the name so a sweep can tell live writes from leftovers.
    name = directory / f"{_TEMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644), str(name)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
