"""The overlay2 graph driver: layers in the shared overlay layout, mounted by kernel overlayfs.

The on-disk layout is drawn in ``graphdriver.overlay``. ``get`` mounts ``merged/`` with the
layer's own ``diff/`` as upper dir and its parents as lower dirs (a base layer needs no mount:
its ``diff/`` is the whole tree). Mounts are refcounted per layer and found again after a
restart. Changes are read straight from ``diff/`` (native diff) unless the kernel redirects
directories or copies metadata only, in which case the naive differ compares mounted trees.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO, ClassVar, cast

from drivers.overlay2 import check
from drivers.overlay2 import mount as mnt
from graphdriver import (
    Change,
    Driver,
    LayerInUseError,
    MountError,
    NotSupportedError,
    archive,
    overlaydiff,
)
from graphdriver.overlay import MAX_DEPTH, OverlayLayout

LEGACY_MAX_DEPTH = 128  # lower layers that fit in one page of mount(2) options (moby's cap)


def parse_mount_api(value: str) -> str:
    """Parse the ``mount_api`` option: ``auto``, ``new`` or ``legacy``."""
    choice = value.strip().lower()
    if choice not in ("auto", "new", "legacy"):
        raise ValueError(f"{value!r} is not one of auto, new, legacy")
    return choice


class Overlay2Driver(Driver):
    """Graph driver on kernel overlayfs."""

    name: ClassVar[str] = "overlay2"
    priority: ClassVar[int] = 30
    option_parsers: ClassVar[Mapping[str, Callable[[str], object]]] = {
        "mount_api": parse_mount_api,
    }

    def __init__(self, home: Path, options: Mapping[str, str] | None = None) -> None:
        super().__init__(home, options)
        self.layout = OverlayLayout(self.home, driver=self.name)
        self.layout.sweep()
        self.probe = check.probe(self.home)
        wanted = cast(str, self.options.get("mount_api", "auto"))
        self.new_api = self.probe.new_mount_api and wanted != "legacy"
        if wanted == "new" and not self.probe.new_mount_api:
            raise MountError(
                "option mount_api=new: the kernel has no overlay lowerdir+ in the new mount API",
                driver=self.name,
            )
        self.native_diff = (
            self.probe.native_diff and not self.probe.redirect_dir and not self.probe.metacopy
        )

    @classmethod
    def check_support(cls, home: Path) -> None:
        if os.geteuid() != 0:
            raise NotSupportedError(
                "overlay mounts need root (or run inside a user namespace)", driver=cls.name
            )
        check.probe(Path(home))

    @property
    def max_depth(self) -> int:
        return MAX_DEPTH if self.new_api else LEGACY_MAX_DEPTH

    # -- layers -----------------------------------------------------------------------------

    def create(
        self, layer_id: str, parent: str | None, *, opts: Mapping[str, str] | None = None
    ) -> None:
        if parent is not None and self.layout.depth(parent) > self.max_depth:
            raise MountError(
                f"creating layer {layer_id}: {self.layout.depth(parent)} lower layers are more"
                f" than the {self.max_depth} this kernel's overlay mount supports",
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
            if self.counter.count(layer_id) > 0 or os.path.ismount(merged):
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

    def status(self) -> list[tuple[str, str]]:
        return [
            ("Backing Filesystem", _fs_name(self.home)),
            ("Mount API", "new (fsopen, lowerdir+)" if self.new_api else "legacy mount(2)"),
            ("Max Depth", str(self.max_depth)),
            ("Native Overlay Diff", str(self.native_diff).lower()),
            ("userxattr", str(self.probe.userxattr).lower()),
            ("Layers", str(len(self.list_layers()))),
        ]

    def metadata(self, layer_id: str) -> dict[str, str]:
        directory = self.layout.require(layer_id)
        lowers = self.layout.lower_dirs(layer_id)
        meta = {
            "UpperDir": os.fspath(directory / "diff"),
            "WorkDir": os.fspath(directory / "work"),
            "MergedDir": os.fspath(directory / "merged"),
        }
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
            if self.counter.increment(layer_id) == 1 and not os.path.ismount(merged):
                try:
                    self._mount(layer_id, lowers, merged)
                except OSError as exc:
                    self.counter.forget(layer_id)
                    raise MountError(
                        f"mounting overlay for layer {layer_id}: {exc.strerror or exc}",
                        layer_id=layer_id,
                        driver=self.name,
                        path=merged,
                    ) from exc
        return merged

    def _mount(self, layer_id: str, lowers: list[Path], merged: Path) -> None:
        try:
            self._mount_overlay(layer_id, lowers, merged)
        except OSError as exc:
            for lower in lowers:  # name the culprit rather than the kernel's bare ENOENT
                if not lower.is_dir():
                    raise OSError(exc.errno, f"lower layer {lower} is missing", None) from exc
            raise

    def _mount_overlay(self, layer_id: str, lowers: list[Path], merged: Path) -> None:
        upper = self.layout.diff_dir(layer_id)
        work = self.layout.work_dir(layer_id)
        if self.new_api:
            mnt.mount_overlay_new_api(merged, lowers, upper, work, userxattr=self.probe.userxattr)
        else:
            options = mnt.legacy_options(
                self.home,
                self.layout.lower_links(layer_id),
                upper,
                work,
                userxattr=self.probe.userxattr,
            )
            mnt.mount_overlay_legacy(merged, self.home, options)

    def put(self, layer_id: str) -> None:
        if not self.layout.exists(layer_id):
            return
        merged = self.layout.merged_dir(layer_id)
        with self.counter.locked(layer_id):
            remaining = self.counter.decrement(layer_id)
            if remaining is None and os.path.ismount(merged):
                remaining = 0  # mounted by an earlier process and never got here: unmount
            if remaining == 0 and os.path.ismount(merged):
                self._unmount(layer_id, merged)

    def _unmount(self, layer_id: str, merged: Path) -> None:
        try:
            mnt.umount2(os.fspath(merged))
        except OSError as exc:
            try:
                mnt.umount2(os.fspath(merged), mnt.MNT_DETACH)
            except OSError:
                raise MountError(
                    f"unmounting overlay of layer {layer_id}: {exc.strerror or exc}",
                    layer_id=layer_id,
                    driver=self.name,
                    path=merged,
                ) from exc

    def cleanup(self) -> None:
        for layer_id in self.list_layers():
            merged = self.layout.merged_dir(layer_id)
            with self.counter.locked(layer_id):
                self.counter.forget(layer_id)
                if os.path.ismount(merged):
                    self._unmount(layer_id, merged)

    # -- changes ----------------------------------------------------------------------------

    def whiteout_format(self) -> archive.WhiteoutFormat:
        return archive.OverlayWhiteouts("user" if self.probe.userxattr else "trusted")

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
        out = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=8 << 20))  # noqa: SIM115
        try:
            overlaydiff.export_overlay_diff(
                self.layout.diff_dir(layer_id), self.layout.lower_dirs(layer_id), out
            )
        except BaseException:
            out.close()
            raise
        out.seek(0)
        return out

    def diff_size(self, layer_id: str, parent: str | None) -> int:
        if not self._is_plain_parent(layer_id, parent):
            return super().diff_size(layer_id, parent)
        return overlaydiff.overlay_diff_size(
            self.layout.diff_dir(layer_id), self.layout.lower_dirs(layer_id)
        )

    def apply_diff(self, layer_id: str, parent: str | None, stream: BinaryIO) -> int:
        diff_dir = self.layout.diff_dir(self.layout.require(layer_id).name)
        lowers = self.layout.lower_dirs(layer_id)
        with self.counter.locked(layer_id):
            if self.counter.count(layer_id) and lowers:
                raise LayerInUseError(
                    f"applying a diff to layer {layer_id}: it is mounted",
                    layer_id=layer_id,
                    driver=self.name,
                )
            opts = self.unpack_options()
            return archive.apply_layer(
                diff_dir,
                stream,
                whiteouts=self.whiteout_format(),
                skip_devices=opts.get("skip_devices", False),
                ignore_chown_errors=opts.get("ignore_chown_errors", False),
                lowers=lowers,
            )


def _fs_name(path: Path) -> str:
    magic = check._filesystem_magic(path)
    names = {0xEF53: "extfs", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs"}
    return names.get(magic or 0, hex(magic or 0))
