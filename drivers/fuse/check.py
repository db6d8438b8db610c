"""Checks made before mounting, so bad input gives one clear line and never a half-made mount."""

from __future__ import annotations

import errno
import os
import shutil
import stat

from drivers.fuse.errors import SetupError
from graphdriver import mountutil

DEV_FUSE = "/dev/fuse"


def check_fuse() -> None:
    """FUSE can be mounted by this process.

    libfuse opens ``/dev/fuse`` itself before anything else, also when it then lets
    ``fusermount3`` do the mount for an unprivileged user, so both must be usable.
    """
    if not os.path.exists(DEV_FUSE):
        raise SetupError("no /dev/fuse", path=DEV_FUSE)
    try:
        os.close(os.open(DEV_FUSE, os.O_RDWR | os.O_CLOEXEC))
    except OSError as exc:
        raise SetupError(f"cannot open {DEV_FUSE}: {exc.strerror}", path=DEV_FUSE) from exc
    if os.geteuid() != 0 and shutil.which("fusermount3") is None:
        raise SetupError("fusermount3 not found")


def _directory(role: str, path: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise SetupError(f"{role} {path} does not exist", path=path) from exc
    except OSError as exc:
        raise SetupError(f"{role} {path}: {exc.strerror}", path=path) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise SetupError(f"{role} {path} is not a directory", path=path)
    return st


def check_layers(lowers: tuple[str, ...], upper: str | None, work: str | None) -> None:
    """Every layer directory exists; the work dir shares the upper dir's filesystem."""
    if not lowers:
        raise SetupError("no lower dir given")
    for lower in lowers:
        _directory("lower dir", lower)
        if not os.access(lower, os.R_OK | os.X_OK):
            raise SetupError(f"lower dir {lower} is not readable", path=lower)
    if upper is None or work is None:
        return
    upper_st = _directory("upper dir", upper)
    work_st = _directory("work dir", work)
    if upper_st.st_dev != work_st.st_dev:
        raise SetupError(
            f"work dir {work} is not on the filesystem of upper dir {upper}", path=work
        )
    pairs = [("upper dir", upper, "work dir", work)]
    pairs += [("lower dir", lower, role, path) for lower in lowers for role, path in
              (("upper dir", upper), ("work dir", work))]  # fmt: skip
    for role_a, a, role_b, b in pairs:
        if _overlap(a, b):
            raise SetupError(f"{role_a} {a} and {role_b} {b} overlap", path=b)


def _overlap(a: str, b: str) -> bool:
    """Whether one directory is the other or lies inside it."""
    real_a, real_b = os.path.realpath(a), os.path.realpath(b)
    return real_a == real_b or real_a.startswith(real_b + "/") or real_b.startswith(real_a + "/")


def check_mountpoint(mountpoint: str) -> None:
    """The mountpoint is a directory with nothing mounted on it (not even a dead FUSE mount)."""
    try:
        _directory("mountpoint", mountpoint)
    except SetupError as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError) and cause.errno == errno.ENOTCONN:
            raise SetupError(
                f"mountpoint {mountpoint} is busy: a dead FUSE mount is still attached "
                "(transport endpoint is not connected)",
                path=mountpoint,
            ) from cause
        raise
    if os.path.realpath(mountpoint) in mountutil.mount_points():
        raise SetupError(f"mountpoint {mountpoint} is busy: already a mount point", path=mountpoint)
