"""Config problems in plain Chinese for the studio's fields: the structural ones (JSON Schema, English) said as
what is allowed; the semantic checks already speak Chinese."""

from __future__ import annotations

import re

from app.domain.problems import Problem
from app.studio.catalog import Catalog

_SCHEMA = "不符合城市配置结构定义"
_RULES = (
    (re.compile(r"is not of type '(integer|number)'"), "请填写数字"),
    (re.compile(r"is not of type 'string'"), "请填写文字"),
    (re.compile(r"is not of type 'boolean'"), "请选择是或否"),
    (re.compile(r"is less than the minimum of (\S+)"), "不得小于 {0}"),
    (re.compile(r"is greater than the maximum of (\S+)"), "不得大于 {0}"),
    (re.compile(r"'(\w+)' is a required property"), "缺少必填项 {0}"),
    (re.compile(r"is not one of \[(.*)\]"), "只能选：{0}"),
    (re.compile(r"should be non-empty|is too short|\[\] should be non-empty"), "至少填写一项"),
    (re.compile(r"has non-unique elements"), "有重复的项"),
    (re.compile(r"Additional properties are not allowed \((.*) (?:was|were) unexpected\)"), "不认识的设置项：{0}"),
    (re.compile(r"does not match"), "格式不正确"),
    (
        re.compile(r"is valid under each of|is not valid under any of the given schemas"),
        "须且只能填写其中一种（如比例、固定金额或余款三选一）",
    ),
)


def schema_message(message_en: str, fallback: str = "填写有误，不符合结构定义") -> str:
    """A JSON Schema message (English) said in Chinese as what is allowed."""
    for pattern, zh in _RULES:
        match = pattern.search(message_en)
        if match:
            return zh.format(*(group.replace("'", "") for group in match.groups()))
    return fallback


_UNKNOWN_BANK = re.compile(r"^未知银行 (\S+)$")
_UNKNOWN_CLAUSE = re.compile(r"^条款 (\S+) 不存在$")


def plain(problem: Problem, catalog: Catalog | None = None) -> str:
    """The problem as the page says it; with the catalog, an unknown bank or clause also lists the choices."""
    if catalog is not None and (match := _UNKNOWN_BANK.match(problem.message)):
        return f"未知银行：{match.group(1)}（可选：{catalog.bank_choices_text()}）"
    if catalog is not None and (match := _UNKNOWN_CLAUSE.match(problem.message)):
        return f"未知条款：{match.group(1)}（可选：{'、'.join(catalog.clauses)}）"
    if problem.message != _SCHEMA:
        return problem.message
    return schema_message(problem.message_en, "填写有误，不符合配置要求")
