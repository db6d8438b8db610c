"""What the global options ask of the engine: where its data lives and which driver it uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class EngineConfig:
    """Where the engine keeps its data and which storage driver it uses."""

    root: Path
    run_root: Path
    storage: str | None = None
    storage_options: Mapping[str, str] = field(default_factory=dict)
