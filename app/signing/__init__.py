"""Parties sign their agreement on a phone (issue 20): a signing link per party, a real-name check with a one-time
code sent by SMS, an SM2 key and a certificate from the platform CA per signing, the signature into the field
reserved for the party (`app.pdf.fields`)."""
