"""The banks the runtime serves: every bank published now (else its repository file), each document parsed once
per content hash - a bank published while the app runs can be chosen by the next deal, no restart. A published
document that does not parse (only a hand-edited row could) is logged and left out alone.

`BankEndpoints` is `rt.banks`: the endpoints the settings built at start-up (`app.platform.config`: the
repository's files and the environment), plus every bank published since whose document differs from its file,
built from that document and the same environment variables; an endpoint set by hand wins.

A deal pins its bank's document (`bank:<code>`, `app.definitions.pins`): what the deal's agreement states and its
deadlines count with - the bank's name, account-number format, daily cut-off - stay those it started with
(`pinned_bank`). What is operational follows the bank as published now: its base URL, keys and certificate,
opening limits, and the daily statement's layout (one file for every account of the bank: it can be parsed only
one way)."""

from __future__ import annotations

import json
import logging
from collections.abc import ItemsView, Iterator, Mapping, MutableMapping
from functools import cache
from threading import Lock

from app.db.models import Deal
from app.definitions.declarations import bank_seed
from app.definitions.kinds import content_sha256
from app.definitions.pins import pin_key
from app.definitions.store import DefinitionStore
from app.domain.banks import BankConfigInvalid, KnownBank, bank_from_document
from app.platform.config import BankEndpoint, bank_endpoint

log = logging.getLogger("cunguan.definitions")
KIND = "bank"


@cache
def _seed_hashes() -> dict[str, str]:
    return {code: content_sha256(content) for code, content in bank_seed().items()}


class PublishedBanks(Mapping[str, KnownBank]):
    """code -> the bank's facts, as published now."""

    def __init__(self, store: DefinitionStore) -> None:
        self.store = store
        self._parsed: dict[str, KnownBank | None] = {}  # content hash -> bank (None: does not parse)

    def _bank(self, code: str, sha256: str) -> KnownBank | None:
        if sha256 not in self._parsed:
            try:
                bank = bank_from_document(json.loads(self.store.content(KIND, code, sha256) or ""), f"{code}.json")
                self._parsed[sha256] = bank if bank.code == code else None
            except (ValueError, BankConfigInvalid) as error:
                log.error("bank %s (%s) cannot be loaded: %s", code, sha256[:12], error)
                self._parsed[sha256] = None
        return self._parsed[sha256]

    def current(self, *, since_seed: bool = False) -> dict[str, KnownBank]:
        """Every bank served now (one query); `since_seed`: only those whose document is not their file's."""
        seed = _seed_hashes() if since_seed else {}
        found = {}
        for code, sha256 in sorted(self.store.published_hashes(KIND).items()):
            bank = self._bank(code, sha256) if seed.get(code) != sha256 else None
            if bank is not None:
                found[code] = bank
        return found

    def __getitem__(self, code: str) -> KnownBank:
        return self.current()[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self.current())

    def __len__(self) -> int:
        return len(self.current())

    def items(self) -> ItemsView[str, KnownBank]:  # one query, not one per bank
        return self.current().items()

    def certificate(self, code: str) -> str:
        """The certificate the bank's config carries ("" when none)."""
        bank = self.current().get(code)
        return bank.certificate if bank is not None else ""


_PINNED: dict[tuple[str, str], KnownBank | None] = {}  # (code, content hash) -> bank: a hash names one content
_PINNED_LOCK = Lock()


def pinned_bank(store: DefinitionStore, known_banks: Mapping[str, KnownBank], deal: Deal) -> KnownBank | None:
    """The bank facts `deal` started with (its pin), parsed once per process; a deal made before banks were pinned
    reads the bank served now (None when no bank of that code is served)."""
    sha256 = (deal.definitions or {}).get(pin_key(KIND, deal.bank_code))
    if sha256 is None:
        return known_banks.get(deal.bank_code)
    key = (deal.bank_code, sha256)
    if key not in _PINNED:
        content = store.content(KIND, deal.bank_code, sha256)
        try:
            bank: KnownBank | None = bank_from_document(json.loads(content or ""), f"{deal.bank_code}.json")
        except (ValueError, BankConfigInvalid) as error:
            log.error("pinned bank %s (%s) cannot be loaded: %s", deal.bank_code, sha256[:12], error)
            bank = None
        with _PINNED_LOCK:
            _PINNED[key] = bank
    return _PINNED[key] if _PINNED[key] is not None else known_banks.get(deal.bank_code)


class BankEndpoints(MutableMapping[str, BankEndpoint]):
    def __init__(self, configured: Mapping[str, BankEndpoint], banks: PublishedBanks) -> None:
        self.configured, self.banks = dict(configured), banks
        self._hand: dict[str, BankEndpoint] = {}  # set by hand (a test, a tool): wins

    def _current(self) -> dict[str, BankEndpoint]:
        published = {code: bank_endpoint(bank) for code, bank in self.banks.current(since_seed=True).items()}
        return {**self.configured, **published, **self._hand}

    def __getitem__(self, code: str) -> BankEndpoint:
        return self._current()[code]

    def __setitem__(self, code: str, endpoint: BankEndpoint) -> None:
        self._hand[code] = endpoint

    def __delitem__(self, code: str) -> None:
        self._hand.pop(code, None)
        self.configured.pop(code, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def items(self) -> ItemsView[str, BankEndpoint]:  # one query, not one per bank
        return self._current().items()
