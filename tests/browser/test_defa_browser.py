"""Issue 16, defects 1 and 2, in Debian's Chromium against the live server, in French and English:
the postmaster's password in use is replaced only after a page that says what happens; a change's
banner turns from "being applied" to "live" (or "failed") by itself, with no reload, once the
domain's mail host confirms it (its report recorded as the agent's task records it)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from hosting.models import Domain
from hostlink import reports as host_reports
from mail.models import Mailbox
from provisioning.models import DomainSync
from tests.browser.conftest import Watched, save_screenshot
from tests.factories import MAILBOX_PASSWORD, USER_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORDS = {
    "fr-FR": {"pending": "Les modifications sont en cours d'application sur le serveur de messagerie…",
              "applied": "Toutes les modifications sont en place sur le serveur de messagerie.",
              "failed": "Le serveur de messagerie n'a pas pu appliquer la dernière modification.",
              "pack pending": "en cours d'application", "pack applied": "actif sur le serveur de messagerie",
              "save": "Modifier", "new password": "Nouveau mot de passe postmaster",
              "warning": "cesse de fonctionner aussitôt", "confirm": "Oui, remplacer le mot de passe",
              "login": "Connexion"},
    "en-US": {"pending": "Changes are being applied on the mail server…",
              "applied": "All changes are live on the mail server.",
              "failed": "The mail server could not apply the last change.",
              "pack pending": "being applied", "pack applied": "live on the mail server",
              "save": "Modify", "new password": "New postmaster password",
              "warning": "stops working at once", "confirm": "Yes, replace the password", "login": "Sign In"},
}


def report(domain: Domain, host: Any, *, error: str = "") -> None:
    """The domain's mail host reports its last revision applied (or failed), as the agent's task does."""
    domain = Domain.objects.get(pk=domain.pk)
    DomainSync.objects.update_or_create(domain=domain, defaults={"host": host})  # as the push leaves it
    host_reports.record_report(host=host.name, domain=domain.name, revision=domain.revision, state="present",
                               error=error)


def log_in_postmaster(watched: Watched, cast: Any) -> None:
    page = watched.page
    watched.open("/login/")
    page.locator("input[name='account']").fill("postmaster")
    page.locator("input[name='domain']").fill(cast.a.domain.name)
    page.locator("input[name='password']").fill(MAILBOX_PASSWORD)
    page.locator("form:has(input[name='account']) button[type='submit']").click()
    page.wait_for_url(f"{watched.base_url}/domains/{cast.a.domain.pk}/")


def log_in_customer(watched: Watched, cast: Any) -> None:
    page = watched.page
    watched.open("/accounts/login/")
    page.locator("input[name='login']").fill(cast.a.customer_user.email)
    page.locator("input[name='password']").fill(USER_PASSWORD)
    page.locator("form:has(input[name='login']) button[type='submit']").click()
    page.wait_for_load_state()


def mark_page(page: Any) -> None:
    """A mark in this document: still there later means the page was not loaded again."""
    page.evaluate("window.__notReloaded = true")


def not_reloaded(page: Any) -> bool:
    return page.evaluate("window.__notReloaded === true")


@pytest.mark.parametrize("browser_locale", ["fr-FR", "en-US"])
def test_the_banner_turns_live_by_itself_once_the_host_confirms(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, browser_locale: str
):
    words = WORDS[browser_locale]
    watched = Watched(page, live_server.url)
    log_in_postmaster(watched, cast)
    watched.open(f"/domains/{cast.a.domain.pk}/accounts/{cast.mailbox_user.pk}/")
    page.locator("input[name='real_name']").fill("Alpha Renamed")
    page.locator("main form button[type='submit']", has_text=words["save"]).first.click()
    page.wait_for_load_state()
    banner = page.locator("p.sync[role='status']")
    assert banner.inner_text().strip() == words["pending"]
    assert Mailbox.objects.get(pk=cast.mailbox_user.pk).real_name == "Alpha Renamed"
    mark_page(page)
    page.wait_for_timeout(1500)  # it asks, and asks again: still pending
    assert banner.inner_text().strip() == words["pending"] and "sync-pending" in banner.get_attribute("class")

    report(cast.a.domain, cast.host)
    expect(banner).to_have_class(re.compile(r"\bsync-applied\b"), timeout=10_000)  # no reload: sync.js
    assert banner.inner_text().strip() == words["applied"] and banner.get_attribute("role") == "status"
    assert not_reloaded(page)
    watched.check("the banner after it turned live")
    save_screenshot(page, f"defa-banner-live-{browser_locale}")


@pytest.mark.parametrize("browser_locale", ["fr-FR", "en-US"])
def test_the_banner_says_a_failure_by_itself(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, browser_locale: str
):
    words = WORDS[browser_locale]
    watched = Watched(page, live_server.url)
    log_in_postmaster(watched, cast)
    watched.open(f"/domains/{cast.a.domain.pk}/forwards/new/")
    page.locator("input[name='local_part']").fill("ventes")
    page.locator("textarea[name='destinations']").fill("someone@elsewhere.test")
    page.locator("main form button[type='submit']").first.click()
    page.wait_for_url(f"{live_server.url}/domains/{cast.a.domain.pk}/forwards/")
    banner = page.locator("p.sync[role='status']")
    assert banner.inner_text().strip() == words["pending"]
    mark_page(page)
    report(cast.a.domain, cast.host, error="disk full")
    expect(banner).to_have_class(re.compile(r"\bsync-failed\b"), timeout=10_000)
    assert banner.inner_text().strip().startswith(words["failed"]) and "disk full" in banner.inner_text()
    assert not_reloaded(page)
    watched.check("the banner after it turned failed")


@pytest.mark.parametrize("browser_locale", ["fr-FR", "en-US"])
def test_the_pack_page_sees_its_new_domain_go_live_and_asks_before_a_new_password(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, browser_locale: str
):
    words = WORDS[browser_locale]
    watched = Watched(page, live_server.url)
    log_in_customer(watched, cast)
    Domain.objects.filter(pk=cast.a.domain.pk).update(revision=cast.a.domain.revision + 1)  # a change waits
    watched.open(f"/client/packs/{cast.a.pack.pk}/")
    state = page.locator("li:has-text('alpha-domain.test') .sync[role='status']")
    assert state.inner_text().strip() == words["pack pending"]
    mark_page(page)
    report(cast.a.domain, cast.host)
    expect(state).to_have_class(re.compile(r"\bsync-applied\b"), timeout=10_000)
    assert state.inner_text().strip() == words["pack applied"] and not_reloaded(page)

    # "New postmaster password" opens a page that says what happens; nothing is changed until confirmed.
    before = Mailbox.objects.get(pk=cast.a.postmaster.pk).password_hash
    page.get_by_role("link", name=words["new password"]).click()
    page.wait_for_url(f"{live_server.url}/client/domains/{cast.a.domain.pk}/postmaster-password/")
    watched.check("the confirmation page")
    assert words["warning"] in page.locator("main").inner_text()
    assert Mailbox.objects.get(pk=cast.a.postmaster.pk).password_hash == before
    save_screenshot(page, f"defa-postmaster-confirm-{browser_locale}")
    page.get_by_role("button", name=words["confirm"]).click()
    page.wait_for_load_state()
    password = page.locator("p.password-once code").inner_text()
    assert len(password) == 24 and Mailbox.objects.get(pk=cast.a.postmaster.pk).password_hash != before
    watched.check("the new password's page")
