"""The clause editor's tiny markup and the clause's Jinja/HTML form, both ways (pure).

A clause is a title and a body. In the body each line is a paragraph, lines starting "1." (any number) make a
numbered list and lines starting "-" a bulleted one; **text** is bold; {{ buyer.name }} is a variable, one of those
the editor offers (the deal's data the agreement is rendered with). Everything else is text: HTML is escaped and so
are braces, so nothing typed can become a tag, a script or a template statement - the only template syntax in the
result is the variables, and they render escaped in the agreement sandbox (`app/pdf/render.py`).

`to_clause` writes the clause as the shipped clauses are written (`agreement_templates/clauses/*.html.j2`);
`from_clause` reads such a clause back, and answers None for one in any other form (edited as text elsewhere)."""

from __future__ import annotations

import html
import re
from collections.abc import Collection
from dataclasses import dataclass

from markupsafe import escape

MAX_TITLE = 40
MAX_BODY = 20_000
HEAD = '<section class="article">\n  <h2>{{ clause_no }}\u3000'
TAIL = "</section>\n"
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*\}\}")
_NUMBERED = re.compile(r"^\d{1,3}[.．]\s*")
_BULLET = re.compile(r"^[-－]\s*")
_TEMPLATE_SYNTAX = ("{%", "%}", "{#", "#}", "{{", "}}")


class ClauseMarkupError(ValueError):
    """Markup that cannot become a clause; `problems` says why, in Chinese."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("；".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ClauseText:
    title: str
    body: str  # the markup


def _text(value: str) -> str:
    """Plain text as clause HTML: escaped, and braces as character references (never template syntax)."""
    return str(escape(value)).replace("{", "&#123;").replace("}", "&#125;")


def _inline(line: str, variables: Collection[str], problems: list[str]) -> str:
    """One line's text: escaped, **bold** (around text and variables), {{ variables }} among `variables`."""
    parts = line.split("**")
    if len(parts) % 2 == 0:
        problems.append(f"加粗标记 ** 没有成对：{line[:20]}")
        return _variables(line, variables, problems)
    shown = [_variables(part, variables, problems) for part in parts]
    return "".join(f"<strong>{part}</strong>" if index % 2 else part for index, part in enumerate(shown))


def _variables(text: str, variables: Collection[str], problems: list[str]) -> str:
    out: list[str] = []
    at = 0
    for match in _VARIABLE.finditer(text):
        out.append(_plain(text[at : match.start()], problems))
        name = match.group(1)
        if name in variables:
            out.append("{{ " + name + " }}")
        else:
            problems.append(f"未知变量 {{{{ {name} }}}}，请从变量列表中选择")
        at = match.end()
    out.append(_plain(text[at:], problems))
    return "".join(out)


def _plain(text: str, problems: list[str]) -> str:
    if any(mark in text for mark in _TEMPLATE_SYNTAX):
        problems.append("正文不能含有模板语法（{% %}、{# #} 或不完整的 {{ }}）；变量请从列表中选择")
    return _text(text)


def _kind(line: str) -> tuple[str, str]:
    """("ol" | "ul" | "p", the line's text without its list mark)."""
    if _NUMBERED.match(line):
        return "ol", _NUMBERED.sub("", line, count=1)
    if _BULLET.match(line):
        return "ul", _BULLET.sub("", line, count=1)
    return "p", line


def to_clause(clause: ClauseText, variables: Collection[str]) -> str:
    """The clause's template source; ClauseMarkupError lists every problem (empty title or body, unknown
    variable, template syntax, unpaired **)."""
    problems: list[str] = []
    title = " ".join(clause.title.split())
    if not title:
        problems.append("请填写条款标题")
    elif len(title) > MAX_TITLE:
        problems.append(f"条款标题最多 {MAX_TITLE} 个字")
    if any(mark in title for mark in ("{", "}", "**")):
        problems.append("条款标题只能是文字（不能含有变量、{ } 或 **）")
    if len(clause.body) > MAX_BODY:
        problems.append(f"正文最多 {MAX_BODY} 个字")
    lines = [line.strip() for line in clause.body.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        problems.append("请填写条款正文")
    out = [HEAD + _text(title) + "</h2>\n"]
    open_list = ""
    for line in lines:
        kind, text = _kind(line)
        if open_list and kind != open_list:
            out.append(f"  </{open_list}>\n")
            open_list = ""
        if kind == "p":
            out.append(f"  <p>{_inline(text, variables, problems)}</p>\n")
            continue
        if not open_list:
            out.append(f"  <{kind}>\n")
            open_list = kind
        out.append(f"    <li>{_inline(text, variables, problems)}</li>\n")
    if open_list:
        out.append(f"  </{open_list}>\n")
    out.append(TAIL)
    if problems:
        raise ClauseMarkupError(list(dict.fromkeys(problems)))
    return "".join(out)


_LINE = re.compile(r"^  <p>(.*)</p>$|^    <li>(.*)</li>$|^  <(ol|ul)>$|^  </(ol|ul)>$")
_STRONG = re.compile(r"<strong>(.*?)</strong>")


def _markup(inline: str) -> str:
    """Clause HTML of one line back to markup (bold and variables kept, text unescaped)."""
    return html.unescape(_STRONG.sub(lambda m: f"**{m.group(1)}**", inline))


def from_clause(source: str, variables: Collection[str]) -> ClauseText | None:
    """The markup of a clause written as `to_clause` writes it; None for any other clause (a tag or template
    syntax the markup does not have, an unknown variable): `to_clause` of the result must give `source` again."""
    if not source.startswith(HEAD) or not source.rstrip("\n").endswith(TAIL.rstrip("\n")):
        return None
    head, _, rest = source[len(HEAD) :].partition("</h2>\n")
    title = html.unescape(head)
    body: list[str] = []
    number, kind = 0, ""
    for line in rest.rstrip("\n").split("\n")[:-1]:
        match = _LINE.match(line)
        if match is None:
            return None
        paragraph, item, opened, closed = match.groups()
        if opened:
            number, kind = 0, opened
        elif item is not None:
            if not kind:
                return None
            number += 1
            body.append(f"{number}. {_markup(item)}" if kind == "ol" else f"- {_markup(item)}")
        elif paragraph is not None:
            body.append(_markup(paragraph))
        elif closed is None:
            return None
        else:
            kind = ""
    clause = ClauseText(title, "\n".join(body))
    try:
        again = to_clause(clause, variables)
    except ClauseMarkupError:
        return None
    return clause if again == (source if source.endswith("\n") else source + "\n") else None
