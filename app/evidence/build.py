"""Build a deal's evidence pack: its files (`collect` + `members`), the manifest of their SM3 hashes signed by the
platform, optionally a trusted timestamp over that signature, all in one canonical ZIP. Every pack built is audited
(who, which deal, the manifest's SM3)."""

from __future__ import annotations

from datetime import datetime

from app.audit import log as audit
from app.crypto import sm3
from app.evidence.archive import MANIFEST, MANIFEST_SIGNATURE, MANIFEST_TIMESTAMP, write_archive
from app.evidence.collect import collect
from app.evidence.manifest import manifest_bytes, sign_manifest
from app.evidence.members import pack_members
from app.pki.store import root_certificate_path
from app.platform.runtime import Runtime
from app.tsa.client import Timestamper

EVIDENCE_ACTION = "evidence.build"


def build_pack(
    rt: Runtime,
    deal_id: int,
    *,
    builder: str = "system",
    now: datetime | None = None,
    timestamper: Timestamper | None = None,
) -> bytes:
    """The deal's evidence pack (ZIP bytes); the same records, builder and time give the same bytes.

    `timestamper` (default: the configured TSA, `rt.timestamper()`): an RFC 3161 token over the SM3 of manifest.sig
    is added as manifest.tsr, and the manifest says one follows (so that removing it is noticed). A TSA that cannot
    be reached fails the build (CryptoError), rather than giving a pack without the trusted time it should have."""
    built_at = (now or rt.clock()).replace(microsecond=0)
    stamper = timestamper or rt.timestamper()
    evidence = collect(rt, deal_id)
    members = pack_members(evidence)
    deal_no = evidence.deal["deal_no"]
    manifest = manifest_bytes(
        members, deal_id=deal_id, deal_no=deal_no, built_at=built_at, builder=builder, timestamped=stamper is not None
    )
    root = root_certificate_path(rt.keys.folder)
    chain = [root.read_bytes()] if root.is_file() else []
    signature = sign_manifest(
        manifest, rt.keys.platform_private_key_pem, rt.keys.platform_certificate_pem, built_at, chain
    )
    members[MANIFEST], members[MANIFEST_SIGNATURE] = manifest, signature
    if stamper is not None:
        members[MANIFEST_TIMESTAMP] = stamper(sm3(signature))
    pack = write_archive(members, built_at)
    with rt.db.uow() as uow:
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=builder,
            action=EVIDENCE_ACTION,
            subject=f"deal:{deal_no}",
            detail={"manifest_sm3": sm3(manifest).hex(), "pack_sm3": sm3(pack).hex(), "members": len(members)},
        )
        uow.commit()
    return pack
