"""Issue 16, defect 10 (second half), as seen in Debian's Chromium: no page of the panel has two
elements with one id (/me/ had two); the audit log fits a 1280 px screen whatever its values and
reads in French; on a phone (390x844) the top bar is at most 64 px tall, its menu behind a
button, and the index letters are targets of at least 44x44 px; the login page has no sign-up link."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import translation

from lists.services import list_create, list_set_text
from mail.models import CatchAllMode, Routing
from mail.services import catchall_set, forward_create, mailbox_set_routing, mailbox_set_vacation, robot_create
from tests.browser.conftest import Watched, save_screenshot
from tests.factories import MAILBOX_PASSWORD, USER_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DUPLICATE_IDS = """() => {
  const seen = {};
  document.querySelectorAll('[id]').forEach((e) => { seen[e.id] = (seen[e.id] || 0) + 1; });
  return Object.keys(seen).filter((id) => seen[id] > 1);
}"""
WIDTHS = "[document.documentElement.scrollWidth, window.innerWidth]"
LONG_URL = "https://example.com/" + "/".join(["a-very-long-path-segment"] * 12)
LONG_ADDRESS = "a.very.long.local.part.for.wrapping.tests@" + "sub." * 12 + "example.com"


def mailbox_login(watched: Watched, account: str, domain: str) -> None:
    page = watched.page
    watched.open("/login/")
    page.locator("input[name='account']").fill(account)
    page.locator("input[name='domain']").fill(domain)
    page.locator("input[name='password']").fill(MAILBOX_PASSWORD)
    with page.expect_navigation():
        page.locator("form:has(input[name='account']) button[type='submit']").click()


def user_login(watched: Watched, email: str) -> None:
    page = watched.page
    watched.open("/accounts/login/")
    page.locator("input[name='login']").fill(email)
    page.locator("input[name='password']").fill(USER_PASSWORD)
    with page.expect_navigation():
        page.locator("form:has(input[name='login']) button[type='submit']").click()


def domain_pages(cast: Any) -> list[str]:
    pk = cast.a.domain.pk
    mailbox = cast.mailbox_user.pk
    forward = forward_create(domain=cast.a.domain, local_part="contact", destinations=["x@elsewhere.test"],
                             acting_user=cast.operator).pk
    robot = robot_create(domain=cast.a.domain, local_part="robot", subject="Reçu", message="Merci.",
                         acting_user=cast.operator).pk
    news = list_create(domain=cast.a.domain, name="news", owner="postmaster@alpha-domain.test",
                       acting_user=cast.operator).pk
    names = [("screens:domain", ()), ("screens:mailboxes", ()), ("screens:mailbox_create", ()),
             ("screens:mailbox_modify", (mailbox,)), ("screens:mailbox_delete", (mailbox,)),
             ("screens:catchall", ()), ("screens:forwards", ()),
             ("screens:forward_create", ()), ("screens:forward_modify", (forward,)), ("screens:robots", ()),
             ("screens:robot_create", ()), ("screens:robot_modify", (robot,)), ("screens:lists", ()),
             ("screens:list_create", ()), ("screens:list_modify", (news,)), ("screens:members", (news,)),
             ("screens:domain_audit", ())]
    return [reverse(name, args=[pk, *args]) for name, args in names]


def test_no_page_of_the_panel_has_a_duplicate_id(transactional_db: Any, cast: Any, live_server: Any,
                                                 new_context: Any):
    user = Watched(new_context().new_page(), live_server.url)
    mailbox_login(user, cast.mailbox_user.local_part, cast.a.domain.name)
    for path in ["/me/", "/password/"]:
        user.open(path)
        assert user.page.evaluate(DUPLICATE_IDS) == [], path
    assert user.page.locator("input[type='password']").count() == 3  # /password/: address's old + new twice
    user.open("/me/")
    assert user.page.locator("main input[name='current_password']").count() == 1
    save_screenshot(user.page, "defc2-me")

    admin = Watched(new_context().new_page(), live_server.url)
    mailbox_login(admin, "postmaster", cast.a.domain.name)
    for path in domain_pages(cast):
        admin.open(path)
        assert admin.page.evaluate(DUPLICATE_IDS) == [], path

    customer = Watched(new_context().new_page(), live_server.url)
    user_login(customer, cast.a.customer_user.email)
    for path in [reverse("screens:client"), reverse("screens:pack", args=[cast.a.pack.pk]),
                 reverse("screens:domain_add", args=[cast.a.pack.pk])]:
        customer.open(path)
        assert customer.page.evaluate(DUPLICATE_IDS) == [], path


def test_the_audit_log_fits_1280_px_and_reads_in_french(transactional_db: Any, cast: Any, live_server: Any,
                                                        page: Any):
    mailbox = cast.mailbox_user
    with translation.override("en"):  # acts done by someone reading English
        catchall_set(domain=cast.a.domain, mode=CatchAllMode.BOUNCE, acting_user=cast.operator)
        mailbox_set_routing(mailbox=mailbox, routing=Routing.FORWARD, forward_to=[LONG_ADDRESS], keep_copy=True,
                            acting_user=cast.operator)
        mailbox_set_vacation(mailbox=mailbox, enabled=True, subject="Away", message=f"Back soon.\n{LONG_URL}",
                             acting_user=cast.operator)
        news = list_create(domain=cast.a.domain, name="news", owner="postmaster@alpha-domain.test",
                           acting_user=cast.operator)
        list_set_text(mailing_list=news, name="prologue", text="Bienvenue " * 80, acting_user=cast.operator)
    watched = Watched(page, live_server.url)
    mailbox_login(watched, "postmaster", cast.a.domain.name)
    watched.open(reverse("screens:domain_audit", args=[cast.a.domain.pk]))

    scroll_width, inner_width = page.evaluate(WIDTHS)
    assert inner_width == 1280 and scroll_width <= inner_width
    table = page.locator("main table").inner_text()
    assert LONG_URL.replace("\n", "") in table.replace("\n", "")  # wrapped, not cut
    assert "alpha-domain.test : E-mail inconnu : rejeté" in table
    assert "En-tête des messages de la liste à un nouvel abonné : — → Bienvenue" in table
    for english in ("Unknown e-mail", "text:prologue", "bounced"):
        assert english not in table, english
    save_screenshot(page, "defc2-audit-1280")


def test_on_a_phone_the_top_bar_is_short_and_the_index_letters_big(transactional_db: Any, cast: Any,
                                                                    live_server: Any, new_context: Any):
    page = new_context(locale="fr-FR", viewport=PHONE).new_page()
    watched = Watched(page, live_server.url)
    mailbox_login(watched, "postmaster", cast.a.domain.name)
    watched.open(reverse("screens:mailboxes", args=[cast.a.domain.pk]))

    bar = page.locator("header.topbar")
    assert bar.bounding_box()["height"] <= 64
    seat = bar.locator(".seat")
    assert not seat.is_visible()
    letters = page.locator("nav.index a")
    assert letters.count() >= 36
    for box in (letters.nth(i).bounding_box() for i in range(letters.count())):
        assert box["width"] >= 44 and box["height"] >= 44, box
    scroll_width, inner_width = page.evaluate(WIDTHS)
    assert scroll_width <= inner_width
    save_screenshot(page, "defc2-phone-accounts", full_page=False)
    watched.open(reverse("screens:forwards", args=[cast.a.domain.pk]))
    assert min(box["height"] for box in (letters.nth(i).bounding_box() for i in range(letters.count()))) >= 44
    # A list's members: their kinds (a nav of words, not letters) still fit the phone's width.
    news = list_create(domain=cast.a.domain, name="news", owner="postmaster@alpha-domain.test",
                       acting_user=cast.operator)
    watched.open(reverse("screens:members", args=[cast.a.domain.pk, news.pk]))
    scroll_width, inner_width = page.evaluate(WIDTHS)
    assert scroll_width <= inner_width
    watched.open(reverse("screens:mailboxes", args=[cast.a.domain.pk]))

    # The menu opens: who is signed in, and the language switch, which still works.
    toggle = bar.get_by_role("button", name="Menu", exact=True)
    assert toggle.get_attribute("aria-expanded") == "false"
    box = toggle.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert seat.is_visible() and seat.inner_text() == f"postmaster@{cast.a.domain.name}"
    save_screenshot(page, "defc2-phone-menu-open", full_page=False)
    bar.locator("select[name='language']").select_option("en")
    with page.expect_navigation():
        bar.locator("form.lang button[type='submit']").click()
    assert page.locator("html").get_attribute("lang") == "en"
    watched.check("after the language switch on a phone")


def test_on_a_wide_screen_the_top_bar_shows_its_menu_without_a_button(transactional_db: Any, cast: Any,
                                                                      live_server: Any, page: Any):
    watched = Watched(page, live_server.url)
    mailbox_login(watched, "postmaster", cast.a.domain.name)
    bar = page.locator("header.topbar")
    assert bar.locator(".seat").is_visible() and bar.locator("select[name='language']").is_visible()
    assert not bar.locator(".menu-toggle").is_visible()
    assert bar.bounding_box()["height"] <= 64


def test_the_login_pages_link_to_no_sign_up(transactional_db: Any, live_server: Any, page: Any):
    watched = Watched(page, live_server.url)
    for path in ["/accounts/login/", "/login/", "/accounts/password/reset/"]:
        watched.open(path)
        hrefs = page.eval_on_selector_all("a[href]", "links => links.map((a) => a.getAttribute('href'))")
        assert all("signup" not in href for href in hrefs), (path, hrefs)
        assert "enregistrer" not in page.locator("main").inner_text().lower(), path
