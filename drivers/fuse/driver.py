"""The fuse graph driver: the shared overlay layout, mounted by pydock's own FUSE filesystem.

It holds no FUSE code: ``get`` asks the user's resident mount server (``server``, started on
first use, see ``client``) for a mount; the server forks one filesystem process, and ``get``
returns only once the mount answers (or with a one-line error and nothing mounted). Where no
server can run (``mount_server=false``, no usable run root) ``get`` starts one
``pydock-fuse-overlay`` process instead, which does the same at the cost of a new interpreter.
``put`` unmounts at the last reference (``fusermount3 -u``, then a lazy detach) and the
filesystem process exits.

Options: ``run_root`` (the application's run root; the server's socket is in
``<run_root>/fuse/``; default as in DESIGN.md §3), ``mount_server`` (default true), ``fsync``.
Mounts outlive the CLI that made them; a mount whose process died is found on the next ``get``
("transport endpoint is not connected"), detached and reported as ``MountError``. Layers are
the same directories overlay2 uses, so a layer unpacked once serves both drivers.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar, cast

from drivers.fuse import client
from drivers.fuse.check import check_fuse
from drivers.fuse.errors import SetupError
from graphdriver import NotSupportedError, mountutil, parse_bool, syscalls
from graphdriver.overlaydriver import OverlayLayoutDriver

MOUNT_TIMEOUT = 60.0
MAX_LOWERS = 500  # as many as overlay2 stacks; FUSE itself sets no limit


def _absolute_path(value: str) -> Path:
    if not os.path.isabs(value):
        raise ValueError(f"not an absolute path: {value!r}")
    return Path(value)


def _escape(path: Path) -> str:
    """A path as one item of a ``lowerdir=A:B`` option (``\\``, ``:`` and ``,`` escaped)."""
    text = os.fspath(path)
    return text.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


class FuseDriver(OverlayLayoutDriver):
    """Graph driver on pydock's userspace overlay filesystem (works without privilege)."""

    name: ClassVar[str] = "fuse"
    priority: ClassVar[int] = 20
    option_parsers: ClassVar[Mapping[str, Callable[[str], object]]] = {
        "fsync": parse_bool,
        "mount_server": parse_bool,
        "run_root": _absolute_path,
    }
    max_depth = MAX_LOWERS

    @classmethod
    def check_support(cls, home: Path) -> None:
        try:
            check_fuse()
        except SetupError as exc:
            raise NotSupportedError(str(exc), driver=cls.name) from exc

    @functools.cached_property
    def _may_umount(self) -> bool:
        return os.geteuid() == 0 and mountutil.in_initial_user_namespace()

    @functools.cached_property
    def _use_server(self) -> bool:
        """Mount through the resident server (``mount_server=false``: the standalone command).

        A server serves the user and mount namespace it runs in; rootless pydock keeps one
        namespace for all its commands (see ``pydock.rootless``), so one server serves them."""
        return bool(self.options.get("mount_server", True))

    @property
    def run_root(self) -> Path:
        return cast(Path, self.options.get("run_root") or client.default_run_root())

    def status(self) -> list[tuple[str, str]]:
        program = f"{sys.executable} -m drivers.fuse.cli (pydock-fuse-overlay)"
        if self._use_server:
            socket = client.ServerPaths.under(self.run_root).socket
            program = f"mount server at {socket}, else {program}"
        return [
            ("Mount Program", program),
            ("Copy-up fsync", str(self.options.get("fsync", True)).lower()),
            ("Layers", str(len(self.list_layers()))),
        ]

    def opaque_namespace(self) -> str:
        return "trusted" if mountutil.in_initial_user_namespace() and os.geteuid() == 0 else "user"

    def mount(
        self, layer_id: str, lowers: list[Path], upper: Path, work: Path, merged: Path
    ) -> None:
        options = [
            "lowerdir=" + ":".join(_escape(p) for p in lowers),
            f"upperdir={_escape(upper)}",
            f"workdir={_escape(work)}",
        ]
        if not cast(bool, self.options.get("fsync", True)):
            options.append("fsync=0")
        if self._use_server:
            try:
                client.mount(self.run_root, options, merged, MOUNT_TIMEOUT)
                return
            except client.ServerUnavailableError:
                pass  # nothing was mounted: the standalone command does the same, slower
            except client.NotReadyError:
                if self.is_mounted_at(merged):
                    mountutil.detach(merged)
                raise
        command = [sys.executable, "-m", "drivers.fuse.cli", "-o", ",".join(options), str(merged)]
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=MOUNT_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            if self.is_mounted_at(merged):
                mountutil.detach(merged)
            raise OSError(
                f"the filesystem process did not report ready in {MOUNT_TIMEOUT:.0f} s"
            ) from exc
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            raise OSError(reason.removeprefix("pydock-fuse-overlay: "))

    def mount_problem(self, layer_id: str) -> str | None:
        merged = self.layout.merged_dir(layer_id)
        if not self.is_mounted_at(merged):
            return None
        if client.mount_pids(merged) or client.standalone_pids(merged):
            return None
        return f"the filesystem process serving layer {layer_id} is gone"

    def unmount(self, merged: Path) -> None:
        if self._may_umount:
            # As root the syscall does what fusermount3 would, without starting a program.
            syscalls.umount2(merged)
            return
        helper = shutil.which("fusermount3")
        if helper is not None:
            done = subprocess.run(
                [helper, "-u", os.fspath(merged)], capture_output=True, text=True, timeout=30
            )
            if done.returncode == 0:
                return
            raise OSError(done.stderr.strip() or f"fusermount3 -u exit {done.returncode}")
        mountutil.detach(merged)
