"""Who signs on a phone (app/signing/policy.py): party signing is on unless CUNGUAN_PARTY_SIGNING=0, and every
product's signing parties have their phone field in the product's form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.domain.forms.products import MAPPERS
from app.domain.forms.schema_form import load_base_schema
from app.platform.config import Config
from app.signing.policy import SIGNING_ORDER, SIGNING_PHONES

PRODUCTS = Path(__file__).resolve().parents[2] / "products"


def _config(tmp_path: Path) -> Config:
    return Config(instance_path=tmp_path, database_url="sqlite://", keys_dir=tmp_path, secret_key="x")


def test_party_signing_is_on_by_default_and_off_only_with_zero(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CUNGUAN_PARTY_SIGNING", raising=False)
    assert _config(tmp_path).party_signing is True
    monkeypatch.setenv("CUNGUAN_PARTY_SIGNING", "1")
    assert _config(tmp_path).party_signing is True
    monkeypatch.setenv("CUNGUAN_PARTY_SIGNING", "0")
    assert _config(tmp_path).party_signing is False


def test_every_base_product_names_its_signing_phones_and_every_form_has_them() -> None:
    assert set(SIGNING_PHONES) == set(MAPPERS), "a base product without a signing rule"
    for declaration in sorted(PRODUCTS.glob("*.json")):
        product = json.loads(declaration.read_text(encoding="utf-8"))
        phones = SIGNING_PHONES[product["base"]]
        assert "payer" in phones and set(phones) <= set(SIGNING_ORDER), product["code"]
        fields = load_base_schema(product["form"])["properties"]
        for name in phones.values():
            assert fields[name].get("format") == "cn-mobile", f"{product['code']}: {name}"
