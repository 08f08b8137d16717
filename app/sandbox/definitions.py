"""`flask definition simulate KIND NAME`: a workflow, clause, template, calendar, bank or product variant draft is
simulated by running the city simulations of every city product that uses it (`Kind.uses`), with the draft in
place of what is published; the outcome is stored for approval (`app.definitions.publishing`)."""

from __future__ import annotations

import dataclasses
import json
from collections import ChainMap
from datetime import timedelta
from typing import Any

from app.calendars.loader import parse_year
from app.db.models import Job
from app.definitions import publishing
from app.definitions.banks import PublishedBanks
from app.definitions.kinds import content_sha256
from app.definitions.products import PublishedProducts
from app.definitions.store import DraftStore
from app.definitions.templates import served_checker
from app.definitions.workflows import parse_name
from app.domain.business_calendar import BusinessCalendar
from app.domain.cities import CityCatalog
from app.domain.problems import CityConfigInvalid
from app.platform.request_context import job_id as current_job_id
from app.platform.runtime import Runtime
from app.sandbox.simulate import run_city
from app.state_machine.loader import build_definition

LEASE_S = 3600.0


def with_draft(rt: Runtime, kind: str, name: str, content: str) -> Runtime:
    """`rt` serving the draft instead of the published `name` (content already checked)."""
    drafted = dataclasses.replace(rt, definitions=DraftStore(rt.definitions, kind, name, content))
    if kind == "workflow":
        key = parse_name(name)
        assert key is not None
        definition = build_definition(json.loads(content), rt.registry, name)
        # the draft answers for its own version and for every version of its workflow the cities use
        same = {other: definition for other in rt.workflows if other[0] == key[0]}
        drafted.workflows = ChainMap({**same, key: definition}, rt.workflows)
    if kind == "calendar":
        year = parse_year(content.encode("utf-8"), f"{name}.json")
        drafted.calendar_source = lambda: BusinessCalendar({**rt.calendars.years, year.year: year})
    if kind == "product":
        drafted.products = PublishedProducts(drafted.definitions)
    if kind == "bank":
        drafted.known_banks = PublishedBanks(drafted.definitions)
    # the cities are checked against what the drafted runtime serves
    check = served_checker(drafted.workflows, drafted.definitions, drafted.known_banks, drafted.products)
    drafted.cities = CityCatalog(rt.cities.folder, check, rt.cities.source)
    return drafted


def users(rt: Runtime, kind: str, name: str) -> list[tuple[str, str, str]]:
    """(stem, product, the city's content) of every city product that uses `name`; a city whose config does not
    load today is not one."""
    uses = publishing.kind_of(rt, kind).uses
    found = []
    for stem in rt.cities.source.stems():
        raw = rt.cities.source.read(stem)
        try:
            config = rt.cities.load(stem)
        except CityConfigInvalid:
            continue
        if raw is not None:
            found += [
                (stem, product, raw.decode()) for product in sorted(config.products) if uses(config, product, name)
            ]
    return found


def simulate_definition(rt: Runtime, kind: str, name: str, run_by: str) -> dict[str, Any]:
    """Check and simulate the version of `name` under work, in every city product that uses it; the report is
    stored (approval needs a passing one of this exact content). A definition no city uses yet (a new workflow)
    is checked only: a city that adopts it is simulated with it before its own publication."""
    version, content = publishing.draft_content(rt, kind, name)
    report: dict[str, Any] = {"kind": kind, "name": name, "version": version, "content_sha256": content_sha256(content)}
    problems = publishing.problems(rt, kind, name, content)
    runs: list[dict[str, Any]] = []
    if not problems:
        drafted = with_draft(rt, kind, name, content)
        for stem, product, city_content in users(rt, kind, name):
            run = run_city(drafted, stem, city_content, product)
            runs.append({"city": stem, "product": product, "ok": run["ok"], "problems": run["problems"]})
            problems += [f"{stem} · {product}：{problem}" for problem in run["problems"]]
    report |= {"runs": runs, "problems": problems, "ok": not problems}
    publishing.record_simulation(rt, kind, name, content, report, run_by)
    return report


def _hold_lease(rt: Runtime) -> None:
    """A definition's simulations may run many cities: hold the job for LEASE_S from the start."""
    job_id = current_job_id.get()
    if job_id is None:
        return
    with rt.db.uow() as uow:
        job = uow.session.get(Job, job_id)
        if job is not None:
            job.locked_until = rt.clock() + timedelta(seconds=LEASE_S)
            uow.commit()


def simulate_definition_job(rt: Runtime, payload: dict[str, Any]) -> None:
    """The console's 运行仿真 of a definition, run by a worker (queued by `publishing.request_simulation`)."""
    _hold_lease(rt)
    simulate_definition(rt, payload["kind"], payload["name"], payload["run_by"])


JOBS = {publishing.SIMULATION_JOB: simulate_definition_job}
