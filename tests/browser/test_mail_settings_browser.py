"""The page "Paramètres de votre logiciel de messagerie" / "Mail client settings" in Debian's
Chromium: a mailbox user reaches it from its own page in French, a domain admin from the domain's
menu in English; what is read there, and each value selected whole with one click (to copy it).
Every page visited is watched for Content-Security-Policy reports."""

from __future__ import annotations

from typing import Any

import pytest

from hosting.models import MailHost
from tests.browser.conftest import save_screenshot
from tests.browser.test_seed_browser import Person, squash
from tests.factories import MAILBOX_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WEBMAIL = "https://webmail.hosting.test/"
PHONE = {"width": 390, "height": 844}


def log_in(person: Person, account: str, domain: str) -> None:
    person.open("/login/")
    page = person.page
    page.locator("input[name='account']").fill(account)
    page.locator("input[name='domain']").fill(domain)
    page.locator("input[name='password']").fill(MAILBOX_PASSWORD)
    person.click(page.locator("main button[type='submit']"))


def servers(person: Person) -> list[list[str]]:
    """The servers' table, row by row: service, server, port, security."""
    rows = person.page.locator("#servers tbody tr")
    return [[squash(cell) for cell in rows.nth(index).locator("th, td").all_inner_texts()]
            for index in range(rows.count())]


def selected_by_a_click(person: Person, locator: Any) -> str:
    """What one click on a value selects (the text a person then copies)."""
    person.page.evaluate("window.getSelection().removeAllRanges()")
    locator.click()
    return person.page.evaluate("window.getSelection().toString()").strip()


@pytest.mark.parametrize("browser_locale", ["fr-FR"])
def test_a_mailbox_user_reads_its_settings_in_french(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, browser_locale: str
):
    MailHost.objects.filter(pk=cast.host.pk).update(webmail_url=WEBMAIL, smtp_host="smtp.hosting.test")
    person = Person(page, live_server.url)
    log_in(person, "alphauser", "alpha-domain.test")
    assert page.url == f"{live_server.url}/me/"
    person.click(person.link("Paramètres de votre logiciel de messagerie"))
    assert page.url == f"{live_server.url}/me/mail-settings/"
    assert page.locator("html").get_attribute("lang") == "fr"
    assert person.h1() == "Paramètres de votre logiciel de messagerie"
    text = person.main_text()
    assert "votre logiciel de messagerie habituel (Outlook, Thunderbird ou autres)" in text
    assert "Nom d'utilisateur alphauser@alpha-domain.test (votre adresse complète)" in text
    assert "Mot de passe le mot de passe de votre compte pop" in text
    assert person.headers() == ["Service", "Serveur", "Port", "Sécurité"]
    assert servers(person) == [
        ["IMAP — courrier entrant, conservé sur le serveur (conseillé)", "mx1.hosting.test", "993", "SSL/TLS"],
        ["POP3 — courrier entrant, téléchargé sur votre ordinateur", "mx1.hosting.test", "995", "SSL/TLS"],
        ["SMTP — courrier sortant, avec authentification (mêmes nom d'utilisateur et mot de passe)",
         "smtp.hosting.test", "587", "STARTTLS"],
    ]
    assert selected_by_a_click(person, page.locator("#login")) == "alphauser@alpha-domain.test"
    assert selected_by_a_click(person, page.locator("#servers tbody tr").nth(2).locator("code").first) == (
        "smtp.hosting.test")
    webmail = person.link(WEBMAIL)
    assert webmail.get_attribute("href") == WEBMAIL
    assert "par notre WebMail" in squash(page.locator("#webmail").inner_text())
    person.check("the settings page")
    save_screenshot(page, "mail-settings-fr")
    page.set_viewport_size(PHONE)  # on a phone: each value on its line, nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    save_screenshot(page, "mail-settings-fr-phone")


@pytest.mark.parametrize("browser_locale", ["en-US"])
def test_a_domain_admin_opens_them_from_the_menu_in_english(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, browser_locale: str
):
    person = Person(page, live_server.url)
    log_in(person, "postmaster", "alpha-domain.test")
    assert page.url == f"{live_server.url}/domains/{cast.a.domain.pk}/"
    person.click(person.link("Mail client settings"))
    assert page.url == f"{live_server.url}/domains/{cast.a.domain.pk}/mail-settings/"
    assert page.locator("html").get_attribute("lang") == "en"
    assert person.h1() == "Mail client settings"
    text = person.main_text()
    assert "with your usual mail client (Outlook, Thunderbird or others)" in text
    assert "User name postmaster@alpha-domain.test (each POP account logs in with its full address)" in text
    assert person.headers() == ["Service", "Server", "Port", "Security"]
    assert [row[1:] for row in servers(person)] == [
        ["mx1.hosting.test", "993", "SSL/TLS"], ["mx1.hosting.test", "995", "SSL/TLS"],
        ["mx1.hosting.test", "587", "STARTTLS"]]
    assert page.locator("#webmail").count() == 0  # the host has no webmail: nothing said about one
    assert selected_by_a_click(person, page.locator("#servers tbody tr").first.locator("code").nth(1)) == "993"
    save_screenshot(page, "mail-settings-en")
    person.click(person.link("Main menu", where="footer"))
    assert page.url == f"{live_server.url}/domains/{cast.a.domain.pk}/"
