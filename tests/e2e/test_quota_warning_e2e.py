"""Quota warnings by real mail: a mailbox with a small quota is filled by messages delivered through
the stack's Postfix and Dovecot, one at a time; when a delivery takes it past 80 % of its quota,
Dovecot's quota_warning runs mailhost.quota_warning, which puts exactly one warning in its INBOX
(read over IMAP, as a client does) in its customer's language; past 95 % the second one.

The usage is the one Dovecot reports over IMAP (GETQUOTAROOT, the imap_quota plugin): what the
warnings are computed from.
"""

from __future__ import annotations

import re
import secrets
from email.message import EmailMessage

import pytest

from hosting.models import Domain, Language, Plan
from hosting.services import customer_create, pack_create
from mail.models import Mailbox
from provisioning.domains import domain_create, domain_verify
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import _parse, imap_login, send, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

QUOTA_MB = 1
LINE = "x" * 70  # 72 bytes a line with its CRLF (Dovecot counts virtual sizes: quota_vsizes)


def inbox(e2e: E2E, address: str) -> tuple[list[EmailMessage], int, int]:
    """The INBOX's messages (headers only), and the storage used and its limit in KiB (GETQUOTAROOT)."""
    imap = imap_login(e2e.stack, address, PASSWORD)
    try:
        imap.select("INBOX", readonly=True)
        _typ, data = imap.search(None, "ALL")
        messages = []
        for num in data[0].split():
            _typ, parts = imap.fetch(num, "(BODY.PEEK[HEADER])")
            raw: bytes = parts[0][1]  # type: ignore[index]
            message = _parse(raw)
            message.raw_header = raw  # type: ignore[attr-defined]  # the bytes as Dovecot stored them
            messages.append(message)
        _typ, quota = imap.getquotaroot("INBOX")
        found = re.search(rb"STORAGE (\d+) (\d+)", b" ".join(q for q in quota[1] if isinstance(q, bytes)))
        assert found, quota
        return messages, int(found.group(1)), int(found.group(2))
    finally:
        imap.logout()


def warnings(messages: list[EmailMessage]) -> list[EmailMessage]:
    return [m for m in messages if m.get("Auto-Submitted") == "auto-generated"
            and str(m.get("From", "")).startswith("postmaster@")]


def fill_once(e2e: E2E, address: str, count: int, kib: int) -> tuple[list[EmailMessage], float]:
    """Deliver one message of about `kib` KiB through the stack; wait until it is in the INBOX (one
    more than `count` fill messages there); return the INBOX and its usage in percent."""
    send(e2e.stack, "filler@outside.test", address, f"fill {count + 1}", (LINE + "\n") * (kib * 1024 // 72))

    def delivered() -> tuple[list[EmailMessage], float] | None:
        messages, used, limit = inbox(e2e, address)
        fills = [m for m in messages if str(m["Subject"]).startswith("fill ")]
        return (messages, 100 * used / limit) if len(fills) == count + 1 else None

    return wait_for(delivered, timeout=30, interval=0.2)


def fill_past(e2e: E2E, address: str, percent: int, start: int, warned: int) -> int:
    """Deliver messages (about 7 % of the quota each) until the usage is at least `percent`; until
    then, the INBOX holds `warned` warnings, no more. Returns the fill messages sent so far."""
    count = start
    while True:
        messages, used = fill_once(e2e, address, count, kib=QUOTA_MB * 1024 * 7 // 100)
        count += 1
        if used >= percent:
            return count
        assert len(warnings(messages)) == warned, (used, [str(m["Subject"]) for m in warnings(messages)])


def french_and_english_customers(e2e: E2E) -> dict[str, Domain]:
    """A domain of the e2e customer (French, the default) and one of an English customer."""
    english = customer_create(reseller=None, name="E2E English", language=Language.ENGLISH, acting_user=e2e.operator)
    plan = Plan.objects.get(pk=e2e.pack.plan_id)
    pack = pack_create(customer=english, plan=plan, mail_host=e2e.host, acting_user=e2e.operator)
    english_domain = domain_create(pack=pack, name=f"en{secrets.token_hex(4)}.test", acting_user=e2e.operator)
    domain_verify(domain=english_domain, acting_user=e2e.operator)
    return {"fr": e2e.domain("fr"), "en": english_domain}


def test_one_warning_past_80_then_one_past_95_in_the_customers_language(e2e: E2E) -> None:
    domains = french_and_english_customers(e2e)
    boxes: dict[str, Mailbox] = {lang: e2e.mailbox(domain, "full", quota_mb=QUOTA_MB)
                                 for lang, domain in domains.items()}
    for domain in domains.values():
        e2e.wait_applied(domain)
    french = f"full@{domains['fr'].name}"
    english = f"full@{domains['en'].name}"

    # French: under 80 %, nothing; past it, one warning in French that says 80 % and the quota.
    count = fill_past(e2e, french, 80, start=0, warned=0)
    [first] = wait_for(lambda: warnings(inbox(e2e, french)[0]), timeout=30)
    assert str(first["Subject"]) == f"Votre boîte {french} est pleine à 80\N{NO-BREAK SPACE}%"
    assert first["Content-Language"] == "fr" and first["To"] == french
    assert max(first.raw_header) < 128  # type: ignore[attr-defined]  # every header in ASCII: RFC 2047

    # Between 80 % and 95 %: that warning alone; past 95 %, the second.
    fill_past(e2e, french, 95, start=count, warned=1)
    both = wait_for(lambda: (found := warnings(inbox(e2e, french)[0])) and len(found) == 2 and found, timeout=30)
    assert [str(m["Subject"]) for m in both] == [
        f"Votre boîte {french} est pleine à 80\N{NO-BREAK SPACE}%",
        f"Votre boîte {french} est pleine à 95\N{NO-BREAK SPACE}%",
    ]

    # English: the customer's language, for the same crossing.
    fill_past(e2e, english, 80, start=0, warned=0)
    [warning] = wait_for(lambda: warnings(inbox(e2e, english)[0]), timeout=30)
    assert str(warning["Subject"]) == f"Your mailbox {english} is 80 % full"
    assert warning["Content-Language"] == "en"
    assert boxes  # both mailboxes were made through the panel's services
