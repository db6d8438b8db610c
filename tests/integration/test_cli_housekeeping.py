"""Docker habits through the real CLI: Go-template ``--format``, ``--filter``, labels, env files,
``logs --tail``, ``ps -s`` and the prune verbs, on the best container driver."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .containers_support import ROOT_CONTAINER_TESTS, Workspace, fails

pytestmark = ROOT_CONTAINER_TESTS


def test_go_templates_on_ps_images_and_inspect(one: Workspace) -> None:
    pydock = one.pydock
    cid = pydock.ok("create", "--name", "tpl", "-l", "app=web", "-l", "tier", "busybox", "true")
    cid = cid.strip()
    try:
        rows = pydock.ok("ps", "-a", "--format", '{{.ID}} {{.Names}} {{.Label "app"}}')
        assert f"{cid[:12]} tpl web\n" in rows
        table = pydock.ok("ps", "-a", "--format", "table {{.ID}}\\t{{.Names}}\t{{.Status}}")
        lines = table.splitlines()
        assert re.split(r"\s{2,}", lines[0]) == ["CONTAINER ID", "NAMES", "STATUS"]
        assert lines[0].index("NAMES") == lines[1].index("tpl") == len("CONTAINER ID") + 3
        assert pydock.ok("ps", "-a", "-f", "name=^tpl$", "--format", "{{json .Names}}") == (
            '"tpl"\n'
        )
        assert json.loads(pydock.ok("ps", "-a", "--format", "json").splitlines()[0])["ID"]

        shown = pydock.ok(
            "inspect", "-f",
            '{{.State.Status}} {{json .Config.Labels}} {{index .Config.Labels "app"}}'
            " {{range .Config.Cmd}}<{{.}}>{{end}} {{if .State.Running}}up{{else}}down{{end}}",
            "tpl",
        )  # fmt: skip
        assert shown == 'created {"app":"web","tier":""} web <true> down\n'
        ranged = pydock.ok(
            "inspect", "--format", "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", cid
        )
        assert ranged == "app=web;tier=;\n"
        assert pydock.ok("inspect", "-f", "{{.Config.Cmd}} {{len .Id}}", "busybox") == "[sh] 71\n"

        images = pydock.ok("images", "--format", "table {{.Repository}}:{{.Tag}}\t{{.ID}}")
        header, *found = images.splitlines()
        assert header.split() == ["REPOSITORY:TAG", "IMAGE", "ID"]
        assert any(line.startswith("busybox:latest ") for line in found)
        assert pydock.ok("images", "--format", "{{.Repository}}") == "busybox\n"

        fails(pydock.run("inspect", "-f", "{{.Nope}}", "tpl"), "inspecting tpl: template:",
              'map has no entry for key "Nope"')  # fmt: skip
        fails(pydock.run("ps", "-a", "--format", "{{.ID"), "listing containers", "unclosed")
        fails(pydock.run("images", "--format", "{{nosuch .ID}}"), 'function "nosuch" not defined')
        fails(pydock.run("ps", "-a", "--format", "{{.Bogus}}"), 'no entry for key "Bogus"')
    finally:
        pydock.run("rm", "-f", "tpl")


def test_filters_on_ps_and_images(one: Workspace) -> None:
    pydock = one.pydock
    web = pydock.ok("create", "--name", "f-web", "-l", "app=web", "busybox", "true").strip()
    db = pydock.ok("create", "--name", "f-db", "-l", "app=db", "busybox", "true").strip()
    pydock.ok("run", "--name", "f-done", "busybox", "true")
    try:

        def names(*filters: str, every: bool = True) -> list[str]:
            flags = [word for item in filters for word in ("--filter", item)]
            flags += ["-a"] if every else []
            return sorted(pydock.ok("ps", *flags, "--format", "{{.Names}}").split())

        # A status filter shows stopped containers without -a, as Docker's does; others do not.
        assert names("status=created", every=False) == ["f-db", "f-web"]
        assert names("status=exited", every=False) == ["f-done"]
        assert names("status=running") == []
        assert names("label=app", every=False) == []
        assert names("label=app=web") == ["f-web"]
        assert names("label=app") == ["f-db", "f-web"]
        assert names("label=app", "status=created", "name=web") == ["f-web"]
        assert names("name=f-db", "name=f-done") == ["f-db", "f-done"]
        assert names("id=" + db[:8]) == ["f-db"]
        assert names("ancestor=busybox", "label=app=web") == ["f-web"]
        assert names("ancestor=nosuchimage") == []
        assert names("exited=0", every=False) == ["f-done"]
        assert names("exited=1") == []
        fails(pydock.run("ps", "--filter", "exited=x"), "'exited=x'")
        assert web[:12] in pydock.ok("ps", "-aq", "-f", "label=app=web")
        fails(pydock.run("ps", "--filter", "colour=red"), "listing containers", "'colour'")
        fails(pydock.run("ps", "--filter", "status=asleep"), "'status=asleep'")

        assert pydock.ok("images", "-q", "-f", "dangling=true") == ""
        assert pydock.ok("images", "-f", "dangling=false", "--format", "{{.Repository}}") == (
            "busybox\n"
        )
        assert pydock.ok("images", "-f", "reference=busy*", "--format", "{{.Tag}}") == "latest\n"
        assert pydock.ok("images", "-q", "-f", "reference=other*") == ""
        assert pydock.ok("images", "-q", "-f", "label=maintainer") == ""
        fails(pydock.run("images", "-f", "before=busybox"), "listing images", "'before'")
    finally:
        pydock.run("rm", "-f", "f-web", "f-db", "f-done")


def test_labels_and_env_files(one: Workspace, tmp_path: Path) -> None:
    pydock = one.pydock
    env_file = tmp_path / "env"
    env_file.write_text('# comment\n\nFIRST=1\nSECOND=from file\nQUOTED="kept"\n')
    out = pydock.ok(
        "run", "--rm", "--env-file", str(env_file), "-e", "SECOND=from flag", "-l", "a=b",
        "busybox", "sh", "-c", 'echo "$FIRST|$SECOND|$QUOTED"',
    )  # fmt: skip
    assert out == '1|from flag|"kept"\n'
    pydock.ok("create", "--name", "lab", "--label", "x=1", "--label", "y=two=2", "busybox", "true")
    try:
        document = json.loads(pydock.ok("inspect", "lab"))[0]
        assert document["Config"]["Labels"] == {"x": "1", "y": "two=2"}
        assert pydock.ok("ps", "-a", "-f", "name=lab", "--format", "{{.Labels}}") == "x=1,y=two=2\n"
    finally:
        pydock.run("rm", "-f", "lab")
    fails(pydock.run("run", "--rm", "--env-file", str(tmp_path / "none"), "busybox", "true"),
          "reading env file", "no such file")  # fmt: skip
    bad = tmp_path / "bad"
    bad.write_text("GOOD=1\nBAD NAME=2\n")
    fails(pydock.run("create", "--env-file", str(bad), "busybox", "true"), "line 2")
    fails(pydock.run("create", "-l", "=v", "busybox", "true"), "parsing --label")
    assert "lab" not in pydock.ok("ps", "-a", "--format", "{{.Names}}")


def test_logs_tail_and_ps_size(one: Workspace) -> None:
    pydock = one.pydock
    script = "seq 1 5; echo oops >&2; head -c 5000 /dev/zero > /big; printf unfinished"
    assert pydock.run("run", "--name", "tail", "busybox", "sh", "-c", script).status == 0
    try:
        done = pydock.run("logs", "--tail", "2", "tail")
        assert (done.status, done.out, done.err) == (0, "5\nunfinished", "oops\n")
        assert pydock.ok("logs", "-n", "0", "tail") == ""
        assert pydock.run("logs", "--tail", "all", "tail").out == "1\n2\n3\n4\n5\nunfinished"
        assert pydock.run("logs", "--tail", "100", "tail").out == "1\n2\n3\n4\n5\nunfinished"
        fails(pydock.run("logs", "--tail", "x", "tail"), "reading logs", "--tail")

        size = pydock.ok("ps", "-a", "-s", "-f", "name=tail", "--format", "{{.Size}}")
        assert size.startswith("5kB (virtual ") and size.endswith("MB)\n"), size
        table = pydock.ok("ps", "-a", "--size", "-f", "name=tail").splitlines()
        assert table[0].split()[-1] == "SIZE" and "5kB (virtual" in table[1]
    finally:
        pydock.run("rm", "-f", "tail")


def test_prune_verbs(one: Workspace) -> None:
    pydock = one.pydock
    keep = pydock.ok("create", "--name", "p-keep", "busybox", "true").strip()
    gone = pydock.ok("create", "--name", "p-gone", "busybox", "sh", "-c", "echo x > /f").strip()
    pydock.ok("start", "-a", "p-gone")
    dangling = pydock.ok("commit", "p-gone").strip()
    pydock.ok("commit", "p-gone", "extra:1")
    try:
        # No prompt anybody could answer: refused, and nothing removed.
        fails(pydock.run("container", "prune"), "pruning containers", "use -f")
        fails(pydock.run("system", "prune"), "pruning", "use -f")
        assert len(pydock.ok("ps", "-aq").split()) == 2

        out = pydock.ok("image", "prune", "-f")
        assert out.startswith("Deleted Images:\n") and f"deleted: {dangling}\n" in out
        assert out.splitlines()[-1].startswith("Total reclaimed space: ")
        assert dangling[7:19] not in pydock.ok("images", "-q")
        assert pydock.ok("images", "-q", "-f", "reference=extra")  # tagged: kept without -a

        pydock.ok("rm", "p-keep")
        out = pydock.ok("container", "prune", "-f")
        assert out.splitlines()[:3] == ["Deleted Containers:", gone, ""]
        assert pydock.ok("ps", "-aq") == ""

        keep = pydock.ok("create", "--name", "p-keep", "busybox", "true").strip()
        out = pydock.ok("image", "prune", "-a", "-f")
        assert "untagged: extra:1\n" in out and "busybox" not in out  # busybox is in use
        assert pydock.ok("images", "--format", "{{.Repository}}") == "busybox\n"

        out = pydock.ok("system", "prune", "-f")
        assert out.splitlines()[:2] == ["Deleted Containers:", keep]
        assert pydock.ok("images", "--format", "{{.Repository}}") == "busybox\n"  # not -a
        assert pydock.ok("system", "prune", "-f") == "Total reclaimed space: 0B\n"
    finally:
        pydock.run("rm", "-f", "p-keep", "p-gone")
