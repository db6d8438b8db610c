"""The one place where ``OSError`` becomes the errno a FUSE request is answered with."""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable, Coroutine
from typing import ParamSpec, TypeVar

import pyfuse3

P = ParamSpec("P")
T = TypeVar("T")


def handler(method: Callable[P, T]) -> Callable[P, Coroutine[object, object, T]]:
    """Make a synchronous request handler async, turning ``OSError`` into ``FUSEError``.

    The one place errno translation happens. Anything else is a bug and propagates: it ends
    the FUSE loop, the mount is taken down and the traceback says why.
    """

    @functools.wraps(method)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except OSError as exc:
            raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None

    return run
