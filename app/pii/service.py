"""PII use cases: find deals by a party's ID number or phone (blind index), audited unmasked views, and
maintenance (re-index, re-encrypt under the active key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, text
from sqlalchemy.orm import Session, selectinload

from app.audit import log as audit
from app.db.base import Base
from app.db.models import Deal
from app.db.pii import ENCRYPTED_TYPES, blind_index_columns, fill_blind_indexes, keyring
from app.deals.service import Actor
from app.domain.pii_mask import mask_card, mask_id_number, mask_phone, normalize_id_number, normalize_phone
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime

# Roles that may see a deal's parties unmasked (always with a reason, always audited). Finance checks
# payees and payers against bank records. Everyone else (administrators too): masks.
UNMASK_ROLES = frozenset({"finance"})
UNMASK_ACTION = "pii.unmask"
SEARCH_ACTION = "pii.search"


def party_clause(id_number: str | None = None, phone: str | None = None) -> ColumnElement[bool] | None:
    """Deals where the buyer or the seller has this ID number and/or phone (exact, through the index).
    None when neither is given; a value that normalises to nothing matches no deal."""
    clauses: list[ColumnElement[bool]] = []
    if id_number and id_number.strip():
        if not normalize_id_number(id_number):
            return false()
        digest = keyring.blind_index("id", id_number)
        clauses.append(or_(Deal.buyer_id_bidx == digest, Deal.seller_id_bidx == digest))
    if phone and phone.strip():
        if not normalize_phone(phone):
            return false()
        digest = keyring.blind_index("phone", phone)
        clauses.append(or_(Deal.buyer_phone_bidx == digest, Deal.seller_phone_bidx == digest))
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else clauses[0] & clauses[1]


def find_deals_by_party(rt: Runtime, id_number: str | None = None, phone: str | None = None) -> list[Deal]:
    """Deals (newest first) whose buyer or seller has this ID number and/or phone; exact match only."""
    clause = party_clause(id_number, phone)
    if clause is None:
        raise ValidationError("请填写身份证号或手机号", code="PARTY_SEARCH_EMPTY")
    with rt.db.uow() as uow:
        query = select(Deal).options(selectinload(Deal.virtual_account)).where(clause).order_by(Deal.id.desc())
        return list(uow.session.scalars(query))


def audit_party_search(
    rt: Runtime, session: Session, actor: str, id_number: str | None, phone: str | None, found: int
) -> None:
    """A search by a party's ID number or phone goes into the audit log (masked as pages show them, never in
    full), in the searching transaction; nothing is recorded for a search by other fields."""
    searched = {
        key: masked
        for key, value, mask in (("id_number", id_number, mask_id_number), ("phone", phone, mask_phone))
        if value and value.strip() and (masked := mask(value.strip()))
    }
    if searched:
        detail = {"searched": searched, "found": found}
        audit.append(session, at=rt.clock(), actor=actor, action=SEARCH_ACTION, subject="deals", detail=detail)


@dataclass(frozen=True)
class PartyPii:
    """One party's PII as a page shows it: masked, or in full for an audited view."""

    id_number: str
    phone: str
    bank_account: str


def masked_parties(deal: Deal) -> dict[str, PartyPii]:
    return {
        side: PartyPii(
            mask_id_number(id_number) if (id_number := getattr(deal, f"{side}_id_number")) else "",
            mask_phone(phone) if (phone := getattr(deal, f"{side}_phone")) else "",
            mask_card(account) if (account := getattr(deal, f"{side}_bank_account")) else "",
        )
        for side in ("buyer", "seller")
    }


def unmask_deal_parties(rt: Runtime, actor: Actor, deal_id: int, reason: str) -> dict[str, PartyPii]:
    """The parties' full ID numbers, phones and accounts, for an allowed role with a reason; the audit
    entry commits before anything is shown."""
    if actor.role not in UNMASK_ROLES:
        raise ValidationError("当前角色无权查看完整个人信息", code="ROLE_NOT_ALLOWED")
    reason = reason.strip()
    if len(reason) < 2:
        raise ValidationError("请填写查看完整信息的原因", code="REASON_REQUIRED")
    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, deal_id)
        if deal is None:
            raise NotFound("存管单不存在", details={"deal_id": deal_id})
        parties = {
            side: PartyPii(
                getattr(deal, f"{side}_id_number") or "",
                getattr(deal, f"{side}_phone") or "",
                getattr(deal, f"{side}_bank_account") or "",
            )
            for side in ("buyer", "seller")
        }
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=actor.label,
            action=UNMASK_ACTION,
            subject=f"deal:{deal.deal_no}",
            detail={"reason": reason[:500], "fields": ["id_number", "phone", "bank_account"]},
        )
        uow.commit()
    return parties


# --- maintenance ----------------------------------------------------------------------------------------
def reindex(rt: Runtime) -> int:
    """Recompute every deal's blind indexes (after migration 0010 without keys, or a new index key)."""
    count = 0
    with rt.db.uow() as uow:
        for deal in uow.session.scalars(select(Deal).order_by(Deal.id).execution_options(yield_per=500)):
            before = {key: getattr(deal, key) for key in _index_attributes()}
            fill_blind_indexes(deal)
            if any(getattr(deal, key) != value for key, value in before.items()):
                count += 1
        uow.commit()
    return count


def _index_attributes() -> tuple[str, ...]:
    return tuple(blind_index_columns(Deal))


def _encrypted_columns() -> list[tuple[str, str, list[str]]]:
    """(table, primary key column, encrypted columns) for every mapped table with PII."""
    found = []
    for mapper in Base.registry.mappers:
        table = mapper.local_table
        columns = [c.name for c in table.columns if isinstance(c.type, ENCRYPTED_TYPES)]
        if columns and len(table.primary_key.columns) == 1:
            found.append((table.name, next(iter(table.primary_key.columns)).name, columns))
    return found


def _reencrypted(stored: str | bytes) -> str | bytes:
    """A stored value (text, or bytes of an EncryptedBytes column) under the active key."""
    if isinstance(stored, str):
        return keyring.encrypt(keyring.decrypt(stored))
    return keyring.encrypt_bytes(keyring.decrypt_bytes(bytes(stored)))


def reencrypt(rt: Runtime) -> dict[str, int]:
    """Re-encrypt every stored value not under the active key (after a rotation, before an old key file is
    retired). Works on the stored strings, so row versions and timestamps are untouched."""
    active = keyring.active_key_id
    changed: dict[str, int] = {}
    with rt.db.uow() as uow:
        session: Session = uow.session
        for table, pk, columns in _encrypted_columns():
            selected = ", ".join([pk, *columns])
            rows = session.execute(text(f"SELECT {selected} FROM {table}")).all()
            for row in rows:
                updates: dict[str, Any] = {
                    column: _reencrypted(stored)
                    for column, stored in zip(columns, row[1:], strict=True)
                    if stored and keyring.key_id_of(stored) != active
                }
                if updates:
                    assignments = ", ".join(f"{column} = :{column}" for column in updates)
                    session.execute(
                        text(f"UPDATE {table} SET {assignments} WHERE {pk} = :pk"),
                        {**updates, "pk": row[0]},
                    )
                    changed[table] = changed.get(table, 0) + 1
        uow.commit()
    return changed
