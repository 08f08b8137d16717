"""Replay before approval (issue 18): a city config (the draft under review) run in the sandbox against the
city's recent real deals - each created again under it and its recorded events and bank notifications acted out
(`replay_deal`, `replay_history`) - and compared deal by deal with what really happened (`replay_compare`).

Each deal is replayed alone: the sandbox (a temporary SQLite database, the bank simulator) is put back to its
empty state before each one. The report is plain JSON, stored with the simulation of the draft (the console's
simulation job adds it to `config_simulations.report` under `replay`) and printed by `flask city replay`."""

from __future__ import annotations

import logging
import sqlite3
import tempfile
import traceback
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.cities.publishing import validated
from app.db.models import Deal
from app.domain.cities import CityConfig
from app.domain.config_versions import content_sha256
from app.domain.problems import CityConfigInvalid
from app.platform.runtime import Runtime
from app.sandbox.bank import BankSnapshot
from app.sandbox.replay_compare import FAILED, PATH, SAME, VERDICTS, outcome_json, read_outcome, verdict
from app.sandbox.replay_deal import DealReplay
from app.sandbox.replay_history import NotReplayable, read_history
from app.sandbox.simulate import SANDBOX_PARENT, Sandbox, quiet_logs, sandbox

DEFAULT_LIMIT = 50
log = logging.getLogger("cunguan.replay")

# (deals done, deals in all, what runs now)
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class _Empty:
    """The sandbox as it is before any deal: both databases and the clock."""

    platform: sqlite3.Connection
    bank: BankSnapshot


def recent_deals(rt: Runtime, city: CityConfig, limit: int) -> list[int]:
    """The city's last `limit` real deals by creation, of the config's products only (newest first)."""
    with rt.db.uow() as uow:
        query = (
            select(Deal.id)
            .where(Deal.city_code == city.admin_code, Deal.product.in_(sorted(city.products)))
            .order_by(Deal.created_at.desc(), Deal.id.desc())
            .limit(limit)
        )
        return list(uow.session.scalars(query))


def _file(box: Sandbox) -> str:
    database = box.rt.db.engine.url.database
    assert database, "the sandbox database is a file"
    return database


def _save(box: Sandbox) -> _Empty:
    copy = sqlite3.connect(":memory:")
    with closing(sqlite3.connect(_file(box))) as live:
        live.backup(copy)
    return _Empty(copy, box.bank.snapshot())


def _restore(box: Sandbox, empty: _Empty) -> None:
    box.rt.db.engine.dispose()  # no pooled connection keeps the previous deal's sandbox
    with closing(sqlite3.connect(_file(box))) as live:
        empty.platform.backup(live)
    box.bank.restore(empty.bank)


def _broken(rt: Runtime, deal_id: int, reason: str) -> dict[str, Any]:
    with rt.db.uow() as uow:
        deal_no, product = uow.session.execute(select(Deal.deal_no, Deal.product).where(Deal.id == deal_id)).one()
    return _failed({"deal_no": deal_no, "product": product, "running": False, "real": None}, reason)


def _failed(real: dict[str, Any], reason: str) -> dict[str, Any]:
    return real | {"verdict": FAILED, "reason": reason, "replayed": None, "amounts": [], "payees": []}


def _replay_one(rt: Runtime, box: Sandbox, city: CityConfig, deal_id: int) -> dict[str, Any]:
    with rt.db.uow() as uow:
        session = uow.session
        real = session.get(Deal, deal_id, options=[selectinload(Deal.virtual_account)])
        assert real is not None
        variant = rt.products.get(real.product)
        definition = rt.workflow(real.workflow_id, real.workflow_version)
        row: dict[str, Any] = {
            "deal_no": real.deal_no,
            "product": real.product,
            "running": not definition.states[real.state].final,
        }
        history, unreadable = None, ""
        try:
            history = read_history(session, real)
        except NotReplayable as why:
            unreadable = str(why)
        origins = [a.payer_account for a in history.acts if a.payer_account] if history else []
        real_outcome = read_outcome(session, real, definition, variant.parties, origins)
        _ = (real.buyer_bank_account, real.seller_bank_account, real.facts, real.created_at)  # loaded before we leave
        session.expunge(real)
    row["real"] = outcome_json(real_outcome)
    if history is None:
        return _failed(row, unreadable)
    try:
        done = DealReplay(box, city, real, variant).run(history)
    except NotReplayable as why:
        return _failed(row, str(why))
    with box.rt.db.uow() as uow:
        replayed_deal = uow.session.get(Deal, done.deal_id)
        assert replayed_deal is not None
        replayed_definition = box.rt.workflow(replayed_deal.workflow_id, replayed_deal.workflow_version)
        replayed = read_outcome(uow.session, replayed_deal, replayed_definition, variant.parties, done.origins)
    found, amounts, payees = verdict(real_outcome, replayed)
    reason = None
    if done.stopped is not None:
        prefix = real_outcome.path[: len(replayed.path)] == replayed.path
        found, reason = (FAILED, done.stopped) if prefix else (PATH, done.stopped)
    return row | {
        "verdict": found,
        "reason": reason,
        "replayed": outcome_json(replayed),
        "amounts": amounts,
        "payees": payees,
    }


def replay_city(
    rt: Runtime, stem: str, content: str, limit: int = DEFAULT_LIMIT, progress: Progress | None = None
) -> dict[str, Any]:
    """Replay the city's recent real deals under `content` (the config of `stem`); the report, stored nowhere."""
    report: dict[str, Any] = {"city": stem, "content_sha256": content_sha256(content), "limit": limit}
    try:
        with rt.db.uow() as uow:
            resolved, city = validated(rt, uow.session, stem, content)
    except CityConfigInvalid as invalid:
        return report | {"ok": False, "problems": [str(p) for p in invalid.problems], "deals": [], "count": 0}
    ids = recent_deals(rt, city, limit)
    rows: list[dict[str, Any]] = []
    if ids:
        with rt.db.uow() as uow:
            first = min(uow.session.scalars(select(Deal.created_at).where(Deal.id.in_(ids))))
        with (
            tempfile.TemporaryDirectory(prefix="cunguan-replay-", dir=SANDBOX_PARENT) as folder,
            quiet_logs() as quiet,
            sandbox(rt, Path(folder), resolved, city.admin_code, quiet, first - timedelta(days=1)) as box,
        ):
            empty = _save(box)
            for number, deal_id in enumerate(ids):
                if progress is not None:
                    progress(number, len(ids), f"重放真实存管单（第 {number + 1}/{len(ids)} 笔）")
                if number:
                    _restore(box, empty)
                try:
                    rows.append(_replay_one(rt, box, city, deal_id))
                except Exception:  # a bug met by the replay is a finding about this deal, not a crash
                    log.warning("replay of deal %s failed", deal_id, exc_info=True)
                    trace = traceback.format_exc(limit=2).strip().splitlines()[-1]
                    rows.append(_broken(rt, deal_id, f"未预期的错误：{trace}"[:300]))
    counts = {name: sum(1 for r in rows if r["verdict"] == name) for name in VERDICTS}
    if progress is not None:
        progress(len(ids), len(ids), "重放完成")
    return report | {
        "ok": True,
        "problems": [],
        "count": len(rows),
        "differing": len(rows) - counts[SAME],
        "verdicts": counts,
        "deals": rows,
    }
