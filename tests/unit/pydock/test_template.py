"""The Go-template engine of ``--format``: the forms Docker users write, and Go's errors."""

from __future__ import annotations

import pytest

from pydock.template import Row, TemplateError, parse, render_rows, tabulate

DOC: dict[str, object] = {
    "Name": "/web",
    "State": {"Pid": 42, "Running": True, "Status": "running"},
    "Config": {"Labels": {"b": "2", "a": "1"}, "Env": ["X=1", "Y=2"], "Cmd": None},
    "Mounts": [{"Source": "/s", "Destination": "/d"}],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{.State.Pid}}", "42"),
        ("pid={{ .State.Pid }}!", "pid=42!"),
        ("{{json .Config.Labels}}", '{"b":"2","a":"1"}'),
        ("{{json .Config.Cmd}}", "null"),
        ("{{.Config.Labels}}", "map[a:1 b:2]"),
        ("{{.Config.Env}}", "[X=1 Y=2]"),
        ("{{.Config.Cmd}}", "<no value>"),
        ("{{.State.Running}}", "true"),
        ("{{range .Config.Env}}<{{.}}>{{end}}", "<X=1><Y=2>"),
        ("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}", "0:X=1 1:Y=2 "),
        ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a=1;b=2;"),
        ("{{range .Mounts}}{{.Source}}->{{.Destination}}{{end}}", "/s->/d"),
        ("{{range .Config.Cmd}}x{{else}}none{{end}}", "none"),
        ('{{index .Config.Labels "a"}}', "1"),
        ("{{index .Config.Env 1}}", "Y=2"),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ('{{if eq .State.Status "exited"}}E{{else if eq .State.Status "running"}}R{{end}}', "R"),
        ("{{with .State}}{{.Pid}}{{end}}", "42"),
        ("{{.Name | upper}}", "/WEB"),
        ("{{println .Name}}", "/web\n"),
        ("{{len .Config.Env}} {{join .Config.Env \",\"}}", "2 X=1,Y=2"),
        ('{{printf "%s:%d" .Name .State.Pid}}', "/web:42"),
        ("a  {{- .Name -}}  b", "a/webb"),
        ("{{/* a comment */}}x", "x"),
        ("{{$n := .Name}}{{$n}}", "/web"),
        ("{{.}}", "map[Config:map[Cmd:<nil> Env:[X=1 Y=2] Labels:map[a:1 b:2]] Mounts:[map["
         "Destination:/d Source:/s]] Name:/web State:map[Pid:42 Running:true Status:running]]"),
    ],
)  # fmt: skip
def test_forms(text: str, expected: str) -> None:
    assert parse(text).render(DOC) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{.Nope}}", 'executing "" at <.Nope>: map has no entry for key "Nope"'),
        ("{{.State.Pid.X}}", "can't evaluate field X"),
        ("{{nosuch .Name}}", 'function "nosuch" not defined'),
        ("{{if .Name}}x", "unexpected EOF"),
        ("x{{end}}", "unexpected {{end}}"),
        ("{{.Name", "unclosed action"),
        ("{{range .Name}}{{end}}", "range can't iterate over /web"),
        ("{{$x}}", "undefined variable: $x"),
    ],
)
def test_errors_are_one_line_as_go_words_them(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse(text).render(DOC)
    assert str(caught.value).startswith("template: :1")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_table_header_and_alignment() -> None:
    rows = [
        Row({"ID": "abc", "Names": "n1"}, {"Label": lambda key: f"v-{key}"}),
        Row({"ID": "abcdef123456789", "Names": "longer"}, {"Label": lambda key: ""}),
    ]
    headers = {"ID": "CONTAINER ID", "Names": "NAMES"}
    out = render_rows('table {{.ID}}\\t{{.Names}}\t{{.Label "k"}}', rows, headers, "")
    assert [line.rstrip() for line in out.splitlines()] == [
        "CONTAINER ID      NAMES     LABEL",
        "abc               n1        v-k",
        "abcdef123456789   longer",
    ]
    assert render_rows("{{.Names}}", rows, headers, "") == "n1\nlonger\n"
    assert render_rows("table", [], headers, "table {{.ID}}") == "CONTAINER ID\n"
    assert tabulate(["a\tb", "ccc\td"], minimum=0, padding=1) == "a   b\nccc d\n"
