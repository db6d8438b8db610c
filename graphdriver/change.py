"""Value types for changes between two layers."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ChangeKind(enum.StrEnum):
    """Kind of a change, spelled as ``docker diff`` prints it."""

    MODIFY = "C"
    ADD = "A"
    DELETE = "D"


@dataclass(frozen=True, order=True)
class Change:
    """One changed path (absolute inside the layer, ``/a/b``)."""

    path: str
    kind: ChangeKind

    def __str__(self) -> str:
        return f"{self.kind.value} {self.path}"
