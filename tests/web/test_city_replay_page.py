"""The replay on the review page (issue 18): the console's simulation job of a whole city, once the simulation ran,
replays the city's recent real deals under the same draft, shows it counts them in its progress, stores the
replay with the simulation, and the city page shows it beside the simulation's result - a summary and one row per
deal with the real and the replayed path and the amount differences in yuan, in a table that scrolls inside
itself. (The simulation's own paths are stubbed: tests/integration/test_city_simulation.py runs them.)"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.cities import publishing
from app.db.config_models import ConfigSimulation
from app.db.models import Job
from app.deals.vocabulary import build_vocabulary
from app.domain.config_versions import content_sha256
from app.platform.runtime import Runtime
from app.sandbox import job
from app.sandbox import simulate as simulation
from app.sandbox.harness import SignOnce
from tests.conftest import csrf_token
from tests.integration.test_city_replay import SELLER_FEE, _deal, _draft
from tests.web.test_admin_configs import PAGE, run_jobs

Login = Callable[[str], FlaskClient]


def test_the_simulation_job_replays_real_deals_and_the_review_page_shows_them(
    login: Login,
    client: FlaskClient,
    keys_dir: Path,
    rt: Runtime,
    users: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publishing.import_files(rt)
    rt.registry = build_vocabulary(SignOnce())  # the real deals' agreements signed once (see test_city_replay)
    closed = _deal(client, keys_dir, rt, "6226000000000041", close=True)
    running = _deal(client, keys_dir, rt, "6226000000000042", close=False)
    ops = login("ops")
    token = csrf_token(ops.get(PAGE).text)
    ops.post(f"{PAGE}/draft", data={"csrf_token": token, "content": _draft(fees=[SELLER_FEE])})

    def paths_passed(rt: Runtime, stem: str, content: str, product: object, progress: Any) -> dict[str, Any]:
        with rt.db.uow() as uow:
            _, city = publishing.validated(rt, uow.session, stem, content)
        progress(1, 1, "账务核对")
        sums = {"content_sha256": content_sha256(content), "resolved_sha256": city.sha256}
        return {"city": stem, **sums, "products": [], "problems": [], "ok": True}

    pages: list[str] = []
    real_replay = job.replay_city

    def watched(*args: Any, **options: Any) -> dict[str, Any]:
        progress = options.get("progress")

        def spy(done: int, total: int, label: str) -> None:
            progress(done, total, label)
            pages.append(ops.get(PAGE).text)  # the page while the worker replays

        return real_replay(*args, **(options | {"progress": spy}))

    monkeypatch.setattr(simulation, "run_city", paths_passed)
    monkeypatch.setattr(job, "replay_city", watched)
    token = csrf_token(ops.get(PAGE).text)
    ops.post(f"{PAGE}/simulate", data={"csrf_token": token, "product": ""})
    run_jobs(rt)  # the simulation, and the real deals' own jobs (the test's bank is not there: they retry)
    with rt.db.uow() as uow:
        assert uow.session.scalars(select(Job.status).where(Job.kind == "simulate_city")).one() == "done"
    assert len(pages) == 3
    assert "仿真中 0/2</strong> 笔真实存管单" in pages[0] and "重放真实存管单（第 1/2 笔）" in pages[0]

    with rt.db.uow() as uow:
        stored = uow.session.scalars(select(ConfigSimulation)).one()
    assert stored.complete and stored.report["replay"]["count"] == 2 and stored.report["replay"]["differing"] == 2

    page = html.unescape(login("reviewer").get(PAGE).text)
    section = page.split('id="replay"', 1)[1].split("</section>", 1)[0]
    assert "真实存管单重放" in section
    assert "按本版本重放最近 2 笔真实存管单：2 笔与实际不同（金额不同 2）" in section
    assert '<div class="table-wrap" tabindex="0" role="region"' in section, "the table scrolls inside itself"
    rows = section.split("<tr>")[2:]
    (fee_row,) = [r for r in rows if closed in r]
    assert "二手房交易资金存管" in fee_row and "金额不同" in fee_row
    assert (
        "实际：" in fee_row
        and "重放：" in fee_row
        and "已结清" in fee_row
        and "收费：¥0.00 → ¥3,703.70（+¥3,703.70）" in fee_row
    )
    assert "第 1 笔放款：¥1,234,567.89 → ¥1,230,864.19（-¥3,703.70）" in fee_row
    (running_row,) = [r for r in rows if running in r]
    assert "金额不同" in running_row and "放款中（进行中）" in running_row
    assert json.dumps(stored.report, ensure_ascii=False).count("6222020200112233445") == 0, "no account number kept"
