"""The platform CA (`app.pki`) issues the TSA its certificate: extendedKeyUsage timeStamping (critical), the
platform's legal name and 统一社会信用代码 in the subject, valid five years (within the root's validity). The
certificate replaces the TSA's self-signed one in its folder, with the root as the chain sent in each token; the
TSA process reads it when restarted. Verifiers then trust timestamps through the root, and its CRL applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.crypto.keys import public_key_pem_from_private
from app.pki.certificates import Usage
from app.pki.names import organization_subject
from app.pki.seals import platform_identity
from app.pki.store import CLOCK_SKEW, issue_and_record, load_ca, root_pem
from app.tsa.identity import TSA_COMMON_NAME, ensure_tsa_identity, install_certificate

TSA_VALID_DAYS = 5 * 365


def certify_tsa(keys_dir: Path, tsa_folder: Path, valid_from: datetime | None = None) -> bytes:
    """Issue (and record, so `flask ca revoke` can revoke it) the certificate of the TSA whose key is in
    `tsa_folder`, with the CA in the platform's `keys_dir`, and install it there. Returns it (PEM)."""
    identity = ensure_tsa_identity(tsa_folder)
    root = load_ca(keys_dir).certificate
    start = (valid_from or datetime.now(UTC) - CLOCK_SKEW).astimezone(UTC).replace(microsecond=0)
    start = max(start, root.not_valid_before)
    end = min(start + timedelta(days=TSA_VALID_DAYS), root.not_valid_after)
    issued = issue_and_record(
        keys_dir,
        public_key_pem_from_private(identity.private_key_pem),
        organization_subject(platform_identity(), TSA_COMMON_NAME),
        usage=Usage.TSA,
        valid_from=start,
        valid_until=end,
    )
    install_certificate(tsa_folder, issued, root_pem(keys_dir))
    return issued
