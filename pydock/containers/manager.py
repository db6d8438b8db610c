"""Containers over the store, the graph drivers and the runtime: create, find, remove, recover.

Order of writes, so that a kill -9 at any moment leaves nothing that start-up cannot finish:

* create: image layers present in the driver -> row (``creating``, owner) -> writable layer ->
  container directory -> row ``created``;
* remove: row ``removing`` (owner) -> mount released, writable layer and directory removed ->
  row deleted;
* recover: rows ``creating``/``removing`` of dead owners are removed the same way.

Starting, stopping and waiting live in :mod:`pydock.containers.lifecycle`.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import runtime
from pydock.clock import now_rfc3339
from pydock.containers import lifecycle, names, networking
from pydock.containers import volumes as named_volumes
from pydock.containers.config import (
    ContainerConfig,
    ImageDefaults,
    RunOptions,
    build_config,
    check_name,
)
from pydock.containers.errors import (
    ContainerConfigError,
    ContainerConflictError,
    ContainerUnknownError,
)
from pydock.containers.files import ContainerFiles
from pydock.containers.state import Action, ContainerState, transition
from pydock.containers.storage import ContainerLayers
from pydock.errors import ImageUnknownError, InvalidReferenceError, PydockError
from pydock.image.config import ImageConfig
from pydock.image.content import ContentStore
from pydock.image.layercache import LayerManager
from pydock.image.reference import parse_reference
from pydock.image.resolve import resolve_image
from pydock.store import ContainerRecord, ImageRecord, Store, current_owner, is_owner_alive

if TYPE_CHECKING:
    from pydock.driverset import DriverSet

_HEX = re.compile(r"[0-9a-f]{1,64}")
BUILTIN_BUSYBOX = "builtin:busybox"


class ContainerManager:
    """The containers of one pydock root.

    Built from its collaborators: the store, the content store, the root's drivers, the run
    root, and ``import_image(source, name) -> image id`` (for the built-in busybox).
    """

    def __init__(
        self,
        store: Store,
        content: ContentStore,
        drivers: DriverSet,
        *,
        run_root: Path,
        import_image: Callable[[str, str], str],
    ) -> None:
        self.store = store
        self.content = content
        self.drivers = drivers
        self.root = drivers.root
        self.run_root = Path(run_root)
        self._import_image = import_image
        self._storages: dict[str, ContainerLayers] = {}

    # -- storage ----------------------------------------------------------------------------

    def storage(self, driver_name: str) -> ContainerLayers:
        """The container storage of driver ``driver_name`` (built on first use)."""
        if driver_name not in self._storages:
            layers = LayerManager(
                self.store,
                self.content,
                self.drivers.driver(driver_name),
                self.drivers.home_of(driver_name),
                self.drivers.for_home,
            )
            self._storages[driver_name] = ContainerLayers(layers)
        return self._storages[driver_name]

    # -- finding ----------------------------------------------------------------------------

    def files(self, container_id: str) -> ContainerFiles:
        """The container's directory under the root."""
        return ContainerFiles.of(self.root, container_id)

    def lookup(self, name: str, *, doing: str) -> ContainerRecord:
        """The container named ``name``, or with that id or unique id prefix."""
        record = self.store.containers.by_name(name.removeprefix("/"))
        if record is None and _HEX.fullmatch(name):
            matches = self.store.containers.by_prefix(name)
            if len(matches) > 1:
                raise ContainerUnknownError(
                    f"{doing} {name}: ambiguous id prefix ({len(matches)} containers)"
                )
            record = matches[0] if matches else None
        if record is None or record.state in (ContainerState.CREATING, ContainerState.REMOVING):
            raise ContainerUnknownError(f"{doing} {name}: no such container")
        return record

    def exists(self, name: str) -> bool:
        """Whether a container has this name or id (prefix)."""
        try:
            self.lookup(name, doing="looking up")
        except ContainerUnknownError:
            return False
        return True

    @staticmethod
    def config_of(record: ContainerRecord) -> ContainerConfig:
        """The stored settings of a container."""
        return ContainerConfig.from_json(record.config)

    # -- images -----------------------------------------------------------------------------

    def image(self, name: str, *, doing: str) -> ImageRecord:
        """The image ``name``; ``busybox`` and ``builtin:busybox`` are built here when missing."""
        try:
            return resolve_image(self.store, name, doing=doing)[0]
        except ImageUnknownError:
            if not is_builtin_busybox(name):
                _check_reference(name, doing)
                raise
        image_id = self._import_image(BUILTIN_BUSYBOX, "busybox")
        found = self.store.images.get(image_id)
        if found is None:
            raise ImageUnknownError(f"{doing} {name}: the built-in image went away meanwhile")
        return found

    # -- create and remove ------------------------------------------------------------------

    def create(self, options: RunOptions, *, starting: bool = False) -> ContainerRecord:
        """Record a new container and make its storage; it is ``created``, not running.

        With ``starting`` (``run``), this process stays its owner until the run has started,
        so that a ``run`` killed in between is finished by the next start-up's recovery.
        """
        doing = "creating a container"
        if options.name is not None:
            taken = self.store.containers.by_name(check_name(options.name))
            if taken is not None:
                raise ContainerConflictError(
                    f"{doing}: the name {options.name!r} is already in use by container "
                    f"{taken.id[:12]}"
                )
        image = self.image(options.image, doing="using image")
        config = build_config(
            options, ImageDefaults.from_config(ImageConfig.parse(image.config).config)
        )
        if config.volumes_from:
            sources = []
            for entry in config.volumes_from:
                name, _, mode = entry.partition(":")
                other = self.lookup(name, doing="checking --volumes-from")
                sources.append((self.config_of(other), mode))
            config = named_volumes.inherit(config, sources)
        _check_capabilities(config)
        networking.check_networks(self, config)
        storage = self.storage(self.drivers.default.name)
        top = storage.prepare_image(image)
        config, made = named_volumes.attach(self.store, self.root, config)
        try:
            record = self._insert(options.name, image, storage, config)
        except BaseException:
            for name in made:
                named_volumes.remove(self.store, self.root, name, force=True)
            raise
        files = self.files(record.id)
        try:
            storage.create_rw(record.rw_layer, top)
            files.create()
            self.store.containers.update(
                record.id,
                expect=(ContainerState.CREATING,),
                state=ContainerState.CREATED,
                owner=record.owner if starting else None,
            )
        except BaseException:
            with contextlib.suppress(PydockError):
                self._discard(record, volumes=True)
            raise
        return replace(
            record, state=ContainerState.CREATED, owner=record.owner if starting else None
        )

    def _insert(
        self,
        name: str | None,
        image: ImageRecord,
        storage: ContainerLayers,
        config: ContainerConfig,
    ) -> ContainerRecord:
        while True:
            container_id = secrets.token_hex(32)
            if container_id[:12].isdigit():
                continue  # as Docker: a short id must not read as a number
            chosen = name or names.generate(lambda n: self.store.containers.by_name(n) is not None)
            record = ContainerRecord(
                id=container_id,
                name=chosen,
                image=image.id,
                rw_layer=secrets.token_hex(32),
                storage=storage.driver.name,
                state=ContainerState.CREATING,
                created=now_rfc3339(),
                config=config.to_json(),
                owner=current_owner(),
            )
            if self.store.containers.add(record):
                return record
            if name is not None:
                raise ContainerConflictError(
                    f"creating a container: the name {name!r} is already in use"
                )

    def remove(
        self, record: ContainerRecord, *, force: bool = False, volumes: bool = False
    ) -> None:
        """Delete a container: its writable layer, its files and its row (``volumes``: and its
        anonymous volumes, which ``--rm`` containers always lose)."""
        current = lifecycle.refresh(self, record)
        if current is None:
            return
        transition(current.state, Action.FORCE_REMOVE if force else Action.REMOVE, name=record.name)
        if current.state == ContainerState.RUNNING:
            lifecycle.kill_and_wait(self, current)
            current = lifecycle.refresh(self, current, auto_remove=False)
            if current is None:
                return
        record = current
        expect = (ContainerState.CREATED, ContainerState.EXITED)
        if not self.store.containers.update(
            record.id, expect=expect, state=ContainerState.REMOVING, owner=current_owner()
        ):
            current = self.store.containers.get(record.id)
            if current is None or current.state == ContainerState.REMOVING:
                return  # someone else is removing it
            raise ContainerConflictError(
                f"removing container {record.name}: it is {current.state} now"
            )
        self._discard(record, volumes=volumes)

    def _discard(self, record: ContainerRecord, *, volumes: bool = False) -> None:
        """Remove the storage, files and row of a container this process owns."""
        networking.release(self, record.id)
        self.storage(record.storage).remove_rw(record.rw_layer)
        self.files(record.id).remove()
        self.store.containers.remove(record.id)
        config = self.config_of(record)
        if volumes or config.auto_remove:
            for name in named_volumes.anonymous_of(self.store, config):
                with contextlib.suppress(PydockError):
                    named_volumes.remove(self.store, self.root, name)

    def recover(self) -> int:
        """Finish creations and removals that crashed processes left; returns how many."""
        done = 0
        busy = (ContainerState.CREATING, ContainerState.REMOVING)
        for record in self.store.containers.list_containers():
            if record.owner is None or is_owner_alive(record.owner):
                continue
            with contextlib.suppress(PydockError):
                if record.state in busy:
                    self._discard(record)
                elif record.state == ContainerState.CREATED:
                    self._abandoned_run(record)
                else:
                    continue
                done += 1
        return done

    def revive(self, lost: list[ContainerRecord]) -> None:
        """Start again the ``always``/``unless-stopped`` containers whose run was lost (their
        monitor died, as at a reboot), as podman's restart service does without a daemon."""
        from pydock.containers import control

        for record in lost:
            current = lifecycle.refresh(self, record)
            if current is None or current.state != ContainerState.EXITED or current.stopped:
                continue
            self.store.containers.update(record.id, restart_count=current.restart_count + 1)
            with contextlib.suppress(PydockError):
                control.start_detached(self, current)

    def _abandoned_run(self, record: ContainerRecord) -> None:
        """A ``run`` killed before its container started: as if the start had failed."""
        storage = self.storage(record.storage)
        storage.release(record.rw_layer)
        networking.release(self, record.id)
        if self.config_of(record).auto_remove:
            self._discard(record)
        else:
            self.store.containers.update(record.id, expect=(ContainerState.CREATED,), owner=None)


def is_builtin_busybox(name: str) -> bool:
    """Whether ``name`` means the built-in busybox (made here, never pulled)."""
    if name == BUILTIN_BUSYBOX:
        return True
    try:
        ref = parse_reference(name)
    except Exception:
        return False
    return ref.familiar_name == "busybox" and ref.tag in (None, "latest") and not ref.digest


def _check_reference(name: str, doing: str) -> None:
    """As Docker: a name that is no reference (nor an id) is refused as such."""
    if _HEX.fullmatch(name.removeprefix("sha256:")):
        return
    try:
        parse_reference(name)
    except InvalidReferenceError as exc:
        why = str(exc).partition(": ")[2] or str(exc)
        raise ContainerConfigError(f"{doing} {name}: invalid reference format: {why}") from exc


def _check_capabilities(config: ContainerConfig) -> None:
    try:
        runtime.resolve_capabilities(config.cap_add, config.cap_drop)
    except runtime.InvalidSpecError as exc:
        raise ContainerConfigError(f"creating a container: {exc}") from exc
