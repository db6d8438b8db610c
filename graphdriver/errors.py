"""Errors raised by graph drivers: one hierarchy under :class:`GraphDriverError`."""

from __future__ import annotations

from pathlib import Path


class GraphDriverError(Exception):
    """Base of every graph-driver error; carries the layer, driver and path where known."""

    def __init__(
        self,
        message: str,
        *,
        layer_id: str | None = None,
        driver: str | None = None,
        path: str | Path | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.layer_id = layer_id
        self.driver = driver
        self.path = str(path) if path is not None else None

    def __str__(self) -> str:
        return self.message

    def about_layer(self, layer_id: str, driver: str, doing: str) -> None:
        """Name the layer (and what was being done to it) if the error does not yet."""
        if self.layer_id is None:
            self.layer_id = layer_id
            self.message = f"{doing} layer {layer_id}: {self.message}"
            self.args = (self.message,)
        if self.driver is None:
            self.driver = driver


class NotSupportedError(GraphDriverError):
    """The driver cannot work on this host; the message says why."""


class InvalidOptionError(GraphDriverError):
    """An option key or value the driver does not accept."""


class LayerUnknownError(GraphDriverError):
    """No layer with this id."""


class LayerExistsError(GraphDriverError):
    """A layer with this id exists already."""


class LayerInUseError(GraphDriverError):
    """The layer is mounted (or has children) and cannot be removed."""


class MountError(GraphDriverError):
    """Mounting or unmounting a layer failed."""


class BreakoutError(GraphDriverError):
    """An archive entry would write outside the layer root, or uses a reserved whiteout name."""


class ArchiveError(GraphDriverError):
    """A layer archive is corrupt, truncated, or in a format that cannot be read."""
