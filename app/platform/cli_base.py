"""What every feature's CLI commands share: a group that ends on a domain error with its Chinese message, and
the process's Runtime."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.platform.errors import CunguanError
from app.platform.runtime import Runtime


class CliGroup(AppGroup):
    """Domain errors end a command with their Chinese message and exit code 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CunguanError as error:
            raise click.ClickException(f"{error.message}（{error.code}）") from error


def current_runtime() -> Runtime:
    """The Runtime the app factory built for this process."""
    return current_app.extensions["cunguan.runtime"]
