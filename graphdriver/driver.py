"""The graph-driver contract: the base class every driver implements, and its value types.

A driver stores layers under its ``home`` directory. Image layers are made with ``create``,
container layers with ``create_read_write``; ``get``/``put`` mount and unmount (refcounted);
``diff``/``changes``/``apply_diff``/``diff_size`` move changes in and out as OCI layer tars.
The default implementations of the four diff methods compare mounted trees (the "naive" way);
drivers that can read their changes directly override them.
"""

from __future__ import annotations

import abc
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, ClassVar, cast

from graphdriver import archive
from graphdriver import changes as changes_mod
from graphdriver.change import Change
from graphdriver.counter import RefCounter
from graphdriver.errors import GraphDriverError, InvalidOptionError


def parse_bool(value: str) -> bool:
    """Parse an option value as a boolean (``true/false/1/0/yes/no``)."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


class Driver(abc.ABC):
    """Base class of graph drivers.

    Subclasses set ``name`` and ``priority`` (higher is preferred by ``get_driver(None)``),
    declare their options in ``option_parsers`` and implement the abstract methods.
    """

    name: ClassVar[str] = ""
    priority: ClassVar[int] = 0
    #: The directory (under an application's root) that holds this driver's layers. Drivers
    #: that declare the same one share one on-disk layout: a layer unpacked by one serves the
    #: others. Empty: the driver's own name.
    home_name: ClassVar[str] = ""
    option_parsers: ClassVar[Mapping[str, Callable[[str], object]]] = {}

    def __init__(self, home: Path, options: Mapping[str, str] | None = None) -> None:
        self.home = Path(home)
        self.options = self.parse_options(options or {})
        self.counter = RefCounter()

    # -- options and probes -------------------------------------------------------------

    @classmethod
    def parse_options(cls, options: Mapping[str, str]) -> dict[str, object]:
        """Validate ``options``; keys may carry the driver prefix (``vfs.copy=...``)."""
        parsed: dict[str, object] = {}
        for raw_key, value in options.items():
            key = raw_key.removeprefix(f"{cls.name}.")
            parser = cls.option_parsers.get(key)
            if parser is None:
                known = ", ".join(sorted(cls.option_parsers)) or "none"
                raise InvalidOptionError(
                    f"unknown option {raw_key!r} for driver {cls.name} (known: {known})",
                    driver=cls.name,
                )
            try:
                parsed[key] = parser(value)
            except ValueError as exc:
                raise InvalidOptionError(
                    f"bad value for option {raw_key!r} of driver {cls.name}: {exc}",
                    driver=cls.name,
                ) from exc
        return parsed

    @classmethod
    def check_support(cls, home: Path) -> None:
        """Raise ``NotSupportedError`` (with the reason) if the driver cannot work here."""
        return None  # most drivers work everywhere

    # -- layers -----------------------------------------------------------------------------

    @abc.abstractmethod
    def create(
        self, layer_id: str, parent: str | None, *, opts: Mapping[str, str] | None = None
    ) -> None:
        """Make a new image layer on ``parent``."""

    @abc.abstractmethod
    def create_read_write(
        self, layer_id: str, parent: str | None, *, opts: Mapping[str, str] | None = None
    ) -> None:
        """Make a new writable (container) layer on ``parent``."""

    @abc.abstractmethod
    def remove(self, layer_id: str) -> None:
        """Delete a layer; ``LayerInUseError`` while it is mounted."""

    @abc.abstractmethod
    def get(self, layer_id: str, *, mount_label: str = "") -> Path:
        """Mount (refcounted) and return the root of the layer's merged tree."""

    @abc.abstractmethod
    def put(self, layer_id: str) -> None:
        """Drop one reference; the last one unmounts. A put without a get does nothing."""

    @abc.abstractmethod
    def exists(self, layer_id: str) -> bool:
        """Whether the layer exists."""

    @abc.abstractmethod
    def list_layers(self) -> list[str]:
        """Ids of every layer, sorted."""

    @abc.abstractmethod
    def status(self) -> list[tuple[str, str]]:
        """Facts printed by ``pydock info``."""

    @abc.abstractmethod
    def metadata(self, layer_id: str) -> dict[str, str]:
        """Paths and facts of one layer."""

    @abc.abstractmethod
    def cleanup(self) -> None:
        """Unmount everything this driver mounted."""

    def is_mounted(self, layer_id: str) -> bool:
        """Whether this process holds a reference to the layer."""
        return self.counter.count(layer_id) > 0

    def adopt(self, layer_id: str) -> bool:
        """Take a reference to the layer's mount when one is up (made by this or another
        process) and return True; never mounts. This default serves drivers whose ``get``
        mounts nothing that outlives a process: a reference is all there is to take."""
        self.get(layer_id)
        return True

    # -- changes: naive defaults --------------------------------------------------------

    def whiteout_format(self) -> archive.WhiteoutFormat:
        """How ``apply_diff`` represents deletions on this driver's disk."""
        return archive.DeleteWhiteouts()

    def changes(self, layer_id: str, parent: str | None) -> list[Change]:
        """Changes from ``parent`` to ``layer_id``, as ``docker diff`` lists them."""
        with self._mounted_pair(layer_id, parent) as (layer_root, parent_root):
            return changes_mod.changes_dirs(layer_root, parent_root)

    def diff(self, layer_id: str, parent: str | None) -> BinaryIO:
        """An uncompressed layer tar of the changes from ``parent`` to ``layer_id``."""

        def write(out: BinaryIO) -> None:
            with self._mounted_pair(layer_id, parent) as (layer_root, parent_root):
                found = changes_mod.changes_dirs(layer_root, parent_root)
                archive.export_changes(layer_root, found, out)

        return spooled(write)

    def diff_size(self, layer_id: str, parent: str | None) -> int:
        """Bytes of regular-file content in the changes (a hard link counts once)."""
        with self._mounted_pair(layer_id, parent) as (layer_root, parent_root):
            found = changes_mod.changes_dirs(layer_root, parent_root)
            return changes_mod.changes_size(layer_root, found)

    def apply_diff(self, layer_id: str, parent: str | None, stream: BinaryIO) -> int:
        """Unpack a layer tar (plain, gzip or zstd) into the layer; returns content bytes."""
        try:
            root = self.get(layer_id)
            try:
                return self.unpack(root, stream)
            finally:
                self.put(layer_id)
        except GraphDriverError as exc:
            exc.about_layer(layer_id, self.name, "unpacking into")
            raise

    def unpack(self, root: Path, stream: BinaryIO, *, lowers: Sequence[Path] = ()) -> int:
        """Unpack a layer tar into the directory ``root`` with this driver's options."""
        opts = self.unpack_options()
        return archive.apply_layer(
            root,
            stream,
            whiteouts=self.whiteout_format(),
            skip_devices=opts.get("skip_devices", False),
            ignore_chown_errors=opts.get("ignore_chown_errors", False),
            lowers=lowers,
        )

    def mount_problem(self, layer_id: str) -> str | None:
        """Why the mount of ``layer_id`` no longer serves its files, or ``None``.

        Must not touch the mount itself (a hung filesystem would hang the caller). Drivers
        whose mounts are served by a process of their own report that process's death.
        """
        return None

    def unpack_options(self) -> dict[str, bool]:
        """Flags for :func:`archive.apply_layer`: ``skip_devices``, ``ignore_chown_errors``."""
        return {}

    def _mounted_pair(self, layer_id: str, parent: str | None) -> _MountedPair:
        return _MountedPair(self, layer_id, parent)


def spooled(write: Callable[[BinaryIO], object]) -> BinaryIO:
    """A rewound temporary stream (in memory up to 8 MiB) filled by ``write``."""
    out = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=8 << 20))  # noqa: SIM115
    try:
        write(out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


class _MountedPair:
    """Mount a layer and its parent for the duration of a ``with`` block."""

    def __init__(self, driver: Driver, layer_id: str, parent: str | None) -> None:
        self.driver = driver
        self.layer_id = layer_id
        self.parent = parent
        self._held: list[str] = []

    def __enter__(self) -> tuple[Path, Path | None]:
        try:
            layer_root = self.driver.get(self.layer_id)
            self._held.append(self.layer_id)
            parent_root = None
            if self.parent is not None:
                parent_root = self.driver.get(self.parent)
                self._held.append(self.parent)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return layer_root, parent_root

    def __exit__(self, *exc: object) -> None:
        while self._held:
            self.driver.put(self._held.pop())
