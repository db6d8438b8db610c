"""``python -m pydock``: the pydock command line."""

from __future__ import annotations

import sys

from pydock.cli import main

if __name__ == "__main__":
    sys.exit(main())
