"""``pydock bench`` end to end: the real command, real mounts, real reference tools.

The quick run checks that every workload gave a number on every backend it applies to and that
all four outputs are written; no test looks at how fast anything was.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphdriver.mountutil import detach, mounts_under
from pydock.bench.backends import REFERENCES, DriverBackend
from pydock.bench.data import SIZES
from pydock.bench.results import Cell, Run, WorkloadResult, write_json
from pydock.bench.workloads import workloads

from .pydockrun import assert_fails

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, drop_caches, podman)"),
]

DRIVERS = ["overlay2", "fuse", "vfs"]


def bench(*args: str, timeout: float = 600) -> tuple[int, str, str]:
    command = [sys.executable, "-m", "pydock", "bench", *args]
    done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def leftovers(work: Path) -> tuple[list[str], list[int]]:
    """Mounts below ``work`` and processes naming it, as a user would look for them."""
    mounts = mounts_under(work)
    marker = os.fsencode(str(work))
    processes = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    processes.append(int(entry.name))
            except OSError:
                continue
    return mounts, processes


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """A work directory whose mounts and processes are removed even when a test fails."""
    path = tmp_path / "work"
    path.mkdir()
    yield path
    mounts, processes = leftovers(path)
    for pid in processes:
        os.kill(pid, signal.SIGKILL)
    for point in mounts:
        detach(Path(point))


@pytest.mark.slow
@pytest.mark.fuse
@pytest.mark.overlay
def test_quick_run_measures_every_workload_on_every_backend(tmp_path: Path, work: Path) -> None:
    out = tmp_path / "out"
    status, stdout, stderr = bench("--quick", "--out", str(out), "--dir", str(work), timeout=900)
    assert status == 0, stderr[-3000:]

    data = json.loads((out / "results.json").read_text())
    assert data["format"] == "pydock-bench/2"
    assert data["interrupted"] is False
    assert data["settings"]["size"] == "small" and data["settings"]["repeat"] == 1
    assert data["settings"]["cache"] == "dropped"
    assert data["settings"]["baseline"] == "overlay2"
    assert data["machine"]["kernel"] == os.uname().release
    assert data["machine"]["work_fs"] and data["machine"]["work_mount"]
    assert data["settings"]["warmup"] == 1 and data["settings"]["settle"][0] == "sync"
    assert {"pydock", "fuse-overlayfs", "podman", "tar"} <= set(data["versions"])
    backends = {b["name"]: b for b in data["backends"]}
    assert list(backends) == [*DRIVERS, *REFERENCES]
    assert all(b["skipped"] is None for b in backends.values()), backends

    operations = {name: DriverBackend.operations for name in DRIVERS}
    operations |= {name: backend.operations for name, backend in REFERENCES.items()}
    expected = workloads(SIZES["small"])
    assert [w["name"] for w in data["workloads"]] == [w.name for w in expected]
    measured = 0
    for workload, spec in zip(data["workloads"], expected, strict=True):
        assert workload["unit"] == spec.unit
        cells = {cell["backend"]: cell for cell in workload["results"]}
        for name, offered in operations.items():
            cell = cells[name]
            if spec.operation in offered:
                assert cell["skipped"] is None, (workload["name"], name, cell["skipped"])
                assert len(cell["samples"]) == 1 and cell["samples"][0] > 0
                assert len(cell["warmup"]) == 1  # measured first, counted in nothing
                assert cell["ratio"] is not None
                measured += 1
            else:
                assert cell["skipped"] == "does not apply" and cell["samples"] == []
        assert cells["overlay2"]["ratio"] == 1.0
    assert measured >= 40

    firsts = {line.split()[0] for line in stdout.splitlines() if line.strip()}
    assert {w["name"] for w in data["workloads"]} <= firsts  # the table names every workload
    assert "…" not in stdout
    report = (out / "report.md").read_text()
    assert "pydock bench --quick" in report
    for workload in data["workloads"]:
        assert f"| {workload['name']} |" in report
        png = out / "plots" / f"{workload['name']}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{workload['name']}.png" in report
    assert (out / "plots" / "summary.png").stat().st_size > 2000
    assert leftovers(work) == ([], [])
    kept = sorted(p.name for p in work.iterdir())
    assert kept == ["data-small", "www-64m"]  # the data and the net workloads' site are kept


def test_unknown_names_are_refused_before_anything_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert_fails(bench("--workload", "unpack,compile", "--out", str(out)),
                 "unknown workload 'compile'", "known: mount")  # fmt: skip
    assert_fails(bench("--storage", "zfs", "--out", str(out)), "unknown storage 'zfs'")
    assert_fails(bench("--reference", "docker", "--out", str(out)), "unknown reference 'docker'")
    assert_fails(bench("--baseline", "tar", "--reference", "none", "--out", str(out)),
                 "--baseline 'tar' is not measured")  # fmt: skip
    assert_fails(bench("--repeat", "0", "--out", str(out)), "--repeat must be at least 1")
    assert not out.exists()


def test_an_out_dir_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    readonly = tmp_path / "ro"
    readonly.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(readonly)],
                   check=True)  # fmt: skip
    try:
        line = assert_fails(bench("--out", str(readonly / "results"), "--quick"),
                            "cannot write results to", "read-only file system")  # fmt: skip
        assert str(readonly / "results") in line
    finally:
        detach(readonly)
    afile = tmp_path / "file"
    afile.write_text("x")
    assert_fails(bench("--out", str(afile / "sub"), "--quick"), "not a directory")


@pytest.mark.overlay
def test_a_driver_that_cannot_run_here_is_skipped_and_the_rest_runs(
    tmp_path: Path, work: Path
) -> None:
    # overlay2 refuses a home on overlayfs, so a work dir on an overlay mount rules it out.
    layers = {name: tmp_path / name for name in ("lower", "upper", "ovl-work")}
    for path in layers.values():
        path.mkdir()
    options = f"lowerdir={layers['lower']},upperdir={layers['upper']},workdir={layers['ovl-work']}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(work)], check=True)
    try:
        out = tmp_path / "out"
        status, stdout, stderr = bench(
            "--quick", "--storage", "overlay2,vfs", "--reference", "none",
            "--workload", "snapshot,remove", "--dir", str(work), "--out", str(out),
        )  # fmt: skip
        assert status == 0, stderr
        data = json.loads((out / "results.json").read_text())
        skipped = {b["name"]: b["skipped"] for b in data["backends"]}
        assert skipped["vfs"] is None
        assert "overlay" in skipped["overlay2"]
        for workload in data["workloads"]:
            cells = {cell["backend"]: cell for cell in workload["results"]}
            assert cells["overlay2"]["samples"] == [] and cells["overlay2"]["skipped"]
            assert len(cells["vfs"]["samples"]) == 1
            assert cells["vfs"]["ratio"] is None  # the baseline gave no number
        assert "overlay2 / all workloads:" in stdout
        assert str(work) in mounts_under(work)  # the user's own mount is left alone
    finally:
        detach(work)


@pytest.mark.slow
@pytest.mark.fuse
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_writes_partial_results_and_cleans_up(
    tmp_path: Path, work: Path, signum: int
) -> None:
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "pydock", "bench", "--size", "small", "--repeat", "40",
        "--storage", "fuse,vfs", "--reference", "fuse-overlayfs", "--workload", "walk,create",
        "--dir", str(work), "--out", str(out),
    ]  # fmt: skip
    # Its own session, so a SIGINT to the group is what Ctrl-C on a terminal sends.
    process = subprocess.Popen(command, stderr=subprocess.PIPE, start_new_session=True)
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + 300
    for raw in process.stderr:
        seen.append(raw.decode())
        if "walk on fuse-overlayfs (round 3/40)" in seen[-1] or time.monotonic() > deadline:
            break
    # Interrupt inside a sample, with a mount up: wait (bounded) for one to appear below work.
    deadline = time.monotonic() + 30
    while not mounts_under(work) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signum)
    rest = process.stderr.read().decode()
    assert process.wait(timeout=120) == 130, "".join(seen) + rest
    assert "pydock: bench: interrupted; partial results written" in rest
    data = json.loads((out / "results.json").read_text())
    assert data["interrupted"] is True
    walk = {cell["backend"]: cell for cell in data["workloads"][0]["results"]}
    assert len(walk["fuse"]["samples"]) >= 2
    assert (out / "report.md").read_text().count("interrupted") >= 1
    assert leftovers(work) == ([], [])
    assert not (work / "runs").exists()


def test_a_reference_tool_that_is_not_installed_is_skipped_with_the_reason(
    tmp_path: Path, work: Path
) -> None:
    tools = tmp_path / "bin"  # a PATH with the usual tools but no fuse-overlayfs
    tools.mkdir()
    for name in ("tar", "cp", "rm", "findmnt", "mount", "umount", "fusermount3", "podman"):
        found = shutil.which(name)
        if found is not None:
            (tools / name).symlink_to(found)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "pydock", "bench", "--quick", "--storage", "vfs",
        "--reference", "tar,fuse-overlayfs", "--workload", "unpack,walk",
        "--dir", str(work), "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env=os.environ | {"PATH": str(tools)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads((out / "results.json").read_text())
    skipped = {b["name"]: b["skipped"] for b in data["backends"]}
    assert skipped == {"vfs": None, "tar": None, "fuse-overlayfs": "fuse-overlayfs not installed"}
    unpack, walk = ({c["backend"]: c for c in w["results"]} for w in data["workloads"])
    assert len(unpack["tar"]["samples"]) == 1 and unpack["tar"]["ratio"] is not None
    assert walk["fuse-overlayfs"]["skipped"] == "fuse-overlayfs not installed"
    assert len(walk["vfs"]["samples"]) == 1
    assert "fuse-overlayfs / all workloads: fuse-overlayfs not installed" in done.stdout


@pytest.mark.skipif(shutil.which("script") is None, reason="script(1) not installed")
def test_a_terminal_gets_a_live_progress_bar(tmp_path: Path, work: Path) -> None:
    out = tmp_path / "out"
    command = shlex.join([
        sys.executable, "-m", "pydock", "bench", "--quick", "--storage", "vfs",
        "--reference", "none", "--workload", "unpack,remove", "--dir", str(work),
        "--out", str(out),
    ])  # fmt: skip
    typescript = tmp_path / "typescript"
    done = subprocess.run(["script", "-qfec", command, str(typescript)], capture_output=True,
                          timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    screen = typescript.read_bytes().decode(errors="replace")  # keep the \r of redraws
    assert "unpack on vfs (round 1/1)" in screen
    assert "4/4" in screen  # done/total (a warm-up and a round of each workload), redrawn
    assert "\r" in screen and "\x1b[" in screen
    assert "bench: [" not in screen  # the line-per-step form is only for pipes and files
    assert json.loads((out / "results.json").read_text())["interrupted"] is False


@pytest.mark.overlay
def test_workloads_that_need_no_data_do_not_generate_it(tmp_path: Path, work: Path) -> None:
    out = tmp_path / "out"
    status, _, stderr = bench(
        "--quick", "--storage", "overlay2,vfs", "--reference", "kernel-overlay,tar",
        "--workload", "mount", "--dir", str(work), "--out", str(out),
    )  # fmt: skip
    assert status == 0, stderr
    assert "preparing" not in stderr
    assert not (work / "data-small").exists()
    data = json.loads((out / "results.json").read_text())
    assert [w["name"] for w in data["workloads"]] == ["mount-1", "mount-20"]
    for workload in data["workloads"]:
        cells = {cell["backend"]: cell for cell in workload["results"]}
        for name in ("overlay2", "vfs", "kernel-overlay"):
            assert len(cells[name]["samples"]) == 1, cells[name]
        assert cells["tar"]["skipped"] == "does not apply"
    assert leftovers(work) == ([], [])


def test_redraw_draws_an_earlier_run_again_and_refuses_other_files(tmp_path: Path) -> None:
    backends = [
        {"name": "overlay2", "kind": "driver", "description": "d", "skipped": None},
        {"name": "tar", "kind": "reference", "description": "t", "skipped": None},
    ]
    settings = {"size": "small", "repeat": 2, "cache": "dropped", "baseline": "overlay2"}
    run = Run(["pydock", "bench"], "t0", {"kernel": "k"}, {"pydock": "0"}, settings, backends)
    result = WorkloadResult("unpack", "unpack the layer tar", "s", "lower")
    result.cells["overlay2"] = Cell("overlay2", [0.2, 0.4])
    result.cells["tar"] = Cell("tar", [0.1, 0.1])
    run.workloads.append(result)
    source = tmp_path / "old" / "results.json"
    source.parent.mkdir()
    write_json(run.to_json(), source)

    out = tmp_path / "new"
    status, stdout, stderr = bench("--redraw", str(source), "--out", str(out))
    assert status == 0, stderr
    assert "300 ms baseline" in stdout and "100 ms 0.33x faster" in stdout
    assert json.loads((out / "results.json").read_text()) == json.loads(source.read_text())
    report = (out / "report.md").read_text()
    assert "| unpack | 300 ms baseline | 100 ms 0.33x faster |" in report
    assert (out / "plots" / "unpack.png").read_bytes()[:4] == b"\x89PNG"

    not_json = tmp_path / "notes.json"
    not_json.write_text("a shopping list\n")
    assert_fails(bench("--redraw", str(not_json)), f"{not_json}: not valid JSON")
    other = tmp_path / "other.json"
    other.write_text('{"format": "something/9"}')
    assert_fails(bench("--redraw", str(other)), "not a pydock bench results file")
    assert_fails(bench("--redraw", str(tmp_path / "missing.json")), "no such file or directory")


def test_compare_shows_what_changed_between_two_runs(tmp_path: Path) -> None:
    def results(name: str, tar: list[float]) -> Path:
        backends = [{"name": n, "kind": "driver", "description": n, "skipped": None}
                    for n in ("overlay2", "tar")]  # fmt: skip
        settings = {"size": "small", "repeat": 3, "baseline": "overlay2"}
        run = Run(["pydock", "bench"], name, {"kernel": "k"}, {}, settings, backends)
        result = WorkloadResult("unpack", "unpack the layer tar", "s", "lower")
        result.cells["overlay2"] = Cell("overlay2", [0.2, 0.21, 0.22])
        result.cells["tar"] = Cell("tar", tar)
        run.workloads.append(result)
        path = tmp_path / name / "results.json"
        path.parent.mkdir()
        write_json(run.to_json(), path)
        return path

    before = results("before", [0.4, 0.41, 0.42])
    after = results("after", [0.1, 0.11, 0.12])
    command = [sys.executable, "-m", "pydock", "bench", "--compare", str(before), str(after),
               "--out", str(tmp_path / "cmp")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    tar = next(line for line in done.stdout.splitlines() if line.split()[:1] == ["tar"])
    assert tar.split() == ["tar", "410", "ms", "110", "ms", "0.27x", "0.24-0.30x", "faster",
                           "0.27x"]  # fmt: skip
    assert (
        "| unpack | overlay2 | 210 ms | 210 ms | 1.00x |"
        in (tmp_path / "cmp" / "compare.md").read_text()
    )
