"""The SMS gateway: `send_code(phone, text)`. The simulator appends each message to a JSON-lines file (the tests
and a developer read the codes there; the log shows the masked phone only); production sends to the HTTP gateway
at CUNGUAN_SMS_URL and refuses to start with the simulator (app/platform/config.py)."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from app.domain.pii_mask import mask_phone
from app.platform.errors import CunguanError

log = logging.getLogger(__name__)


class SmsError(CunguanError):
    http_status = 502
    code = "SMS_FAILED"


class SmsGateway(Protocol):
    def send_code(self, phone: str, text: str) -> None: ...


@dataclass
class SimulatedSms:
    """Writes every message to `outbox` (one JSON object a line: at, phone, text)."""

    outbox: Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def send_code(self, phone: str, text: str) -> None:
        line = json.dumps({"at": datetime.now(UTC).isoformat(), "phone": phone, "text": text}, ensure_ascii=False)
        self.outbox.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.outbox.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
        log.info("短信（模拟）已发送至 %s", mask_phone(phone))

    def messages(self, phone: str | None = None) -> list[dict[str, str]]:
        if not self.outbox.is_file():
            return []
        rows = [json.loads(line) for line in self.outbox.read_text(encoding="utf-8").splitlines() if line]
        return [row for row in rows if phone is None or row["phone"] == phone]


@dataclass(frozen=True)
class HttpSms:
    """POSTs {"phone", "text"} as JSON to the gateway; any answer but 2xx is a failure."""

    url: str
    timeout_s: float = 5.0

    def send_code(self, phone: str, text: str) -> None:
        body = json.dumps({"phone": phone, "text": text}, ensure_ascii=False).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                if not 200 <= answer.status < 300:
                    raise SmsError("短信发送失败，请稍后再试", details={"status": answer.status})
        except OSError as error:
            raise SmsError("短信发送失败，请稍后再试", details=str(error)) from error
        log.info("短信已发送至 %s", mask_phone(phone))


def sms_gateway(url: str | None, instance_path: Path) -> SmsGateway:
    """The HTTP gateway when `url` is set, else the simulator writing `<instance>/sms_outbox.jsonl`."""
    return HttpSms(url) if url else SimulatedSms(instance_path / "sms_outbox.jsonl")
