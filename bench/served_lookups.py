"""What a lookup of a served product or bank costs (`rt.products.get`, `rt.known_banks[...]`, `rt.banks[...]`):
each reads the published hashes (one query) and builds nothing new while they are unchanged. SQLite file,
nothing published (the repository files serve), and with one published variant and bank.

    .venv/bin/python bench/served_lookups.py [--lookups 2000]"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db.base import Base
from app.db.definition_models import DefinitionVersion
from app.db.session import Database
from app.definitions.banks import BankEndpoints, PublishedBanks
from app.definitions.kinds import build_kinds, content_sha256
from app.definitions.products import PublishedProducts
from app.definitions.store import DefinitionStore
from app.platform.config import ROOT


def per_lookup_us(lookup: Callable[[], object], count: int) -> float:
    lookup()  # built once per set of hashes
    started = time.perf_counter()
    for _ in range(count):
        lookup()
    return (time.perf_counter() - started) / count * 1e6


def publish(db: Database, kind: str, name: str, document: dict[str, object]) -> None:
    content = json.dumps(document, ensure_ascii=False)
    with db.uow() as uow:
        row = DefinitionVersion(kind=kind, name=name, version=1, status="published", content=content)
        row.content_sha256, row.author, row.reviewer = content_sha256(content), "ops", "reviewer"
        uow.session.add(row)
        uow.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookups", type=int, default=2000)
    count = parser.parse_args().lookups
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{folder}/bench.db")
        Base.metadata.create_all(db.engine)
        store = DefinitionStore(db, build_kinds())
        products, banks = PublishedProducts(store), PublishedBanks(store)
        endpoints = BankEndpoints({}, banks)
        variant = json.loads((ROOT / "products" / "new_home_supervision.json").read_text("utf-8"))
        bank = json.loads((ROOT / "bank_configs" / "cmbc.json").read_text("utf-8"))
        for label in ("files only", "one variant and one bank published"):
            if label != "files only":
                publish(db, "product", "new_home_plus", variant | {"code": "new_home_plus", "deal_prefix": "NP"})
                publish(db, "bank", "cmbx", bank | {"code": "cmbx"})
            print(f"{label}:")
            print(f"  rt.products.get      {per_lookup_us(lambda: products.get('resale_escrow'), count):8.0f} µs")
            print(f"  rt.known_banks[ceb]  {per_lookup_us(lambda: banks['ceb'], count):8.0f} µs")
            print(f"  rt.banks lookup      {per_lookup_us(lambda: endpoints.get('cmbx'), count):8.0f} µs")
        db.dispose()


if __name__ == "__main__":
    main()
