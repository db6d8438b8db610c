"""The graph drivers of one root, built in one place: which one new work uses, and the others
on demand (a container kept in another driver, a layer copy in another home).

A driver's home is ``<root>/<home_name>``, where ``home_name`` is what the driver declares
(``graphdriver.Driver.home_name``): drivers that declare the same one share their layers.
Storage options (``--storage-opt``) apply to the driver they were given for. A driver that
declares a ``run_root`` option (the fuse driver keeps its mount server's socket there) gets the
application's run root.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import graphdriver
from pydock.errors import DriverError


class DriverSet:
    """Selection, homes and options of the graph drivers of one root."""

    def __init__(
        self,
        root: Path,
        wanted: str | None,
        options: Mapping[str, str],
        *,
        run_root: Path | None = None,
    ) -> None:
        self.root = Path(root)
        self.run_root = run_root
        self.wanted = wanted
        self.options = dict(options)
        self._by_name: dict[str, graphdriver.Driver] = {}
        self._by_home: dict[str, graphdriver.Driver | None] = {}
        self.default = self._select()
        self.home = graphdriver.home_name(self.default.name)

    @staticmethod
    def home_of(name: str) -> str:
        """The home directory name of driver ``name``."""
        return graphdriver.home_name(name)

    def _select(self) -> graphdriver.Driver:
        names = [self.wanted] if self.wanted else self._candidates()
        reasons = []
        for name in names:
            try:
                return self._open(name, self.options)
            except graphdriver.NotSupportedError as exc:
                if self.wanted:
                    raise DriverError(f"starting storage driver {name}: {exc}") from exc
                reasons.append(f"{name}: {exc}")
            except graphdriver.GraphDriverError as exc:
                raise DriverError(f"starting storage driver {name}: {exc}") from exc
        detail = "; ".join(reasons) or "no driver is installed"
        raise DriverError(f"choosing a storage driver: none works here ({detail})")

    def _candidates(self) -> list[str]:
        """Registered drivers, best first, those that already hold layers here first."""
        names = list(graphdriver.registered())
        used = [name for name in names if _has_entries(self.root / self.home_of(name))]
        return used + [name for name in names if name not in used]

    def _open(self, name: str, options: Mapping[str, str]) -> graphdriver.Driver:
        given = dict(options)
        driver_class = graphdriver.registered().get(name)
        wants_run_root = driver_class is not None and "run_root" in driver_class.option_parsers
        named = any(key.removeprefix(f"{name}.") == "run_root" for key in given)
        if wants_run_root and self.run_root is not None and not named:
            given["run_root"] = str(self.run_root)
        driver = graphdriver.get_driver(name, self.root / self.home_of(name), given)
        self._by_name[name] = driver
        self._by_home.setdefault(self.home_of(name), driver)
        return driver

    def driver(self, name: str) -> graphdriver.Driver:
        """Driver ``name`` of this root (the options given apply only to the chosen one)."""
        found = self._by_name.get(name)
        if found is not None:
            return found
        options = self.options if name == self.wanted else {}
        try:
            return self._open(name, options)
        except graphdriver.GraphDriverError as exc:
            raise DriverError(f"using storage driver {name}: {exc}") from exc

    def for_home(self, home: str) -> graphdriver.Driver | None:
        """A driver for home ``home`` (to remove or recover layers kept there), if one works."""
        if home not in self._by_home:
            self._by_home[home] = None
            for name in graphdriver.registered():
                if self.home_of(name) != home:
                    continue
                try:
                    return self._open(name, {})
                except graphdriver.GraphDriverError:
                    continue
        return self._by_home[home]

    def homes(self) -> dict[str, graphdriver.Driver]:
        """Every home under the root with a driver that works here, the default's first."""
        found = {self.home: self.default}
        for entry in sorted(p.name for p in self.root.iterdir() if p.is_dir()):
            if entry not in found:
                driver = self.for_home(entry)
                if driver is not None:
                    found[entry] = driver
        return found

    def storage_arguments(self, name: str) -> list[str]:
        """The global options that open driver ``name`` as this set does (for a child pydock)."""
        argv = ["--storage", name]
        if name == self.wanted:
            for key, value in sorted(self.options.items()):
                argv += ["--storage-opt", f"{key}={value}"]
        return argv

    def close(self) -> None:
        """Drop the mount references this process holds (running containers keep theirs)."""
        for driver in {id(d): d for d in self._by_name.values()}.values():
            release_mounts(driver)


def release_mounts(driver: graphdriver.Driver) -> None:
    """At the end of a process: drop every mount reference it still holds.

    Mounts of running containers were handed over (``ContainerLayers.keep_mounted``) and
    stay; nothing that another pydock process mounted is touched.
    """
    failures: list[str] = []
    for layer_id in driver.counter.active():
        try:
            while driver.is_mounted(layer_id):
                driver.put(layer_id)
        except graphdriver.GraphDriverError as exc:
            failures.append(str(exc))
    if failures:
        raise DriverError(f"releasing mounts of driver {driver.name}: {'; '.join(failures)}")


def _has_entries(path: Path) -> bool:
    try:
        return any(path.iterdir())
    except OSError:
        return False
