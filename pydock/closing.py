"""A resource used in a ``with`` block: its ``close`` runs at the block's end."""

from __future__ import annotations

from typing import Self


class Closing:
    """Base of the engine, the store and the registry client."""

    def close(self) -> None:
        """Release what the resource holds."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
