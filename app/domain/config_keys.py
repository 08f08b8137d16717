"""Which code reads each key of a city config at run time, and the keys no code reads yet.

A config that validates must never be silently ignored: every leaf of the city schema is either read by the
function named here (tests/unit/test_config_keys_read.py imports each one and checks it still uses the key),
or listed in NOT_YET_READ with the part of issue 17 that will read it, and a config that sets it to anything
but its default is refused at validation (`app.domain.city_checks`) instead of being ignored."""

from __future__ import annotations

from typing import NamedTuple


class Reader(NamedTuple):
    function: str  # "module:qualified.name" of the run-time code that reads the key
    uses: str  # what that code's source says when it reads it (the key, or the IR attribute it becomes)


_FORM = Reader("app.domain.forms.schema_form:build_form", "city_form")
_FORM_CHECKS = Reader("app.domain.forms.schema_form:_checked_schema", "field.schema")

READERS: dict[str, Reader] = {
    "extends": Reader("app.domain.cities:resolve", "extends"),
    "admin_code": Reader("app.deals.pinning:pin", "admin_code"),
    "name": Reader("app.agreements.service:agreement_data_under", "city.name"),
    "status": Reader("app.domain.cities:CityCatalog.live_cities", "status"),
    "products/*/workflow/id": Reader("app.deals.service:create_deal", "workflow_id"),
    "products/*/workflow/version": Reader("app.deals.service:create_deal", "workflow_version"),
    "products/*/banks/*": Reader("app.deals.service:custody_bank", "banks"),
    "products/*/authority": Reader("app.agreements.service:agreement_data_under", "authority"),
    "products/*/agreement/template": Reader("app.deals.service:deal_row", "agreement_template"),
    "products/*/agreement/clauses/*": Reader("app.agreements.service:agreement_data_under", "clauses"),
    "products/*/parameters/*": Reader("app.deals.case_blocks:case_context", "overrides"),
    "products/*/deadlines/*": Reader("app.deals.timers:_deal_parameters", "overrides"),  # ISO 8601, or working days:
    "products/*/deadlines/*/working_days": Reader("app.domain.durations:_working_days", "working_days"),
    "products/*/deadlines/*/bank_cut_off": Reader("app.domain.durations:WorkingDays.bound", "bank_cut_off"),
    "products/*/custody/min_fen": Reader("app.domain.custody_limits:custody_limit_error", "min_fen"),
    "products/*/custody/max_fen": Reader("app.domain.custody_limits:custody_limit_error", "max_fen"),
    "products/*/release/tranches/*/label": Reader("app.agreements.service:agreement_data_under", "label"),
    # release plans (app/domain/release_plan.py), run by the workflows that name `release_tranche` or
    # `release_stage`; a workflow version that releases at once refuses tranches but one remainder (city_checks)
    "products/*/release/conditions/*": Reader("app.domain.release_plan:due_tranches", "conditions"),
    "products/*/release/tranches/*/event": Reader("app.domain.cities:ReleaseRule.event_of", "event"),
    "products/*/release/tranches/*/share_bps": Reader("app.domain.release_plan:_fixed", "share_bps"),
    "products/*/release/tranches/*/amount_fen": Reader("app.domain.release_plan:_fixed", "amount_fen"),
    "products/*/release/tranches/*/remainder": Reader("app.domain.release_plan:tranche_amounts", "remainder"),
    "products/*/fees/*/name": Reader("app.domain.fees:agreement_fees", "name"),
    "products/*/fees/*/payer": Reader("app.domain.fees:agreement_fees", "payer"),
    "products/*/fees/*/kind": Reader("app.domain.fees:FeeRule.fee_fen", "kind"),
    "products/*/fees/*/amount_fen": Reader("app.domain.fees:FeeRule.fee_fen", "amount_fen"),
    "products/*/fees/*/bps": Reader("app.domain.fees:FeeRule.fee_fen", "bps"),
    "products/*/fees/*/min_fen": Reader("app.domain.fees:FeeRule.fee_fen", "min_fen"),
    "products/*/fees/*/max_fen": Reader("app.domain.fees:FeeRule.fee_fen", "max_fen"),
    "products/*/fees/*/charge_on": Reader("app.domain.fees:release_fees", "charge_on"),
    "products/*/fees/*/on_failure": Reader("app.fees.charges:return_arrival_fees", "on_failure"),
    "products/*/approvals/*/operation": Reader("app.domain.cities:ProductConfig.approvers_required", "operation"),
    "products/*/approvals/*/above_fen": Reader("app.domain.cities:ProductConfig.approvers_required", "above_fen"),
    "products/*/approvals/*/approvers": Reader("app.domain.cities:ProductConfig.approvers_required", "approvers"),
    "products/*/payer/designated": Reader("app.deals.actions:request_virtual_account", "designated"),
    "products/*/payer/wrong_payer": Reader("app.bank_inbox.suspense:_wrong_payer", "wrong_payer"),
    "products/*/form/sections/*": _FORM,
    "products/*/form/schema/required/*": _FORM,
    "products/*/form/schema/properties/*/title": _FORM,
    "products/*/form/schema/properties/*/description": _FORM,
    "products/*/form/schema/properties/*/x-order": _FORM,
    "products/*/form/schema/properties/*/x-section": _FORM,
    "products/*/form/schema/properties/*/x-widget": _FORM,
    "products/*/form/schema/properties/*/type": _FORM_CHECKS,
    "products/*/form/schema/properties/*/enum": _FORM_CHECKS,
    "products/*/form/schema/properties/*/pattern": _FORM_CHECKS,
    "products/*/form/schema/properties/*/minLength": _FORM_CHECKS,
    "products/*/form/schema/properties/*/maxLength": _FORM_CHECKS,
    "products/*/form/schema/properties/*/minimum": _FORM_CHECKS,
    "products/*/form/schema/properties/*/maximum": _FORM_CHECKS,
}

# the keys under these paths are read by no code yet: a config may only leave them at their default
NOT_YET_READ: dict[str, str] = {}

# what the workflow versions that do not run release plans (no `release_tranche`) release on, whatever
# `release.conditions` says (by workflow id): a config on such a version must name exactly these
RELEASED_ON: dict[str, frozenset[str]] = {
    "resale_escrow": frozenset({"title_transferred"}),
    "gov_escrow": frozenset({"title_transferred", "gov_approved"}),
    "renovation_escrow": frozenset({"stage_accepted"}),
    "intent_deposit": frozenset({"purchase_signed"}),
    "guarantee_release": frozenset({"conditions_met"}),
}
