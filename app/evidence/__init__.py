"""The evidence pack (证据包) of a deal: one ZIP with its signed agreement, timeline, audit entries, ledger transfers,
bank notifications with their signatures, the exact versions it pinned and the certificates, plus a manifest of SM3
hashes signed by the platform; verifiable offline, without the database (`verify.verify_pack`)."""

# who may download a deal's pack (the console's deal page links it): operations and the auditor; the system
# administrator sees no deal (三权分立, app/web/access.py)
EVIDENCE_ROLES = ("ops", "auditor")
