"""The reviewer's plain-language diff of two city configs: Chinese labels, yuan, %, days and working days; fees
and form fields matched by name; banks and clauses as added or removed."""

from __future__ import annotations

import copy
import json
from typing import Any

from app.domain.city_lint import CityState, lint
from app.domain.config_diff import Names, WorkflowNames, duration, percent, plain_diff, yuan
from app.platform.config import ROOT

NAMES = Names({"resale_escrow": "二手房资金存管"}, {"ceb": "光大银行", "pab": "平安银行"})


def shanghai() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "city_configs" / "310000.json").read_text(encoding="utf-8"))
    data["products"]["resale_escrow"]["fees"] = [
        {"name": "资金存管服务费", "payer": "seller", "kind": "rate", "bps": 5}
    ]
    return data


def lines(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    return [change.text for change in plain_diff(old, new, NAMES)]


def test_units_are_yuan_percent_days_and_working_days() -> None:
    assert (yuan(123456789), yuan(5), percent(5), percent(30), percent(9000)) == (
        "1,234,567.89 元",
        "0.05 元",
        "0.05%",
        "0.3%",
        "90%",
    )
    assert (duration("P15D"), duration("PT2H"), duration("P1M"), duration({"working_days": 3})) == (
        "15 天",
        "2 小时",
        "1 个月",
        "3 个工作日",
    )
    assert duration({"working_days": 2, "bank_cut_off": True}).startswith("2 个工作日，晚于银行日切")


def test_each_change_is_one_line_with_labels_and_units() -> None:
    old = shanghai()
    new = copy.deepcopy(old)
    resale = new["products"]["resale_escrow"]
    resale["fees"][0]["bps"] = 30
    resale["fees"].append({"name": "过户手续费", "payer": "buyer", "kind": "fixed", "amount_fen": 10000})
    resale["banks"] = ["ceb"]
    resale["custody"] = {"min_fen": 100000}
    new["products"]["new_home_supervision"]["agreement"]["clauses"].append("penalty")
    new["products"]["new_home_supervision"]["release"]["tranches"] = [
        {"label": "首期", "share_bps": 9000},
        {"label": "尾款", "remainder": True},
    ]
    new["products"]["intent_deposit"]["deadlines"]["deposit_deadline"] = {"working_days": 3}
    del new["products"]["renovation_escrow"]
    assert lines(old, new) == [
        "二手房资金存管 · 删除银行：平安银行",
        "二手房资金存管 · 资金存管服务费 · 费率 0.05% → 0.3%",
        "二手房资金存管 · 新增收费：过户手续费（付款方 买方，收费方式 固定金额，固定金额 100.00 元）",
        "二手房资金存管 · 托管金额 · 新增下限：1,000.00 元",
        "intent_deposit · 时限 · deposit_deadline 2 天 → 3 个工作日",
        "删除业务：renovation_escrow",
        "new_home_supervision · 新增条款：penalty",
        "new_home_supervision · 放款计划 · 第 1 期 · 名称 全款 → 首期",
        "new_home_supervision · 放款计划 · 第 1 期 · 删除余款：是",
        "new_home_supervision · 放款计划 · 第 1 期 · 新增比例：90%",
        "new_home_supervision · 放款计划 · 新增第 2 期：尾款（余款 是）",
    ]
    assert lines(old, copy.deepcopy(old)) == [], "the same config: nothing to read"


def test_form_fields_by_title_and_a_new_city_against_nothing() -> None:
    old = shanghai()
    new = copy.deepcopy(old)
    new["products"]["resale_escrow"]["form"] = {
        "sections": ["房屋"],
        "schema": {
            "required": ["area"],
            "properties": {"area": {"type": "number", "title": "房屋面积", "x-order": 1, "x-section": "房屋"}},
        },
    }
    assert lines(old, new) == [
        "二手房资金存管 · 表单 · 新增分组：房屋",
        "二手房资金存管 · 表单 · 新增字段：房屋面积（数字，必填）",
    ]
    newer = copy.deepcopy(new)
    newer["products"]["resale_escrow"]["form"]["schema"]["properties"]["area"]["title"] = "建筑面积"
    newer["products"]["resale_escrow"]["form"]["schema"]["required"] = []
    assert lines(new, newer) == [
        "二手房资金存管 · 表单 · 字段「建筑面积」 · 标签 房屋面积 → 建筑面积",
        "二手房资金存管 · 表单 · 字段「建筑面积」 · 必填 是 → 否",
    ]
    fresh = lines(None, old)
    assert fresh[:2] == ["新增城市名称：上海", "新增行政区划代码：310000"]
    assert "新增业务：二手房资金存管" in fresh


def state(**changes: Any) -> CityState:
    base = {
        "stem": "370200",
        "name": "青岛",
        "published": True,
        "live": False,
        "open_status": None,
        "open_version": None,
        "open_content": None,
        "simulated": False,
    }
    return CityState(**(base | changes))


def test_lint_warns_of_a_published_city_agents_cannot_see_and_of_a_status_that_decides_nothing() -> None:
    assert lint(state()) == ["已发布但未上线：代理人看不到青岛，审核人在本页「上线」后才能新建存管"]
    assert lint(state(live=True)) == []
    assert lint(state(stem="_virtual")) == [], "the virtual city is a template"
    draft = lint(state(live=True, open_status="draft", open_version=2, open_content={"status": "draft"}))
    assert draft == [
        "第 2 版配置中的 status（draft）不起作用：是否上线只由审核流程的「上线」「下线」决定，可删除此项",
        "第 2 版尚未通过全部业务的仿真：仿真全部业务并通过后才能提交审核",
    ]
    assert lint(state(published=False, open_status="approved", open_version=1)) == [
        "青岛尚未发布：审核通过并发布后，还须「上线」代理人才能看到",
        "第 1 版已批准但未发布：发布后新建的存管才按此版本办理",
    ]


def test_clauses_workflows_events_and_deadlines_read_by_their_chinese_names() -> None:
    """A reviewer reads titles and labels, not codes: the clause's title, the workflow's name, the tranche's
    event and the deadline's label (from the served workflow version the product runs on)."""
    flow = {"id": "resale_escrow", "version": 3}
    names = Names(
        NAMES.products,
        NAMES.banks,
        {"nanjing_notice": "南京特别约定（nanjing_notice）"},
        {
            "resale_escrow@3": WorkflowNames(
                "二手房存管（入金期限）", {"handover_done": "物业交割"}, {"funding_deadline": "入金期限"}
            )
        },
    )
    old = {"products": {"resale_escrow": {"workflow": {"id": "resale_escrow", "version": 2}}}}
    new = {
        "products": {
            "resale_escrow": {
                "workflow": flow,
                "agreement": {"clauses": ["nanjing_notice"]},
                "deadlines": {"funding_deadline": {"working_days": 3}},
                "release": {"tranches": [{"label": "尾款", "remainder": True, "event": "handover_done"}]},
            }
        }
    }
    texts = [change.text for change in plain_diff(old, new, names)]
    assert texts == [
        "二手房资金存管 · 工作流 resale_escrow 第 2 版 → 二手房存管（入金期限）（第 3 版）",
        "二手房资金存管 · 新增条款：南京特别约定（nanjing_notice）",
        "二手房资金存管 · 时限 · 新增入金期限：3 个工作日",
        "二手房资金存管 · 放款计划 · 新增第 1 期：尾款（余款 是，放款事件 物业交割）",
    ]
    assert "新增条款：nanjing_notice" in " ".join(lines(old, new)), "an unknown clause keeps its name"
