"""Unpacking never writes outside the layer.

Each hostile tar starts with ordinary entries (a new file, an overwrite, a whiteout) so that a
driver which stops at the bad entry must also undo what it already unpacked. The bad entries
aim at a sentinel directory beside the driver's home, so a breakout hits something the test
watches instead of the host.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import graphdriver

from .helpers import Workspace, make_dir, mounted, post_order, set_mtime, write
from .tarbuild import LayerTar
from .treesnap import Entry, assert_same_tree, snapshot

# More "../" than any temporary path is deep: from any directory this reaches "/".
UP = "../" * 48


@dataclass(frozen=True)
class Aim:
    """Where a hostile entry points."""

    root: Path  # the layer root, as get() returns it
    sentinel: Path  # absolute path of the sentinel directory

    @property
    def escape(self) -> str:
        """A relative path from anywhere in the layer to the sentinel."""
        return UP + str(self.sentinel).lstrip("/")

    @property
    def mirror(self) -> str:
        """The sentinel's absolute path read as a path inside the layer."""
        return str(self.sentinel).lstrip("/")


class Target:
    """Layer ``layer`` on ``base``, with what both looked like before the hostile apply."""

    def __init__(self, driver: graphdriver.Driver, workspace: Workspace) -> None:
        self.driver = driver
        self.sentinel = workspace.sentinel
        driver.create("base", None)
        with mounted(driver, "base") as root:
            aim = Aim(root, self.sentinel)
            write(root / "keep", b"base content\n")
            write(root / "gone", b"whited out by the hostile tar\n")
            write(root / "dir" / "inner", b"inner\n")
            make_dir(root / "dir" / "sub")
            # Links a parent layer may legitimately hold; a child must not write through the
            # first two to the host.
            os.symlink(aim.escape, root / "parent-escape")
            os.symlink(aim.escape + "/secret", root / "parent-escape-file")
            os.symlink(str(self.sentinel), root / "parent-absolute")
            make_dir(root / aim.mirror)
            for i, entry in enumerate(post_order(root)):
                set_mtime(entry, (1_550_000_000 + i) * 1_000_000_000 + 123)
        driver.create("layer", "base")
        with mounted(driver, "layer") as root:
            self.aim = Aim(root, self.sentinel)
        self.layer_before = self.layer_snapshot()
        self.sentinel_before = self.sentinel_snapshot()

    def layer_snapshot(self) -> list[Entry]:
        with mounted(self.driver, "layer") as root:
            return snapshot(root, root_mtime=True)

    def sentinel_snapshot(self) -> list[Entry]:
        return snapshot(self.sentinel, root_mtime=True)

    def apply(self, tar: LayerTar) -> int:
        return self.driver.apply_diff("layer", "base", io.BytesIO(tar.getvalue()))

    def assert_host_untouched(self, naive: list[Path]) -> None:
        assert_same_tree(self.sentinel_before, self.sentinel_snapshot(), "sentinel directory")
        assert os.lstat(self.sentinel / "secret").st_nlink == 1, "host file gained a link"
        for path in naive:
            assert not os.path.lexists(path), f"written outside the layer: {path}"

    def assert_layer_unchanged(self) -> None:
        assert_same_tree(self.layer_before, self.layer_snapshot(), "layer after a refused tar")


@pytest.fixture
def target(driver: graphdriver.Driver, workspace: Workspace) -> Target:
    return Target(driver, workspace)


def _prefix() -> LayerTar:
    """Ordinary entries a refused tar carries before its bad one; all must be undone."""
    return (
        LayerTar()
        .dir("before")
        .file("before/new", b"unpacked before the bad entry\n")
        .file("keep", b"overwritten before the bad entry\n")
        .whiteout(".wh.gone")
        .file("dir/inner", b"inner overwritten\n", mode=0o600)
    )


# Each case adds its bad entries to the prefix and returns the paths a naive unpacker would
# have written outside the layer (beyond the sentinel, which is always checked).
Case = Callable[[LayerTar, Aim], list[Path]]


def _near(aim: Aim, name: str) -> Path:
    return Path(os.path.normpath(aim.root / name))


def _dotdot_to_sentinel(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.file(aim.escape + "/evil", b"x")
    return []


def _dotdot_etc(tar: LayerTar, aim: Aim) -> list[Path]:
    name = "../../etc/pydock-breakout"
    tar.file(name, b"x")
    return [_near(aim, name)]


def _dotdot_inside_name(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.file("dir/sub/../../" + aim.escape + "/evil", b"x")
    return []


def _dotdot_directory(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.dir(aim.escape + "/evil-dir")
    return []


def _dotdot_symlink_entry(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.symlink(aim.escape + "/evil-link", "anywhere")
    return []


def _dotdot_whiteout(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.whiteout(aim.escape + "/.wh.secret")
    return []


def _symlink_up_then_write(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.symlink("x", "../../..").file("x/pydock-breakout", b"x")
    return [_near(aim, "../../../pydock-breakout")]


def _symlink_out_then_write(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.symlink("x", aim.escape).file("x/evil", b"x")
    return []


def _symlink_out_then_mkdir(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.symlink("x", aim.escape).dir("x/evil-dir")
    return []


def _symlink_out_then_whiteout(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.symlink("x", aim.escape).whiteout("x/.wh.secret")
    return []


def _symlink_chain_lexical(tar: LayerTar, aim: Aim) -> list[Path]:
    # Each target looks harmless on its own ("d/.." and "s2/.." stay inside when read as text),
    # but s2 resolves to the root, so s1 is the root's parent.
    up_from_parent = os.path.relpath(aim.sentinel, aim.root.parent)
    tar.dir("d").symlink("s2", "d/..").symlink("s1", "s2/..")
    tar.file("s1/" + up_from_parent + "/evil", b"x")
    return []


def _symlink_chain_hops(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.symlink("hop1", "hop2").symlink("hop2", "dir/hop3").symlink("dir/hop3", aim.escape)
    tar.file("hop1/evil", b"x")
    return []


def _hardlink_etc_passwd(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.hardlink("passwd", "../../etc/passwd")
    return []


def _hardlink_to_sentinel(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.hardlink("stolen", aim.escape + "/secret")
    return []


def _hardlink_through_symlink(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.symlink("x", aim.escape).hardlink("stolen", "x/secret")
    return []


def _stored_symlink_then_write(tar: LayerTar, aim: Aim) -> list[Path]:
    # The link itself is stored (its target is data); writing through it is the breakout.
    tar.dir("etc").symlink("etc/link", "../../../../etc/passwd").file("etc/link/x", b"x")
    return []


def _stored_symlink_then_hardlink(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.dir("etc").symlink("etc/link", "../" + aim.escape).hardlink("stolen", "etc/link/secret")
    return []


def _parent_symlink_write(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.file("parent-escape/evil", b"x")
    return []


def _parent_symlink_mkdir(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.dir("parent-escape/evil-dir").file("parent-escape/evil-dir/f", b"x")
    return []


def _parent_symlink_whiteout(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.whiteout("parent-escape/.wh.secret")
    return []


def _parent_symlink_hardlink(tar: LayerTar, aim: Aim) -> list[Path]:
    tar.hardlink("stolen", "parent-escape/secret")
    return []


BREAKOUTS: dict[str, Case] = {
    "dotdot-to-sentinel": _dotdot_to_sentinel,
    "dotdot-etc": _dotdot_etc,
    "dotdot-inside-name": _dotdot_inside_name,
    "dotdot-directory": _dotdot_directory,
    "dotdot-symlink-entry": _dotdot_symlink_entry,
    "dotdot-whiteout": _dotdot_whiteout,
    "symlink-up-then-write": _symlink_up_then_write,
    "symlink-out-then-write": _symlink_out_then_write,
    "symlink-out-then-mkdir": _symlink_out_then_mkdir,
    "symlink-out-then-whiteout": _symlink_out_then_whiteout,
    "symlink-chain-lexical": _symlink_chain_lexical,
    "symlink-chain-hops": _symlink_chain_hops,
    "hardlink-etc-passwd": _hardlink_etc_passwd,
    "hardlink-to-sentinel": _hardlink_to_sentinel,
    "hardlink-through-symlink": _hardlink_through_symlink,
    "parent-symlink-write": _parent_symlink_write,
    "parent-symlink-mkdir": _parent_symlink_mkdir,
    "parent-symlink-whiteout": _parent_symlink_whiteout,
    "parent-symlink-hardlink": _parent_symlink_hardlink,
    "stored-symlink-then-write": _stored_symlink_then_write,
    "stored-symlink-then-hardlink": _stored_symlink_then_hardlink,
}


@pytest.mark.parametrize("case", sorted(BREAKOUTS))
def test_breakout_refused(target: Target, case: str) -> None:
    tar = _prefix()
    naive = BREAKOUTS[case](tar, target.aim)
    try:
        with pytest.raises(graphdriver.BreakoutError) as info:
            target.apply(tar)
        assert info.value.layer_id == "layer" and "layer layer: " in str(info.value)
    finally:
        target.assert_host_untouched(naive)
    target.assert_layer_unchanged()


@pytest.mark.parametrize("where", ["", "dir/"])
@pytest.mark.parametrize("name", [".wh.", ".wh..", ".wh..."])
def test_reserved_whiteout_names(target: Target, name: str, where: str) -> None:
    tar = _prefix().whiteout(where + name)
    with pytest.raises(graphdriver.BreakoutError):
        target.apply(tar)
    target.assert_host_untouched([])
    target.assert_layer_unchanged()


# -- absolute names and targets are read inside the layer -----------------------------------


def test_absolute_name_lands_inside(target: Target) -> None:
    aim = target.aim
    tar = LayerTar().file("/abs-dir/abs-file", b"a").file(str(aim.sentinel) + "/evil", b"b")
    target.apply(tar)
    target.assert_host_untouched([])
    with mounted(target.driver, "layer") as root:
        assert (root / "abs-dir" / "abs-file").read_bytes() == b"a"
        assert (root / aim.mirror / "evil").read_bytes() == b"b"


def test_absolute_symlink_is_followed_inside(target: Target) -> None:
    aim = target.aim
    tar = LayerTar().symlink("abs", str(aim.sentinel)).file("abs/evil", b"through abs")
    target.apply(tar)
    target.assert_host_untouched([])
    with mounted(target.driver, "layer") as root:
        assert os.readlink(root / "abs") == str(aim.sentinel)
        assert (root / aim.mirror / "evil").read_bytes() == b"through abs"


def test_absolute_symlink_of_parent_is_followed_inside(target: Target) -> None:
    tar = LayerTar().file("parent-absolute/evil", b"through the parent's link")
    target.apply(tar)
    target.assert_host_untouched([])
    with mounted(target.driver, "layer") as root:
        assert (root / target.aim.mirror / "evil").read_bytes() == b"through the parent's link"


def test_file_entry_replaces_symlink(target: Target) -> None:
    """A file entry named like an existing symlink replaces the link, never writes through it."""
    tar = LayerTar().file("parent-escape-file", b"replaces the link")
    target.apply(tar)
    target.assert_host_untouched([])
    with mounted(target.driver, "layer") as root:
        assert not (root / "parent-escape-file").is_symlink()
        assert (root / "parent-escape-file").read_bytes() == b"replaces the link"


def test_absolute_hardlink_target_inside(target: Target) -> None:
    tar = LayerTar().hardlink("inner-link", "/dir/inner")
    target.apply(tar)
    with mounted(target.driver, "layer") as root:
        assert os.lstat(root / "inner-link").st_ino == os.lstat(root / "dir" / "inner").st_ino
    target.assert_host_untouched([])


def test_absolute_hardlink_to_host_path(target: Target) -> None:
    """``/<sentinel>/secret`` names a file inside the layer, which it does not have."""
    tar = _prefix().hardlink("stolen", str(target.sentinel / "secret"))
    with pytest.raises((graphdriver.BreakoutError, graphdriver.ArchiveError)):
        target.apply(tar)
    target.assert_host_untouched([])
    target.assert_layer_unchanged()


def test_absolute_hardlink_to_layer_copy(target: Target) -> None:
    """The same absolute target, once the layer has that file, links to the layer's copy."""
    inner = target.aim.mirror + "/secret"
    tar = LayerTar().file(inner, b"the layer's own secret").hardlink("linked", "/" + inner)
    target.apply(tar)
    target.assert_host_untouched([])
    with mounted(target.driver, "layer") as root:
        assert (root / "linked").read_bytes() == b"the layer's own secret"
        assert os.lstat(root / "linked").st_ino == os.lstat(root / inner).st_ino


def test_symlink_inside_is_kept(target: Target) -> None:
    """Links that stay inside, even through ``..``, are ordinary layer content."""
    tar = (
        LayerTar()
        .symlink("dir/up", "..")
        .symlink("dir/to-keep", "../keep")
        .file("dir/up/via-up", b"written through dir/up")
    )
    target.apply(tar)
    target.assert_host_untouched([])
    with mounted(target.driver, "layer") as root:
        assert os.readlink(root / "dir" / "to-keep") == "../keep"
        assert (root / "via-up").read_bytes() == b"written through dir/up"


@pytest.mark.parametrize(
    "link",
    ["../../../../etc/passwd", UP + "etc/passwd", "../" + UP, "sub/../../../x"],
)
def test_symlink_target_leaving_root_is_stored(target: Target, link: str) -> None:
    """A symlink's target is data: stored verbatim (as Docker does), even when it climbs."""
    tar = LayerTar().dir("etc").symlink("etc/link", link).file("etc/after", b"after the link")
    target.apply(tar)
    target.assert_host_untouched([])
    with mounted(target.driver, "layer") as root:
        assert os.readlink(root / "etc" / "link") == link
        assert (root / "etc" / "after").read_bytes() == b"after the link"


def test_hardlink_to_symlink_does_not_follow(target: Target) -> None:
    """A hard link to a symlink links the symlink itself (as link(2) does), not its target."""
    outside = str(target.sentinel / "secret")
    tar = _prefix().symlink("abs-secret", outside).hardlink("linked", "abs-secret")
    try:
        target.apply(tar)
    except graphdriver.GraphDriverError:
        target.assert_host_untouched([])
        target.assert_layer_unchanged()
        return
    target.assert_host_untouched([])
    with mounted(target.driver, "layer") as root:
        assert os.path.islink(root / "linked")
        assert os.readlink(root / "linked") == outside


def test_symlink_loop_refused(target: Target) -> None:
    tar = _prefix().symlink("loop-a", "loop-b").symlink("loop-b", "loop-a")
    tar.file("loop-a/file", b"x")
    with pytest.raises(graphdriver.GraphDriverError):
        target.apply(tar)
    target.assert_host_untouched([])
    target.assert_layer_unchanged()


def test_missing_hardlink_target_refused(target: Target) -> None:
    tar = _prefix().hardlink("dangling", "no/such/file")
    with pytest.raises(graphdriver.GraphDriverError):
        target.apply(tar)
    target.assert_host_untouched([])
    target.assert_layer_unchanged()


@pytest.mark.parametrize("link", ["no/such/file", "nofile", "keep/file", "dir/sub/missing"])
def test_missing_hardlink_target_names_the_entry(target: Target, link: str) -> None:
    """A dangling hard link is an ``ArchiveError`` naming the entry, never a bare ENOENT."""
    tar = _prefix().hardlink("dangling", link)
    with pytest.raises(graphdriver.ArchiveError) as info:
        target.apply(tar)
    message = str(info.value)
    assert f"hard link 'dangling' -> '{link}'" in message and "does not exist" in message
    target.assert_host_untouched([])
    target.assert_layer_unchanged()


def test_dot_slash_names(target: Target) -> None:
    """Tars made with ``tar -C dir -c .`` name the root ``./`` and everything ``./name``."""
    tar = LayerTar().dir("./").dir("./new-dir").file("./new-dir/f", b"dot").file("./keep", b"k")
    target.apply(tar)
    target.assert_host_untouched([])
    with mounted(target.driver, "layer") as root:
        assert (root / "new-dir" / "f").read_bytes() == b"dot"
        assert (root / "keep").read_bytes() == b"k"
        assert not (root / ".").is_symlink()
