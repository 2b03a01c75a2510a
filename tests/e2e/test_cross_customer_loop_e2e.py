"""A forward loop across two customers, by real mail (issue 15, item 8).

The panel no longer refuses a forward because of what another customer's address is (that would
tell an outsider that the address forwards): a loop across customers is left to the mail
servers' own loop detection. Here customer A's forward points at customer B's forward, which
points back at A's, both made through the real services and applied by the real workers.

What Postfix does (measured here): its cleanup expands the virtual aliases of the message's
recipient, finds the nesting (`virtual_alias_recursion_limit`), logs "unreasonable
virtual_alias_maps map nesting ... message not accepted" and answers the SMTP client
`451 4.6.0 Alias expansion error` at DATA: the message is never accepted, so it cannot spin:
nothing is queued, nothing delivered, no bounce leaves the host; the sending server keeps the
message and returns it to its sender (a DSN) when its retries run out, as for any server that
keeps refusing. A loop whose addresses keep a copy (a mailbox that forwards with "save a copy")
is no loop for Postfix: each address is expanded once, the mail is delivered once.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time

import pytest

from hosting.models import Plan
from hosting.services import customer_create, pack_create
from mail.services import forward_create, mailbox_set_routing
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import SMTPRefused, pop3_messages, send, sink_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SENDER = "someone@outside.test"


def queued(e2e: E2E) -> list[dict]:
    """The messages in Postfix's queue (postqueue -j: one JSON object a line)."""
    output = subprocess.run(["postqueue", "-c", str(e2e.stack.config.postfix_dir), "-j"], check=True,
                            capture_output=True, text=True).stdout
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def other_customer(e2e: E2E) -> E2E:
    """The same helper for a second customer, with its own pack on the same mail host."""
    customer = customer_create(reseller=None, name="E2E other customer", acting_user=e2e.operator)
    plan = Plan.objects.get(pk=e2e.pack.plan_id)
    pack = pack_create(customer=customer, plan=plan, mail_host=e2e.host, acting_user=e2e.operator)
    return dataclasses.replace(e2e, pack=pack)


def delivered_files(e2e: E2E) -> list[str]:
    """Every message file delivered to any mailbox of the stack."""
    return [str(p) for p in e2e.stack.config.vmail_root.glob("*/*/Maildir/*/*") if p.is_file()]


def postfix_log(e2e: E2E) -> str:
    return e2e.stack.config.postfix_log.read_text(errors="replace")


def two_customers(e2e: E2E) -> tuple:
    a = e2e.domain("loopa")
    b = other_customer(e2e).domain("loopb")
    assert a.pack.customer_id != b.pack.customer_id
    return a, b


def test_a_forward_loop_across_two_customers_is_refused_by_postfix_and_does_not_spin(e2e: E2E) -> None:
    a, b = two_customers(e2e)
    forward_create(domain=a, local_part="ping", destinations=[f"pong@{b.name}"], acting_user=e2e.operator)
    # B's forward back to A's: accepted (A's address is opaque to B), so the loop exists.
    forward_create(domain=b, local_part="pong", destinations=[f"ping@{a.name}"], acting_user=e2e.operator)
    e2e.wait_applied(a)
    e2e.wait_applied(b)
    before = delivered_files(e2e)

    with pytest.raises(SMTPRefused) as refused:
        send(e2e.stack, SENDER, f"ping@{a.name}", "round and round", "a loop across customers")

    print(f"\nPostfix answered {refused.value.code} at {refused.value.stage}: {refused.value.text}")
    assert (refused.value.stage, refused.value.code) == ("DATA", 451)
    assert "Alias expansion error" in refused.value.text
    wait_for(lambda: f"map nesting for ping@{a.name}" in postfix_log(e2e))
    time.sleep(3)  # a spinning loop would keep queueing, delivering or bouncing: give it time to show
    assert not queued(e2e)
    assert delivered_files(e2e) == before
    assert sink_messages(e2e.stack, SENDER) == []  # the sender's own server returns it, not this host


def test_a_loop_that_keeps_a_copy_delivers_once(e2e: E2E) -> None:
    a, b = two_customers(e2e)
    ann = e2e.mailbox(a, "ann")
    mailbox_set_routing(mailbox=ann, routing="forward", forward_to=[f"bea@{b.name}"], keep_copy=True,
                        acting_user=e2e.operator)
    forward_create(domain=b, local_part="bea", destinations=[f"ann@{a.name}"], acting_user=e2e.operator)
    e2e.wait_applied(a)
    e2e.wait_applied(b)

    send(e2e.stack, SENDER, f"ann@{a.name}", "kept once", "a loop with a copy")

    wait_for(lambda: "kept once" in [str(m["Subject"]) for m in pop3_messages(e2e.stack, f"ann@{a.name}",
                                                                                PASSWORD)])
    time.sleep(3)
    assert [str(m["Subject"]) for m in pop3_messages(e2e.stack, f"ann@{a.name}", PASSWORD)] == ["kept once"]
    assert not queued(e2e)
