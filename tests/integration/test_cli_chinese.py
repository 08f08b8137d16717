"""Every command of ours answers people in Chinese: its help starts with a Chinese line (English may follow)."""

from __future__ import annotations

import re

import click
from flask import Flask

FLASK_OWN = {"run", "shell", "routes"}  # Flask's commands, not ours
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        if not prefix and name in FLASK_OWN:
            continue
        path = f"{prefix}{name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, f"{path} "))
    return found


def test_every_command_help_starts_in_chinese(app: Flask) -> None:
    commands = _commands(app.cli)
    assert len(commands) > 30, "the platform's commands are registered"
    english = [path for path, command in commands if not CHINESE.search((command.help or "").strip().split("\n")[0])]
    assert not english, f"commands whose help starts in English: {english}"
