"""flask city simulate: for one city config, paths of each product's workflow that take every pair of transitions,
in the sandbox."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from app.platform.cli_base import current_runtime
from app.sandbox.definitions import simulate_definition
from app.sandbox.replay import replay_city
from app.sandbox.simulate import simulate


def _echo_report(report: dict[str, object]) -> None:
    click.echo(f"仿真 {report['city']}（{report['target']}，内容 {str(report['content_sha256'])[:12]}）")
    for result in report.get("products", []):  # type: ignore[union-attr]
        level = (
            "服务层（真实存管单、账务、协议）" if result["level"] == "services" else "状态机层（业务构件未接入服务）"
        )
        click.echo(
            f"  {result['product']}（{result['workflow']}，{level}）：路径 {result['paths_run']}/{result['paths']}，"
            f"流转覆盖 {result['transitions_covered']}/{result['transitions_total']}，"
            f"协议生成 {result['agreements_rendered']} 份"
        )
        for note in result["notes"]:
            click.echo(f"    · {note}")
        for edge in result["uncovered"]:
            click.echo(f"    · 未覆盖：{edge}")
    ledger = report.get("ledger")
    if isinstance(ledger, dict):
        click.echo("  账务平衡" if ledger["ok"] else "  账务不平")
    for problem in report.get("problems", []):  # type: ignore[union-attr]
        click.echo(f"  ✗ {problem}", err=True)


@click.command("simulate")
@click.argument("code")
@click.argument("product", required=False)
@click.option("--version", "version", type=int, help="a stored version (default: the draft under work, else the file)")
@click.option("--by", "run_by", default="cli", show_default=True, help="who runs it (kept with the result)")
@click.option("--replay", is_flag=True, help="also replay the city's recent real deals (stored with the result)")
@with_appcontext
def city_simulate(code: str, product: str | None, version: int | None, run_by: str, replay: bool) -> None:
    """在沙箱中为城市 CODE 的每个业务运行仿真：所走路径覆盖流程中每一对相邻流转；发现问题时退出码 1。

    Run, for CODE in a sandbox, paths of each product's workflow that take every pair of transitions; exit 1 on any
    problem."""

    def progress(done: int, total: int, label: str) -> None:
        click.echo(f"仿真中 {done}/{total} 条路径 · {label}", err=True)

    rt = current_runtime()

    def replayed(content: str) -> dict[str, object]:
        return {"replay": replay_city(rt, code, content)}

    addenda = replayed if replay and product is None else None
    report = simulate(rt, code, product, version, run_by, progress, addenda=addenda)
    _echo_report(report)
    if "replay" in report:
        found = report["replay"]
        differing = found.get("differing", 0)
        click.echo(f"  真实存管单重放：{found['count']} 笔，{differing} 笔与实际不同（明细：flask city replay）")
    if not report["ok"]:
        click.echo("✗ 仿真发现问题", err=True)
        sys.exit(1)
    click.echo("✓ 仿真通过" + ("" if product is None else "（仅部分业务，不能作为审批依据）"))


@click.command("simulate")
@click.argument("kind")
@click.argument("name")
@click.option("--by", "run_by", default="cli", help="who runs it (recorded with the result)")
@with_appcontext
def definition_simulate(kind: str, name: str, run_by: str) -> None:
    """在使用它的每个城市业务中仿真 KIND NAME 的在编版本（结果供审批使用）。

    Simulate the version of KIND NAME under work in every city product that uses it (stored for approval)."""
    report = simulate_definition(current_runtime(), kind, name, run_by)
    click.echo(f"仿真 {kind} {name} 第 {report['version']} 版（内容 {str(report['content_sha256'])[:12]}）")
    for run in report["runs"]:
        click.echo(f"  {run['city']} · {run['product']}：{'通过' if run['ok'] else '未通过'}")
    for problem in report["problems"]:
        click.echo(f"  ✗ {problem}")
    click.echo("✓ 仿真通过" if report["ok"] else "✗ 仿真未通过")
    if not report["ok"]:
        sys.exit(1)
