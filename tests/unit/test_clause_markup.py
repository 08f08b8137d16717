"""The clause editor's markup (app/domain/clause_markup.py): paragraphs, lists, bold and offered variables become
the clause's HTML; typed HTML, scripts and template syntax never do; the shipped clauses read back and round-trip;
every variable the editor offers exists in the agreement's context (app/domain/clause_variables.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import DictLoader

from app.domain.clause_markup import ClauseMarkupError, ClauseText, from_clause, to_clause
from app.domain.clause_variables import DEAL_VARIABLES, offered, sample_context
from app.pdf.render import agreement_environment, render_sandboxed

CLAUSES = Path(__file__).resolve().parents[2] / "agreement_templates" / "clauses"
PATHS = frozenset(v.path for v in DEAL_VARIABLES) | {"extra.house_area"}


def _render(source: str, context: dict[str, object] | None = None) -> str:
    environment = agreement_environment(DictLoader({"c": source}))
    return render_sandboxed(environment, "c", context or sample_context(["house_area"]))


def test_paragraphs_lists_bold_and_variables_become_the_clauses_html() -> None:
    body = "甲方 **{{ buyer.name }}** 同意：\n1. 首付\n2. 尾款 {{ custody.upper }}\n\n- 其一\n- 其二\n"
    body += "房屋面积：{{ extra.house_area }}"
    source = to_clause(ClauseText("特别约定", body), PATHS)
    assert source == (
        '<section class="article">\n  <h2>{{ clause_no }}\u3000特别约定</h2>\n'
        "  <p>甲方 <strong>{{ buyer.name }}</strong> 同意：</p>\n"
        "  <ol>\n    <li>首付</li>\n    <li>尾款 {{ custody.upper }}</li>\n  </ol>\n"
        "  <ul>\n    <li>其一</li>\n    <li>其二</li>\n  </ul>\n"
        "  <p>房屋面积：{{ extra.house_area }}</p>\n</section>\n"
    )
    shown = _render(source)
    assert "第八条\u3000特别约定" in shown and "<strong>张三</strong>" in shown
    assert "壹佰万元整" in shown and "房屋面积：（样本）" in shown


@pytest.mark.parametrize(
    "typed",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "<a href='javascript:alert(1)'>点击</a>",
        "</section><script>alert(1)</script>",
    ],
)
def test_typed_html_is_text_never_a_tag(typed: str) -> None:
    source = to_clause(ClauseText("标题", typed), PATHS)
    assert "<script" not in source and "<img" not in source and "<a " not in source
    assert source.count("<section") == 1 and source.count("</section>") == 1
    assert "&lt;" in _render(source)


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("{% for x in buyer %}x{% endfor %}", "模板语法"),
        ("{{ buyer.__class__ }}", "未知变量"),
        ("{{ buyer.name.__class__.__mro__ }}", "模板语法"),
        ("{{ ''.__class__ }}", "模板语法"),
        ("{{ cn_number(1) }}", "模板语法"),
        ("{{ buyer.name|e }}", "模板语法"),
        ("{# comment #}", "模板语法"),
        ("{{ nope }}", "未知变量"),
        ("{{ buyer.name }", "模板语法"),
        ("**没有成对", "没有成对"),
    ],
)
def test_template_syntax_unknown_variables_and_unpaired_bold_are_refused(typed: str, problem: str) -> None:
    with pytest.raises(ClauseMarkupError) as refused:
        to_clause(ClauseText("标题", typed), PATHS)
    assert any(problem in text for text in refused.value.problems)


def test_the_title_is_text_and_braces_in_the_body_are_only_characters() -> None:
    with pytest.raises(ClauseMarkupError, match="标题只能是文字"):
        to_clause(ClauseText("{{ buyer.name }}", "正文"), PATHS)
    with pytest.raises(ClauseMarkupError, match="请填写条款标题"):
        to_clause(ClauseText(" ", "正文"), PATHS)
    source = to_clause(ClauseText("标题", "集合 {a} 与 {{{ buyer.name }}}"), PATHS)
    assert "&#123;a&#125;" in source
    assert "集合 &#123;a&#125; 与 &#123;张三&#125;" in _render(source)  # a browser shows { }


def test_every_shipped_clause_reads_back_and_round_trips() -> None:
    for path in sorted(CLAUSES.glob("*.html.j2")):
        source = path.read_text(encoding="utf-8")
        clause = from_clause(source, PATHS)
        assert clause is not None, path.name
        assert to_clause(clause, PATHS) == source
    markup = from_clause((CLAUSES / "dispute.html.j2").read_text(encoding="utf-8"), PATHS)
    assert markup is not None and markup.title == "争议解决" and markup.body.startswith("一、本协议的订立")


def test_a_list_and_bold_read_back_as_markup() -> None:
    clause = ClauseText("标题", "前言 **重点**\n1. 一\n2. 二\n- 甲\n结语 {{ seller.name }}")
    assert from_clause(to_clause(clause, PATHS), PATHS) == clause


@pytest.mark.parametrize(
    "source",
    [
        '<section class="article">\n  <h2>{{ clause_no }}\u3000标题</h2>\n  {% if authority %}<p>x</p>{% endif %}\n'
        "</section>\n",
        '<section class="article">\n  <h2>{{ clause_no }}\u3000标题</h2>\n  <p class="note">x</p>\n</section>\n',
        '<section class="article">\n  <h2>{{ clause_no }}\u3000标题</h2>\n  <p>{{ buyer.phone }}</p>\n</section>\n',
        "<p>没有条款的结构</p>\n",
    ],
)
def test_a_clause_the_markup_cannot_say_is_not_read_back(source: str) -> None:
    assert from_clause(source, PATHS) is None


def test_every_offered_variable_exists_in_the_agreements_context() -> None:
    offer = offered({"house_area": "房屋面积"})
    assert offer[-1].path == "extra.house_area" and offer[-1].label == "附加信息：房屋面积"
    context = sample_context(["house_area"])
    for variable in offer:
        shown = _render("{{ " + variable.path + " }}", context)  # StrictUndefined: a missing one raises
        assert isinstance(shown, str)
    assert _render("{{ buyer.id_number }}") == "110***********002X"  # masked as the agreement masks it
