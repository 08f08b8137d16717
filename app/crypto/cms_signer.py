"""Reading a CMS SignerInfo (asn1crypto): its signed attributes and the certificate it names, shared by the PDF
signature verifier and the timestamp-token checker."""

from __future__ import annotations

from typing import Any

from asn1crypto import cms, x509


def signed_attribute(signer: cms.SignerInfo, name: str) -> Any:
    """The first value of the signed attribute `name` (asn1crypto's object), or None."""
    for attribute in signer["signed_attrs"]:
        if attribute["type"].native == name:
            return attribute["values"][0]
    return None


def signer_certificate(signed_data: cms.SignedData, signer: cms.SignerInfo) -> x509.Certificate | None:
    """The certificate among the SignedData's that the signer names by issuer and serial number, or None."""
    sid = signer["sid"]
    if sid.name != "issuer_and_serial_number":
        return None
    wanted = sid.chosen
    for choice in signed_data["certificates"] or []:
        certificate = choice.chosen
        if (
            isinstance(certificate, x509.Certificate)
            and certificate.serial_number == wanted["serial_number"].native
            and certificate.issuer == wanted["issuer"]
        ):
            return certificate
    return None
