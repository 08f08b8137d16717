"""The platform CA (`app.pki`) issues the TSA its certificate (`app.pki.seals.issue_tsa_certificate`:
extendedKeyUsage timeStamping, critical; the platform's legal name and 统一社会信用代码 in the subject), which
replaces the TSA's self-signed one in its folder, with the root as the chain sent in each token; the TSA process
reads it when restarted. Verifiers then trust timestamps through the root, and its CRL applies. (On separate
machines: `flask ca issue-tsa --request tsa.cert.pem --out … --chain-out …`, then copy both into the TSA folder.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.crypto.keys import public_key_pem_from_private
from app.pki.seals import issue_tsa_certificate
from app.pki.store import load_ca, root_pem
from app.tsa.identity import ensure_tsa_identity, install_certificate

RENEW_BEFORE = timedelta(days=30)


def certify_tsa(
    keys_dir: Path, tsa_folder: Path, valid_from: datetime | None = None, *, renew: bool = False
) -> bytes | None:
    """Issue (and record, so `flask ca revoke` can revoke it) the certificate of the TSA whose key is in
    `tsa_folder`, with the CA in the platform's `keys_dir`, and install it there. Returns it (PEM); None when the
    TSA already has one from this root valid for more than 30 days (unless `renew`)."""
    identity = ensure_tsa_identity(tsa_folder)  # on this machine: its public key is the request (renewals too)
    root = load_ca(keys_dir).certificate
    current = identity.certificate
    from_root = [certificate.dump() for certificate in identity.chain] == [root.dump()]
    if from_root and not renew and current.not_valid_after - RENEW_BEFORE > datetime.now(UTC):
        return None
    public_key = public_key_pem_from_private(identity.private_key_pem)
    issued = issue_tsa_certificate(keys_dir, public_key, valid_from=valid_from)
    install_certificate(tsa_folder, issued, root_pem(keys_dir))
    return issued
