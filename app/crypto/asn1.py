"""ShangMi OIDs and their registration in asn1crypto's name maps (done once, on import)."""

from __future__ import annotations

from asn1crypto import algos, core, keys

SM2_CURVE_OID = "1.2.156.10197.1.301"
SM3_OID = "1.2.156.10197.1.401"
SM2_WITH_SM3_OID = "1.2.156.10197.1.501"

SM2_CURVE_NAME = "sm2p256v1"
SM3_NAME = "sm3"
SM2_WITH_SM3_NAME = "sm2_sm3"


def _register_oid(oid_class: type[core.ObjectIdentifier], dotted: str, name: str) -> None:
    oid_class._map[dotted] = name
    if oid_class._reverse_map is not None:
        oid_class._reverse_map[name] = dotted


_register_oid(algos.DigestAlgorithmId, SM3_OID, SM3_NAME)
_register_oid(algos.SignedDigestAlgorithmId, SM2_WITH_SM3_OID, SM2_WITH_SM3_NAME)
if SM2_CURVE_OID not in keys.NamedCurve._map:
    keys.NamedCurve.register(SM2_CURVE_NAME, SM2_CURVE_OID, 32)
