"""城市配置 · 表单编辑: the structured editor of a city's draft (`app.studio`), next to the JSON editor.

GET shows the working content (the draft under work, else the published config) as the form; POST reads the form
back into a document, checks it as every draft is checked (`publishing.validated`) and saves it as the draft —
or shows the page again with what was typed and each error, in Chinese, at its field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from werkzeug.wrappers import Response

from app.cities import publishing
from app.cities import simulation_runs as simulation_jobs
from app.cities.preview_view import PREVIEW_ROLES
from app.cities.sources import SessionCitySource, open_version
from app.db.config_models import CityConfigVersion
from app.definitions.templates import studio_catalog
from app.domain.cities import SCHEMA_PATH, resolve
from app.domain.config_versions import AUTHOR_ROLES
from app.domain.problems import CityConfigInvalid, Problem
from app.platform.errors import CunguanError
from app.studio.catalog import Catalog
from app.studio.city_form import CityStudio
from app.studio.messages import plain
from app.studio.raw import line_of, problem_lines
from app.studio.specs import Inputs
from app.web.access import runtime


def located_problems(text: str, problems: list[Problem]) -> list[tuple[int | None, str]]:
    """The JSON tab's problems as (line, plain Chinese message): a text that is not JSON at its error's line."""
    if not problems:
        return []
    broken = problem_lines(text)
    if broken:
        return [(line, message) for line, message in broken]
    catalog = _catalog()
    return [(line_of(text, problem.pointer), plain(problem, catalog)) for problem in problems]


@cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class _Working:
    """The content the studio edits: the draft under work, else the published config, and its parent resolved."""

    current: CityConfigVersion | None
    document: dict[str, Any]
    parent: dict[str, Any] | None
    running: bool  # a simulation is queued or running: the editor is read-only meanwhile


def _working(stem: str) -> _Working | None:
    rt = runtime()
    with rt.db.uow() as uow:
        session = uow.session
        current = open_version(session, stem)
        source = SessionCitySource(session, rt.cities.folder)
        raw = current.content if current is not None else (source.read(stem) or b"").decode()
        if not raw:
            return None
        document = json.loads(raw)
        parent = resolve(document["extends"], source.read).data if document.get("extends") else None
        run = simulation_jobs.latest_run(session, stem)
    return _Working(current, document, parent, run is not None and run.active)


def _catalog() -> Catalog:
    rt = runtime()
    return studio_catalog(rt)


def _studio() -> CityStudio:
    return CityStudio(_schema(), _catalog())


class StudioRoutes:
    """Mixed into `ConfigsView` (its roles, `_stem`, `_require`, `render`)."""

    def _studio_page(
        self,
        stem: str,
        typed: Inputs | None = None,
        errors: dict[str, str] | None = None,
        problems: list[Problem] | None = None,
    ) -> tuple[str, int] | str:
        working = _working(stem)
        if working is None:
            abort(404)
        studio = _studio()
        form = studio.form(working.document, working.parent, typed, errors)
        for problem in problems or []:
            form.place(problem.pointer, plain(problem, studio.catalog))
        current = working.current
        draft = current is None or current.status == "draft"
        editable = draft and self.can_author and not working.running  # type: ignore[attr-defined]
        page = self.render(  # type: ignore[attr-defined]
            "admin/cunguan/config_studio.html",
            stem=stem,
            name=working.document.get("name", stem),
            form=form,
            current=current,
            editable=editable,
            running=working.running,
            previewable=self.actor.role in PREVIEW_ROLES,  # type: ignore[attr-defined]
        )
        return (page, 422) if form.error_count else page

    @expose("/<stem>/studio")
    def studio(self, stem: str) -> tuple[str, int] | str:
        return self._studio_page(self._stem(stem))  # type: ignore[attr-defined]

    @expose("/<stem>/studio", methods=("POST",))
    def studio_save(self, stem: str) -> Response | tuple[str, int] | str:
        self._require(AUTHOR_ROLES)  # type: ignore[attr-defined]
        stem = self._stem(stem)  # type: ignore[attr-defined]
        typed = {key: values for key, values in request.form.to_dict(flat=False).items() if key != "csrf_token"}
        working = _working(stem)
        if working is None:
            flash(f"城市 {stem} 不存在", "error")
            return redirect(url_for(".index"))
        new, errors = _studio().read(typed, working.document, working.parent)
        if errors:
            return self._studio_page(stem, typed, errors)
        content = json.dumps(new, ensure_ascii=False, indent=2) + "\n"
        rt = runtime()
        try:
            with rt.db.uow() as uow:
                publishing.validated(rt, uow.session, stem, content)
            version = publishing.save_draft(rt, stem, content, self.actor.username)  # type: ignore[attr-defined]
        except CityConfigInvalid as invalid:
            return self._studio_page(stem, typed, problems=invalid.problems)
        except CunguanError as error:
            flash(error.message, "error")
            return redirect(url_for(".studio", stem=stem))
        flash(f"已保存为第 {version.version} 版草稿", "success")
        return redirect(url_for(".studio", stem=stem))
