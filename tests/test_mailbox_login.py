"""The QmailAdmin-style mailbox login, the mailbox's own pages, and how sessions end.

Failed logins are counted per client IP and per address in `LoginThrottle` rows (rolled back
after each test); every test that fails a login still uses its own REMOTE_ADDR and its own mailbox.
The parallel case, against a real server, is tests/test_login_throttle_server.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape

from mail.auth import give_back_attempt
from mail.models import LoginThrottle, Mailbox
from mailhost.passwords import verify_password
from tests.conftest import login_mailbox
from tests.factories import MAILBOX_PASSWORD, USER_PASSWORD, DomainFactory, MailboxFactory

INVALID_LOGIN = "Invalid login."
TOO_MANY = "Too many failed attempts"
NEW_PASSWORD = "Purple-Otter-5150"


def english_client(**kwargs) -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en", **kwargs)


def post_login(client: Client, account: str, domain: str, password: str, ip: str = "127.0.0.1", **extra):
    return client.post(
        reverse("screens:login"),
        {"account": account, "domain": domain, "password": password},
        REMOTE_ADDR=ip,
        **extra,
    )


def non_field_errors(response) -> list[str]:
    return list(response.context["form"].non_field_errors())


def stored_hash(mailbox: Mailbox) -> str:
    return Mailbox.objects.get(pk=mailbox.pk).password_hash


def is_logged_in_as_mailbox(client: Client) -> bool:
    return client.get(reverse("screens:me")).status_code == 200


# --- logging in -------------------------------------------------------------------------------


def test_postmaster_lands_on_the_domain_menu(cast):
    client = english_client()

    response = post_login(client, "postmaster", "alpha-domain.test", MAILBOX_PASSWORD)

    assert response.status_code == 302
    assert response.url == reverse("screens:domain", kwargs={"pk": cast.a.domain.pk})


def test_postmaster_then_sees_the_domain_menu(cast):
    client = english_client()
    post_login(client, "postmaster", "alpha-domain.test", MAILBOX_PASSWORD)

    response = client.get(reverse("screens:domain", kwargs={"pk": cast.a.domain.pk}))

    assert response.status_code == 200
    assert "alpha-domain.test" in response.content.decode()


def test_address_in_the_account_field_with_an_empty_domain_logs_in(cast):
    client = english_client()

    response = post_login(client, "postmaster@alpha-domain.test", "", MAILBOX_PASSWORD)

    assert response.status_code == 302
    assert response.url == reverse("screens:domain", kwargs={"pk": cast.a.domain.pk})


def test_plain_mailbox_lands_on_its_own_page(cast):
    client = english_client()

    response = post_login(client, cast.mailbox_user.address, "", MAILBOX_PASSWORD)

    assert response.status_code == 302
    assert response.url == reverse("screens:me")


def test_plain_mailbox_cannot_open_its_domain_menu(cast):
    client = english_client()
    post_login(client, cast.mailbox_user.address, "", MAILBOX_PASSWORD)

    response = client.get(reverse("screens:domain", kwargs={"pk": cast.a.domain.pk}))

    assert response.status_code == 404


def test_account_and_domain_are_case_insensitive(cast):
    client = english_client()

    response = post_login(client, "PostMaster", "Alpha-Domain.TEST", MAILBOX_PASSWORD)

    assert response.status_code == 302
    assert response.url == reverse("screens:domain", kwargs={"pk": cast.a.domain.pk})


def test_unicode_domain_logs_in_to_a_punycode_domain(cast):
    domain = DomainFactory(pack=cast.a.pack, name="xn--caf-dma.test")  # café.test
    MailboxFactory(domain=domain, local_part="postmaster")
    client = english_client()

    response = post_login(client, "postmaster", "Café.test", MAILBOX_PASSWORD)

    assert response.status_code == 302
    assert response.url == reverse("screens:domain", kwargs={"pk": domain.pk})


@pytest.mark.parametrize(
    ("ip", "account", "domain", "password"),
    [
        ("10.9.8.1", "wrongpw", "alpha-domain.test", "Not-The-Password-1"),
        ("10.9.8.2", "nobody", "alpha-domain.test", MAILBOX_PASSWORD),
        ("10.9.8.3", "postmaster", "no-such-domain-1.test", MAILBOX_PASSWORD),
    ],
    ids=["wrong-password", "unknown-mailbox", "unknown-domain"],
)
def test_failed_login_gives_one_generic_error(cast, ip, account, domain, password):
    MailboxFactory(domain=cast.a.domain, local_part="wrongpw")
    client = english_client()

    response = post_login(client, account, domain, password, ip=ip)

    assert response.status_code == 400
    assert non_field_errors(response) == [INVALID_LOGIN]
    assert INVALID_LOGIN in response.content.decode()
    assert not is_logged_in_as_mailbox(client)


def test_failed_login_error_is_shown_in_french(cast):
    MailboxFactory(domain=cast.a.domain, local_part="frenchfail")
    with translation.override("fr"):
        french = translation.gettext(INVALID_LOGIN)

    response = post_login(
        Client(), "frenchfail", "alpha-domain.test", "Not-The-Password-1", ip="10.9.8.4",
        HTTP_ACCEPT_LANGUAGE="fr",
    )

    assert french != INVALID_LOGIN
    assert escape(french) in response.content.decode()


def test_disabled_mailbox_cannot_log_in(cast):
    MailboxFactory(domain=cast.a.domain, local_part="disabled", enabled=False)
    client = english_client()

    response = post_login(client, "disabled", "alpha-domain.test", MAILBOX_PASSWORD, ip="10.9.8.5")

    assert response.status_code == 400
    assert non_field_errors(response) == [INVALID_LOGIN]
    assert not is_logged_in_as_mailbox(client)


def test_disabling_a_mailbox_ends_its_session(cast):
    client = english_client()
    post_login(client, cast.mailbox_user.address, "", MAILBOX_PASSWORD)
    assert is_logged_in_as_mailbox(client)

    Mailbox.objects.filter(pk=cast.mailbox_user.pk).update(enabled=False)

    assert not is_logged_in_as_mailbox(client)


def test_missing_domain_is_a_form_error(cast):
    client = english_client()

    response = post_login(client, "postmaster", "", MAILBOX_PASSWORD)

    assert response.status_code == 400
    assert "domain" in response.context["form"].errors


# --- throttling -------------------------------------------------------------------------------


def test_too_many_failures_for_an_address_refuse_even_the_right_password(cast):
    MailboxFactory(domain=cast.a.domain, local_part="throttled")
    client = english_client()
    for _attempt in range(settings.MAILBOX_LOGIN_MAX_FAILURES):
        failed = post_login(client, "throttled", "alpha-domain.test", "Not-The-Password-1", ip="10.9.8.6")
        assert non_field_errors(failed) == [INVALID_LOGIN]

    response = post_login(client, "throttled", "alpha-domain.test", MAILBOX_PASSWORD, ip="10.9.8.6")

    assert response.status_code == 400
    assert TOO_MANY in response.content.decode()
    assert not is_logged_in_as_mailbox(client)


def test_address_throttling_holds_from_another_ip(cast):
    MailboxFactory(domain=cast.a.domain, local_part="roaming")
    client = english_client()
    for attempt in range(settings.MAILBOX_LOGIN_MAX_FAILURES):
        post_login(client, "roaming", "alpha-domain.test", "Not-The-Password-1", ip=f"10.9.7.{attempt + 1}")

    response = post_login(client, "roaming@ALPHA-domain.test", "", MAILBOX_PASSWORD, ip="10.9.7.200")

    assert response.status_code == 400
    assert TOO_MANY in response.content.decode()


def test_ip_throttling_holds_for_another_address(cast, settings):
    settings.MAILBOX_LOGIN_MAX_FAILURES_PER_IP = 3  # below the per-address limit, to tell them apart
    MailboxFactory(domain=cast.a.domain, local_part="neighbour")
    client = english_client()
    for attempt in range(3):
        post_login(client, f"ghost{attempt}", "alpha-domain.test", "Not-The-Password-1", ip="10.9.8.7")

    response = post_login(client, "neighbour", "alpha-domain.test", MAILBOX_PASSWORD, ip="10.9.8.7")

    assert response.status_code == 400
    assert TOO_MANY in response.content.decode()


def test_one_ip_may_fail_more_often_than_one_address(cast):
    """One office behind one IP is not locked out because one of its people mistyped."""
    assert settings.MAILBOX_LOGIN_MAX_FAILURES_PER_IP > settings.MAILBOX_LOGIN_MAX_FAILURES
    MailboxFactory(domain=cast.a.domain, local_part="colleague")
    client = english_client()
    for attempt in range(settings.MAILBOX_LOGIN_MAX_FAILURES):
        post_login(client, f"typo{attempt}", "alpha-domain.test", "Not-The-Password-1", ip="10.9.8.11")

    response = post_login(client, "colleague", "alpha-domain.test", MAILBOX_PASSWORD, ip="10.9.8.11")

    assert response.status_code == 302


def test_failures_below_the_limit_do_not_block_the_right_password(cast):
    MailboxFactory(domain=cast.a.domain, local_part="almost")
    client = english_client()
    for _attempt in range(settings.MAILBOX_LOGIN_MAX_FAILURES - 1):
        post_login(client, "almost", "alpha-domain.test", "Not-The-Password-1", ip="10.9.8.8")

    response = post_login(client, "almost", "alpha-domain.test", MAILBOX_PASSWORD, ip="10.9.8.8")

    assert response.status_code == 302


def counted(key: str) -> int:
    row = LoginThrottle.objects.filter(key=key).first()
    return row.count if row else 0


def test_a_success_gives_its_attempt_back_and_failures_stay_counted(cast):
    MailboxFactory(domain=cast.a.domain, local_part="counted")
    client = english_client()
    for _attempt in range(2):
        post_login(client, "counted", "alpha-domain.test", "Not-The-Password-1", ip="10.9.6.1")

    response = post_login(client, "counted", "alpha-domain.test", MAILBOX_PASSWORD, ip="10.9.6.1")

    assert response.status_code == 302
    assert counted("addr:counted@alpha-domain.test") == 2
    assert counted("ip:10.9.6.1") == 2


def test_refused_attempts_are_counted_too(cast):
    MailboxFactory(domain=cast.a.domain, local_part="hammered")
    client = english_client()
    for _attempt in range(settings.MAILBOX_LOGIN_MAX_FAILURES + 3):
        post_login(client, "hammered", "alpha-domain.test", "Not-The-Password-1", ip="10.9.6.2")

    assert counted("addr:hammered@alpha-domain.test") == settings.MAILBOX_LOGIN_MAX_FAILURES + 3


def test_the_window_does_not_slide(cast):
    MailboxFactory(domain=cast.a.domain, local_part="steady")
    client = english_client()
    post_login(client, "steady", "alpha-domain.test", "Not-The-Password-1", ip="10.9.6.3")
    first = LoginThrottle.objects.get(key="addr:steady@alpha-domain.test").window_ends

    post_login(client, "steady", "alpha-domain.test", "Not-The-Password-1", ip="10.9.6.3")

    row = LoginThrottle.objects.get(key="addr:steady@alpha-domain.test")
    assert (row.count, row.window_ends) == (2, first)
    assert first - timezone.now() <= timedelta(seconds=settings.MAILBOX_LOGIN_WINDOW_SECONDS)


def test_after_the_window_the_address_may_log_in_again_and_counting_restarts(cast):
    MailboxFactory(domain=cast.a.domain, local_part="patient")
    client = english_client()
    for _attempt in range(settings.MAILBOX_LOGIN_MAX_FAILURES + 1):
        post_login(client, "patient", "alpha-domain.test", "Not-The-Password-1", ip="10.9.6.4")
    LoginThrottle.objects.update(window_ends=timezone.now() - timedelta(seconds=1))

    failed = post_login(client, "patient", "alpha-domain.test", "Not-The-Password-1", ip="10.9.6.4")

    assert non_field_errors(failed) == [INVALID_LOGIN]
    row = LoginThrottle.objects.get(key="addr:patient@alpha-domain.test")
    assert row.count == 1
    assert row.window_ends > timezone.now() + timedelta(seconds=settings.MAILBOX_LOGIN_WINDOW_SECONDS - 60)


def test_the_window_starts_at_the_first_failure_not_at_an_earlier_success(cast):
    MailboxFactory(domain=cast.a.domain, local_part="earlybird")
    client = english_client()
    post_login(client, "earlybird", "alpha-domain.test", MAILBOX_PASSWORD, ip="10.9.6.7")
    LoginThrottle.objects.update(window_ends=timezone.now() + timedelta(seconds=10))  # nearly over

    post_login(english_client(), "earlybird", "alpha-domain.test", "Not-The-Password-1", ip="10.9.6.7")

    row = LoginThrottle.objects.get(key="addr:earlybird@alpha-domain.test")
    assert row.count == 1
    assert row.window_ends > timezone.now() + timedelta(seconds=settings.MAILBOX_LOGIN_WINDOW_SECONDS - 60)


def test_a_slot_given_back_after_its_window_restarted_never_counts_below_zero(db):
    """A success whose window ended (and was restarted or cleaned) during its verification."""
    LoginThrottle.objects.create(key="ip:10.9.6.8", count=0, window_ends=timezone.now())

    give_back_attempt({"ip:10.9.6.8": 5, "addr:gone@alpha-domain.test": 5})

    assert counted("ip:10.9.6.8") == 0


def test_rows_of_ended_windows_are_deleted(cast):
    LoginThrottle.objects.create(key="ip:10.9.6.99", count=7, window_ends=timezone.now() - timedelta(seconds=1))
    LoginThrottle.objects.create(key="ip:10.9.6.98", count=7, window_ends=timezone.now() + timedelta(minutes=1))

    post_login(english_client(), "nobody", "alpha-domain.test", "Not-The-Password-1", ip="10.9.6.5")

    assert set(LoginThrottle.objects.values_list("key", flat=True)) == {
        "ip:10.9.6.98", "ip:10.9.6.5", "addr:nobody@alpha-domain.test",
    }


def test_the_standalone_password_page_is_throttled_too(cast):
    MailboxFactory(domain=cast.a.domain, local_part="pagethrottled")
    client = english_client()
    for _attempt in range(settings.MAILBOX_LOGIN_MAX_FAILURES):
        post_change_password(client, "pagethrottled@alpha-domain.test", "Not-The-Password-1", ip="10.9.6.6")

    response = post_change_password(client, "pagethrottled@alpha-domain.test", MAILBOX_PASSWORD, ip="10.9.6.6")

    assert response.status_code == 400
    assert TOO_MANY in response.content.decode()


# --- the mailbox's own page and its password --------------------------------------------------


def test_own_page_shows_the_address(cast):
    client = english_client()
    login_mailbox(client, cast.mailbox_user)

    response = client.get(reverse("screens:me"))

    assert response.status_code == 200
    assert "alphauser@alpha-domain.test" in response.content.decode()


def test_own_page_without_a_session_redirects_to_the_login(cast):
    response = english_client().get(reverse("screens:me"))

    assert response.status_code == 302
    assert response.url == reverse("screens:login")


def test_new_passwords_that_differ_are_refused(cast):
    client = english_client()
    login_mailbox(client, cast.mailbox_user)
    old_hash = stored_hash(cast.mailbox_user)

    response = client.post(
        reverse("screens:me_password"), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD + "x"}
    )

    assert response.status_code == 400
    assert "Passwords don&#x27;t match." in response.content.decode()
    assert stored_hash(cast.mailbox_user) == old_hash


@pytest.mark.parametrize("weak", ["123", "password"])
def test_weak_new_password_is_refused_and_the_hash_kept(cast, weak):
    client = english_client()
    login_mailbox(client, cast.mailbox_user)
    old_hash = stored_hash(cast.mailbox_user)

    response = client.post(reverse("screens:me_password"), {"new_password1": weak, "new_password2": weak})

    assert response.status_code == 400
    assert response.context["form"].errors["new_password1"]
    assert stored_hash(cast.mailbox_user) == old_hash


def change_own_password(client: Client):
    return client.post(
        reverse("screens:me_password"), {"current_password": MAILBOX_PASSWORD, "new_password1": NEW_PASSWORD,
                                      "new_password2": NEW_PASSWORD}
    )


def test_good_new_password_is_stored_and_this_session_kept(cast):
    client = english_client()
    login_mailbox(client, cast.mailbox_user)

    response = change_own_password(client)

    assert response.status_code == 302
    assert response.url == reverse("screens:me")
    assert verify_password(NEW_PASSWORD, stored_hash(cast.mailbox_user))
    assert is_logged_in_as_mailbox(client)


def test_after_a_change_the_new_password_logs_in_and_the_old_does_not(cast):
    mailbox = MailboxFactory(domain=cast.a.domain, local_part="changer")
    client = english_client()
    login_mailbox(client, mailbox)
    change_own_password(client)

    with_old = post_login(english_client(), "changer@alpha-domain.test", "", MAILBOX_PASSWORD, ip="10.9.8.9")
    with_new = post_login(english_client(), "changer@alpha-domain.test", "", NEW_PASSWORD, ip="10.9.8.9")

    assert with_old.status_code == 400
    assert with_new.status_code == 302


def test_changing_the_password_ends_the_other_sessions_of_the_mailbox(cast):
    client, other = english_client(), english_client()
    post_login(client, cast.mailbox_user.address, "", MAILBOX_PASSWORD)
    post_login(other, cast.mailbox_user.address, "", MAILBOX_PASSWORD)
    assert is_logged_in_as_mailbox(other)

    change_own_password(client)

    response = other.get(reverse("screens:me"))
    assert response.status_code == 302
    assert response.url == reverse("screens:login")


# --- logging out ------------------------------------------------------------------------------


def test_logout_refuses_get_and_keeps_the_session(cast):
    client = english_client()
    login_mailbox(client, cast.mailbox_user)

    response = client.get(reverse("screens:logout"))

    assert response.status_code == 405
    assert is_logged_in_as_mailbox(client)


def test_logout_by_post_ends_the_session(cast):
    client = english_client()
    login_mailbox(client, cast.mailbox_user)

    response = client.post(reverse("screens:logout"))

    assert response.status_code == 302
    assert response.url == reverse("screens:login")
    assert not is_logged_in_as_mailbox(client)


# --- the standalone password page -------------------------------------------------------------


def post_change_password(client: Client, address: str, old: str, ip: str = "127.0.0.1"):
    return client.post(
        reverse("screens:change_password"),
        {"address": address, "old_password": old, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        REMOTE_ADDR=ip,
    )


def test_standalone_page_changes_the_password_with_the_right_old_one(cast):
    response = post_change_password(english_client(), cast.mailbox_user.address, MAILBOX_PASSWORD)

    assert response.status_code == 302
    assert response.url == reverse("screens:login")
    stored = stored_hash(cast.mailbox_user)
    assert verify_password(NEW_PASSWORD, stored)
    assert not verify_password(MAILBOX_PASSWORD, stored)


def test_standalone_page_refuses_a_wrong_old_password(cast):
    mailbox = MailboxFactory(domain=cast.a.domain, local_part="standalone")
    old_hash = stored_hash(mailbox)

    response = post_change_password(
        english_client(), "standalone@alpha-domain.test", "Not-The-Password-1", ip="10.9.8.10"
    )

    assert response.status_code == 400
    assert non_field_errors(response) == [INVALID_LOGIN]
    assert stored_hash(mailbox) == old_hash


# --- mailbox sessions and user sessions exclude each other ------------------------------------


def test_mailbox_login_ends_the_user_session(cast):
    client = english_client()
    client.force_login(cast.a.customer_user)
    assert client.get(reverse("screens:client")).status_code == 200

    post_login(client, cast.mailbox_user.address, "", MAILBOX_PASSWORD)

    response = client.get(reverse("screens:client"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_user_login_ends_the_mailbox_session(cast):
    client = english_client()
    post_login(client, cast.mailbox_user.address, "", MAILBOX_PASSWORD)
    assert is_logged_in_as_mailbox(client)

    assert client.login(email=cast.a.customer_user.email, password=USER_PASSWORD)

    assert not is_logged_in_as_mailbox(client)
    assert client.get(reverse("screens:client")).status_code == 200


# --- CSRF -------------------------------------------------------------------------------------


def test_login_without_a_csrf_token_is_forbidden(cast):
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")

    response = post_login(client, "postmaster", "alpha-domain.test", MAILBOX_PASSWORD)

    assert response.status_code == 403
    assert not is_logged_in_as_mailbox(client)


def test_login_with_the_csrf_token_of_the_form_works(cast):
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.get(reverse("screens:login"))
    token = client.cookies[settings.CSRF_COOKIE_NAME].value

    response = client.post(
        reverse("screens:login"),
        {"account": "postmaster", "domain": "alpha-domain.test", "password": MAILBOX_PASSWORD,
         "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302
