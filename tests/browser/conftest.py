"""Playwright fixtures for the browser tests: Debian's Chromium, never a downloaded browser.

Every browser test is marked `pytest.mark.browser`; without /usr/bin/chromium they are skipped
with a reason, never passed silently. Only 127.0.0.1 is ever contacted: the live server listens
there and Chromium's background networking is turned off.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API drives an event loop in the test thread; Django's ORM would otherwise
# refuse to run there ("You cannot call this from an async context").
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
# pytest-django's live server listens on "localhost" unless told otherwise: pin it to 127.0.0.1.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
DEFAULT_VIEWPORT = {"width": 1280, "height": 800}

# CSP reports as DOM events, for the tests that count them. Runs before the page's own scripts
# (Playwright injects it outside the page's CSP).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def browser_locale() -> str:
    """The context's locale (and so its Accept-Language); override with parametrize(indirect)."""
    return "fr-FR"


@pytest.fixture
def browser_viewport() -> dict[str, int]:
    return dict(DEFAULT_VIEWPORT)


@pytest.fixture
def new_context(browser: Any) -> Iterator[Callable[..., Any]]:
    """Open a fresh context (own cookies) for a locale and viewport; all are closed at teardown."""
    contexts: list[Any] = []

    def make(locale: str = "fr-FR", viewport: dict[str, int] | None = None) -> Any:
        context = browser.new_context(locale=locale, viewport=viewport or dict(DEFAULT_VIEWPORT))
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., Any], browser_locale: str, browser_viewport: dict[str, int]) -> Any:
    """A page in a new context of `browser_locale` (fr-FR by default), 1280x800 by default."""
    return new_context(locale=browser_locale, viewport=browser_viewport).new_page()


def save_screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save `test-artifacts/screenshots/<name>.png` at the project root (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    return save_screenshot


class Watched:
    """A page whose CSP reports are collected, on the console and as DOM events: every page
    opened is checked (the CSP browser test, the seed's)."""

    def __init__(self, page: Any, base_url: str) -> None:
        assert base_url.startswith("http://127.0.0.1:"), "the browser may only talk to 127.0.0.1"
        self.page, self.base_url = page, base_url
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(message.text))
        page.add_init_script(RECORD_VIOLATIONS)
        self.visited: list[str] = []

    def open(self, path: str) -> Any:
        response = self.page.goto(f"{self.base_url}{path}")
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        assert "script-src 'self';" in response.headers.get("content-security-policy", "") + ";"
        self.visited.append(path)
        self.check(path)
        return response

    def check(self, where: str) -> None:
        events = self.page.evaluate("window.__cspViolations || []")
        reports = [text for text in self.console if "Content Security Policy" in text]
        assert events == [] and reports == [], f"{where}: {events} {reports}"
