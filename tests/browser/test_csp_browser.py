"""The strict Content-Security-Policy breaks no page: Debian's Chromium opens the panel, allauth
and the Django admin pages (and works their scripts: date widgets, admin actions, the TOTP page)
and any "Content Security Policy" report, on the console or as a violation event, fails the test."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Watched, save_screenshot
from tests.factories import MAILBOX_PASSWORD, USER_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(watched: Watched, email: str) -> None:
    page = watched.page
    watched.open("/accounts/login/")
    page.locator("input[name='login']").fill(email)
    page.locator("input[name='password']").fill(USER_PASSWORD)
    page.locator("form:has(input[name='login']) button[type='submit']").click()
    page.wait_for_load_state()
    watched.check("after the login")


def test_admin_pages_work_under_the_policy(transactional_db: Any, cast: Any, live_server: Any, page: Any):
    watched = Watched(page, live_server.url)
    log_in(watched, cast.operator.email)
    for path in ["/admin/", "/admin/hosting/domain/", f"/admin/hosting/domain/{cast.a.domain.pk}/change/",
                 "/admin/mail/mailbox/", f"/admin/mail/mailbox/{cast.mailbox_user.pk}/change/",
                 "/admin/hosting/auditevent/", "/admin/hosting/plan/add/", "/admin/hosting/pack/add/"]:
        watched.open(path)

    # The changelist's actions: ticking a row shows the count (actions.js).
    watched.open("/admin/hosting/domain/")
    page.locator("input.action-select").first.check()
    assert "1" in page.locator(".action-counter").inner_text()
    page.locator("select[name='action']").select_option("retry_provisioning")
    watched.check("the domain changelist's actions")

    # A change form with date and time widgets (calendar.js, DateTimeShortcuts.js).
    watched.open(f"/admin/hosting/user/{cast.operator.pk}/change/")
    page.locator("#id_date_joined_0").fill("")
    shortcuts = page.locator("#id_date_joined_0 ~ .datetimeshortcuts a")
    shortcuts.nth(0).click()  # "Today"
    assert page.locator("#id_date_joined_0").input_value() != ""
    shortcuts.nth(1).click()  # the calendar
    assert page.locator(".calendarbox:visible").count() == 1
    page.locator("#id_date_joined_1 ~ .datetimeshortcuts a").nth(0).click()  # "Now"
    assert page.locator("#id_date_joined_1").input_value() != ""
    watched.check("the date widgets")
    save_screenshot(page, "csp-admin-user-change")


def test_allauth_and_totp_pages_work_under_the_policy(transactional_db: Any, cast: Any, live_server: Any,
                                                      page: Any):
    watched = Watched(page, live_server.url)
    watched.open("/accounts/password/reset/")
    log_in(watched, cast.a.customer_user.email)
    for path in ["/client/", f"/client/packs/{cast.a.pack.pk}/", "/accounts/password/change/", "/accounts/2fa/",
                 "/accounts/2fa/totp/activate"]:
        watched.open(path)
    if "/reauthenticate/" in page.url:  # allauth asks for the password again before MFA changes
        page.locator("input[name='password']").fill(USER_PASSWORD)
        page.locator("form:has(input[name='password']) button[type='submit']").click()
        page.wait_for_load_state()
        watched.check("after the reauthentication")
    assert page.locator("img[src^='data:']").count() == 1  # the QR code, a data: URI the policy allows
    save_screenshot(page, "csp-totp-activate")
    watched.open("/accounts/email/")  # last: it records an unverified address, which stops TOTP activation


def test_panel_pages_work_under_the_policy(transactional_db: Any, cast: Any, live_server: Any, page: Any):
    watched = Watched(page, live_server.url)
    watched.open("/login/")
    page.locator("input[name='account']").fill("postmaster")
    page.locator("input[name='domain']").fill(cast.a.domain.name)
    page.locator("input[name='password']").fill(MAILBOX_PASSWORD)
    page.locator("form:has(input[name='account']) button[type='submit']").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/domains/{cast.a.domain.pk}/")
    watched.check("the domain menu after the mailbox login")
    for path in ["/me/", "/password/"]:
        watched.open(path)
    save_screenshot(page, "csp-panel-password")


def test_the_language_switch_works_under_the_policy(transactional_db: Any, live_server: Any, page: Any):
    watched = Watched(page, live_server.url)
    watched.open("/login/")
    page.locator("form.lang select[name='language']").select_option("en")
    page.locator("form.lang button[type='submit']").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    watched.check("after the language switch")
