"""The page "Mail client settings" tells the truth: a mail client that takes the user name,
servers and ports it shows logs in to the real stack's IMAP, POP3 and submission with the
account's password, and a service the page marks "not enabled for your account" is refused.

The test stack listens on loopback ports of its own, in plain text (it has no certificate): the
page's public names and ports are mapped to them (`PUBLIC_TO_STACK`); SSL/TLS itself is not tried.
The domain has an internationalised name: the user name the page shows is its ASCII (IDNA) form,
the one Dovecot knows.
"""

from __future__ import annotations

import imaplib
import poplib
import re
import secrets
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from hosting.models import MailHost
from mail.services import mailbox_set_access
from mailhost.stack import HOST
from provisioning.domains import domain_create, domain_verify
from tests.conftest import login_mailbox
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import TIMEOUT, fresh_ip, imap_login, send, sink_messages, wait_for, with_subject

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PUBLIC_NAME = "mail.hosting.test"  # what the page shows; the test's "DNS" maps it to the stack


def settings_page(mailbox: Any) -> tuple[str, dict[str, tuple[str, int]]]:
    """The user name and each service's (server, port) as a person reads them on their page."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    login_mailbox(client, mailbox)
    body = client.get(reverse("screens:me_mail_settings")).content.decode()
    login = re.search(r'<code class="copy" id="login">([^<]+)</code>', body)
    assert login is not None
    servers = {}
    for service, host, port in re.findall(
            r'<th scope="row">(IMAP|POP3|SMTP) .*?<code class="copy">([^<]+)</code>.*?<code class="copy">(\d+)</code>',
            body, re.S):
        servers[service] = (host, int(port))
    return login.group(1), servers


def on_the_stack(e2e: E2E, server: tuple[str, int]) -> tuple[str, int]:
    """Where the test stack answers for a public (name, port) the page shows."""
    host, port = server
    assert host == PUBLIC_NAME
    config = e2e.stack.config
    return HOST, {993: config.imap_port, 995: config.pop3_port, 587: config.submission_port}[port]


def imap_logs_in(e2e: E2E, server: tuple[str, int], user: str, source_ip: str = HOST) -> bool:
    """Whether IMAP at the page's (server, port) takes this user name and the account's password
    (a refusal from an address of its own: Dovecot delays the next login from a failed one's)."""
    assert on_the_stack(e2e, server) == (HOST, e2e.stack.config.imap_port)
    try:
        imap_login(e2e.stack, user, PASSWORD, source_ip).logout()
    except imaplib.IMAP4.error:
        return False
    return True


def test_a_mail_client_logs_in_with_what_the_page_shows(e2e: E2E) -> None:
    MailHost.objects.filter(pk=e2e.host.pk).update(
        imap_host=PUBLIC_NAME, pop3_host=PUBLIC_NAME, smtp_host=PUBLIC_NAME)
    domain = domain_create(pack=e2e.pack, name=f"café{secrets.token_hex(3)}.test", acting_user=e2e.operator)
    domain_verify(domain=domain, acting_user=e2e.operator)
    assert domain.name.startswith("xn--")
    jean = e2e.mailbox(domain, "jean")
    e2e.wait_applied(domain)

    login, servers = settings_page(jean)
    assert login == f"jean@{domain.name}"
    assert servers == {"IMAP": (PUBLIC_NAME, 993), "POP3": (PUBLIC_NAME, 995), "SMTP": (PUBLIC_NAME, 587)}

    assert imap_logs_in(e2e, servers["IMAP"], login)
    pop = poplib.POP3(*on_the_stack(e2e, servers["POP3"]), timeout=TIMEOUT)
    try:
        pop.user(login)
        assert pop.pass_(PASSWORD).startswith(b"+OK")
    finally:
        pop.quit()
    smtp_host, smtp_port = on_the_stack(e2e, servers["SMTP"])
    assert smtp_host == HOST
    send(e2e.stack, login, "friend@elsewhere.test", "from my mail client", "hello\n", port=smtp_port,
         login=(login, PASSWORD))
    wait_for(lambda: with_subject(sink_messages(e2e.stack, "friend@elsewhere.test"), "from my mail client"))


def test_a_service_the_page_marks_not_enabled_is_refused(e2e: E2E) -> None:
    MailHost.objects.filter(pk=e2e.host.pk).update(imap_host=PUBLIC_NAME)
    domain = e2e.domain("noimap")
    paul = e2e.mailbox(domain, "paul")
    mailbox_set_access(mailbox=paul, allow_imap=False, acting_user=e2e.operator)
    e2e.wait_applied(domain)

    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    login_mailbox(client, paul)
    body = client.get(reverse("screens:me_mail_settings")).content.decode()
    imap_row = body[body.index('<th scope="row">IMAP '):]
    assert "Not enabled for your account." in imap_row[:imap_row.index("</tr>")]
    login, servers = settings_page(paul)
    assert not imap_logs_in(e2e, servers["IMAP"], login, fresh_ip())
