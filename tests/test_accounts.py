"""Sign-in with e-mail + password (django-allauth): login, no public sign-up, password reset by
e-mail, TOTP 2FA pages, login throttling, and the demo command's logins."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from hosting.models import Domain, User
from tests.conftest import Cast
from tests.factories import USER_PASSWORD

pytestmark = pytest.mark.django_db


def test_customer_signs_in_with_email_and_lands_in_the_client_area(cast: Cast) -> None:
    client = Client()
    response = client.post(reverse("account_login"), {"login": "owner@alpha-customer.test", "password": USER_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("screens:home")
    assert client.get(reverse("screens:home"))["Location"] == reverse("screens:client")


def test_public_sign_up_is_closed(cast: Cast) -> None:
    client = Client()
    client.post(reverse("account_signup"), {"email": "walk-in@x.test", "password1": "Xx-123456789",
                                            "password2": "Xx-123456789"})
    assert not User.objects.filter(email="walk-in@x.test").exists()


def test_password_reset_sends_an_email(cast: Cast) -> None:
    response = Client().post(reverse("account_reset_password"), {"email": "owner@alpha-customer.test"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner@alpha-customer.test"]


def test_two_factor_pages_are_offered(cast: Cast) -> None:
    client = Client()  # a real sign-in: activating TOTP asks for a recent authentication
    client.post(reverse("account_login"), {"login": "owner@alpha-customer.test", "password": USER_PASSWORD})
    assert client.get(reverse("mfa_index")).status_code == 200
    assert client.get(reverse("mfa_activate_totp"))["Location"].startswith(reverse("account_reauthenticate"))
    client.post(reverse("account_reauthenticate"), {"password": USER_PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    assert "secret" in page.content.decode().lower() or "code" in page.content.decode().lower()


def test_failed_sign_ins_are_throttled(cast: Cast) -> None:
    client = Client(REMOTE_ADDR="10.77.0.1")
    for _ in range(5):
        client.post(reverse("account_login"), {"login": "owner@bravo-customer.test", "password": "wrong"})
    response = client.post(reverse("account_login"), {"login": "owner@bravo-customer.test",
                                                      "password": USER_PASSWORD})
    assert response.status_code in (200, 429)
    assert "_auth_user_id" not in client.session


def test_demo_command_prints_logins_that_work(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("demo")
    call_command("demo")  # a second run refreshes the passwords and creates nothing twice
    out = capsys.readouterr().out.splitlines()
    last = out[len(out) // 2:]
    logins = {line.split()[0]: line.split()[-1] for line in last if line.startswith("  ")}
    assert Domain.objects.filter(name="example.test").count() == 1
    response = Client().post(reverse("screens:login"), {"account": "postmaster", "domain": "example.test",
                                                     "password": logins["QmailAdmin"]})
    assert response.status_code == 302
    assert response["Location"] == reverse("screens:domain", args=[Domain.objects.get(name="example.test").pk])
    client = Client()
    client.post(reverse("account_login"), {"login": "client@example.test", "password": logins["customer"]})
    assert client.get(reverse("screens:client")).status_code == 200
    body = client.get(reverse("screens:client")).content.decode()
    assert "5 comptes Pop, 10 redirections, 5 robots, 10 listes" in body
