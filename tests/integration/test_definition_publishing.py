"""One publishing flow for workflows, clauses, templates and calendars (issue 17): a new workflow version is
reviewed, published and used by a new deal without a restart while a running deal keeps its own; a broken one
is refused before publishing; a clause edit reaches agreements only once reviewed; four eyes."""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select, update

from app.agreements.service import render_html
from app.db.definition_models import DefinitionSimulation, DefinitionVersion
from app.db.models import Deal, User
from app.deals import service as deals
from app.definitions import publishing, store
from app.definitions.kinds import content_sha256
from app.platform.config import ROOT
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from tests.conftest import PASSWORD
from tests.factories import RESALE_FORM, actor, colleague, load_deal, patch_city

RESALE_V1 = (ROOT / "workflows" / "resale_escrow.json").read_text(encoding="utf-8")
DISPUTE = (ROOT / "agreement_templates" / "clauses" / "dispute.html.j2").read_text(encoding="utf-8")
NEW_LABEL = "待确认协议（第三版）"


def resale_v4(**changes: Any) -> str:
    data = json.loads(RESALE_V1)
    data["version"] = 4  # v3 ships with the code
    data["states"]["created"]["label"] = NEW_LABEL
    data.update(changes)
    return json.dumps(data, ensure_ascii=False, indent=2)


def pass_simulation(rt: Runtime, kind: str, name: str) -> None:
    """Record a passing simulation of the version under work (test_definition_simulation runs the real one)."""
    _, content = publishing.draft_content(rt, kind, name)
    publishing.record_simulation(rt, kind, name, content, {"ok": True, "runs": []}, "test")


def goes_on(rt: Runtime, deal_id: int) -> None:
    """The deal still moves on its pinned workflow version (cancelled: no PDF to lay out)."""
    deals.fire_user_event(rt, actor(rt, "agent"), deal_id, "cancel", ("agent",))
    assert load_deal(rt, deal_id).state == "cancelled"


def new_deal(rt: Runtime) -> int:
    return deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", dict(RESALE_FORM))


def test_a_new_workflow_version_is_reviewed_published_and_used_by_a_new_deal_without_a_restart(
    rt: Runtime, users: dict[str, int]
) -> None:
    running = new_deal(rt)
    library = rt.workflows
    publishing.save_draft(rt, "workflow", "resale_escrow@4", resale_v4(), "ops")
    publishing.submit(rt, "workflow", "resale_escrow@4", "ops")
    with pytest.raises(ValidationError) as unsimulated:
        publishing.review(rt, "workflow", "resale_escrow@4", "reviewer", "同意", approve=True)
    assert unsimulated.value.code == "SIMULATION_REQUIRED"
    pass_simulation(rt, "workflow", "resale_escrow@4")
    publishing.review(rt, "workflow", "resale_escrow@4", "reviewer", "同意", approve=True)
    assert ("resale_escrow", 4) not in rt.workflows, "approved is not published"
    publishing.publish(rt, "workflow", "resale_escrow@4", "reviewer")

    patch_city(rt, "110000", {"products": {"resale_escrow": {"workflow": {"id": "resale_escrow", "version": 4}}}})
    fresh = new_deal(rt)
    assert rt.workflows is library, "the same runtime, no restart"
    new, old = load_deal(rt, fresh), load_deal(rt, running)
    assert (new.workflow_version, old.workflow_version) == (4, 1)
    assert new.definitions is not None and old.definitions is not None
    assert new.definitions["workflow:resale_escrow@4"] == content_sha256(resale_v4())
    assert old.definitions["workflow:resale_escrow@1"] == content_sha256(RESALE_V1)
    assert rt.workflow("resale_escrow", 4).label(new.state) == NEW_LABEL
    assert rt.workflow("resale_escrow", 1).label(old.state) == "待确认协议", "the running deal keeps version 1"
    goes_on(rt, running)


def test_a_broken_workflow_version_is_refused_before_publishing_and_the_running_deal_is_untouched(
    rt: Runtime, users: dict[str, int]
) -> None:
    running = new_deal(rt)
    data = json.loads(resale_v4())
    data["transitions"][0]["actions"] = ["sign_agreement", "teleport_money"]
    publishing.save_draft(rt, "workflow", "resale_escrow@4", json.dumps(data), "ops")
    with pytest.raises(publishing.DefinitionInvalid) as unknown_action:
        publishing.submit(rt, "workflow", "resale_escrow@4", "ops")
    assert "不能发布" in unknown_action.value.message and any("动作不存在" in p for p in unknown_action.value.details)

    data = json.loads(resale_v4())
    data["states"]["stuck"] = {"label": "搁置"}
    data["events"]["park"] = "搁置"
    data["transitions"].append({"from": "created", "event": "park", "to": "stuck", "label": "搁置"})
    publishing.save_draft(rt, "workflow", "resale_escrow@4", json.dumps(data), "ops")
    with pytest.raises(publishing.DefinitionInvalid) as no_exit:
        publishing.submit(rt, "workflow", "resale_escrow@4", "ops")
    assert any("该状态无法到达任何终态" in p for p in no_exit.value.details), no_exit.value.details

    changed = resale_v4().replace(NEW_LABEL, "改了第一版")
    publishing.save_draft(rt, "workflow", "resale_escrow@1", changed.replace('"version": 4', '"version": 1'), "ops")
    with pytest.raises(publishing.DefinitionInvalid) as immutable:
        publishing.submit(rt, "workflow", "resale_escrow@1", "ops")
    assert any("内容不能再改" in p for p in immutable.value.details), "a published version never changes"

    assert ("resale_escrow", 4) not in rt.workflows
    deal = load_deal(rt, running)
    assert (deal.workflow_version, deal.state) == (1, "created")
    goes_on(rt, running)


def test_a_broken_published_workflow_affects_only_itself(rt: Runtime, users: dict[str, int]) -> None:
    """Even if something bad got into the table, it is loaded alone: other workflows and deals go on."""
    running = new_deal(rt)
    with rt.db.uow() as uow:
        uow.session.add(
            DefinitionVersion(
                kind="workflow",
                name="resale_escrow@9",
                version=1,
                status="published",
                content="{not json",
                content_sha256=content_sha256("{not json"),
                author="ops",
                reviewer="reviewer",
            )
        )
        uow.commit()
    rt.definitions.forget()  # a hand edit is read within FRESH_S; at once here
    assert ("resale_escrow", 9) not in rt.workflows
    assert ("resale_escrow", 1) in rt.workflows and ("resale_escrow", 9) not in set(rt.workflows)
    goes_on(rt, running)
    assert new_deal(rt) > running


def test_a_clause_edit_reaches_agreements_only_once_reviewed_and_running_deals_keep_theirs(
    rt: Runtime, users: dict[str, int]
) -> None:
    running = new_deal(rt)
    edited = DISPUTE.replace("</p>", "（本条款已修订：须先行调解）</p>", 1)
    assert edited != DISPUTE
    publishing.save_draft(rt, "clause", "dispute", edited, "ops")
    publishing.submit(rt, "clause", "dispute", "ops")
    unreviewed = new_deal(rt)
    with rt.db.uow() as uow:
        for deal_id in (running, unreviewed):
            assert "须先行调解" not in render_html(rt, uow.session.get(Deal, deal_id)), "never unreviewed"
    pass_simulation(rt, "clause", "dispute")
    publishing.review(rt, "clause", "dispute", "reviewer", "同意", approve=True)
    publishing.publish(rt, "clause", "dispute", "reviewer")
    fresh = new_deal(rt)
    with rt.db.uow() as uow:
        assert "须先行调解" in render_html(rt, uow.session.get(Deal, fresh))
        assert "须先行调解" not in render_html(rt, uow.session.get(Deal, running)), "pinned"

    broken = "{% if %}"
    publishing.save_draft(rt, "clause", "dispute", broken, "ops")
    with pytest.raises(publishing.DefinitionInvalid) as syntax:
        publishing.submit(rt, "clause", "dispute", "ops")
    assert "模板语法错误" in syntax.value.message


def test_the_author_never_approves_their_own_version_and_a_published_calendar_counts_at_once(
    rt: Runtime, users: dict[str, int]
) -> None:
    calendar = json.loads((ROOT / "calendars" / "2026.json").read_text("utf-8"))
    calendar["version"] += 1
    calendar["holidays"].append({"date": "2026-03-04", "name": "测试假日", "source": "测试"})
    assert rt.calendars.is_working_day(date(2026, 3, 4))
    publishing.save_draft(rt, "calendar", "2026", json.dumps(calendar, ensure_ascii=False), "ops")
    publishing.submit(rt, "calendar", "2026", "ops")
    pass_simulation(rt, "calendar", "2026")
    with rt.db.uow() as uow:  # the author has since become a reviewer (an approved role change)
        uow.session.execute(update(User).where(User.username == "ops").values(role="reviewer"))
        uow.commit()
    with pytest.raises(ValidationError) as own:
        publishing.review(rt, "calendar", "2026", "ops", "同意", approve=True)
    assert own.value.code == "SELF_REVIEW"
    second = colleague(rt, "reviewer", PASSWORD)
    assert publishing.review(rt, "calendar", "2026", second, "同意", approve=True).status == "approved"
    assert rt.calendars.is_working_day(date(2026, 3, 4)), "approved is not published"
    assert publishing.publish(rt, "calendar", "2026", second).status == "published"
    assert not rt.calendars.is_working_day(date(2026, 3, 4)), "counted from the next computation, no restart"
    with rt.db.uow() as uow:
        simulations = uow.session.scalars(select(DefinitionSimulation)).all()
    assert [s.ok for s in simulations] == [True]


def test_import_files_publishes_the_repository_files_once_and_deals_pin_them(
    rt: Runtime, users: dict[str, int]
) -> None:
    imported, refused = publishing.import_files(rt)
    assert refused == []
    assert {"workflow:resale_escrow@1", "clause:dispute", "calendar:2026", "template:shared/signatures.html.j2"} <= set(
        imported
    )
    assert publishing.import_files(rt) == ([], [])
    deal = load_deal(rt, new_deal(rt))
    with rt.db.uow() as uow:
        rows = uow.session.scalars(select(DefinitionVersion).where(DefinitionVersion.status == "published")).all()
        published = {f"{row.kind}:{row.name}": row.content_sha256 for row in rows}
    assert deal.definitions is not None and set(deal.definitions.items()) <= set(published.items())
    assert "template:resale_escrow/v1/agreement.html.j2" in deal.definitions
    assert "template:rent_custody/v1/agreement.html.j2" not in deal.definitions, "its own template version only"


def test_what_serves_is_read_once_per_fresh_period_and_at_once_after_this_process_publishes(
    rt: Runtime, users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every deal, callback and page asks which version serves, often several times: the store reads it once
    per FRESH_S. A version another process published (here: a row written behind the store's back) serves
    within FRESH_S; one this process publishes, at once (publishing tests above)."""
    assert "resale_escrow@7" not in rt.definitions.published_hashes("workflow")
    with rt.db.uow() as uow:
        content = (ROOT / "workflows" / "resale_escrow.json").read_text(encoding="utf-8")
        uow.session.add(
            DefinitionVersion(
                kind="workflow",
                name="resale_escrow@7",
                version=1,
                status="published",
                content=content,
                content_sha256=content_sha256(content),
                author="ops",
                reviewer="reviewer",
            )
        )
        uow.commit()
    assert "resale_escrow@7" not in rt.definitions.published_hashes("workflow"), "read less than FRESH_S ago"
    later = time.monotonic() + store.FRESH_S + 0.01
    monkeypatch.setattr(store.time, "monotonic", lambda: later)
    assert rt.definitions.published_hashes("workflow")["resale_escrow@7"] == content_sha256(content)
