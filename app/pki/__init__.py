"""The platform's small CA (issue 20): root → platform seal, bank seals, party signing certificates, TSA.

- `names`: subjects (legal name + 统一社会信用代码, or a person's name + masked ID number)
- `certificates`: `make_root_ca`, `issue_certificate(ca, public_key_pem, subject, usage=…, valid_from=…, valid_until=…)`
- `crl`: `build_crl`, `read_crl` (X.509 v2, SM2-signed)
- `chain`: `TrustStore`, `validate_path` (path to an anchor, validity at the signing time, usage, revocation)
- `store`: the CA in the key folder (`ensure_root`, `load_ca`, `issue_and_record`, `revoke`, `write_crl`,
  `trust_store`); `seals`: the platform's and banks' seal certificates; `cli`: `flask ca …`
No Flask outside `cli`.
"""
