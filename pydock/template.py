"""Go-template ``--format`` strings, the forms Docker users write, evaluated on JSON-like data.

Supported: text and ``{{ }}`` actions with ``{{-``/``-}}`` trimming; field paths (``.State.Pid``,
``.``, ``$``); string, number and ``true``/``false`` literals; pipelines (``{{.Names | upper}}``);
``{{if}}``/``{{else}}``/``{{end}}``, ``{{range}}`` (with ``$k, $v :=`` or ``$v :=``), ``{{with}}``;
variables; the functions ``json``, ``index``, ``len``, ``print``, ``println``, ``printf``,
``join``, ``split``, ``upper``, ``lower``, ``title``, ``eq``, ``ne``, ``not``, ``and``, ``or``.
Docker's ``table`` prefix is handled by :func:`render_rows`. A mapping key that is missing
fails as Go's ``missingkey=error`` does in ``docker inspect -f``; values print as Go prints
them (``map[k:v]``, ``[a b]``, ``<no value>``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydock.errors import PydockError

NO_VALUE = "<no value>"


class TemplateError(PydockError):
    """A ``--format`` template that does not parse or cannot be executed on the data."""


class Row(dict[str, object]):
    """A row of ``ps``/``images``: its fields, plus methods called with arguments (``.Label``)."""

    def __init__(
        self,
        fields: Mapping[str, object],
        methods: Mapping[str, Callable[..., object]] | None = None,
    ) -> None:
        super().__init__(fields)
        self.methods = dict(methods or {})


# ---------------------------------------------------------------- lexing

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(
    r"""\s*(?:
    (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<declare>:=)
  | (?P<pipe>\|)
  | (?P<comma>,)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.X,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(source: str, line: int) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while position < len(source):
        if source[position:].strip() == "":
            break
        match = _TOKEN.match(source, position)
        if match is None or match.lastgroup is None:
            raise TemplateError(
                f"template: :{line}: unexpected {source[position:].strip()[:1]!r} in command"
            )
        found.append(_Token(match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return found


# ---------------------------------------------------------------- the tree


@dataclass
class _Text:
    text: str


@dataclass
class _Action:
    """``{{ pipeline }}``: print the value."""

    pipeline: list[list[_Token]]
    declare: list[str]
    line: int
    source: str


@dataclass
class _Block:
    """``if``, ``range`` or ``with``, with its body and ``else`` part."""

    kind: str
    head: _Action
    body: list[object] = field(default_factory=list)
    otherwise: list[object] = field(default_factory=list)
    chained: bool = False  # an ``else if``: closed by the outer block's ``end``


@dataclass(frozen=True)
class Template:
    """A parsed template; :meth:`render` executes it on data."""

    nodes: tuple[object, ...]

    def render(self, data: object) -> str:
        """The text the template makes of ``data``."""
        parts: list[str] = []
        _run(list(self.nodes), data, {"$": data}, parts)
        return "".join(parts)


def parse(text: str) -> Template:
    """Parse a Go template; :class:`TemplateError` names the line, as Go's messages do."""
    root: list[object] = []
    stack: list[tuple[_Block, bool]] = []  # (block, in its else part)

    def target() -> list[object]:
        if not stack:
            return root
        block, in_else = stack[-1]
        return block.otherwise if in_else else block.body

    position = 0
    pending_trim = False
    for match in _ACTION.finditer(text):
        before = text[position : match.start()]
        if pending_trim:
            before = before.lstrip()
        if match.group(1):
            before = before.rstrip()
        if before:
            target().append(_Text(before))
        pending_trim = bool(match.group(3))
        position = match.end()
        line = text.count("\n", 0, match.start()) + 1
        inner = match.group(2).strip()
        if inner.startswith("/*"):
            continue
        words = inner.split(None, 1)
        keyword = words[0] if words else ""
        rest = words[1] if len(words) > 1 else ""
        if keyword in ("if", "range", "with"):
            block = _Block(keyword, _pipeline(rest, line, inner))
            target().append(block)
            stack.append((block, False))
        elif keyword == "else":
            if not stack or stack[-1][1]:
                raise TemplateError(f"template: :{line}: unexpected {{{{else}}}}")
            block = stack.pop()[0]
            if rest.startswith("if "):
                nested = _Block("if", _pipeline(rest[3:], line, inner), chained=True)
                block.otherwise.append(nested)
                stack.append((block, True))
                stack.append((nested, False))
            else:
                stack.append((block, True))
        elif keyword == "end":
            if not stack:
                raise TemplateError(f"template: :{line}: unexpected {{{{end}}}}")
            closed = stack.pop()[0]
            while closed.chained and stack:
                closed = stack.pop()[0]
        elif not inner:
            raise TemplateError(f"template: :{line}: missing value for command")
        else:
            target().append(_pipeline(inner, line, inner))
    tail = text[position:]
    if "{{" in tail:
        raise TemplateError(f"template: :{text.count(chr(10), 0, position) + 1}: unclosed action")
    if pending_trim:
        tail = tail.lstrip()
    if tail:
        target().append(_Text(tail))
    if stack:
        raise TemplateError(f"template: :{text.count(chr(10)) + 1}: unexpected EOF")
    return Template(tuple(root))


def _pipeline(source: str, line: int, whole: str) -> _Action:
    tokens = _tokens(source, line)
    declare: list[str] = []
    if any(token.kind == "declare" for token in tokens):
        names = []
        while tokens and tokens[0].kind in ("var", "comma"):
            token = tokens.pop(0)
            if token.kind == "var":
                names.append(token.text)
        if not tokens or tokens[0].kind != "declare":
            raise TemplateError(f"template: :{line}: unexpected := in {whole}")
        tokens.pop(0)
        declare = names
    commands: list[list[_Token]] = [[]]
    for token in tokens:
        if token.kind == "pipe":
            commands.append([])
        else:
            commands[-1].append(token)
    if any(not command for command in commands):
        raise TemplateError(f"template: :{line}: missing value for command")
    for command in commands:
        head = command[0]
        if head.kind == "ident" and head.text not in _FUNCTIONS and head.text not in _LITERALS:
            raise TemplateError(f'template: :{line}: function "{head.text}" not defined')
    return _Action(commands, declare, line, whole)


# ---------------------------------------------------------------- execution


def _run(nodes: list[object], dot: object, scope: dict[str, object], out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Action):
            value = _evaluate(node, dot, scope)
            if node.declare:
                scope[node.declare[0]] = value
            else:
                out.append(show(value))
        elif isinstance(node, _Block):
            _run_block(node, dot, scope, out)


def _run_block(block: _Block, dot: object, scope: dict[str, object], out: list[str]) -> None:
    head = block.head
    value = _evaluate(head, dot, scope)
    if block.kind == "if":
        _run(block.body if truth(value) else block.otherwise, dot, dict(scope), out)
    elif block.kind == "with":
        if truth(value):
            inner = dict(scope)
            if head.declare:
                inner[head.declare[0]] = value
            _run(block.body, value, inner, out)
        else:
            _run(block.otherwise, dot, dict(scope), out)
    else:
        if isinstance(value, Mapping):
            items: list[tuple[object, object]] = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, Sequence) and not isinstance(value, str):
            items = list(enumerate(value))
        elif value is None:
            items = []
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        else:
            raise _exec_error(head, f"range can't iterate over {show(value)}")
        if not items:
            _run(block.otherwise, dot, dict(scope), out)
        for key, element in items:
            inner = dict(scope)
            if len(head.declare) == 1:
                inner[head.declare[0]] = element
            elif len(head.declare) >= 2:
                inner[head.declare[0]], inner[head.declare[1]] = key, element
            _run(block.body, element, inner, out)


def _exec_error(action: _Action, why: str, at: str | None = None) -> TemplateError:
    where = at or action.source
    return TemplateError(f'template: :{action.line}: executing "" at <{where}>: {why}')


def _evaluate(action: _Action, dot: object, scope: dict[str, object]) -> object:
    value: object = _NOTHING
    for command in action.pipeline:
        value = _command(action, command, dot, scope, value)
    return value


class _Nothing:
    pass


_NOTHING = _Nothing()
_LITERALS: dict[str, object] = {"true": True, "false": False, "nil": None}


def _command(
    action: _Action, command: list[_Token], dot: object, scope: dict[str, object], piped: object
) -> object:
    head, rest = command[0], command[1:]
    args = [_operand(action, token, dot, scope) for token in rest]
    if not isinstance(piped, _Nothing):
        args.append(piped)
    if head.kind == "ident" and head.text in _FUNCTIONS:
        try:
            return _FUNCTIONS[head.text](*args)
        except TemplateError:
            raise
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise _exec_error(action, f"error calling {head.text}: {exc}", head.text) from exc
    if head.kind in ("field", "var"):
        return _path(action, head.text, dot, scope, args)
    if args:
        raise _exec_error(action, f"can't give argument to non-function {head.text}")
    return _operand(action, head, dot, scope)


def _operand(action: _Action, token: _Token, dot: object, scope: dict[str, object]) -> object:
    if token.kind == "string":
        return json.loads(token.text) if token.text.startswith('"') else token.text[1:-1]
    if token.kind == "number":
        return float(token.text) if "." in token.text else int(token.text)
    if token.kind == "ident" and token.text in _LITERALS:
        return _LITERALS[token.text]
    if token.kind in ("field", "var"):
        return _path(action, token.text, dot, scope, [])
    raise TemplateError(f"template: :{action.line}: unexpected {token.text!r} in operand")


def _path(
    action: _Action, text: str, dot: object, scope: dict[str, object], args: list[object]
) -> object:
    if text.startswith("$"):
        name, _, fields = text.partition(".")
        if name not in scope:
            raise TemplateError(f"template: :{action.line}: undefined variable: {name}")
        value = scope[name]
        names = fields.split(".") if fields else []
    else:
        value = dot
        names = [part for part in text.split(".") if part]
    for position, name in enumerate(names):
        last = position == len(names) - 1
        if isinstance(value, Row) and name in value.methods:
            value = value.methods[name](*(args if last else []))
            if last:
                return value
            continue
        if isinstance(value, Mapping):
            if name not in value:
                raise _exec_error(action, f'map has no entry for key "{name}"', text)
            value = value[name]
        elif value is None:
            raise _exec_error(action, f"nil pointer evaluating interface {{}}.{name}", text)
        else:
            raise _exec_error(action, f"can't evaluate field {name} in type {_type(value)}", text)
    if args:
        raise _exec_error(action, f"{text} is not a method but has arguments", text)
    return value


def _type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    return type(value).__name__


# ---------------------------------------------------------------- values and functions


def show(value: object) -> str:
    """A value as Go's ``fmt`` prints it in a template."""
    if value is None or isinstance(value, _Nothing):
        return NO_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_inner(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_inner(element) for element in value) + "]"
    return str(value)


def _inner(value: object) -> str:
    return "<nil>" if value is None else show(value)


def truth(value: object) -> bool:
    """Go's truth: false, 0, nil, and empty strings, lists and maps are false."""
    if value is None or isinstance(value, _Nothing):
        return False
    if isinstance(value, bool | int | float | str | list | tuple | dict):
        return bool(value)
    return True


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _index(value: object, *keys: object) -> object:
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list | tuple | str) and isinstance(key, int):
            if not 0 <= key < len(value):
                raise IndexError(f"index out of range: {key}")
            value = value[key]
        elif value is None:
            return None
        else:
            raise TypeError(f"can't index item of type {_type(value)}")
    return value


def _print(*values: object) -> str:
    # Go's fmt.Sprint puts spaces only between operands that are not strings.
    text = ""
    for position, value in enumerate(values):
        if position and not isinstance(value, str) and not isinstance(values[position - 1], str):
            text += " "
        text += show(value)
    return text


def _printf(pattern: object, *values: object) -> str:
    queue = list(values)

    def one(match: re.Match[str]) -> str:
        verb = match.group(0)
        if verb == "%%":
            return "%"
        if not queue:
            return f"%!{verb[-1]}(MISSING)"
        value = queue.pop(0)
        if verb.endswith("q"):
            return json.dumps(show(value))
        if verb.endswith("d") and isinstance(value, int | float):
            return str(int(value))
        return show(value)

    return re.sub(r"%[-+# 0-9.]*[a-zA-Z%]", one, str(pattern))


def _join(items: object, separator: object) -> str:
    if not isinstance(items, list | tuple):
        raise TypeError(f"wrong type for value; expected []string; got {_type(items)}")
    return str(separator).join(show(item) for item in items)


def _len(value: object) -> int:
    if isinstance(value, str | list | tuple | dict):
        return len(value)
    raise TypeError(f"len of type {_type(value)}")


def _and(*values: object) -> object:
    for value in values:
        if not truth(value):
            return value
    return values[-1]


def _or(*values: object) -> object:
    for value in values:
        if truth(value):
            return value
    return values[-1]


_FUNCTIONS: dict[str, Callable[..., object]] = {
    "json": _json,
    "index": _index,
    "len": _len,
    "print": _print,
    "println": lambda *values: " ".join(show(v) for v in values) + "\n",
    "printf": _printf,
    "join": _join,
    "split": lambda text, separator: str(text).split(str(separator)),
    "upper": lambda text: show(text).upper(),
    "lower": lambda text: show(text).lower(),
    "title": lambda text: show(text).title(),
    "eq": lambda first, *others: any(first == other for other in others),
    "ne": lambda first, second: first != second,
    "not": lambda value: not truth(value),
    "and": _and,
    "or": _or,
}


# ---------------------------------------------------------------- Docker's table form


@contextmanager
def template_step(doing: str) -> Iterator[None]:
    """A template error in the body becomes ``DOING: template: ...`` (the CLI's one line)."""
    try:
        yield
    except TemplateError as exc:
        raise TemplateError(f"{doing}: {exc}") from exc


def is_table(text: str) -> bool:
    """Does ``--format`` ask for a table with a header (``table`` or ``table TEMPLATE``)?"""
    return text == "table" or text.startswith(("table ", "table\t"))


def render_rows(text: str, rows: Sequence[Row], headers: Mapping[str, str], default: str) -> str:
    """``ps``/``images --format``: each row through the template; ``table`` adds a header.

    ``headers`` names every field a row has, with its column title in Docker's words;
    ``default`` is the template of the plain table.
    """
    table = is_table(text)
    source = text[len("table") :].lstrip(" ") if table else text
    if not source:
        source = default[len("table") :].lstrip(" ") if is_table(default) else default
    template = parse(_unescape(source))
    lines = [template.render(row) for row in rows]
    if not table:
        return "".join(line + "\n" for line in lines)
    header = Row(headers, {"Label": lambda _key: "LABEL"})
    return tabulate([template.render(header), *lines])


def _unescape(text: str) -> str:
    # Docker accepts the two characters \t and \n typed in a shell for a tab and a new line.
    return text.replace("\\t", "\t").replace("\\n", "\n")


def tabulate(lines: Sequence[str], *, minimum: int = 10, padding: int = 3) -> str:
    """Tab-separated cells aligned in columns, as Go's tabwriter(10, 1, 3, ' ') writes them."""
    split = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for cells in split:
        for column, cell in enumerate(cells[:-1]):
            widths[column] = max(widths.get(column, 0), len(cell) + padding, minimum)
    out = []
    for cells in split:
        padded = [cell.ljust(widths[column]) for column, cell in enumerate(cells[:-1])]
        out.append("".join(padded) + cells[-1])
    return "".join(line + "\n" for line in out)
