"""flask city … and flask workflow … : validate, show and diff city configs; validate and draw workflows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.cities.sources import DbVersions
from app.cities.versions import GitVersions, unified_diff
from app.domain.city_checks import validate_file
from app.domain.problems import CityConfigInvalid, Problem
from app.platform.bootstrap import CITY_CONFIGS_DIR, TEMPLATES_DIR, WORKFLOWS_DIR
from app.platform.cli_base import CliGroup, current_runtime
from app.platform.config import ROOT
from app.platform.errors import WorkflowError
from app.state_machine.definition import WorkflowDefinition

city_cli = CliGroup("city", help="城市配置 / city configs")
workflow_cli = CliGroup("workflow", help="流程定义 / workflows")


def _echo_problems(problems: list[Problem] | list[dict[str, str]]) -> None:
    for problem in problems:
        click.echo(f"  ✗ {problem if isinstance(problem, Problem) else Problem(**problem)}", err=True)


@city_cli.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def city_validate(paths: tuple[Path, ...]) -> None:
    """校验城市配置（默认 city_configs/ 下全部文件）；有错误时退出码 1。

    Validate city configs (default: every file in city_configs/); exit 1 on any error."""
    targets = paths or tuple(sorted(CITY_CONFIGS_DIR.glob("*.json")))
    failed = 0
    for path in targets:
        try:
            rt = current_runtime()
            validate_file(path, rt.workflows, TEMPLATES_DIR, rt.known_banks, rt.products)
        except CityConfigInvalid as error:
            failed += 1
            click.echo(f"✗ {path.name}：{len(error.problems)} 处错误", err=True)
            _echo_problems(error.problems)
        else:
            click.echo(f"✓ {path.name}")
    if failed:
        click.echo(f"{failed} 个城市配置有错误", err=True)
        sys.exit(1)


@city_cli.command("show")
@click.argument("code")
@click.option("--resolved", is_flag=True, help="merge the extends chain")
def city_show(code: str, resolved: bool) -> None:
    """显示城市 CODE 的配置（原文，或加 --resolved 显示合并后的配置）。

    Print the config of CODE (a file stem: 110000, _virtual…), as written or --resolved."""
    data = (
        current_runtime().cities.resolve(code).data
        if resolved
        else current_runtime().cities.resolve(code).layers[0].data
    )
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@city_cli.command("diff")
@click.argument("code")
def city_diff(code: str) -> None:
    """比较城市 CODE 已发布配置与草稿的差异。

    Unified diff from the published config of CODE to its draft (database versions; files where there are none)."""
    text = unified_diff(DbVersions(current_runtime().db, GitVersions(ROOT)), code)
    click.echo(text if text else f"{code}：草稿与已发布版本相同", nl=not text)


def _workflow_files() -> list[Path]:
    return sorted(WORKFLOWS_DIR.glob("*.json"))


@workflow_cli.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def workflow_validate(paths: tuple[Path, ...]) -> None:
    """加载并检查全部流程（结构、引用、静态检查）；有错误时退出码 1。

    Load every workflow (schema, references, static checks); exit 1 on any error."""
    from app.state_machine.loader import load_definition

    failed = 0
    for path in paths or tuple(_workflow_files()):
        try:
            definition = load_definition(path, current_runtime().registry)
        except WorkflowError as error:
            failed += 1
            click.echo(f"✗ {path.name}：{error.message}", err=True)
            _echo_problems(error.details)
        else:
            click.echo(f"✓ {path.name}（{definition.name} v{definition.version}）")
    if failed:
        sys.exit(1)


def _latest(workflow_id: str) -> WorkflowDefinition:
    versions = [d for (wid, _), d in current_runtime().workflows.items() if wid == workflow_id]
    if not versions:
        raise WorkflowError(f"工作流 {workflow_id} 不存在", code="UNKNOWN_WORKFLOW")
    return max(versions, key=lambda d: d.version)


@workflow_cli.command("graph")
@click.argument("workflow_id")
@click.option("--version", "version", type=int, help="default: the latest")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="SVG file (default: <ID>.svg)")
def workflow_graph(workflow_id: str, version: int | None, output: Path | None) -> None:
    """将流程 ID 画成 SVG 流程图（Graphviz dot）。

    Draw workflow ID as an SVG diagram (Graphviz dot)."""
    from app.state_machine.graph import render_svg

    definition = _latest(workflow_id) if version is None else current_runtime().workflow(workflow_id, version)
    target = output or Path(f"{workflow_id}.svg")
    target.write_bytes(render_svg(definition))
    click.echo(f"已生成 {target}")
