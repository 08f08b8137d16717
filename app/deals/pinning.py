"""Deals pin the city config they started with: the resolved config (extends merged) is kept by its hash
(`Deal.city_config_sha256`) with the version of each layer, so publishing never changes a running deal."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db.config_models import CityConfigSnapshot, CityConfigVersion
from app.db.models import Deal
from app.domain.cities import (
    CityConfig,
    FolderSource,
    ResolvedCity,
    build_city,
    canonical_json,
    folder_reader,
    resolve,
)
from app.platform.runtime import Runtime


def _layer_version(session: Session, stem: str, content_sha256: str) -> int | None:
    """The published version a layer came from; None for a shipped file not (yet) in the database."""
    return session.scalar(
        select(CityConfigVersion.version)
        .where(
            CityConfigVersion.city_code == stem,
            CityConfigVersion.content_sha256 == content_sha256,
            CityConfigVersion.status == "published",
        )
        .limit(1)
    )


def pin(session: Session, resolved: ResolvedCity, city: CityConfig, now: datetime) -> None:
    """Keep the resolved config under its hash (once: deals of the same config share one snapshot)."""
    layers = []
    for layer in resolved.layers:
        stem = layer.source.removesuffix(".json")
        digest = hashlib.sha256(canonical_json(layer.data)).hexdigest()
        version = _layer_version(session, stem, digest)
        layers.append({"file": layer.source, "content_sha256": digest, "version": version})
    values = {
        "sha256": city.sha256,
        "city_code": city.admin_code,
        "data": resolved.data,
        "layers": layers,
        "created_at": now,
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(CityConfigSnapshot).values(values).on_conflict_do_nothing())


# a snapshot never changes under its hash: its built config is kept per process (bounded)
_BUILT: dict[str, CityConfig] = {}
_BUILT_MAX = 256


def pinned_city(rt: Runtime, session: Session, deal: Deal) -> CityConfig:
    """The city config the deal started with, read in the caller's session (built once per process).

    Deals created before snapshots existed (migration 0005) fall back to the shipped file."""
    built = _snapshot_city(session, deal.city_config_sha256)
    return built if built is not None else _shipped_city(rt, deal.city_code)


def _snapshot_city(session: Session, sha256: str) -> CityConfig | None:
    """The snapshot's config, built once per process (bounded); None when there is no such snapshot."""
    built = _BUILT.get(sha256)
    if built is not None:
        return built
    snapshot = session.get(CityConfigSnapshot, sha256)
    if snapshot is None:
        return None
    if len(_BUILT) >= _BUILT_MAX:
        _BUILT.clear()
    _BUILT[sha256] = built = build_city(snapshot.data)
    return built


def _shipped_city(rt: Runtime, stem: str) -> CityConfig:
    return build_city(resolve(stem, folder_reader(rt.cities.folder)).data)


def pinnable_cities(rt: Runtime, session: Session) -> list[CityConfig]:
    """Every city config a deal can have pinned: each snapshot, and the shipped files (the fallback of deals from
    before snapshots). A handful of rows, read without looking at a deal."""
    snapshots = [_snapshot_city(session, sha256) for sha256 in session.scalars(select(CityConfigSnapshot.sha256))]
    shipped = [_shipped_city(rt, stem) for stem in FolderSource(rt.cities.folder).stems()]
    return [city for city in snapshots if city is not None] + shipped
