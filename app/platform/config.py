"""Settings from the environment, with embedded defaults that make `make run` work out of the box."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from app.banks.registry import configured_banks
from app.domain.banks import KnownBank
from app.domain.validation_budget import DEFAULT_BUDGET_S

ROOT = Path(__file__).resolve().parents[2]


def instance_path_from_env() -> Path:
    """The instance folder: CUNGUAN_INSTANCE_PATH, else `instance/` of the source tree."""
    return Path(os.environ.get("CUNGUAN_INSTANCE_PATH", ROOT / "instance")).resolve()


def _secret_key(instance: Path) -> str:
    """SECRET_KEY from the environment, else a random key kept in the instance folder."""
    if "CUNGUAN_SECRET_KEY" in os.environ:
        return os.environ["CUNGUAN_SECRET_KEY"]
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


@dataclass(frozen=True)
class BankEndpoint:
    code: str
    name: str
    base_url: str
    # The bank's account-opening limits: we pace to them, never faster. The configured banks take their
    # contract's limits from their config files (DEFAULT_BANKS); these defaults are only a cautious pace for an
    # endpoint built by hand (tests).
    open_per_second: int = 5
    open_per_day: int = 2000


# code -> name, opening limits per second and per day: every configured bank (bank_configs/, app.banks.registry),
# whose contracts set the limits we pace to by default (the simulator enforces the same ones).
DEFAULT_BANKS: dict[str, tuple[str, int, int]] = {
    code: (bank.name, bank.opening_limits.per_second, bank.opening_limits.per_day)
    for code, bank in configured_banks().items()
}


SIMULATOR_URL = "http://127.0.0.1:5001/{code}"  # the bank simulator's path for a bank (the shipped files' base_url)


class ConfigError(ValueError):
    """A setting the platform must not start with."""


def _production() -> bool:
    return os.environ.get("CUNGUAN_ENV", "").strip().lower() == "production"


def bank_endpoint(bank: KnownBank) -> BankEndpoint:
    """Base URL from CUNGUAN_BANK_<CODE>_URL (default: the bank file's `base_url`); limits from
    CUNGUAN_BANK_<CODE>_OPEN_PER_SECOND / _OPEN_PER_DAY (default: the file's opening limits)."""
    prefix = f"CUNGUAN_BANK_{bank.code.upper()}"
    return BankEndpoint(
        code=bank.code,
        name=bank.name,
        base_url=os.environ.get(f"{prefix}_URL", bank.base_url),
        open_per_second=int(os.environ.get(f"{prefix}_OPEN_PER_SECOND", bank.opening_limits.per_second)),
        open_per_day=int(os.environ.get(f"{prefix}_OPEN_PER_DAY", bank.opening_limits.per_day)),
    )


@dataclass
class Config:
    instance_path: Path = field(default_factory=instance_path_from_env)
    database_url: str = ""
    keys_dir: Path | None = None
    secret_key: str = ""
    public_base_url: str = field(default_factory=lambda: os.environ.get("CUNGUAN_PUBLIC_URL", "http://127.0.0.1:5000"))
    banks: dict[str, BankEndpoint] = field(default_factory=dict)
    testing: bool = False
    production: bool = field(default_factory=_production)  # CUNGUAN_ENV=production
    session_lifetime_s: int = 30 * 60  # idle timeout: each request renews the cookie
    session_max_age_s: int = field(default_factory=lambda: int(os.environ.get("CUNGUAN_SESSION_MAX_AGE_S", 12 * 3600)))
    secure_cookies: bool = field(default_factory=lambda: os.environ.get("CUNGUAN_SECURE_COOKIES", "") == "1")
    bank_timeout_s: float = 10.0
    calendar_warn_days: int = field(default_factory=lambda: int(os.environ.get("CUNGUAN_CALENDAR_WARN_DAYS", 60)))
    config_validation_budget_s: float = field(
        default_factory=lambda: float(os.environ.get("CUNGUAN_CONFIG_VALIDATION_BUDGET_S", DEFAULT_BUDGET_S))
    )
    # the RFC 3161 timestamp authority (`flask tsa serve`, or a real TSA): every signature is timestamped there
    tsa_url: str | None = field(default_factory=lambda: os.environ.get("CUNGUAN_TSA_URL") or None)
    # the TSA's certificate (PEM), or the CA's that issued it, the verifier requires of timestamps; unset (not in
    # production): the one inside each token
    tsa_certificate: Path | None = field(
        default_factory=lambda: Path(os.environ["CUNGUAN_TSA_CERT"]) if os.environ.get("CUNGUAN_TSA_CERT") else None
    )

    # the SMS gateway the parties' one-time codes go through; unset: the simulator (`<instance>/sms_outbox.jsonl`)
    sms_url: str | None = field(default_factory=lambda: os.environ.get("CUNGUAN_SMS_URL") or None)
    # parties sign their agreement on a phone (app/signing/) before the bank countersigns: the default;
    # CUNGUAN_PARTY_SIGNING=0 turns it off (the platform's signature and the bank's only)
    party_signing: bool = field(default_factory=lambda: os.environ.get("CUNGUAN_PARTY_SIGNING", "1") != "0")

    def __post_init__(self) -> None:
        if not self.database_url:
            default = f"sqlite:///{self.instance_path / 'cunguan.db'}"
            self.database_url = os.environ.get("DATABASE_URL", default)
        if self.keys_dir is None:
            self.keys_dir = Path(os.environ.get("CUNGUAN_KEYS_DIR", self.instance_path / "keys"))
        if not self.secret_key:
            self.secret_key = _secret_key(self.instance_path)
        if not self.banks:
            self.banks = {code: bank_endpoint(bank) for code, bank in configured_banks().items()}
        if self.production:
            _refuse_simulator_banks(self.banks)
            if not self.tsa_url or self.tsa_certificate is None:
                raise ConfigError(
                    "生产模式（CUNGUAN_ENV=production）下必须设置可信时间戳服务地址 CUNGUAN_TSA_URL"
                    "及其证书（或签发它的 CA 证书）CUNGUAN_TSA_CERT"
                )
            if not self.sms_url:
                raise ConfigError(
                    "生产模式（CUNGUAN_ENV=production）下不能使用短信模拟器，请设置短信网关地址 CUNGUAN_SMS_URL"
                )


def _refuse_simulator_banks(banks: dict[str, BankEndpoint]) -> None:
    """In production every bank must have its real URL: none may be left at the simulator's default."""
    left = sorted(code for code, bank in banks.items() if bank.base_url == SIMULATOR_URL.format(code=code))
    if left:
        names = "、".join(f"CUNGUAN_BANK_{code.upper()}_URL" for code in left)
        raise ConfigError(f"生产模式（CUNGUAN_ENV=production）下银行地址不能使用模拟器默认值，请设置：{names}")
