"""The expert tab: where in the JSON text a problem is. `line_of` finds the line of the value a JSON pointer
names (a small scanner: the standard parser keeps no positions); `problem_lines` says in Chinese where text is
not JSON."""

from __future__ import annotations

import json
import re

_MESSAGES = {
    "Expecting value": "应为一个值",
    "Expecting property name enclosed in double quotes": "应为用双引号括起的键名（最后一项后不能有逗号）",
    "Expecting ',' delimiter": "缺少逗号",
    "Expecting ':' delimiter": "缺少冒号",
    "Unterminated string starting at": "字符串缺少结尾的双引号",
    "Extra data": "JSON 结束后还有多余内容",
    "Invalid control character at": "字符串中有换行或控制字符",
}
_TOKEN = re.compile(
    r'\s*(?:(?P<open>[{\[])|(?P<close>[}\]])|(?P<comma>,)|(?P<colon>:)|(?P<string>"(?:[^"\\]|\\.)*")|(?P<atom>[^\s,:{}\[\]"]+))',
    re.S,
)


def problem_lines(text: str) -> list[tuple[int, str]]:
    """[(line, Chinese message)] when `text` is not JSON, else []."""
    try:
        json.loads(text)
    except RecursionError:  # nested too deeply to parse: the validation's own message says so, at line 1
        return []
    except json.JSONDecodeError as error:
        what = next((zh for en, zh in _MESSAGES.items() if error.msg.startswith(en)), "不是合法的 JSON")
        return [(error.lineno, f"JSON 格式错误：第 {error.lineno} 行第 {error.colno} 列，{what}")]
    return []


def line_of(text: str, pointer: str) -> int | None:
    """The line (1-based) where the value at `pointer` starts, or None when the text has no such value."""
    wanted = (
        [part.replace("~1", "/").replace("~0", "~") for part in pointer.strip("/").split("/")]
        if pointer.strip("/")
        else []
    )
    stack: list[list[object]] = []  # per open container: [kind, current key or index]
    key: str | None = None
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:
            break
        position = match.end()
        start = match.start() + len(match.group(0)) - len(match.group(0).lstrip())
        kind = match.lastgroup
        if kind in ("open", "string", "atom") and not (
            kind == "string" and stack and stack[-1][0] == "{" and key is None
        ):
            path = [str(frame[1]) for frame in stack]
            if path == wanted:
                return text.count("\n", 0, start) + 1
            if kind == "open":
                stack.append([match.group("open"), 0 if match.group("open") == "[" else ""])
                key = None
            continue
        if kind == "string":  # an object's key
            key = json.loads(match.group("string"))
            stack[-1][1] = key
        elif kind == "comma" and stack:
            if stack[-1][0] == "[":
                stack[-1][1] = int(str(stack[-1][1])) + 1
            key = None
        elif kind == "close" and stack:
            stack.pop()
            key = "" if stack and stack[-1][0] == "{" else None
    return None
