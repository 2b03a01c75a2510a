"""The reconcile's rules for what it sends again (issue 15, item 10), on the panel's side: a push
flag that outlived its push, a change whose push never went, a document its host never confirmed
(sent again after RESEND_AFTER, then twice as long each time, never more often than STALE_AFTER),
a failed one (STALE_AFTER). The real processes killed with `kill -9` are in
tests/e2e/test_faults_e2e.py; here the pushes are captured at their exit (enqueue_push)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from hostlink import push
from hostlink import reports as host_reports
from mail.services import mailbox_set_access
from provisioning.domains import domain_delete
from provisioning.models import DomainSync, RetiredDomain
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


@pytest.fixture
def pushes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr("provisioning.revisions.enqueue_push", lambda domain_id, countdown=None: sent.append(domain_id))
    monkeypatch.setattr(push, "send", lambda host, document: None)
    return sent


def change(cast: Cast, capture: Any, **access: bool) -> None:
    with capture(execute=True):
        mailbox_set_access(mailbox=cast.mailbox_user, acting_user=cast.operator, **access)


def ago(seconds: float) -> Any:
    return timezone.now() - timedelta(seconds=seconds)


def test_a_flag_whose_push_was_lost_is_freed_after_a_few_seconds(
    cast: Cast, pushes: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    domain = cast.a.domain
    change(cast, django_capture_on_commit_callbacks, allow_pop3=False)
    assert pushes == [domain.pk]  # the push that a worker then loses (killed holding it)
    change(cast, django_capture_on_commit_callbacks, allow_imap=False)
    assert pushes == [domain.pk]  # the flag is taken: this change waits for that push
    sync = DomainSync.objects.get(domain=domain)
    assert sync.queued and sync.queued_at is not None and sync.queued_at > ago(5)
    with django_capture_on_commit_callbacks(execute=True):
        assert push.reconcile() == 0  # a fresh flag: its push is on its way
    DomainSync.objects.filter(domain=domain).update(queued_at=ago(6))
    with django_capture_on_commit_callbacks(execute=True):
        assert push.reconcile() == 1  # before: only once sent_at was 60 s old (never sent: at once)
    assert pushes == [domain.pk, domain.pk]
    sync.refresh_from_db()
    assert sync.queued and sync.queued_at > ago(5)  # taken again, by the push just sent


def test_a_flag_lost_after_a_document_went_is_freed_too(
    cast: Cast, pushes: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    """The case of the issue: the domain's last document went a moment ago; the push of the next
    change is lost with its worker. Before, the reconcile waited for that document to be 60 s old."""
    domain = cast.a.domain
    with django_capture_on_commit_callbacks(execute=True):
        push.push(domain.pk)
    change(cast, django_capture_on_commit_callbacks, allow_pop3=False)
    DomainSync.objects.filter(domain=domain).update(queued_at=ago(6), sent_at=ago(7))
    pushes.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert push.reconcile() == 1
    assert pushes == [domain.pk]


def test_a_change_whose_push_never_went_is_sent_at_the_next_reconcile(
    cast: Cast, pushes: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    """The broker refused the push (tests/test_broker_down.py): the flag is free, the revision was
    never sent; the next reconcile sends it, whenever the last document went."""
    domain = cast.a.domain
    with django_capture_on_commit_callbacks(execute=True):
        push.push(domain.pk)
    change(cast, django_capture_on_commit_callbacks, allow_pop3=False)
    DomainSync.objects.filter(domain=domain).update(queued=False)  # what a refused send leaves
    pushes.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert push.reconcile() == 1
    assert pushes == [domain.pk]


def test_an_unconfirmed_document_is_sent_again_sooner_and_sooner_less_often(
    cast: Cast, pushes: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    domain = cast.a.domain
    change(cast, django_capture_on_commit_callbacks, allow_pop3=False)
    domain.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        push.push(domain.pk)  # the agent is killed in the middle of its apply: no report
    pushes.clear()
    expected = [10, 20, 40, 60, 60]  # seconds after the last document: RESEND_AFTER doubling, up to STALE_AFTER
    assert [push.resend_delay(n).total_seconds() for n in range(5)] == expected
    for resends, delay in enumerate(expected):
        DomainSync.objects.filter(domain=domain).update(sent_at=ago(delay - 1), queued=False)
        assert push.reconcile() == 0, resends  # not yet
        DomainSync.objects.filter(domain=domain).update(sent_at=ago(delay + 1))
        with django_capture_on_commit_callbacks(execute=True):
            assert push.reconcile() == 1, resends
        with django_capture_on_commit_callbacks(execute=True):
            push.push(domain.pk)
    assert DomainSync.objects.get(domain=domain).resends == 5
    host_reports.record_report(host="mx1", domain=domain.name, revision=domain.revision, state="present")
    assert DomainSync.objects.get(domain=domain).resends == 0  # confirmed: the next one waits 10 s again


def test_a_failed_document_is_sent_again_once_a_minute_not_every_reconcile(
    cast: Cast, pushes: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    domain = cast.a.domain
    change(cast, django_capture_on_commit_callbacks, allow_pop3=False)
    with django_capture_on_commit_callbacks(execute=True):
        push.push(domain.pk)
    domain.refresh_from_db()
    host_reports.record_report(host="mx1", domain=domain.name, revision=domain.revision, state="present",
                           error="OperationalError: database or disk is full")
    DomainSync.objects.filter(domain=domain).update(sent_at=ago(30))
    pushes.clear()
    assert push.reconcile() == 0  # the reconcile runs every 5 s: a failing host is not hammered
    DomainSync.objects.filter(domain=domain).update(sent_at=ago(61))
    with django_capture_on_commit_callbacks(execute=True):
        assert push.reconcile() == 1
    assert pushes == [domain.pk]


def test_a_removal_the_host_does_not_confirm_is_sent_again_once_a_minute(
    cast: Cast, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    """A deleted domain's "absent" document to a host that is down: sent again STALE_AFTER after
    it went, not at every reconcile (every 5 s now)."""
    retired_pushes: list[int] = []
    monkeypatch.setattr("provisioning.revisions.enqueue_retired_push", retired_pushes.append)
    monkeypatch.setattr(push, "send", lambda host, document: None)
    with django_capture_on_commit_callbacks(execute=True):
        domain_delete(domain=cast.a.domain, acting_user=cast.operator)
    retired = RetiredDomain.objects.get(name=cast.a.domain.name)
    push.push_retired(retired.pk)  # the task the delete queued: the document goes
    RetiredDomain.objects.filter(pk=retired.pk).update(created_at=ago(120))
    retired_pushes.clear()
    push.reconcile()
    assert retired_pushes == []  # it went a moment ago
    RetiredDomain.objects.filter(pk=retired.pk).update(sent_at=ago(61))
    push.reconcile()
    assert retired_pushes == [retired.pk]
