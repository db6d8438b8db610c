"""The naive differ against hand-made trees: docker diff semantics."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from graphdriver import Change, ChangeKind
from graphdriver.changes import changes_dirs, changes_size, content_hash

A, C, D = ChangeKind.ADD, ChangeKind.MODIFY, ChangeKind.DELETE


def base_tree(root: Path) -> None:
    (root / "etc" / "conf.d").mkdir(parents=True)
    (root / "etc" / "hosts").write_bytes(b"127.0.0.1 localhost\n")
    (root / "etc" / "conf.d" / "a.conf").write_bytes(b"a=1\n")
    (root / "var" / "lib" / "deep").mkdir(parents=True)
    (root / "var" / "lib" / "deep" / "file").write_bytes(b"x")
    (root / "link").symlink_to("etc/hosts")


def copy(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copy2)
    # copytree gives directories fresh mtimes; the differ must not care.


def test_no_changes_between_copies(tmp_path: Path) -> None:
    base_tree(tmp_path / "old")
    copy(tmp_path / "old", tmp_path / "new")
    assert changes_dirs(tmp_path / "new", tmp_path / "old") == []


def test_docker_diff_semantics(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    base_tree(old)
    copy(old, new)
    (new / "etc" / "conf.d" / "a.conf").write_bytes(b"a=2\n")  # same size, new mtime
    os.utime(new / "etc" / "conf.d" / "a.conf", ns=(1, 5_000_000_001))
    shutil.rmtree(new / "var")
    (new / "opt" / "app").mkdir(parents=True)
    (new / "opt" / "app" / "bin").write_bytes(b"#!")
    os.unlink(new / "link")
    (new / "link").symlink_to("etc/other")
    assert changes_dirs(new, old) == [
        Change("/etc", C),
        Change("/etc/conf.d", C),
        Change("/etc/conf.d/a.conf", C),
        Change("/link", C),
        Change("/opt", A),
        Change("/opt/app", A),
        Change("/opt/app/bin", A),
        Change("/var", D),
    ]


def test_mode_owner_and_xattr_changes(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    base_tree(old)
    copy(old, new)
    os.chmod(new / "etc" / "hosts", 0o600)
    os.setxattr(new / "etc" / "conf.d", "user.tag", b"1")
    assert changes_dirs(new, old) == [
        Change("/etc", C),
        Change("/etc/conf.d", C),
        Change("/etc/hosts", C),
    ]


def test_same_size_same_whole_second_mtime_is_compared_by_content(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "f").write_bytes(b"aaaa")
    (new / "f").write_bytes(b"bbbb")
    (old / "same").write_bytes(b"cccc")
    (new / "same").write_bytes(b"cccc")
    for path in (old / "f", new / "f", old / "same", new / "same"):
        os.utime(path, ns=(0, 1_600_000_000_000_000_000))
    assert changes_dirs(new, old) == [Change("/f", C)]
    assert content_hash(old / "same") == content_hash(new / "same")


def test_type_change_and_base_layer(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "x").write_bytes(b"file")
    (new / "x").mkdir()
    (new / "x" / "inner").write_bytes(b"i")
    assert changes_dirs(new, old) == [Change("/x", C), Change("/x/inner", A)]
    assert changes_dirs(new, None) == [Change("/x", A), Change("/x/inner", A)]


def test_changes_size_counts_hard_links_once(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"12345")
    os.link(tmp_path / "a", tmp_path / "b")
    (tmp_path / "d").mkdir()
    found = changes_dirs(tmp_path, None)
    assert changes_size(tmp_path, found) == 5
