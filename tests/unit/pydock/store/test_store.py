"""The SQLite metadata store: schema, transactions, concurrency and crash leftovers."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pydock.errors import StoreError
from pydock.store import ImageRecord, Store, current_owner, is_owner_alive
from pydock.store.migrations import MIGRATIONS

from .deadowner import dead_owner

CREATED = "2024-05-01T12:00:00Z"
DIFF = "sha256:" + "d" * 64


def chain(n: int) -> str:
    return f"sha256:{n:064x}"


@pytest.fixture(params=["memory", "disk"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = Store.in_memory() if request.param == "memory" else Store.open(tmp_path)
    yield opened
    opened.close()


def add_layer(store: Store, n: int, *, owner: str | None = None, parent: str | None = None) -> None:
    with store.transaction():
        store.layers.add(chain(n), DIFF, parent, owner=owner or current_owner(), created=CREATED)
        store.layers.add_cache(
            chain(n), "vfs", f"cache{n}", owner=owner or current_owner(), created=CREATED
        )


def image(n: int, top: str | None) -> ImageRecord:
    return ImageRecord(f"sha256:{n:064x}", "{}", None, top, CREATED, 10 * n)


# -- schema -------------------------------------------------------------------------------------


def test_migrations_run_in_order_and_are_recorded(store: Store) -> None:
    assert store.migrations()[:4] == [
        "0001_layers",
        "0002_images",
        "0003_containers",
        "0004_distribution",
    ]
    names = set(store.db.table_names())
    assert {"layers", "layer_cache", "images", "image_tags", "containers"} <= names


def test_reopening_does_not_run_migrations_again(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    with Store.open(tmp_path) as again:
        rows = list(again.db.query("SELECT name FROM _sqlite_migrations"))
    assert len(rows) == len(MIGRATIONS._migrations)


def test_disk_store_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    with Store.open(tmp_path) as opened:
        assert opened.path == tmp_path / "pydock.db"
        assert opened.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert opened.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert opened.db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_file_that_is_not_sqlite_gives_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pydock.db").write_bytes(b"this is not a database, it is text\n" * 100)
    with pytest.raises(StoreError) as caught:
        Store.open(tmp_path)
    assert str(caught.value) == f"opening store {tmp_path / 'pydock.db'}: file is not a database"


def test_root_that_cannot_be_created_gives_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="opening store"):
        Store.open(tmp_path / "file" / "root")


# -- layers -------------------------------------------------------------------------------------


def test_layer_is_incomplete_until_completed_with_its_size(store: Store) -> None:
    add_layer(store, 1)
    layer = store.layers.get(chain(1))
    assert layer is not None and not layer.complete and layer.size == 0
    assert layer.owner == current_owner()
    store.layers.complete(chain(1), "vfs", 4096)
    layer = store.layers.get(chain(1))
    cache = store.layers.cache(chain(1), "vfs")
    assert layer is not None and layer.complete and layer.size == 4096 and layer.owner is None
    assert cache is not None and cache.complete and cache.cache_id == "cache1"


def test_transaction_rolls_back_every_row_on_error(store: Store) -> None:
    with pytest.raises(ZeroDivisionError), store.transaction():
        store.layers.add(chain(1), DIFF, None, owner="x", created=CREATED)
        store.layers.add_cache(chain(1), "vfs", "c1", owner="x", created=CREATED)
        _ = 1 / 0
    assert store.layers.get(chain(1)) is None
    assert store.layers.caches() == []


def test_nested_transaction_is_a_savepoint(store: Store) -> None:
    with store.transaction():
        add_layer(store, 1)
        with pytest.raises(ValueError), store.transaction():
            add_layer(store, 2)
            raise ValueError("inner")
    assert store.layers.get(chain(1)) is not None
    assert store.layers.get(chain(2)) is None


def test_layer_with_cache_rows_is_not_removed(store: Store) -> None:
    add_layer(store, 1)
    assert store.layers.remove(chain(1)) is False
    store.layers.remove_cache("vfs", "cache1")
    assert store.layers.remove(chain(1)) is True
    assert store.layers.get(chain(1)) is None


def test_children_and_usage(store: Store) -> None:
    add_layer(store, 1)
    add_layer(store, 2, parent=chain(1))
    assert store.layers.children(chain(1)) == [chain(2)]
    assert store.is_layer_used(chain(1))
    assert not store.is_layer_used(chain(2))
    store.images.add(image(7, chain(2)))
    assert store.is_layer_used(chain(2))


def test_parent_must_exist(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        add_layer(store, 2, parent=chain(99))


# -- images and tags ----------------------------------------------------------------------------


def test_image_tags(store: Store) -> None:
    add_layer(store, 1)
    assert store.images.add(image(1, chain(1)))
    assert not store.images.add(image(1, chain(1)))
    store.images.add(image(2, chain(1)))
    assert (
        store.images.tag("docker.io/library/a:latest", image(1, None).id, created=CREATED) is None
    )
    store.images.tag("docker.io/library/b:latest", image(1, None).id, created=CREATED)
    moved = store.images.tag("docker.io/library/a:latest", image(2, None).id, created=CREATED)
    assert moved == image(1, None).id
    assert store.images.tags(image(1, None).id) == ["docker.io/library/b:latest"]
    assert store.images.resolve_tag("docker.io/library/a:latest") == image(2, None).id
    listed = {record.id: record.tags for record in store.images.list_images()}
    assert listed[image(2, None).id] == ("docker.io/library/a:latest",)
    assert store.images.untag("docker.io/library/b:latest")
    assert not store.images.untag("docker.io/library/b:latest")


def test_image_lookup_by_prefix(store: Store) -> None:
    store.images.add(ImageRecord("sha256:ab" + "0" * 62, "{}", None, None, CREATED, 0))
    store.images.add(ImageRecord("sha256:ac" + "0" * 62, "{}", None, None, CREATED, 0))
    assert len(store.images.by_prefix("a")) == 2
    assert store.images.by_prefix("ab") == ["sha256:ab" + "0" * 62]
    assert store.images.by_prefix("A") == []
    assert store.images.by_prefix("ff") == []


def test_removing_an_image_removes_its_tags(store: Store) -> None:
    store.images.add(image(1, None))
    store.images.tag("docker.io/library/a:latest", image(1, None).id, created=CREATED)
    store.images.remove(image(1, None).id)
    assert store.images.get(image(1, None).id) is None
    assert store.images.resolve_tag("docker.io/library/a:latest") is None


def test_tag_of_an_unknown_image_is_refused(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.images.tag("docker.io/library/a:latest", "sha256:" + "9" * 64, created=CREATED)


# -- crash leftovers ----------------------------------------------------------------------------


def test_rows_of_dead_owners_are_stale_and_live_ones_are_not(store: Store) -> None:
    gone = dead_owner()
    assert not is_owner_alive(gone)
    assert is_owner_alive(current_owner())
    add_layer(store, 1, owner=gone)
    add_layer(store, 2)  # this process: an import in progress, not a leftover
    add_layer(store, 3)
    store.layers.complete(chain(3), "vfs", 1)
    assert [cache.cache_id for cache in store.stale_caches()] == ["cache1"]
    assert [layer.chain_id for layer in store.stale_layers()] == [chain(1)]


def test_owner_of_a_reused_pid_is_not_alive() -> None:
    pid = current_owner().partition(":")[0]
    assert not is_owner_alive(f"{pid}:1")
    assert not is_owner_alive(None)
    assert not is_owner_alive("garbage")


# -- concurrency --------------------------------------------------------------------------------


def wait_busy_waiting(thread_id: int, timeout: float = 30) -> None:
    """Wait until thread ``thread_id`` sleeps in SQLite's busy handler (its kernel wait channel
    is the nanosleep the handler calls between attempts at the lock)."""
    wchan = Path(f"/proc/self/task/{thread_id}/wchan")
    deadline = time.monotonic() + timeout
    while wchan.read_text() != "hrtimer_nanosleep":
        assert time.monotonic() < deadline, "the second writer never waited for the lock"
        time.sleep(0.01)


def test_second_writer_waits_for_the_first(tmp_path: Path) -> None:
    first = Store.open(tmp_path)
    errors: list[BaseException] = []
    finished: list[str] = []
    opened = threading.Event()
    native_id: list[int] = []

    def second_writer() -> None:
        try:
            with Store.open(tmp_path) as second:
                native_id.append(threading.get_native_id())
                opened.set()  # from here on, the only sleep is the busy handler's
                add_layer(second, 2)
            finished.append("second")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
            opened.set()

    with first.transaction():
        add_layer(first, 1)
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert opened.wait(timeout=30) and not errors, errors
        wait_busy_waiting(native_id[0])
        assert not finished, "the second writer did not wait for the write lock"
        finished.append("first")
    thread.join(timeout=60)
    first.close()
    assert errors == []
    assert finished == ["first", "second"]
    with Store.open(tmp_path) as check:
        assert {layer.chain_id for layer in check.layers.list_layers()} == {chain(1), chain(2)}


def _write_many(root: str, base: int, count: int) -> None:
    with Store.open(Path(root)) as opened:
        for n in range(base, base + count):
            with opened.transaction():
                opened.layers.add(chain(n), DIFF, None, owner="w", created=CREATED)
                opened.layers.add_cache(chain(n), "vfs", f"c{n}", owner="w", created=CREATED)
                opened.layers.complete(chain(n), "vfs", n)


def test_two_processes_write_at_the_same_time(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_write_many, args=(str(tmp_path), base, 40)) for base in (0, 1000)
    ]
    for worker in workers:  # both open the new store at once: migrations race too
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    with Store.open(tmp_path) as check:
        layers = check.layers.list_layers(complete=True)
        assert len(layers) == 80
        assert check.migrations() == [migration.name for migration in MIGRATIONS._migrations]
        assert len(check.layers.caches(driver="vfs")) == 80


def test_table_objects_are_kept_and_follow_the_schema(tmp_path: Path) -> None:
    """One Table object per name, taken before its table exists, still sees the table once it
    is made, its rows, and its end; a lookup with options is not kept."""
    from pydock.store.db import open_database

    db = open_database(tmp_path / "kept.db")
    early = db.table("later")
    assert db.table("later") is early
    assert not early.exists()
    db.execute("CREATE TABLE later (id TEXT PRIMARY KEY, n INTEGER)")
    db.execute("INSERT INTO later VALUES ('a', 1)")
    assert early.exists()
    assert [row["n"] for row in db.table("later").rows_where("id = ?", ["a"])] == [1]
    db.execute("DROP TABLE later")
    assert not db.table("later").exists()
    assert db.table("later", pk="id") is not early
    db.conn.close()
