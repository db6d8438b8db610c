"""The content store: blobs by sha256 under <root>/blobs/sha256."""

from __future__ import annotations

import hashlib
import io
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from pydock.errors import ContentError, DigestMismatchError
from pydock.image.content import ContentStore, check_digest, digest_bytes

DATA = random.Random(1).randbytes(3 << 20)  # spans several write chunks
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def content(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path)


def leftovers(content: ContentStore) -> list[str]:
    return sorted(entry.name for entry in content.directory.iterdir())


def test_write_read_exists_delete(content: ContentStore, tmp_path: Path) -> None:
    assert not content.exists(DIGEST)
    stored = content.write_stream(io.BytesIO(DATA))
    assert stored.digest == DIGEST and stored.size == len(DATA)
    assert content.path(DIGEST) == tmp_path / "blobs" / "sha256" / DIGEST[7:]
    assert content.exists(DIGEST)
    assert content.read_bytes(DIGEST) == DATA
    assert content.size(DIGEST) == len(DATA)
    assert content.list_digests() == [DIGEST]
    assert content.delete(DIGEST) is True
    assert content.delete(DIGEST) is False
    assert not content.exists(DIGEST)
    assert leftovers(content) == []


def test_writing_the_same_content_twice_keeps_one_blob(content: ContentStore) -> None:
    content.write_bytes(DATA)
    content.write_bytes(DATA, expected=DIGEST)
    assert leftovers(content) == [DIGEST[7:]]


def test_expected_digest_mismatch_names_it_and_removes_the_temporary(
    content: ContentStore,
) -> None:
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatchError) as caught:
        content.write_bytes(DATA, expected=wrong)
    assert wrong in str(caught.value) and DIGEST in str(caught.value)
    assert caught.value.digest == wrong
    assert leftovers(content) == []
    assert not content.exists(wrong) and not content.exists(DIGEST)


def test_failing_source_leaves_no_temporary(content: ContentStore) -> None:
    def chunks() -> Iterator[bytes]:
        yield DATA[:1000]
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError):
        content.write(chunks())
    assert leftovers(content) == []


def test_reading_a_missing_blob_is_a_content_error(content: ContentStore) -> None:
    with pytest.raises(ContentError, match="not in the content store") as caught:
        content.read_bytes(DIGEST)
    assert caught.value.digest == DIGEST
    with pytest.raises(ContentError):
        content.size(DIGEST)


@pytest.mark.parametrize(
    "digest",
    ["", "sha256:", "sha256:xyz", "sha512:" + "a" * 64, "sha256:" + "A" * 64, "../" + "a" * 64],
)
def test_malformed_digests_are_refused(content: ContentStore, digest: str) -> None:
    with pytest.raises(ContentError, match="checking digest"):
        content.path(digest)
    with pytest.raises(ContentError):
        check_digest(digest)


def test_digest_bytes() -> None:
    assert digest_bytes(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_sweep_removes_temporaries_of_dead_writers_only(content: ContentStore) -> None:
    content.directory.mkdir(parents=True)
    mine = content.directory / f".tmp-{os.getpid()}-abc"
    mine.write_bytes(b"in progress")
    dead = content.directory / ".tmp-999999999-abc"  # above any pid_max
    dead.write_bytes(b"left by a crash")
    odd = content.directory / ".tmp-garbage"
    odd.write_bytes(b"?")
    assert content.sweep_temporary() == 2
    assert leftovers(content) == [mine.name]
    assert content.list_digests() == []


def test_empty_store_lists_nothing(content: ContentStore) -> None:
    assert content.list_digests() == []
    assert content.sweep_temporary() == 0
