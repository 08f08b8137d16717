"""The kind registry's checks: what each kind refuses before publishing, in Chinese, and what it seeds."""

from __future__ import annotations

import json

from app.agreements.sources import definition_of
from app.definitions.kinds import build_kinds, workflow_name_of
from app.definitions.workflows import parse_name
from app.platform.bootstrap import build_registry
from app.platform.config import ROOT

KINDS = build_kinds()
REGISTRY = build_registry()
RESALE = (ROOT / "workflows" / "resale_escrow.json").read_text(encoding="utf-8")


def problems(kind: str, name: str, content: str) -> list[str]:
    return KINDS[kind].check(REGISTRY, name, content)


def test_every_repository_file_is_seeded_under_its_name_and_passes_its_check() -> None:
    assert {"resale_escrow@1", "gov_escrow@1"} <= set(KINDS["workflow"].seed())
    assert {"dispute", "confidentiality"} <= set(KINDS["clause"].seed())
    assert {"resale_escrow/v1/agreement.html.j2", "resale_escrow/v1/manifest.json", "shared/agreement.css"} <= set(
        KINDS["template"].seed()
    )
    assert not any(name.startswith("clauses/") for name in KINDS["template"].seed()), "clauses are their own kind"
    assert {"2026", "2027"} <= set(KINDS["calendar"].seed())
    for code, kind in KINDS.items():
        for name, content in kind.seed().items():
            assert kind.check(REGISTRY, name, content) == [], (code, name)


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
