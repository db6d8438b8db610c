"""The ``-o`` option parser of ``pydock-fuse-overlay``."""

from __future__ import annotations

import pytest

from drivers.fuse.errors import InvalidOptionError
from drivers.fuse.options import DEFAULT_TIMEOUT, parse, split_escaped


def test_layers_are_absolute_and_nearest_first() -> None:
    spec = parse(["lowerdir=a:/abs/b,upperdir=u,workdir=w"], cwd="/base")
    assert spec.lowers == ("/base/a", "/abs/b")
    assert (spec.upper, spec.work) == ("/base/u", "/base/w")
    assert spec.options.fsync and spec.options.timeout == DEFAULT_TIMEOUT


def test_lowerdir_only_is_read_only() -> None:
    spec = parse(["lowerdir=/l"])
    assert spec.upper is None and spec.work is None


def test_several_o_arguments_merge() -> None:
    spec = parse(["lowerdir=/l", "upperdir=/u,workdir=/w", "noatime"])
    assert spec.upper == "/u" and spec.options.kernel == ("noatime",)


def test_escaped_separators() -> None:
    assert split_escaped(r"a\,b,c\:d", ",") == ["a,b", r"c\:d"]
    assert parse([r"lowerdir=/x\:y:/z\,w,upperdir=/u\:v,workdir=/w"]).lowers == ("/x:y", "/z,w")
    assert parse([r"lowerdir=/l,upperdir=/u\:v,workdir=/w"]).upper == "/u:v"


@pytest.mark.parametrize(
    "text",
    [
        "allow_other", "default_permissions", "noatime", "fsync=0", "volatile", "threaded=1",
        "fast_ino=1", "writeback=0", "noacl", "static_nlink", "userxattr", "timeout=5",
        "redirect_dir=off", "nodev", "nosuid", "ro", "xattr_permissions=0", "noxattrs=0",
    ],
)  # fmt: skip
def test_harmless_fuse_overlayfs_options_are_accepted(text: str) -> None:
    parse([f"lowerdir=/l,{text}"])


def test_option_values_take_effect() -> None:
    spec = parse(["lowerdir=/l,fsync=0,allow_other,static_nlink,timeout=2.5,userxattr"])
    options = spec.options
    assert not options.fsync and options.allow_other and options.static_nlink
    assert options.timeout == 2.5 and options.user_xattr
    assert not parse(["lowerdir=/l,volatile"]).options.fsync


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lowerdir=/l,squash_to_root", "option squash_to_root is not supported"),
        ("lowerdir=/l,uidmapping=0:1:1", "option uidmapping is not supported"),
        ("lowerdir=/l,noxattrs=1", "option noxattrs=1 is not supported"),
        ("lowerdir=/l,fsync=yes", "option fsync needs a number, not 'yes'"),
        ("lowerdir=/l,timeout=soon", "option timeout needs seconds, not 'soon'"),
        ("lowerdir=/l,redirect_dir=on", "option redirect_dir=on is not supported (only off)"),
        ("upperdir=/u,workdir=/w", "no lowerdir given (-o lowerdir=DIR[:DIR...])"),
        ("lowerdir=/l,workdir=/w", "upperdir and workdir must be given together"),
    ],
)
def test_bad_options_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        parse([text])
    assert str(caught.value) == message


def test_mount_flags_libfuse_does_not_know_are_translated_or_dropped() -> None:
    spec = parse(["lowerdir=/l,relatime,strictatime,lazytime,nodiratime,nodev,noexec"])
    assert spec.options.kernel == ("atime", "atime", "nodev", "noexec")


def test_unknown_options_warn_instead_of_failing() -> None:
    spec = parse(["lowerdir=/l,bogus,other=1,ro"])
    assert spec.warnings == ("unknown option 'bogus' ignored", "unknown option 'other=1' ignored")
    assert spec.options.kernel == ("ro",)


def test_options_mount_and_fstab_add_for_themselves_are_dropped_silently() -> None:
    spec = parse(["rw,lowerdir=/l,_netdev,nofail,defaults,noauto,x-systemd.automount,dev,suid"])
    assert spec.warnings == ()
    assert spec.options.kernel == ("rw", "dev", "suid")


def test_empty_items_are_skipped_and_fsname_and_subtype_reach_the_kernel() -> None:
    spec = parse([",lowerdir=/l,,fsname=images,subtype=mine,"])
    assert spec.lowers == ("/l",) and spec.warnings == ()
    assert spec.options.kernel == ("fsname=images", "subtype=mine")
