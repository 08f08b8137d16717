"""axe-core in the browser tests: the committed build (assets/, see its README) injected into a Playwright page,
and the rules it breaks there at impact serious or critical, described for an assertion message."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from playwright.sync_api import Page

AXE = Path(__file__).parent / "assets" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
BLOCKING = ("serious", "critical")


@cache
def _source() -> str:
    data = AXE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == AXE_SHA256, f"{AXE} is not axe-core 4.14.1 as committed"
    return data.decode("utf-8")


def serious_violations(page: Page) -> list[str]:
    """Every serious or critical axe violation on the page as it is now: rule, impact, help and the first few
    offending elements (their CSS selector and axe's summary)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # through the DevTools protocol: the pages' CSP allows no inline script
        page.evaluate(f"{_source()}\n;undefined")
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    found = []
    for violation in results["violations"]:
        if violation.get("impact") not in BLOCKING:
            continue
        nodes = "; ".join(
            f"{' '.join(map(str, node['target']))}: {node.get('failureSummary', '').strip()}"
            for node in violation["nodes"][:3]
        )
        found.append(f"{violation['id']} ({violation['impact']}, {violation['help']}) at {nodes}")
    return found
