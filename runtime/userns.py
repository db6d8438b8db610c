"""A rootless caller's own user namespace: enter a new one, or join the one a container uses.

Rootless, the caller (pydock) moves itself into a new user and mount namespace before it
touches storage, as podman does: it is root there, may mount overlay (with ``userxattr``) and
FUSE, and can own files of every id the maps cover. A helper forked before ``unshare`` stays in
the initial namespace and writes the maps (``newuidmap``/``newgidmap`` need a writer outside).
Containers started from there share that user namespace. Both functions need a process with a
single thread.
"""

from __future__ import annotations

import contextlib
import os
import subprocess

from . import idmap, linux
from .errors import NamespaceUnavailableError, SetupError


def in_initial_namespace() -> bool:
    """True when this process is in the host's (initial) user namespace."""
    return idmap.is_initial(idmap.current())


def _helper(mapping: idmap.IdMapping, go: int, report: int) -> None:
    """In the forked helper: wait for the parent's unshare, write its maps, exit."""
    status = 1
    try:
        if os.read(go, 1) == b"1":
            idmap.write(os.getppid(), mapping)
            status = 0
    except subprocess.CalledProcessError as exc:
        why = exc.stderr.decode(errors="replace").strip() if exc.stderr else str(exc)
        os.write(report, why.encode()[:4000])
    except OSError as exc:
        os.write(report, f"{exc.filename or ''}: {exc.strerror}".encode())
    finally:
        os._exit(status)


def enter(mapping: idmap.IdMapping) -> None:
    """Move this process into a new user and mount namespace where it is root."""
    go_read, go_write = os.pipe()
    report_read, report_write = os.pipe()
    helper = os.fork()
    if helper == 0:
        os.close(go_write)
        os.close(report_read)
        _helper(mapping, go_read, report_write)
    os.close(go_read)
    os.close(report_write)
    try:
        try:
            linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS)
        except OSError as exc:
            raise NamespaceUnavailableError(
                f"entering a user namespace: {exc.strerror}", errno=exc.errno
            ) from exc
        os.write(go_write, b"1")
        os.close(go_write)
        go_write = -1
        _, wait_status = os.waitpid(helper, 0)
        helper = 0
        if os.waitstatus_to_exitcode(wait_status) != 0:
            why = os.read(report_read, 4096).decode(errors="replace").strip() or "helper failed"
            raise SetupError(f"writing the id maps of pydock's user namespace: {why}")
    finally:
        if go_write >= 0:
            os.close(go_write)
        if helper:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(helper, 0)
        os.close(report_read)


def join(pid: int) -> None:
    """Join the user and mount namespaces of process ``pid``.

    Both are opened before either is entered: an open namespace file keeps its namespace
    alive, so a process that exits meanwhile cannot leave the caller in its user namespace
    but outside its mount namespace.
    """
    opened: list[tuple[int, int, str]] = []
    try:
        for name, kind in (("user", linux.CLONE_NEWUSER), ("mnt", linux.CLONE_NEWNS)):
            path = f"/proc/{pid}/ns/{name}"
            try:
                if os.stat(path).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                    continue
                opened.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), kind, path))
            except OSError as exc:
                raise SetupError(f"joining {path}: {exc.strerror}", errno=exc.errno) from exc
        for fd, kind, path in opened:
            try:
                linux.setns(fd, kind)
            except OSError as exc:
                raise SetupError(f"joining {path}: {exc.strerror}", errno=exc.errno) from exc
    finally:
        for fd, _, _ in opened:
            os.close(fd)
