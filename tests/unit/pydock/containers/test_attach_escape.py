"""The detach keys in a terminal run's input: held back while they may be the sequence."""

from __future__ import annotations

from pydock.containers import attach


def test_the_keys_detach_and_are_not_passed_on() -> None:
    console = attach.Console(None, interactive=True)
    try:
        assert console._escape(b"ls\x10") == (b"ls", False)
        assert console._escape(b"\x11rest") == (b"", True)
    finally:
        console.close()


def test_a_broken_sequence_is_passed_on_whole() -> None:
    console = attach.Console(None, interactive=True)
    try:
        assert console._escape(b"a\x10") == (b"a", False)
        assert console._escape(b"b") == (b"\x10b", False)
        console.detach_keys = b"\x18d"
        assert console._escape(b"\x18\x18d") == (b"\x18", True)
    finally:
        console.close()
