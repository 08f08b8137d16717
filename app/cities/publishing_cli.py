"""flask city draft | submit | approve | reject | publish | go-live | take-offline | rollback | versions |
import-files."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from app.cities import publishing
from app.cities.cli import _echo_problems
from app.cities.launches import set_live
from app.domain.config_versions import STATUS_LABELS
from app.domain.problems import CityConfigInvalid
from app.domain.timezone import SHANGHAI
from app.platform.bootstrap import CITY_CONFIGS_DIR
from app.platform.cli_base import current_runtime


def _done(what: str, code: str, version: int, status: str) -> None:
    click.echo(f"{code} 第 {version} 版{what}（{STATUS_LABELS[status]}）")


@click.command("draft")
@click.argument("code")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="default: city_configs/CODE.json",
)
@click.option("--author", required=True)
@with_appcontext
def city_draft(code: str, path: Path | None, author: str) -> None:
    """将城市 CODE 的配置保存为草稿版本（新建，或替换编辑中的草稿）。

    Store the config of CODE as a draft version (new, or replacing the draft under work)."""
    source = path or CITY_CONFIGS_DIR / f"{code}.json"
    if not source.is_file():
        raise click.ClickException(f"文件不存在：{source}")
    version = publishing.save_draft(current_runtime(), code, source.read_text(encoding="utf-8"), author)
    _done("已保存为草稿", code, version.version, version.status)


@click.command("submit")
@click.argument("code")
@click.option("--author", required=True)
@with_appcontext
def city_submit(code: str, author: str) -> None:
    """提交城市 CODE 的草稿审核（须通过全部检查，且该草稿已通过全部业务的仿真）。

    Send the draft of CODE for review (every check must pass, and a complete simulation of it)."""
    try:
        version = publishing.submit(current_runtime(), code, author)
    except CityConfigInvalid as error:
        click.echo(f"✗ {error.message}", err=True)
        _echo_problems(error.problems)
        sys.exit(1)
    _done("已提交审核", code, version.version, version.status)


@click.command("approve")
@click.argument("code")
@click.option("--reviewer", required=True)
@click.option("--comment", required=True)
@with_appcontext
def city_approve(code: str, reviewer: str, comment: str) -> None:
    """批准城市 CODE 已提交的版本（不能批准自己的；须有该版本通过的仿真）。

    Approve the submitted version of CODE (not your own; a passing simulation of it is required)."""
    version = publishing.review(current_runtime(), code, reviewer, comment, approve=True)
    _done("已批准", code, version.version, version.status)


@click.command("reject")
@click.argument("code")
@click.option("--reviewer", required=True)
@click.option("--comment", required=True)
@with_appcontext
def city_reject(code: str, reviewer: str, comment: str) -> None:
    """退回城市 CODE 已提交的版本，须填写意见。

    Reject the submitted version of CODE with a comment."""
    version = publishing.review(current_runtime(), code, reviewer, comment, approve=False)
    _done("已驳回", code, version.version, version.status)


@click.command("publish")
@click.argument("code")
@click.option("--reviewer", required=True)
@with_appcontext
def city_publish(code: str, reviewer: str) -> None:
    """发布城市 CODE 已批准的版本；上一版本停用（进行中的存管单仍用原版本）。

    Publish the approved version of CODE; the previous one is retired (running deals keep theirs)."""
    version = publishing.publish(current_runtime(), code, reviewer)
    _done("已发布", code, version.version, version.status)


@click.command("go-live")
@click.argument("code")
@click.option("--reviewer", required=True)
@with_appcontext
def city_go_live(code: str, reviewer: str) -> None:
    """上线城市 CODE（须已发布）：代理人从此可以在该城市新建存管。

    Put CODE live (it must be published): agents may then create deals there."""
    set_live(current_runtime(), code, reviewer, live=True)
    click.echo(f"{code} 已上线")


@click.command("take-offline")
@click.argument("code")
@click.option("--reviewer", required=True)
@with_appcontext
def city_take_offline(code: str, reviewer: str) -> None:
    """下线城市 CODE：代理人不能再新建该城市的存管（进行中的存管单不受影响）。

    Take CODE offline: agents can no longer create deals there (running deals go on)."""
    set_live(current_runtime(), code, reviewer, live=False)
    click.echo(f"{code} 已下线")


@click.command("rollback")
@click.argument("code")
@click.option("--to", "to_version", required=True, type=int)
@click.option("--reviewer", required=True)
@click.option("--comment", default="")
@with_appcontext
def city_rollback(code: str, to_version: int, reviewer: str, comment: str) -> None:
    """提出回滚：将城市 CODE 的某个早期版本作为新版本重新发布（须另一位审核人在仿真通过后批准，再发布）。

    Propose to republish an earlier version of CODE as a new version: another reviewer approves it on a
    passing simulation of it (flask city simulate, approve), then it is published (flask city publish)."""
    version = publishing.propose_rollback(current_runtime(), code, to_version, reviewer, comment)
    _done(f"已提出回滚到第 {to_version} 版，待另一位审核人仿真后批准并发布", code, version.version, version.status)


@click.command("versions")
@click.argument("code")
@with_appcontext
def city_versions(code: str) -> None:
    """列出城市 CODE 的全部版本，新的在前。

    Every version of CODE, newest first."""
    rows = publishing.versions(current_runtime(), code)
    if not rows:
        click.echo(f"{code}：数据库中没有版本（使用随代码发布的文件）")
        return
    for row in rows:
        when = (row.published_at or row.reviewed_at or row.submitted_at or row.created_at).astimezone(SHANGHAI)
        extra = f" 回滚自 v{row.rollback_of}" if row.rollback_of else ""
        click.echo(
            f"v{row.version:<3} {STATUS_LABELS[row.status]:<4} {when:%Y-%m-%d %H:%M} 作者 {row.author}"
            f" 审核 {row.reviewer or '-'} {row.content_sha256[:12]}{extra} {row.comment or ''}".rstrip()
        )


@click.command("import-files")
@with_appcontext
def city_import_files() -> None:
    """将数据库中还没有版本的城市的随代码发布文件发布为第 1 版（作者为 system）。

    Publish the shipped files of cities without a version in the database, as version 1 by "system"."""
    imported = publishing.import_files(current_runtime())
    click.echo(f"已导入 {len(imported)} 个城市配置" + (f"：{'、'.join(imported)}" if imported else ""))


LEVELS = {"services": "服务层（真实存管单、账务、协议）", "state_machine": "状态机层（业务构件未接入服务）"}


# added to `flask city` by app.platform.commands
COMMANDS = (
    city_draft,
    city_submit,
    city_approve,
    city_reject,
    city_publish,
    city_go_live,
    city_take_offline,
    city_rollback,
    city_versions,
    city_import_files,
)
