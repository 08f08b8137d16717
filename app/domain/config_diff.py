"""The reviewer's diff of two city configs in plain language: field by field, with Chinese labels and units
(money in yuan, rates in %, durations in days or working days), fees and form fields matched by name, clauses
and banks as what was added or removed. The raw text diff stays next to it (`app.cities.versions`).

The labels live here, in one place (`LABELS`, `ENUMS`): the schema's own titles are English or missing today."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.domain.money import format_yuan

LABELS = {
    "name": "城市名称",
    "admin_code": "行政区划代码",
    "extends": "继承自",
    "status": "配置中的上线状态（status）",
    "timezone": "时区",
    "workflow": "工作流",
    "authority": "监管部门",
    "template": "协议模板",
    "parameters": "参数",
    "deadlines": "时限",
    "custody": "托管金额",
    "min_fen": "下限",
    "max_fen": "上限",
    "payer": "付款方",
    "designated": "指定付款人",
    "wrong_payer": "非指定付款人入金",
    "kind": "收费方式",
    "amount_fen": "固定金额",
    "bps": "费率",
    "share_bps": "比例",
    "remainder": "余款",
    "charge_on": "收取时点",
    "on_failure": "交易失败时",
    "event": "放款事件",
    "label": "名称",
    "conditions": "放款条件",
    "operation": "操作",
    "above_fen": "金额超过",
    "approvers": "审批人数",
    "sections": "表单分组",
    "title": "标签",
    "description": "帮助文字",
    "type": "类型",
    "x-order": "顺序",
    "x-section": "分组",
    "x-widget": "控件",
    "required": "必填",
}
ENUMS = {
    "payer": {
        "buyer": "买方",
        "seller": "卖方",
        "tenant": "承租人",
        "landlord": "出租人",
        "owner": "业主",
        "platform": "平台",
    },
    "kind": {"fixed": "固定金额", "rate": "按费率"},
    "charge_on": {"release": "每次放款时", "arrival": "足额到账时"},
    "on_failure": {"refund": "随退款退回", "keep": "不退"},
    "wrong_payer": {"return": "自动原路退回", "review": "人工审核"},
    "operation": {"payout": "放款", "refund": "退款", "unfreeze": "解冻"},
    "type": {"string": "文字", "integer": "整数", "number": "数字", "boolean": "是/否"},
}
_MONEY = {"min_fen", "max_fen", "amount_fen", "above_fen"}
_RATES = {"bps", "share_bps"}
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_UNITS = ("年", "个月", "周", "天", "小时", "分钟", "秒")


@dataclass(frozen=True)
class WorkflowNames:
    """A workflow version's Chinese name, its events' and its parameters' labels."""

    name: str
    events: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Names:
    """Chinese names of the codes a config names (from the product registry, the bank configs, the served
    clauses and workflows)."""

    products: Mapping[str, str]
    banks: Mapping[str, str]
    clauses: Mapping[str, str] = field(default_factory=dict)  # name -> its title (南京特别约定（nanjing_notice）)
    workflows: Mapping[str, WorkflowNames] = field(default_factory=dict)  # "resale_escrow@3" -> names

    def product(self, code: str) -> str:
        return self.products.get(code, code)

    def bank(self, code: str) -> str:
        return self.banks.get(code, code)

    def clause(self, name: str) -> str:
        return self.clauses.get(name, name)

    def workflow(self, value: Any) -> WorkflowNames | None:
        return self.workflows.get(f"{value.get('id')}@{value.get('version')}") if isinstance(value, dict) else None


@dataclass(frozen=True)
class Change:
    """One line of the plain diff: `what` (in `where`: product, fee…) changed from `before` to `after`
    (None: added or removed)."""

    where: str
    what: str
    before: str | None
    after: str | None

    @property
    def text(self) -> str:
        if self.before is None:
            line = f"新增{self.what}：{self.after}"
        elif self.after is None:
            line = f"删除{self.what}：{self.before}"
        else:
            line = f"{self.what} {self.before} → {self.after}"
        return _join(self.where, line)


def yuan(fen: int) -> str:
    return f"{format_yuan(fen, symbol=False)} 元"


def percent(bps: int) -> str:
    return f"{(Decimal(bps) / 100).normalize():f}%"


def duration(value: Any) -> str:
    """ISO 8601 (P15D → 15 天) or working days ({"working_days": 3} → 3 个工作日)."""
    if isinstance(value, dict) and "working_days" in value:
        cut_off = "，晚于银行日切或非工作日开始的次一工作日起算" if value.get("bank_cut_off") else ""
        return f"{value['working_days']} 个工作日{cut_off}"
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or not any(match.groups()):
        return _plain(value)
    return "".join(f"{n} {unit}" for n, unit in zip(match.groups(), _UNITS, strict=True) if n)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def shown(key: str, value: Any) -> str:
    """`value` of `key` in its unit: yuan, %, Chinese names of codes."""
    if key in _MONEY and isinstance(value, int) and not isinstance(value, bool):
        return yuan(value)
    if key in _RATES and isinstance(value, int) and not isinstance(value, bool):
        return percent(value)
    if key in ENUMS and isinstance(value, str):
        return ENUMS[key].get(value, value)
    return _plain(value)


def _join(*parts: str) -> str:
    return " · ".join(part for part in parts if part)


class _Diff:
    def __init__(self, names: Names) -> None:
        self.names = names
        self.changes: list[Change] = []

    def add(self, where: str, what: str, before: str | None, after: str | None) -> None:
        if before != after:
            self.changes.append(Change(where, what, before, after))

    def fields(
        self,
        prefix: str,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        show: Callable[..., str],
        labels: Mapping[str, str] = LABELS,
    ) -> None:
        """Each key of either object: added, removed or changed, labelled `prefix · label`."""
        for key in [*old, *(k for k in new if k not in old)]:
            before = show(key, old[key]) if key in old else None
            after = show(key, new[key]) if key in new else None
            self.add(prefix, labels.get(key) or LABELS.get(key, key), before, after)

    def _workflow(self, value: Any) -> str | None:
        flow = self.names.workflow(value)
        return f"{flow.name}（第 {value['version']} 版）" if flow is not None else _workflow(value)

    def named_items(self, what: str, prefix: str, old: list[Any], new: list[Any], key: str) -> None:
        """Lists of objects matched by `key` (fees by name, approvals by operation)."""
        before = {str(item.get(key)): item for item in old if isinstance(item, dict)}
        after = {str(item.get(key)): item for item in new if isinstance(item, dict)}
        for name in [*before, *(n for n in after if n not in before)]:
            if name not in after:
                self.add(prefix, what, summary(before[name], key), None)
            elif name not in before:
                self.add(prefix, what, None, summary(after[name], key))
            else:
                self.fields(_join(prefix, shown(key, name)), before[name], after[name], shown)

    def members(self, what: str, prefix: str, old: list[Any], new: list[Any], name: Callable[[str], str]) -> None:
        """Lists of codes (banks, clauses): what was added, what was removed, else a new order."""
        for code in old:
            if code not in new:
                self.add(prefix, what, name(code), None)
        for code in new:
            if code not in old:
                self.add(prefix, what, None, name(code))
        if set(old) == set(new) and old != new:
            self.add(prefix, f"{what}顺序", "、".join(map(name, old)), "、".join(map(name, new)))

    def product(self, code: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        prefix = self.names.product(code)
        flow = self.names.workflow(new.get("workflow")) or self.names.workflow(old.get("workflow"))
        events = flow.events if flow is not None else {}
        parameters = flow.parameters if flow is not None else {}

        def show(key: str, value: Any) -> str:
            return events.get(value, value) if key == "event" and isinstance(value, str) else shown(key, value)

        for key in [*old, *(k for k in new if k not in old)]:
            before, after = old.get(key), new.get(key)
            if before == after:
                continue
            if key == "workflow":
                self.add(prefix, "工作流", self._workflow(before), self._workflow(after))
            elif key == "banks":
                self.members("银行", prefix, before or [], after or [], self.names.bank)
            elif key == "agreement":
                old_a, new_a = before or {}, after or {}
                self.add(prefix, "协议模板", old_a.get("template"), new_a.get("template"))
                clauses = self.names.clause
                self.members("条款", prefix, old_a.get("clauses", []), new_a.get("clauses", []), clauses)
            elif key == "fees":
                self.named_items("收费", prefix, before or [], after or [], "name")
            elif key == "approvals":
                self.named_items("多人审批", prefix, before or [], after or [], "operation")
            elif key == "deadlines":
                self.fields(_join(prefix, "时限"), before or {}, after or {}, lambda _k, v: duration(v), parameters)
            elif key == "release":
                self.release(prefix, before or {}, after or {}, show)
            elif key == "form":
                self.form(prefix, before or {}, after or {})
            elif key == "parameters":
                self.fields(_join(prefix, LABELS[key]), before or {}, after or {}, shown, parameters)
            elif key in ("custody", "payer"):
                self.fields(_join(prefix, LABELS[key]), before or {}, after or {}, shown)
            else:
                self.add(prefix, LABELS.get(key, key), _opt(key, before), _opt(key, after))

    def release(
        self, prefix: str, old: Mapping[str, Any], new: Mapping[str, Any], show: Callable[[str, Any], str] = shown
    ) -> None:
        prefix = _join(prefix, "放款计划")
        self.members("放款条件", prefix, old.get("conditions", []), new.get("conditions", []), str)
        old_t, new_t = old.get("tranches", []), new.get("tranches", [])
        for index in range(max(len(old_t), len(new_t))):
            label = f"第 {index + 1} 期"
            if index >= len(new_t):
                self.add(prefix, label, summary(old_t[index], "label", show), None)
            elif index >= len(old_t):
                self.add(prefix, label, None, summary(new_t[index], "label", show))
            else:
                self.fields(_join(prefix, label), old_t[index], new_t[index], show)

    def form(self, prefix: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        prefix = _join(prefix, "表单")
        self.members("分组", prefix, old.get("sections", []), new.get("sections", []), str)
        old_s, new_s = old.get("schema", {}), new.get("schema", {})
        old_f, new_f = old_s.get("properties", {}), new_s.get("properties", {})
        was_required, now_required = set(old_s.get("required", [])), set(new_s.get("required", []))
        for name in [*old_f, *(n for n in new_f if n not in old_f)]:
            title = (new_f.get(name) or old_f.get(name) or {}).get("title", name)
            if name not in new_f:
                self.add(prefix, "字段", title, None)
            elif name not in old_f:
                must = "，必填" if name in now_required else ""
                self.add(prefix, "字段", None, f"{title}（{shown('type', new_f[name].get('type'))}{must}）")
            else:
                self.fields(_join(prefix, f"字段「{title}」"), old_f[name], new_f[name], shown)
        for name in sorted((was_required ^ now_required) & old_f.keys() & new_f.keys()):
            where = _join(prefix, f"字段「{new_f[name].get('title', name)}」")
            self.add(where, "必填", _plain(name in was_required), _plain(name in now_required))


def summary(item: Mapping[str, Any], key: str, show: Callable[[str, Any], str] = shown) -> str:
    """An added or removed fee, tranche or approval in one line: its `key` (name), then the rest."""
    rest = "，".join(f"{LABELS.get(k, k)} {show(k, v)}" for k, v in item.items() if k != key)
    return f"{show(key, item.get(key, ''))}（{rest}）" if rest else show(key, item.get(key, ""))


def _workflow(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return f"{value.get('id')} 第 {value.get('version')} 版"


def _opt(key: str, value: Any) -> str | None:
    return None if value is None else shown(key, value)


def plain_diff(old: Mapping[str, Any] | None, new: Mapping[str, Any], names: Names) -> list[Change]:
    """`old` → `new` (resolved configs, or raw ones when a side does not resolve) as plain-language changes, in
    the order of the configs; `old` None: a city with nothing to compare with, every product listed as added."""
    diff = _Diff(names)
    old = old or {}
    for key in ("name", "admin_code", "extends", "status", "timezone"):
        diff.add("", LABELS[key], _opt(key, old.get(key)), _opt(key, new.get(key)))
    old_p, new_p = old.get("products") or {}, new.get("products") or {}
    for code in [*old_p, *(c for c in new_p if c not in old_p)]:
        was, now = isinstance(old_p.get(code), dict), isinstance(new_p.get(code), dict)
        if was and not now:
            diff.add("", "业务", names.product(code), None)
        elif now and not was:
            diff.add("", "业务", None, names.product(code))
        elif was and now:
            diff.product(code, old_p[code], new_p[code])
    return diff.changes
