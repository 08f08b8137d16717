"""Low-code publishing tables: config versions, their simulations and the snapshots deals pin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow

CONFIG_STATUSES = ("draft", "submitted", "approved", "rejected", "published", "retired")


class CityConfigVersion(Base):
    """One version of one city config file (stem: 110000, _virtual…), reviewed before it is published."""

    __tablename__ = "city_config_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    city_code: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)  # the file as written (raw JSON)
    content_sha256: Mapped[str] = mapped_column(String(64))  # sha256 of its canonical JSON
    author: Mapped[str] = mapped_column(String(64))
    reviewer: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)
    rollback_of: Mapped[int | None] = mapped_column(Integer)  # the version number this one republishes
    copied_from: Mapped[str | None] = mapped_column(String(16))  # a new city's first draft: the city it copies
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("city_code", "version"),
        CheckConstraint(f"status IN {CONFIG_STATUSES!r}", name="status_known"),
        CheckConstraint("version > 0", name="version_positive"),
        Index(
            "uq_city_config_versions_one_published",
            "city_code",
            unique=True,
            sqlite_where=text("status = 'published'"),
            postgresql_where=text("status = 'published'"),
        ),
    )


class CityLaunch(Base):
    """Whether agents see a city: set by a reviewer's 上线 / 下线 after publishing (no row: the shipped file's
    `status`, the bootstrap)."""

    __tablename__ = "city_launches"
    city_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    live: Mapped[bool] = mapped_column()
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConfigSimulation(Base):
    """The outcome of `flask city simulate` for one exact config (its content and its resolved hash)."""

    __tablename__ = "config_simulations"
    id: Mapped[int] = mapped_column(primary_key=True)
    city_code: Mapped[str] = mapped_column(String(16))
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    resolved_sha256: Mapped[str] = mapped_column(String(64))
    complete: Mapped[bool] = mapped_column()  # every product of the config was simulated
    ok: Mapped[bool] = mapped_column()
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CityConfigSnapshot(Base):
    """A resolved city config (extends merged) as deals pinned it, keyed by `Deal.city_config_sha256`."""

    __tablename__ = "city_config_snapshots"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    city_code: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    layers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # leaf first: file, content hash, version
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
