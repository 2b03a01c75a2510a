"""A renamed mailbox keeps its mail, on the real stack: mail delivered to alice@ is read over IMAP
as alicia@ with the same password, mail to alicia@ arrives, mail to alice@ is refused (or goes to
the catch-all), the old home is gone; the rename's document delivered twice moves the mail once."""

from __future__ import annotations

import imaplib
from pathlib import Path

import pytest

from hosting.models import Domain
from hostlink import push, snapshot
from mail.models import Mailbox
from mail.services import catchall_set, mailbox_rename
from provisioning.models import DomainSync
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import SMTPRefused, fresh_ip, imap_login, imap_subjects, send, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def subjects(e2e: E2E, address: str) -> list[str]:
    return sorted(imap_subjects(e2e.stack, address, PASSWORD))


def alice_with_two_messages(e2e: E2E, label: str) -> tuple[Domain, Mailbox]:
    domain = e2e.domain(label)
    alice = e2e.mailbox(domain, "alice")
    e2e.wait_applied(domain)
    for subject in ("first", "second"):
        send(e2e.stack, "friend@outside.test", f"alice@{domain.name}", subject, f"the {subject} message")
    wait_for(lambda: subjects(e2e, f"alice@{domain.name}") == ["first", "second"])
    return domain, alice


def home(e2e: E2E, domain: Domain, local: str) -> Path:
    return e2e.stack.config.vmail_root / domain.name / local


def test_a_renamed_mailbox_keeps_its_mail_and_its_password(e2e: E2E) -> None:
    domain, alice = alice_with_two_messages(e2e, "rename")
    mailbox_rename(mailbox=alice, new_local_part="alicia", acting_user=e2e.operator)
    e2e.wait_applied(domain)
    old, new = f"alice@{domain.name}", f"alicia@{domain.name}"

    assert subjects(e2e, new) == ["first", "second"]  # over IMAP, as alicia@, the same password
    send(e2e.stack, "friend@outside.test", new, "third", "to the new name")
    wait_for(lambda: subjects(e2e, new) == ["first", "second", "third"])
    with pytest.raises(SMTPRefused) as refused:
        send(e2e.stack, "friend@outside.test", old, "lost", "to the old name")
    assert refused.value.code == 550
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(e2e.stack, old, PASSWORD, source_ip=fresh_ip())
    assert not home(e2e, domain, "alice").exists() and home(e2e, domain, "alicia").is_dir()
    assert [p.name for p in home(e2e, domain, "alice").parent.iterdir()] == ["alicia"]  # nothing left aside
    assert Mailbox.objects.get(pk=alice.pk).renamed_from == ""  # confirmed: the old name is free again

    # With a catch-all to postmaster, mail to the old name goes there.
    catchall_set(domain=domain, mode="mailbox", target="postmaster", acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, "friend@outside.test", old, "for the catch-all", "to the old name again")
    wait_for(lambda: "for the catch-all" in subjects(e2e, f"postmaster@{domain.name}"))
    assert subjects(e2e, new) == ["first", "second", "third"]


def test_the_rename_delivered_twice_moves_the_mail_once(e2e: E2E) -> None:
    """The agent is down while the rename is pushed; the same revision is queued a second time
    (the whole domain, as a resend would); both are applied when it is back, and once more after."""
    domain, alice = alice_with_two_messages(e2e, "twice")
    agent = e2e.workers.agent
    agent.stop()
    try:
        mailbox_rename(mailbox=alice, new_local_part="alicia", acting_user=e2e.operator)
        revision = Domain.objects.values_list("revision", flat=True).get(pk=domain.pk)
        wait_for(lambda: DomainSync.objects.get(domain=domain).sent_revision >= revision)  # the delta is queued
        again = snapshot.build(Domain.objects.get(pk=domain.pk))
        assert again["revision"] == revision
        assert [m["renamed_from"] for m in again["mailboxes"] if m["local_part"] == "alicia"] == ["alice"]
        push.send(e2e.host, again)
    finally:
        agent.restart()
    e2e.wait_applied(domain)
    new = f"alicia@{domain.name}"
    assert subjects(e2e, new) == ["first", "second"]
    send(e2e.stack, "friend@outside.test", new, "third", "after the rename")
    wait_for(lambda: subjects(e2e, new) == ["first", "second", "third"])

    push.send(e2e.host, again)  # a third time, now that mail arrived under the new name
    e2e.mailbox(domain, "marker")  # applied after it: one queue, one worker
    e2e.wait_applied(domain)
    assert subjects(e2e, new) == ["first", "second", "third"]
    assert not home(e2e, domain, "alice").exists()
    assert sorted(p.name for p in home(e2e, domain, "alice").parent.iterdir()) == ["alicia"]
