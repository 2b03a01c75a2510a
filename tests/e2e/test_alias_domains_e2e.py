"""Alias domains on the real stack (issue 17): every address of a domain answers at its alias's
name too, with real mail through the real Postfix, Dovecot and mlmmj.

x@alias lands in x@real's mailbox; a forward, a robot and a list of real answer at alias (the
list's +subscribe too); an unknown name of alias is refused at RCPT TO (550: no accept-then-
bounce), a disabled or full mailbox too; real's catch-all takes the unknown names; POP3 and IMAP
logins at alias open x@real's mailbox with x@real's password, and refuse a wrong one. An alias
not yet proven is not served (its mail leaves for its real MX, the stack's sink; no login), nor
one removed.

Failed logins come from their own 127.x source (Dovecot penalises an address that failed).
"""

from __future__ import annotations

import imaplib
import poplib
import secrets

import pytest

from hosting.models import Domain, Plan, VerifiedHow
from lists.services import list_create
from mail.services import catchall_set, forward_create, mailbox_set_access, robot_create
from provisioning.domains import alias_domain_create, domain_delete
from provisioning.models import RetiredDomain
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import (
    SMTPRefused,
    fresh_ip,
    imap_login,
    imap_subjects,
    pop3_messages,
    send,
    sink_messages,
    wait_for,
    with_subject,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def outsider(label: str) -> str:
    """An outside address no other test of the session uses (the sink is shared)."""
    return f"{label}-{secrets.token_hex(3)}@outside.test"


def alias_of(e2e: E2E, real: Domain, *, proven: bool = True) -> Domain:
    Plan.objects.filter(pk=e2e.pack.plan_id).update(max_alias_domains=-1)
    alias = alias_domain_create(domain=real, name=f"alias{secrets.token_hex(4)}.test", acting_user=e2e.operator,
                                verified_how=VerifiedHow.HAND if proven else None)
    e2e.wait_applied(alias)
    return alias


def subjects(e2e: E2E, address: str, password: str = PASSWORD) -> list[str]:
    return [str(m["Subject"]) for m in pop3_messages(e2e.stack, address, password)]


def test_every_address_of_a_domain_answers_at_its_alias(e2e: E2E) -> None:
    real = e2e.domain("real")
    e2e.mailbox(real, "bob")
    carl = e2e.mailbox(real, "carl")
    e2e.mailbox(real, "jack", quota_mb=1)
    client, stranger, newcomer = outsider("client"), outsider("stranger"), outsider("newcomer")
    forward_create(domain=real, local_part="sales", destinations=[client], acting_user=e2e.operator)
    robot_create(domain=real, local_part="info", subject="Bien reçu", message="We will answer soon.",
                 acting_user=e2e.operator)
    list_create(domain=real, name="news", owner=f"bob@{real.name}", prefix="[news]", sub_confirm=False,
                acting_user=e2e.operator)  # its owner is subscribed
    mailbox_set_access(mailbox=carl, enabled=False, acting_user=e2e.operator)
    e2e.wait_applied(real)
    alias = alias_of(e2e, real)
    at = f"@{alias.name}"
    stack = e2e.stack

    # A mailbox: in bob@real's box, read over POP3 as bob@real.
    send(stack, stranger, f"bob{at}", "to the alias", "hello bob\n")
    wait_for(lambda: "to the alias" in subjects(e2e, f"bob@{real.name}"), timeout=30)
    # A forward of real answers at alias.
    send(stack, stranger, f"sales{at}", "forwarded", "to sales\n")
    wait_for(lambda: with_subject(sink_messages(stack, client), "forwarded"), timeout=30)
    # A robot of real answers at alias, and stores nothing.
    send(stack, stranger, f"info{at}", "a question", "anyone there?\n")
    replies = wait_for(lambda: sink_messages(stack, stranger), timeout=30)
    assert [str(m["Subject"]) for m in replies] == ["Bien reçu"]
    # A list of real: a subscriber's post to news@alias is distributed; news+subscribe@alias subscribes.
    send(stack, f"bob@{real.name}", f"news{at}", "list post", "to all\n")
    wait_for(lambda: "[news] list post" in subjects(e2e, f"bob@{real.name}"), timeout=30)
    send(stack, newcomer, f"news+subscribe{at}", "subscribe", "")
    wait_for(lambda: sink_messages(stack, newcomer), timeout=30)  # mlmmj's welcome (no confirmation asked)
    # An unknown name, and a disabled mailbox: refused at RCPT TO, nothing accepted to bounce later.
    for refused in (f"nobody{at}", f"carl{at}"):
        with pytest.raises(SMTPRefused) as error:
            send(stack, stranger, refused, "refused", "x\n")
        assert (error.value.stage, error.value.code) == ("RCPT", 550), refused
    assert "5.2.1" in error.value.text  # carl's: disabled, as at carl@real
    # Too big for jack@real's quota: refused at RCPT TO at his alias name too (quota-status asks
    # Dovecot's userdb about jack@alias, before Postfix rewrites it).
    with pytest.raises(SMTPRefused) as error:
        send(stack, stranger, f"jack{at}", "too big", "x" * (2 * 1024 * 1024))
    assert (error.value.stage, error.value.code) == ("RCPT", 552)

    # Logins at alias are bob@real's: his mailbox, his password; a wrong password is refused.
    assert "to the alias" in subjects(e2e, f"bob{at}")
    assert "to the alias" in imap_subjects(stack, f"bob{at}", PASSWORD)
    imap = imap_login(stack, f"Bob{at.upper()}", PASSWORD)
    imap.logout()
    with pytest.raises(poplib.error_proto):
        pop3_messages(stack, f"bob{at}", "wrong-password", source_ip=fresh_ip())
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(stack, f"bob{at}", "wrong-password", source_ip=fresh_ip())
    with pytest.raises(poplib.error_proto):  # a name real does not have
        pop3_messages(stack, f"nobody{at}", PASSWORD, source_ip=fresh_ip())
    # Submission with the alias's login, sending as either name.
    send(stack, f"bob{at}", client, "sent as the alias", "from bob\n", port=stack.config.submission_port,
         login=(f"bob{at}", PASSWORD))
    wait_for(lambda: with_subject(sink_messages(stack, client), "sent as the alias"), timeout=30)


def test_a_catch_all_an_unproven_alias_and_a_removed_one(e2e: E2E) -> None:
    real = e2e.domain("real")
    e2e.mailbox(real, "bob")
    catchall_set(domain=real, mode="mailbox", target="bob", acting_user=e2e.operator)
    e2e.wait_applied(real)
    alias = alias_of(e2e, real)
    unproven = alias_of(e2e, real, proven=False)
    stack = e2e.stack
    stranger = outsider("stranger")

    # The catch-all of real takes unknown@alias.
    send(stack, stranger, f"nobody@{alias.name}", "caught", "by real's catch-all\n")
    wait_for(lambda: "caught" in subjects(e2e, f"bob@{real.name}"), timeout=30)

    # An unproven alias is not served: its mail leaves for its own MX (the sink), no login.
    send(stack, stranger, f"bob@{unproven.name}", "not served", "x\n")
    wait_for(lambda: with_subject(sink_messages(stack, f"bob@{unproven.name}"), "not served"), timeout=30)
    with pytest.raises(poplib.error_proto):
        pop3_messages(stack, f"bob@{unproven.name}", PASSWORD, source_ip=fresh_ip())

    # Removed: served no more (mail leaves as for any domain not hosted here), no login.
    domain_delete(domain=alias, acting_user=e2e.operator)
    wait_for(lambda: RetiredDomain.objects.filter(name=alias.name, confirmed=True).exists(), timeout=30)
    send(stack, stranger, f"bob@{alias.name}", "removed", "x\n")
    wait_for(lambda: with_subject(sink_messages(stack, f"bob@{alias.name}"), "removed"), timeout=30)
    with pytest.raises(poplib.error_proto):
        pop3_messages(stack, f"bob@{alias.name}", PASSWORD, source_ip=fresh_ip())
    assert not {"removed", "not served"} & set(subjects(e2e, f"bob@{real.name}"))
