"""`bank_sim` click group: `serve` the simulator, `pay` money into a virtual account.

Registered by the platform as `flask bank-sim`; also runs as `python -m app.banks.simulator`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import click
import requests
from werkzeug.serving import make_server

from app.banks.simulator import SimulatorConfig, create_simulator_app
from app.banks.simulator.banks import SIMULATED_BANKS
from app.banks.simulator.context import current_simulator
from app.crypto.keys import ensure_keys
from app.domain.money import format_yuan, parse_yuan
from app.errors import CunguanError

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_PAY_TIMEOUT_S = 10


def _fail(message: str) -> NoReturn:
    click.echo(f"错误：{message}", err=True)
    raise SystemExit(1)


@click.group("bank-sim", help="银行模拟器：模拟存管银行的开户、到账通知和付款。")
def bank_sim() -> None:
    """Group only; see the commands."""


@bank_sim.command("serve", help="启动银行模拟器（单进程、多线程，无调试器与自动重载）。")
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址；/sim/* 无鉴权，请只绑定本机")
@click.option("--port", default=5001, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--db",
    "db_path",
    default="instance/bank_sim.db",
    show_default=True,
    envvar="BANK_SIM_DB",
    type=click.Path(dir_okay=False, path_type=Path),
    help="模拟器自己的 SQLite 文件（环境变量 BANK_SIM_DB）",
)
@click.option(
    "--keys-dir",
    default="instance/keys",
    show_default=True,
    envvar="CUNGUAN_KEYS_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="密钥目录，缺少的密钥会自动生成（环境变量 CUNGUAN_KEYS_DIR）",
)
@click.option("--open-delay", default=1.0, show_default=True, type=click.FloatRange(min=0), help="开户延迟（秒）")
@click.option("--payout-delay", default=1.0, show_default=True, type=click.FloatRange(min=0), help="付款处理延迟（秒）")
def serve(host: str, port: int, db_path: Path, keys_dir: Path, open_delay: float, payout_delay: float) -> None:
    ensure_keys(keys_dir, SIMULATED_BANKS)
    try:
        app = create_simulator_app(
            SimulatorConfig(db_path=db_path, keys_dir=keys_dir, open_delay_s=open_delay, payout_delay_s=payout_delay)
        )
    except CunguanError as error:
        _fail(f"{error.message} {error.details or ''}")
    server = make_server(host, port, app, threaded=True)
    with app.app_context():
        worker = current_simulator().worker
    if host not in _LOOPBACK_HOSTS:
        click.echo("警告：/sim/* 接口没有鉴权，只应绑定 127.0.0.1。", err=True)
    worker.start()
    banks = "、".join(f"{bank.name} {bank.code}" for bank in SIMULATED_BANKS.values())
    click.echo(f"银行模拟器已启动：http://{host}:{server.port}/ （{banks}；数据库 {db_path}）", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("正在停止银行模拟器……", err=True)
    finally:
        server.server_close()
        worker.stop()


@bank_sim.command("pay", help="模拟一笔转账到虚户（调用运行中的模拟器 POST /sim/pay）。")
@click.option("--bank", "bank_code", default="ceb", show_default=True, type=click.Choice(sorted(SIMULATED_BANKS)))
@click.option("--account", "account_no", required=True, help="虚户账号")
@click.option("--amount", required=True, help="金额（元），如 1234567.89")
@click.option("--payer-name", default="张三", show_default=True, help="付款人户名")
@click.option("--payer-account", default="6222020200112233445", show_default=True, help="付款人账号")
@click.option("--url", default="http://127.0.0.1:5001", show_default=True, envvar="BANK_SIM_URL", help="模拟器地址")
def pay(bank_code: str, account_no: str, amount: str, payer_name: str, payer_account: str, url: str) -> None:
    try:
        amount_fen = parse_yuan(amount)
    except CunguanError as error:
        _fail(error.message)
    payload = {
        "bank": bank_code,
        "account_no": account_no,
        "amount_fen": amount_fen,
        "payer_name": payer_name,
        "payer_account": payer_account,
    }
    try:
        response = requests.post(f"{url.rstrip('/')}/sim/pay", json=payload, timeout=_PAY_TIMEOUT_S)
    except requests.RequestException as error:
        _fail(f"无法连接银行模拟器 {url}：{error}")
    answer = _json_object(response)
    if response.status_code != 200 or answer.get("code") != "OK":
        _fail(f"入账失败（HTTP {response.status_code}）：{answer.get('message', response.text[:200])}")
    click.echo(
        f"入账成功：{SIMULATED_BANKS[bank_code].name} 账户 {account_no} 收到 {format_yuan(amount_fen)}，"
        f"银行流水号 {answer['bank_reference']}，当前余额 {format_yuan(answer['balance_fen'])}；到账通知已排队发送。"
    )


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
