"""The overlay on-disk layout, shared by the overlay2 (kernel) and fuse (userspace) drivers.

A layer unpacked once serves both drivers: they differ only in who mounts ``merged/``.

    <home>/                          (<root>/overlay)
    |-- .sweep.lock                  held shared while a layer is created or removed, exclusive
    |                                while leftovers are swept, so no process ever sweeps away
    |                                another one's work in progress
    |-- .creating-<id>-<random>/     a layer being built (renamed to <id>/ when complete)
    |-- .removing-<id>-<random>/     a layer being deleted
    |-- l/
    |   |-- 7XQ2...  -> ../<id>/diff  short names keep the mount options short: the legacy
    |   `-- ...                      mount(2) string must fit in one page
    `-- <id>/
        |-- diff/                    this layer's own changes; the upper dir of a rw mount
        |-- link                     the layer's short name (in l/)
        |-- lower                    "l/A:l/B:..." the parents' short names, nearest first;
        |                            absent for a base layer
        |-- parent                   the parent's id (absent for a base layer)
        |-- work/                    overlay work dir (same filesystem as diff/)
        `-- merged/                  mount point of the merged tree

Whiteouts inside ``diff/`` are 0/0 character devices (or ``.wh.NAME`` files where mknod is not
allowed); an opaque directory carries ``trusted.overlay.opaque`` (root) or
``user.overlay.opaque`` (rootless, ``userxattr``) = ``y``, or a ``.wh..wh..opq`` file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import stat
import string
from collections.abc import Iterator
from pathlib import Path

from graphdriver import mountutil
from graphdriver.errors import GraphDriverError, LayerExistsError, LayerUnknownError

LINK_DIR = "l"
SWEEP_LOCK = ".sweep.lock"
SHORT_ID_LENGTH = 26
MAX_DEPTH = 500  # the kernel's limit on lower layers under one upper (OVL_MAX_STACK)
_ALPHABET = string.ascii_uppercase + string.digits


class OverlayLayout:
    """Create, find and remove layers in the overlay layout under ``home``."""

    def __init__(self, home: Path, *, driver: str = "overlay") -> None:
        self.home = Path(home)
        self.driver = driver
        (self.home / LINK_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)

    # -- paths ------------------------------------------------------------------------------

    def layer_dir(self, layer_id: str) -> Path:
        if not layer_id or "/" in layer_id or layer_id.startswith(".") or layer_id == LINK_DIR:
            raise LayerUnknownError(f"invalid layer id {layer_id!r}", layer_id=layer_id)
        return self.home / layer_id

    def diff_dir(self, layer_id: str) -> Path:
        return self.layer_dir(layer_id) / "diff"

    def work_dir(self, layer_id: str) -> Path:
        return self.layer_dir(layer_id) / "work"

    def merged_dir(self, layer_id: str) -> Path:
        return self.layer_dir(layer_id) / "merged"

    def exists(self, layer_id: str) -> bool:
        try:
            return (self.layer_dir(layer_id) / "link").is_file()
        except LayerUnknownError:
            return False

    def require(self, layer_id: str) -> Path:
        """The layer's directory; ``LayerUnknownError`` if it does not exist."""
        directory = self.layer_dir(layer_id)
        if not (directory / "link").is_file():
            raise LayerUnknownError(
                f"layer {layer_id} does not exist", layer_id=layer_id, driver=self.driver
            )
        return directory

    def list_layers(self) -> list[str]:
        found = []
        for entry in os.scandir(self.home):
            if entry.name == LINK_DIR or entry.name.startswith("."):
                continue
            if os.path.isfile(os.path.join(entry.path, "link")):
                found.append(entry.name)
        return sorted(found)

    # -- chain ------------------------------------------------------------------------------

    def parent(self, layer_id: str) -> str | None:
        path = self.require(layer_id) / "parent"
        return path.read_text().strip() or None if path.exists() else None

    def short_name(self, layer_id: str) -> str:
        return (self.require(layer_id) / "link").read_text().strip()

    def lower_links(self, layer_id: str) -> list[str]:
        """The parents' short links (``l/XXX``), nearest first."""
        path = self.require(layer_id) / "lower"
        if not path.exists():
            return []
        text = path.read_text().strip()
        return text.split(":") if text else []

    def lower_dirs(self, layer_id: str) -> list[Path]:
        """The parents' ``diff`` directories, nearest first (real paths)."""
        # One readlink per layer ("l/XXX" -> "../<id>/diff"), not a full realpath walk.
        home = os.fspath(self.home)
        return [
            Path(
                os.path.normpath(
                    os.path.join(home, LINK_DIR, os.readlink(os.path.join(home, link)))
                )
            )
            for link in self.lower_links(layer_id)
        ]

    def depth(self, layer_id: str) -> int:
        """Number of layers in the chain, this one included."""
        return len(self.lower_links(layer_id)) + 1

    # -- create / remove --------------------------------------------------------------------

    def create(self, layer_id: str, parent: str | None) -> Path:
        """Make the directories and chain files of a new layer; returns its ``diff`` dir."""
        directory = self.layer_dir(layer_id)
        if directory.exists():
            raise LayerExistsError(
                f"layer {layer_id} already exists", layer_id=layer_id, driver=self.driver
            )
        with self.in_progress():
            return self._create(layer_id, directory, parent)

    def _create(self, layer_id: str, directory: Path, parent: str | None) -> Path:
        lower = ""
        if parent is not None:
            parent_links = self.lower_links(parent)  # raises LayerUnknownError
            chain = [f"{LINK_DIR}/{self.short_name(parent)}", *parent_links]
            if len(chain) > MAX_DEPTH:
                raise GraphDriverError(
                    f"creating layer {layer_id}: it would have {len(chain)} lower layers, "
                    f"more than the kernel's maximum of {MAX_DEPTH}",
                    layer_id=layer_id,
                    driver=self.driver,
                )
            lower = ":".join(chain)
        staging = self.home / f".creating-{layer_id}-{secrets.token_hex(4)}"
        staging.mkdir(mode=0o700)
        try:
            (staging / "diff").mkdir(mode=0o755)
            os.chmod(staging / "diff", 0o755)  # regardless of the umask
            if parent is not None:
                _inherit_root(self.diff_dir(parent), staging / "diff")
            (staging / "work").mkdir(mode=0o700)
            (staging / "merged").mkdir(mode=0o700)
            short = self._new_short_name()
            (staging / "link").write_text(short)
            if parent is not None:
                (staging / "lower").write_text(lower)
                (staging / "parent").write_text(parent)
            os.chmod(staging, 0o700)
            os.rename(staging, directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        os.symlink(f"../{layer_id}/diff", self.home / LINK_DIR / short)
        return directory / "diff"

    def _new_short_name(self) -> str:
        while True:
            name = "".join(secrets.choice(_ALPHABET) for _ in range(SHORT_ID_LENGTH))
            if not os.path.lexists(self.home / LINK_DIR / name):
                return name

    def remove(self, layer_id: str) -> None:
        """Delete a layer's directory and short link (the caller checks it is unmounted)."""
        with self.in_progress():
            self._remove(layer_id)

    def _remove(self, layer_id: str) -> None:
        directory = self.require(layer_id)
        try:
            short = (directory / "link").read_text().strip()
        except OSError:
            short = ""
        if short:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.home / LINK_DIR / short)
        trash = self.home / f".removing-{layer_id}-{secrets.token_hex(4)}"
        os.rename(directory, trash)
        shutil.rmtree(trash)

    @contextlib.contextmanager
    def in_progress(self) -> Iterator[None]:
        """Hold the sweep lock shared: nothing this process leaves in flight is swept."""
        fd = os.open(self.home / SWEEP_LOCK, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def sweep(self) -> bool:
        """Remove leftovers of interrupted creates and removes, and dangling short links.

        Runs only when no process is creating or removing a layer here (their shared locks
        go with them when they die); returns whether it ran. Leftovers wait for the next sweep.
        """
        try:
            fd = os.open(self.home / SWEEP_LOCK, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return False  # a full disk or a read-only home: sweeping can wait
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        try:
            self._sweep()
        finally:
            os.close(fd)
        return True

    def _sweep(self) -> None:
        mounted: list[str] | None = None
        for entry in os.scandir(self.home):
            if entry.name.startswith((".creating-", ".removing-")):
                shutil.rmtree(entry.path, ignore_errors=True)
            elif entry.name != LINK_DIR and not entry.name.startswith(".") and entry.is_dir():
                # A layer directory without its link file is half made (by a pydock that
                # raced an older, lock-less sweep); never one with something mounted in it.
                if os.path.lexists(os.path.join(entry.path, "link")):
                    continue
                if mounted is None:
                    mounted = mountutil.mounts_under(self.home)
                real = os.path.realpath(entry.path)
                if not any(m == real or m.startswith(real + "/") for m in mounted):
                    shutil.rmtree(entry.path, ignore_errors=True)
        for entry in os.scandir(self.home / LINK_DIR):
            if not os.path.exists(entry.path):
                os.unlink(entry.path)


def _inherit_root(parent_diff: Path, diff: Path) -> None:
    """Start a layer's root with its parent's root owner, mode and times.

    The merged tree's root takes its attributes from the upper dir, so without this a child
    would show 0755 root:root even where the parent's root says otherwise.
    """
    st = os.lstat(parent_diff)
    os.chown(diff, st.st_uid, st.st_gid)
    os.chmod(diff, stat.S_IMODE(st.st_mode))
    os.utime(diff, ns=(st.st_atime_ns, st.st_mtime_ns))
