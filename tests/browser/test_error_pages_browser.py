"""The 404 page as a French visitor's Chromium sees it (issue 16, defect 5): the panel's look
(its stylesheet applied, no CSP report), French words, and a way back that works."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import RECORD_VIOLATIONS, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_404_page_is_styled_and_french_with_a_way_back(live_server: Any, page: Any) -> None:
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(f"{live_server.url}/login/")
    with page.expect_response(lambda r: r.url.endswith("/nulle-part/")) as answer:  # a link followed from there
        page.evaluate("url => { window.location.href = url; }", f"{live_server.url}/nulle-part/")
    page.wait_for_load_state()
    assert answer.value.status == 404

    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("h1").inner_text() == "Page introuvable"
    assert "Cette page n'existe pas" in page.locator("main").inner_text()
    card = page.locator("section.error-page")
    style = card.evaluate("e => { const s = getComputedStyle(e); return [s.borderStyle, s.backgroundColor]; }")
    assert style[0] == "solid" and style[1] != "rgba(0, 0, 0, 0)"  # panel.css's card, not a bare page
    assert page.locator("header.topbar a.brand").inner_text() == "Panel de messagerie"
    assert page.evaluate("window.__cspViolations") == [] and not [t for t in console if "Content Security" in t]
    save_screenshot(page, "error-404-fr")

    page.get_by_role("link", name="Revenir à la page précédente").click()
    page.wait_for_url("**/login/")
    page.go_back()
    page.get_by_role("link", name="Revenir à l'accueil").click()
    page.wait_for_load_state()
    assert "/nulle-part/" not in page.url and page.locator("h1").count() == 1
