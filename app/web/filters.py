"""Template filters: money, Shanghai time, actor names, masks."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from app.domain.ledger import KIND_LABELS, TRANSFER_LABELS
from app.domain.money import format_yuan, to_chinese_upper
from app.domain.pii_mask import mask_card, mask_id_number, mask_phone
from app.domain.timezone import SHANGHAI
from app.platform.cli_base import current_runtime
from app.users.service import ROLE_LABELS
from app.web.labels import bank_label, user_names


def shanghai_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def actor_label(actor: str | None) -> str:
    """Who did it: 用户 王芳（wangf）by the user's display name, 银行（中国光大银行）, 系统; a bare user name
    (config rows) is a user too."""
    if not actor:
        return "—"
    if ":" not in actor:
        return "系统" if actor == "system" else _user(actor)
    kind, _, name = actor.partition(":")
    if kind == "bank":
        return f"银行（{bank_label(name)}）"
    if kind == "system":
        return "系统"
    return _user(name)


def _user(username: str) -> str:
    shown = user_names().get(username)
    return f"用户 {shown}（{username}）" if shown and shown != username else f"用户 {username}"


def register(app: Flask) -> None:
    app.add_template_filter(format_yuan, "yuan")
    app.add_template_filter(to_chinese_upper, "rmb_upper")
    app.add_template_filter(shanghai_time, "shanghai")
    app.add_template_filter(actor_label, "actor")
    # a product may lack a party's field (an intent deposit has no seller yet): shown empty
    app.add_template_filter(lambda value: mask_id_number(value) if value else "", "mask_id")
    app.add_template_filter(lambda value: mask_card(value) if value else "", "mask_account")
    app.add_template_filter(lambda value: mask_phone(value) if value else "", "mask_phone")
    app.add_template_global(ROLE_LABELS, "ROLE_LABELS")
    # a product's declaration (app.domain.products): its Chinese name and what its parties are called
    app.add_template_global(lambda code: current_runtime().products.get(code), "product_variant")
    app.add_template_filter(lambda code: TRANSFER_LABELS.get(code, code), "transfer_label")
    app.add_template_filter(lambda kind: KIND_LABELS.get(kind, kind), "kind_label")
