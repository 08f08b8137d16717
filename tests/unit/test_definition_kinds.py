"""The kind registry's checks: what each kind refuses before publishing, in Chinese, and what it seeds."""

from __future__ import annotations

import json

from app.agreements.sources import definition_of
from app.definitions.kinds import build_kinds, content_sha256, workflow_name_of
from app.definitions.workflows import parse_name
from app.platform.bootstrap import build_registry
from app.platform.config import ROOT

KINDS = build_kinds()
REGISTRY = build_registry()
RESALE = (ROOT / "workflows" / "resale_escrow.json").read_text(encoding="utf-8")
NEW_HOME = (ROOT / "products" / "new_home_supervision.json").read_text(encoding="utf-8")
CMBC = (ROOT / "bank_configs" / "cmbc.json").read_text(encoding="utf-8")


class Seeds:
    """What is served when nothing is published: the repository files (DefinitionStore without a database)."""

    def published_hashes(self, kind: str) -> dict[str, str]:
        return {name: content_sha256(content) for name, content in KINDS[kind].seed().items()}

    def content(self, kind: str, name: str, sha256: str) -> str | None:
        return KINDS[kind].seed().get(name)


def problems(kind: str, name: str, content: str) -> list[str]:
    return KINDS[kind].check(REGISTRY, Seeds(), name, content)


def variant(**changes: object) -> str:
    return json.dumps(json.loads(NEW_HOME) | changes, ensure_ascii=False)


def test_every_repository_file_is_seeded_under_its_name_and_passes_its_check() -> None:
    assert {"resale_escrow@1", "gov_escrow@1"} <= set(KINDS["workflow"].seed())
    assert {"dispute", "confidentiality"} <= set(KINDS["clause"].seed())
    assert {"resale_escrow/v1/agreement.html.j2", "resale_escrow/v1/manifest.json", "shared/agreement.css"} <= set(
        KINDS["template"].seed()
    )
    assert not any(name.startswith("clauses/") for name in KINDS["template"].seed()), "clauses are their own kind"
    assert {"2026", "2027"} <= set(KINDS["calendar"].seed())
    assert {"cmbc", "ceb"} <= set(KINDS["bank"].seed()) and {"new_home_supervision"} <= set(KINDS["product"].seed())
    for code, kind in KINDS.items():
        for name, content in kind.seed().items():
            assert kind.check(REGISTRY, Seeds(), name, content) == [], (code, name)


def test_each_kind_refuses_what_would_not_load_in_chinese() -> None:
    assert problems("workflow", "resale_escrow@1", "{")[0].startswith("不是合法的 JSON")
    assert "不一致" in problems("workflow", "resale_escrow@2", RESALE)[0], "the name is the document's id@version"
    data = json.loads(RESALE)
    data["transitions"][0]["guard"] = "moon_is_full"
    assert any("条件函数不存在" in p for p in problems("workflow", "resale_escrow@1", json.dumps(data)))
    assert "模板语法错误" in problems("clause", "dispute", "{% for x in %}")[0]
    assert problems("template", "resale_escrow/v1/manifest.json", '{"masked": ["password"]}')
    assert problems("template", "shared/agreement.css", "p{}</style><script>")
    assert problems("template", "shared/agreement.css", "p { color: #000; }") == []
    assert problems("calendar", "2026", '{"year": 2026}'), "the calendar schema"


def test_names_and_template_paths() -> None:
    assert workflow_name_of(RESALE) == "resale_escrow@1" and workflow_name_of("[]") is None
    assert parse_name("resale_escrow@12") == ("resale_escrow", 12) and parse_name("resale_escrow") is None
    assert definition_of("clauses/dispute.html.j2") == ("clause", "dispute")
    assert definition_of("shared/signatures.html.j2") == ("template", "shared/signatures.html.j2")
    assert definition_of("clauses/x/y.html.j2") == ("template", "clauses/x/y.html.j2")


def test_a_bank_is_checked_as_its_file_would_be_and_named_by_its_code() -> None:
    cmbx = CMBC.replace('"code": "cmbc"', '"code": "cmbx"')
    assert problems("bank", "cmbx", cmbx) == []
    assert "与名称 cmbx 不一致" in problems("bank", "cmbx", CMBC)[0]
    assert any("不支持的银行接口协议 v2" in p for p in problems("bank", "cmbx", cmbx.replace('"v1"', '"v2"')))
    assert problems("bank", "cmbx", "{")[0].startswith("不是合法的 JSON")


def test_a_product_variant_needs_its_template_workflow_and_a_prefix_of_its_own() -> None:
    fresh = {"code": "new_home_plus", "name": "新房资金监管（增强）", "deal_prefix": "NP"}
    assert problems("product", "new_home_plus", variant(**fresh)) == []
    assert any(
        "编号前缀 NH 已被业务 new_home_supervision 使用" in p
        for p in problems("product", "new_home_plus", variant(**fresh | {"deal_prefix": "NH"}))
    )
    unknown = problems("product", "new_home_plus", variant(**fresh, agreement={"template": "new_home_plus/v1"}))
    assert unknown == ["/agreement/template：协议模板 new_home_plus/v1 不存在"]
    assert problems("product", "new_home_plus", variant(**fresh, workflow={"id": "resale_escrow", "version": 7})) == [
        "/workflow：工作流 resale_escrow@7 未发布"
    ]
    assert any("与文件名不符" in p for p in problems("product", "other", variant(**fresh)))
    assert problems("product", "new_home_supervision", variant(name="新房监管")) == [], "a name may change"
    moved = problems("product", "new_home_supervision", variant(base="gov_escrow", deal_prefix="NQ"))
    assert any("基础业务不能再改" in p for p in moved) and any("编号前缀不能再改" in p for p in moved)
