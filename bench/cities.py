"""Generate 338 city configs (one per prefecture-level city) extending _virtual and validate them all.

Target: < 2 s for the whole set (resolve extends, JSON Schema, semantic checks)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.banks.registry import configured_banks
from app.domain.city_checks import validate_file
from app.platform.bootstrap import CITY_CONFIGS_DIR, TEMPLATES_DIR, load_workflows
from app.products.loader import repository_products

CITIES = 338
BANKS = ["ceb", "icbc", "abc", "ccb", "pab", "boc"]

PRODUCTS = repository_products()


def generate(folder: Path) -> list[Path]:
    shutil.copy(CITY_CONFIGS_DIR / "_virtual.json", folder / "_virtual.json")
    paths = []
    for index in range(CITIES):
        code = f"{100000 + index * 100:06d}"
        config = {
            "extends": "_virtual",
            "admin_code": code,
            "name": f"地级市{index + 1:03d}",
            "status": "draft",
            "products": {
                "resale_escrow": {"banks": [BANKS[index % len(BANKS)]]},
                "rent_custody": {"parameters": {"rent_months_exempt": index % 4}},
                "guarantee_release": None,
            },
        }
        path = folder / f"{code}.json"
        path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    workflows = load_workflows()
    with tempfile.TemporaryDirectory() as temp:
        paths = generate(Path(temp))
        started = time.perf_counter()
        for path in paths:
            validate_file(path, workflows, TEMPLATES_DIR, configured_banks(), PRODUCTS)
        elapsed = time.perf_counter() - started
    verdict = "OK" if elapsed < 2 else "SLOW"
    print(f"validated {len(paths)} city configs extending _virtual in {elapsed:.3f} s (target < 2 s: {verdict})")


if __name__ == "__main__":
    main()
