"""Import sqlite-utils without its optional numpy and pandas support.

When numpy or pandas is installed, sqlite-utils imports it at start-up only to map their scalar
types to column types. pydock never stores such values, and importing numpy alone costs about a
quarter of a second of every pydock command. This module is imported first by ``pydock.store``.
"""

from __future__ import annotations

import sys

_OPTIONAL = ("numpy", "pandas")

_hidden = [name for name in _OPTIONAL if name not in sys.modules]
for _name in _hidden:
    sys.modules[_name] = None  # type: ignore[assignment]  # makes the import fail, fast
try:
    import sqlite_utils  # noqa: F401
finally:
    for _name in _hidden:
        if sys.modules.get(_name) is None:
            del sys.modules[_name]
