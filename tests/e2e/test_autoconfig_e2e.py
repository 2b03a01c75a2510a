"""A mail client that sets itself up from the panel's answers logs in to the real stack: the
Thunderbird autoconfig, the Outlook autodiscover answer and the Apple profile are read as those
clients read them, and their host, port and user name are used as they are for IMAP, POP3 and
SMTP submission with the account's password (issue 18, item 4).

The test stack listens on 127.0.0.1 on ports of its own and speaks plain text (it has no
certificate): the mail host's client names and ports are set to the stack's, and the security
the documents carry (checked against the mail host's fields) is not itself tried. The alias
domain's address logs in as the documents say too (Dovecot's alias-domain queries).
"""

from __future__ import annotations

import imaplib
import plistlib
import poplib
import secrets
import xml.etree.ElementTree as ET

import pytest
from django.test import Client
from django.urls import reverse

from hosting.models import MailHost, VerifiedHow
from mailhost.stack import HOST
from provisioning.domains import alias_domain_create
from tests.conftest import login_mailbox
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import TIMEOUT, send, sink_messages, wait_for, with_subject

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OUTLOOK_NS = {"o": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
REQUEST = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
    "<Request><EMailAddress>{}</EMailAddress></Request></Autodiscover>"
)


def parse(body: bytes) -> ET.Element:
    """The panel's own answer, read as the clients read it."""
    return ET.fromstring(body)  # noqa: S314


def point_the_host_at_the_stack(e2e: E2E) -> None:
    config = e2e.stack.config
    MailHost.objects.filter(pk=e2e.host.pk).update(
        imap_host=HOST, imap_port=config.imap_port, imap_security="starttls",
        pop3_host=HOST, pop3_port=config.pop3_port, pop3_security="starttls",
        smtp_host=HOST, smtp_port=config.submission_port, smtp_security="starttls")


def imap_ok(host: str, port: int, user: str) -> bool:
    imap = imaplib.IMAP4(host, port, timeout=TIMEOUT)
    try:
        return imap.login(user, PASSWORD)[0] == "OK"
    finally:
        imap.logout()


def pop3_ok(host: str, port: int, user: str) -> bool:
    pop = poplib.POP3(host, port, timeout=TIMEOUT)
    try:
        pop.user(user)
        return pop.pass_(PASSWORD).startswith(b"+OK")
    finally:
        pop.quit()


def submit(e2e: E2E, host: str, port: int, user: str, subject: str) -> None:
    assert host == HOST  # mailclient.send connects to the stack's address
    send(e2e.stack, user, "friend@elsewhere.test", subject, "set up by itself\n", port=port,
         login=(user, PASSWORD))
    wait_for(lambda: with_subject(sink_messages(e2e.stack, "friend@elsewhere.test"), subject))


def test_thunderbird_logs_in_with_its_autoconfig(e2e: E2E) -> None:
    point_the_host_at_the_stack(e2e)
    domain = e2e.domain("tb")
    e2e.mailbox(domain, "jeanne")
    e2e.wait_applied(domain)
    address = f"jeanne@{domain.name}"

    response = Client().get("/mail/config-v1.1.xml", {"emailaddress": address},
                            HTTP_HOST=f"autoconfig.{domain.name}")
    assert response.status_code == 200
    provider = parse(response.content).find("emailProvider")
    assert provider is not None
    servers = {server.get("type"): server for server in provider}
    for kind in ("imap", "pop3", "smtp"):
        server = servers[kind]
        assert server.findtext("socketType") == "STARTTLS"
        assert server.findtext("authentication") == "password-cleartext"
    # Thunderbird fills %EMAILADDRESS% with the address it was given.
    user = {kind: servers[kind].findtext("username", "").replace("%EMAILADDRESS%", address) for kind in servers}
    at = {kind: (servers[kind].findtext("hostname", ""), int(servers[kind].findtext("port", "0"))) for kind in servers}

    assert imap_ok(*at["imap"], user["imap"])
    assert pop3_ok(*at["pop3"], user["pop3"])
    submit(e2e, *at["smtp"], user["smtp"], f"thunderbird {secrets.token_hex(3)}")


def test_outlook_and_apple_log_in_with_their_answers_at_an_alias_domain(e2e: E2E) -> None:
    point_the_host_at_the_stack(e2e)
    domain = e2e.domain("ol")
    mailbox = e2e.mailbox(domain, "paul")
    alias = alias_domain_create(domain=domain, name=f"alias{secrets.token_hex(4)}.test", acting_user=e2e.operator,
                                verified_how=VerifiedHow.HAND)
    e2e.wait_applied(domain)
    e2e.wait_applied(alias)

    response = Client().post("/autodiscover/autodiscover.xml", REQUEST.format(f"Paul@{alias.name}").encode(),
                             content_type="text/xml", HTTP_HOST=f"autodiscover.{alias.name}")
    assert response.status_code == 200
    protocols = {p.findtext("o:Type", namespaces=OUTLOOK_NS): p for p in parse(response.content).iterfind(
        "o:Response/o:Account/o:Protocol", OUTLOOK_NS)}

    def field(kind: str, name: str) -> str:
        return protocols[kind].findtext(f"o:{name}", "", namespaces=OUTLOOK_NS)

    assert field("IMAP", "LoginName") == f"paul@{alias.name}"
    assert field("SMTP", "Encryption") == "TLS"
    assert imap_ok(field("IMAP", "Server"), int(field("IMAP", "Port")), field("IMAP", "LoginName"))
    assert pop3_ok(field("POP3", "Server"), int(field("POP3", "Port")), field("POP3", "LoginName"))
    submit(e2e, field("SMTP", "Server"), int(field("SMTP", "Port")), field("SMTP", "LoginName"),
           f"outlook {secrets.token_hex(3)}")

    client = Client()
    login_mailbox(client, mailbox)
    profile = plistlib.loads(client.get(reverse("screens:me_mobileconfig")).content)
    account = profile["PayloadContent"][0]
    assert imap_ok(account["IncomingMailServerHostName"], account["IncomingMailServerPortNumber"],
                   account["IncomingMailServerUsername"])
    submit(e2e, account["OutgoingMailServerHostName"], account["OutgoingMailServerPortNumber"],
           account["OutgoingMailServerUsername"], f"apple {secrets.token_hex(3)}")
