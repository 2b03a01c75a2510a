"""The banner's live state through the real components (issue 16, defect 2): a change made on a
page is "pending"; the endpoint the page's script asks again (`screens:domain_state`, what
static/js/sync.js polls) turns "applied" once the real agent has applied it to the real mail
stack, and mail then reaches the new account. No report is faked: the panel's worker pushes, the
agent applies and reports, the panel's worker records it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from hosting.models import Domain
from mail.models import Mailbox
from tests.conftest import login_mailbox
from tests.e2e.conftest import E2E
from tests.e2e.mailclient import imap_subjects, send, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
NEW = "Etat-Direct-2026!"  # noqa: S105 - a test account's password


def state(client: Client, domain: Domain, revision: int) -> str:
    response = client.get(reverse("screens:domain_state", args=[domain.pk]), {"revision": revision})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    return str(response.json()["state"])


def test_the_state_a_page_polls_turns_applied_when_the_mail_host_has_the_change(e2e: E2E) -> None:
    domain = e2e.domain("live")
    e2e.wait_applied(domain)
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    login_mailbox(client, Mailbox.objects.get(domain=domain, local_part="postmaster"))
    e2e.workers.agent.stop()  # the host is slow: the change waits for it
    response = client.post(reverse("screens:mailbox_create", args=[domain.pk]), {
        "local_part": "direct", "password1": NEW, "password2": NEW, "real_name": "Direct"}, follow=True)
    assert response.status_code == 200
    revision = Domain.objects.get(pk=domain.pk).revision
    assert "sync-pending" in response.content.decode() and "data-sync-url=" in response.content.decode()  # it polls
    assert state(client, domain, revision) == "pending"
    e2e.workers.agent.mark()
    e2e.workers.agent.start()  # the host is back: its agent applies the change and reports
    assert wait_for(lambda: state(client, domain, revision) == "applied", timeout=60)
    send(e2e.stack, "someone@outside.test", f"direct@{domain.name}", "en direct", "x")
    assert "en direct" in wait_for(lambda: imap_subjects(e2e.stack, f"direct@{domain.name}", NEW) or None)
