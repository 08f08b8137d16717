"""flask user create-demo | create | set-password."""

from __future__ import annotations

import click

from app.platform.cli_base import CliGroup, current_runtime

user_cli = CliGroup("user", help="用户管理 / users")


@user_cli.command("create-demo")
def user_create_demo() -> None:
    """为新安装创建每个角色的演示用户；密码只在此处显示一次。

    One demo user per role on a fresh install; passwords are printed once, here."""
    from app.users.service import ROLE_LABELS, create_demo_users

    created = create_demo_users(current_runtime())
    if not created:
        click.echo("已有用户，不再创建演示用户（忘记密码可用 flask user set-password 用户名 重设）")
        return
    click.echo("演示用户（密码只显示这一次，请记下）：")
    for username, password in created.items():
        click.echo(f"  {ROLE_LABELS[username]:<4} 用户名 {username:<9} 密码 {password}")


@user_cli.command("create")
@click.argument("username")
@click.option("--role", required=True)
@click.option("--name", "display_name", required=True)
@click.password_option()
def user_create(username: str, role: str, display_name: str, password: str) -> None:
    """创建系统管理员（安装时使用）；业务角色在运营后台由一位管理员提出、另一位批准。

    Create an administrator (set-up). Business roles are given in the console: one administrator proposes,
    a second approves; the command line is no way around that."""
    from app.users.service import create_user

    if role != "admin":
        raise click.ClickException("业务角色须在运营后台由一位管理员提出、另一位管理员批准，命令行只能创建管理员")
    create_user(current_runtime(), username, password, role, display_name)
    click.echo(f"已创建管理员 {username}")


@user_cli.command("set-password")
@click.argument("username")
@click.password_option()
def user_set_password(username: str, password: str) -> None:
    """重置密码：新密码为一次性密码（用户下次登录时须修改），并结束其全部会话。

    Reset a password: it is one-time (the user changes it at the next login) and every session ends."""
    from app.users.service import set_password

    set_password(current_runtime(), username, password)
    click.echo(f"已重设 {username} 的密码（一次性密码，登录后须修改）")
