"""The composition root: one store, one content store and the selected graph driver.

Every CLI command calls one verb of :class:`Engine`. Opening an engine recovers what crashed
processes left behind (see :mod:`pydock.layers`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import graphdriver
from pydock import blobs, builtin, info
from pydock.clock import now_rfc3339
from pydock.containers.manager import ContainerManager
from pydock.content import ContentStore
from pydock.driverset import DriverSet
from pydock.errors import (
    ContentError,
    ImageConflictError,
    InvalidReferenceError,
    LayerInputError,
    PydockError,
)
from pydock.format import short_id
from pydock.image import HistoryEntry, ImageConfig, build_config, chain_ids, store_layer_tar
from pydock.layers import LayerManager, driver_step
from pydock.presence import Presence
from pydock.reference import Reference, parse_reference
from pydock.resolve import resolve_image
from pydock.store import ImageRecord, Store
from pydock.transfer import ImageTransfer


@dataclass(frozen=True)
class EngineConfig:
    """Where the engine keeps its data and which storage driver it uses."""

    root: Path
    run_root: Path
    storage: str | None = None
    storage_options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageRow:
    """One line of ``pydock images``: an image under one of its tags (or none)."""

    id: str
    repository: str
    tag: str
    created: str
    size: int


class Engine(ImageTransfer):
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
            self.drivers = DriverSet(self.root, config.storage, config.storage_options)
            self.driver, self.home = self.drivers.default, self.drivers.home
            self.layers = LayerManager(
                self.store, self.content, self.driver, self.home, self.drivers.for_home
            )
            self.layers.recover()
            self.containers.recover()
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
            self._containers = ContainerManager(
                self.store,
                self.content,
                self.drivers,
                run_root=self.config.run_root,
                import_image=self.import_image,
            )
        return self._containers

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

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

    def import_image(
        self,
        source: str,
        reference: str | None = None,
        *,
        message: str = "",
        stdin: BinaryIO | None = None,
    ) -> str:
        """Import a root filesystem tar (file, ``-`` or ``builtin:NAME``) as a new image."""
        ref = _tag_reference(reference) if reference else None
        with self._open_source(source, stdin) as stream:
            try:
                blob = store_layer_tar(stream, self.content)
            except (LayerInputError, graphdriver.ArchiveError, ContentError) as exc:
                raise LayerInputError(f"importing {source}: {exc}") from exc
            except OSError as exc:
                reason = (exc.strerror or str(exc)).lower()
                where = self.content.directory
                raise PydockError(
                    f"importing {source}: writing to {where}: {reason}", path=where
                ) from exc
        try:
            pending = self.layers.register(blob.digest, None)
        except BaseException:
            self._forget_blob(blob.digest)
            raise
        image_id = ""
        try:
            created = now_rfc3339()
            comment = message or f"Imported from {source}"
            config = build_config(
                [blob.digest], created=created, history=[HistoryEntry(created, comment=comment)]
            )
            image_id = self.content.write_bytes(config).digest
            record = ImageRecord(
                image_id, config.decode(), None, pending.chain_id, created, pending.size
            )
            with self.store.transaction():
                self.layers.finish(pending)
                self.store.images.add(record)
                if ref is not None:
                    self.store.images.tag(str(ref), image_id, created=created)
        except BaseException:
            self.layers.abandon(pending)
            self._forget_blob(blob.digest)
            if image_id and self.store.images.get(image_id) is None:
                self.content.delete(image_id)
            raise
        return image_id

    def list_images(self) -> list[ImageRow]:
        """Every image once per tag (an untagged one once), newest first."""
        rows = []
        for image in self.store.images.list_images():
            refs = [parse_reference(tag) for tag in image.tags]
            if not refs:
                rows.append(ImageRow(image.id, "<none>", "<none>", image.created, image.size))
            for ref in refs:
                tag = ref.tag or "<none>"
                rows.append(ImageRow(image.id, ref.familiar_name, tag, image.created, image.size))
        return rows

    def remove_image(self, name: str, *, force: bool = False) -> list[str]:
        """``rmi``: untag ``name``; delete the image and its unused layers when no tag is left.

        Returns Docker's report lines (``Untagged: ...``, ``Deleted: sha256:...``).
        """
        image, tag = resolve_image(self.store, name, doing="removing image")
        users = self.store.containers_using(image.id)
        report: list[str] = []
        if tag is not None and len(image.tags) > 1:
            self.store.images.untag(tag)
            return [f"Untagged: {parse_reference(tag).familiar}"]
        if tag is None and len(image.tags) > 1 and not force:
            raise ImageConflictError(
                f"removing image {name}: unable to delete {short_id(image.id)} (must be forced)"
                " - image is referenced in multiple repositories",
                image_id=image.id,
            )
        if users:
            raise ImageConflictError(
                f"removing image {name}: image is used by container {short_id(users[0])}",
                image_id=image.id,
            )
        diff_ids = list(ImageConfig.parse(image.config).diff_ids)
        freed = self.image_blobs(image)
        with self.store.transaction():
            for each in image.tags:
                self.store.images.untag(each)
                report.append(f"Untagged: {parse_reference(each).familiar}")
            self.store.images.remove(image.id)
            doomed = self.layers.mark_unused(chain_ids(diff_ids))
        self.content.delete(image.id)
        report.append(f"Deleted: {image.id}")
        removed = self.layers.remove_marked(doomed)
        report.extend(f"Deleted: {chain}" for chain in removed)
        self.free_blobs(freed)
        return report

    def inspect_image(self, name: str) -> dict[str, object]:
        """``inspect``: the image as Docker's ``image inspect`` describes it."""
        image, _ = resolve_image(self.store, name, doing="inspecting")
        config = ImageConfig.parse(image.config)
        comment = str(config.history[-1].get("comment", "")) if config.history else ""
        graph: dict[str, object] = {"Name": self.driver.name, "Data": {}}
        cache = self.store.layers.cache(image.top_layer or "", self.home)
        if cache is not None and cache.complete:
            with driver_step(f"reading layer {image.top_layer}"):
                graph["Data"] = self.driver.metadata(cache.cache_id)
        tag_times = [self.store.images.tag_time(tag) for tag in image.tags]
        last_tag = max((when for when in tag_times if when), default="")
        return {
            "Id": image.id,
            "RepoTags": [parse_reference(tag).familiar for tag in image.tags],
            "RepoDigests": self.repo_digests(image.id),
            "Parent": "",
            "Comment": comment,
            "Created": config.created or image.created,
            "Author": "",
            "Config": config.config,
            "Architecture": config.architecture,
            "Os": config.os,
            "Size": image.size,
            "GraphDriver": graph,
            "RootFS": {"Type": "layers", "Layers": list(config.diff_ids)},
            "Metadata": {"LastTagTime": last_tag},
        }

    # -- helpers ----------------------------------------------------------------------------

    @contextmanager
    def _open_source(self, source: str, stdin: BinaryIO | None) -> Iterator[BinaryIO]:
        if builtin.is_builtin(source):
            with builtin.open_builtin(source) as stream:
                yield stream
            return
        if source == "-":
            yield stdin if stdin is not None else sys.stdin.buffer
            return
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed below, after the yield
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise LayerInputError(f"importing {source}: {reason}", path=source) from exc
        with stream:
            yield stream

    def _forget_blob(self, digest: str) -> None:
        if not self.store.layers.uses_diff(digest):
            self.content.delete(digest)


def _tag_reference(text: str) -> Reference:
    ref = parse_reference(text)
    if ref.digest:
        raise InvalidReferenceError(
            f"tagging {text!r}: refusing to create a tag with a digest reference"
        )
    return ref


