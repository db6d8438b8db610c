"""The overlay2 graph driver: layers in the shared overlay layout, mounted by kernel overlayfs.

The on-disk layout is drawn in ``graphdriver.overlay``; refcounting, native diff and unpacking
are shared with the fuse driver (``graphdriver.overlaydriver``). What is kernel-specific lives
here: the mount itself (the new mount API with one ``lowerdir+`` per layer where the kernel has
it, else ``mount(2)`` with short links), the probes in ``check.py``, and the fall-back to the
naive differ when the kernel redirects directories or copies metadata only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar, cast

from drivers.overlay2 import check
from drivers.overlay2 import mount as mnt
from graphdriver import MountError, NotSupportedError
from graphdriver.mountutil import filesystem_type
from graphdriver.overlay import MAX_DEPTH
from graphdriver.overlaydriver import OverlayLayoutDriver

LEGACY_MAX_DEPTH = 128  # lower layers that fit in one page of mount(2) options (moby's cap)


def parse_mount_api(value: str) -> str:
    """Parse the ``mount_api`` option: ``auto``, ``new`` or ``legacy``."""
    choice = value.strip().lower()
    if choice not in ("auto", "new", "legacy"):
        raise ValueError(f"{value!r} is not one of auto, new, legacy")
    return choice


class Overlay2Driver(OverlayLayoutDriver):
    """Graph driver on kernel overlayfs."""

    name: ClassVar[str] = "overlay2"
    priority: ClassVar[int] = 30
    option_parsers: ClassVar[Mapping[str, Callable[[str], object]]] = {
        "mount_api": parse_mount_api,
    }

    def __init__(self, home: Path, options: Mapping[str, str] | None = None) -> None:
        super().__init__(home, options)
        self.probe = check.probe(self.home)
        wanted = cast(str, self.options.get("mount_api", "auto"))
        if wanted == "new" and not self.probe.new_mount_api:
            raise MountError(
                "option mount_api=new: the kernel has no overlay lowerdir+ in the new mount API",
                driver=self.name,
            )
        self.new_api = self.probe.new_mount_api and wanted != "legacy"
        self.max_depth = MAX_DEPTH if self.new_api else LEGACY_MAX_DEPTH
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

    def status(self) -> list[tuple[str, str]]:
        return [
            ("Backing Filesystem", filesystem_type(self.home)),
            ("Mount API", "new (fsopen, lowerdir+)" if self.new_api else "legacy mount(2)"),
            ("Max Depth", str(self.max_depth)),
            ("Native Overlay Diff", str(self.native_diff).lower()),
            ("userxattr", str(self.probe.userxattr).lower()),
            ("Layers", str(len(self.list_layers()))),
        ]

    def opaque_namespace(self) -> str:
        return "user" if self.probe.userxattr else "trusted"

    def is_mounted_at(self, merged: Path) -> bool:
        return os.path.ismount(merged)

    def mount(
        self, layer_id: str, lowers: list[Path], upper: Path, work: Path, merged: Path
    ) -> None:
        if self.new_api:
            mnt.mount_overlay_new_api(merged, lowers, upper, work, userxattr=self.probe.userxattr)
            return
        options = mnt.legacy_options(
            self.home,
            self.layout.lower_links(layer_id),
            upper,
            work,
            userxattr=self.probe.userxattr,
        )
        mnt.mount_overlay_legacy(merged, self.home, options)

    def unmount(self, merged: Path) -> None:
        mnt.umount2(os.fspath(merged))
