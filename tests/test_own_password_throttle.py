"""A mailbox user's own pages ask the current password before a change (`/me/` with a new
password, `/me/password/`): those checks are throttled as the login is (issue 15, item 7), in the
same slots (the mailbox's address, the client IP), taken before the password is verified. An open
session left behind no longer lets anyone guess the password and then change it.

The last test sends parallel guesses from one open session to a real server (gunicorn, the
fixture of tests/test_login_throttle_server.py): no more than the limit are verified.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from mail.models import LoginThrottle, Mailbox
from mailhost.passwords import verify_password
from tests.conftest import login_mailbox
from tests.factories import MAILBOX_PASSWORD
from tests.test_login_throttle_server import (  # noqa: F401 - live and server: fixtures
    MAX_PER_ADDRESS,
    Server,
    csrf_pair,
    live,
    server,
)

NEW_PASSWORD = "Purple-Otter-5150"
WRONG = "Your current password is not this one."
REFUSED = "Too many failed attempts: wait a few minutes before trying again."
LIMIT = 5


def own_client(mailbox: Mailbox) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    login_mailbox(client, mailbox)
    return client


def stored_hash(mailbox: Mailbox) -> str:
    return Mailbox.objects.values_list("password_hash", flat=True).get(pk=mailbox.pk)


def change_by_password_page(client: Client, current: str):
    return client.post(reverse("screens:me_password"), {
        "current_password": current, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})


def change_by_account_page(client: Client, current: str, mailbox: Mailbox):
    return client.post(reverse("screens:me"), {
        "real_name": mailbox.real_name, "routing": "standard", "forward_to": "", "vacation_subject": "",
        "vacation_message": "", "current_password": current, "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD})


PAGES = {
    "me_password": lambda client, current, mailbox: change_by_password_page(client, current),
    "me": change_by_account_page,
}


@pytest.mark.parametrize("page", sorted(PAGES))
@override_settings(MAILBOX_LOGIN_MAX_FAILURES=LIMIT, MAILBOX_LOGIN_MAX_FAILURES_PER_IP=100)
def test_wrong_current_passwords_then_the_right_one_is_refused(cast, page):
    mailbox = cast.mailbox_user
    client, before = own_client(mailbox), stored_hash(mailbox)
    post = PAGES[page]

    answers = [post(client, f"Wrong-Guess-{i}", mailbox).content.decode() for i in range(LIMIT + 3)]
    right = post(client, MAILBOX_PASSWORD, mailbox)

    assert [WRONG in a for a in answers] == [True] * LIMIT + [False] * 3
    assert all(REFUSED in a for a in answers[LIMIT:])
    assert right.status_code == 400 and REFUSED in right.content.decode()
    assert stored_hash(mailbox) == before  # the password did not change
    assert LoginThrottle.objects.get(key="addr:alphauser@alpha-domain.test").count == LIMIT + 4


@pytest.mark.parametrize("page", sorted(PAGES))
@override_settings(MAILBOX_LOGIN_MAX_FAILURES=LIMIT, MAILBOX_LOGIN_MAX_FAILURES_PER_IP=100)
def test_the_right_current_password_within_the_limit_changes_it_and_gives_its_slot_back(cast, page):
    mailbox = cast.mailbox_user
    client = own_client(mailbox)
    post = PAGES[page]
    for i in range(LIMIT - 1):
        assert WRONG in post(client, f"Wrong-Guess-{i}", mailbox).content.decode()

    response = post(client, MAILBOX_PASSWORD, mailbox)

    assert response.status_code == 302
    assert verify_password(NEW_PASSWORD, stored_hash(mailbox))
    assert LoginThrottle.objects.get(key="addr:alphauser@alpha-domain.test").count == LIMIT - 1


@override_settings(MAILBOX_LOGIN_MAX_FAILURES=LIMIT, MAILBOX_LOGIN_MAX_FAILURES_PER_IP=100)
def test_guesses_on_the_own_pages_and_at_the_login_share_one_count(cast):
    mailbox = cast.mailbox_user
    client = own_client(mailbox)
    for i in range(LIMIT):
        change_by_password_page(client, f"Wrong-Guess-{i}")

    login = Client(HTTP_ACCEPT_LANGUAGE="en").post(reverse("screens:login"), {
        "account": "alphauser@alpha-domain.test", "domain": "", "password": MAILBOX_PASSWORD})

    assert login.status_code == 400 and REFUSED in login.content.decode()


@override_settings(MAILBOX_LOGIN_MAX_FAILURES=100, MAILBOX_LOGIN_MAX_FAILURES_PER_IP=LIMIT)
def test_the_client_ip_is_throttled_too(cast):
    """Guesses spread over several open sessions of several mailboxes, from one address."""
    clients = [own_client(m) for m in (cast.mailbox_user, cast.a.postmaster)]
    for i in range(LIMIT):
        change_by_password_page(clients[i % 2], f"Wrong-Guess-{i}")

    right = change_by_password_page(clients[1], MAILBOX_PASSWORD)

    assert REFUSED in right.content.decode()
    assert LoginThrottle.objects.get(key="ip:127.0.0.1").count == LIMIT + 1


def test_the_refusal_reads_in_french(cast):
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    login_mailbox(client, cast.mailbox_user)
    with override_settings(MAILBOX_LOGIN_MAX_FAILURES=1):
        change_by_password_page(client, "Wrong-Guess")
        response = change_by_password_page(client, "Wrong-Guess-2")

    assert "Trop de tentatives" in response.content.decode()


# --- parallel guesses against a real server -------------------------------------------------------


def _session_cookie(running: Server, csrf: tuple[str, str], address: str) -> str:
    """An open session of the mailbox at `address`: logged in through the server itself."""
    cookie, token = csrf
    conn = running.connection()
    conn.request("POST", reverse("screens:login"), body=urlencode({
        "account": address, "domain": "", "password": MAILBOX_PASSWORD, "csrfmiddlewaretoken": token,
    }), headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={cookie}"})
    response = conn.getresponse()
    assert response.status == 302, response.read()[:500]
    found = re.search(rf"{settings.SESSION_COOKIE_NAME}=([^;]+)", response.getheader("Set-Cookie") or "")
    return found.group(1)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_guesses_from_one_open_session_verify_at_most_the_limit(live, cast):  # noqa: F811
    """20 wrong current passwords sent at the same moment from one session (the server allows
    MAX_PER_ADDRESS failures per address): at most that many are verified, the others refused."""
    mailbox, before = cast.mailbox_user, stored_hash(cast.mailbox_user)
    cookie, token = csrf_pair(live)
    session = _session_cookie(live, (cookie, token), "alphauser@alpha-domain.test")
    barrier, answers = threading.Barrier(20), []

    def guess(i: int) -> None:
        conn = live.connection(f"127.0.0.{100 + i}")  # 20 client IPs: the per-address slot decides
        conn.connect()
        body = urlencode({"current_password": f"Wrong-Guess-{i}", "new_password1": NEW_PASSWORD,
                          "new_password2": NEW_PASSWORD, "csrfmiddlewaretoken": token})
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept-Language": "en",
                   "Cookie": f"csrftoken={cookie}; {settings.SESSION_COOKIE_NAME}={session}"}
        barrier.wait()
        conn.request("POST", reverse("screens:me_password"), body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        answers.append("wrong" if WRONG.replace("'", "&#x27;") in text
                       else "refused" if REFUSED in text else f"HTTP {response.status}")

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    live.check_alive()

    assert Counter(answers) == {"wrong": MAX_PER_ADDRESS, "refused": 20 - MAX_PER_ADDRESS}
    assert stored_hash(mailbox) == before
