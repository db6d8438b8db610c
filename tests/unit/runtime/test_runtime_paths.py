"""Resolving paths inside a rootfs, and users from the image's /etc/passwd and /etc/group."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from runtime import securejoin, user
from runtime.errors import UnknownUserError
from runtime.spec import User


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "abs").symlink_to("/etc")
    (root / "rel").symlink_to("../../../../usr/lib")
    (root / "usr" / "lib" / "up").symlink_to("../..")
    (root / "loop").symlink_to("loop")
    return root


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/etc", "etc"),
        ("etc/", "etc"),
        ("/abs", "etc"),
        ("/abs/new/dir", "etc/new/dir"),
        ("/rel/x", "usr/lib/x"),
        ("/usr/lib/up/etc", "etc"),
        ("/../../../etc", "etc"),
        ("/missing/../etc", "etc"),
        ("/", ""),
    ],
)
def test_resolve_stays_in_root(root: Path, path: str, expected: str) -> None:
    assert securejoin.resolve_in_root(root, path) == root / expected


def test_symlink_loop(root: Path) -> None:
    with pytest.raises(OSError) as info:
        securejoin.resolve_in_root(root, "/loop/x")
    assert info.value.errno == errno.ELOOP


def test_make_dirs_follows_links_inside(root: Path, tmp_path: Path) -> None:
    made = securejoin.make_dirs_in_root(root, "/abs/a/b")
    assert made == root / "etc" / "a" / "b" and made.is_dir()
    made_file = securejoin.make_file_in_root(root, "/rel/deep/file")
    assert made_file == root / "usr" / "lib" / "deep" / "file" and made_file.is_file()
    assert {p.name for p in tmp_path.iterdir()} == {"rootfs"}


def test_make_dirs_refuses_a_file(root: Path) -> None:
    (root / "etc" / "passwd").write_text("")
    with pytest.raises(NotADirectoryError):
        securejoin.make_dirs_in_root(root, "/etc/passwd")


PASSWD = """root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
broken line
svc:x:999:50::/srv:/bin/false
"""
GROUP = """root:x:0:
app:x:1000:
staff:x:50:app,svc
audio:x:29:app
"""


@pytest.fixture
def image(root: Path) -> Path:
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", User(0, 0, ())),
        ("root", User(0, 0, ())),
        ("app", User(1000, 1000, (29, 50))),
        ("1000", User(1000, 1000, (29, 50))),
        ("app:staff", User(1000, 50, (29,))),
        ("app:7", User(1000, 7, (29, 50))),
        ("4242", User(4242, 0, ())),
        ("4242:4243", User(4242, 4243, ())),
        ("svc", User(999, 50, ())),
    ],
)
def test_resolve_user(image: Path, spec: str, expected: User) -> None:
    assert user.resolve(image, spec) == expected


@pytest.mark.parametrize(("spec", "what"), [("nobody", "no user"), ("app:wheel", "no group")])
def test_unknown_user(image: Path, spec: str, what: str) -> None:
    with pytest.raises(UnknownUserError, match=what):
        user.resolve(image, spec, container_id="c1")


def test_group_add_by_name_and_number(image: Path) -> None:
    found = user.resolve(image, "root", group_add=("audio", "4000", "staff"))
    assert found == User(0, 0, (29, 50, 4000))
    assert user.resolve(image, "svc", group_add=("app",)) == User(999, 50, (1000,))
    with pytest.raises(UnknownUserError, match="unable to find group wheel: no matching"):
        user.resolve(image, "app", group_add=("wheel",))


def test_passwd_through_a_symlink_is_read_inside(root: Path) -> None:
    (root / "etc" / "real").write_text(PASSWD)
    (root / "etc" / "passwd").symlink_to("/etc/real")
    assert user.resolve(root, "app").uid == 1000


def test_home_for() -> None:
    assert user.home_for(PASSWD, 1000) == "/home/app"
    assert user.home_for(PASSWD, 5) == "/"
