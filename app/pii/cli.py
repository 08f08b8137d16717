"""flask keys rotate-pii | flask pii reindex | flask pii reencrypt."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from app.platform.cli_base import CliGroup, current_runtime

pii_cli = CliGroup("pii", help="个人金融信息 / PII maintenance")


@click.command("rotate-pii")
@with_appcontext
def keys_rotate_pii() -> None:
    """生成下一个个人信息加密密钥文件（pii.kN.key）：新数据用它加密，旧数据仍可读取。

    Create the next PII key file (pii.kN.key); new values are encrypted with it, old ones stay readable."""
    from app.db.pii import keyring, rotate_pii_key

    config = current_app.extensions["cunguan.config"]
    key_id = rotate_pii_key(config.keys_dir)
    keyring.configure_from_folder(config.keys_dir)
    click.echo(f"新的 PII 密钥 {key_id} 已生效（重启各进程后使用）；旧数据仍可解密，可运行 flask pii reencrypt 迁移")


@pii_cli.command("reindex")
def pii_reindex() -> None:
    """根据解密后的数据重算每个存管单的盲索引。

    Recompute every deal's blind indexes from the decrypted values."""
    from app.pii.service import reindex

    click.echo(f"已更新检索索引：{reindex(current_runtime())} 笔存管单")


@pii_cli.command("reencrypt")
def pii_reencrypt() -> None:
    """将仍用旧密钥加密的数据改用当前密钥重新加密。

    Re-encrypt every value still under an older key with the active key."""
    from app.db.pii import keyring
    from app.pii.service import reencrypt

    changed = reencrypt(current_runtime())
    summary = "，".join(f"{table} {count} 行" for table, count in sorted(changed.items())) or "无需更新"
    click.echo(f"当前密钥 {keyring.active_key_id}：{summary}")


# added to `flask keys` by app.platform.commands
KEYS_COMMANDS = (keys_rotate_pii,)
