"""A private podman store holding pydock's built-in busybox, for side-by-side start-up times.

The store lives under the benchmark's work directory (``--root``/``--runroot``), so the host's
podman images and containers are neither used nor touched, and removing the directory (after
detaching what podman left mounted in it) removes everything.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from graphdriver.mountutil import detach, mounts_under
from pydock.errors import PydockError
from pydock.image.builtin import write_busybox_rootfs
from runtime import linux

IMAGE = "localhost/pydock-bench-busybox:latest"
TIMEOUT = 300
# podman's default rlimits (nofile 1048576, nproc 32768) need CAP_SYS_RESOURCE where the hard
# limits are lower, as on these machines; lower ones always work.
LIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


def hide_hybrid_cgroup2() -> str:
    """On a hybrid cgroup host, hide the cgroup2 tree from this process and its children.

    crun (and so podman) refuses to start a container when the cgroup2 hierarchy of a hybrid
    host has controllers. This moves the process into a private mount namespace and detaches
    that tree there, before anything is mounted, so pydock, podman and crun all see the same
    cgroup v1 host. Returns a note for the report ("" when nothing was needed).
    """
    unified = Path("/sys/fs/cgroup/unified")
    controllers = unified / "cgroup.controllers"
    if not controllers.exists() or not controllers.read_text().split():
        return ""
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    linux.umount2(unified, linux.MNT_DETACH)
    return f"{unified} (hybrid cgroup2 with controllers) hidden in the benchmark's mount namespace"


class PodmanError(PydockError):
    """podman could not be set up or run here."""


class PodmanStore:
    """podman on a store of its own under ``work``, with storage driver ``driver``."""

    def __init__(self, work: Path, driver: str = "overlay", mount_program: str | None = None):
        self.work = work
        # podman refuses a run root longer than 50 characters, so it is not under ``work``.
        self.run_root = Path(tempfile.mkdtemp(prefix="pydock-bench-podman-"))
        self.prefix = [
            "podman", "--root", str(work / "podman-root"), "--runroot", str(self.run_root),
            "--storage-driver", driver,
        ]  # fmt: skip
        if mount_program is not None:
            self.prefix += ["--storage-opt", f"overlay.mount_program={mount_program}"]

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.prefix, *args], capture_output=True, timeout=TIMEOUT)
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
            raise PodmanError(f"podman {args[0]} failed: {lines[-1]}")

    def run_argv(self, *command: str) -> list[str]:
        """The ``podman run --rm`` command line of ``command`` in the busybox image."""
        return [*self.prefix, "run", "--rm", "--network", "none", *LIMITS, IMAGE, *command]

    def serve(self, site: Path, publish: str, command: list[str]) -> None:
        """``command`` detached on podman's default network, ``site`` at /www, ``-p publish``."""
        self._run("run", "-d", "-p", publish, "-v", f"{site}:/www:ro", *LIMITS, IMAGE, *command)

    def prepare(self) -> list[str]:
        """Import the busybox root file system and run it once; the command to time."""
        self.work.mkdir(parents=True, exist_ok=True)
        tar = self.work / "busybox.tar"
        with open(tar, "wb") as out:
            write_busybox_rootfs(out)
        self._run("import", str(tar), IMAGE)
        command = self.run_argv("/bin/true")
        self._run(*command[len(self.prefix) :])
        return command

    def close(self) -> None:
        """Detach what podman left mounted in the store (its overlay and shm mounts)."""
        if shutil.which("podman") is not None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(
                    [*self.prefix, "rm", "--all", "--force", "--time", "0"],
                    capture_output=True,
                    timeout=TIMEOUT,
                )
        for target in [*mounts_under(self.work), *mounts_under(self.run_root)]:
            with contextlib.suppress(OSError):
                detach(Path(target))
        shutil.rmtree(self.run_root, ignore_errors=True)
