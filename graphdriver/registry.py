"""Driver registry: drivers come from the ``pydock.graphdrivers`` entry-point group or from
``register``; ``get_driver`` builds one by name, or picks the best that works here."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from graphdriver.driver import Driver
from graphdriver.entrypoints import entry_points
from graphdriver.errors import GraphDriverError, NotSupportedError

ENTRY_POINT_GROUP = "pydock.graphdrivers"

_registered: dict[str, type[Driver]] = {}
_entry_points_loaded = False
_load_lock = threading.Lock()


def register(name: str, driver_class: type[Driver]) -> None:
    """Make ``driver_class`` available under ``name`` (replaces an earlier registration)."""
    _registered[name] = driver_class


def _load_entry_points() -> None:
    global _entry_points_loaded
    with _load_lock:
        if _entry_points_loaded:
            return
        for entry in entry_points(ENTRY_POINT_GROUP):
            if entry.name in _registered:
                continue
            loaded = entry.load()
            if isinstance(loaded, type) and issubclass(loaded, Driver):
                _registered[entry.name] = loaded
        _entry_points_loaded = True


def registered() -> dict[str, type[Driver]]:
    """Every known driver class by name, best first."""
    _load_entry_points()
    ordered = sorted(_registered.items(), key=lambda item: (-item[1].priority, item[0]))
    return dict(ordered)


def home_name(name: str) -> str:
    """The directory name under which driver ``name`` keeps its layers (see ``Driver``)."""
    driver_class = registered().get(name)
    if driver_class is None:
        return name
    return driver_class.home_name or name


def probe(name: str, home: Path) -> str | None:
    """``None`` if driver ``name`` works with ``home``, else the reason it does not."""
    driver_class = registered().get(name)
    if driver_class is None:
        return f"unknown driver {name!r}"
    try:
        driver_class.check_support(Path(home))
    except NotSupportedError as exc:
        return str(exc)
    return None


def available(home: Path | None = None) -> list[str]:
    """Names of the drivers that work on this host (for ``home``), best first."""
    home = Path(home) if home is not None else Path("/var/tmp")
    return [name for name in registered() if probe(name, home) is None]


def get_driver(name: str | None, home: Path, options: Mapping[str, str] | None = None) -> Driver:
    """Build driver ``name`` (or, for ``None``, the best one that works) rooted at ``home``."""
    drivers = registered()
    if name is None:
        reasons = []
        for candidate in drivers:
            try:
                return get_driver(candidate, home, options)
            except NotSupportedError as exc:
                reasons.append(f"{candidate}: {exc}")
        raise NotSupportedError("no graph driver works here (" + "; ".join(reasons) + ")")
    driver_class = drivers.get(name)
    if driver_class is None:
        known = ", ".join(drivers) or "none"
        raise NotSupportedError(f"unknown driver {name!r} (known: {known})", driver=name)
    driver_class.check_support(Path(home))
    try:
        return driver_class(Path(home), options)
    except GraphDriverError:
        raise
    except OSError as exc:
        raise NotSupportedError(
            f"starting driver {name} at {home}: {exc.strerror or exc}", driver=name, path=home
        ) from exc
