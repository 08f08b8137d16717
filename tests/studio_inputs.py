"""What a browser posts for a studio form as rendered (the inputs of `admin/cunguan/studio_fields.html`)."""

from __future__ import annotations

from app.studio.model import StudioForm


def form_inputs(form: StudioForm) -> dict[str, list[str]]:
    posted: dict[str, list[str]] = {}
    for section in form.sections:
        if section.switchable and section.enabled:
            posted[f"{section.key}/_on"] = ["1"]
        for field in section.all_fields():
            if field.widget == "readonly":
                continue
            if field.widget in ("checkbox", "flag"):
                if field.value is True:
                    posted[field.key] = ["1"]
            elif field.widget == "checks":
                posted[field.key] = list(field.value) if isinstance(field.value, list) else []
            else:
                posted[field.key] = [str(field.value)]
                if field.widget in ("rate", "duration"):
                    posted[field.key + ":unit"] = [field.unit]
                if field.widget == "duration" and field.cut_off:
                    posted[field.key + ":cut_off"] = ["1"]
    return posted
