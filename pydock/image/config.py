"""Images as OCI describes them: layer identities, the image config, and taking a layer in.

A layer's diff id is the sha256 of its uncompressed tar; its chain id names the whole stack
below it: ``chain(L0) = diff(L0)``, ``chain(L0..Ln) = sha256(chain(L0..Ln-1) + " " + diff(Ln))``.
The image id is the sha256 of the config's bytes.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydock.image.content import digest_bytes

_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


@dataclass(frozen=True)
class HistoryEntry:
    """One entry of an image's history."""

    created: str
    created_by: str = ""
    comment: str = ""
    empty_layer: bool = False


def chain_id(parent_chain_id: str | None, diff_id: str) -> str:
    """The chain id of a layer with ``diff_id`` on the stack ``parent_chain_id``."""
    if parent_chain_id is None:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent_chain_id} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain id of every layer of a stack, base first."""
    found: list[str] = []
    for diff_id in diff_ids:
        found.append(chain_id(found[-1] if found else None, diff_id))
    return found


def host_architecture() -> str:
    """This host's architecture in Go's (and OCI's) spelling."""
    machine = platform.machine()
    return _ARCHITECTURES.get(machine, machine or "amd64")


def build_config(
    diff_ids: Sequence[str],
    *,
    created: str,
    history: Sequence[HistoryEntry],
    settings: Mapping[str, object] | None = None,
) -> bytes:
    """An OCI image config for a root filesystem of ``diff_ids``, as canonical JSON bytes;
    ``settings`` are the container defaults (``Cmd``, ``Env``, ...)."""
    config = {
        "architecture": host_architecture(),
        "os": "linux",
        "created": created,
        "config": dict(settings or {}),
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [_history_json(entry) for entry in history],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def _history_json(entry: HistoryEntry) -> dict[str, object]:
    found: dict[str, object] = {"created": entry.created}
    if entry.created_by:
        found["created_by"] = entry.created_by
    if entry.comment:
        found["comment"] = entry.comment
    if entry.empty_layer:
        found["empty_layer"] = True
    return found


def image_id(config: bytes) -> str:
    """The image id: the digest of its config bytes."""
    return digest_bytes(config)


@dataclass(frozen=True)
class ImageConfig:
    """The parts of a stored OCI config pydock reads back."""

    architecture: str
    os: str
    created: str
    diff_ids: tuple[str, ...]
    config: dict[str, object]
    history: tuple[dict[str, object], ...]

    @classmethod
    def parse(cls, text: str | bytes) -> ImageConfig:
        """Read the fields of a config JSON document (missing ones are empty)."""
        document = json.loads(text)
        if not isinstance(document, dict):
            document = {}
        rootfs = document.get("rootfs")
        diff_ids = rootfs.get("diff_ids", []) if isinstance(rootfs, dict) else []
        inner = document.get("config")
        history = document.get("history")
        return cls(
            architecture=str(document.get("architecture", "")),
            os=str(document.get("os", "")),
            created=str(document.get("created", "")),
            diff_ids=tuple(str(item) for item in diff_ids),
            config=inner if isinstance(inner, dict) else {},
            history=tuple(item for item in history or () if isinstance(item, dict)),
        )
