"""Migration 0044: every city published before it keeps being seen by agents as its published config's `status`
said (own or inherited along `extends`); from then on only 上线 / 下线 change it."""

from __future__ import annotations

import json

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app.cities import publishing
from app.db.config_models import CityConfigVersion
from app.domain.config_versions import content_sha256
from app.platform.cli import alembic_config
from app.platform.config import ROOT
from app.platform.runtime import Runtime


def test_published_cities_keep_their_status_as_their_go_live_state(rt: Runtime, database_url: str) -> None:
    publishing.import_files(rt)
    wuhan = json.loads((ROOT / "city_configs" / "310000.json").read_text(encoding="utf-8"))
    wuhan |= {"admin_code": "420100", "name": "武汉"}
    chengdu = {k: v for k, v in wuhan.items() if k != "status"} | {"admin_code": "510100", "name": "成都"}
    with rt.db.uow() as uow:
        for code, data in (("420100", wuhan), ("510100", chengdu)):  # published through the flow before 0044
            content = json.dumps(data, ensure_ascii=False)
            uow.session.add(
                CityConfigVersion(
                    city_code=code,
                    version=1,
                    status="published",
                    content=content,
                    content_sha256=content_sha256(content),
                    author="ops",
                    reviewer="reviewer",
                )
            )
        uow.commit()
    with rt.db.engine.begin() as connection:
        connection.execute(text("DROP TABLE city_launches"))
        connection.execute(text("ALTER TABLE city_config_versions DROP COLUMN copied_from"))
    config = alembic_config(database_url)
    command.stamp(config, ScriptDirectory.from_config(config).get_revision("0044").down_revision)
    command.upgrade(config, "0044")
    with rt.db.engine.connect() as connection:
        states = dict(connection.execute(text("SELECT city_code, live FROM city_launches")).all())
    assert {code: bool(live) for code, live in states.items()} == {
        "110000": True,
        "310000": True,
        "330100": True,
        "370100": True,
        "370200": False,  # 青岛 and 深圳 shipped as draft
        "440300": False,
        "420100": True,  # its own "status": "live"
        "510100": False,  # inherits the virtual city's draft
    }
    assert {city.admin_code for city in rt.cities.live_cities()} == {"110000", "310000", "330100", "370100", "420100"}
