"""The image verbs: import, load, save, tag, rmi, inspect, history, pull, push, login, prune, df.

:class:`Images` is composed into :class:`pydock.engine.Engine` from the root's store, content
store and layer cache. Each verb prefixes its errors with what it was doing, so the
CLI prints ``pydock: pulling localhost:5000/x:1: downloading blob sha256:...: ...``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

import graphdriver
from pydock.clock import now_rfc3339, to_rfc3339
from pydock.errors import (
    ContentError,
    DriverError,
    ImageConflictError,
    ImageFormatError,
    InvalidReferenceError,
    LayerInputError,
    PydockError,
    UsageError,
)
from pydock.format import short_id
from pydock.image import blobs, builtin
from pydock.image.config import HistoryEntry, ImageConfig, build_config, chain_ids
from pydock.image.content import CHUNK_SIZE, ContentStore
from pydock.image.layercache import LayerManager, driver_step
from pydock.image.layertar import store_layer_tar
from pydock.image.reference import Reference, parse_reference
from pydock.image.resolve import resolve_image
from pydock.store import ImageRecord, Store

if TYPE_CHECKING:  # the registry client (and httpx) load only for the commands that use them
    from pydock.registry import RegistryClient
    from pydock.registry.pull import PullResult
    from pydock.registry.push import PushResult

SCRATCH = "tmp"


@dataclass(frozen=True)
class ImageRow:
    """One line of ``pydock images``: an image under one of its tags (or none)."""

    id: str
    repository: str
    tag: str
    created: str
    size: int
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HistoryRow:
    """One line of ``history``: newest first."""

    image: str
    created: str
    created_by: str
    size: int
    comment: str


@contextmanager
def doing(what: str) -> Iterator[None]:
    """Prefix the message of a pydock error raised in the body with ``what``."""
    try:
        yield
    except PydockError as exc:
        exc.message = f"{what}: {exc.message}"
        exc.args = (exc.message,)
        raise
    except graphdriver.GraphDriverError as exc:
        raise DriverError(f"{what}: {exc}") from exc
    except (tarfile.TarError, EOFError) as exc:  # an archive cut short or corrupt
        raise ImageFormatError(f"{what}: reading the archive: {exc}") from exc
    except BrokenPipeError:
        raise  # the reader went away (`save | head`): the CLI leaves quietly, as Docker does
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        where = f"{exc.filename}: " if exc.filename else ""
        raise PydockError(f"{what}: {where}{reason}") from exc


class Images:
    """Every image verb of one root, over its store, content store and layer cache."""

    def __init__(
        self, root: Path, store: Store, content: ContentStore, layers: LayerManager
    ) -> None:
        self.root = root
        self.store = store
        self.content = content
        self.layers = layers
        self.driver = layers.driver
        self.home = layers.home

    # -- archives -----------------------------------------------------------------------------

    def load_images(
        self, source: str | None, *, platform: str | None = None, stdin: BinaryIO | None = None
    ) -> list[str]:
        """``load``: every image of a docker-archive or OCI layout; Docker's report lines."""
        name = source or "-"
        with doing(f"loading {name}"):
            from pydock.image.bundle import open_bundle
            from pydock.image.ingest import ingesting
            from pydock.image.load import ingest_image, read_archive
            from pydock.image.manifest import Platform

            wanted = Platform.parse(platform) if platform else Platform.default()
            with self._input(source, stdin) as path, open_bundle(path, self._scratch()) as bundle:
                images = read_archive(bundle, platform=wanted)
                report = []
                with blobs.leased(self.store, self.content) as lease:
                    for image in images:
                        with ingesting(self.store, self.content, self.layers, lease) as ingest:
                            image_id = ingest_image(ingest, bundle, image)
                        familiar = [parse_reference(tag).familiar for tag in image.tags]
                        report += [f"Loaded image: {tag}" for tag in familiar]
                        report += [] if familiar else [f"Loaded image ID: {image_id}"]
        return report

    def save_images(
        self, names: list[str], output: str | None, *, kind: str = "docker-archive"
    ) -> None:
        """``save``: images into one archive at ``output`` (stdout if ``None``)."""
        with doing(f"saving {' '.join(names)}"):
            try:
                from pydock.image.save import ArchiveFormat, SaveItem, write_archive

                archive = ArchiveFormat(kind)
            except ValueError as exc:
                raise UsageError(f"unknown format {kind!r}") from exc
            items = []
            for name in names:
                image, tag = resolve_image(self.store, name, doing="finding image")
                items.append(SaveItem(image, (tag,) if tag else ()))
            if output in (None, "-"):
                write_archive(self.store, self.content, items, sys.stdout.buffer, archive)
                sys.stdout.buffer.flush()
                return
            target = Path(output)
            temp = ""
            try:
                fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
                with os.fdopen(fd, "wb") as out:
                    write_archive(self.store, self.content, items, out, archive)
                os.replace(temp, target)
            except OSError as exc:
                # The user named PATH, not the temporary file beside it.
                raise OSError(exc.errno, exc.strerror, str(target)) from exc
            finally:
                if temp:
                    Path(temp).unlink(missing_ok=True)

    @contextmanager
    def _input(self, source: str | None, stdin: BinaryIO | None) -> Iterator[Path]:
        if source not in (None, "-"):
            yield Path(source)
            return
        scratch = self._scratch()
        with tempfile.NamedTemporaryFile(dir=scratch, prefix="load-") as temp:
            shutil.copyfileobj(stdin or sys.stdin.buffer, temp, CHUNK_SIZE)
            temp.flush()
            yield Path(temp.name)

    def _scratch(self) -> Path:
        path = self.root / SCRATCH
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    # -- names and history --------------------------------------------------------------------

    def tag_image(self, source: str, target: str) -> None:
        """``tag``: make ``target`` name the image ``source`` names."""
        with doing(f"tagging {source} as {target}"):
            image, _ = resolve_image(self.store, source, doing="finding image")
            ref = parse_reference(target)
            if ref.digest:
                raise InvalidReferenceError("refusing to create a tag with a digest reference")
            self.store.images.tag(str(ref), image.id, created=now_rfc3339())

    def image_history(self, name: str) -> list[HistoryRow]:
        """``history``: the image's history entries, newest first, with layer sizes."""
        image, _ = resolve_image(self.store, name, doing="reading history of")
        config = ImageConfig.parse(image.config)
        sizes = []
        for chain in chain_ids(list(config.diff_ids)):
            layer = self.store.layers.get(chain)
            sizes.append(layer.size if layer is not None else 0)
        rows = []
        for entry in config.history:
            size = 0
            if not entry.get("empty_layer") and sizes:
                size = sizes.pop(0)
            rows.append(
                HistoryRow(
                    "<missing>",
                    str(entry.get("created", "")),
                    str(entry.get("created_by", "")),
                    size,
                    str(entry.get("comment", "")),
                )
            )
        rows.reverse()
        if rows:
            top = rows[0]
            rows[0] = HistoryRow(image.id, top.created, top.created_by, top.size, top.comment)
        return rows

    def repo_digests(self, image_id: str) -> list[str]:
        """``NAME@DIGEST`` of the image, as ``inspect`` lists them."""
        return [
            f"{parse_reference(name).familiar_name}@{digest}"
            for name, digest in self.store.distribution.repo_digests(image_id)
        ]

    # -- registries ---------------------------------------------------------------------------

    def pull_image(
        self,
        name: str,
        *,
        platform: str | None = None,
        tls_verify: bool | None = None,
        quiet: bool = False,
        out: TextIO | None = None,
    ) -> tuple[Reference, PullResult]:
        """``pull``: the image ``name`` from its registry, for ``platform``."""
        from pydock.image.ingest import ingesting
        from pydock.image.manifest import Platform
        from pydock.registry.progress import Progress
        from pydock.registry.pull import pull

        progress = Progress(out or sys.stdout, quiet=quiet)
        with doing(f"pulling {name}"):
            ref = parse_reference(name)
            wanted = Platform.parse(platform) if platform else Platform.default()
            with (
                self._client(ref, tls_verify) as client,
                blobs.leased(self.store, self.content) as lease,
                ingesting(self.store, self.content, self.layers, lease) as ingest,
            ):
                result = pull(ingest, self.store, client, ref, wanted, progress)
        return ref, result

    def push_image(
        self,
        name: str,
        target: str | None = None,
        *,
        tls_verify: bool | None = None,
        quiet: bool = False,
        out: TextIO | None = None,
    ) -> tuple[Reference, PushResult]:
        """``push``: the image ``name`` to ``target`` (default: ``name`` itself)."""
        from pydock.registry.progress import Progress
        from pydock.registry.push import Pusher

        progress = Progress(out or sys.stdout, quiet=quiet)
        with doing(f"pushing {target or name}"):
            image, _ = resolve_image(self.store, name, doing="finding image")
            ref = parse_reference(target or name)
            if ref.digest:
                raise InvalidReferenceError("cannot push to a digest reference")
            with self._client(ref, tls_verify) as client:
                result = Pusher(self.store, self.content, client, ref, progress).push(image)
        return ref, result

    def login(
        self, server: str, username: str, password: str, *, tls_verify: bool | None = None
    ) -> Path:
        """``login``: check the credentials against ``server`` and store them."""
        from pydock.registry import RegistryClient
        from pydock.registry.credentials import Credentials, store_credentials

        with doing(f"logging in to {server}"):
            credentials = Credentials(username, password)
            domain = _domain(server)
            with RegistryClient(domain, tls_verify=tls_verify, credentials=credentials) as client:
                client.ping()
            return store_credentials(domain, credentials)

    def logout(self, server: str) -> bool:
        """``logout``: forget the stored credentials of ``server``."""
        from pydock.registry.credentials import remove_credentials

        with doing(f"logging out of {server}"):
            return remove_credentials(_domain(server))

    @contextmanager
    def _client(self, ref: Reference, tls_verify: bool | None) -> Iterator[RegistryClient]:
        from pydock.registry import RegistryClient, load_credentials

        credentials = load_credentials(ref.domain)
        with RegistryClient(ref.domain, tls_verify=tls_verify, credentials=credentials) as client:
            yield client

    # -- housekeeping -------------------------------------------------------------------------

    def prune_blobs(self) -> blobs.PruneReport:
        """``system prune``: delete the blobs no image or layer refers to."""
        with doing("pruning"):
            return blobs.collect(self.store, self.content)

    def image_blobs(self, image: ImageRecord) -> set[str]:
        """Manifests and layer blobs of ``image``: what ``rmi`` may free with it."""
        found = {digest for _, digest in self.store.distribution.repo_digests(image.id)}
        if image.manifest_digest:
            found.add(image.manifest_digest)
        for diff_id in ImageConfig.parse(image.config).diff_ids:
            found.update(row.digest for row in self.store.distribution.blobs_of(diff_id))
        return found

    def free_blobs(self, candidates: set[str]) -> None:
        """Delete those of ``candidates`` that nothing refers to any more."""
        if candidates:
            blobs.collect(self.store, self.content, candidates)

    def disk_usage(self) -> dict[str, dict[str, int]]:
        """``system df``: images, layers and blobs: total, active, size, reclaimable."""
        images = self.store.images.list_images()
        active = {image.id for image in images if self.store.containers_using(image.id)}
        layers = self.store.layers.list_layers(complete=True)
        count, total, loose, loose_bytes = blobs.usage(self.store, self.content)
        layer_bytes = sum(layer.size for layer in layers)
        unused = sum(image.size for image in images if image.id not in active)
        return {
            "Images": {
                "Total": len(images),
                "Active": len(active),
                "Size": layer_bytes,
                "Reclaimable": min(unused, layer_bytes),
            },
            "Layers": {"Total": len(layers), "Active": len(layers), "Size": layer_bytes},
            "Blobs": {
                "Total": count,
                "Active": count - loose,
                "Size": total,
                "Reclaimable": loose_bytes,
            },
        }

    # -- import, list, remove, inspect ---------------------------------------------------

    def import_image(
        self,
        source: str,
        reference: str | None = None,
        *,
        message: str = "",
        stdin: BinaryIO | None = None,
    ) -> str:
        """Import a root filesystem tar (file, ``-`` or ``builtin:NAME``) as a new image."""
        # Leased from before each blob appears until the image records it: a concurrent
        # ``system prune`` must not take the layer or the config in between.
        with blobs.leased(self.store, self.content) as lease:
            return self._import(source, reference, message, stdin, lease)

    def _import(
        self,
        source: str,
        reference: str | None,
        message: str,
        stdin: BinaryIO | None,
        lease: blobs.Lease,
    ) -> str:
        ref = _tag_reference(reference) if reference else None
        with self._open_source(source, stdin) as stream:
            try:
                blob = store_layer_tar(stream, self.content, before_publish=lease.publishing)
            except (LayerInputError, graphdriver.ArchiveError, ContentError) as exc:
                raise LayerInputError(f"importing {source}: {exc}") from exc
            except OSError as exc:
                reason = (exc.strerror or str(exc)).lower()
                where = self.content.directory
                raise PydockError(
                    f"importing {source}: writing to {where}: {reason}", path=where
                ) from exc
        created = now_rfc3339()
        settings: dict[str, object] = {}
        if builtin.is_builtin(source):
            mtime, settings = builtin.image_settings(source)
            created = to_rfc3339(dt.datetime.fromtimestamp(int(mtime), dt.UTC))
        config = build_config(
            [blob.digest],
            created=created,
            history=[HistoryEntry(created, comment=message or f"Imported from {source}")],
            settings=settings,
        )
        pending = self.layers.register(blob.digest, None)  # on failure the lease collects it
        tag = str(ref) if ref is not None else None
        return self.layers.commit_image(
            pending, config, created=created, size=pending.size, tag=tag, lease=lease
        )

    def list_images(self) -> list[ImageRow]:
        """Every image once per tag (an untagged one once), newest first."""
        rows = []
        for image in self.store.images.list_images():
            refs = [parse_reference(tag) for tag in image.tags]
            found = ImageConfig.parse(image.config).config.get("Labels")
            labels = {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
            names = [(r.familiar_name, r.tag or "<none>") for r in refs] or [("<none>", "<none>")]
            for repository, tag in names:
                rows.append(ImageRow(image.id, repository, tag, image.created, image.size, labels))
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

    def prune_images(
        self, *, every_unused: bool, on_error: Callable[[PydockError], None] | None = None
    ) -> tuple[list[str], int]:
        """``image prune``: remove dangling images (``every_unused``: every image no container
        uses); Docker's report lines (``Untagged: ...``, ``Deleted: sha256:...``) and the bytes.

        An image another command removed or started to use meanwhile is handed to ``on_error``
        and skipped.
        """
        lines: list[str] = []
        reclaimed = 0
        for image in self.store.images.list_images():
            if image.tags and not every_unused:
                continue
            if self.store.containers_using(image.id):
                continue
            try:
                lines += self.remove_image(image.id, force=True)
            except PydockError as exc:
                if on_error is not None:
                    on_error(exc)
                continue
            reclaimed += image.size
        return lines, reclaimed

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


def _tag_reference(text: str) -> Reference:
    ref = parse_reference(text)
    if ref.digest:
        raise InvalidReferenceError(
            f"tagging {text!r}: refusing to create a tag with a digest reference"
        )
    return ref


def _domain(server: str) -> str:
    text = server.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    text = text.removesuffix("/v1").removesuffix("/v2").rstrip("/")
    return "docker.io" if text in ("index.docker.io", "registry-1.docker.io") else text
