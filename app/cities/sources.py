"""City configs as stored in the database: the published version serves, the shipped file is the bootstrap
(read when a city has no published version yet). Drafts for `flask city diff` come from here too."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from app.cities.versions import CityVersions
from app.db.config_models import CityConfigVersion
from app.db.session import Database
from app.domain.cities import FolderSource
from app.domain.config_versions import OPEN_STATUSES


def published_version(session: Session, stem: str) -> CityConfigVersion | None:
    return session.scalar(
        select(CityConfigVersion).where(CityConfigVersion.city_code == stem, CityConfigVersion.status == "published")
    )


def open_version(session: Session, stem: str) -> CityConfigVersion | None:
    """The version under work (draft, submitted or approved), if any."""
    return session.scalar(
        select(CityConfigVersion).where(
            CityConfigVersion.city_code == stem, CityConfigVersion.status.in_(OPEN_STATUSES)
        )
    )


def published_stems(session: Session) -> list[str]:
    query = select(CityConfigVersion.city_code).where(CityConfigVersion.status == "published")
    return sorted(session.scalars(query))


class SessionCitySource:
    """Published versions read in an open session, files where there are none, `overlay` (stem → raw JSON)
    on top: how a draft is resolved against its published parents."""

    def __init__(self, session: Session, folder: Path, overlay: Mapping[str, str] | None = None) -> None:
        self.session = session
        self.files = FolderSource(folder)
        self.overlay = dict(overlay or {})

    def read(self, stem: str) -> bytes | None:
        if stem in self.overlay:
            return self.overlay[stem].encode()
        version = published_version(self.session, stem)
        return version.content.encode() if version is not None else self.files.read(stem)

    def stems(self) -> list[str]:
        return sorted({*self.files.stems(), *published_stems(self.session), *self.overlay})


def reader_engine(db: Database) -> Engine:
    """An engine for reads that may happen while the same thread holds a write transaction: on SQLite the
    app's engine starts every transaction with BEGIN IMMEDIATE (it would wait for itself); a plain
    connection reads the last committed state (WAL) without the write lock."""
    if db.engine.dialect.name != "sqlite":
        return db.engine
    return create_engine(db.url, connect_args={"timeout": 30, "check_same_thread": False})


class DbCitySource:
    """The running app's source: each read in a short read-only session of its own."""

    def __init__(self, db: Database, folder: Path) -> None:
        self.engine = reader_engine(db)
        self.folder = folder

    def read(self, stem: str) -> bytes | None:
        with Session(self.engine) as session:
            return SessionCitySource(session, self.folder).read(stem)

    def stems(self) -> list[str]:
        with Session(self.engine) as session:
            return SessionCitySource(session, self.folder).stems()


class DbVersions:
    """Draft = the version under work in the database, published = the published version; where the
    database has none, `fallback` answers (the working file and the file in git HEAD)."""

    def __init__(self, db: Database, fallback: CityVersions) -> None:
        self.db = db
        self.fallback = fallback

    def draft(self, stem: str) -> str | None:
        with self.db.uow() as uow:
            version = open_version(uow.session, stem)
            content = version.content if version is not None else None
        return content if content is not None else self.fallback.draft(stem)

    def published(self, stem: str) -> str | None:
        with self.db.uow() as uow:
            version = published_version(uow.session, stem)
            content = version.content if version is not None else None
        return content if content is not None else self.fallback.published(stem)
