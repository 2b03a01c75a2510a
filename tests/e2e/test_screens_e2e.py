"""The domain's screens, end to end: a change typed in a page (Django's test client, as the domain's
admin) reaches the real mail stack through the real workers, and real mail proves it."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from hosting.models import Domain
from mail.models import Forward, Mailbox
from tests.conftest import login_mailbox
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import imap_subjects, pop3_messages, send, sink_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
NEW = "Compte-Test-2026!"  # noqa: S105 - a test account's password


def admin_of(domain: Domain) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    login_mailbox(client, Mailbox.objects.get(domain=domain, local_part="postmaster"))
    return client


def post(client: Client, name: str, domain: Domain, *args: Any, data: dict[str, Any], expect: int = 302) -> Any:
    response = client.post(reverse(name, args=[domain.pk, *args]), data)
    assert response.status_code == expect, response.content.decode()[:3000]
    return response


def modify(mailbox: Mailbox, **changes: Any) -> dict[str, Any]:
    data = {"real_name": mailbox.real_name, "quota_mb": "", "enabled": "on", "allow_pop3": "on", "allow_imap": "on",
            "allow_smtp": "on", "routing": "standard", "forward_to": "", "vacation_subject": "",
            "vacation_message": "", **changes}
    return {k: v for k, v in data.items() if v is not None}


def subjects(e2e: E2E, address: str, password: str = PASSWORD) -> list[str]:
    return [str(m["Subject"]) for m in pop3_messages(e2e.stack, address, password)]


def test_the_seeds_account_made_on_its_page_gets_mail(e2e: E2E) -> None:
    domain = e2e.domain("scr")
    client = admin_of(domain)
    post(client, "screens:mailbox_create", domain, data={
        "local_part": "test", "password1": NEW, "password2": NEW, "real_name": "Compte test"})
    e2e.wait_applied(domain)
    send(e2e.stack, "someone@outside.test", f"test@{domain.name}", "bonjour test", "premier mail")
    assert "bonjour test" in wait_for(lambda: imap_subjects(e2e.stack, f"test@{domain.name}", NEW) or None)


def test_a_vacation_with_dates_answers_only_within_them(e2e: E2E) -> None:
    domain = e2e.domain("vdt")
    gina = e2e.mailbox(domain, "gina")
    client = admin_of(domain)
    today = date.today()
    post(client, "screens:mailbox_modify", domain, gina.pk, data=modify(
        gina, vacation_enabled="on", vacation_subject="Absente jusqu'à lundi", vacation_message="À bientôt.",
        vacation_start=str(today - timedelta(days=1)), vacation_end=str(today + timedelta(days=3))))
    e2e.wait_applied(domain)
    sender, other = f"client-{domain.name}@outside.test", f"other-{domain.name}@outside.test"
    send(e2e.stack, sender, f"gina@{domain.name}", "question", "?")
    [reply] = wait_for(lambda: sink_messages(e2e.stack, sender))
    assert str(reply["Subject"]) == "Absente jusqu'à lundi"
    # Starting tomorrow: nobody is answered today, and the mail is still delivered.
    gina.refresh_from_db()
    post(client, "screens:mailbox_modify", domain, gina.pk, data=modify(
        gina, vacation_enabled="on", vacation_subject="Absente", vacation_message="À bientôt.",
        vacation_start=str(today + timedelta(days=1))))
    e2e.wait_applied(domain)
    send(e2e.stack, other, f"gina@{domain.name}", "later question", "?")
    wait_for(lambda: "later question" in subjects(e2e, f"gina@{domain.name}"))
    time.sleep(2)  # a reply would have left with the delivery: give it the time to reach the sink
    assert sink_messages(e2e.stack, other) == []


def test_values_that_would_break_a_map_a_script_or_a_header_arrive_harmless(e2e: E2E) -> None:
    domain = e2e.domain("hst")
    hugo = e2e.mailbox(domain, "hugo")
    client = admin_of(domain)
    # Refused outright, nothing written: a header split in the subject, a pipe or a list as an address.
    for changes in ({"vacation_enabled": "on", "vacation_subject": "Absent\r\nBcc: victim@outside.test",
                     "vacation_message": "x"},
                    {"routing": "forward", "forward_to": "|/bin/sh -c id"},
                    {"routing": "forward", "forward_to": "a@outside.test\x00b@outside.test"},
                    {"real_name": "Hugo\nBcc: victim@outside.test"}):
        post(client, "screens:mailbox_modify", domain, hugo.pk, data=modify(hugo, **changes), expect=400)
    hugo.refresh_from_db()
    assert (hugo.routing, hugo.vacation_enabled, hugo.real_name) == ("standard", False, "Hugo")
    # Accepted, and taken literally: Sieve's own syntax in the subject and the message.
    hostile = 'Fin"; discard; vacation "x'
    message = '";\r\n.\r\nredirect "victim@outside.test";'
    post(client, "screens:mailbox_modify", domain, hugo.pk, data=modify(
        hugo, vacation_enabled="on", vacation_subject=hostile, vacation_message=message))
    e2e.wait_applied(domain)
    sender = f"client-{domain.name}@outside.test"
    send(e2e.stack, sender, f"hugo@{domain.name}", "still delivered", "?")
    [reply] = wait_for(lambda: sink_messages(e2e.stack, sender))
    assert str(reply["Subject"]) == hostile and 'redirect "victim@outside.test";' in reply.get_content()
    assert "still delivered" in wait_for(lambda: subjects(e2e, f"hugo@{domain.name}") or None)
    assert sink_messages(e2e.stack, "victim@outside.test") == []
    # A forward named like a path or with a shell destination is refused on its page.
    post(client, "screens:forward_create", domain, data={"local_part": "../../etc", "destinations": "x@outside.test"},
         expect=400)
    post(client, "screens:forward_create", domain, data={"local_part": "ok", "destinations": "|/bin/sh"}, expect=400)
    assert not Forward.objects.filter(domain=domain).exists()


def test_a_deleted_account_redirected_on_its_page_forwards_its_mail(e2e: E2E) -> None:
    domain = e2e.domain("dlr")
    e2e.mailbox(domain, "ivan")
    keeper = e2e.mailbox(domain, "keeper")
    ivan = Mailbox.objects.get(domain=domain, local_part="ivan")
    client = admin_of(domain)
    post(client, "screens:mailbox_delete", domain, ivan.pk, data={"redirect": "on", "redirect_to": "keeper"})
    e2e.wait_applied(domain)
    send(e2e.stack, "someone@outside.test", f"ivan@{domain.name}", "for ivan", "x")
    wait_for(lambda: "for ivan" in subjects(e2e, keeper.address.replace(domain.unicode_name, domain.name)))
