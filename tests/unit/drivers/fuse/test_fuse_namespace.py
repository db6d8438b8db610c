"""The merged tree's operations, called directly (no mount): what lands in the upper dir."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pyfuse3
import pytest

from drivers.fuse.inodes import Node
from drivers.fuse.layers import LayerStack
from drivers.fuse.namespace import Namespace

CTX = pyfuse3.RequestContext()


class World:
    """An upper dir over two lower dirs, and the tree object serving them."""

    def __init__(self, base: Path, *, mknod_whiteouts: bool = True) -> None:
        self.upper, self.work = base / "upper", base / "work"
        self.lowers = [base / "l1", base / "l2"]
        for path in (self.upper, self.work, *self.lowers):
            path.mkdir()
        self.base = base
        self.mknod_whiteouts = mknod_whiteouts
        self._tree: Namespace | None = None

    @property
    def tree(self) -> Namespace:
        if self._tree is None:
            stack = LayerStack([str(p) for p in self.lowers], str(self.upper), str(self.work))
            stack.prepare_work(user_xattr=True)
            stack.mknod_whiteouts = stack.mknod_whiteouts and self.mknod_whiteouts
            self._tree = Namespace(stack, timeout=1.0, fsync=False)
        return self._tree

    def write(self, layer: Path, rel: str, data: bytes = b"x") -> Path:
        path = layer / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def node(self, rel: str) -> Node:
        node = self.tree.table[pyfuse3.ROOT_INODE]
        for part in rel.split("/"):
            found = self.tree.lookup(node, part.encode())
            assert found is not None, rel
            node = found
        return node

    def names(self, rel: str = "") -> list[str]:
        node = self.node(rel) if rel else self.tree.table[pyfuse3.ROOT_INODE]
        return sorted(os.fsdecode(n) for n in self.tree.listing(node))

    def is_whiteout(self, rel: str) -> bool:
        path = self.upper / rel
        if os.path.lexists(path):
            st = os.lstat(path)
            return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        return os.path.lexists(path.parent / f".wh.{path.name}")

    def remount(self) -> None:
        self._tree = None


@pytest.fixture(params=["chardev", "wh-file"])
def world(tmp_path: Path, request: pytest.FixtureRequest) -> World:
    return World(tmp_path, mknod_whiteouts=request.param == "chardev")


def code(exc: pytest.ExceptionInfo[OSError]) -> int | None:
    return exc.value.errno


def test_rmdir_of_copied_up_lower_dir_leaves_whiteout(world: World) -> None:
    world.write(world.lowers[1], "d/f")
    tree = world.tree
    tree.unlink(world.node("d"), b"f")  # copies d up and whites f out
    tree.rmdir(tree.table[1], b"d")
    assert world.is_whiteout("d")
    tree.mkdir(tree.table[1], b"d", 0o755, CTX)
    assert world.names("d") == []
    world.remount()
    assert world.names("d") == []


def test_unlink_of_upper_only_file_leaves_nothing(world: World) -> None:
    tree = world.tree
    _, fd = tree.create(tree.table[1], b"new", 0o644, os.O_WRONLY, CTX)
    os.close(fd)
    tree.unlink(tree.table[1], b"new")
    assert os.listdir(world.upper) == []


def test_unlink_of_file_shadowing_a_lower_one_leaves_whiteout(world: World) -> None:
    world.write(world.lowers[0], "f", b"low")
    tree = world.tree
    tree.copy_up(world.node("f"))
    tree.unlink(tree.table[1], b"f")
    assert world.is_whiteout("f")
    assert world.names() == []
    world.remount()
    assert world.names() == []


def test_create_over_whiteout_replaces_it(world: World) -> None:
    world.write(world.lowers[1], "f", b"low")
    tree = world.tree
    tree.unlink(tree.table[1], b"f")
    _, fd = tree.create(tree.table[1], b"f", 0o600, os.O_WRONLY, CTX)
    os.write(fd, b"new")
    os.close(fd)
    assert (world.upper / "f").read_bytes() == b"new"
    assert not world.is_whiteout("f")
    world.remount()
    assert world.names() == ["f"]
    tree = world.tree
    tree.unlink(tree.table[1], b"f")  # the lower f is still there: a whiteout again
    assert world.is_whiteout("f")


def test_rename_of_merged_upper_dir_is_exdev(world: World) -> None:
    world.write(world.lowers[0], "d/low")
    world.write(world.upper, "d/up")
    tree = world.tree
    with pytest.raises(OSError) as caught:
        tree.rename(tree.table[1], b"d", tree.table[1], b"e", 0)
    assert code(caught) == errno.EXDEV


def test_rename_flags(world: World) -> None:
    world.write(world.lowers[0], "a")
    world.write(world.lowers[0], "b")
    tree = world.tree
    root = tree.table[1]
    with pytest.raises(OSError) as caught:
        tree.rename(root, b"a", root, b"b", pyfuse3.RENAME_NOREPLACE)
    assert code(caught) == errno.EEXIST
    with pytest.raises(OSError) as caught:
        tree.rename(root, b"a", root, b"b", pyfuse3.RENAME_EXCHANGE)
    assert code(caught) == errno.EINVAL
    tree.rename(root, b"a", root, b"c", pyfuse3.RENAME_NOREPLACE)
    assert world.names() == ["b", "c"]
    assert world.is_whiteout("a")


def test_rename_onto_whited_out_name(world: World) -> None:
    world.write(world.lowers[1], "old", b"old")
    world.write(world.lowers[1], "gone", b"gone")
    tree = world.tree
    root = tree.table[1]
    tree.unlink(root, b"gone")
    tree.rename(root, b"old", root, b"gone", 0)
    assert world.names() == ["gone"]
    world.remount()
    assert world.names() == ["gone"]
    assert (world.upper / "gone").read_bytes() == b"old"


def test_inode_numbers_survive_forget_and_copy_up(world: World) -> None:
    world.write(world.lowers[1], "d/f")
    tree = world.tree
    node = world.node("d/f")
    ino = node.ino
    node.nlookup = 1
    tree.table.forget(ino, 1)
    assert tree.table.get(ino) is None
    again = world.node("d/f")
    assert again.ino == ino
    tree.copy_up(again)
    assert again.layer == 0
    assert world.node("d/f").ino == ino


def test_hard_link_name_found_after_copy_up_is_linked_in_upper(world: World) -> None:
    first = world.write(world.lowers[1], "a/first", b"one")
    (world.lowers[1] / "b").mkdir()
    os.link(first, world.lowers[1] / "b" / "second")
    tree = world.tree
    node = world.node("a/first")
    tree.copy_up(node)
    with open(world.upper / "a" / "first", "ab") as out:
        out.write(b"+")
    second = world.node("b/second")
    assert second is node
    assert (
        os.stat(world.upper / "b" / "second").st_ino == os.stat(world.upper / "a" / "first").st_ino
    )


def test_unlinking_one_name_of_a_hard_link_keeps_the_other(world: World) -> None:
    first = world.write(world.lowers[1], "first", b"one")
    os.link(first, world.lowers[1] / "second")
    tree = world.tree
    node = world.node("first")
    assert world.node("second") is node
    tree.unlink(tree.table[1], b"first")
    assert not node.dead
    assert node.path == b"second"
    assert tree.backing(node).endswith(b"/second")


def test_whiteout_prefixed_names_are_refused(world: World) -> None:
    tree = world.tree
    with pytest.raises(OSError) as caught:
        tree.mkdir(tree.table[1], b".wh.x", 0o755, CTX)
    assert code(caught) == errno.EINVAL


def test_directory_not_empty_through_lower_entries(world: World) -> None:
    world.write(world.lowers[1], "d/f")
    tree = world.tree
    with pytest.raises(OSError) as caught:
        tree.rmdir(tree.table[1], b"d")
    assert code(caught) == errno.ENOTEMPTY


def test_read_only_stack_refuses_changes(tmp_path: Path) -> None:
    (tmp_path / "l").mkdir()
    (tmp_path / "l" / "f").write_bytes(b"x")
    tree = Namespace(LayerStack([str(tmp_path / "l")], None, None), timeout=1.0, fsync=False)
    with pytest.raises(OSError) as caught:
        tree.unlink(tree.table[1], b"f")
    assert code(caught) == errno.EROFS


def test_forgotten_hard_link_still_knows_its_copy_up(world: World) -> None:
    first = world.write(world.lowers[1], "first", b"old")
    os.link(first, world.lowers[1] / "second")
    tree = world.tree
    node = world.node("first")
    tree.copy_up(node)
    (world.upper / "first").write_bytes(b"new")
    node.nlookup = 1
    tree.table.forget(node.ino, 1)  # the kernel forgets; "second" was never looked up
    second = world.node("second")
    assert second is node
    assert Path(os.fsdecode(tree.backing(second))).read_bytes() == b"new"


def test_other_name_of_a_removed_copied_up_link_shows_the_lower_file(world: World) -> None:
    first = world.write(world.lowers[1], "first", b"lower")
    os.link(first, world.lowers[1] / "second")
    tree = world.tree
    node = world.node("first")
    tree.copy_up(node)
    tree.unlink(tree.table[1], b"first")  # "second" was never looked up: it stays lower
    second = world.node("second")
    assert second.ino == node.ino
    assert Path(os.fsdecode(tree.backing(second))).read_bytes() == b"lower"
