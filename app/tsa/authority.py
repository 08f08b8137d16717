"""The timestamp authority: one TimeStampReq in, one TimeStampResp out (RFC 3161 §2.4). Only SM3 imprints are
stamped; anything else is refused with PKIStatus rejection and the matching PKIFailureInfo bit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import tsp

from app.crypto import asn1 as sm_oids
from app.tsa import protocol
from app.tsa.identity import TsaIdentity, ensure_tsa_identity
from app.tsa.serials import SerialCounter

DEFAULT_ACCURACY_MS = 1000


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Authority:
    identity: TsaIdentity
    serials: SerialCounter
    policy: str = protocol.DEFAULT_POLICY_OID
    accuracy_ms: int = DEFAULT_ACCURACY_MS
    clock: Callable[[], datetime] = field(default=_utcnow)

    def __post_init__(self) -> None:
        self.parts = protocol.SignerParts.of(self.identity.certificate, self.identity.chain)  # encoded once

    def respond(self, request_der: bytes) -> bytes:
        try:
            request = tsp.TimeStampReq.load(request_der, strict=True)
            _ = request.native  # parse everything now
        except (ValueError, TypeError, KeyError):
            return protocol.rejection("bad_data_format", "时间戳请求不是有效的 DER TimeStampReq")
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        imprint = request["message_imprint"]["hashed_message"].native
        nonce = request["nonce"].native
        moment = self.clock().astimezone(UTC)
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)  # milliseconds, as the accuracy
        serial = self.serials.issue(moment, imprint, nonce)
        stamp = protocol.Stamp(imprint, serial, moment, self.policy, nonce, self.accuracy_ms)
        info = protocol.tst_info(stamp, self.parts)
        with_certificates = bool(request["cert_req"].native)
        token = protocol.sign_token(info, self.identity.private_key_pem, self.parts, with_certificates)
        return protocol.granted(token)

    def _refusal(self, request: tsp.TimeStampReq) -> bytes | None:
        if request["version"].native != "v1":
            return protocol.rejection("bad_request", "仅支持第 1 版时间戳请求")
        imprint = request["message_imprint"]
        if imprint["hash_algorithm"]["algorithm"].dotted != sm_oids.SM3_OID:
            return protocol.rejection("bad_alg", "不支持该摘要算法：本时间戳服务只接受 SM3（1.2.156.10197.1.401）")
        if len(imprint["hashed_message"].native) != protocol.SM3_DIGEST_SIZE:
            return protocol.rejection("bad_data_format", "SM3 摘要长度必须为 32 字节")
        asked = request["req_policy"].native
        if asked is not None and request["req_policy"].dotted != self.policy:
            return protocol.rejection("unaccepted_policy", f"不支持所请求的时间戳策略 {asked}")
        if request["extensions"].native:
            return protocol.rejection("unaccepted_extensions", "不支持时间戳请求扩展")
        return None


def open_authority(folder: Path, policy: str | None = None, accuracy_ms: int = DEFAULT_ACCURACY_MS) -> Authority:
    """The authority whose key, certificate and serial numbers live in `folder` (created where missing)."""
    return Authority(
        ensure_tsa_identity(folder), SerialCounter(folder), policy or protocol.DEFAULT_POLICY_OID, accuracy_ms
    )
