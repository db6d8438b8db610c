"""``cp``: files into and out of a container's root file system, running or not, as Docker does.

The container's root is mounted by its driver (a running container's mount is shared and kept).
Paths in the container are resolved as the container sees them (``runtime.resolve_in_root``):
a symlink in the container never leads to the host. Copies into the container go through the
layer unpacker (``graphdriver.archive.apply_layer``), which resolves every name inside the
root again and rolls back on failure. Where the copy lands follows ``docker cp``:

* ``SRC`` a file: into ``DEST`` when that is a directory, else written as ``DEST``;
* ``SRC`` a directory: ``DEST/<name>`` when ``DEST`` is a directory, else a new ``DEST``;
  ``SRC/.`` copies the directory's contents;
* ``-`` as ``SRC`` is a tar of what to put into the directory ``DEST``; as ``DEST``, ``SRC``
  is written to standard output as a tar;
* a ``SRC`` that is a symlink is copied as the link, unless it ends with ``/`` or ``/.``: then
  it names the directory the link leads to (resolved in the container, as Docker does).

Files copied into a container belong to root there; files copied out belong to the user
running ``cp``, as with Docker.

The API service's ``/containers/{id}/archive`` uses :func:`path_stat` and :func:`archive`
(a tar named as Docker's daemon names it, the client places it) and :func:`copy_in` with a tar.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, BinaryIO

import graphdriver
from graphdriver.archive import apply_layer
from pydock.containers.errors import ContainerConfigError, ContainerPathError
from pydock.containers.state import Action, ContainerState, transition
from pydock.store import ContainerRecord
from runtime.securejoin import resolve_in_root

if TYPE_CHECKING:
    from pydock.containers.manager import ContainerManager

SPOOL_MEMORY = 8 << 20


@contextmanager
def mounted_root(manager: ContainerManager, record: ContainerRecord) -> Iterator[Path]:
    """The container's root file system for the body (a running container's stays mounted)."""
    transition(record.state, Action.EXPORT, name=record.name)
    storage = manager.storage(record.storage)
    with storage.mounted(record.rw_layer, in_use=record.state == ContainerState.RUNNING) as root:
        yield root


def _inside(root: Path, path: str, *, follow_last: bool) -> Path:
    """``path`` in the container, its directories resolved inside ``root``.

    The last component is followed too only with ``follow_last`` (a destination); a source that
    is a symlink is copied as the link, as Docker does without ``-L``.
    """
    absolute = PurePosixPath("/", path)
    if follow_last or absolute == PurePosixPath("/"):
        return resolve_in_root(root, str(absolute))
    parent = resolve_in_root(root, str(absolute.parent))
    name = absolute.name
    if name == "..":
        return resolve_in_root(root, str(absolute))
    return parent / name


def _wants_contents(path: str) -> bool:
    return path.endswith("/.")


def copy_out(
    manager: ContainerManager,
    record: ContainerRecord,
    source: str,
    destination: str,
    stdout: BinaryIO,
) -> None:
    """``cp CONTAINER:SOURCE DESTINATION`` (``-``: a tar on ``stdout``)."""
    doing = f"copying {source} from container {record.name}"
    with mounted_root(manager, record) as root:
        found, st = _source(root, source, doing)
        is_dir = stat.S_ISDIR(st.st_mode)
        name = found.name if found != root else "."
        if destination == "-":
            with tarfile.open(fileobj=stdout, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _pack(tar, found, None if _wants_contents(source) else name)
            return
        target_dir, top = _host_target(Path(destination), name, is_dir, source, doing)
        owner = (os.getuid(), os.getgid())
        with tempfile.SpooledTemporaryFile(SPOOL_MEMORY) as spool:
            with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _pack(tar, found, top, owner=owner)
            spool.seek(0)
            with tarfile.open(fileobj=spool, mode="r") as tar:
                # Pythons with extraction filters would warn or strip modes by default.
                tar.extraction_filter = _as_written  # type: ignore[attr-defined,assignment,unused-ignore]
                try:
                    tar.extractall(target_dir, numeric_owner=True)
                except OSError as exc:
                    why = (exc.strerror or str(exc)).lower()
                    raise ContainerConfigError(f"{doing} to {destination}: {why}") from exc


def _source(root: Path, source: str, doing: str) -> tuple[Path, os.stat_result]:
    """The copy's source in the container and its lstat: a symlink itself, not followed,
    unless the path ends with ``/`` or ``/.`` (then it names the directory the link leads to,
    as Docker resolves it)."""
    found = _inside(root, source, follow_last=source.endswith(("/", "/.")))
    st = _lstat(found)
    if st is None:
        raise ContainerPathError(f"{doing}: no such file or directory in the container")
    if source.endswith("/") and not stat.S_ISDIR(st.st_mode):
        raise ContainerConfigError(f"{doing}: not a directory")
    return found, st


@dataclass(frozen=True)
class PathStat:
    """A path in the container as ``docker cp`` learns of it before copying."""

    name: str
    size: int
    mode: int  # st_mode
    mtime_ns: int
    link_target: str  # a symlink: where it leads, resolved inside the container; else ""


def _docker_name(path: str) -> str:
    """The name Docker's daemon gives a copied path: its last one, ``.`` for ``DIR/.``."""
    if path in (".", "") or path.endswith("/."):
        return "."
    return PurePosixPath("/", path).name or "/"


def _stat_of(root: Path, path: str, found: Path, st: os.stat_result) -> PathStat:
    link = ""
    if stat.S_ISLNK(st.st_mode):
        link = "/" + _relative(root, resolve_in_root(root, str(PurePosixPath("/", path))))
    return PathStat(_docker_name(path), st.st_size, st.st_mode, st.st_mtime_ns, link)


def path_stat(manager: ContainerManager, record: ContainerRecord, path: str) -> PathStat:
    """``HEAD /containers/{id}/archive``: what ``path`` is in the container."""
    with mounted_root(manager, record) as root:
        found, st = _source(root, path, f"reading {path} in container {record.name}")
        return _stat_of(root, path, found, st)


def archive(
    manager: ContainerManager, record: ContainerRecord, path: str, out: BinaryIO
) -> PathStat:
    """``GET /containers/{id}/archive``: a tar of ``path`` on ``out``, its top entry named as
    Docker's daemon names it (symlinks copied as links, never followed)."""
    with mounted_root(manager, record) as root:
        found, st = _source(root, path, f"copying {path} from container {record.name}")
        facts = _stat_of(root, path, found, st)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _pack(tar, found, facts.name if found != root else ".")
        return facts


def _host_target(
    destination: Path, name: str, is_dir: bool, source: str, doing: str
) -> tuple[Path, str | None]:
    """Where on the host the copy goes: a directory, and the top entry's name (None: contents)."""
    if destination.is_dir():
        return destination, None if _wants_contents(source) else name
    if destination.exists():
        if is_dir:
            raise ContainerConfigError(f"{doing}: cannot copy a directory to a file")
        return destination.parent, destination.name
    if str(destination).endswith("/"):
        raise ContainerConfigError(f"{doing}: destination directory {destination} does not exist")
    if not destination.parent.is_dir():
        raise ContainerConfigError(f"{doing}: no such directory {destination.parent}")
    return destination.parent, destination.name


def copy_in(
    manager: ContainerManager,
    record: ContainerRecord,
    source: str,
    destination: str,
    stdin: BinaryIO,
    *,
    owner: tuple[int, int] | None = None,
    keep_kinds: bool = False,
) -> None:
    """``cp SOURCE CONTAINER:DESTINATION`` (``-``: a tar read from ``stdin``).

    For a tar, ``owner`` replaces the owner of every entry, and ``keep_kinds`` refuses to
    replace a directory with something else or the reverse (the API's ``copyUIDGID`` and
    ``noOverwriteDirNonDir``).
    """
    doing = f"copying {source} into container {record.name}"
    with mounted_root(manager, record) as root:
        target = _inside(root, destination, follow_last=True)
        st = _lstat(target)
        exists_as_dir = st is not None and stat.S_ISDIR(st.st_mode)
        with tempfile.SpooledTemporaryFile(SPOOL_MEMORY) as spool:
            if source == "-":
                if st is None:
                    raise ContainerPathError(
                        f"{doing}: no such directory {destination} in the container"
                    )
                if not exists_as_dir:
                    raise ContainerConfigError(
                        f"{doing}: destination {destination} must be a directory in the container"
                    )
                prefix = _relative(root, target)
                _prefixed(stdin, spool, prefix, doing, owner=owner)
                if keep_kinds:
                    spool.seek(0)
                    _check_kinds(root, spool, doing)
            else:
                host = Path(source)
                try:
                    host_st = os.lstat(host)
                except OSError as exc:
                    why = (exc.strerror or str(exc)).lower()
                    raise ContainerConfigError(f"{doing}: {why}") from exc
                is_dir = stat.S_ISDIR(host_st.st_mode)
                if exists_as_dir:
                    base = target
                    top = None if _wants_contents(source) else host.name
                elif st is not None and is_dir:
                    raise ContainerConfigError(f"{doing}: cannot copy a directory to a file")
                elif destination.endswith("/"):
                    raise ContainerConfigError(
                        f"{doing}: destination directory {destination} does not exist"
                    )
                else:
                    base = target.parent
                    parent = _lstat(base)
                    if parent is None or not stat.S_ISDIR(parent.st_mode):
                        raise ContainerConfigError(
                            f"{doing}: no such directory {PurePosixPath(destination).parent}"
                            " in the container"
                        )
                    top = target.name
                prefix = _relative(root, base)
                with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    _pack(tar, host, top, owner=(0, 0), prefix=prefix)
            spool.seek(0)
            try:
                apply_layer(root, spool)  # type: ignore[arg-type]
            except graphdriver.GraphDriverError as exc:
                raise ContainerConfigError(f"{doing}: {exc}") from exc


def _relative(root: Path, path: Path) -> str:
    return "" if path == root else str(path.relative_to(root))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _pack(
    tar: tarfile.TarFile,
    path: Path,
    top: str | None,
    *,
    owner: tuple[int, int] | None = None,
    prefix: str = "",
) -> None:
    """Add ``path`` as ``top`` (None: its children at the top), never following a symlink."""

    def chown(info: tarfile.TarInfo) -> tarfile.TarInfo:
        if owner is not None:
            info.uid, info.gid = owner
            info.uname = info.gname = ""
        return info

    if top is not None:
        tar.add(path, arcname=_join(prefix, top), recursive=True, filter=chown)
        return
    for child in sorted(os.listdir(path)):
        tar.add(path / child, arcname=_join(prefix, child), recursive=True, filter=chown)


def _prefixed(
    stream: BinaryIO,
    out: IO[bytes],
    prefix: str,
    doing: str,
    *,
    owner: tuple[int, int] | None = None,
) -> None:
    """Copy the tar ``stream`` to ``out`` with every name (and hard link) under ``prefix``
    (and, given ``owner``, owned by it)."""
    try:
        with (
            tarfile.open(fileobj=stream, mode="r|*") as source,
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as target,
        ):
            for member in source:
                member.name = _join(prefix, member.name.lstrip("/"))
                if member.islnk():
                    member.linkname = _join(prefix, member.linkname.lstrip("/"))
                if owner is not None:
                    member.uid, member.gid = owner
                    member.uname = member.gname = ""
                content = source.extractfile(member) if member.isreg() else None
                target.addfile(member, content)
    except (tarfile.TarError, EOFError) as exc:
        raise ContainerConfigError(f"{doing}: reading the tar from standard input: {exc}") from exc


def _check_kinds(root: Path, spool: IO[bytes], doing: str) -> None:
    """Refuse a tar that would put a non-directory where a directory is, or the reverse."""
    with tarfile.open(fileobj=spool, mode="r") as tar:
        for member in tar:
            there = _lstat(_inside(root, member.name, follow_last=False))
            if there is not None and stat.S_ISDIR(there.st_mode) != member.isdir():
                what = "directory" if member.isdir() else "non-directory"
                kind = "directory" if stat.S_ISDIR(there.st_mode) else "non-directory"
                raise ContainerConfigError(
                    f"{doing}: cannot overwrite {kind} /{member.name} with {what}"
                )


def _as_written(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """Extraction filter: the archive is pydock's own (names made here, never ``..``)."""
    return member


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise
