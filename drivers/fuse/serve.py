"""Running one mount: check the input, mount, report ready once it answers, serve, unmount.

One process serves one mount (pyfuse3 keeps one session per process). ``serve`` runs under
trio: ``await nursery.start(serve, ...)`` returns once the kernel has had a request answered
through the new mount, and ``serve`` itself returns when the mount goes away (``fusermount3
-u``, ``umount``) or the process gets SIGTERM, SIGINT or SIGHUP (then it unmounts itself).
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Sequence

import pyfuse3
import trio

from drivers.fuse.check import check_fuse, check_layers, check_mountpoint
from drivers.fuse.copyup import IS_ROOT
from drivers.fuse.errors import MountError, SetupError
from drivers.fuse.fs import OverlayFS
from drivers.fuse.inodes import ROOT_INO
from drivers.fuse.layers import LayerStack
from drivers.fuse.namespace import Namespace
from drivers.fuse.options import FsOptions

FSNAME = "pydock-fuse-overlay"
READY_TIMEOUT = 30.0
# The kernel reads ahead 128 KiB by default: one FUSE round trip per 128 KiB of a first read.
# A 1 MiB window (FUSE's largest request) quarters the round trips of sequential reads.
READ_AHEAD_KB = 1024
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
ATIME_FLAGS = frozenset({"atime", "noatime"})


def build(
    lowers: Sequence[str], upper: str | None, work: str | None, options: FsOptions
) -> OverlayFS:
    """Check the layers and make the filesystem object (nothing is mounted yet)."""
    check_layers(tuple(lowers), upper, work)
    try:
        stack = LayerStack(list(lowers), upper, work)
    except OSError as exc:
        raise SetupError(f"opening layers: {exc}") from exc
    if upper is not None:
        try:
            stack.prepare_work(user_xattr=options.user_xattr)
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                raise SetupError(
                    f"upper dir {upper} is on a filesystem without extended attributes",
                    path=upper,
                ) from exc
            raise SetupError(f"preparing work dir {work}: {exc.strerror}", path=work) from exc
    tree = Namespace(
        stack, timeout=options.timeout, fsync=options.fsync, static_nlink=options.static_nlink
    )
    return OverlayFS(tree)


def fuse_options(options: FsOptions, *, read_only: bool) -> set[str]:
    """The libfuse mount options for ``options``."""
    chosen = {f"fsname={FSNAME}", f"subtype={FSNAME}", "default_permissions"}
    if options.allow_other or (options.allow_other is None and IS_ROOT):
        chosen.add("allow_other")
    if read_only:
        chosen.add("ro")
    if IS_ROOT:
        # A container root filesystem needs its set-id programs and device nodes to work.
        if "nosuid" not in options.kernel:
            chosen.add("suid")
        if "nodev" not in options.kernel:
            chosen.add("dev")
    if not ATIME_FLAGS & set(options.kernel):
        # FUSE keeps atime updates in kernel memory only; fuse-overlayfs mounts noatime too.
        chosen.add("noatime")
    for flag in options.kernel:
        if flag.startswith(("fsname=", "subtype=")):
            chosen = {c for c in chosen if not c.startswith(flag.split("=")[0] + "=")}
        chosen.add(flag)
    return chosen


async def wait_live(mountpoint: str, timeout: float = READY_TIMEOUT) -> os.stat_result:
    """Wait until the kernel has a stat of the mountpoint answered by this filesystem."""
    try:
        with trio.fail_after(timeout):
            st: os.stat_result = await trio.to_thread.run_sync(
                os.stat, mountpoint, abandon_on_cancel=True
            )
    except trio.TooSlowError:
        raise MountError(f"mount at {mountpoint} did not answer within {timeout:g}s") from None
    if st.st_ino != ROOT_INO:
        raise MountError(f"{mountpoint} does not show the new mount", path=mountpoint)
    return st


def tune_read_ahead(st: os.stat_result) -> None:
    """Widen the read-ahead window of this mount's backing device info, where allowed.

    Only root in the initial namespace may write sysfs; elsewhere the default stays.
    """
    path = f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb"
    try:
        with open(path, "w") as knob:
            knob.write(f"{READ_AHEAD_KB}\n")
    except OSError:
        pass  # not permitted here: reads still work, in smaller requests


class _Session:
    """The FUSE loop of one mount and the reason it ended."""

    def __init__(self) -> None:
        self.stopped_by_signal = False

    async def run(self, cancel_scope: trio.CancelScope) -> None:
        await pyfuse3.main(1, 1)  # one task: handlers never await, so more would only queue
        cancel_scope.cancel()

    async def watch_signals(self) -> None:
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            async for _ in signals:
                self.stopped_by_signal = True
                pyfuse3.terminate()
                return


async def serve(
    lowers: Sequence[str],
    upper: str | None,
    work: str | None,
    mountpoint: str,
    options: FsOptions | None = None,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Mount the overlay of ``lowers`` (nearest first) and ``upper`` at ``mountpoint`` and
    serve it until it is unmounted; ``task_status.started()`` once it answers requests."""
    options = options or FsOptions()
    mountpoint = os.path.abspath(mountpoint)
    check_fuse()
    check_mountpoint(mountpoint)
    operations = build(lowers, upper, work, options)
    os.umask(0)  # modes arrive with the caller's umask applied already
    read_only = upper is None or "ro" in options.kernel
    try:
        pyfuse3.init(operations, mountpoint, fuse_options(options, read_only=read_only))
    except RuntimeError as exc:
        raise MountError(f"mounting {mountpoint}: {exc}", path=mountpoint) from exc
    session = _Session()
    unmount = True
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run, nursery.cancel_scope)
            tune_read_ahead(await wait_live(mountpoint))
            nursery.start_soon(session.watch_signals)
            task_status.started()
        # The loop ended on its own: someone else unmounted, nothing is left to detach.
        unmount = session.stopped_by_signal
    finally:
        pyfuse3.close(unmount=unmount)
