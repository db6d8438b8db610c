"""The composition root: one store, one content store and the selected graph driver.

Every CLI command calls one verb of :class:`Engine`. Opening an engine recovers what crashed
processes left behind (see :mod:`pydock.image.layercache`).
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from pydock import info
from pydock.closing import Closing
from pydock.driverset import DriverSet
from pydock.errors import (
    PydockError,
)
from pydock.image import blobs
from pydock.image.content import ContentStore
from pydock.image.layercache import LayerManager
from pydock.image.service import Images
from pydock.presence import Presence
from pydock.settings import EngineConfig

if TYPE_CHECKING:  # containers (and the runtime) load only for the commands that use them
    from pydock.containers.manager import ContainerManager
from pydock.store import Store


class Engine(Closing):
    """Images and layers over the store, the content store and a graph driver."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.root = Path(config.root)
        self._containers: ContainerManager | None = None
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise PydockError(f"creating root {self.root}: {reason}", path=self.root) from exc
        self.store = Store.open(self.root)
        self.presence = Presence(self.root)
        self.was_alone = self.presence.alone
        try:
            self.content = ContentStore(self.root)
            self.drivers = DriverSet(
                self.root, config.storage, config.storage_options, run_root=config.run_root
            )
            self.driver, self.home = self.drivers.default, self.drivers.home
            self.layers = LayerManager(
                self.store, self.content, self.driver, self.home, self.drivers.for_home
            )
            self.images = Images(self.root, self.store, self.content, self.layers)
            self.layers.recover()
            if self.store.containers.has_owned_rows():
                self.containers.recover()
            if lost := self.store.containers.lost_with_restart_policy():
                self.containers.revive(lost)
            if self.presence.alone:
                with suppress(PydockError, OSError):
                    blobs.collect(self.store, self.content)
            self.presence.share()
        except BaseException:
            self.presence.close()
            self.store.close()
            raise

    def close(self) -> None:
        """Release the mounts this process holds and close the store.

        Mounts that running containers use stay (see :mod:`pydock.containers.storage`).
        """
        try:
            self.drivers.close()
        finally:
            self.presence.close()
            self.store.close()

    @property
    def containers(self) -> ContainerManager:
        """The containers of this root."""
        if self._containers is None:
            from pydock.containers.manager import ContainerManager

            self._containers = ContainerManager(
                self.store,
                self.content,
                self.drivers,
                run_root=self.config.run_root,
                import_image=self.images.import_image,
            )
        return self._containers

    # -- verbs ------------------------------------------------------------------------------

    def info(self) -> dict[str, object]:
        """What ``pydock info`` shows."""
        return info.collect(
            self.store,
            self.driver,
            root=self.root,
            run_root=self.config.run_root,
            storage_options=self.config.storage_options,
        )
