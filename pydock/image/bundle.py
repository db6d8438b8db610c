"""Reading the files of an image archive, whether it is a directory or a tar (maybe compressed).

``load`` reads docker-archive tars and OCI layouts through one small interface: open a member by
path, ask whether one exists. A compressed tar is first decompressed to a temporary file so its
members can be read in any order, as ``docker load`` does with its temporary directory.
"""

from __future__ import annotations

import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast

import graphdriver
from graphdriver.compression import Compression, detect, open_decompressed
from pydock.errors import ImageFormatError
from pydock.image.content import CHUNK_SIZE

# Members read whole into memory (manifests, indexes, configs) must be at most this big.
SMALL_LIMIT = 64 << 20


class Bundle(Protocol):
    """Files of an archive by relative path."""

    def exists(self, path: str) -> bool:
        """Whether ``path`` is a regular file (or a link to one) of the archive."""
        ...

    def open(self, path: str) -> BinaryIO:
        """Open the member ``path`` for reading."""
        ...


class DirectoryBundle:
    """An archive unpacked into a directory (an OCI layout directory)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, path: str) -> Path:
        clean = posixpath.normpath("/" + path).lstrip("/")
        return self.root / clean

    def exists(self, path: str) -> bool:
        """Whether ``path`` is a file under the directory."""
        return self._path(path).is_file()

    def open(self, path: str) -> BinaryIO:
        """Open ``path`` under the directory."""
        try:
            return self._path(path).open("rb")
        except OSError as exc:
            raise _missing(path, exc) from exc


class TarBundle:
    """A tar archive read by member name (links followed)."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in tar.getmembers():
            self.members[posixpath.normpath("/" + member.name).lstrip("/")] = member

    def _member(self, path: str) -> tarfile.TarInfo | None:
        return self.members.get(posixpath.normpath("/" + path).lstrip("/"))

    def exists(self, path: str) -> bool:
        """Whether ``path`` is a file or a link in the tar."""
        member = self._member(path)
        return member is not None and (member.isfile() or member.islnk() or member.issym())

    def open(self, path: str) -> BinaryIO:
        """The content of member ``path``."""
        member = self._member(path)
        if member is None:
            raise _missing(path, None)
        try:
            stream = self.tar.extractfile(member)
        except (KeyError, tarfile.TarError) as exc:
            raise _missing(path, exc) from exc
        if stream is None:
            raise ImageFormatError(f"reading archive member {path}: not a regular file")
        return cast(BinaryIO, stream)


def read_small(bundle: Bundle, path: str) -> bytes:
    """A whole (small) member: a manifest, an index or a config."""
    with bundle.open(path) as stream:
        data = stream.read(SMALL_LIMIT + 1)
    if len(data) > SMALL_LIMIT:
        raise ImageFormatError(f"reading archive member {path}: larger than {SMALL_LIMIT} bytes")
    return data


@contextmanager
def open_bundle(source: Path, scratch: Path) -> Iterator[Bundle]:
    """The files of ``source``: a directory, or a tar (plain, gzip or zstd)."""
    if source.is_dir():
        yield DirectoryBundle(source)
        return
    try:
        stream = source.open("rb")
    except OSError as exc:
        raise ImageFormatError(f"opening {source}: {(exc.strerror or str(exc)).lower()}") from exc
    with stream:
        head = stream.read(8)
        stream.seek(0)
        try:
            kind = detect(head)
        except graphdriver.ArchiveError as exc:
            raise ImageFormatError(f"reading the archive: {exc}") from exc
        if kind is Compression.NONE:
            with _open_tar(stream) as bundle:
                yield bundle
            return
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=scratch) as plain:
            try:
                shutil.copyfileobj(open_decompressed(stream), plain, CHUNK_SIZE)
            except graphdriver.ArchiveError as exc:
                raise ImageFormatError(f"reading the archive: {exc}") from exc
            plain.seek(0)
            with _open_tar(cast(BinaryIO, plain)) as bundle:
                yield bundle


@contextmanager
def _open_tar(stream: BinaryIO) -> Iterator[TarBundle]:
    try:
        tar = tarfile.open(fileobj=cast(IO[bytes], stream), mode="r:")  # noqa: SIM115
    except (tarfile.TarError, EOFError) as exc:
        raise ImageFormatError(f"reading the archive: not a tar archive ({exc})") from exc
    with tar:
        try:
            bundle = TarBundle(tar)
        except (tarfile.TarError, EOFError) as exc:
            raise ImageFormatError(f"reading the archive: corrupt tar archive ({exc})") from exc
        yield bundle


def _missing(path: str, exc: BaseException | None) -> ImageFormatError:
    why = "missing from the archive" if exc is None else f"cannot be read ({exc})"
    return ImageFormatError(f"reading archive member {path}: {why}")
