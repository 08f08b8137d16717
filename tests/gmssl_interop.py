"""A signed agreement checked by GmSSL (the `gmssl_pyx` binding of GmSSL 3's C library): an SM2/SM3
implementation other than ours and other than OpenSSL, whose libcrypto our C-backed provider uses. Only parsing is
shared (pypdf for the PDF, asn1crypto for the DER); every digest and every signature is computed by GmSSL.

    found = check_with_gmssl(pdf)   # AssertionError naming what GmSSL refused

Checked: each signature's byte ranges against its messageDigest (SM3), its SM2 signature over the signed attributes
with GM/T 0009's default id, each signature's timestamp token (imprint = SM3 of the signature value, the TSA's
signature), the document timestamp (imprint = SM3 of its byte ranges), every certificate the file carries against
its issuer's key, every CRL in /DSS against the CA's key, and every GB/T 38540 seal a signature carries (the
maker's signature over SES_SealInfo; the signing certificate in its list)."""

from __future__ import annotations

from collections import Counter
from io import BytesIO
from typing import Any

import gmssl_pyx
from asn1crypto import cms, crl, tsp, x509
from pypdf import PdfReader

from app.seals.structures import SES_SEAL_ATTRIBUTE_OID, SesSeal  # the ASN.1 layout only, to parse

SM2_ID = b"1234567812345678"  # GM/T 0009's default signer id
TIMESTAMP_TOKEN = "1.2.840.113549.1.9.16.2.14"


def _public_key(certificate: x509.Certificate) -> bytes:
    point = certificate.public_key["public_key"].native  # 04 || X || Y
    assert len(point) == 65 and point[0] == 4, "not an uncompressed SM2 point"
    return point[1:]


def _verified(certificate: x509.Certificate, message: bytes, signature: bytes) -> bool:
    return bool(gmssl_pyx.sm2_verify(_public_key(certificate), message, signature, SM2_ID))


def _signed_attributes(signer: cms.SignerInfo) -> bytes:
    encoded = signer["signed_attrs"].dump()
    return b"\x31" + encoded[1:]  # signed as a SET OF, stored [0] IMPLICIT


def _attribute(signer: cms.SignerInfo, name: str) -> Any:
    return next(a["values"][0] for a in signer["signed_attrs"] if a["type"].native == name)


class _Certificates:
    """Every certificate met in the file, by subject, each checked once against its issuer's key by GmSSL."""

    def __init__(self) -> None:
        self.by_subject: dict[bytes, x509.Certificate] = {}
        self.checked: set[bytes] = set()

    def add(self, certificates: Any) -> None:
        for item in certificates or []:
            certificate = item if isinstance(item, x509.Certificate) else item.chosen
            self.by_subject.setdefault(certificate.subject.dump(), certificate)

    def signer(self, signed_data: cms.SignedData) -> x509.Certificate:
        serial = signed_data["signer_infos"][0]["sid"].chosen["serial_number"].native
        for choice in signed_data["certificates"]:
            if choice.chosen.serial_number == serial:
                return choice.chosen
        raise AssertionError(f"the signer's certificate (serial {serial}) is not in the CMS")

    def check_all(self) -> int:
        for subject, certificate in self.by_subject.items():
            issuer = self.by_subject.get(certificate.issuer.dump())
            assert issuer is not None, f"no issuer for {certificate.subject.human_friendly}"
            tbs = certificate["tbs_certificate"].dump()
            assert _verified(issuer, tbs, certificate["signature_value"].native), (
                f"GmSSL refuses the CA's signature on {certificate.subject.human_friendly}"
            )
            self.checked.add(subject)
        return len(self.checked)


def _check_seal(signer: cms.SignerInfo, certificate: x509.Certificate, found: Counter[str]) -> None:
    """The GB/T 38540 seal a signature carries (if any): the maker's SM2 signature over SES_SealInfo checked by
    GmSSL, and the signing certificate among the seal's certificates."""
    for attribute in signer["signed_attrs"]:
        if attribute["type"].dotted != SES_SEAL_ATTRIBUTE_OID:
            continue
        seal = SesSeal.load(attribute["values"][0].dump())
        maker = x509.Certificate.load(seal["cert"].native)
        assert _verified(maker, seal["eseal_info"].dump(), seal["signed_value"].native), (
            f"GmSSL refuses the seal maker's signature on {seal['eseal_info']['property']['name'].native}"
        )
        listed = [item.native for item in seal["eseal_info"]["property"]["cert_list"]]
        assert certificate.dump() in listed, "the seal does not list the signing certificate"
        found["seals"] += 1


def _check_signed_data(
    token: bytes, content: bytes, certificates: _Certificates, found: Counter[str] | None = None
) -> cms.SignedData:
    """`token` a CMS SignedData (trailing zero padding allowed) whose messageDigest is the SM3 of `content`."""
    signed_data = cms.ContentInfo.load(token, strict=False)["content"]
    certificates.add(signed_data["certificates"])
    signer = signed_data["signer_infos"][0]
    assert _attribute(signer, "message_digest").native == gmssl_pyx.sm3_hash(content), "messageDigest ≠ GmSSL's SM3"
    certificate = certificates.signer(signed_data)
    assert _verified(certificate, _signed_attributes(signer), signer["signature"].native), (
        f"GmSSL refuses the SM2 signature of {certificate.subject.native.get('common_name')}"
    )
    if found is not None:
        _check_seal(signer, certificate, found)
    return signed_data


def _check_token(token: bytes, imprint_of: bytes, certificates: _Certificates) -> None:
    """An RFC 3161 token over the SM3 of `imprint_of`."""
    signed_data = cms.ContentInfo.load(token, strict=False)["content"]
    info = signed_data["encap_content_info"]["content"].parsed
    assert isinstance(info, tsp.TSTInfo)
    assert info["message_imprint"]["hashed_message"].native == gmssl_pyx.sm3_hash(imprint_of), "imprint ≠ GmSSL's SM3"
    _check_signed_data(token, signed_data["encap_content_info"]["content"].contents, certificates)


def _signature_dictionaries(reader: PdfReader) -> list[Any]:
    values = (field.get_object().get("/V") for field in reader.trailer["/Root"]["/AcroForm"]["/Fields"])
    return [value.get_object() for value in values if value is not None]  # a party's field may be unsigned yet


def signature_values(pdf: bytes) -> list[bytes]:
    """The SM2 signature values of the file's CMS signatures (document timestamps left out), in field order."""
    return [
        cms.ContentInfo.load(bytes(signature["/Contents"]), strict=False)["content"]["signer_infos"][0][
            "signature"
        ].native
        for signature in _signature_dictionaries(PdfReader(BytesIO(pdf)))
        if signature.get("/SubFilter") != "/ETSI.RFC3161"
    ]


def check_with_gmssl(pdf: bytes) -> Counter[str]:
    """What GmSSL verified in `pdf`: signatures, timestamp tokens, document timestamps, certificates, CRLs."""
    found: Counter[str] = Counter()
    certificates = _Certificates()
    reader = PdfReader(BytesIO(pdf))
    for signature in _signature_dictionaries(reader):
        start, first, second, length = (int(n) for n in signature["/ByteRange"])
        signed_bytes = pdf[start : start + first] + pdf[second : second + length]
        contents = bytes(signature["/Contents"])
        if signature.get("/SubFilter") == "/ETSI.RFC3161":
            _check_token(contents, signed_bytes, certificates)
            found["document timestamps"] += 1
            continue
        signed_data = _check_signed_data(contents, signed_bytes, certificates, found)
        found["signatures"] += 1
        signer = signed_data["signer_infos"][0]
        for attribute in signer["unsigned_attrs"] or []:
            if attribute["type"].dotted == TIMESTAMP_TOKEN:
                _check_token(attribute["values"][0].dump(), signer["signature"].native, certificates)
                found["signature timestamps"] += 1
    dss = reader.trailer["/Root"].get("/DSS")
    dss = dss.get_object() if dss is not None else {}
    for reference in dss.get("/Certs", []):
        certificates.add([x509.Certificate.load(reference.get_object().get_data())])
    found["certificates"] = certificates.check_all()
    for reference in dss.get("/CRLs", []):
        revocations = crl.CertificateList.load(reference.get_object().get_data())
        issuer = certificates.by_subject.get(revocations.issuer.dump())
        assert issuer is not None, "a CRL whose issuer the file does not carry"
        assert _verified(issuer, revocations["tbs_cert_list"].dump(), revocations["signature"].native), (
            "GmSSL refuses the CRL's signature"
        )
        found["crls"] += 1
    return found
