"""flask definition draft | submit | approve | reject | publish | versions | show | import-files (and `simulate`,
from the sandbox): workflows, clauses, agreement templates, calendars, banks and product variants through the
city configs' review flow."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from app.definitions import publishing
from app.domain.config_versions import STATUS_LABELS
from app.domain.timezone import SHANGHAI
from app.platform.cli_base import CliGroup, current_runtime

definition_cli = CliGroup(
    "definition", help="工作流、协议条款、协议模板、工作日历、存管银行、业务品种：草稿、审核、仿真、发布"
)


def _done(what: str, kind: str, name: str, version: int, status: str) -> None:
    click.echo(f"{kind} {name} 第 {version} 版{what}（{STATUS_LABELS[status]}）")


@definition_cli.command("draft")
@click.argument("kind")
@click.argument("name")
@click.option("--file", "path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--author", required=True)
@with_appcontext
def definition_draft(kind: str, name: str, path: Path, author: str) -> None:
    """将 FILE 保存为 KIND NAME 的草稿（流程、条款、协议模板、工作日历、银行或业务品种）。

    Store FILE as the draft of KIND NAME (workflow resale_escrow@2, clause dispute, template
    resale_escrow/v1/agreement.html.j2, calendar 2027, bank cmbx, product new_home_supervision)."""
    content = path.read_text(encoding="utf-8")
    version = publishing.save_draft(current_runtime(), kind, name, content, author)
    _done("已保存为草稿", kind, name, version.version, version.status)


@definition_cli.command("submit")
@click.argument("kind")
@click.argument("name")
@click.option("--author", required=True)
@with_appcontext
def definition_submit(kind: str, name: str, author: str) -> None:
    """提交草稿审核（须通过全部检查）。

    Send the draft for review (every check must pass)."""
    try:
        version = publishing.submit(current_runtime(), kind, name, author)
    except publishing.DefinitionInvalid as error:
        click.echo(f"✗ {error.message}", err=True)
        for problem in error.details:
            click.echo(f"  · {problem}", err=True)
        sys.exit(1)
    _done("已提交审核", kind, name, version.version, version.status)


@definition_cli.command("approve")
@click.argument("kind")
@click.argument("name")
@click.option("--reviewer", required=True)
@click.option("--comment", required=True)
@with_appcontext
def definition_approve(kind: str, name: str, reviewer: str, comment: str) -> None:
    """批准已提交的版本（不能批准自己的；须有该版本通过的仿真）。

    Approve the submitted version (not your own; a passing simulation of it is required)."""
    version = publishing.review(current_runtime(), kind, name, reviewer, comment, approve=True)
    _done("已批准", kind, name, version.version, version.status)


@definition_cli.command("reject")
@click.argument("kind")
@click.argument("name")
@click.option("--reviewer", required=True)
@click.option("--comment", required=True)
@with_appcontext
def definition_reject(kind: str, name: str, reviewer: str, comment: str) -> None:
    """退回已提交的版本，须填写意见。

    Reject the submitted version with a comment."""
    version = publishing.review(current_runtime(), kind, name, reviewer, comment, approve=False)
    _done("已驳回", kind, name, version.version, version.status)


@definition_cli.command("publish")
@click.argument("kind")
@click.argument("name")
@click.option("--reviewer", required=True)
@with_appcontext
def definition_publish(kind: str, name: str, reviewer: str) -> None:
    """发布已批准的版本：立即生效；进行中的存管单仍用其锁定的版本。

    Publish the approved version: served at once; running deals keep the versions they pinned."""
    version = publishing.publish(current_runtime(), kind, name, reviewer)
    _done("已发布", kind, name, version.version, version.status)


@definition_cli.command("versions")
@click.argument("kind")
@click.argument("name", required=False)
@with_appcontext
def definition_versions(kind: str, name: str | None) -> None:
    """列出 KIND 的全部版本（给出 NAME 时只列该项），新的在前。

    Every version of KIND (NAME only, when given), newest first."""
    rows = publishing.versions(current_runtime(), kind, name)
    if not rows:
        click.echo(f"{kind}：数据库中没有版本（使用随代码发布的文件）")
    for row in rows:
        when = (row.published_at or row.reviewed_at or row.submitted_at or row.created_at).astimezone(SHANGHAI)
        click.echo(
            f"{row.name} v{row.version:<3} {STATUS_LABELS[row.status]:<4} {when:%Y-%m-%d %H:%M} 作者 {row.author}"
            f" 审核 {row.reviewer or '-'} {row.content_sha256[:12]} {row.comment or ''}".rstrip()
        )


@definition_cli.command("show")
@click.argument("kind")
@click.argument("name")
@with_appcontext
def definition_show(kind: str, name: str) -> None:
    """输出 NAME 当前生效的内容（已发布版本，否则随代码发布的文件），例如交给银行模拟器：
    flask definition show bank cmbx > cmbx.json; flask bank-sim serve --bank-config cmbx.json

    The content that serves NAME now (its published version, else its file), e.g. for the bank simulator."""
    publishing.kind_of(current_runtime(), kind)  # an unknown kind is refused in Chinese
    served = current_runtime().definitions.published(kind, name)
    if served is None:
        click.echo(f"{kind} {name}：没有已发布的版本，也没有随代码发布的文件", err=True)
        sys.exit(1)
    click.echo(served.content, nl=not served.content.endswith("\n"))


@definition_cli.command("import-files")
@with_appcontext
def definition_import_files() -> None:
    """将仓库中尚无版本的流程、条款、模板与日历发布为第 1 版（作者 system；未通过检查的文件被拒绝，退出码 1）。

    Publish the repository's workflows, clauses, templates and calendars that have no version in the database
    yet, as version 1 by "system" (a file that fails its checks is refused, exit 1)."""
    imported, refused = publishing.import_files(current_runtime())
    click.echo(f"已导入 {len(imported)} 个定义")
    if refused:
        click.echo(f"✗ 未通过检查、未导入：{'、'.join(refused)}", err=True)
        sys.exit(1)
