"""The graph-driver contract: base class, registry, errors, layer archive and change detection.

Drivers live in their own distributions or packages and register through the
``pydock.graphdrivers`` entry-point group; this package imports nothing else of pydock.
"""

from __future__ import annotations

from graphdriver.change import Change, ChangeKind
from graphdriver.driver import Driver, parse_bool
from graphdriver.errors import (
    ArchiveError,
    BreakoutError,
    GraphDriverError,
    InvalidOptionError,
    LayerExistsError,
    LayerInUseError,
    LayerUnknownError,
    MountError,
    NotSupportedError,
)
from graphdriver.registry import available, get_driver, probe, register, registered

__all__ = [
    "ArchiveError",
    "BreakoutError",
    "Change",
    "ChangeKind",
    "Driver",
    "GraphDriverError",
    "InvalidOptionError",
    "LayerExistsError",
    "LayerInUseError",
    "LayerUnknownError",
    "MountError",
    "NotSupportedError",
    "available",
    "get_driver",
    "parse_bool",
    "probe",
    "register",
    "registered",
]
