"""Entry points of one group, read from the installed distributions without importlib.metadata.

Every pydock command looks up its graph drivers, and ``importlib.metadata`` costs more to import
(about 12 ms) than the look-up itself. The installed distributions' metadata is a directory per
distribution on ``sys.path`` (``NAME-VERSION.dist-info`` or ``.egg-info``) holding an
``entry_points.txt`` in INI form; this module reads exactly that. As ``importlib.metadata`` does,
the first distribution of a name along ``sys.path`` wins and later copies are ignored.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass

_SUFFIXES = (".dist-info", ".egg-info")


@dataclass(frozen=True)
class EntryPoint:
    """``name = module:attribute`` in group ``group`` of distribution ``distribution``."""

    name: str
    value: str
    group: str
    distribution: str

    def load(self) -> object:
        """Import the module and return the attribute the entry point names."""
        import importlib

        module_name, _, attribute = self.value.partition(":")
        loaded: object = importlib.import_module(module_name.strip())
        for part in attribute.strip().split(".") if attribute.strip() else ():
            loaded = getattr(loaded, part)
        return loaded


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _metadata_dirs(paths: Iterable[str]) -> Iterable[tuple[str, str]]:
    """``(distribution, metadata directory)``, the first of each name along ``paths``."""
    seen: set[str] = set()
    for entry in paths:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue  # a missing directory, a zip file: nothing pydock installs lives there
        for name in names:
            if not name.endswith(_SUFFIXES):
                continue
            distribution = _normalise(name.rsplit(".", 1)[0].split("-", 1)[0])
            if distribution in seen:
                continue
            seen.add(distribution)
            yield distribution, os.path.join(entry or ".", name)


def _parse(text: str, group: str, distribution: str) -> list[EntryPoint]:
    found: list[EntryPoint] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section == group and "=" in line:
            name, _, value = line.partition("=")
            found.append(EntryPoint(name.strip(), value.strip(), group, distribution))
    return found


def entry_points(group: str, paths: Iterable[str] | None = None) -> list[EntryPoint]:
    """Every entry point of ``group`` along ``paths`` (default ``sys.path``)."""
    found: list[EntryPoint] = []
    for distribution, directory in _metadata_dirs(sys.path if paths is None else paths):
        try:
            with open(os.path.join(directory, "entry_points.txt"), encoding="utf-8") as file:
                text = file.read()
        except OSError:
            continue
        found.extend(_parse(text, group, distribution))
    return found
