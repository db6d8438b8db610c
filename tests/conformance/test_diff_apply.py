"""``diff`` then ``apply_diff`` on the same parent rebuilds the layer; sizes and bytes agree."""

from __future__ import annotations

import io
import os
import tarfile

import graphdriver
from graphdriver import Change, ChangeKind

from .helpers import mounted, write
from .scenario import ChangeScenario
from .trees import Abilities, build_rich_tree
from .treesnap import assert_same_tree, paths, snapshot, whole_second_mtimes


def _name(member: tarfile.TarInfo) -> str:
    return "/" + member.name.removeprefix("./").strip("/")


def _members(data: bytes) -> list[tarfile.TarInfo]:
    # "r:" refuses compressed input: diff must give a plain tar.
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return tar.getmembers()


def test_diff_apply_rebuilds_layer(driver: graphdriver.Driver, scenario: ChangeScenario) -> None:
    applied = scenario.rebuild("rebuilt", scenario.diff_bytes())
    with mounted(driver, "upper") as a, mounted(driver, "rebuilt") as b:
        assert_same_tree(snapshot(a), snapshot(b), "layer rebuilt from the diff")
    assert applied == scenario.size


def test_diff_size_counts_content(driver: graphdriver.Driver, scenario: ChangeScenario) -> None:
    assert driver.diff_size("upper", "base") == scenario.size


def test_apply_diff_returns_diff_size(driver: graphdriver.Driver, scenario: ChangeScenario) -> None:
    applied = scenario.rebuild("rebuilt", scenario.diff_bytes())
    assert applied == driver.diff_size("upper", "base")
    assert driver.diff_size("rebuilt", "base") == applied


def test_rebuilt_layer_has_same_changes(
    driver: graphdriver.Driver, scenario: ChangeScenario
) -> None:
    scenario.rebuild("rebuilt", scenario.diff_bytes())
    assert sorted(driver.changes("rebuilt", "base")) == scenario.expected


def test_diff_is_deterministic(driver: graphdriver.Driver, scenario: ChangeScenario) -> None:
    first = scenario.diff_bytes()
    assert scenario.diff_bytes() == first
    # The same content in another layer gives the same bytes, hence the same digest: nothing
    # of the disk (inode numbers, ctime, atime, directory order) may leak into the tar.
    scenario.rebuild("rebuilt", first)
    assert scenario.diff_bytes("rebuilt") == first


def test_diff_tar_entries(driver: graphdriver.Driver, scenario: ChangeScenario) -> None:
    members = _members(scenario.diff_bytes())
    names = [_name(m) for m in members]
    content = [n for n in names if not os.path.basename(n).startswith(".wh.")]
    wanted = sorted(c.path for c in scenario.expected if c.kind != ChangeKind.DELETE)
    assert sorted(content) == wanted
    assert len(set(names)) == len(names), "an entry appears twice"
    for i, name in enumerate(names):
        parent = os.path.dirname(name)
        if parent != "/" and parent in names:
            assert names.index(parent) < i, f"{name} comes before its directory {parent}"

    # Every deleted path is whited out, by name or by an opaque parent.
    for change in scenario.expected:
        if change.kind != ChangeKind.DELETE:
            continue
        parent, base = os.path.split(change.path)
        whiteout = os.path.join(parent, ".wh." + base)
        opaque = os.path.join(parent, ".wh..wh..opq")
        assert whiteout in names or opaque in names, f"no whiteout for {change.path}"

    by_name = {_name(m): m for m in members}
    for first, second in (("/new/file", "/new/hard"), ("/etc/modify", "/etc/modify-link")):
        kinds = sorted((by_name[first].type, by_name[second].type))
        assert kinds == sorted((tarfile.REGTYPE, tarfile.LNKTYPE)), f"{first} and {second}"
        link = by_name[first] if by_name[first].islnk() else by_name[second]
        other = second if link is by_name[first] else first
        assert "/" + link.linkname.removeprefix("./").lstrip("/") == other
    if scenario.can.xattrs:
        pax = by_name["/new/file"].pax_headers
        assert pax.get("SCHILY.xattr.user.pydock.origin") == "upper", pax


def test_full_export_rebuilds_layer(driver: graphdriver.Driver) -> None:
    """``diff(id, None)`` of a layer with every kind of entry, applied to an empty layer."""
    driver.create("rich", None)
    with mounted(driver, "rich") as root:
        can = Abilities.probe(root)
        build_rich_tree(root, seed=4, can=can)
        expected = snapshot(root)
    with driver.diff("rich", None) as stream:
        data = stream.read()
    driver.create("copy", None)
    applied = driver.apply_diff("copy", None, io.BytesIO(data))
    with mounted(driver, "copy") as root:
        # The rich tree has nanosecond mtimes; a layer tar must keep at least the seconds.
        assert_same_tree(whole_second_mtimes(expected), whole_second_mtimes(snapshot(root)), "copy")
    assert applied == driver.diff_size("rich", None)
    assert applied == driver.diff_size("copy", None)


# Names a layer must carry unchanged: longer than the 100 bytes of a ustar name field, not
# ASCII, not UTF-8 at all, and with characters a shell or a line-based format would trip on.
ODD_NAMES = [
    "x" * 120,
    "dir-" + "y" * 90 + "/" + "z" * 150,
    "héllo wörld ✓",
    "日本語のファイル",
    os.fsdecode(b"not-utf8-\xff\xfe"),
    "with space and\nnewline",
    "tab\there",
    "-leading-dash",
    "trailing.wh",
    "a.wh.b",
]


def test_odd_names_round_trip(driver: graphdriver.Driver) -> None:
    driver.create("base", None)
    driver.create_read_write("upper", "base")
    with mounted(driver, "upper") as root:
        for i, name in enumerate(ODD_NAMES):
            write(root / name, f"content {i}".encode())
        os.symlink("x" * 120, root / ("link-" + "q" * 110))
        os.symlink(ODD_NAMES[4], root / "link-to-non-utf8")
        expected = snapshot(root)
    added = sorted(Change(p, ChangeKind.ADD) for p in paths(expected))
    assert sorted(driver.changes("upper", "base")) == added

    with driver.diff("upper", "base") as stream:
        data = stream.read()
    driver.create("rebuilt", "base")
    driver.apply_diff("rebuilt", "base", io.BytesIO(data))
    with mounted(driver, "rebuilt") as root:
        assert_same_tree(expected, snapshot(root), "layer rebuilt from odd names")
