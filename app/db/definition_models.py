"""Published definitions other than city configs (workflows, clauses, agreement templates, calendars…): one
generic table of reviewed versions per (kind, name) and the simulations their approval reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow
from app.db.config_models import CONFIG_STATUSES


class DefinitionVersion(Base):
    """One version of one definition (kind "workflow", name "resale_escrow@1"; kind "clause", name "dispute"…),
    draft → submitted → approved → published (→ retired), like a city config."""

    __tablename__ = "definition_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)  # the document as written
    content_sha256: Mapped[str] = mapped_column(String(64))  # sha256 of its UTF-8 bytes
    author: Mapped[str] = mapped_column(String(64))
    reviewer: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("kind", "name", "version"),
        CheckConstraint(f"status IN {CONFIG_STATUSES!r}", name="status_known"),
        CheckConstraint("version > 0", name="version_positive"),
        CheckConstraint("reviewer IS NULL OR reviewer <> author OR author = 'system'", name="four_eyes"),
        Index(
            "uq_definition_versions_one_published",
            "kind",
            "name",
            unique=True,
            sqlite_where=text("status = 'published'"),
            postgresql_where=text("status = 'published'"),
        ),
        Index("ix_definition_versions_sha", "kind", "content_sha256"),
    )


class DefinitionSimulation(Base):
    """The city simulations run with one exact definition draft in place (every city product that uses it)."""

    __tablename__ = "definition_simulations"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    ok: Mapped[bool] = mapped_column()
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
