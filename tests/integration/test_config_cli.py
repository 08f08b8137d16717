"""flask city … and flask workflow … through the Flask CLI runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from flask import Flask

from app.platform.bootstrap import CITY_CONFIGS_DIR, WORKFLOWS_DIR


def test_city_validate_passes_on_the_shipped_configs(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["city", "validate"])
    assert result.exit_code == 0, result.output
    assert "✓ 110000.json" in result.output and "✓ _virtual.json" in result.output


def test_city_validate_exits_1_and_prints_each_problem(app: Flask, tmp_path: Path) -> None:
    shutil.copy(CITY_CONFIGS_DIR / "_virtual.json", tmp_path / "_virtual.json")
    broken = json.loads((CITY_CONFIGS_DIR / "330100.json").read_text(encoding="utf-8"))
    broken["products"]["gov_escrow"]["banks"] = ["icbc", "hsbc"]
    broken["products"]["gov_escrow"]["deadlines"] = {"funding_deadline": "P0D"}
    (tmp_path / "330100.json").write_text(json.dumps(broken, ensure_ascii=False), encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["city", "validate", str(tmp_path / "330100.json")])
    assert result.exit_code == 1
    assert "330100.json#/products/gov_escrow/banks/1: 未知银行 hsbc / unknown bank 'hsbc'" in result.output
    assert "/products/gov_escrow/deadlines/funding_deadline: 时限 funding_deadline 必须为正" in result.output


def test_city_show_resolved_merges_the_virtual_city(app: Flask) -> None:
    raw = app.test_cli_runner().invoke(args=["city", "show", "440300"])
    resolved = app.test_cli_runner().invoke(args=["city", "show", "440300", "--resolved"])
    assert json.loads(raw.output)["extends"] == "_virtual"
    data = json.loads(resolved.output)
    assert "extends" not in data and data["timezone"] == "Asia/Shanghai"
    assert data["products"]["rent_custody"]["deadlines"]["rent_cycle"] == "P1M"


def test_city_diff_compares_draft_with_published(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cities import versions as city_versions

    monkeypatch.setattr(city_versions.GitVersions, "published", lambda self, stem: '{\n  "a": 1\n}\n')
    monkeypatch.setattr(city_versions.GitVersions, "draft", lambda self, stem: '{\n  "a": 2\n}\n')
    result = app.test_cli_runner().invoke(args=["city", "diff", "110000"])
    assert result.exit_code == 0
    assert '-  "a": 1\n+  "a": 2' in result.output and "110000.json（已发布）" in result.output


def test_city_diff_reads_the_committed_file_from_git(app: Flask) -> None:
    from app.cities.versions import GitVersions
    from app.platform.config import ROOT

    published = GitVersions(ROOT).published("110000")
    assert published is not None and json.loads(published)["admin_code"] == "110000"
    assert GitVersions(ROOT).published("999999") is None


def test_workflow_validate_and_graph(app: Flask, tmp_path: Path) -> None:
    result = app.test_cli_runner().invoke(args=["workflow", "validate"])
    assert result.exit_code == 0, result.output
    assert result.output.count("✓") == len(list(WORKFLOWS_DIR.glob("*.json")))  # every shipped version
    target = tmp_path / "gov.svg"
    result = app.test_cli_runner().invoke(args=["workflow", "graph", "gov_escrow", "-o", str(target)])
    if shutil.which("dot") is None:
        assert result.exit_code == 1 and "graphviz" in result.output
    else:
        assert result.exit_code == 0 and target.read_text(encoding="utf-8").lstrip().startswith("<?xml")
        assert "待监管部门核准放款" in target.read_text(encoding="utf-8")


def test_workflow_validate_exits_1_on_a_broken_file(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"id": "bad"}', encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["workflow", "validate", str(path)])
    assert result.exit_code == 1 and "bad.json#/" in result.output
