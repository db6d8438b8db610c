"""Shared pieces of the runtime integration tests: a busybox rootfs and a container runner.

The runner gives each container a fresh id, collects its output in files (no pipe can fill up),
and kills and deletes every container it started when the test ends, passed or failed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import runtime

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "cat", "ls", "id", "hostname", "sleep", "true", "false", "mount")
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "nobody:x:65534:65534:nobody:/home/nobody:/bin/false\n"
)
GROUP = "root:x:0:\ndaemon:x:1:\ntty:x:5:\nstaff:x:50:nobody\nnogroup:x:65534:\n"


def parent_of(pid: int) -> int:
    """The parent process of ``pid``, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def build_busybox_rootfs(root: Path) -> Path:
    """Make a minimal busybox image at ``root``: /bin/busybox, applet links, /etc/passwd."""
    if not BUSYBOX.is_file():
        pytest.skip("no /bin/busybox (install busybox-static)")
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "root").mkdir(mode=0o700)
    (root / "tmp").mkdir(mode=0o1777)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


@dataclass(frozen=True)
class Result:
    """What a finished container left: its exit status and its output."""

    status: int
    out: str
    err: str


class Runner:
    """Starts containers on one rootfs and cleans all of them up at the end of a test."""

    def __init__(self, rootfs: Path) -> None:
        self.rootfs = rootfs
        self.containers: list[runtime.Container] = []

    def spec(self, *args: str, **fields: Any) -> runtime.ContainerSpec:
        """A spec for ``args`` on this runner's rootfs with a fresh id."""
        return runtime.ContainerSpec(
            container_id=uuid.uuid4().hex,
            rootfs=self.rootfs,
            args=args,
            **fields,
        )

    def create(self, spec: runtime.ContainerSpec, **options: Any) -> runtime.Container:
        """Create ``spec`` (output to /dev/null unless given) and remember it for clean-up."""
        null = os.open(os.devnull, os.O_RDWR)
        try:
            stdio: dict[str, Any] = {"stdin": null, "stdout": null, "stderr": null}
            stdio.update(options)
            container = runtime.create(spec, **stdio)
        finally:
            os.close(null)
        self.containers.append(container)
        return container

    def run(self, *args: str, **fields: Any) -> Result:
        """Run ``args`` to completion and return its status and output."""
        return self.run_spec(self.spec(*args, **fields))

    def run_spec(self, spec: runtime.ContainerSpec, timeout: float = 20) -> Result:
        """Run ``spec`` to completion; an exec failure gives Docker's 126 or 127."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            container = self.create(spec, stdout=out.fileno(), stderr=err.fileno())
            try:
                container.start()
                status = container.wait(timeout=timeout)
            except runtime.ExecError as exc:
                status = exc.exit_code
                err.write(str(exc).encode())
            out.seek(0)
            err.seek(0)
            return Result(status, out.read().decode(), err.read().decode())

    def cleanup(self) -> None:
        """Kill, reap and delete every container this runner created."""
        for container in self.containers:
            container.delete(force=True)
