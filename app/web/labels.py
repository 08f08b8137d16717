"""The labels of `app/domain/labels.py` as Jinja filters, plus those that need the runtime: a deal's state in
its own workflow's words (per product: resale states in resale wording), a city's name, a workflow event."""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from sqlalchemy import select

from app.db.models import User
from app.domain import labels
from app.platform.errors import CunguanError
from app.web.access import runtime as _runtime


def city_label(code: str | None) -> str:
    """北京（110000）: the city's name from its config, read once per request."""
    if not code:
        return labels.EMPTY
    names: dict[str, str] = g.setdefault("city_names", {})
    if code not in names:
        try:
            names[code] = _runtime().cities.resolve(code).data["name"]
        except (CunguanError, KeyError, OSError):
            names[code] = code
    return names[code]


def user_names() -> dict[str, str]:
    """Every user's display name by user name, read once per request (a handful of staff)."""
    if "user_names" not in g:
        with _runtime().db.uow() as uow:
            g.user_names = dict(uow.session.execute(select(User.username, User.display_name)).tuples().all())
    names: dict[str, str] = g.user_names
    return names


def bank_names() -> dict[str, str]:
    """Every bank's Chinese name as published now (`rt.known_banks`), read once per request."""
    if "bank_names" not in g:
        g.bank_names = {code: bank.name for code, bank in _runtime().known_banks.items()}
    names: dict[str, str] = g.bank_names
    return names


def bank_label(code: str | None) -> str:
    return labels.bank_label(code, bank_names())


def account_label(code: str | None) -> str:
    return labels.account_label(code, bank_names())


def definition_label(name: str) -> str:
    return labels.definition_label(name, _runtime().products, bank_names())


def state_label(deal: Any, state: str | None = None) -> str:
    """`state` (the deal's current one by default) as the deal's pinned workflow names it."""
    state = deal.state if state is None else state
    if not state:
        return labels.EMPTY
    try:
        return _runtime().workflow(deal.workflow_id, deal.workflow_version).label(state)
    except CunguanError:
        return state


def event_labels() -> dict[str, str]:
    """Every workflow event's label (the latest version's wording first), for the audit log."""
    found: dict[str, str] = {}
    for (_, _), definition in sorted(_runtime().workflows.items(), key=lambda item: -item[0][1]):
        for event, label in definition.events.items():
            found.setdefault(event, label)
        for transition in definition.transitions:
            if transition.label:
                found.setdefault(transition.event, transition.label)
    return found


def audit_action(action: str | None) -> str:
    """An audit action in Chinese: a workflow event or a deal's manual action by its label."""
    if action:
        family, _, event = action.partition(".")
        if family in ("workflow", "deal") and action not in labels.AUDIT_ACTION_LABELS:
            if "event_labels" not in g:
                g.event_labels = event_labels()
            names: dict[str, str] = g.event_labels
            if event in names:
                return f"{labels.AUDIT_FAMILY_LABELS[family]}：{names[event]}"
    return labels.audit_action_label(action)


def _state_names() -> dict[str, str]:
    """Every workflow state's label (the latest version's wording first), for rows that name no workflow."""
    if "state_names" not in g:
        names: dict[str, str] = {}
        for (_, _), definition in sorted(_runtime().workflows.items(), key=lambda item: -item[0][1]):
            for code, state in definition.states.items():
                names.setdefault(code, state.label)
        g.state_names = names
    found: dict[str, str] = g.state_names
    return found


def audit_json(value: Any) -> str:
    """An audit entry's before/after/detail as text: Chinese decoded, and the codes it names (state, product,
    city, bank) by their labels."""
    if isinstance(value, dict):
        named = {
            "state": lambda code: _state_names().get(code, code),
            "product": lambda code: labels.product_label(code, _runtime().products),
            "city": city_label,
            "bank": bank_label,
        }
        value = {
            key: named[key](item) if key in named and isinstance(item, str) else item for key, item in value.items()
        }
    return labels.json_text(value)


def register(app: Flask) -> None:
    app.add_template_filter(labels.dash, "dash")
    app.add_template_filter(audit_json, "audit_json")
    app.add_template_filter(lambda code: labels.product_label(code, _runtime().products), "product_label")
    app.add_template_filter(definition_label, "definition_label")
    app.add_template_filter(bank_label, "bank_label")
    app.add_template_filter(account_label, "account_label")
    app.add_template_filter(city_label, "city_label")
    app.add_template_filter(state_label, "state_label")
    app.add_template_filter(audit_action, "audit_action")
    tables = {
        "account_type_label": labels.ACCOUNT_TYPE_LABELS,
        "job_kind_label": labels.JOB_KIND_LABELS,
        "job_status_label": labels.JOB_STATUS_LABELS,
        "payout_status_label": labels.PAYOUT_STATUS_LABELS,
        "payout_purpose_label": labels.PAYOUT_PURPOSE_LABELS,
        "account_status_label": labels.VIRTUAL_ACCOUNT_STATUS_LABELS,
        "callback_type_label": labels.CALLBACK_TYPE_LABELS,
        "callback_outcome_label": labels.CALLBACK_OUTCOME_LABELS,
    }
    for name, table in tables.items():
        app.add_template_filter(lambda code, table=table: labels.label_of(table, code), name)
