"""``python -m pydock``: the pydock command line."""

from __future__ import annotations

from pydock.cli import console

if __name__ == "__main__":
    console()
