"""What importing the store leaves out of a fresh interpreter; what it defers still works."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import json, sys
import pydock.store
import sqlite_utils.plugins
parser = sys.modules["dateutil.parser"]
report = {
    "hidden": [name for name in ("numpy", "pandas") if name in sys.modules],
    "plugins_loaded": sqlite_utils.plugins._plugins_loaded,
    "parser_deferred": type(parser).__name__,
}
from sqlite_utils import recipes
report["parsedate"] = recipes.parsedate("6 December 2026")
report["parser_after"] = type(sys.modules["dateutil.parser"]).__name__
db = sqlite_utils.Database(memory=True)
db["t"].insert({"a": 1})
report["rows"] = list(db["t"].rows)
print(json.dumps(report))
"""


def test_store_import_defers_dateutil_and_skips_the_plugin_scan() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(done.stdout)
    assert report["hidden"] == []
    # The flag sqlite-utils checks before scanning entry points: if a release renames it, the
    # scan (about 10 ms a command) silently returns; this fails first.
    assert report["plugins_loaded"] is True
    assert report["parser_deferred"] == "_LazyModule"
    # The deferred module still works when something calls it, and is then a real module.
    assert report["parsedate"] == "2026-12-06"
    assert report["parser_after"] == "module"
    assert report["rows"] == [{"a": 1}]
