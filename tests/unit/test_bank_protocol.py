"""Bank protocol v1: signing, verification and the published contracts (JSON Schema, OpenAPI)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from app.banks.protocol import (
    BANK_PREFIX,
    MAX_BODY_BYTES,
    NONCE_PATTERN,
    PLATFORM_PREFIX,
    TIMESTAMP_TOLERANCE_S,
    BadSignature,
    BodyTooLarge,
    MissingSignatureHeaders,
    ReplayedNonce,
    SignedRequest,
    StaleTimestamp,
    sign_headers,
    signing_payload,
    verify_request,
)
from app.crypto import sm2_verify
from app.domain.money import MAX_AMOUNT_FEN
from app.tools.banksim.keys import provision_simulated_banks

SCHEMAS = Path(__file__).resolve().parents[2] / "app" / "schemas"
NOW = 1_735_720_200.0
NONCE = "4f1d0c2e9b8a7c6d5e4f3a2b1c0d9e8f"
ACCOUNT_NO = "6226012345678901"
BODY = b'{"notification_id":"n1","type":"account_opened"}'


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    keys_dir, banks = tmp_path_factory.mktemp("keys"), tmp_path_factory.mktemp("bank-keys")
    provision_simulated_banks(keys_dir, banks, ["ceb"])
    return {
        "bank_private": (banks / "ceb.key.pem").read_bytes(),
        "bank_public": (keys_dir / "banks" / "ceb.pub.pem").read_bytes(),
        "platform_public": (keys_dir / "platform.pub.pem").read_bytes(),
    }


def _signed(keys: dict[str, bytes], body: bytes = BODY) -> dict[str, str]:
    return sign_headers(BANK_PREFIX, keys["bank_private"], body, now=NOW, nonce=NONCE)


def test_signing_payload_is_timestamp_nonce_body_joined_by_newlines() -> None:
    assert signing_payload("1735720200", NONCE, b'{"a":1}') == b"1735720200\n" + NONCE.encode() + b'\n{"a":1}'


def test_sign_headers_names_and_values(keys: dict[str, bytes]) -> None:
    headers = _signed(keys)
    assert set(headers) == {"X-Bank-Timestamp", "X-Bank-Nonce", "X-Bank-Signature"}
    assert headers["X-Bank-Timestamp"] == "1735720200"
    assert headers["X-Bank-Nonce"] == NONCE
    assert base64.b64decode(headers["X-Bank-Signature"])[0] == 0x30  # a DER SEQUENCE


def test_round_trip_returns_timestamp_nonce_and_the_signature_as_evidence(keys: dict[str, bytes]) -> None:
    headers = _signed(keys)
    signed = verify_request(BANK_PREFIX, keys["bank_public"], headers, BODY, now=NOW + 5)
    assert signed == SignedRequest(timestamp=int(NOW), nonce=NONCE, signature=headers["X-Bank-Signature"])
    evidence = signed.evidence()  # what the inbox keeps: enough to check the signature again later
    assert evidence == {"timestamp": str(int(NOW)), "nonce": NONCE, "signature": headers["X-Bank-Signature"]}
    payload = signing_payload(evidence["timestamp"], evidence["nonce"], BODY)
    assert sm2_verify(keys["bank_public"], payload, base64.b64decode(evidence["signature"]))


def test_fresh_nonces_differ_and_header_names_are_case_insensitive(keys: dict[str, bytes]) -> None:
    first = sign_headers(PLATFORM_PREFIX, keys["bank_private"], BODY)
    second = sign_headers(PLATFORM_PREFIX, keys["bank_private"], BODY)
    assert first["X-Platform-Nonce"] != second["X-Platform-Nonce"]
    assert NONCE_PATTERN.match(first["X-Platform-Nonce"])
    lowered = {name.lower(): value for name, value in first.items()}
    assert verify_request(PLATFORM_PREFIX, keys["bank_public"], lowered, BODY).nonce == first["X-Platform-Nonce"]


@pytest.mark.parametrize(
    ("header", "tampered"),
    [("X-Bank-Timestamp", str(int(NOW) + 1)), ("X-Bank-Nonce", NONCE[:-1] + "0")],
)
def test_tampered_header_is_bad_signature(keys: dict[str, bytes], header: str, tampered: str) -> None:
    headers = _signed(keys) | {header: tampered}
    with pytest.raises(BadSignature) as caught:
        verify_request(BANK_PREFIX, keys["bank_public"], headers, BODY, now=NOW)
    assert caught.value.code == "BAD_SIGNATURE"
    assert caught.value.http_status == 401


def test_tampered_body_is_bad_signature(keys: dict[str, bytes]) -> None:
    with pytest.raises(BadSignature):
        verify_request(BANK_PREFIX, keys["bank_public"], _signed(keys), BODY.replace(b"n1", b"n2"), now=NOW)


def test_signature_from_another_key_is_bad_signature(keys: dict[str, bytes]) -> None:
    with pytest.raises(BadSignature):
        verify_request(BANK_PREFIX, keys["platform_public"], _signed(keys), BODY, now=NOW)


def test_prefix_of_the_other_direction_counts_as_unsigned(keys: dict[str, bytes]) -> None:
    with pytest.raises(MissingSignatureHeaders) as caught:
        verify_request(PLATFORM_PREFIX, keys["bank_public"], _signed(keys), BODY, now=NOW)
    assert caught.value.code == "BAD_SIGNATURE"
    assert caught.value.details == {"header": "X-Platform-Timestamp"}


@pytest.mark.parametrize("offset_s", [TIMESTAMP_TOLERANCE_S + 1, -(TIMESTAMP_TOLERANCE_S + 1)])
def test_stale_timestamp(keys: dict[str, bytes], offset_s: int) -> None:
    with pytest.raises(StaleTimestamp) as caught:
        verify_request(BANK_PREFIX, keys["bank_public"], _signed(keys), BODY, now=NOW + offset_s)
    assert caught.value.code == "STALE_TIMESTAMP"


@pytest.mark.parametrize("offset_s", [TIMESTAMP_TOLERANCE_S, -TIMESTAMP_TOLERANCE_S])
def test_timestamp_at_the_tolerance_edge_is_accepted(keys: dict[str, bytes], offset_s: int) -> None:
    assert verify_request(BANK_PREFIX, keys["bank_public"], _signed(keys), BODY, now=NOW + offset_s).nonce == NONCE


@pytest.mark.parametrize("nonce", ["short", "x" * 65, "has space in it 123", "中文中文中文中文中文中文中文中文"])
def test_ill_formed_nonce_is_refused_by_signer_and_verifier(keys: dict[str, bytes], nonce: str) -> None:
    with pytest.raises(ValueError):
        sign_headers(BANK_PREFIX, keys["bank_private"], BODY, nonce=nonce)
    with pytest.raises(MissingSignatureHeaders) as caught:
        verify_request(BANK_PREFIX, keys["bank_public"], _signed(keys) | {"X-Bank-Nonce": nonce}, BODY, now=NOW)
    assert caught.value.details == {"header": "X-Bank-Nonce"}


@pytest.mark.parametrize(
    ("header", "value"),
    [("X-Bank-Timestamp", "1735720200.5"), ("X-Bank-Timestamp", ""), ("X-Bank-Signature", "not base64!")],
)
def test_ill_formed_headers_are_rejected(keys: dict[str, bytes], header: str, value: str) -> None:
    with pytest.raises(MissingSignatureHeaders) as caught:
        verify_request(BANK_PREFIX, keys["bank_public"], _signed(keys) | {header: value}, BODY, now=NOW)
    assert caught.value.details == {"header": header}


def test_missing_header_is_rejected(keys: dict[str, bytes]) -> None:
    headers = _signed(keys)
    del headers["X-Bank-Signature"]
    with pytest.raises(MissingSignatureHeaders):
        verify_request(BANK_PREFIX, keys["bank_public"], headers, BODY, now=NOW)


def test_seen_nonce_is_replayed(keys: dict[str, bytes]) -> None:
    seen: set[str] = set()

    def remember(signed: SignedRequest) -> bool:
        is_new = signed.nonce not in seen
        seen.add(signed.nonce)
        return is_new

    verify_request(BANK_PREFIX, keys["bank_public"], _signed(keys), BODY, now=NOW, remember_nonce=remember)
    with pytest.raises(ReplayedNonce) as caught:
        verify_request(BANK_PREFIX, keys["bank_public"], _signed(keys), BODY, now=NOW, remember_nonce=remember)
    assert caught.value.code == "REPLAYED_NONCE"


def test_nonce_is_not_remembered_for_a_forged_request(keys: dict[str, bytes]) -> None:
    remembered: list[SignedRequest] = []
    with pytest.raises(BadSignature):
        verify_request(
            BANK_PREFIX, keys["bank_public"], _signed(keys), b"{}", now=NOW, remember_nonce=remembered.append
        )
    assert remembered == []


def test_body_over_limit_is_too_large(keys: dict[str, bytes]) -> None:
    body = b" " * (MAX_BODY_BYTES + 1)
    with pytest.raises(BodyTooLarge) as caught:
        verify_request(BANK_PREFIX, keys["bank_public"], _signed(keys, body), body, now=NOW)
    assert caught.value.http_status == 413


def _notification_validator() -> Draft202012Validator:
    schema = json.loads((SCHEMAS / "bank-notification.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"type": "account_opened", "request_id": "VA-1", "account_no": ACCOUNT_NO, "account_name": "李四"}, True),
        ({"type": "account_opened", "request_id": "VA-1", "account_no": "6226-0123", "account_name": "李四"}, False),
        ({"type": "account_opened", "request_id": "VA 1", "account_no": ACCOUNT_NO, "account_name": "李四"}, False),
        ({"type": "account_opened", "request_id": "VA-1", "account_no": ACCOUNT_NO, "account_name": ""}, False),
        (
            {
                "type": "payout_result",
                "payout_id": "P1",
                "bank_reference": "R1",
                "status": "succeeded",
                "failure_reason": None,
            },
            True,
        ),
        (
            {
                "type": "payout_result",
                "payout_id": "P1",
                "bank_reference": "R1",
                "status": "failed",
                "failure_reason": None,
            },
            False,
        ),
        (
            {
                "type": "payout_result",
                "payout_id": "P1",
                "bank_reference": "R1",
                "status": "succeeded",
                "failure_reason": "余额不足",
            },
            False,
        ),
        (
            {
                "type": "payout_result",
                "payout_id": "P1",
                "bank_reference": "R1",
                "status": "unknown",
                "failure_reason": None,
            },
            False,
        ),
        ({"type": "account_closed", "request_id": "VA-1"}, False),
    ],
)
def test_notification_schema_cases(body: dict[str, object], valid: bool) -> None:
    assert _notification_validator().is_valid({"notification_id": "n1", **body}) is valid


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        ({}, True),
        ({"amount_fen": MAX_AMOUNT_FEN - 1}, True),
        ({"amount_fen": MAX_AMOUNT_FEN}, False),
        ({"amount_fen": 0}, False),
        ({"amount_fen": "100"}, False),
        ({"arrived_at": "2025-01-01 08:30:00"}, False),
        ({"arrived_at": "2025-01-01T08:30:00+08:00"}, True),
        ({"extra": 1}, False),
    ],
)
def test_funds_arrived_schema_cases(change: dict[str, object], valid: bool) -> None:
    body = {
        "notification_id": "n1",
        "type": "funds_arrived",
        "bank_reference": "CEBI20250101083000A1B2C3D4",
        "account_no": ACCOUNT_NO,
        "amount_fen": 123456789,
        "payer_name": "张三",
        "payer_account": "6222020200112233445",
        "arrived_at": "2025-01-01T00:30:00Z",
    }
    assert _notification_validator().is_valid(body | change) is valid


def test_openapi_document_agrees_with_protocol_and_schema() -> None:
    document = json.loads((SCHEMAS / "bank-api.openapi.json").read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.1")
    operation = document["paths"]["/api/banks/{bank_code}/notifications"]["post"]
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert (SCHEMAS / reference).is_file()
    validator = _notification_validator()
    for example in operation["requestBody"]["content"]["application/json"]["examples"].values():
        assert validator.is_valid(example["value"]), example
    parameters = document["components"]["parameters"]
    assert parameters["Nonce"]["name"] == "X-Bank-Nonce"
    assert parameters["Nonce"]["schema"]["pattern"] == NONCE_PATTERN.pattern
    assert parameters["Timestamp"]["name"] == "X-Bank-Timestamp"
    assert parameters["Signature"]["name"] == "X-Bank-Signature"
    assert set(operation["responses"]) == {"200", "400", "401", "404", "409", "413"}
