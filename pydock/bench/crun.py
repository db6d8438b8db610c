"""The busybox bundle ``crun run`` starts: the compiled runtime's floor under every engine.

The bundle is pydock's built-in busybox root file system unpacked into a plain directory, with
the ``config.json`` that ``crun spec`` writes (new pid, network, ipc, uts and mount namespaces,
as ``podman run --network none``) changed only to run ``/bin/true`` without a terminal. crun
keeps its state under the work directory (``--root``), never in /run/crun.

On a hybrid cgroup host crun refuses to start anything while the cgroup2 tree has controllers,
even with ``--cgroup-manager=disabled``; the benchmark hides that tree in its own mount
namespace first (:func:`pydock.bench.podman.hide_hybrid_cgroup2`), as it does for podman, so
crun runs with its default cgroupfs manager on the v1 hierarchies, like podman's crun.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

from pydock.errors import PydockError
from pydock.image.builtin import write_busybox_rootfs

TIMEOUT = 300


class CrunError(PydockError):
    """crun could not be set up here."""


class CrunBundle:
    """An OCI bundle of busybox under ``work``, and the crun command that runs it."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.bundle = work / "bundle"
        self.state = work / "state"
        self._ids = itertools.count()

    def prepare(self) -> None:
        """Unpack the root file system and write the spec; run it once (untimed)."""
        rootfs = self.bundle / "rootfs"
        rootfs.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(parents=True, exist_ok=True)
        tar = self.work / "busybox.tar"
        with open(tar, "wb") as out:
            write_busybox_rootfs(out)
        subprocess.run(["tar", "-xf", str(tar), "-C", str(rootfs)], check=True,
                       capture_output=True, timeout=TIMEOUT)  # fmt: skip
        tar.unlink()
        done = subprocess.run(["crun", "spec"], cwd=self.bundle, capture_output=True,
                              timeout=TIMEOUT)  # fmt: skip
        if done.returncode != 0:
            raise CrunError(f"crun spec failed: {done.stderr.decode(errors='replace').strip()}")
        config = self.bundle / "config.json"
        spec = json.loads(config.read_text())
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["/bin/true"]
        config.write_text(json.dumps(spec, indent=2))
        subprocess.run(self.run_argv(), check=True, capture_output=True, timeout=TIMEOUT)

    def run_argv(self) -> list[str]:
        """``crun run`` of the bundle under a new container name (a name is used only once)."""
        name = f"pydock-bench-{next(self._ids)}"
        return ["crun", "--root", str(self.state), "run", "--bundle", str(self.bundle), name]

    def close(self) -> None:
        """Delete any container crun still knows of (after an interrupted run)."""
        if shutil.which("crun") is None or not self.state.exists():
            return
        for entry in self.state.iterdir():
            subprocess.run(["crun", "--root", str(self.state), "delete", "--force", entry.name],
                           capture_output=True, timeout=TIMEOUT)  # fmt: skip
