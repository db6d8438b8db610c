"""A child layer shows its parent's tree exactly: every attribute of every entry."""

from __future__ import annotations

import os
import stat

import pytest

import graphdriver

from .helpers import mounted, supports_user_xattrs
from .trees import Abilities, build_rich_tree
from .treesnap import assert_same_tree, snapshot


@pytest.fixture
def rich_base(driver: graphdriver.Driver) -> str:
    """An image layer holding the rich tree, filled through ``get``."""
    driver.create("base", None)
    with mounted(driver, "base") as root:
        can = Abilities.probe(root)
        build_rich_tree(root, seed=1, can=can)
    return "base"


def test_base_keeps_what_was_written(driver: graphdriver.Driver, rich_base: str) -> None:
    with mounted(driver, rich_base) as root:
        entries = {e.path: e for e in snapshot(root)}
        # Spot checks that the tree helper and the layer agree before comparing layers.
        assert entries["/setuid-04755"].mode == 0o4755
        assert entries["/sticky-01777"].mode == 0o1777
        assert entries["/fifo"].kind == "fifo"
        assert entries["/link-absolute"].target == "/file-0644"
        groups = {entries[p].link_group for p in ("/hard-1", "/hard-2", "/deep/a/hard-3")}
        assert groups == {"/deep/a/hard-3"}
        assert entries["/file-0644"].mtime_ns % 1_000_000_000 != 0


@pytest.mark.parametrize("make", ["create", "create_read_write"])
def test_child_shows_parent_tree(driver: graphdriver.Driver, rich_base: str, make: str) -> None:
    with mounted(driver, rich_base) as root:
        expected = snapshot(root)
    getattr(driver, make)("child", rich_base)
    with mounted(driver, "child") as root:
        assert_same_tree(expected, snapshot(root), "child layer")
    # Making a child leaves the parent as it was.
    with mounted(driver, rich_base) as root:
        assert_same_tree(expected, snapshot(root), "parent layer after a child was made")


def test_grandchild_shows_changes_of_child(driver: graphdriver.Driver, rich_base: str) -> None:
    driver.create("child", rich_base)
    with mounted(driver, "child") as root:
        os.chmod(root, 0o711)
        os.chmod(root / "file-0644", 0o640)
        (root / "hard-2").unlink()
        (root / "deep" / "added").write_bytes(b"added in the child")
        expected = snapshot(root)
    driver.create_read_write("grandchild", "child")
    with mounted(driver, "grandchild") as root:
        assert stat.S_IMODE(os.lstat(root).st_mode) == 0o711
        assert_same_tree(expected, snapshot(root), "grandchild layer")


def test_writes_to_child_do_not_reach_parent(driver: graphdriver.Driver, rich_base: str) -> None:
    with mounted(driver, rich_base) as root:
        expected = snapshot(root)
    driver.create_read_write("rw", rich_base)
    with mounted(driver, "rw") as root:
        (root / "file-0644").write_bytes(b"overwritten")
        with open(root / "hard-1", "ab") as fh:
            fh.write(b"appended to a hard link")
        os.chmod(root / "sticky-01777", 0o755)
        (root / "deep" / "a" / "b" / "c" / "leaf").unlink()
        os.rename(root / "exec-0755", root / "renamed")
        if (root / "owned-dir").exists():
            os.chown(root / "owned-dir", 0, 0)
        if supports_user_xattrs(root):
            os.setxattr(root / "file-0600", "user.pydock.new", b"child only")
    with mounted(driver, rich_base) as root:
        assert_same_tree(expected, snapshot(root), "parent layer after writes to its child")


@pytest.mark.root
def test_device_nodes_copied(driver: graphdriver.Driver, rich_base: str) -> None:
    with mounted(driver, rich_base) as root:
        if not (root / "char-null").exists():
            pytest.skip("needs uid 0 with CAP_MKNOD to make device nodes")
    driver.create("child", rich_base)
    with mounted(driver, "child") as root:
        st = os.lstat(root / "char-null")
        assert stat.S_ISCHR(st.st_mode)
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
        st = os.lstat(root / "block-loop")
        assert stat.S_ISBLK(st.st_mode)
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (7, 0)
