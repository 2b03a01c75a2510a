"""A POP account that forwards with a copy, as the target of delete-with-redirect and of the
catch-all (issue 16, defect 6), by real mail: mail to the deleted name and to an unknown name
lands in the account's mailbox and goes on to its forward's address."""

from __future__ import annotations

import pytest

from mail.services import catchall_set, mailbox_delete, mailbox_set_routing
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import pop3_messages, send, sink_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_mail_to_a_deleted_name_and_to_an_unknown_name_reaches_the_account_and_its_forward(e2e: E2E) -> None:
    domain = e2e.domain("copy")
    ann = e2e.mailbox(domain, "ann")
    bob = e2e.mailbox(domain, "bob")
    mailbox_set_routing(mailbox=ann, routing="forward", forward_to=["ann@elsewhere.test"], keep_copy=True,
                        acting_user=e2e.operator)
    mailbox_delete(mailbox=bob, redirect_to=f"ann@{domain.name}", acting_user=e2e.operator)
    catchall_set(domain=domain, mode="mailbox", target="ann", acting_user=e2e.operator)
    e2e.wait_applied(domain)

    send(e2e.stack, "someone@outside.test", f"bob@{domain.name}", "to bob", "bob left")
    send(e2e.stack, "someone@outside.test", f"nobody@{domain.name}", "to nobody", "an unknown name")

    def subjects() -> list[str]:
        return sorted(str(m["Subject"]) for m in pop3_messages(e2e.stack, f"ann@{domain.name}", PASSWORD))

    assert wait_for(lambda: subjects() == ["to bob", "to nobody"] and subjects(), timeout=20)
    assert wait_for(lambda: sorted(str(m["Subject"]) for m in sink_messages(e2e.stack, "ann@elsewhere.test"))
                    == ["to bob", "to nobody"], timeout=20)
