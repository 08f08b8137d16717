"""Previews of a city config's version under work (issue 18), Flask-free: the agents' intake form generated from
the draft's content (not the published one), and the agreement of every product the draft changes, rendered with a
sample deal built from the product's sample form (`app.deals.sample_forms`) under the draft's config - fees, release
plan, clauses, extra fields. The sample deal is never stored; the agreement is never signed, and its HTML and PDF
carry the watermark 样本/预览 on every page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from app.agreements.service import agreement_data_under
from app.agreements.sources import deal_source
from app.cities import review
from app.cities.publishing import validated
from app.cities.sources import open_version
from app.db.models import Deal
from app.deals.sample_forms import product_form, sample_form
from app.deals.service import DealOrigin, deal_row
from app.definitions.templates import studio_catalog
from app.domain.agreement import agreement_context
from app.domain.cities import CityConfig, ProductConfig
from app.domain.config_versions import STATUS_LABELS
from app.domain.forms.products import deal_fields
from app.domain.forms.schema_form import SchemaForm
from app.domain.problems import CityConfigInvalid
from app.fees.status import fee_terms
from app.pdf.render import html_to_pdf, render_agreement_html, template_masked_fields
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime
from app.signing.policy import required_phones
from app.state_machine.parameters import resolve
from app.studio.messages import plain

SAMPLE_DEAL_NO = "样本-预览"
SAMPLE_CREATOR_ID = 0  # the sample deal is never stored: no user made it
WATERMARK = "样本/预览"
BANNER = "样本/预览：本协议由配置草稿和样本数据生成，未签署，不具法律效力"
_BODY = re.compile(r"<body[^>]*>", re.IGNORECASE)
_HEAD_END = re.compile(r"</head>", re.IGNORECASE)
# fixed: repeated on every printed page (WeasyPrint) and over the whole frame on screen
WATERMARK_STYLE = """<style>
.preview-watermark { position: fixed; top: 38%; left: 0; right: 0; text-align: center; font-size: 64pt;
  color: rgba(176, 0, 32, .16); transform: rotate(-30deg); pointer-events: none; z-index: 10; }
.preview-banner { border: 2px solid #b00020; color: #b00020; padding: 4pt 8pt; margin-bottom: 8pt; font-weight: bold; }
</style>"""


class DraftInvalid(ValidationError):
    """A version under work that cannot be previewed; `details` lists every problem in Chinese."""

    code = "DRAFT_NOT_PREVIEWABLE"
    http_status = 422


@dataclass(frozen=True)
class Draft:
    """The version under work of a city, checked as every draft is checked, and what it changes."""

    stem: str
    version: int
    status: str  # in Chinese
    city: CityConfig
    changed: tuple[str, ...]  # the products it changes, in the config's order

    def product_names(self, rt: Runtime) -> dict[str, str]:
        return {code: rt.products.get(code).name for code in self.city.products}


def load_draft(rt: Runtime, stem: str) -> Draft:
    """The version under work of `stem` (draft, submitted or approved); NotFound without one, DraftInvalid (422,
    the problems in plain Chinese) when its checks fail."""
    with rt.db.uow() as uow:
        session = uow.session
        current = open_version(session, stem)
        if current is None:
            raise NotFound(f"城市配置 {stem} 没有草稿或待审核的版本可以预览", code="NO_DRAFT_TO_PREVIEW")
        try:
            _, city = validated(rt, session, stem, current.content)
        except CityConfigInvalid as invalid:
            catalog = studio_catalog(rt)
            problems = [plain(problem, catalog) for problem in invalid.problems]
            raise DraftInvalid(
                f"第 {current.version} 版草稿有 {len(problems)} 处错误，修改后才能预览", details=problems
            ) from invalid
        changed = review.changed_products(rt, session, current, list(city.products))
        return Draft(stem, current.version, STATUS_LABELS[current.status], city, tuple(changed))


def intake_form(rt: Runtime, draft: Draft, product: str) -> tuple[SchemaForm, list[tuple[str, str]]]:
    """The form agents would fill for `product` under the draft (its base form plus the draft's extra fields) and
    the custodian banks they would choose among, as `app.deals.intake` builds them for a live city."""
    config = _product(draft, product)
    names = {code: bank.name for code, bank in rt.known_banks.items()}
    banks = [(code, names.get(code, code)) for code in config.banks]
    return product_form(config, rt.products.get(product), required_phones(rt, product)), banks


def sample_deal(rt: Runtime, draft: Draft, product: str, now: datetime) -> Deal:
    """A deal of `product` as the draft would make it from the sample form: columns, facts, extra fields, the
    first custodian bank; transient (no session, no number, no pins: the agreement reads what is published)."""
    config = _product(draft, product)
    variant = rt.products.get(product)
    try:
        clean = product_form(config, variant).validate(sample_form(config, variant))
    except ValidationError as invalid:
        found = invalid.details if isinstance(invalid.details, dict) else {}
        problems = [f"{name}：{message}" for name, message in found.items()] or [invalid.message]
        raise DraftInvalid(
            f"无法按草稿的表单生成{variant.name}的样本数据，请检查表单字段", details=problems
        ) from invalid
    definition = rt.workflow(config.workflow_id, config.workflow_version)
    fields = deal_fields(variant.base, clean, resolve(definition.parameters, config.overrides()), config.form)
    made = DealOrigin(draft.stem, draft.city, config, definition, config.banks[0], SAMPLE_CREATOR_ID, {})
    return Deal(**deal_row(SAMPLE_DEAL_NO, made, definition.initial, fields, now))


def agreement_html(rt: Runtime, draft: Draft, product: str) -> str:
    """The agreement of the sample deal under the draft, watermarked 样本/预览."""
    deal = sample_deal(rt, draft, product, rt.clock())
    data = agreement_data_under(rt, deal, draft.city, fee_terms(rt, draft.city, deal))
    template, version = deal.agreement_template.split("/")
    source = deal_source(rt.definitions, deal)
    masked = template_masked_fields(template, version, source)
    return watermarked(render_agreement_html(template, version, agreement_context(data, masked), source))


def agreement_pdf(rt: Runtime, draft: Draft, product: str) -> bytes:
    """The same agreement laid out as a PDF: unsigned, the watermark on every page."""
    return html_to_pdf(agreement_html(rt, draft, product))


def watermarked(html: str) -> str:
    """`html` with the 样本/预览 watermark over every page and a banner above the agreement."""
    marks = f'<div class="preview-watermark" aria-hidden="true">{WATERMARK}</div><p class="preview-banner">{BANNER}</p>'
    body = _BODY.search(html)
    if body is None:
        return f"{WATERMARK_STYLE}{marks}{html}"
    html = html[: body.end()] + marks + html[body.end() :]
    head = _HEAD_END.search(html)
    at = head.start() if head is not None else 0
    return html[:at] + WATERMARK_STYLE + html[at:]


def _product(draft: Draft, product: str) -> ProductConfig:
    if product not in draft.city.products:
        raise NotFound("草稿未开通该业务", code="PRODUCT_NOT_IN_DRAFT", details={"product": product})
    return draft.city.products[product]
