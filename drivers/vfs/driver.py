"""The vfs graph driver: every layer is a full copy of its parent's tree.

It needs nothing from the kernel, so it works on any filesystem and without privilege, at the
price of one full copy (and its disk space) per layer. ``get`` mounts nothing; it hands out the
layer's directory and counts references so that ``remove`` refuses a layer in use.

On-disk layout::

    <home>/                        <root>/vfs
      dir/
        <id>/                      a layer's whole tree: what get() returns
        .create-<pid>-<random>/    a layer being built; renamed to <id> once complete
        .remove-<pid>-<random>/    a layer being deleted; renamed away from <id> first

Layer ids never start with a dot, so a crash leaves no half-built or half-deleted layer under a
real id. Leftovers of processes that are gone are deleted when a driver starts on the home.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar

from drivers.vfs.copy import MODES, copy_tree, probe_method
from drivers.vfs.fs import remove_tree, rename_noreplace
from graphdriver import (
    Driver,
    GraphDriverError,
    InvalidOptionError,
    LayerExistsError,
    LayerInUseError,
    LayerUnknownError,
    parse_bool,
    syscalls,
)
from graphdriver.mountutil import filesystem_type

_TEMP_PREFIXES = (".create-", ".remove-")


def parse_copy_mode(value: str) -> str:
    """Parse the ``copy`` option: ``auto``, ``reflink``, ``copy_file_range`` or ``readwrite``."""
    mode = value.strip().lower()
    if mode not in MODES:
        raise ValueError(f"{value!r} is not one of {', '.join(MODES)}")
    return mode


class VfsDriver(Driver):
    """Graph driver that stores each layer as a complete directory tree."""

    name: ClassVar[str] = "vfs"
    priority: ClassVar[int] = 10
    option_parsers: ClassVar[Mapping[str, Callable[[str], object]]] = {
        "copy": parse_copy_mode,
        "skip_devices": parse_bool,
    }

    def __init__(self, home: Path, options: Mapping[str, str] | None = None) -> None:
        super().__init__(home, options)
        self.layers_dir = self.home / "dir"
        self.layers_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._probed: str | None = None
        if self.copy_mode != "auto":
            try:
                self._probed = probe_method(self.layers_dir, mode=self.copy_mode)
            except OSError as exc:
                raise InvalidOptionError(
                    f"checking option copy={self.copy_mode} of driver vfs: it does not work on"
                    f" {self.layers_dir}: {exc.strerror or exc}",
                    driver=self.name,
                    path=self.layers_dir,
                ) from exc
        self._remove_leftovers()

    @property
    def copy_mode(self) -> str:
        """The configured copy mode (``auto`` unless the ``copy`` option says otherwise)."""
        return str(self.options.get("copy", "auto"))

    @property
    def skip_devices(self) -> bool:
        """Whether unpacking skips device nodes it may not create instead of failing."""
        return bool(self.options.get("skip_devices", False))

    def unpack_options(self) -> dict[str, bool]:
        """Keyword options for the archive unpacker."""
        return {"skip_devices": self.skip_devices}

    # -- layers -----------------------------------------------------------------------------

    def create(
        self, layer_id: str, parent: str | None, *, opts: Mapping[str, str] | None = None
    ) -> None:
        """Make a layer: an empty root (mode 0755, owned by the caller) or a copy of ``parent``."""
        target = self._valid_path(layer_id, "creating")
        if opts:
            raise InvalidOptionError(
                f"creating layer {layer_id}: vfs takes no per-layer options"
                f" (got {', '.join(sorted(opts))})",
                layer_id=layer_id,
                driver=self.name,
            )
        if os.path.lexists(target):
            raise LayerExistsError(
                f"creating layer {layer_id}: it exists already",
                layer_id=layer_id,
                driver=self.name,
                path=target,
            )
        source = None
        if parent is not None:
            source = self._path(parent)
            if source is None or not source.is_dir():
                raise LayerUnknownError(
                    f"creating layer {layer_id}: parent layer {parent} does not exist",
                    layer_id=parent,
                    driver=self.name,
                    path=source,
                )
        self._build(layer_id, parent, source, target)

    def create_read_write(
        self, layer_id: str, parent: str | None, *, opts: Mapping[str, str] | None = None
    ) -> None:
        """Make a container layer; on vfs the same as an image layer."""
        self.create(layer_id, parent, opts=opts)

    def _build(self, layer_id: str, parent: str | None, source: Path | None, target: Path) -> None:
        """Build the layer under a temporary dot-name and rename it into place."""
        temp = self._temp_path("create")
        try:
            if source is None:
                os.mkdir(temp, 0o755)
                os.chown(temp, os.geteuid(), os.getegid())
                os.chmod(temp, 0o755)  # the umask may have cut bits from mkdir's mode
            else:
                copy_tree(source, temp, mode=self.copy_mode)
            rename_noreplace(os.fspath(temp), os.fspath(target))
        except BaseException as exc:
            self._discard(temp, exc)
            if isinstance(exc, FileExistsError) and exc.filename == os.fspath(temp):
                raise LayerExistsError(
                    f"creating layer {layer_id}: it was created meanwhile",
                    layer_id=layer_id,
                    driver=self.name,
                    path=target,
                ) from exc
            if isinstance(exc, OSError):
                what = f"copying parent layer {parent}" if parent else "making its root"
                raise GraphDriverError(
                    f"creating layer {layer_id}: {what}: {exc.strerror or exc}",
                    layer_id=layer_id,
                    driver=self.name,
                    path=exc.filename or temp,
                ) from exc
            raise

    def remove(self, layer_id: str) -> None:
        """Delete a layer; ``LayerInUseError`` while this process holds a ``get`` on it."""
        target = self._path(layer_id)
        with self.counter.locked(layer_id):
            if self.counter.count(layer_id) > 0:
                raise LayerInUseError(
                    f"removing layer {layer_id}: it is in use"
                    f" (references held: {self.counter.count(layer_id)})",
                    layer_id=layer_id,
                    driver=self.name,
                    path=target,
                )
            temp = self._temp_path("remove")
            try:
                if target is None or not target.is_dir():
                    raise FileNotFoundError(2, "no such layer", os.fspath(target or layer_id))
                os.rename(target, temp)
            except FileNotFoundError as exc:
                raise LayerUnknownError(
                    f"removing layer {layer_id}: no such layer",
                    layer_id=layer_id,
                    driver=self.name,
                    path=target,
                ) from exc
            except OSError as exc:
                raise GraphDriverError(
                    f"removing layer {layer_id}: moving it aside: {exc.strerror or exc}",
                    layer_id=layer_id,
                    driver=self.name,
                    path=target,
                ) from exc
        try:
            remove_tree(os.fspath(temp))
        except OSError as exc:
            raise GraphDriverError(
                f"removing layer {layer_id}: deleting its tree: {exc.strerror or exc}",
                layer_id=layer_id,
                driver=self.name,
                path=exc.filename or temp,
            ) from exc

    def get(self, layer_id: str, *, mount_label: str = "") -> Path:
        """Return the layer's directory and count the reference (vfs mounts nothing)."""
        with self.counter.locked(layer_id):
            path = self._existing(layer_id, "getting")
            self.counter.increment(layer_id)
            return path

    def put(self, layer_id: str) -> None:
        """Drop one reference; without one held this does nothing."""
        with self.counter.locked(layer_id):
            self.counter.decrement(layer_id)

    def exists(self, layer_id: str) -> bool:
        """Whether the layer exists."""
        path = self._path(layer_id)
        return path is not None and path.is_dir()

    def list_layers(self) -> list[str]:
        """Ids of every layer, sorted; dot-entries (layers in the making) are not layers."""
        with os.scandir(self.layers_dir) as entries:
            return sorted(
                entry.name
                for entry in entries
                if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)
            )

    def status(self) -> list[tuple[str, str]]:
        """Backing filesystem, copy method in use and number of layers."""
        copy = self._probed
        if copy is None:
            try:
                copy = self._probed = probe_method(self.layers_dir, mode=self.copy_mode)
            except OSError as exc:
                # A full or read-only disk: the status still answers, without the probe.
                copy = f"unknown (probing it: {(exc.strerror or str(exc)).lower()})"
        return [
            ("Backing Filesystem", filesystem_type(self.home)),
            ("Copy", copy),
            ("Layers", str(len(self.list_layers()))),
        ]

    def metadata(self, layer_id: str) -> dict[str, str]:
        """The layer's directory."""
        return {"Path": os.fspath(self._existing(layer_id, "reading metadata of"))}

    def cleanup(self) -> None:
        """Drop every reference this driver holds; vfs has nothing to unmount."""
        for layer_id in self.counter.active():
            with self.counter.locked(layer_id):
                self.counter.forget(layer_id)

    # -- helpers ----------------------------------------------------------------------------

    def _path(self, layer_id: str) -> Path | None:
        """The directory of ``layer_id``; ``None`` if the id cannot name a layer."""
        if not layer_id or layer_id.startswith(".") or "/" in layer_id or "\0" in layer_id:
            return None
        return self.layers_dir / layer_id

    def _valid_path(self, layer_id: str, doing: str) -> Path:
        """The directory of ``layer_id``; ``GraphDriverError`` if the id is not valid."""
        path = self._path(layer_id)
        if path is None:
            raise GraphDriverError(
                f"{doing} layer {layer_id!r}: not a valid layer id"
                " (empty, starts with a dot, or holds a slash or NUL)",
                layer_id=layer_id,
                driver=self.name,
            )
        return path

    def _existing(self, layer_id: str, doing: str) -> Path:
        """The directory of an existing layer; ``LayerUnknownError`` otherwise."""
        path = self._path(layer_id)
        if path is None or not path.is_dir():
            raise LayerUnknownError(
                f"{doing} layer {layer_id}: no such layer",
                layer_id=layer_id,
                driver=self.name,
                path=path,
            )
        return path

    def _temp_path(self, purpose: str) -> Path:
        """A fresh dot-name in ``dir/`` that names this process, for build or removal."""
        return self.layers_dir / f".{purpose}-{os.getpid()}-{secrets.token_hex(6)}"

    def _discard(self, temp: Path, cause: BaseException) -> None:
        """Delete a half-built layer; if that fails too, say so on ``cause``."""
        try:
            if os.path.lexists(temp):
                remove_tree(os.fspath(temp))
        except OSError as exc:
            cause.add_note(f"could not delete the partial layer {temp}: {exc}")

    def _remove_leftovers(self) -> None:
        """Delete dot-entries left by processes that no longer run (a crash mid-create)."""
        with os.scandir(self.layers_dir) as entries:
            stale = [
                entry.path
                for entry in entries
                if entry.name.startswith(_TEMP_PREFIXES) and not _is_running(entry.name)
            ]
        for path in stale:
            remove_tree(path)


def _is_running(temp_name: str) -> bool:
    """Whether the process named in a ``.create-<pid>-...`` entry still runs."""
    try:
        pid = int(temp_name.split("-")[1])
    except (IndexError, ValueError):
        return False
    return syscalls.pid_alive(pid)
