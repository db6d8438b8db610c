"""How the ``pydock`` command leaves: output flushed, atexit handlers run, threads waited for."""

from __future__ import annotations

import subprocess
import sys

_FLUSH = """
import atexit, sys
from pydock.cli.app import leave
atexit.register(lambda: sys.stdout.write("atexit ran\\n"))
sys.stdout.write("x" * 100000 + "\\n")
leave(3)
"""

_THREAD = """
import sys, threading
from pydock.cli.app import leave
def wait_for_go():
    sys.stdin.readline()
    print("thread done", flush=True)
threading.Thread(target=wait_for_go).start()
print("leaving", flush=True)
leave(4)
"""


def test_leave_flushes_output_and_runs_atexit_handlers() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FLUSH], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 3
    assert done.stdout == "x" * 100000 + "\natexit ran\n"
    assert done.stderr == ""


def test_leave_waits_for_a_thread_that_still_runs() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _THREAD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline() == "leaving\n"
        process.stdin.write("go\n")
        process.stdin.close()
        assert process.stdout.read() == "thread done\n"
        assert process.wait(timeout=60) == 4
