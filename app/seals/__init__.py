"""GB/T 38540-2019 electronic seals (电子印章, SES_Seal v4) of the platform and the banks (issue 20).

- `structures`: the ASN.1 (asn1crypto) and the CMS signed attribute that carries a seal in a signature
- `seal`: make a seal (the platform CA's root signs its SES_SealInfo, SM2-with-SM3), read one, check one
- `picture`: the seal's PNG, rendered from the drawing of the signature page (`app.pdf.seal`)
- `issue`: the seal files beside the certificates (`platform.seal.der`, `banks/CODE.seal.der`)
No Flask outside `cli`.
"""
