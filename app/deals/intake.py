"""Intake forms for a (city, product) among the live ones, and agents' drafts of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import FormDraft
from app.deals.sample_forms import product_form
from app.deals.service import Actor
from app.domain.forms.schema_form import SchemaForm
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime
from app.signing.policy import required_phones

MAX_VALUE_LENGTH = 1000


@dataclass(frozen=True)
class Choice:
    city_code: str
    city_name: str
    product: str
    title: str

    @property
    def key(self) -> str:
        return f"{self.city_code}:{self.product}"

    @property
    def label(self) -> str:
        return f"{self.city_name} · {self.title}"


def choices(rt: Runtime) -> list[Choice]:
    """Every (city, product) an agent can fill a form for: live cities, the products they offer."""
    return [
        Choice(city.admin_code, city.name, product, rt.products.get(product).name)
        for city in rt.cities.live_cities()
        for product in city.products
    ]


def form_for(rt: Runtime, city_code: str, product: str) -> SchemaForm:
    """The generated form; NotFound unless the city is live and offers the product."""
    if not any(c.city_code == city_code and c.product == product for c in choices(rt)):
        raise NotFound(
            "该城市未开通此业务", code="PRODUCT_NOT_OFFERED", details={"city": city_code, "product": product}
        )
    city_product, variant = rt.cities.get(city_code).product(product), rt.products.get(product)
    # the declaration's base form, plus the city's extra fields, the signing parties' phones required
    return product_form(city_product, variant, required_phones(rt, product))


def bank_choices(rt: Runtime, city_code: str, product: str) -> list[tuple[str, str]]:
    """(code, name) of the custodian banks the agent may choose among (government escrow may name several)."""
    names = {code: bank.name for code, bank in rt.known_banks.items()}  # as published now
    return [(code, names.get(code, code)) for code in rt.cities.get(city_code).product(product).banks]


@dataclass(frozen=True)
class Draft:
    id: int
    city_code: str
    product: str
    values: dict[str, str]
    updated_at: datetime


def _draft(row: FormDraft) -> Draft:
    return Draft(row.id, row.city_code, row.product, json.loads(row.values_json), row.updated_at)


def _own(session: Session, actor: Actor, draft_id: int) -> FormDraft:
    row = session.get(FormDraft, draft_id)
    if row is None or row.owner_id != actor.user_id:
        raise NotFound("草稿不存在或无权查看", code="DRAFT_NOT_FOUND", details={"draft_id": draft_id})
    return row


def save_draft(
    rt: Runtime, actor: Actor, form: SchemaForm, city_code: str, typed: dict[str, str], draft_id: int | None
) -> int:
    """Keep what was typed in the form's fields (nothing is validated); returns the draft's id."""
    values = {f.name: typed[f.name].strip() for f in form.fields if typed.get(f.name, "").strip()}
    too_long = [name for name, value in values.items() if len(value) > MAX_VALUE_LENGTH]
    if too_long:
        raise ValidationError(
            "内容过长，无法保存草稿", code="DRAFT_TOO_LONG", details=dict.fromkeys(too_long, "内容过长")
        )
    payload = json.dumps(values, ensure_ascii=False)
    with rt.db.uow() as uow:
        now = rt.clock()
        if draft_id is None:
            row = FormDraft(owner_id=actor.user_id, city_code=city_code, product=form.product, created_at=now)
            uow.session.add(row)
        else:
            row = _own(uow.session, actor, draft_id)
            row.city_code, row.product = city_code, form.product
        row.values_json = payload
        row.updated_at = now
        uow.session.flush()
        uow.commit()
        return row.id


def load_draft(rt: Runtime, actor: Actor, draft_id: int) -> Draft:
    with rt.db.uow() as uow:
        return _draft(_own(uow.session, actor, draft_id))


def list_drafts(rt: Runtime, actor: Actor) -> list[Draft]:
    with rt.db.uow() as uow:
        query = select(FormDraft).where(FormDraft.owner_id == actor.user_id).order_by(FormDraft.updated_at.desc())
        return [_draft(row) for row in uow.session.scalars(query)]


def delete_draft(rt: Runtime, actor: Actor, draft_id: int) -> None:
    with rt.db.uow() as uow:
        uow.session.delete(_own(uow.session, actor, draft_id))
        uow.commit()
