"""Deals keep the city config they started with; workflow timers of deals fire by themselves (worker)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.cities import publishing
from app.db.config_models import CityConfigSnapshot
from app.db.models import Deal, DealEvent
from app.deals import service as deals
from app.deals.timers import fire_due_timers
from app.platform.runtime import Runtime
from app.queue.worker import run_worker
from app.state_machine.definition import Parameter, Timer
from tests.factories import RESALE_FORM, actor, load_deal
from tests.integration.test_config_publishing import publish_renamed

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_publishing_a_new_version_never_changes_a_running_deal(rt: Runtime, users: dict[str, int]) -> None:
    publishing.import_files(rt)
    agent = actor(rt, "agent")
    running = deals.create_deal(rt, agent, "110000", "resale_escrow", RESALE_FORM)
    publish_renamed(rt, "北平")
    deals.confirm_agreement(rt, agent, running)
    newer = deals.create_deal(rt, agent, "110000", "resale_escrow", RESALE_FORM)
    assert "北平" not in load_deal(rt, running).agreement.html
    assert "北平" in deals.agreement_html(rt, agent, newer)
    with rt.db.uow() as uow:
        hashes = {d.id: d.city_config_sha256 for d in uow.session.scalars(select(Deal))}
        snapshots = {s.sha256: s for s in uow.session.scalars(select(CityConfigSnapshot))}
    assert hashes[running] != hashes[newer] and set(hashes.values()) == set(snapshots)
    assert snapshots[hashes[running]].layers[0] == {
        "file": "110000.json",
        "content_sha256": publishing.versions(rt, "110000")[-1].content_sha256,
        "version": 1,
    }
    assert snapshots[hashes[newer]].layers[0]["version"] == 2
    assert snapshots[hashes[newer]].layers[1]["file"] == "_virtual.json"


def _with_confirm_deadline(rt: Runtime) -> None:
    """Resale escrow with a timer on `created` (the shipped workflow has none): cancel after P3D."""
    key = ("resale_escrow", 1)
    definition = rt.workflows[key]
    created = dataclasses.replace(definition.states["created"], timers=(Timer("confirm_deadline", "cancel"),))
    rt.workflows[key] = dataclasses.replace(
        definition,
        states={**definition.states, "created": created},
        parameters={"confirm_deadline": Parameter("confirm_deadline", "duration", "确认时限", "P3D")},
    )


def _events(rt: Runtime, deal_id: int) -> list[tuple[str, str]]:
    with rt.db.uow() as uow:
        rows = uow.session.scalars(select(DealEvent).where(DealEvent.deal_id == deal_id).order_by(DealEvent.id))
        return [(row.event, row.actor) for row in rows]


def test_due_timers_fire_once_on_a_controlled_clock(rt: Runtime, users: dict[str, int]) -> None:
    _with_confirm_deadline(rt)
    now = [T0]
    rt.clock = lambda: now[0]
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", RESALE_FORM)
    now[0] = T0 + timedelta(days=3) - timedelta(seconds=1)
    assert fire_due_timers(rt) == 0
    now[0] = T0 + timedelta(days=3)
    assert fire_due_timers(rt) == 1
    assert fire_due_timers(rt) == 0
    assert load_deal(rt, deal_id).state == "cancelled"
    assert _events(rt, deal_id) == [("create", "user:agent"), ("cancel", "system:timer")]


def test_the_worker_fires_due_timers_in_its_periodic_round(rt: Runtime, users: dict[str, int]) -> None:
    _with_confirm_deadline(rt)
    now = [T0]
    rt.clock = lambda: now[0]
    agent = actor(rt, "agent")
    waiting = deals.create_deal(rt, agent, "110000", "resale_escrow", RESALE_FORM)
    now[0] = T0 + timedelta(days=2)
    fresh = deals.create_deal(rt, agent, "110000", "resale_escrow", RESALE_FORM)
    now[0] = T0 + timedelta(days=4)
    run_worker(rt, should_stop=lambda: False, burst=True)
    assert (load_deal(rt, waiting).state, load_deal(rt, fresh).state) == ("cancelled", "created")
