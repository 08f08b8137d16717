"""`bank_sim` click group: `serve` the simulator, make its banks' own `keys`, `pay` money into a virtual account,
set `faults` and opening `limits` per bank.

Registered by the platform as `flask bank-sim`; also runs as `python -m app.tools.banksim`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import requests
from werkzeug.serving import make_server

from app.domain.banks import KnownBank
from app.domain.money import format_yuan, parse_yuan
from app.platform.config import instance_path_from_env
from app.platform.errors import CunguanError
from app.tools.banksim import SimulatorConfig, create_simulator_app
from app.tools.banksim.banks import SIMULATED_BANKS, SimulatedBank, banks_from_files
from app.tools.banksim.context import current_simulator
from app.tools.banksim.control_token import (
    TOKEN_HEADER,
    TOKEN_QUERY,
    new_control_token,
    read_control_token,
    write_control_token,
)
from app.tools.banksim.controls import faults_view, limits_view
from app.tools.banksim.delivery import DELIVERY_PARALLEL
from app.tools.banksim.faults import DEFAULT_TIMEOUT_HOLD_MS, FaultSettings
from app.tools.banksim.keys import PLATFORM_PUBLIC_KEY, certify_simulated_banks, ensure_bank_keys
from app.tools.banksim.store import Store, Transaction

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _in_instance(name: str) -> Callable[[], str]:
    """A default under the instance folder the platform is told to use (CUNGUAN_INSTANCE_PATH), not the cwd."""
    return lambda: str(instance_path_from_env() / name)


def _platform_public_key() -> str:
    keys = os.environ.get("CUNGUAN_KEYS_DIR") or str(instance_path_from_env() / "keys")
    return str(Path(keys) / "platform.pub.pem")


def _control_token() -> str:
    keys_dir = os.environ.get("BANK_SIM_KEYS_DIR") or str(instance_path_from_env() / "bank-sim-keys")
    return read_control_token(Path(keys_dir))


_PAY_TIMEOUT_S = 10
_BANK_CHOICE = click.Choice(sorted(SIMULATED_BANKS))
_URL_OPTION = click.option(
    "--url", default="http://127.0.0.1:5001", show_default=True, envvar="BANK_SIM_URL", help="模拟器地址"
)
_DB_OPTION = click.option(
    "--db",
    "db_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="直接写入模拟器的 SQLite 文件（不经 HTTP；运行中的模拟器随即生效）",
)


_TOKEN_OPTION = click.option(
    "--token",
    default=_control_token,
    show_default="<BANK_SIM_KEYS_DIR 或 CUNGUAN_INSTANCE_PATH/bank-sim-keys>/sim-control.token",
    envvar="BANK_SIM_TOKEN",
    show_envvar=False,
    help="模拟器控制令牌（serve 启动时打印并写入密钥目录；环境变量 BANK_SIM_TOKEN）",
)
_KEYS_DIR_OPTION = click.option(
    "--keys-dir",
    default=_in_instance("bank-sim-keys"),
    show_default="<CUNGUAN_INSTANCE_PATH>/bank-sim-keys",
    envvar="BANK_SIM_KEYS_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="模拟银行自己的密钥目录（银行私钥只在这里），缺少的密钥会自动生成（环境变量 BANK_SIM_KEYS_DIR）",
)
_PLATFORM_KEY_OPTION = click.option(
    "--platform-key",
    default=_platform_public_key,
    show_default="<CUNGUAN_KEYS_DIR 或 CUNGUAN_INSTANCE_PATH/keys>/platform.pub.pem",
    envvar="BANK_SIM_PLATFORM_KEY",
    type=click.Path(dir_okay=False, path_type=Path),
    help="平台公钥（验证平台请求）：keys 命令登记（复制）到模拟银行的密钥目录；serve 仅在目录中尚无平台公钥时登记"
    "（环境变量 BANK_SIM_PLATFORM_KEY）",
)


_BANK_CONFIG_OPTION = click.option(
    "--bank-config",
    "bank_configs",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="另外模拟的银行：其配置文件（与 bank_configs/ 中的文件或发布流程中的银行配置同格式），可重复；"
    "同代码的银行以此为准",
)


def _banks(bank_configs: tuple[Path, ...]) -> dict[str, KnownBank]:
    """The repository's banks, and those of the given files (a bank published in the flow, say) over them."""
    try:
        extra = banks_from_files(bank_configs)
    except CunguanError as error:
        _fail(f"{error.message} {error.details or ''}")
    return {code: simulated.bank for code, simulated in SIMULATED_BANKS.items()} | extra


def _fail(message: str) -> NoReturn:
    click.echo(f"错误：{message}", err=True)
    raise SystemExit(1)


@click.group("bank-sim", help="银行模拟器：模拟存管银行的开户、到账通知和付款。")
def bank_sim() -> None:
    """Group only; see the commands."""


@bank_sim.command("serve", help="启动银行模拟器（单进程、多线程，无调试器与自动重载）。")
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址；请只绑定本机")
@click.option("--port", default=5001, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--db",
    "db_path",
    default=_in_instance("bank_sim.db"),
    show_default="<CUNGUAN_INSTANCE_PATH>/bank_sim.db",
    envvar="BANK_SIM_DB",
    type=click.Path(dir_okay=False, path_type=Path),
    help="模拟器自己的 SQLite 文件（环境变量 BANK_SIM_DB）",
)
@_KEYS_DIR_OPTION
@_PLATFORM_KEY_OPTION
@_BANK_CONFIG_OPTION
@click.option("--open-delay", default=1.0, show_default=True, type=click.FloatRange(min=0), help="开户延迟（秒）")
@click.option("--payout-delay", default=1.0, show_default=True, type=click.FloatRange(min=0), help="付款处理延迟（秒）")
@click.option(
    "--deliveries",
    default=DELIVERY_PARALLEL,
    show_default=True,
    type=click.IntRange(1, 64),
    help="同时发出的回调通知数（按序通知仍逐条发送）",
)
def serve(
    host: str,
    port: int,
    db_path: Path,
    keys_dir: Path,
    platform_key: Path,
    bank_configs: tuple[Path, ...],
    open_delay: float,
    payout_delay: float,
    deliveries: int,
) -> None:
    registered = (keys_dir / PLATFORM_PUBLIC_KEY).is_file()  # `bank-sim keys` registers a new one
    banks = _banks(bank_configs)
    ensure_bank_keys(keys_dir, banks, None if registered else platform_key)
    token = new_control_token()
    try:
        app = create_simulator_app(
            SimulatorConfig(
                db_path=db_path,
                keys_dir=keys_dir,
                open_delay_s=open_delay,
                payout_delay_s=payout_delay,
                delivery_parallel=deliveries,
                control_token=token,
                banks=banks,
            )
        )
    except CunguanError as error:
        _fail(f"{error.message} {error.details or ''}")
    server = make_server(host, port, app, threaded=True)
    with app.app_context():
        worker = current_simulator().worker
    if host not in _LOOPBACK_HOSTS:
        click.echo("警告：模拟器的控制接口只凭令牌保护，只应绑定 127.0.0.1。", err=True)
    token_file = write_control_token(keys_dir, token)
    worker.start()
    names = "、".join(f"{bank.name} {bank.code}" for bank in banks.values())
    click.echo(
        f"银行模拟器已启动：http://{host}:{server.port}/?{TOKEN_QUERY}={token} （{names}；数据库 {db_path}）", err=True
    )
    click.echo(f"控制令牌：{token}（请求头 {TOKEN_HEADER}；已写入 {token_file}，仅本人可读）", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("正在停止银行模拟器……", err=True)
    finally:
        server.server_close()
        worker.stop()


@bank_sim.command("keys", help="生成模拟银行自己的私钥与签章证书（已有的保留），并登记平台公钥。")
@_KEYS_DIR_OPTION
@_PLATFORM_KEY_OPTION
@_BANK_CONFIG_OPTION
def keys(keys_dir: Path, platform_key: Path, bank_configs: tuple[Path, ...]) -> None:
    if not platform_key.is_file():
        _fail(f"找不到平台公钥 {platform_key}（请先运行 flask keys init）")
    ensure_bank_keys(keys_dir, _banks(bank_configs), platform_key)
    click.echo(f"模拟银行密钥目录：{keys_dir}（再运行 flask bank-sim certify 由平台 CA 为各银行签发签章证书）")


@bank_sim.command(
    "certify", help="由平台 CA 为各模拟银行的密钥签发签章证书（银行保留私钥），交还银行并导入平台（已签发的保留）。"
)
@_KEYS_DIR_OPTION
@_PLATFORM_KEY_OPTION
@_BANK_CONFIG_OPTION
def certify(keys_dir: Path, platform_key: Path, bank_configs: tuple[Path, ...]) -> None:
    platform_keys_dir = platform_key.parent  # the platform's key folder, where its CA lives (ca/)
    try:
        certified = certify_simulated_banks(platform_keys_dir, keys_dir, _banks(bank_configs))
    except (CunguanError, FileNotFoundError) as error:
        _fail(f"无法签发模拟银行证书（请先运行 flask keys init 与 flask bank-sim keys）：{error}")
    done = "、".join(certified) if certified else "无（均已持有平台 CA 签发的证书）"
    click.echo(f"平台 CA 已签发：{done}；证书已导入 {platform_keys_dir / 'banks'}")


@bank_sim.command("pay", help="模拟一笔转账到虚户（调用运行中的模拟器 POST /sim/pay）。")
@click.option("--bank", "bank_code", default="ceb", show_default=True, type=_BANK_CHOICE)
@click.option("--account", "account_no", required=True, help="虚户账号")
@click.option("--amount", required=True, help="金额（元），如 1234567.89")
@click.option("--payer-name", default="张三", show_default=True, help="付款人户名")
@click.option("--payer-account", default="6222020200112233445", show_default=True, help="付款人账号")
@_URL_OPTION
@_TOKEN_OPTION
def pay(
    bank_code: str, account_no: str, amount: str, payer_name: str, payer_account: str, url: str, token: str
) -> None:
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
        response = requests.post(
            f"{url.rstrip('/')}/sim/pay", json=payload, headers={TOKEN_HEADER: token}, timeout=_PAY_TIMEOUT_S
        )
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


def _control(
    target: tuple[str, str, Path | None],
    method: str,
    path: str,
    payload: dict[str, Any] | None,
    direct: Callable[..., Any],
) -> dict[str, Any]:
    """Change a control through the running simulator's /sim/ endpoint (`target`: its URL and control token), or
    with --db straight in its database."""
    url, token, db_path = target
    if db_path is not None:
        with Store(db_path).transaction() as tx:
            return direct(tx)
    try:
        response = requests.request(
            method, f"{url.rstrip('/')}/sim/{path}", json=payload, headers={TOKEN_HEADER: token}, timeout=_PAY_TIMEOUT_S
        )
    except requests.RequestException as error:
        _fail(f"无法连接银行模拟器 {url}：{error}")
    answer = _json_object(response)
    if response.status_code != 200:
        reason = f"{answer.get('message', response.text[:200])} {answer.get('details') or ''}"
        _fail(f"设置失败（HTTP {response.status_code}）：{reason.strip()}")
    return answer


def _rate(value: float) -> str:
    return f"{value:.2%}".replace(".00%", "%")


def _describe_faults(bank_code: str, answer: dict[str, Any]) -> str:
    bank = SIMULATED_BANKS[bank_code]
    if not answer["active"]:
        return f"{bank.name} {bank_code}：无故障注入。"
    return (
        f"{bank.name} {bank_code} 故障注入（种子 {answer['seed']}）：丢弃通知 {_rate(answer['drop'])}，"
        f"重复通知 {_rate(answer['duplicate'])}，乱序 {'开' if answer['reorder'] else '关'}，"
        f"延迟 {answer['delay_ms']} 毫秒，付款应答超时 {_rate(answer['payout_timeout'])}"
        f"（挂起 {answer['timeout_hold_ms']} 毫秒），5xx {_rate(answer['error_5xx'])}。"
    )


@bank_sim.command("faults", help="查看或设置某家银行的故障注入（可复现：同一种子、同一请求序列，结果相同）。")
@click.option("--bank", "bank_code", required=True, type=_BANK_CHOICE)
@click.option("--drop", type=click.FloatRange(0, 1), help="丢弃回调通知的比例")
@click.option("--duplicate", type=click.FloatRange(0, 1), help="重复发送回调通知的比例")
@click.option("--reorder", is_flag=True, default=None, help="打乱同一地址的通知顺序")
@click.option("--delay-ms", type=click.IntRange(min=0), help="每条通知延迟发送（毫秒）")
@click.option("--payout-timeout", type=click.FloatRange(0, 1), help="付款已受理记账但应答超时的比例")
@click.option(
    "--timeout-hold-ms",
    type=click.IntRange(min=0),
    help=f"付款超时时挂起应答多久（毫秒，默认 {DEFAULT_TIMEOUT_HOLD_MS}）",
)
@click.option("--error-5xx", type=click.FloatRange(0, 1), help="请求在记账前返回 503 的比例")
@click.option("--seed", type=click.IntRange(min=0), help="随机种子（默认 0）")
@click.option("--clear", is_flag=True, help="关闭这家银行的全部故障")
@_URL_OPTION
@_TOKEN_OPTION
@_DB_OPTION
def faults(bank_code: str, clear: bool, url: str, token: str, db_path: Path | None, **options: Any) -> None:
    chosen = {name: value for name, value in options.items() if value is not None}
    target = (url, token, db_path)
    bank = SIMULATED_BANKS[bank_code]
    if clear and chosen:
        _fail("--clear 不能与其他故障选项同时使用")
    if clear:
        answer = _control(target, "DELETE", f"faults/{bank_code}", None, lambda tx: _clear_faults(tx, bank_code))
    elif chosen:
        settings = FaultSettings.from_dict(chosen)
        answer = _control(target, "PUT", f"faults/{bank_code}", chosen, lambda tx: _set_faults(tx, bank_code, settings))
    else:
        answer = _control(target, "GET", f"faults/{bank_code}", None, lambda tx: faults_view(tx, bank))
    click.echo(_describe_faults(bank_code, answer))


def _set_faults(tx: Transaction, bank_code: str, settings: FaultSettings) -> dict[str, Any]:
    tx.set_faults(bank_code, settings, time.time())
    return faults_view(tx, SIMULATED_BANKS[bank_code])


def _clear_faults(tx: Transaction, bank_code: str) -> dict[str, Any]:
    tx.clear_faults(bank_code)
    return faults_view(tx, SIMULATED_BANKS[bank_code])


@bank_sim.command("limits", help="查看或调整某家银行的开户限额（每秒、每日）；--reset 恢复银行默认值。")
@click.option("--bank", "bank_code", required=True, type=_BANK_CHOICE)
@click.option("--per-second", type=click.IntRange(0, 10**9), help="每秒最多受理的新开户申请")
@click.option("--per-day", type=click.IntRange(0, 10**9), help="每日（北京时间）最多受理的新开户申请")
@click.option("--reset", is_flag=True, help="恢复银行默认限额")
@_URL_OPTION
@_TOKEN_OPTION
@_DB_OPTION
def limits(
    bank_code: str, per_second: int | None, per_day: int | None, reset: bool, url: str, token: str, db_path: Path | None
) -> None:
    bank = SIMULATED_BANKS[bank_code]
    target = (url, token, db_path)
    if reset and (per_second is not None or per_day is not None):
        _fail("--reset 不能与 --per-second / --per-day 同时使用")
    if reset:
        answer = _control(target, "DELETE", f"limits/{bank_code}", None, lambda tx: _reset_limits(tx, bank))
    elif per_second is not None or per_day is not None:
        wanted = {
            "per_second": bank.limits.per_second if per_second is None else per_second,
            "per_day": bank.limits.per_day if per_day is None else per_day,
        }
        answer = _control(target, "PUT", f"limits/{bank_code}", wanted, lambda tx: _set_limits(tx, bank, wanted))
    else:
        answer = _control(target, "GET", f"limits/{bank_code}", None, lambda tx: limits_view(tx, bank))
    note = "（已调整）" if answer["overridden"] else "（银行默认）"
    click.echo(f"{bank.name} {bank_code} 开户限额：每秒 {answer['per_second']} 笔，每日 {answer['per_day']} 笔{note}。")


def _set_limits(tx: Transaction, bank: SimulatedBank, wanted: dict[str, int]) -> dict[str, Any]:
    tx.set_limits(bank.code, wanted["per_second"], wanted["per_day"])
    return limits_view(tx, bank)


def _reset_limits(tx: Transaction, bank: SimulatedBank) -> dict[str, Any]:
    tx.clear_limits(bank.code)
    return limits_view(tx, bank)
