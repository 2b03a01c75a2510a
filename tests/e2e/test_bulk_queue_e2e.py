"""A tenant's big member import does not hold up anyone's provisioning (issue 15, item 4): the
import runs on the bulk queue's own worker (contract.BULK_QUEUE, as bin/run starts it), and
another domain's change is applied on the real mail host while the import is still running.
With the import on the panel's one worker (as before), the change waited for the whole import."""

from __future__ import annotations

import time

import pytest

from hosting.models import Plan
from lists import imports
from lists.models import ImportState, ListMember, MailingList, MemberImport
from lists.services import list_create
from mailhost import contract
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import pop3_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LINES = 150_000  # about 4 MB: tens of seconds of batches on this machine


def test_a_change_is_applied_on_the_host_while_a_big_import_runs(e2e: E2E) -> None:
    assert e2e.workers.bulk is not None and not e2e.workers.bulk.death()
    Plan.objects.filter(pk=e2e.pack.plan_id).update(max_list_members=-1)
    lists_domain, other = e2e.domain("bulk"), e2e.domain("other")
    news = list_create(domain=lists_domain, name="news", owner=f"postmaster@{lists_domain.name}",
                       acting_user=e2e.operator)
    e2e.wait_applied(other)
    text = "\n".join(f"reader{n}@example{n % 97}.test" for n in range(LINES))
    job = imports.member_import(mailing_list=news, kind="subscriber", text=text, source="paste",
                                acting_user=e2e.operator)
    assert job.state == ImportState.RUNNING
    # The bulk worker has started it: its first batches are in.
    wait_for(lambda: MemberImport.objects.get(pk=job.pk).done > 0, timeout=60)

    started = time.monotonic()
    e2e.mailbox(other, "alice")
    e2e.wait_applied(other, timeout=60)
    applied_after = time.monotonic() - started
    job.refresh_from_db()
    assert job.state == ImportState.RUNNING and job.done < LINES, (
        f"the change was applied {applied_after:.1f} s later, only after the import ({job.done}/{LINES}, "
        f"{job.state} {job.error})")
    assert pop3_messages(e2e.stack, f"alice@{other.name}", PASSWORD) == []  # live on the host

    # The import goes on to its end, and its members reach the host too.
    wait_for(lambda: MemberImport.objects.get(pk=job.pk).state != ImportState.RUNNING, timeout=600, interval=0.5)
    job.refresh_from_db()
    assert (job.state, job.added) == (ImportState.DONE, LINES)
    assert ListMember.objects.filter(mailing_list=news).count() == LINES + 1  # and the owner
    e2e.wait_applied(lists_domain, timeout=120)
    assert MailingList.objects.get(pk=news.pk).revision > 0
    assert contract.BULK_QUEUE in e2e.workers.bulk.argv
