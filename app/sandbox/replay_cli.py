"""flask city replay: the city's recent real deals replayed in the sandbox under its published config (or, with
--draft, its version under work), deal by deal, in Chinese."""

from __future__ import annotations

import sys
from typing import Any

import click
from flask.cli import with_appcontext

from app.cities.sources import SessionCitySource, open_version
from app.domain.labels import product_label
from app.platform.cli_base import current_runtime
from app.platform.runtime import Runtime
from app.sandbox.replay import DEFAULT_LIMIT, replay_city


def _content(rt: Runtime, stem: str, draft: bool) -> tuple[str, str]:
    """(content, what it is): the version under work with --draft, else what is published (or the file)."""
    with rt.db.uow() as uow:
        if draft:
            version = open_version(uow.session, stem)
            if version is None:
                raise click.ClickException(f"城市 {stem} 没有在编版本（草稿或待审）")
            return version.content, f"第 {version.version} 版（在编）"
        raw = SessionCitySource(uow.session, rt.cities.folder).read(stem)
    if raw is None:
        raise click.ClickException(f"城市配置 {stem} 不存在")
    return raw.decode(), "已发布配置"


def deal_lines(row: dict[str, Any], names: Any) -> list[str]:
    """One replayed deal in Chinese: number, product, verdict, real path → replayed path, differences."""
    head = f"{row.get('deal_no', '?')} · {product_label(row.get('product'), names)} · {row['verdict']}"
    if row.get("reason"):
        head += f"（{row['reason']}）"
    lines = [head]
    real, replayed = row.get("real"), row.get("replayed")
    if real:
        lines.append("    实际：" + " → ".join(real["states"]) + ("（进行中）" if row.get("running") else ""))
    if replayed:
        lines.append("    重放：" + " → ".join(replayed["states"]))
    lines += [f"    金额：{text}" for text in row.get("amounts", [])]
    lines += [f"    收款方：{text}" for text in row.get("payees", [])]
    return lines


@click.command("replay")
@click.argument("code")
@click.option("--draft", is_flag=True, help="replay the version under work (default: the published config)")
@click.option("--limit", type=click.IntRange(1, 500), default=DEFAULT_LIMIT, show_default=True, help="how many deals")
@with_appcontext
def city_replay(code: str, draft: bool, limit: int) -> None:
    """在沙箱中按城市配置重放本城市最近的真实存管单，逐笔对比路径、金额与收款方；有差异时退出码 1。

    Replay CODE's recent real deals in the sandbox under its config; exit 1 when any deal differs."""
    rt = current_runtime()
    content, what = _content(rt, code, draft)

    def progress(done: int, total: int, label: str) -> None:
        click.echo(f"重放中 {done}/{total} · {label}", err=True)

    report = replay_city(rt, code, content, limit, progress)
    click.echo(f"重放 {code}（{what}，最近 {limit} 笔真实存管单）")
    for problem in report["problems"]:
        click.echo(f"  ✗ {problem}", err=True)
    for row in report["deals"]:
        for line in deal_lines(row, rt.products):
            click.echo(f"  {line}")
    counts = "，".join(f"{name} {n}" for name, n in report.get("verdicts", {}).items() if n)
    click.echo(
        f"共 {report['count']} 笔，{report.get('differing', 0)} 笔与实际不同" + (f"（{counts}）" if counts else "")
    )
    if not report["ok"] or report.get("differing"):
        sys.exit(1)
