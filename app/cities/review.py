"""What a reviewer reads on a city's page, Flask-free: the plain-language diff of the version under work against
the published version (or, for a new city, the city it was copied from), and the lint warnings."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from app.cities.launches import is_live
from app.cities.publishing import passing_simulation, validated
from app.cities.sources import SessionCitySource, published_version
from app.db.config_models import CityConfigVersion
from app.definitions.templates import studio_catalog
from app.domain.cities import resolve
from app.domain.city_lint import CityState, lint
from app.domain.config_diff import Change, Names, WorkflowNames, plain_diff
from app.platform.errors import CunguanError
from app.platform.runtime import Runtime


def names(rt: Runtime) -> Names:
    """The Chinese names the plain diff uses: products, banks, and from the studio's catalog (what is served)
    the clauses' titles and the workflows' names, events and parameters."""
    products = {code: rt.products.get(code).name for code in rt.products.codes()}
    catalog = studio_catalog(rt)
    workflows = {
        w.key: WorkflowNames(w.name, dict(w.events), {p.name: p.label for p in w.parameters}) for w in catalog.workflows
    }
    banks = {code: bank.name for code, bank in rt.known_banks.items()}
    return Names(products, banks, dict(catalog.clauses), workflows)


def _own(content: str | None) -> dict[str, Any] | None:
    try:
        data = json.loads(content or "")
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _resolved(session: Session, rt: Runtime, stem: str, content: str | None = None) -> dict[str, Any] | None:
    """`stem` merged with its parents (`content` in its place when given); its own JSON when it does not resolve."""
    source = SessionCitySource(session, rt.cities.folder, {stem: content} if content is not None else None)
    try:
        return dict(resolve(stem, source.read).data)
    except CunguanError:
        raw = source.read(stem)
        return _own(raw.decode() if raw is not None else None)


def baseline(session: Session, version: CityConfigVersion) -> tuple[str | None, str | None]:
    """(stem, what it is) the version under work is compared with: the published version, else the shipped file,
    else the city its first draft was copied from; (None, None) when there is nothing."""
    stem = version.city_code
    published = published_version(session, stem)
    if published is not None:
        return stem, f"已发布的第 {published.version} 版"
    if version.copied_from is not None:
        return version.copied_from, f"复制来源 {version.copied_from}"
    return None, None


def plain_changes(rt: Runtime, session: Session, version: CityConfigVersion) -> tuple[str | None, list[Change]]:
    """What the version under work changes, in plain language, and what it is compared with."""
    base_stem, label = baseline(session, version)
    new = _resolved(session, rt, version.city_code, version.content)
    old = _resolved(session, rt, base_stem) if base_stem is not None else None
    return label, plain_diff(old, new or {}, names(rt))


def warnings(rt: Runtime, session: Session, stem: str, name: str, current: CityConfigVersion | None) -> list[str]:
    """The lint of the city page (`app.domain.city_lint`)."""
    simulated = False
    if current is not None and current.status == "draft":
        try:
            _, city = validated(rt, session, stem, current.content)
        except CunguanError:
            city = None
        simulated = city is not None and passing_simulation(session, current, city.sha256) is not None
    state = CityState(
        stem=stem,
        name=name or stem,
        published=published_version(session, stem) is not None or (rt.cities.folder / f"{stem}.json").is_file(),
        live=is_live(session, rt.cities.folder, stem),
        open_status=current.status if current is not None else None,
        open_version=current.version if current is not None else None,
        open_content=_own(current.content) if current is not None else None,
        simulated=simulated,
    )
    return lint(state)


def changed_products(rt: Runtime, session: Session, version: CityConfigVersion, enabled: list[str]) -> list[str]:
    """Which of the `enabled` products of the version under work it changes: every one when there is nothing to
    compare with or when a city-wide key changed (the city's name prints in every agreement), else those whose
    resolved section differs from the baseline's (`baseline`)."""
    base_stem, _ = baseline(session, version)
    new = _resolved(session, rt, version.city_code, version.content) or {}
    old = _resolved(session, rt, base_stem) if base_stem is not None else None
    if old is None or _city_wide(old) != _city_wide(new):
        return list(enabled)
    before, after = old.get("products") or {}, new.get("products") or {}
    return [code for code in enabled if before.get(code) != after.get(code)]


def _city_wide(resolved: dict[str, Any]) -> dict[str, Any]:
    """The resolved keys but the products, the status (going live is its own step) and the parent's name."""
    return {key: value for key, value in resolved.items() if key not in ("products", "status", "extends")}
