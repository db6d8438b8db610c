"""Errors raised by the pydock application; the CLI turns them into one line and exit 125."""

from __future__ import annotations

from pathlib import Path


class PydockError(Exception):
    """Base of every pydock error; the message reads ``<what failed>: <why>``."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        image_id: str | None = None,
        layer_id: str | None = None,
        digest: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.image_id = image_id
        self.layer_id = layer_id
        self.digest = digest

    def __str__(self) -> str:
        return self.message


class StoreError(PydockError):
    """The metadata store cannot be opened, migrated or written."""


class ContentError(PydockError):
    """A blob of the content store is missing, unreadable or has a bad digest."""


class DigestMismatchError(ContentError):
    """Written content does not hash to the digest it was expected to have."""


class InvalidReferenceError(PydockError):
    """An image reference (``NAME[:TAG]``) that does not follow Docker's syntax."""


class ImageUnknownError(PydockError):
    """No image matches a name, tag or id."""


class ImageConflictError(PydockError):
    """An image cannot be removed as asked (several tags, or used by a container)."""


class LayerInputError(PydockError):
    """A layer archive given to pydock is empty, truncated, corrupt or not a tar."""


class DriverError(PydockError):
    """A graph-driver operation failed; wraps the driver's error with what pydock was doing."""


class UsageError(PydockError):
    """A command-line value pydock cannot use (e.g. a ``--storage-opt`` without ``=``)."""


class ImageFormatError(PydockError):
    """An archive, manifest, index or config that is not a valid image (or names bad blobs)."""
