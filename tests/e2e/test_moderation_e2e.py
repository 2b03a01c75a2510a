"""Moderation from the panel on the real stack: mlmmj holds a post or a subscription request, the
host reports it, the domain's admin approves or rejects it on the list's moderation page, and
real mail (POP3, the sink) or mlmmj's own subscriber list proves what mlmmj did with it."""

from __future__ import annotations

import smtplib
import subprocess
import time

import pytest
from celery import current_app
from django.test import Client
from django.urls import reverse

from hosting.models import Domain
from lists.models import HeldMessage, ListMember, MailingList, Posting
from lists.services import list_create, list_member_add
from mail.models import Mailbox
from mailhost import contract
from mailhost.stack import HOST
from tests.conftest import login_mailbox
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import CLIENT_NAME, pop3_messages, send, sink_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def admin_of(domain: Domain) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    login_mailbox(client, Mailbox.objects.get(domain=domain, local_part="postmaster"))
    return client


def subjects(e2e: E2E, address: str) -> list[str]:
    return [str(m["Subject"]) for m in pop3_messages(e2e.stack, address, PASSWORD)]


def sink_subjects(e2e: E2E, address: str) -> list[str]:
    return [str(m["Subject"]) for m in sink_messages(e2e.stack, address)]


def queue_url(mailing_list: MailingList) -> str:
    return reverse("screens:moderation", args=[mailing_list.domain_id, mailing_list.pk])


def ask_host(e2e: E2E, mailing_list: MailingList) -> None:
    """What the moderation page asks the host (the page itself asks at most every few seconds)."""
    current_app.send_task(contract.REPORT_HELD, args=[{"domain": mailing_list.domain.name, "list": mailing_list.name}],
                          queue=e2e.host.queue)


def held(e2e: E2E, mailing_list: MailingList, **match: str) -> HeldMessage:
    """Wait until the panel lists a held item of the list matching `match`; return it."""
    def found() -> HeldMessage | None:
        ask_host(e2e, mailing_list)
        return wait_for_row(mailing_list, match)

    return wait_for(found, timeout=30, interval=0.5)


def wait_for_row(mailing_list: MailingList, match: dict[str, str], seconds: float = 1.0) -> HeldMessage | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = HeldMessage.objects.filter(mailing_list=mailing_list, **match).first()
        if row is not None:
            return row
        time.sleep(0.05)
    return None


def decide(client: Client, item: HeldMessage, decision: str) -> None:
    url = reverse("screens:held_decide", args=[item.mailing_list.domain_id, item.mailing_list_id, item.pk])
    response = client.post(url, {"decision": decision})
    assert response.status_code == 302, response.content.decode()[:2000]
    item.refresh_from_db()
    assert item.decision == decision


def gone(e2e: E2E, item: HeldMessage) -> None:
    """Wait until the host's report no longer has the item (the panel then drops it)."""
    def dropped() -> bool:
        if HeldMessage.objects.filter(pk=item.pk).exists():
            ask_host(e2e, item.mailing_list)
            time.sleep(0.5)
            return not HeldMessage.objects.filter(pk=item.pk).exists()
        return True

    wait_for(dropped, timeout=30, interval=0.2)


def moderated_list(e2e: E2E, label: str) -> tuple[Domain, MailingList]:
    domain = e2e.domain(label)
    e2e.mailbox(domain, "owner")
    e2e.mailbox(domain, "reader")
    news = list_create(domain=domain, name="news", owner=f"owner@{domain.name}", prefix="[news]",
                       posting=Posting.MODERATED, sub_confirm=False, acting_user=e2e.operator)
    for address in (f"reader@{domain.name}", "friend@outside.test"):
        list_member_add(mailing_list=news, address=address, acting_user=e2e.operator)
    e2e.wait_applied(domain)
    return domain, news


def test_held_posts_approved_rejected_and_decided_by_mail(e2e: E2E) -> None:
    domain, news = moderated_list(e2e, "mod")
    owner, client = f"owner@{domain.name}", admin_of(domain)
    send(e2e.stack, owner, f"news@{domain.name}", "please approve", "the first post")
    send(e2e.stack, owner, f"news@{domain.name}", "please reject", "the second post")
    # Opening the page asks the host (at most every few seconds); the items show once it reported.
    wait_for(lambda: client.get(queue_url(news)).status_code == 200
             and HeldMessage.objects.filter(mailing_list=news).count() == 2, timeout=30, interval=0.5)
    approve = held(e2e, news, subject__endswith="please approve")
    reject = held(e2e, news, subject__endswith="please reject")
    assert approve.sender == owner and approve.preview.startswith("the first post") and approve.kind == "post"
    page = client.get(queue_url(news)).content.decode()
    assert "please approve" in page and "please reject" in page
    # mlmmj asked its moderator by mail too, with the same cookie.
    wait_for(lambda: [s for s in subjects(e2e, owner) if f"news@{domain.name}: please approve" in s], timeout=30)

    decide(client, approve, "approve")
    assert "Approved, being sent to the mail host" in client.get(queue_url(news)).content.decode()
    wait_for(lambda: "[news] please approve" in subjects(e2e, f"reader@{domain.name}"), timeout=30)
    wait_for(lambda: "[news] please approve" in sink_subjects(e2e, "friend@outside.test"), timeout=30)
    gone(e2e, approve)

    decide(client, reject, "reject")
    gone(e2e, reject)
    # Decided in the panel: a moderator's mail on the same cookie finds nothing.
    send(e2e.stack, owner, f"news+release-{reject.key}@{domain.name}", "Re: moderate", "")

    # Decided by mail: the moderator answers mlmmj's mail; the panel drops the item.
    send(e2e.stack, owner, f"news@{domain.name}", "released by mail", "the third post")
    by_mail = held(e2e, news, subject__endswith="released by mail")
    send(e2e.stack, owner, f"news+release-{by_mail.key}@{domain.name}", "Re: moderate", "")
    wait_for(lambda: "[news] released by mail" in subjects(e2e, f"reader@{domain.name}"), timeout=30)
    current_app.send_task(contract.MAINTAIN, queue=e2e.host.queue)  # the agent's beat
    wait_for(lambda: not HeldMessage.objects.filter(pk=by_mail.pk).exists(), timeout=30, interval=0.2)
    # The rejected post went out before the third, if at all: it never reached anyone.
    time.sleep(1)
    assert "[news] please reject" not in subjects(e2e, f"reader@{domain.name}")
    assert "[news] please reject" not in sink_subjects(e2e, "friend@outside.test")
    assert subjects(e2e, f"reader@{domain.name}").count("[news] please approve") == 1


def test_a_held_subscription_request_approved_in_the_panel_makes_a_member(e2e: E2E) -> None:
    domain = e2e.domain("smod")
    e2e.mailbox(domain, "owner")
    club = list_create(domain=domain, name="club", owner=f"owner@{domain.name}", sub_confirm=False,
                       sub_moderate=True, acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, "newcomer@outside.test", f"club+subscribe@{domain.name}", "subscribe", "")
    send(e2e.stack, "refused@outside.test", f"club+subscribe@{domain.name}", "subscribe", "")
    request = held(e2e, club, sender="newcomer@outside.test")
    refused = held(e2e, club, sender="refused@outside.test")
    assert request.kind == "subscription"
    client = admin_of(domain)
    assert "Subscription request" in client.get(queue_url(club)).content.decode()
    waiting = wait_for(lambda: sink_messages(e2e.stack, "newcomer@outside.test"), timeout=30)  # "awaiting permission"
    decide(client, request, "approve")
    decide(client, refused, "reject")
    wait_for(lambda: ListMember.objects.filter(mailing_list=club, address="newcomer@outside.test").exists(),
             timeout=30, interval=0.2)
    listdir = e2e.stack.config.mlmmj_root / domain.name / "club"
    members = subprocess.run(["/usr/bin/mlmmj-list", "-L", str(listdir)], capture_output=True, text=True,
                             check=True).stdout.split()
    assert "newcomer@outside.test" in members and "refused@outside.test" not in members
    wait_for(lambda: len(sink_messages(e2e.stack, "newcomer@outside.test")) > len(waiting), timeout=30)  # welcome
    gone(e2e, request)
    gone(e2e, refused)
    assert not ListMember.objects.filter(mailing_list=club, address="refused@outside.test").exists()
    e2e.wait_applied(domain)  # the panel's revision with the new member, applied without a change


HOSTILE = (
    b"From: =?utf-8?q?=3Cscript=3Ealert=280=29=3C/script=3E?= <OWNER>\r\n"
    b"To: news@DOMAIN\r\n"
    b"Subject: <script>alert(1)</script> =?utf-8?b?PGltZyBzcmM9eCBvbmVycm9yPWFsZXJ0KDIpPg==?="
    b" =?x-junk?q?=FF=FE?= =?utf-8?q?broken\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="zz"\r\n\r\n'
    b"--zz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"<b>bold</b> <iframe src=//evil.test></iframe> \x1b[2J\r\n"
    b"--zz\r\nContent-Type: text/html\r\n\r\n<html><body onload=alert(3)>HTML PART</body></html>\r\n"
    b"--zz--\r\n"
)


def test_hostile_held_content_is_shown_escaped(e2e: E2E) -> None:
    domain, news = moderated_list(e2e, "hst")
    owner = f"owner@{domain.name}"
    raw = HOSTILE.replace(b"OWNER", owner.encode()).replace(b"DOMAIN", domain.name.encode())
    with smtplib.SMTP(HOST, e2e.stack.config.smtp_port, CLIENT_NAME, timeout=10) as smtp:
        smtp.sendmail(owner, [f"news@{domain.name}"], raw)
    item = held(e2e, news, sender=owner)
    # mlmmj added the prefix before holding it: the subject is the one that would go out.
    assert item.subject.startswith("[news] <script>alert(1)</script> <img src=x onerror=alert(2)>")
    assert "HTML PART" not in item.preview and "\x1b" not in item.preview
    body = admin_of(domain).get(queue_url(news)).content.decode()
    for markup in ("<script>alert", "<img src=x", "<iframe", "<b>bold", "onload="):
        assert markup not in body, markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(2)&gt;" in body
    assert "&lt;b&gt;bold&lt;/b&gt; &lt;iframe src=//evil.test&gt;&lt;/iframe&gt;" in body
    decide(admin_of(domain), item, "reject")
    gone(e2e, item)
