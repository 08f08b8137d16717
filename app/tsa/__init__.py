"""Trusted time: an RFC 3161 timestamp authority with SM2/SM3 (GB/T 20520), run as its own process.

- `protocol`: TimeStampReq / TimeStampResp / TSTInfo, built and read with asn1crypto (no Flask, no database);
- `authority`: answers one request (its key, certificate, policy, accuracy, persisted serial numbers);
- `server`: the WSGI app of `flask tsa serve`; `cli`: the commands; `identity`: the TSA's key and certificate;
- `client`: `timestamp(url, digest)` for the platform (CUNGUAN_TSA_URL);
- `tokens`: checks a token (signature, imprint, the TSA certificate's timeStamping purpose), for the verifier.
"""
