"""Finding the image a user means: a reference (``busybox``, ``x:1``) or an id or id prefix."""

from __future__ import annotations

import re

from pydock.errors import ImageUnknownError, InvalidReferenceError
from pydock.image.reference import parse_reference
from pydock.store import ImageRecord, Store

_HEX_PREFIX = re.compile(r"[0-9a-f]{1,64}")


def resolve_image(store: Store, name: str, *, doing: str) -> tuple[ImageRecord, str | None]:
    """The image ``name`` names, and the full tag it was found by (``None`` for an id).

    As Docker does, a name is first read as a reference and then as an id prefix.
    """
    try:
        ref = parse_reference(name)
    except InvalidReferenceError:
        ref = None
    if ref is not None and ref.tag is not None and ref.digest is None:
        image_id = store.images.resolve_tag(str(ref))
        if image_id is not None:
            image = store.images.get(image_id)
            if image is not None:
                return image, str(ref)
    if ref is not None and ref.digest is not None:
        image_id = store.distribution.resolve_repo_digest(ref.name, ref.digest)
        image = store.images.get(image_id) if image_id else None
        if image is not None:
            return image, None
    hex_part = name.removeprefix("sha256:")
    if _HEX_PREFIX.fullmatch(hex_part):
        matches = store.images.by_prefix(hex_part)
        if len(matches) > 1:
            raise ImageUnknownError(f"{doing} {name}: ambiguous id prefix ({len(matches)} images)")
        if matches:
            image = store.images.get(matches[0])
            if image is not None:
                return image, None
    raise ImageUnknownError(f"{doing} {name}: no such image")
