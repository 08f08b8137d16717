"""Every feature's CLI commands, registered on the app in one place (no command registers itself on import)."""

from __future__ import annotations

from flask import Flask

from app.agreements.cli import agreement_cli
from app.audit.cli import audit_cli
from app.bank_inbox.cli import reconcile_command
from app.bank_inbox.suspense_cli import suspense_cli
from app.banks.cli import bank_cli
from app.calendars.cli import calendar_cli
from app.cities import publishing_cli
from app.cities.cli import city_cli, workflow_cli
from app.deals.cli import contracts_cli
from app.definitions.cli import definition_cli
from app.evidence.cli import evidence_cli
from app.ledger.cli import ledger_cli
from app.pii.cli import KEYS_COMMANDS, pii_cli
from app.pki.cli import ca_cli
from app.platform.cli import db_cli, keys_cli, serve_all_command, worker_command
from app.sandbox.cli import city_simulate, definition_simulate
from app.sandbox.replay_cli import city_replay
from app.tools.banksim.cli import bank_sim
from app.tsa.cli import tsa_cli
from app.users.cli import user_cli


def register_cli(app: Flask) -> None:
    for command in (*publishing_cli.COMMANDS, city_simulate, city_replay):
        city_cli.add_command(command)
    definition_cli.add_command(definition_simulate)
    for command in KEYS_COMMANDS:
        keys_cli.add_command(command)
    for group in (
        keys_cli,
        db_cli,
        user_cli,
        ledger_cli,
        city_cli,
        workflow_cli,
        suspense_cli,
        audit_cli,
        agreement_cli,
        ca_cli,
        pii_cli,
        contracts_cli,
        worker_command,
        serve_all_command,
        reconcile_command,
        calendar_cli,
        bank_cli,
        definition_cli,
        tsa_cli,
        evidence_cli,
    ):
        app.cli.add_command(group)
    app.cli.add_command(bank_sim, "bank-sim")
