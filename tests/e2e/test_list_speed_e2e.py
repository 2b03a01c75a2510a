"""A list post leaves in VERP batches through the smtpd for mlmmj (README "Lists at the speed of
Postfix"): one SMTP transaction per mailhost.lists.VERP_RECIPIENTS members, Postfix writing each
copy's return path; a member the public port would refuse at RCPT (an unknown name, a disabled
mailbox, a full one) stalls no batch: Postfix bounces it to its VERP address and mlmmj records
that member's bounce. That port takes loopback's 127.0.0.1 alone."""

from __future__ import annotations

import re
import smtplib
from pathlib import Path

import pytest

from lists.imports import member_import
from lists.services import list_create
from mail.services import mailbox_set_access
from mailhost.lists import VERP_RECIPIENTS
from mailhost.stack import HOST
from tests.e2e.conftest import E2E
from tests.e2e.mailclient import CLIENT_NAME, send, sink_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OUTSIDE = VERP_RECIPIENTS + 100  # two batches of outside members, and the local ones


def transactions(log: Path, offset: int, domain: str) -> list[int]:
    """The recipients of each transaction Postfix queued for the list's bounce sender (qmgr)."""
    with log.open(encoding="utf-8", errors="replace") as file:
        file.seek(offset)
        text = file.read()
    return [int(n) for n in re.findall(rf"from=<news\+bounces-\d+@{re.escape(domain)}>, size=\d+, nrcpt=(\d+)", text)]


def test_a_post_goes_out_in_verp_batches_and_refused_members_bounce_without_stalling_it(e2e: E2E) -> None:
    domain = e2e.domain("verp")
    e2e.mailbox(domain, "owner")
    carl = e2e.mailbox(domain, "carl")  # disabled below: the public port answers 550 at RCPT
    e2e.mailbox(domain, "jack", quota_mb=1)  # filled below: Dovecot refuses the post (552)
    news = list_create(domain=domain, name="news", owner=f"owner@{domain.name}", acting_user=e2e.operator)
    outside = [f"reader{n}@verp{n % 7}.test" for n in range(OUTSIDE)]
    local = [f"{name}@{domain.name}" for name in ("ghost", "carl", "jack")]
    member_import(mailing_list=news, kind="subscriber", text="\n".join(outside + local), acting_user=e2e.operator)
    mailbox_set_access(mailbox=carl, enabled=False, acting_user=e2e.operator)
    e2e.wait_applied(domain)
    stack = e2e.stack
    path = stack.config.mlmmj_root / domain.name / "news"
    control = path / "control"
    assert (control / "verp").read_text() == "postfix\n"
    assert (control / "maxverprecips").read_text() == f"{VERP_RECIPIENTS}\n"
    assert (control / "smtpport").read_text() == f"{stack.config.list_smtp_port}\n"
    assert (control / "relayhost").read_text() == "127.0.0.1\n"
    send(stack, "filler@outside.test", f"jack@{domain.name}", "filler", ("x" * 99 + "\n") * 10_000)
    log = stack.config.postfix_log
    offset = log.stat().st_size

    send(stack, f"owner@{domain.name}", f"news@{domain.name}", "to all", "hello\n" + ("y" * 99 + "\n") * 500)
    for address in (outside[0], outside[VERP_RECIPIENTS - 1], outside[-1]):
        wait_for(lambda address=address: sink_messages(stack, address), timeout=60)
    copy = sink_messages(stack, outside[-1])[0]
    assert re.fullmatch(rf"<news\+bounces-\d+-reader{OUTSIDE - 1}=verp\d\.test@{re.escape(domain.name)}>",
                        copy["Return-Path"])  # Postfix's VERP, in mlmmj's own form
    # Batches, not one transaction a member: the whole list in ceil(members / batch) transactions.
    members = OUTSIDE + len(local) + 1  # and the owner
    wait_for(lambda: sum(transactions(log, offset, domain.name)) >= members, timeout=60)
    assert sorted(transactions(log, offset, domain.name), reverse=True) == [
        VERP_RECIPIENTS, members - VERP_RECIPIENTS]
    # Each refused member came back as a bounce of that member (nothing requeued, nothing stalled).
    for address in local:
        wait_for((path / "bounce" / address.replace("@", "=")).exists, timeout=60)
    assert not any((path / "requeue").iterdir()) if (path / "requeue").is_dir() else True
    wait_for(lambda: all(sink_messages(stack, address) for address in outside), timeout=120)


def test_the_smtpd_for_mlmmj_takes_xverp_from_127_0_0_1_alone(e2e: E2E) -> None:
    stack = e2e.stack
    # The public port refuses XVERP (no client is authorized), the one for mlmmj takes it.
    with smtplib.SMTP(HOST, stack.config.smtp_port, CLIENT_NAME, timeout=10) as smtp:
        assert smtp.docmd("MAIL FROM:<news+bounces-1@list.test> XVERP=-=")[0] == 555
    with smtplib.SMTP(HOST, stack.config.list_smtp_port, CLIENT_NAME, timeout=10) as smtp:
        assert smtp.docmd("MAIL FROM:<news+bounces-1@list.test> XVERP=-=")[0] == 250
        assert smtp.docmd("RCPT TO:<someone@far.test>")[0] == 250
        smtp.rset()
    # Another loopback address is not mlmmj: refused, for any recipient.
    with smtplib.SMTP(HOST, stack.config.list_smtp_port, CLIENT_NAME, timeout=10,
                      source_address=("127.0.0.2", 0)) as smtp:
        smtp.docmd("MAIL FROM:<someone@far.test>")
        code, text = smtp.docmd("RCPT TO:<other@far.test>")
        assert code == 554, text
