"""The seed's list, made on the panel's pages (Django's test client, as postmaster, in French),
works for real mail on the real stack: "newsletter", where only moderators post."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from lists.models import MailingList, MemberKind, Posting
from mail.models import Mailbox
from tests.conftest import login_mailbox
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import pop3_messages, send, sink_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
NEW = "Compte-Test-2026!"  # noqa: S105 - a test account's password


def subjects(e2e: E2E, address: str, password: str = PASSWORD) -> list[str]:
    return [str(m["Subject"]) for m in pop3_messages(e2e.stack, address, password)]


def test_the_seeds_newsletter_made_on_its_pages_works_for_real_mail(e2e: E2E) -> None:
    domain = e2e.domain("nl")
    e2e.mailbox(domain, "lecteur")
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    login_mailbox(client, Mailbox.objects.get(domain=domain, local_part="postmaster"))
    response = client.post(reverse("screens:list_create", args=[domain.pk]), {
        "name": "newsletter", "owner": f"postmaster@{domain.name}", "prefix": "[Lettre]",
        "posting": Posting.MODERATORS, "reply_to": "sender", "language": "fr", "request_address": "on",
        "archive": "on", "archive_access": "subscribers"})
    assert response.status_code == 302, response.content.decode()[:2000]
    news = MailingList.objects.get(domain=domain, name="newsletter")
    members = reverse("screens:members", args=[domain.pk, news.pk])
    for address in (f"lecteur@{domain.name}", f"ami-{domain.name}@outside.test"):
        assert client.post(members, {"address": address, "kind": MemberKind.SUBSCRIBER}).status_code == 302
    # A new POP account ticks the list on its own page.
    response = client.post(reverse("screens:mailbox_create", args=[domain.pk]), {
        "local_part": "nouveau", "password1": NEW, "password2": NEW, "real_name": "Nouveau", "lists": [news.pk]})
    assert response.status_code == 302
    e2e.wait_applied(domain)

    # The owner is the moderator: their post reaches every subscriber, with the prefix.
    send(e2e.stack, f"postmaster@{domain.name}", f"newsletter@{domain.name}", "Numéro 1", "Bonjour à tous.")
    wait_for(lambda: "[Lettre] Numéro 1" in subjects(e2e, f"lecteur@{domain.name}"), timeout=30)
    wait_for(lambda: "[Lettre] Numéro 1" in subjects(e2e, f"nouveau@{domain.name}", NEW), timeout=30)
    wait_for(lambda: [m for m in sink_messages(e2e.stack, f"ami-{domain.name}@outside.test")
                      if str(m["Subject"]) == "[Lettre] Numéro 1"], timeout=30)
    # A subscriber who is not a moderator is refused: nothing reaches the others.
    send(e2e.stack, f"ami-{domain.name}@outside.test", f"newsletter@{domain.name}", "Pub", "x")
    wait_for(lambda: len(sink_messages(e2e.stack, f"ami-{domain.name}@outside.test")) >= 2, timeout=30)  # refused
    assert "[Lettre] Pub" not in subjects(e2e, f"lecteur@{domain.name}")
