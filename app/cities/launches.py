"""Go-live (上线) and take-offline (下线): the review flow's last step, after publishing. Agents see a city only
when it is live; publishing a version never changes whether it is.

A city the flow never launched or took offline keeps what its shipped file's `status` says (the bootstrap:
`make run` serves 北京 and the other cities shipped live); a city published through the flow with no file, or
one whose file is not live, stays hidden until a reviewer puts it live."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.cities.sources import published_stems, published_version, reader_engine
from app.db.config_models import CityLaunch
from app.db.models import User
from app.db.session import Database
from app.domain.cities import folder_reader
from app.domain.config_versions import REVIEWER_ROLES, check_role
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime


def file_live(folder: Path, stem: str) -> bool:
    """Whether the shipped file of `stem` says the city is live (its own `status`, the bootstrap)."""
    raw = folder_reader(folder)(stem)
    try:
        data = json.loads(raw) if raw is not None else None
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("status") == "live"


def launch_states(session: Session, folder: Path) -> dict[str, bool]:
    """City → live, for every city the database knows: the flow's 上线 / 下线, else the shipped file's `status`.
    Cities served from their file alone are left to the catalog (the file's own `status` decides)."""
    states = {code: file_live(folder, code) for code in published_stems(session) if code.isdigit()}
    states.update({row.city_code: row.live for row in session.scalars(select(CityLaunch))})
    return states


def is_live(session: Session, folder: Path, stem: str) -> bool:
    return launch_states(session, folder).get(stem, file_live(folder, stem))


class DbLaunches:
    """The running catalog's `launches`: read in a short session of its own."""

    def __init__(self, db: Database, folder: Path) -> None:
        self.engine = reader_engine(db)
        self.folder = folder

    def __call__(self) -> dict[str, bool]:
        with Session(self.engine) as session:
            return launch_states(session, self.folder)


def set_live(rt: Runtime, stem: str, reviewer: str, *, live: bool) -> bool:
    """上线 (`live`) or 下线 a published city, by a reviewer, audited; whether it was live before."""
    what = "上线城市" if live else "下线城市"
    with rt.db.uow() as uow:
        session = uow.session
        role = session.scalar(select(User.role).where(User.username == reviewer, User.active.is_(True)))
        check_role(reviewer, role, REVIEWER_ROLES, what)
        if not stem.isdigit():
            raise ValidationError("只有城市可以上线（虚拟城市是其他城市的模板）", code="NOT_A_CITY")
        version = published_version(session, stem)
        if version is None:
            raise ValidationError(
                f"城市 {stem} 尚无已发布的版本：先发布，再上线", code="NOT_PUBLISHED", details={"city": stem}
            )
        before = is_live(session, rt.cities.folder, stem)
        if before == live:
            raise ValidationError(
                f"城市 {stem} 已经{'上线' if live else '下线'}", code="LAUNCH_UNCHANGED", details={"city": stem}
            )
        row = session.get(CityLaunch, stem, with_for_update=True)
        if row is None:
            row = CityLaunch(city_code=stem)
            session.add(row)
        row.live, row.changed_by, row.changed_at = live, reviewer, rt.clock()
        audit.append(
            session,
            at=rt.clock(),
            actor=reviewer,
            action="city_config.go_live" if live else "city_config.take_offline",
            subject=f"city_config:{stem}:v{version.version}",
            before={"live": before},
            after={"live": live},
            detail={"version": version.version, "content_sha256": version.content_sha256},
        )
        uow.commit()
        return before
