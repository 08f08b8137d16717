"""flask suspense list | match | approve-match | return: the suspense review queue from the command line."""

from __future__ import annotations

import click

from app.platform.cli_base import CliGroup, current_runtime

suspense_cli = CliGroup("suspense", help="挂账审核 / suspense review queue")


@suspense_cli.command("list")
@click.option("--all", "show_all", is_flag=True, help="include matched and returned items")
def suspense_list(show_all: bool) -> None:
    """列出待处理的挂账（加 --all 列出全部）。

    Open suspense items (all of them with --all)."""
    from app.bank_inbox.suspense import REASON_LABELS, STATUS_LABELS, list_items
    from app.domain.agreement import mask_bank_account
    from app.domain.money import format_yuan

    items = list_items(current_runtime(), None if show_all else "open")
    for item in items:
        deal = item.deal.deal_no if item.deal is not None else "-"
        payer = f"{item.payer_name or '?'} {mask_bank_account(item.payer_account or '')}"
        click.echo(
            f"#{item.id} {item.bank_code} {item.bank_reference} {format_yuan(item.amount_fen)}"
            f" {REASON_LABELS[item.reason]} {STATUS_LABELS[item.status]} 存管单 {deal} 付款人 {payer}"
        )
    click.echo(f"共 {len(items)} 条")


@suspense_cli.command("match")
@click.argument("item_id", type=int)
@click.argument("deal_no")
@click.option("--reason", required=True, help="why this credit belongs to the deal (kept on the item)")
@click.option("--by", "actor", required=True, help="who decided (username)")
def suspense_match(item_id: int, deal_no: str, reason: str, actor: str) -> None:
    """提出将挂账款项匹配到存管单（须另一人用 approve-match 批准）。

    Propose to credit a suspense item to a deal (a second person approves it with approve-match)."""
    from app.bank_inbox.suspense import propose_match

    propose_match(current_runtime(), item_id, deal_no, reason, f"user:{actor}")
    click.echo(f"挂账 #{item_id} 已提出匹配到 {deal_no}，待另一位财务人员批准")


@suspense_cli.command("approve-match")
@click.argument("item_id", type=int)
@click.option("--by", "actor", required=True, help="who approves (username; not the proposer)")
def suspense_approve_match(item_id: int, actor: str) -> None:
    """批准挂账匹配：款项记入存管单。

    Approve the proposed match of a suspense item: the money is credited to the deal."""
    from app.bank_inbox.suspense import approve_match

    deal_no = approve_match(current_runtime(), item_id, f"user:{actor}")
    click.echo(f"挂账 #{item_id} 已匹配到 {deal_no}")


@suspense_cli.command("return")
@click.argument("item_id", type=int)
@click.option("--reason", required=True)
@click.option("--by", "actor", required=True, help="who decided (username)")
def suspense_return(item_id: int, reason: str, actor: str) -> None:
    """将挂账款项原路退回付款账户。

    Send a suspense item back by original route (to the account it came from)."""
    from app.bank_inbox.suspense import return_item

    payout_id = return_item(current_runtime(), item_id, reason, f"user:{actor}")
    click.echo(f"挂账 #{item_id} 原路退回已提交（付款编号 {payout_id}）")
