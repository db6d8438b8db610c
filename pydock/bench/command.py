"""Running ``pydock bench``: check the arguments, prepare, measure, report, clean up.

It runs without the user's pydock store: each driver gets a fresh home under the work
directory, and everything made there is removed at the end, also after Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import graphdriver
from pydock.bench.backends import REFERENCES, Backend, Clock, DriverBackend
from pydock.bench.data import SIZES, SMALL_BYTES, DataSource
from pydock.bench.net import enter_own_network
from pydock.bench.podman import hide_hybrid_cgroup2
from pydock.bench.results import Run, read_json
from pydock.bench.runner import (
    Plan,
    close_all,
    execute,
    machine,
    now,
    sigterm_interrupts,
    versions,
)
from pydock.bench.settle import Settler
from pydock.bench.workloads import select, workloads
from pydock.errors import PydockError, UsageError

EXIT_INTERRUPTED = 130
WARMUP = 1  # uncounted rounds per workload and backend


def _names(text: str | None, known: list[str] | None, what: str) -> list[str] | None:
    """The comma-separated names of an option, each checked against ``known`` if given."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError(f"bench: --{what} needs at least one name")
    for name in names:
        if known is not None and name not in known:
            raise UsageError(f"bench: unknown {what} {name!r} (known: {', '.join(known)})")
    return names


def _writable_dir(out: Path) -> None:
    """Make ``out`` and check files can be written in it, before anything runs."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".pydock-bench-"):
            pass
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise PydockError(f"bench: cannot write results to {out}: {reason}") from exc


def _progress(total: int) -> contextlib.AbstractContextManager[Callable[[str, int], None]]:
    """A live progress bar on a terminal; one line per step on stderr otherwise."""
    if sys.stderr.isatty():
        return _live_progress(total)

    @contextlib.contextmanager
    def lines() -> Iterator[Callable[[str, int], None]]:
        def show(what: str, done: int) -> None:
            sys.stderr.write(f"bench: [{done}/{total}] {what}\n")
            sys.stderr.flush()

        yield show

    return lines()


@contextlib.contextmanager
def _live_progress(total: int) -> Iterator[Callable[[str, int], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("starting", total=total)

        def show(what: str, done: int) -> None:
            bar.update(task, description=what, completed=done)

        yield show


def _write_and_print(data: dict[str, Any], out: Path) -> None:
    """Write results, report and plots to ``out``; print the table."""
    from rich.console import Console

    from pydock.bench import report  # matplotlib and rich load only for this command

    written = report.write_all(data, out)
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 200
    report.print_table(data, Console(width=width))
    sys.stderr.write(f"bench: results, report and plots in {written['json'].parent}\n")


def load(source: Path) -> dict[str, Any]:
    """An earlier run's ``results.json``; PydockError saying why when it cannot be read."""
    try:
        return read_json(source)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise PydockError(f"bench: reading {source}: {reason}") from exc
    except ValueError as exc:  # not JSON, or not ours
        message = str(exc) if str(source) in str(exc) else f"{source}: not valid JSON"
        raise PydockError(f"bench: {message}") from exc


def redraw(source: Path, out: Path | None) -> int:
    """Draw the table, report and plots of an earlier run from its ``results.json``."""
    data = load(source)
    target = out or source.parent
    _writable_dir(target)
    _write_and_print(data, target)
    return 0


def compare_runs(before: Path, after: Path, out: Path | None) -> int:
    """Print two earlier runs side by side; with ``out``, write ``compare.md`` there too."""
    from rich.console import Console

    from pydock.bench import compare

    old, new = load(before), load(after)
    names = (str(before), str(after))
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 200
    compare.print_compare(old, new, names, Console(width=width))
    if out is not None:
        _writable_dir(out)
        (out / "compare.md").write_text(compare.markdown(old, new, names))
        sys.stderr.write(f"bench: comparison in {out / 'compare.md'}\n")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """Run the benchmark the arguments ask for; write and print the results."""
    if args.redraw is not None:
        return redraw(args.redraw, args.out)
    if getattr(args, "compare", None):
        return compare_runs(args.compare[0], args.compare[1], args.out)
    drivers = list(graphdriver.registered())
    backend_names = _names(args.backends, drivers, "storage") or drivers
    if args.references == "none":
        reference_names: list[str] = []
    else:
        reference_names = _names(args.references, list(REFERENCES), "reference") or list(REFERENCES)
    size = "small" if args.quick else args.size
    repeat = 1 if args.quick else args.repeat
    if repeat < 1:
        raise UsageError("bench: --repeat must be at least 1")
    try:
        # select() checks the names, knowing that "mount" stands for every depth.
        chosen = select(workloads(SIZES[size]), _names(args.workloads, None, "workload"))
    except ValueError as exc:
        raise UsageError(f"bench: {exc}") from exc
    names = backend_names + reference_names
    baseline = args.baseline or names[0]
    if baseline not in names:
        raise UsageError(f"bench: --baseline {baseline!r} is not measured in this run")
    out = args.out or Path(f"bench-{now().replace(':', '').replace('-', '')}")
    _writable_dir(out)

    keep = args.dir is not None
    work = (args.dir or Path(tempfile.mkdtemp(prefix="pydock-bench-", dir="/var/tmp"))).resolve()
    can_drop = os.geteuid() == 0 and os.access("/proc/sys/vm/drop_caches", os.W_OK)
    run = Run(
        command=["pydock", *args.argv],
        started=now(),
        machine=machine(work),
        versions=versions(),
        settings={"size": size, "repeat": repeat, "baseline": baseline,
                  "cache": "dropped" if can_drop else "warm only", "warmup": WARMUP,
                  "data": SIZES[size].describe()},
        backends=[],
    )  # fmt: skip
    plan = Plan([], [], repeat, work)
    try:
        with sigterm_interrupts():
            work.mkdir(parents=True, exist_ok=True)
            source = DataSource(work, size)
            if any(w.operation == "net" for w in chosen):
                run.settings["net"] = {"connections": SIZES[size].connections,
                                       "small_bytes": SMALL_BYTES,
                                       "big_bytes": SIZES[size].big_mib << 20}  # fmt: skip
                if os.geteuid() == 0:
                    try:
                        run.settings["network"] = enter_own_network()
                    except OSError as exc:
                        reason = (exc.strerror or str(exc)).lower()
                        run.settings["network"] = f"net workloads: on this network ({reason})"
            if any(w.operation not in ("mount", "start", "net") for w in chosen):
                sys.stderr.write(f"bench: preparing {size} data in {work}\n")
                source.get()  # before the first sample, so no progress line waits for it
            clock = Clock(can_drop)
            runs = work / "runs"
            shutil.rmtree(runs, ignore_errors=True)
            backends: list[Backend] = [
                DriverBackend(name, runs, source, clock, {}) for name in backend_names
            ]
            backends += [REFERENCES[name](runs, source, clock) for name in reference_names]
            settler = Settler(work)
            settler.probe()
            run.settings["settle"] = settler.done
            run.settings["settle_skipped"] = settler.skipped
            plan = Plan(backends, chosen, repeat, work, settler=settler, warmup=WARMUP)
            if {"podman", "crun"} & set(reference_names) and os.geteuid() == 0:
                note = hide_hybrid_cgroup2()
                if note:
                    run.settings["note"] = note
            for backend in backends:
                why = backend.unavailable()
                if why is not None:
                    plan.skipped[backend.name] = why
                run.backends.append(
                    {
                        "name": backend.name,
                        "kind": backend.kind,
                        "description": backend.description,
                        "skipped": why,
                    }
                )
            with _progress(plan.samples()) as progress:
                execute(plan, run, progress)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        close_all(plan)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(work / "runs", ignore_errors=True)
    run.finished = now()
    _write_and_print(run.to_json(), out)
    if run.interrupted:
        sys.stderr.write("pydock: bench: interrupted; partial results written\n")
        return EXIT_INTERRUPTED
    return 0
