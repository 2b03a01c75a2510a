"""Changes made through the panel's service functions reach the real mail stack through real
Celery workers, and real mail proves them: SMTP in, POP3 and IMAP out, the sink for the outside."""

from __future__ import annotations

import poplib

import pytest

from mail.services import mailbox_set_password
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import fresh_ip, imap_subjects, pop3_messages, send, wait_for, with_subject

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def subjects_in(e2e: E2E, address: str, password: str = PASSWORD) -> list[str]:
    return [str(m["Subject"]) for m in pop3_messages(e2e.stack, address, password)]


def test_new_mailbox_receives_mail_and_logs_in_with_the_panel_password(e2e: E2E) -> None:
    domain = e2e.domain("new")
    e2e.mailbox(domain, "alice")
    e2e.wait_applied(domain)
    address = f"alice@{domain.name}"
    send(e2e.stack, "someone@outside.test", address, "hello alice", "first mail")
    wait_for(lambda: "hello alice" in subjects_in(e2e, address))
    assert "hello alice" in imap_subjects(e2e.stack, address, PASSWORD)


def test_password_change_takes_effect_and_the_old_one_fails(e2e: E2E) -> None:
    domain = e2e.domain("pw")
    mailbox = e2e.mailbox(domain, "bob")
    e2e.wait_applied(domain)
    address = f"bob@{domain.name}"
    assert pop3_messages(e2e.stack, address, PASSWORD) == []
    mailbox_set_password(mailbox=mailbox, password="Brand-New-Secret-9", acting_user=e2e.operator)
    e2e.wait_applied(domain)
    assert pop3_messages(e2e.stack, address, "Brand-New-Secret-9") == []
    with pytest.raises(poplib.error_proto):
        pop3_messages(e2e.stack, address, PASSWORD, source_ip=fresh_ip())


def test_unknown_address_is_refused_with_550(e2e: E2E) -> None:
    from tests.e2e.mailclient import SMTPRefused

    domain = e2e.domain("unknown")
    e2e.wait_applied(domain)
    with pytest.raises(SMTPRefused) as refused:
        send(e2e.stack, "someone@outside.test", f"nobody@{domain.name}", "lost", "x")
    assert refused.value.code == 550


def test_sink_sees_external_forward(e2e: E2E) -> None:
    from tests.e2e.mailclient import sink_messages

    domain = e2e.domain("fw")
    e2e.mailbox(domain, "carol")
    e2e.wait_applied(domain)
    from mail.services import forward_create

    forward_create(domain=domain, local_part="sales", destinations=["carol", "boss@partner.test"],
                   acting_user=e2e.operator)
    e2e.wait_applied(domain)
    send(e2e.stack, "client@outside.test", f"sales@{domain.name}", "order 42", "please")
    wait_for(lambda: with_subject(sink_messages(e2e.stack, "boss@partner.test"), "order 42"))
    wait_for(lambda: "order 42" in subjects_in(e2e, f"carol@{domain.name}"))
