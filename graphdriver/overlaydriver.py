"""What the overlay2 and fuse drivers share: layers in the overlay layout, refcounted mounts,
native diffs read from ``diff/``, and unpacking straight into ``diff/``.

A subclass says only how to mount and unmount ``merged/`` (kernel overlayfs or a FUSE process)
and how to tell that a mount is there. A base layer needs no mount: its ``diff/`` is the tree.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, ClassVar

from graphdriver import archive, mountutil, overlaydiff
from graphdriver.change import Change
from graphdriver.driver import Driver, spooled
from graphdriver.errors import GraphDriverError, LayerInUseError, MountError
from graphdriver.overlay import OverlayLayout


class OverlayLayoutDriver(Driver):
    """Base of drivers that mount the shared overlay layout."""

    home_name: ClassVar[str] = "overlay"

    #: Lower layers one mount may stack.
    max_depth: int = 500

    def __init__(self, home: Path, options: Mapping[str, str] | None = None) -> None:
        super().__init__(home, options)
        self.layout = OverlayLayout(self.home, driver=self.name)
        self.layout.sweep()
        self.native_diff = True

    # -- what a subclass provides ----------------------------------------------------------

    @abc.abstractmethod
    def mount(
        self, layer_id: str, lowers: list[Path], upper: Path, work: Path, merged: Path
    ) -> None:
        """Mount the merged tree of ``layer_id`` on ``merged``; raise ``OSError`` on failure."""

    @abc.abstractmethod
    def unmount(self, merged: Path) -> None:
        """Unmount ``merged``; raise ``OSError`` on failure."""

    def is_mounted_at(self, merged: Path) -> bool:
        """Whether something is mounted on ``merged`` (dead FUSE mounts included)."""
        return os.fspath(merged) in mountutil.mount_points()

    def opaque_namespace(self) -> str:
        """``trusted`` or ``user``: where opaque-directory xattrs go."""
        return "trusted"

    # -- layers -----------------------------------------------------------------------------

    def create(
        self, layer_id: str, parent: str | None, *, opts: Mapping[str, str] | None = None
    ) -> None:
        if parent is not None and self.layout.depth(parent) > self.max_depth:
            raise GraphDriverError(
                f"creating layer {layer_id}: {self.layout.depth(parent)} lower layers are more"
                f" than the {self.max_depth} driver {self.name} can mount",
                layer_id=layer_id,
                driver=self.name,
            )
        self.layout.create(layer_id, parent)

    def create_read_write(
        self, layer_id: str, parent: str | None, *, opts: Mapping[str, str] | None = None
    ) -> None:
        self.create(layer_id, parent, opts=opts)

    def remove(self, layer_id: str) -> None:
        self.layout.require(layer_id)
        with self.counter.locked(layer_id):
            merged = self.layout.merged_dir(layer_id)
            if self.counter.count(layer_id) > 0 or self.is_mounted_at(merged):
                raise LayerInUseError(
                    f"removing layer {layer_id}: it is mounted",
                    layer_id=layer_id,
                    driver=self.name,
                    path=merged,
                )
            self.layout.remove(layer_id)

    def exists(self, layer_id: str) -> bool:
        return self.layout.exists(layer_id)

    def list_layers(self) -> list[str]:
        return self.layout.list_layers()

    def metadata(self, layer_id: str) -> dict[str, str]:
        directory = self.layout.require(layer_id)
        meta = {
            "UpperDir": os.fspath(directory / "diff"),
            "WorkDir": os.fspath(directory / "work"),
            "MergedDir": os.fspath(directory / "merged"),
        }
        lowers = self.layout.lower_dirs(layer_id)
        if lowers:
            meta["LowerDir"] = ":".join(os.fspath(p) for p in lowers)
        return meta

    # -- mounting ---------------------------------------------------------------------------

    def get(self, layer_id: str, *, mount_label: str = "") -> Path:
        self.layout.require(layer_id)
        lowers = self.layout.lower_dirs(layer_id)
        if not lowers:
            with self.counter.locked(layer_id):
                self.counter.increment(layer_id)
            return self.layout.diff_dir(layer_id)
        merged = self.layout.merged_dir(layer_id)
        with self.counter.locked(layer_id):
            if self.counter.increment(layer_id) == 1:
                try:
                    if not self._adopt(layer_id, merged):
                        self._mount_checked(layer_id, lowers, merged)
                except BaseException:
                    self.counter.forget(layer_id)
                    raise
        return merged

    def adopt(self, layer_id: str) -> bool:
        if not self.layout.exists(layer_id):
            return False
        if not self.layout.lower_links(layer_id):
            return super().adopt(layer_id)  # a layer of its own: get mounts nothing
        merged = self.layout.merged_dir(layer_id)
        with self.counter.locked(layer_id):
            if self.counter.count(layer_id) == 0 and not self._adopt(layer_id, merged):
                return False
            self.counter.increment(layer_id)
        return True

    def _adopt(self, layer_id: str, merged: Path) -> bool:
        """Take over a mount an earlier process left; a dead one is cleared and reported."""
        if not self.is_mounted_at(merged):
            return False
        try:
            os.stat(merged)
        except OSError as exc:
            self._force_unmount(merged)
            raise MountError(
                f"mount of layer {layer_id} is dead ({exc.strerror}): cleared it, try again",
                layer_id=layer_id,
                driver=self.name,
                path=merged,
            ) from exc
        return True

    def _mount_checked(self, layer_id: str, lowers: list[Path], merged: Path) -> None:
        upper = self.layout.diff_dir(layer_id)
        work = self.layout.work_dir(layer_id)
        try:
            self.mount(layer_id, lowers, upper, work, merged)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            for lower in lowers:  # name the culprit rather than a bare ENOENT
                if not lower.is_dir():
                    reason = f"lower layer {lower} is missing"
            raise MountError(
                f"mounting {self.name} overlay for layer {layer_id}: {reason}",
                layer_id=layer_id,
                driver=self.name,
                path=merged,
            ) from exc

    def put(self, layer_id: str) -> None:
        if not self.layout.exists(layer_id):
            # Removed by another driver on this home (another thread's engine, a process):
            # there is no mount of it left to take down, nor a reference to keep.
            with self.counter.locked(layer_id):
                self.counter.forget(layer_id)
            return
        merged = self.layout.merged_dir(layer_id)
        with self.counter.locked(layer_id):
            remaining = self.counter.decrement(layer_id)
            if remaining is None and self.layout.lower_links(layer_id):
                remaining = 0 if self.is_mounted_at(merged) else None  # left by a crash
            if remaining == 0 and self.is_mounted_at(merged):
                self._unmount_checked(layer_id, merged)

    def _unmount_checked(self, layer_id: str, merged: Path) -> None:
        try:
            self.unmount(merged)
        except OSError as exc:
            try:
                self._force_unmount(merged)
            except OSError:
                raise MountError(
                    f"unmounting layer {layer_id}: {exc.strerror or exc}",
                    layer_id=layer_id,
                    driver=self.name,
                    path=merged,
                ) from exc

    def _force_unmount(self, merged: Path) -> None:
        """Lazy detach (``umount -l``): used when a plain unmount is refused or the mount died."""
        mountutil.detach(merged)

    def cleanup(self) -> None:
        for layer_id in self.list_layers():
            merged = self.layout.merged_dir(layer_id)
            with self.counter.locked(layer_id):
                self.counter.forget(layer_id)
                if self.is_mounted_at(merged):
                    self._unmount_checked(layer_id, merged)

    # -- changes ----------------------------------------------------------------------------

    def whiteout_format(self) -> archive.WhiteoutFormat:
        return archive.OverlayWhiteouts(self.opaque_namespace())

    def _is_plain_parent(self, layer_id: str, parent: str | None) -> bool:
        return self.native_diff and self.layout.parent(layer_id) == parent

    def changes(self, layer_id: str, parent: str | None) -> list[Change]:
        if not self._is_plain_parent(layer_id, parent):
            return super().changes(layer_id, parent)
        return overlaydiff.overlay_changes(
            self.layout.diff_dir(layer_id), self.layout.lower_dirs(layer_id)
        )

    def diff(self, layer_id: str, parent: str | None) -> BinaryIO:
        if not self._is_plain_parent(layer_id, parent):
            return super().diff(layer_id, parent)
        upper, lowers = self.layout.diff_dir(layer_id), self.layout.lower_dirs(layer_id)
        return spooled(lambda out: overlaydiff.export_overlay_diff(upper, lowers, out))

    def diff_size(self, layer_id: str, parent: str | None) -> int:
        if not self._is_plain_parent(layer_id, parent):
            return super().diff_size(layer_id, parent)
        return overlaydiff.overlay_diff_size(
            self.layout.diff_dir(layer_id), self.layout.lower_dirs(layer_id)
        )

    def apply_diff(self, layer_id: str, parent: str | None, stream: BinaryIO) -> int:
        try:
            return self._apply_diff(layer_id, stream)
        except GraphDriverError as exc:
            exc.about_layer(layer_id, self.name, "unpacking into")
            raise

    def _apply_diff(self, layer_id: str, stream: BinaryIO) -> int:
        diff_dir = self.layout.diff_dir(self.layout.require(layer_id).name)
        lowers = self.layout.lower_dirs(layer_id)
        with self.counter.locked(layer_id):
            if self.counter.count(layer_id) and lowers:
                raise LayerInUseError(
                    f"applying a diff to layer {layer_id}: it is mounted",
                    layer_id=layer_id,
                    driver=self.name,
                )
            return self.unpack(diff_dir, stream, lowers=lowers)
