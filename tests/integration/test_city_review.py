"""The review side of the config studio (issue 18): submitting needs a passing simulation of the exact version;
going live is a step of its own after publishing (the config's `status` decides only for shipped files never
launched); a new city's plain diff compares with the city it was copied from; browsers' CRLF are stored as LF."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.cities import publishing, review
from app.cities.launches import set_live
from app.db.audit_models import AuditEntry
from app.db.config_models import CityConfigVersion
from app.platform.config import ROOT
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from tests.integration.test_config_publishing import pass_simulation

QINGDAO = (ROOT / "city_configs" / "370200.json").read_text(encoding="utf-8")


def live(rt: Runtime) -> set[str]:
    return {city.admin_code for city in rt.cities.live_cities()}


def publish(rt: Runtime, stem: str, content: str, *, copied_from: str | None = None) -> None:
    publishing.save_draft(rt, stem, content, "ops", copied_from=copied_from)
    pass_simulation(rt, stem)
    publishing.submit(rt, stem, "ops")
    publishing.review(rt, stem, "reviewer", "同意", approve=True)
    publishing.publish(rt, stem, "reviewer")


def test_shipped_draft_cities_are_published_but_not_live_until_a_reviewer_puts_them_live(
    rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    assert {"110000", "310000", "330100", "370100"} <= live(rt)
    assert not {"370200", "440300"} & live(rt), "青岛 and 深圳 ship with status draft"
    with rt.db.uow() as uow:
        warnings = review.warnings(rt, uow.session, "440300", "深圳", None)
    assert warnings == ["已发布但未上线：代理人看不到深圳，审核人在本页「上线」后才能新建存管"]

    with pytest.raises(ValidationError) as ops_refused:
        set_live(rt, "370200", "ops", live=True)
    assert ops_refused.value.code == "ROLE_NOT_ALLOWED" and ops_refused.value.message == "用户 ops 无权上线城市"
    assert set_live(rt, "370200", "reviewer", live=True) is False
    assert "370200" in live(rt)
    with pytest.raises(ValidationError) as again:
        set_live(rt, "370200", "reviewer", live=True)
    assert again.value.message == "城市 370200 已经上线"

    # a new version still saying "status": "draft" no longer hides the live city: the lint says so instead
    publish(rt, "370200", QINGDAO.replace('"name": "青岛"', '"name": "青岛市"'))
    assert "370200" in live(rt) and rt.cities.get("370200").status == "draft"
    publishing.save_draft(rt, "370200", QINGDAO, "ops")
    with rt.db.uow() as uow:
        current = uow.session.scalars(select(CityConfigVersion).where(CityConfigVersion.status == "draft")).one()
        warnings = review.warnings(rt, uow.session, "370200", "青岛", current)
    assert warnings[0] == (
        "第 3 版配置中的 status（draft）不起作用：是否上线只由审核流程的「上线」「下线」决定，可删除此项"
    )

    set_live(rt, "110000", "reviewer", live=False)
    assert "110000" not in live(rt), "a shipped live city taken offline stays offline"
    with rt.db.uow() as uow:
        trail = [
            (e.action, e.actor, e.before, e.after)
            for e in uow.session.scalars(select(AuditEntry).order_by(AuditEntry.id))
            if e.action in ("city_config.go_live", "city_config.take_offline")
        ]
    assert trail == [
        ("city_config.go_live", "reviewer", {"live": False}, {"live": True}),
        ("city_config.take_offline", "reviewer", {"live": True}, {"live": False}),
    ]


def test_a_new_city_goes_live_only_through_the_step_and_its_diff_compares_with_its_source(
    rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    data = json.loads((ROOT / "city_configs" / "310000.json").read_text(encoding="utf-8"))
    data |= {"admin_code": "420100", "name": "武汉"}  # copied with "status": "live", as the issue found it
    content = json.dumps(data, ensure_ascii=False, indent=2).replace("\n", "\r\n")  # as a browser posts it
    draft = publishing.save_draft(rt, "420100", content, "ops", copied_from="310000")
    assert "\r" not in draft.content and draft.copied_from == "310000"
    with pytest.raises(ValidationError) as unpublished:
        set_live(rt, "420100", "reviewer", live=True)
    assert unpublished.value.message == "城市 420100 尚无已发布的版本：先发布，再上线"
    with rt.db.uow() as uow:
        compared, changes = review.plain_changes(rt, uow.session, draft)
    assert compared == "复制来源 310000"
    assert [change.text for change in changes] == ["城市名称 上海 → 武汉", "行政区划代码 310000 → 420100"]

    publish(rt, "420100", content, copied_from="310000")
    assert "420100" not in live(rt), "published ≠ live, whatever the copied status says"
    set_live(rt, "420100", "reviewer", live=True)
    assert "420100" in live(rt)


def test_a_draft_cannot_be_submitted_before_a_passing_simulation_of_exactly_it(
    rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    publishing.save_draft(rt, "370200", QINGDAO.replace('"name": "青岛"', '"name": "青岛市"'), "ops")
    pass_simulation(rt, "370200")
    publishing.save_draft(rt, "370200", QINGDAO.replace('"name": "青岛"', '"name": "青岛 "'), "ops")
    with pytest.raises(ValidationError) as refused:
        publishing.submit(rt, "370200", "ops")
    assert refused.value.code == "SIMULATION_REQUIRED", "the simulation was of the earlier content"
    assert refused.value.message.startswith("第 2 版尚无通过的仿真（或继承的配置已变）：请先对全部业务运行仿真")
    pass_simulation(rt, "370200")
    assert publishing.submit(rt, "370200", "ops").status == "submitted"
