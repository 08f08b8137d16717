"""A studio form as the page shows it after a post: what was typed in its boxes (a rejected value stays to be
corrected) and each problem at the field, row group or section it belongs to. Shared by the city editor and the
definition editors."""

from __future__ import annotations

from collections.abc import Mapping

from app.studio.model import Section, StudioForm
from app.studio.specs import Inputs, text_of


def filled(sections: list[Section], typed: Inputs | None, errors: Mapping[str, str] | None) -> StudioForm:
    studio = StudioForm(sections)
    if typed is not None:
        _overlay(studio, typed)
    for key, message in (errors or {}).items():
        studio.place(key, message)
    return studio


def _overlay(studio: StudioForm, typed: Inputs) -> None:
    for section in studio.sections:
        if section.switchable:
            section.enabled = f"{section.key}/_on" in typed
        for field in section.all_fields():
            if field.widget == "readonly":
                continue
            if field.widget in ("checkbox", "flag"):
                field.value = field.key in typed
            elif field.widget == "checks":
                field.value = [v for v in typed.get(field.key, []) if v]
            else:
                field.value = text_of(typed, field.key)
                field.unit = text_of(typed, field.key + ":unit") or field.unit
                field.cut_off = field.key + ":cut_off" in typed
