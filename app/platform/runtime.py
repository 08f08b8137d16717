"""What every use case needs, built once per process by the app factory (web, worker and CLI alike)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.banks.gateway import BankGateway, HttpBankGateway
from app.banks.registry import configured_banks
from app.calendars.loader import repository_calendars
from app.crypto.keys import certificate_public_key_pem
from app.db.session import Database
from app.definitions.store import DefinitionStore
from app.domain.banks import KnownBank
from app.domain.business_calendar import BusinessCalendar
from app.domain.cities import CityCatalog
from app.domain.products import ProductRegistry
from app.domain.validation_budget import DEFAULT_BUDGET_S
from app.platform.config import BankEndpoint
from app.platform.errors import ConfigError, NotFound
from app.products.loader import repository_products
from app.signing.sms import SmsGateway
from app.state_machine.definition import WorkflowDefinition
from app.state_machine.registry import Registry
from app.tsa.client import Timestamper, timestamp


def _no_certificate(_bank_code: str) -> str:
    return ""


@dataclass(frozen=True)
class KeyStore:
    """Key material read from the instance key folder (created by `flask keys init`); a bank without a key file
    there is verified with the certificate its reviewed config carries (`bank_certificate`, by bank code)."""

    folder: Path
    bank_certificate: Callable[[str], str] = _no_certificate

    def _read(self, relative: str) -> bytes:
        path = self.folder / relative
        if not path.is_file():
            raise ConfigError(
                f"密钥文件缺失：{path}（请运行 flask keys init）", code="KEY_MISSING", details={"path": str(path)}
            )
        return path.read_bytes()

    @property
    def platform_private_key_pem(self) -> bytes:
        return self._read("platform.key.pem")

    @property
    def platform_public_key_pem(self) -> bytes:
        return self._read("platform.pub.pem")

    @property
    def platform_certificate_pem(self) -> bytes:
        return self._read("platform.cert.pem")

    @property
    def platform_seal(self) -> bytes:
        """The platform's GB/T 38540 seal (DER, app.seals.issue), carried in its certification signatures."""
        return self._read("platform.seal.der")

    def bank_public_key_pem(self, bank_code: str) -> bytes:
        certificate = self.bank_certificate(bank_code)
        if certificate and not (self.folder / "banks" / f"{bank_code}.pub.pem").is_file():
            return certificate_public_key_pem(certificate.encode())
        return self._read(f"banks/{bank_code}.pub.pem")

    def pii_key(self) -> bytes:
        return bytes.fromhex(self._read("pii.key").decode().strip())


def _utcnow() -> datetime:
    return datetime.now(UTC)


JobHandler = Callable[["Runtime", dict[str, Any]], None]


@dataclass
class Runtime:
    db: Database
    cities: CityCatalog
    # (id, version) -> definition: the published versions, served as they are published (WorkflowLibrary)
    workflows: MutableMapping[tuple[str, int], WorkflowDefinition]
    registry: Registry  # the guards and actions the workflows name (app.platform.bootstrap.build_registry)
    keys: KeyStore
    banks: MutableMapping[str, BankEndpoint]  # the endpoints, live (app.definitions.banks.BankEndpoints)
    public_base_url: str
    definitions: DefinitionStore  # published workflows, templates, clauses, calendars (app.definitions)
    bank_timeout_s: float = 10.0
    config_validation_budget_s: float = DEFAULT_BUDGET_S  # one city config draft's checks (wall clock)
    clock: Callable[[], datetime] = field(default=_utcnow)
    jobs: dict[str, JobHandler] = field(default_factory=dict)  # job kind -> handler: app.platform.bootstrap
    audit_checkpoints: Path | None = None  # signed audit chain heads, outside the database (app.audit.checkpoints)
    # holidays and 调休: the published calendars at each use (app.definitions.calendars), the files by default
    calendar_source: Callable[[], BusinessCalendar] = repository_calendars
    # the declarations published now (app.definitions.products), the files by default
    products: ProductRegistry = field(default_factory=repository_products)
    # the banks' facts published now (app.definitions.banks), the files by default
    known_banks: Mapping[str, KnownBank] = field(default_factory=configured_banks)
    calendar_warn_days: int = 60  # alert this many days before a year without a complete calendar starts
    tsa_url: str | None = None  # the RFC 3161 TSA (CUNGUAN_TSA_URL); None: signatures carry no trusted time
    tsa_certificate: Path | None = None  # the TSA certificate timestamps must carry (CUNGUAN_TSA_CERT)
    tsa_timeout_s: float = 5.0
    sms: SmsGateway | None = None  # the parties' signing links and one-time codes (app.signing.sms)
    party_signing: bool = False  # parties sign on a phone before the bank countersigns (CUNGUAN_PARTY_SIGNING)

    def timestamper(self) -> Timestamper | None:
        """SM3 digest -> RFC 3161 token from the configured TSA; None when there is none."""
        url = self.tsa_url
        if not url:
            return None
        return lambda digest: timestamp(url, digest, timeout_s=self.tsa_timeout_s)

    def trusted_tsa_certificates(self) -> list[bytes] | None:
        """The TSA certificate (PEM) timestamps must carry, when one is configured; None accepts the token's own."""
        if self.tsa_certificate is None:
            return None
        if not self.tsa_certificate.is_file():
            raise ConfigError(
                f"时间戳服务证书文件缺失：{self.tsa_certificate}（CUNGUAN_TSA_CERT）", code="TSA_CERT_MISSING"
            )
        return [self.tsa_certificate.read_bytes()]

    @property
    def calendars(self) -> BusinessCalendar:
        return self.calendar_source()

    def workflow(self, workflow_id: str, version: int) -> WorkflowDefinition:
        try:
            return self.workflows[(workflow_id, version)]
        except KeyError:
            raise ConfigError(
                "工作流未定义", code="UNKNOWN_WORKFLOW", details={"workflow": workflow_id, "version": version}
            ) from None

    def bank(self, bank_code: str) -> BankEndpoint:
        if bank_code not in self.banks:
            raise NotFound("未知银行", code="UNKNOWN_BANK", details={"bank": bank_code})
        return self.banks[bank_code]

    def gateway(self, bank_code: str) -> BankGateway:
        endpoint = self.bank(bank_code)
        return HttpBankGateway(
            bank_code, endpoint.base_url, self.keys.platform_private_key_pem, timeout_s=self.bank_timeout_s
        )

    def notify_url(self, bank_code: str) -> str:
        return f"{self.public_base_url.rstrip('/')}/api/banks/{bank_code}/notifications"
