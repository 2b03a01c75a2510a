"""Panel side of provisioning: revisions, the durable record, coalescing, reports, reconcile,
moves and deletions. The broker and the agent are proven by tests/e2e; here the messages the
panel would send are captured at its two exits (the push task's enqueue and `send`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from hosting.models import Domain
from hostlink import moves, push, snapshot
from hostlink import reports as host_reports
from mail.models import Mailbox
from mail.services import mailbox_set_access, mailbox_set_routing, mailbox_set_vacation
from provisioning import revisions
from provisioning.domains import domain_create, domain_delete, pack_move
from provisioning.models import DomainSync, RetiredDomain, SyncState
from tests.conftest import Cast
from tests.factories import MailHostFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    sent: dict[str, list[Any]] = {"pushes": [], "documents": [], "retired": []}
    monkeypatch.setattr("provisioning.revisions.enqueue_push",
                        lambda domain_id, countdown=None: sent["pushes"].append(domain_id))
    monkeypatch.setattr("provisioning.revisions.enqueue_retired_push", lambda rid: sent["retired"].append(rid))
    monkeypatch.setattr(push, "send", lambda host, doc: sent["documents"].append((host.name, doc)))
    return sent


def test_a_change_bumps_the_revision_and_stamps_the_row(
    cast: Cast, outbox: dict, django_capture_on_commit_callbacks
) -> None:
    before = cast.a.domain.revision
    with django_capture_on_commit_callbacks(execute=True):
        mailbox_set_access(mailbox=cast.mailbox_user, allow_pop3=False, acting_user=cast.operator)
    cast.a.domain.refresh_from_db()
    cast.mailbox_user.refresh_from_db()
    assert cast.a.domain.revision == before + 1
    assert cast.mailbox_user.revision == cast.a.domain.revision
    assert outbox["pushes"] == [cast.a.domain.pk]


def test_a_burst_of_changes_enqueues_one_push(
    cast: Cast, outbox: dict, django_capture_on_commit_callbacks
) -> None:
    for i in range(50):
        with django_capture_on_commit_callbacks(execute=True):
            mailbox_set_vacation(mailbox=cast.mailbox_user, enabled=True, subject=f"Away {i}", message="Back soon",
                                 acting_user=cast.operator)
    assert outbox["pushes"] == [cast.a.domain.pk]
    with django_capture_on_commit_callbacks(execute=True):
        push.push(cast.a.domain.pk)
    (host, document), = outbox["documents"]
    cast.a.domain.refresh_from_db()
    assert host == "mx1" and document["revision"] == cast.a.domain.revision
    vacation = next(m for m in document["mailboxes"] if m["local_part"] == "alphauser")["vacation"]
    assert vacation["subject"] == "Away 49"
    # The push released the claim: the next change queues again.
    with django_capture_on_commit_callbacks(execute=True):
        mailbox_set_access(mailbox=cast.mailbox_user, allow_imap=False, acting_user=cast.operator)
    assert outbox["pushes"] == [cast.a.domain.pk, cast.a.domain.pk]


def test_document_is_complete_and_self_contained(cast: Cast) -> None:
    mailbox_set_routing(mailbox=cast.mailbox_user, routing="forward", forward_to=["someone@else.test", "postmaster"],
                        keep_copy=True, acting_user=cast.operator)
    cast.a.domain.refresh_from_db()
    document = snapshot.build(cast.a.domain)
    assert document["domain"] == "alpha-domain.test" and document["state"] == "present"
    user = next(m for m in document["mailboxes"] if m["local_part"] == "alphauser")
    assert user["forward_to"] == ["someone@else.test", "postmaster@alpha-domain.test"]
    assert user["keep_copy"] is True
    assert user["password_hash"].startswith("{ARGON2ID}")
    assert document["catchall"] == {"mode": "bounce", "target": ""}


def test_states_follow_the_hosts_reports(cast: Cast, outbox: dict, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        mailbox_set_access(mailbox=cast.mailbox_user, allow_pop3=False, acting_user=cast.operator)
        push.push(cast.a.domain.pk)
    cast.a.domain.refresh_from_db()
    cast.mailbox_user.refresh_from_db()
    sync = DomainSync.objects.get(domain=cast.a.domain)
    assert sync.state_of(cast.mailbox_user.revision) == SyncState.PENDING
    host_reports.record_report(host="mx1", domain="alpha-domain.test", revision=cast.a.domain.revision,
                           state="present", error="disk full")
    sync.refresh_from_db()
    assert sync.state_of(cast.mailbox_user.revision) == SyncState.FAILED and sync.error == "disk full"
    host_reports.record_report(host="mx1", domain="alpha-domain.test", revision=cast.a.domain.revision, state="present")
    sync.refresh_from_db()
    assert sync.state_of(cast.mailbox_user.revision) == SyncState.APPLIED and sync.error == ""
    # A late report of an older revision never moves the record back.
    host_reports.record_report(host="mx1", domain="alpha-domain.test", revision=1, state="present", error="old")
    sync.refresh_from_db()
    assert sync.applied_revision == cast.a.domain.revision and sync.error == ""


def test_reports_from_another_host_are_ignored(cast: Cast, outbox: dict, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        push.push(cast.a.domain.pk)
    host_reports.record_report(host="intruder", domain="alpha-domain.test", revision=99, state="present")
    assert DomainSync.objects.get(domain=cast.a.domain).applied_revision == 0


def test_reconcile_resends_lagging_domains_only(cast: Cast, outbox: dict, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        for tenant in (cast.a, cast.b):
            mailbox_set_access(mailbox=tenant.postmaster, allow_pop3=False, acting_user=cast.operator)
            push.push(tenant.domain.pk)
    cast.b.domain.refresh_from_db()
    host_reports.record_report(host="mx1", domain="bravo-domain.test", revision=cast.b.domain.revision, state="present")
    assert push.reconcile() == 0  # A was sent just now: not stale yet
    DomainSync.objects.update(sent_at=timezone.now() - timedelta(minutes=5))
    outbox["pushes"].clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert push.reconcile() == 1
    assert outbox["pushes"] == [cast.a.domain.pk]


def test_resync_host_sends_every_domain_again(cast: Cast, outbox: dict, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # queued on commit, as after a service's write
        assert revisions.resync_host(cast.host) == 2
    assert sorted(outbox["pushes"]) == sorted([cast.a.domain.pk, cast.b.domain.pk])


def test_moving_a_pack_applies_on_the_new_host_and_removes_from_the_old(
    cast: Cast, outbox: dict, django_capture_on_commit_callbacks, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies: list[Any] = []
    monkeypatch.setattr(moves, "send_copy", lambda host, request: copies.append(request))
    with django_capture_on_commit_callbacks(execute=True):
        push.push(cast.a.domain.pk)
    new_host = MailHostFactory(name="mx2")
    with django_capture_on_commit_callbacks(execute=True):
        pack_move(pack=cast.a.pack, mail_host=new_host, acting_user=cast.operator)
    with django_capture_on_commit_callbacks(execute=True):
        push.push(cast.a.domain.pk)
    assert [h for h, _d in outbox["documents"]] == ["mx1", "mx2"]
    # Removed from the old host only once the new one has the domain and its mail (tests/test_pack_move.py).
    cast.a.domain.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        host_reports.record_report(host="mx2", domain="alpha-domain.test", revision=cast.a.domain.revision,
                               state="present")
    with django_capture_on_commit_callbacks(execute=True):
        moves.record_migrated(host="mx1", move=copies[0]["move"], domain="alpha-domain.test", copied=[])
    retired = RetiredDomain.objects.get(name="alpha-domain.test", host__name="mx1")
    with django_capture_on_commit_callbacks(execute=True):
        push.push_retired(retired.pk)
    host, document = outbox["documents"][-1]
    assert host == "mx1" and document["state"] == "absent"
    host_reports.record_report(host="mx1", domain="alpha-domain.test", revision=document["revision"], state="absent")
    assert RetiredDomain.objects.get(pk=retired.pk).confirmed


def test_deleted_domain_is_removed_from_its_host_and_revisions_keep_growing(
    cast: Cast, outbox: dict, django_capture_on_commit_callbacks
) -> None:
    old_revision = cast.a.domain.revision
    with django_capture_on_commit_callbacks(execute=True):
        domain_delete(domain=cast.a.domain, acting_user=cast.operator)
    retired = RetiredDomain.objects.get(name="alpha-domain.test")
    assert retired.revision == old_revision + 1 and outbox["retired"] == [retired.pk]
    assert not Mailbox.objects.filter(domain__name="alpha-domain.test").exists()
    again = domain_create(pack=cast.a.pack, name="alpha-domain.test", acting_user=cast.operator)
    assert again.revision > retired.revision  # never at or under the host's tombstone


def test_resync_command(cast: Cast, outbox: dict, capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import CommandError, call_command

    call_command("resync_host", "mx1")
    assert "2 domain(s) of mx1" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("resync_host", "nowhere")


def test_a_domain_gets_at_most_one_document_per_push_interval(
    cast: Cast, outbox: dict, django_capture_on_commit_callbacks, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PUSH_INTERVAL_MS = 150
    delayed: list[tuple[int, float | None]] = []
    monkeypatch.setattr("provisioning.revisions.enqueue_push",
                        lambda domain_id, countdown=None: delayed.append((domain_id, countdown)))
    with django_capture_on_commit_callbacks(execute=True):
        assert push.push(cast.a.domain.pk) == cast.a.domain.revision  # nothing sent lately: at once
    with django_capture_on_commit_callbacks(execute=True):
        mailbox_set_access(mailbox=cast.mailbox_user, allow_pop3=False, acting_user=cast.operator)
    assert delayed == [(cast.a.domain.pk, None)]  # the change queued a push...
    with django_capture_on_commit_callbacks(execute=True):
        assert push.push(cast.a.domain.pk) is None  # ...which finds 150 ms have not passed: later, flag kept
    (domain_id, countdown), = delayed[1:]
    assert domain_id == cast.a.domain.pk and 0 < countdown <= 0.15
    assert len(outbox["documents"]) == 1 and DomainSync.objects.get(domain=cast.a.domain).queued
    DomainSync.objects.update(sent_at=timezone.now() - timedelta(milliseconds=200))
    with django_capture_on_commit_callbacks(execute=True):
        assert push.push(cast.a.domain.pk) == Domain.objects.get(pk=cast.a.domain.pk).revision
    sent = outbox["documents"][1][1]["mailboxes"][0]
    assert (sent["local_part"], sent["allow_pop3"]) == ("alphauser", False)
    assert len(outbox["documents"]) == 2 and not DomainSync.objects.get(domain=cast.a.domain).queued
