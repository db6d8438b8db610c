"""Import sqlite-utils for pydock's store, without what the store never uses.

sqlite-utils is the store's interface to SQLite, and every pydock command opens the store, so
its start-up cost lands on every command. Three parts of that cost buy the store nothing:

- numpy and pandas: when installed, sqlite-utils imports them only to map their scalar types to
  column types. pydock never stores such values; numpy alone costs about a quarter of a second.
  They are hidden while sqlite-utils is imported.
- ``dateutil.parser``: imported for sqlite-utils' date-conversion recipes, which the store never
  calls (about 10 ms). It is bound lazily (``importlib.util.LazyLoader``): the module is made but
  runs only when one of its attributes is first read.
- plugins: the first ``Database`` of a process scans every installed distribution's entry points
  for sqlite-utils plugins (about 10 ms), and a plugin would then change every connection the
  store opens. The store's connections are pydock's own, so no plugin is loaded into them.

``pydock.store`` imports this module before anything else.
"""

from __future__ import annotations

import importlib.util
import sys

_OPTIONAL = ("numpy", "pandas")
_LAZY = "dateutil.parser"


def _bind_lazily(name: str) -> None:
    """Put a module in ``sys.modules`` that runs its code on first attribute access."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return  # let the real import report it
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, module)


_hidden = [name for name in _OPTIONAL if name not in sys.modules]
for _name in _hidden:
    sys.modules[_name] = None  # type: ignore[assignment]  # makes the import fail, fast
try:
    _bind_lazily(_LAZY)
    import sqlite_utils.plugins
finally:
    for _name in _hidden:
        if sys.modules.get(_name) is None:
            del sys.modules[_name]

# sqlite-utils reads this flag before its one entry-point scan; set, the scan never happens. Should
# a release rename it, the scan comes back (slower, still correct) and
# tests/unit/pydock/store/test_preload.py fails.
if hasattr(sqlite_utils.plugins, "_plugins_loaded"):
    sqlite_utils.plugins._plugins_loaded = True
