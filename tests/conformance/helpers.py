"""Helpers of the conformance suite: driver set-up and tear-down, mounts, and writing files."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

import graphdriver
from graphdriver.mountutil import mounts_under

_MNT_DETACH = 2


@dataclass(frozen=True)
class Workspace:
    """Where a test's driver lives, and the directory next to it that must stay untouched."""

    home: Path
    sentinel: Path


def is_root() -> bool:
    return os.geteuid() == 0


def open_driver(
    name: str, home: Path, options: Mapping[str, str] | None = None
) -> graphdriver.Driver:
    """Build driver ``name`` at ``home``; skip (with the driver's reason) if it cannot work here."""
    try:
        return graphdriver.get_driver(name, home, options)
    except graphdriver.NotSupportedError as exc:
        pytest.skip(f"driver {name} is not supported here: {exc}")


def close_driver(driver: graphdriver.Driver, home: Path) -> None:
    """``cleanup()`` the driver, then remove its home, whatever happened before.

    A mount still present under ``home`` after ``cleanup()`` is a driver bug: it is detached so
    the tree can go, and reported as a failure.
    """
    left: list[str] = []
    try:
        driver.cleanup()
    finally:
        left = mounts_under(home)
        for mountpoint in left:
            force_unmount(mountpoint)
        remove_tree(home)
    if left:
        pytest.fail(f"mounts left under {home} after cleanup(): {left}")


@contextmanager
def mounted(driver: graphdriver.Driver, layer_id: str) -> Iterator[Path]:
    """``get`` the layer for the body, ``put`` it afterwards."""
    root = driver.get(layer_id)
    try:
        yield Path(root)
    finally:
        driver.put(layer_id)


def force_unmount(mountpoint: str) -> None:
    """Detach a mount left behind (lazily, so a busy mount still goes)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.umount2(os.fsencode(mountpoint), _MNT_DETACH) == 0:
        return
    fusermount = shutil.which("fusermount3")
    if fusermount is not None:
        subprocess.run([fusermount, "-u", "-z", mountpoint], check=False, capture_output=True)


def remove_tree(path: Path) -> None:
    """``rm -rf``, also through directories a test left without write or search permission."""
    if not os.path.lexists(path):
        return
    try:
        shutil.rmtree(path)
    except OSError:
        for dirpath, _dirs, _files in os.walk(path):
            os.chmod(dirpath, 0o700)
        shutil.rmtree(path)


# -- writing trees ----------------------------------------------------------------------------


def write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` (in place if it exists) and set its mode, umask aside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)
    return path


def make_dir(path: Path, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path


def set_mtime(path: Path, mtime_ns: int) -> None:
    """Set atime and mtime of ``path`` itself (not a symlink's target)."""
    os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


def post_order(root: Path) -> list[Path]:
    """Every entry under ``root`` (root last), children before their directory, sorted."""
    out: list[Path] = []

    def walk(directory: Path) -> None:
        for name in sorted(os.listdir(directory)):
            child = directory / name
            if child.is_dir() and not child.is_symlink():
                walk(child)
            out.append(child)

    walk(root)
    out.append(root)
    return out


def supports_user_xattrs(directory: Path) -> bool:
    probe = directory / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.pydock.probe", b"1")
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
            return False
        raise
    finally:
        probe.unlink()
    return True


def can_chown(directory: Path) -> bool:
    """Whether files here can be given to other users (root, or a mapped user namespace)."""
    probe = directory / ".chown-probe"
    probe.write_bytes(b"")
    try:
        os.chown(probe, 1, 2)
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


def can_mknod(directory: Path) -> bool:
    """Whether device nodes can be made here (root with CAP_MKNOD, on a non-nodev mount)."""
    if not is_root():
        return False
    probe = directory / ".mknod-probe"
    try:
        os.mknod(probe, 0o600 | 0o020000, os.makedev(1, 3))
    except OSError:
        return False
    probe.unlink()
    return True
