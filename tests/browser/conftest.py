"""What the browser tests share: the app served on a free port, Debian's chromium launched headless by
Playwright, the artifact folder and the no-horizontal-scroll check. Each test opens its own context
(viewport, device) on the `browser`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@contextmanager
def served(app: Flask, port: int = 0) -> Iterator[str]:
    """`app` served over HTTP on loopback (`port`, or a free one) while the block runs; yields its base URL."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium, headless, driven by Playwright, while the block runs."""
    assert CHROMIUM.is_file(), "chromium is missing: run `make system-deps`"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def base_url(app: Flask, users: dict[str, int]) -> Iterator[str]:
    with served(app) as url:
        yield url


@pytest.fixture
def browser(base_url: str) -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def artifact(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """The path in the artifact folder (kept for people to look at) for the file `name`, with the test's
    parameters in it (`shot.png` → `shot-sqlite.png`): a test's runs on each database may run at the same time
    (xdist workers) and must not write one file."""

    def path(name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        callspec = getattr(request.node, "callspec", None)
        file = Path(name)
        return ARTIFACTS / (f"{file.stem}-{callspec.id}{file.suffix}" if callspec else name)

    return path


def no_horizontal_scroll(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def squeezed_cells(page: Page) -> list[str]:
    """The cells of tables that scroll inside themselves (.table-wrap) squeezed to about a character a line
    (text under two characters wide): such a table must scroll, not wrap its columns to nothing."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll('.table-wrap table:not(.cards) :is(td, th)')]
              .filter(cell => cell.offsetParent !== null && cell.innerText.trim().length >= 4)
              .filter(cell => {
                const style = getComputedStyle(cell);
                const inner = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
                return inner < 2 * parseFloat(style.fontSize);
              })
              .map(cell => cell.innerText.trim().slice(0, 20))"""
        )
    )


def cut_off_details(page: Page) -> list[str]:
    """Detail tables (a header cell then a value in each row), and lists shown as cards at a phone's width
    (table.cards), wider than their box: their values must wrap, not hide beyond a sideways scroll. Returns
    the tables' ids."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll('.table-wrap')]
              .filter(wrap => wrap.offsetParent !== null)
              .filter(wrap => wrap.querySelector('tbody th + td')
                || (window.innerWidth <= 640 && wrap.querySelector('table.cards')))
              .filter(wrap => wrap.scrollWidth > wrap.clientWidth + 1)
              .map(wrap => (wrap.querySelector('table') || wrap).id || '(无 id)')"""
        )
    )
