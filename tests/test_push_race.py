"""A change that finds the domain's push already queued is never missed by that push.

The change claims the `queued` flag inside its transaction, after its revision bump has locked the
domain's row; the queued push releases the flag, then reads the domain under that lock. So a push
that starts while such a change is open waits for its commit and sends it. Needs real row locks
(PostgreSQL) and committed data.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction

from hosting.models import Domain
from hostlink import push
from mail.services import mailbox_set_access
from provisioning.models import DomainSync
from tests.conftest import Cast

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the push race needs PostgreSQL's row locks"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_push_queued_before_a_change_waits_for_it_and_sends_it(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    enqueued: list[int] = []
    documents: list[dict[str, Any]] = []
    monkeypatch.setattr("provisioning.revisions.enqueue_push", enqueued.append)
    monkeypatch.setattr(push, "send", lambda host, document: documents.append(document))
    domain = cast.a.domain
    DomainSync.objects.update_or_create(domain=domain, defaults={"queued": True})  # a push is waiting
    pushed = threading.Event()

    def run_push() -> None:
        try:
            push.push(domain.pk)
        finally:
            pushed.set()
            connection.close()

    with transaction.atomic():
        mailbox_set_access(mailbox=cast.mailbox_user, allow_pop3=False, acting_user=cast.operator)
        worker = threading.Thread(target=run_push)
        worker.start()
        assert not pushed.wait(1.0), "the push read the domain before the change committed"
    worker.join(timeout=30)

    assert pushed.is_set() and enqueued == []  # the change found the push queued: it queued none
    (document,) = documents
    assert document["revision"] == Domain.objects.get(pk=domain.pk).revision
    mailbox = next(m for m in document["mailboxes"] if m["local_part"] == cast.mailbox_user.local_part)
    assert mailbox["allow_pop3"] is False
    assert DomainSync.objects.get(domain=domain).queued is False  # the next change queues again
