"""The graph-driver contract: base class, registry, errors, layer archive and change detection.

Drivers live in their own distributions or packages and register through the
``pydock.graphdrivers`` entry-point group; this package imports nothing else of pydock.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from graphdriver.change import Change, ChangeKind
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

if TYPE_CHECKING:
    from graphdriver.driver import Driver, parse_bool
    from graphdriver.registry import (
        available,
        get_driver,
        home_name,
        probe,
        register,
        registered,
    )

# The base class and the registry load on first use: a FUSE filesystem process needs only the
# errors, and importing the archive code with them would add to every mount's start-up.
_LAZY = {
    "Driver": "graphdriver.driver",
    "parse_bool": "graphdriver.driver",
    "available": "graphdriver.registry",
    "get_driver": "graphdriver.registry",
    "home_name": "graphdriver.registry",
    "probe": "graphdriver.registry",
    "register": "graphdriver.registry",
    "registered": "graphdriver.registry",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graphdriver' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
    "home_name",
    "parse_bool",
    "probe",
    "register",
    "registered",
]
