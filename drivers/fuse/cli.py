"""``pydock-fuse-overlay``: the overlay filesystem with fuse-overlayfs's command line.

    pydock-fuse-overlay [-f] [-d] -o lowerdir=A:B[,upperdir=U,workdir=W][,OPTION...]
                        [SOURCE] MOUNTPOINT

``SOURCE`` is what ``mount.fuse3`` passes first (``mount -t fuse.pydock-fuse-overlay SOURCE
DIR -o ...`` or an ``/etc/fstab`` line); like fuse-overlayfs, the command takes it and does not
use it. Unknown options are reported on stderr and ignored.

Without ``upperdir`` the mount is read-only. By default the command returns once the mount
answers requests, leaving the filesystem process in the background (status 0); if the mount
cannot be made it prints one line and exits 1, and nothing stays mounted. ``-f`` serves in the
foreground until unmounted.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import replace

import trio

from drivers.fuse.check import check_fuse, check_layers, check_mountpoint
from drivers.fuse.options import MountSpec, parse
from drivers.fuse.serve import READY_TIMEOUT, serve
from graphdriver import GraphDriverError

PROG = "pydock-fuse-overlay"
READY = b"ready\n"


def _version() -> str:
    try:
        from importlib import metadata  # only for --version: it is slow to import

        return metadata.version("pydock")
    except metadata.PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked for (a mount should not pay for it)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"{PROG} {_version()}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Overlay filesystem in userspace (fuse-overlayfs compatible)."
    )
    parser.add_argument(
        "-o",
        dest="options",
        action="append",
        default=[],
        metavar="OPTIONS",
        help="lowerdir=A:B[,upperdir=U,workdir=W][,OPTION...]; may repeat",
    )
    parser.add_argument("-f", dest="foreground", action="store_true", help="stay in foreground")
    parser.add_argument("-d", "--debug", action="store_true", help="foreground, log requests")
    parser.add_argument("-s", dest="single", action="store_true", help="accepted; always single")
    parser.add_argument("-V", "--version", action=_VersionAction)
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="[SOURCE] MOUNTPOINT",
        help="where to mount the merged tree, after an optional source name (not used)",
    )
    return parser


async def serve_and_report(spec: MountSpec, mountpoint: str, ready_fd: int | None) -> None:
    """Mount and serve until unmounted; ``ready`` or the one-line failure goes to ``ready_fd``.

    Without ``ready_fd`` a failure to mount is raised, from outside the nursery: raised inside
    it, trio would wrap it in an exception group the caller's ``except`` does not catch.
    """
    failure: GraphDriverError | None = None
    async with trio.open_nursery() as nursery:
        try:
            await nursery.start(serve, spec.lowers, spec.upper, spec.work, mountpoint, spec.options)
        except GraphDriverError as exc:
            failure = exc
        else:
            if ready_fd is not None:
                os.write(ready_fd, READY)
                os.close(ready_fd)
                _detach_stdio()
    if failure is None:
        return
    if ready_fd is None:
        raise failure
    os.write(ready_fd, f"{failure}\n".encode())
    os.close(ready_fd)


def _detach_stdio() -> None:
    """Let go of the caller's terminal and pipes, so nobody waits on them for our exit."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _wait_ready(read_fd: int, pid: int, mountpoint: str, timeout: float) -> str | None:
    """The child's report: ``None`` once the mount is ready, else why it failed."""
    deadline = time.monotonic() + timeout
    message = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            _detach_mount(mountpoint)
            return f"mount did not become ready within {timeout:g}s"
        readable, _, _ = select.select([read_fd], [], [], left)
        if not readable:
            continue
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        message += chunk
    if message == READY:
        return None
    _, status = os.waitpid(pid, 0)
    text = message.decode(errors="replace").strip()
    return text or f"the filesystem process failed before the mount was ready (status {status})"


def _detach_mount(mountpoint: str) -> None:
    """Take away whatever the killed child may have left mounted."""
    for command in (["fusermount3", "-u", "-z", mountpoint], ["umount", "-l", mountpoint]):
        try:
            if subprocess.run(command, capture_output=True, timeout=10).returncode == 0:
                return
        except (OSError, subprocess.TimeoutExpired):
            continue


def _daemonize(spec: MountSpec, mountpoint: str) -> int:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the filesystem process
        os.close(read_fd)
        os.setsid()
        os.chdir("/")
        try:
            trio.run(serve_and_report, spec, mountpoint, write_fd)
        except BaseException:
            traceback.print_exc()  # to the caller's stderr until the mount is ready
            os._exit(1)
        os._exit(0)
    os.close(write_fd)
    try:
        failure = _wait_ready(read_fd, pid, mountpoint, READY_TIMEOUT + 10)
    finally:
        os.close(read_fd)
    if failure is not None:
        print(f"{PROG}: {failure}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if len(args.paths) > 2:
        parser.error(f"unrecognized arguments: {' '.join(args.paths[2:])}")
    try:
        spec = parse(args.options)
        for warning in spec.warnings:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        mountpoint = os.path.abspath(args.paths[-1])
        if args.debug:
            debug = replace(spec.options, kernel=(*spec.options.kernel, "debug"))
            spec = replace(spec, options=debug)
        # The cheap checks run here too, so their errors come straight from this process.
        check_fuse()
        check_layers(spec.lowers, spec.upper, spec.work)
        check_mountpoint(mountpoint)
        if args.foreground or args.debug:
            trio.run(serve_and_report, spec, mountpoint, None)
            return 0
        return _daemonize(spec, mountpoint)
    except GraphDriverError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
