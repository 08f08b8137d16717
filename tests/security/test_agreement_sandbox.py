"""Agreement templates and clauses are edited by people, so they render in Jinja's immutable sandbox and see
only the deal's data: a template that reaches for Python internals, the app's settings or Jinja's own globals
is refused with a Chinese error (422 on the preview, never a 500), and the shipped templates render exactly as
they did before the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from flask.testing import FlaskClient
from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader, StrictUndefined

from app.deals import service as deals
from app.domain.agreement import agreement_context
from app.pdf import render
from app.platform.errors import AgreementTemplateError
from app.platform.runtime import Runtime
from tests.factories import RESALE_FORM, actor
from tests.integration.test_agreement_render import DATA

ESCAPES = {
    "python internals": "{{ ''.__class__.__mro__ }}",
    "the template's own context": "{{ self._TemplateReference__context }}",
    "a global's module": "{{ cycler.__init__.__globals__ }}",
    "lipsum's module": "{{ lipsum.__globals__['os'] }}",
    "the app's settings": "{{ config }}",
    "a loop counter's internals": "{% for c in clauses %}{{ loop.__class__ }}{% endfor %}",
    "changing the deal's data": "{{ buyer.update({'name': '王五'}) }}",
    "appending to a list": "{{ clauses.append('x') }}",
    "a markup's method internals": "{{ seal.__html__.__globals__ }}",
    "string formatting into internals": "{{ '{0.__class__}'.format(buyer) }}",
}


def _with_clause(source: str) -> Callable[[object], object]:
    """The real templates, with clause `evil` written by someone editing clauses."""
    loader = ChoiceLoader([DictLoader({"clauses/evil.html.j2": source}), FileSystemLoader(render.TEMPLATES_ROOT)])
    return lambda _source: render.agreement_environment(loader)


@pytest.mark.parametrize("source", ESCAPES.values(), ids=ESCAPES.keys())
def test_a_clause_that_reaches_beyond_the_deal_is_refused_in_chinese(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "_environment", _with_clause(source))
    context = agreement_context(replace(DATA, clauses=("evil",)))
    with pytest.raises(AgreementTemplateError) as caught:
        render.render_agreement_html("resale_escrow", "v1", context)
    assert caught.value.http_status == 422
    assert caught.value.code in ("AGREEMENT_TEMPLATE_UNSAFE", "AGREEMENT_CONTEXT_INCOMPLETE")
    assert "协议模板或条款" in caught.value.message
    assert context["buyer"]["name"] == "张三" and "x" not in context["clauses"]


def test_only_our_function_is_global() -> None:
    environment = render.agreement_environment(DictLoader({}))
    assert set(environment.globals) == {"cn_number"}


def test_the_preview_of_an_unsafe_clause_is_a_422_in_chinese(
    rt: Runtime, login: Callable[[str], FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", dict(RESALE_FORM))
    loader = ChoiceLoader(
        [DictLoader({"clauses/dispute.html.j2": ESCAPES["python internals"]}), FileSystemLoader(render.TEMPLATES_ROOT)]
    )
    monkeypatch.setattr(render, "_environment", lambda _source: render.agreement_environment(loader))
    client = login("agent")
    answer = client.get(f"/deals/{deal_id}/agreement.html", headers={"Accept": "application/json"})
    assert answer.status_code == 422
    assert answer.json is not None and answer.json["code"] == "AGREEMENT_TEMPLATE_UNSAFE"
    assert "不允许" in answer.json["message"] and "mro" not in answer.text.replace(ESCAPES["python internals"], "")


def _shipped_templates() -> list[str]:
    return sorted(path.parent.parent.name for path in render.TEMPLATES_ROOT.glob("*/v1/agreement.html.j2"))


def _clauses() -> tuple[str, ...]:
    return tuple(path.name.removesuffix(".html.j2") for path in sorted(render.TEMPLATES_ROOT.glob("clauses/*.j2")))


@pytest.mark.parametrize("product", _shipped_templates())
def test_shipped_templates_render_as_they_did_without_the_sandbox(product: str) -> None:
    """The same sample data through the plain environment the templates were written for and through the
    sandbox: the same HTML, with the template's own clauses and with every shipped clause."""
    plain = Environment(
        loader=FileSystemLoader(render.TEMPLATES_ROOT),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    plain.globals["cn_number"] = render.chinese_number
    for clauses in ((), _clauses()):
        context = agreement_context(replace(DATA, clauses=clauses, stages=("水电验收", "竣工验收"), authority="某局"))
        sandboxed = render.render_agreement_html(product, "v1", context)
        page = {
            "seal": render.seal_markup("存管平台"),
            **context,
            "inline_css": render._stylesheet(product, "v1", render.repository_source),
        }
        assert sandboxed == plain.get_template(f"{product}/v1/agreement.html.j2").render(page)
