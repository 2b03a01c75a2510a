"""POP accounts imported from CSV through the real bulk worker (contract.BULK_QUEUE, as bin/run
starts it; the lines travel encrypted): the import ends with its report, the accounts reach the
real mail host, and each opens with the password its line gave (Dovecot verifies the hash the
import stored) while a refused line left nothing behind."""

from __future__ import annotations

import poplib

import pytest

from hosting.models import Plan
from mail import transfer
from mail.models import AccountImport, ImportKind, ImportState, Mailbox
from tests.e2e.conftest import E2E
from tests.e2e.mailclient import pop3_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "Velvet-Otter-9137"


def test_accounts_imported_on_the_bulk_worker_open_with_their_passwords(e2e: E2E) -> None:
    assert e2e.workers.bulk is not None and not e2e.workers.bulk.death()
    Plan.objects.filter(pk=e2e.pack.plan_id).update(max_mailboxes=-1)
    domain = e2e.domain("csv")
    count = transfer.INLINE[ImportKind.MAILBOXES] + 2
    lines = ["address;real_name;quota_mb;password", *(f"imp{n};Importé {n};50;{SECRET}-{n}" for n in range(count)),
             "nopass;Sans mot de passe;;"]
    job = transfer.account_import(domain=domain, kind="mailboxes", data="\n".join(lines), acting_user=e2e.operator)
    assert job.state == ImportState.RUNNING  # long: queued on the bulk worker
    wait_for(lambda: AccountImport.objects.get(pk=job.pk).state != ImportState.RUNNING, timeout=120, interval=0.5)
    job.refresh_from_db()
    assert (job.state, job.created, job.refused_count) == (ImportState.DONE, count, 1), job.error
    assert Mailbox.objects.filter(domain=domain, local_part__startswith="imp").count() == count
    e2e.wait_applied(domain, timeout=60)
    for n in (0, count - 1):
        assert pop3_messages(e2e.stack, f"imp{n}@{domain.name}", f"{SECRET}-{n}") == []
    with pytest.raises(poplib.error_proto):
        pop3_messages(e2e.stack, f"imp0@{domain.name}", f"{SECRET}-1")
    with pytest.raises(poplib.error_proto):
        pop3_messages(e2e.stack, f"nopass@{domain.name}", "")
