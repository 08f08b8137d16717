"""The timestamp authority in-process: what it grants and refuses (RFC 3161 with SM3 / SM2-with-SM3), its serial
numbers, and the offline token check that catches forged or misplaced tokens."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import algos, cms, tsp

from app.crypto import sm3
from app.crypto.keys import generate_sm2_private_key_pem, make_self_signed_certificate
from app.platform.errors import ValidationError
from app.tsa import protocol
from app.tsa.authority import Authority, open_authority
from app.tsa.identity import TsaIdentity, ensure_tsa_identity, install_certificate, make_tsa_certificate
from app.tsa.serials import ISSUED_FILE, SerialCounter
from app.tsa.tokens import check_token

STAMPED = b"the signature value"
# the TSA's clock, fixed, a minute into its certificate's validity (not the time the module was collected: a worker
# may reach these tests minutes later, when a certificate made "now" would start after it)
NOW = datetime(2030, 6, 1, 4, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tsa")


@pytest.fixture(scope="module")
def authority(folder: Path) -> Authority:
    key = ensure_tsa_identity(folder).private_key_pem
    install_certificate(folder, make_tsa_certificate(key, NOW - timedelta(minutes=1)))
    authority = open_authority(folder)
    authority.clock = lambda: NOW
    return authority


def _reply(authority: Authority, request: bytes) -> protocol.TimeStampResp:
    return protocol.TimeStampResp.load(authority.respond(request))


def _token(authority: Authority, stamped: bytes = STAMPED, nonce: int | None = 77) -> cms.ContentInfo:
    reply = _reply(authority, protocol.build_request(sm3(stamped), nonce=nonce))
    assert reply["status"]["status"].native == "granted"
    return reply["time_stamp_token"]


def test_a_granted_token_states_the_imprint_nonce_policy_and_time(authority: Authority) -> None:
    token = _token(authority, nonce=4242)
    info = protocol.token_info(token)
    assert info["message_imprint"]["hash_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"
    assert info["message_imprint"]["hashed_message"].native == sm3(STAMPED)
    assert info["nonce"].native == 4242
    assert info["policy"].dotted == protocol.DEFAULT_POLICY_OID
    assert info["gen_time"].native == NOW.replace(microsecond=123000), "milliseconds, as the accuracy says"
    assert info["accuracy"].native == {"seconds": 1, "millis": None, "micros": None}
    signer = token["content"]["signer_infos"][0]
    assert signer["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert token["content"]["version"].native == "v3"
    check = check_token(token, STAMPED)
    assert check.valid, check.errors
    assert check.authority == "存管平台时间戳服务" and check.gen_time == info["gen_time"].native


def test_serial_numbers_are_unique_and_survive_a_restart(authority: Authority, folder: Path) -> None:
    first = protocol.token_info(_token(authority))["serial_number"].native
    second = protocol.token_info(_token(authority))["serial_number"].native
    restarted = open_authority(folder)  # a new process on the same folder: same key, next number
    third = protocol.token_info(_token(restarted))["serial_number"].native
    assert first < second < third
    assert restarted.identity == authority.identity
    assert SerialCounter(folder).last() == third
    issued = (folder / ISSUED_FILE).read_text().splitlines()
    assert len(issued) == third and f'"serial": {third},' in issued[-1]


def test_serial_numbers_stay_unique_under_concurrent_issuers(tmp_path: Path) -> None:
    counters = [SerialCounter(tmp_path), SerialCounter(tmp_path)]  # two processes' worth: each opens the file itself

    def issue(counter: SerialCounter) -> list[int]:
        return [counter.issue(NOW, b"\0" * 32, None) for _ in range(40)]

    with ThreadPoolExecutor(4) as pool:
        issued = [serial for serials in pool.map(issue, counters * 2) for serial in serials]
    assert sorted(issued) == list(range(1, 161))


def test_no_certificate_unless_asked(authority: Authority) -> None:
    request = protocol.build_request(sm3(STAMPED), nonce=1, cert_req=False)
    token = _reply(authority, request)["time_stamp_token"]
    assert token["content"]["certificates"].native is None
    assert "缺少时间戳服务证书" in "".join(check_token(token, STAMPED).errors)


def _failure(authority: Authority, request: bytes) -> tuple[str, set[str], str]:
    status = _reply(authority, request)["status"]
    return status["status"].native, set(status["fail_info"].native), "".join(status["status_string"].native)


def test_unknown_hash_algorithms_are_refused_with_bad_alg(authority: Authority) -> None:
    sha256 = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "hashed_message": b"\1" * 32,
            },
            "cert_req": True,
        }
    ).dump()
    status, failures, text = _failure(authority, sha256)
    assert status == "rejection" and failures == {"bad_alg"} and "SM3" in text
    assert _reply(authority, sha256)["time_stamp_token"].native is None, "no token with a refusal"


@pytest.mark.parametrize(
    ("request_der", "failure"),
    [
        (b"\x30\x03garbage", "bad_data_format"),
        (protocol.build_request(b"\0" * 32, policy="1.2.3.4"), "unaccepted_policy"),
    ],
)
def test_malformed_requests_and_foreign_policies_are_refused(
    authority: Authority, request_der: bytes, failure: str
) -> None:
    status, failures, _ = _failure(authority, request_der)
    assert (status, failures) == ("rejection", {failure})


def test_a_token_for_other_bytes_is_reported_as_mismatched(authority: Authority) -> None:
    check = check_token(_token(authority), b"another signature")
    assert not check.valid and any("消息摘要与所盖时间的内容不一致" in error for error in check.errors)


def test_a_token_signed_with_another_key_is_reported_as_forged(authority: Authority) -> None:
    """A forger keeps the genuine TSA certificate in the token but signs with a key of its own."""
    genuine = authority.identity
    forger = Authority(TsaIdentity(generate_sm2_private_key_pem(), genuine.certificate_pem), authority.serials)
    check = check_token(_token(forger), STAMPED)
    assert not check.valid and any("时间戳被伪造" in error for error in check.errors)


def test_a_changed_tstinfo_is_reported(authority: Authority) -> None:
    token = _token(authority)
    stated = protocol.token_info(token)["gen_time"].contents  # b"YYYYMMDDhhmmss.fffZ"
    later = str(int(stated[:4]) + 1).encode() + stated[4:]
    forged = token.dump().replace(stated, later)
    assert protocol.token_info(cms.ContentInfo.load(forged))["gen_time"].contents == later
    check = check_token(forged, STAMPED)
    assert not check.valid and any("时间戳被篡改" in error for error in check.errors)


def test_a_certificate_without_the_timestamping_purpose_is_refused(authority: Authority, folder: Path) -> None:
    key = generate_sm2_private_key_pem()
    seal_only = Authority(
        TsaIdentity(key, make_self_signed_certificate(key, "某签章", "Cunguan")), SerialCounter(folder)
    )
    check = check_token(_token(seal_only), STAMPED)
    assert any("timeStamping" in error for error in check.errors)
    assert not any("伪造" in error for error in check.errors), "the signature itself is genuine"


def test_only_trusted_tsa_certificates_pass_when_the_verifier_names_them(authority: Authority) -> None:
    token = _token(authority)
    assert check_token(token, STAMPED, [authority.identity.certificate.dump()]).valid
    other = make_self_signed_certificate(generate_sm2_private_key_pem(), "别的", "X")
    from asn1crypto import pem

    assert "时间戳服务证书不受信任" in "".join(check_token(token, STAMPED, [pem.unarmor(other)[2]]).errors)


def test_garbage_is_a_finding_not_a_crash() -> None:
    check = check_token(b"\x30\x00", STAMPED)
    assert not check.valid and "无法解析" in check.errors[0]


def test_a_certificate_is_installed_only_for_the_tsas_key_and_purpose(tmp_path: Path) -> None:
    identity = ensure_tsa_identity(tmp_path)
    other_key = generate_sm2_private_key_pem()
    with pytest.raises(ValidationError) as wrong_key:
        install_certificate(tmp_path, make_tsa_certificate(other_key))
    assert wrong_key.value.code == "CERT_KEY_MISMATCH"
    seal = make_self_signed_certificate(identity.private_key_pem, "某签章", "Cunguan")
    with pytest.raises(ValidationError, match="timeStamping"):
        install_certificate(tmp_path, seal)
    renewed = make_tsa_certificate(identity.private_key_pem)
    install_certificate(tmp_path, renewed, identity.certificate_pem)
    again = ensure_tsa_identity(tmp_path)
    assert again.certificate_pem == renewed and [c.dump() for c in again.chain] == [identity.certificate.dump()]
    token = _token(Authority(again, SerialCounter(tmp_path)))
    assert len(token["content"]["certificates"]) == 2, "the chain goes with the token"
