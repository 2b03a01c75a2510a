"""The QmailAdmin-style mailbox login, driven in Debian's Chromium against the live server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mail.models import LoginThrottle
from tests.browser.conftest import save_screenshot
from tests.factories import MAILBOX_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def login_url(live_server: Any) -> str:
    assert live_server.url.startswith("http://127.0.0.1:"), "the browser may only talk to 127.0.0.1"
    return f"{live_server.url}/login/"


@pytest.fixture
def forget_failures(cast: Any) -> Iterator[None]:
    """Check that the failed login was counted; its LoginThrottle rows go with the flush after the
    test, so that later tests of the run (all from 127.0.0.1) are never throttled."""
    yield
    keys = ["ip:127.0.0.1", f"addr:{cast.a.postmaster.address}"]
    assert LoginThrottle.objects.filter(key__in=keys, count__gt=0).count() == 2, "the failed login was not counted"


def html_lang(page: Any) -> str:
    return page.locator("html").get_attribute("lang")


def label_text(page: Any, field: str) -> str:
    return page.locator(f"label[for='id_{field}']").inner_text().strip()


def fill_login(page: Any, account: str, domain: str, password: str) -> None:
    page.locator("input[name='account']").fill(account)
    page.locator("input[name='domain']").fill(domain)
    page.locator("input[name='password']").fill(password)


def test_login_in_french_reaches_the_domain_menu(
    transactional_db: Any, cast: Any, live_server: Any, page: Any
):
    page.goto(login_url(live_server))
    assert html_lang(page) == "fr"
    # French labels once the catalogue lands; the English msgids until then.
    assert label_text(page, "account") in {"Compte", "Account"}
    assert label_text(page, "domain") in {"Nom de domaine", "Domain name"}
    assert label_text(page, "password") in {"Mot de passe", "Password"}
    assert page.locator("input[name='account']").input_value() == "postmaster"
    save_screenshot(page, "login-fr")

    fill_login(page, "postmaster", cast.a.domain.name, MAILBOX_PASSWORD)
    page.locator("input[name='password']").press("Enter")
    page.wait_for_url(f"{live_server.url}/domains/{cast.a.domain.pk}/")

    assert html_lang(page) == "fr"
    assert "alpha-domain.test" in page.locator("main").inner_text()
    assert "bravo-domain.test" not in page.content()
    save_screenshot(page, "domain-menu-fr")


@pytest.mark.parametrize("browser_locale", ["fr-FR", "en-US"])
def test_wrong_password_shows_the_error_and_empties_the_password(
    transactional_db: Any, cast: Any, forget_failures: None, live_server: Any, page: Any, browser_locale: str
):
    page.goto(login_url(live_server))
    fill_login(page, "postmaster", cast.a.domain.name, "not-the-password")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url == login_url(live_server)
    ) as info:
        page.locator("input[name='password']").press("Enter")
    assert info.value.status == 400
    page.wait_for_load_state()

    assert page.url == login_url(live_server)
    alert = page.get_by_role("alert")
    assert alert.is_visible()
    assert alert.inner_text().strip()
    if browser_locale == "en-US":
        assert alert.inner_text().strip() == "Invalid login."
    assert page.locator("input[name='password']").input_value() == ""
    # What was typed in the other fields stays, so only the password has to be typed again.
    assert page.locator("input[name='account']").input_value() == "postmaster"
    assert page.locator("input[name='domain']").input_value() == cast.a.domain.name
    save_screenshot(page, f"login-error-{browser_locale[:2]}")


def test_login_page_fits_a_phone(transactional_db: Any, live_server: Any, new_context: Any):
    page = new_context(locale="fr-FR", viewport=PHONE).new_page()
    page.goto(login_url(live_server))
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width
    save_screenshot(page, "login-phone")


def test_domain_menu_fits_a_phone(transactional_db: Any, cast: Any, live_server: Any, new_context: Any):
    page = new_context(locale="fr-FR", viewport=PHONE).new_page()
    page.goto(login_url(live_server))
    fill_login(page, "postmaster", cast.a.domain.name, MAILBOX_PASSWORD)
    page.locator("input[name='password']").press("Enter")
    page.wait_for_url(f"{live_server.url}/domains/{cast.a.domain.pk}/")
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width
    save_screenshot(page, "domain-menu-phone")


FOCUS_JS = """() => {
  const e = document.activeElement;
  return e.id || e.name || (e.className ? e.tagName.toLowerCase() + '.' + e.className.split(' ')[0]
    : e.tagName.toLowerCase());
}"""


def test_tab_order_from_the_top(transactional_db: Any, live_server: Any, page: Any):
    page.goto(login_url(live_server))
    order = []
    for _ in range(10):
        page.keyboard.press("Tab")
        order.append(page.evaluate(FOCUS_JS))
        if order[-1] == "id_account":
            break
    # Skip link, brand link, language selector and its button, then the form's first field.
    assert order == ["a.skip", "a.brand", "lang-select", "button.button", "id_account"]

    # The skip link shows itself when focused, and leads into <main>.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUS_JS) == "a.skip"
    box = page.locator("a.skip").bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0
    save_screenshot(page, "login-skip-focused", full_page=False)
    page.keyboard.press("Enter")
    assert page.evaluate(FOCUS_JS) == "main"


@pytest.mark.parametrize("browser_locale", ["en-US"])
def test_login_page_in_english(transactional_db: Any, live_server: Any, page: Any):
    page.goto(login_url(live_server))
    assert html_lang(page) == "en"
    assert label_text(page, "account") == "Account"
    assert page.locator("#lang-select").input_value() == "en"
    save_screenshot(page, "login-en")


def test_language_switch_from_french_to_english(transactional_db: Any, live_server: Any, page: Any):
    page.goto(login_url(live_server))
    assert html_lang(page) == "fr"
    assert page.locator("#lang-select").input_value() == "fr"

    page.locator("#lang-select").select_option(label="English")
    with page.expect_navigation():
        page.locator("form.lang button[type='submit']").click()

    assert page.url == login_url(live_server)
    assert html_lang(page) == "en"
    assert label_text(page, "account") == "Account"
    assert page.locator("#lang-select").input_value() == "en"
    # The choice sticks (a cookie) although the browser still asks for French.
    page.goto(login_url(live_server))
    assert html_lang(page) == "en"
