"""Moving a pack to another mail host keeps its mail: the panel's side of a move (DomainMove), in
the order that loses nothing, and the hold on the agent's side. The copy itself (doveadm sync
between two real Dovecots) is proven by tests/e2e/test_pack_move_e2e.py; here the messages the
panel would send are captured at its exits (push enqueue, `send`, `send_copy`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from hosting.models import AuditEvent
from hostlink import moves, push
from hostlink import reports as host_reports
from mailhost import contract, maps, migrate
from mailhost.apply import HostConfig, apply
from provisioning.domains import pack_move
from provisioning.models import DomainMove, DomainSync, MoveState, RetiredDomain
from tests.conftest import Cast, client_for
from tests.factories import MailHostFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    sent: dict[str, list[Any]] = {"pushes": [], "documents": [], "retired": [], "copies": []}
    monkeypatch.setattr("provisioning.revisions.enqueue_push",
                        lambda domain_id, countdown=None: sent["pushes"].append(domain_id))
    monkeypatch.setattr("provisioning.revisions.enqueue_retired_push", lambda rid: sent["retired"].append(rid))
    monkeypatch.setattr(push, "send", lambda host, doc: sent["documents"].append((host.name, doc)))
    monkeypatch.setattr(moves, "send_copy", lambda host, request: sent["copies"].append((host.name, request)))
    return sent


@pytest.fixture
def moved(cast: Cast, outbox: dict, django_capture_on_commit_callbacks) -> DomainMove:
    """Domain A applied on mx1, then its pack moved to mx2 (doveadm on port 2424) and pushed there."""
    with django_capture_on_commit_callbacks(execute=True):
        push.push(cast.a.domain.pk)
    cast.a.domain.refresh_from_db()
    host_reports.record_report(host="mx1", domain="alpha-domain.test", revision=cast.a.domain.revision, state="present")
    new_host = MailHostFactory(name="mx2", fqdn="mx2.panel.test", doveadm_port=2424)
    with django_capture_on_commit_callbacks(execute=True):
        pack_move(pack=cast.a.pack, mail_host=new_host, acting_user=cast.operator)
    with django_capture_on_commit_callbacks(execute=True):
        push.push(cast.a.domain.pk)
    return DomainMove.objects.get(domain=cast.a.domain)


def confirm_on_new_host(cast: Cast, django_capture_on_commit_callbacks) -> None:
    cast.a.domain.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        host_reports.record_report(host="mx2", domain="alpha-domain.test", revision=cast.a.domain.revision,
                               state="present")


def test_pack_move_opens_a_move_per_domain_in_its_transaction(cast: Cast, moved: DomainMove) -> None:
    cast.a.domain.refresh_from_db()
    assert (moved.from_host.name, moved.to_host.name, moved.state) == ("mx1", "mx2", MoveState.WAITING)
    assert moved.revision == cast.a.domain.revision
    assert not DomainMove.objects.filter(domain=cast.b.domain).exists()  # another pack stays
    event = AuditEvent.objects.get(action="pack.move")
    assert event.actor_label == cast.operator.email


def test_the_move_is_recorded_by_pack_move_itself(cast: Cast, outbox: dict) -> None:
    pack_move(pack=cast.a.pack, mail_host=MailHostFactory(name="mx2"), acting_user=cast.operator)
    move = DomainMove.objects.get(domain=cast.a.domain)  # before any push
    cast.a.domain.refresh_from_db()
    assert move.state == MoveState.WAITING and move.revision == cast.a.domain.revision


def test_the_old_host_keeps_the_domain_until_the_copy_is_confirmed(
    cast: Cast, moved: DomainMove, outbox: dict, django_capture_on_commit_callbacks
) -> None:
    # The new host got the document; the old one got nothing, not even an "absent".
    assert [host for host, _doc in outbox["documents"]] == ["mx1", "mx2"]
    assert not RetiredDomain.objects.exists() and outbox["retired"] == [] and outbox["copies"] == []

    confirm_on_new_host(cast, django_capture_on_commit_callbacks)
    (host, request), = outbox["copies"]
    assert host == "mx1"  # the OLD host copies its mail to the new one
    assert request == {
        "move": moved.pk, "domain": "alpha-domain.test", "target": "tcp:mx2.panel.test:2424",
        "mailboxes": ["alphauser@alpha-domain.test", "postmaster@alpha-domain.test"],
    }
    moved.refresh_from_db()
    assert moved.state == MoveState.COPYING and moved.attempts == 1
    assert not RetiredDomain.objects.exists()  # copying: still nothing removed

    with django_capture_on_commit_callbacks(execute=True):
        moves.record_migrated(host="mx1", move=moved.pk, domain="alpha-domain.test",
                                 copied=request["mailboxes"])
    moved.refresh_from_db()
    assert moved.state == MoveState.REMOVING and moved.copied == request["mailboxes"]
    retired = RetiredDomain.objects.get(name="alpha-domain.test", host__name="mx1")
    assert outbox["retired"] == [retired.pk] and not retired.confirmed

    host_reports.record_report(host="mx1", domain="alpha-domain.test", revision=retired.revision, state="absent")
    moved.refresh_from_db()
    assert moved.state == MoveState.DONE and moved.finished_at is not None
    assert RetiredDomain.objects.get(pk=retired.pk).confirmed


def test_redelivered_reports_ask_one_copy_and_retire_once(
    cast: Cast, moved: DomainMove, outbox: dict, django_capture_on_commit_callbacks
) -> None:
    confirm_on_new_host(cast, django_capture_on_commit_callbacks)
    confirm_on_new_host(cast, django_capture_on_commit_callbacks)
    assert len(outbox["copies"]) == 1
    # Two claims racing for the same step: only one sends.
    assert not moves.ask_copy(moved.pk, states=(MoveState.WAITING,))
    assert len(outbox["copies"]) == 1
    for _twice in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            moves.record_migrated(host="mx1", move=moved.pk, domain="alpha-domain.test", copied=[])
    assert len(outbox["retired"]) == 1
    # A late failure of an earlier attempt never undoes a copy taken in.
    moves.record_migrated(host="mx1", move=moved.pk, domain="alpha-domain.test", error="late")
    moved.refresh_from_db()
    assert moved.state == MoveState.REMOVING and moved.error == ""


def test_a_late_report_of_an_older_revision_starts_no_copy(
    cast: Cast, moved: DomainMove, outbox: dict, django_capture_on_commit_callbacks
) -> None:
    """The new host may have held the domain before (moved away and back): only its confirmation
    of the move's revision means it has every mailbox."""
    with django_capture_on_commit_callbacks(execute=True):
        host_reports.record_report(host="mx2", domain="alpha-domain.test", revision=moved.revision - 1, state="present")
    assert outbox["copies"] == [] and DomainMove.objects.get(pk=moved.pk).state == MoveState.WAITING


def test_a_report_from_another_host_is_ignored(
    cast: Cast, moved: DomainMove, outbox: dict, django_capture_on_commit_callbacks
) -> None:
    confirm_on_new_host(cast, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        moves.record_migrated(host="mx2", move=moved.pk, domain="alpha-domain.test", copied=[])
    assert DomainMove.objects.get(pk=moved.pk).state == MoveState.COPYING
    assert not RetiredDomain.objects.exists()


def test_a_failed_copy_keeps_the_old_hosts_domain_and_shows_the_error(
    cast: Cast, moved: DomainMove, outbox: dict, django_capture_on_commit_callbacks
) -> None:
    confirm_on_new_host(cast, django_capture_on_commit_callbacks)
    error = "doveadm sync of alphauser@alpha-domain.test exited with 75: authentication failed"
    with django_capture_on_commit_callbacks(execute=True):
        moves.record_migrated(host="mx1", move=moved.pk, domain="alpha-domain.test", error=error)
    moved.refresh_from_db()
    assert moved.state == MoveState.FAILED and moved.error == error
    assert not RetiredDomain.objects.exists() and outbox["retired"] == []
    page = client_for(cast, "operator").get(f"/admin/hosting/domain/{cast.a.domain.pk}/change/")
    assert f"mx1 → mx2, failed: {error}" in page.content.decode()


def test_reconcile_asks_again_for_a_stalled_step(
    cast: Cast, moved: DomainMove, outbox: dict, django_capture_on_commit_callbacks
) -> None:
    # The new host confirmed, but the report that triggers the copy was lost.
    cast.a.domain.refresh_from_db()
    DomainSync.objects.filter(domain=cast.a.domain).update(applied_revision=cast.a.domain.revision)
    with django_capture_on_commit_callbacks(execute=True):
        push.reconcile()
    assert outbox["copies"] == []  # not stale yet
    DomainMove.objects.filter(pk=moved.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        push.reconcile()
    assert len(outbox["copies"]) == 1
    # A copy nobody answers is asked again, once stale.
    with django_capture_on_commit_callbacks(execute=True):
        push.reconcile()
    assert len(outbox["copies"]) == 1
    DomainMove.objects.filter(pk=moved.pk).update(copy_sent_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        push.reconcile()
    assert len(outbox["copies"]) == 2
    # A failed copy is tried again too, the error shown until one succeeds.
    moves.record_migrated(host="mx1", move=moved.pk, domain="alpha-domain.test", error="host down")
    DomainMove.objects.filter(pk=moved.pk).update(copy_sent_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        push.reconcile()
    moved.refresh_from_db()
    assert len(outbox["copies"]) == 3 and moved.state == MoveState.COPYING and moved.attempts == 3
    assert not RetiredDomain.objects.exists()


def test_reconcile_never_copies_before_the_new_host_confirmed(
    cast: Cast, moved: DomainMove, outbox: dict, django_capture_on_commit_callbacks
) -> None:
    DomainMove.objects.filter(pk=moved.pk).update(created_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        push.reconcile()
    assert outbox["copies"] == []
    assert outbox["pushes"] == [cast.a.domain.pk]  # the domain itself is sent again


def test_a_pack_moves_again_only_after_its_move_is_done(cast: Cast, moved: DomainMove) -> None:
    with pytest.raises(ValidationError) as refused:
        pack_move(pack=cast.a.pack, mail_host=MailHostFactory(name="mx3"), acting_user=cast.operator)
    assert refused.value.code == "moving"
    DomainMove.objects.filter(pk=moved.pk).update(state=MoveState.DONE)
    pack_move(pack=cast.a.pack, mail_host=MailHostFactory(name="mx4"), acting_user=cast.operator)
    assert DomainMove.objects.open().get(domain=cast.a.domain).to_host.name == "mx4"


def test_the_admin_shows_the_moves_state_and_when_it_finished(
    cast: Cast, moved: DomainMove, django_capture_on_commit_callbacks
) -> None:
    client = client_for(cast, "operator")
    assert "mx1 → mx2, waiting for the new host" in client.get("/admin/hosting/domain/").content.decode()
    confirm_on_new_host(cast, django_capture_on_commit_callbacks)
    pack_page = client.get(f"/admin/hosting/pack/{cast.a.pack.pk}/change/").content.decode()
    assert "alpha-domain.test: mx1 → mx2, copying mail" in pack_page
    finished = timezone.now()
    DomainMove.objects.filter(pk=moved.pk).update(state=MoveState.DONE, finished_at=finished)
    page = client.get(f"/admin/hosting/domain/{cast.a.domain.pk}/change/").content.decode()
    assert "mx1 → mx2, done (" in page
    assert str(timezone.localtime(finished).year) in page.split("mx1 → mx2, done (", 1)[1][:40]
    # The other tenant's reseller sees nothing of it.
    other = client_for(cast, "reseller_b").get("/admin/hosting/domain/").content.decode()
    assert "mx1 → mx2" not in other


# --- the agent's side, without daemons: the hold ends with the panel's next word on the domain


def test_the_hold_is_dropped_by_the_next_applied_document(tmp_path: Path) -> None:
    cfg = HostConfig(name="mx1", root=tmp_path)
    (tmp_path / "db").mkdir()
    maps.create(cfg.maps_db)
    document = {"format": contract.FORMAT, "domain": "moving.test", "revision": 1, "state": "present", "mailboxes": [],
                "forwards": [], "robots": [], "catchall": {"mode": "bounce", "target": ""}, "lists": []}
    apply(document, cfg)
    db = maps.connect(cfg.maps_db)
    try:
        migrate.hold(db, "moving.test")
        assert db.execute("SELECT reply FROM moving WHERE domain = 'moving.test'").fetchone()[0].startswith("450 ")
        apply({"format": contract.FORMAT, "domain": "moving.test", "revision": 2, "state": "absent"}, cfg)
        assert not migrate.held(db, "moving.test")
    finally:
        db.close()


@pytest.mark.parametrize("target", ["tcp:mx2;rm -rf /:1", "ssh:mx2", "tcp:-oProxy:1", "tcp:mx2:"])
def test_a_bad_doveadm_target_is_refused(tmp_path: Path, target: str) -> None:
    (tmp_path / "db").mkdir()
    maps.create(tmp_path / "db" / "maps.sqlite")
    with pytest.raises(migrate.MigrateError, match="invalid doveadm target"):
        migrate.migrate({"domain": "moving.test", "target": target, "mailboxes": []},
                        maps_db=tmp_path / "db" / "maps.sqlite", vmail_root=tmp_path / "vmail",
                        postfix_dir=None, dovecot_conf=None)


def test_a_disabled_mailbox_with_mail_stops_the_copy(tmp_path: Path) -> None:
    """Dovecot cannot open a disabled mailbox: copying the others and removing it would lose its mail."""
    db_path = tmp_path / "db" / "maps.sqlite"
    db_path.parent.mkdir()
    maps.create(db_path)
    db = maps.connect(db_path)
    db.execute("INSERT INTO mailboxes(email, domain, password_hash, active, home) VALUES (?,?,?,?,?)",
               ("eve@moving.test", "moving.test", "!", 0, str(tmp_path / "vmail/moving.test/eve")))
    db.close()
    (tmp_path / "vmail" / "moving.test" / "eve" / "Maildir").mkdir(parents=True)
    with pytest.raises(migrate.MigrateError, match="disabled mailboxes cannot be copied.*eve@moving.test"):
        migrate.migrate({"domain": "moving.test", "target": "tcp:mx2:2424", "mailboxes": ["eve@moving.test"]},
                        maps_db=db_path, vmail_root=tmp_path / "vmail", postfix_dir=None, dovecot_conf=None)


def test_a_domain_deleted_during_its_move_is_removed_from_both_hosts(
    cast: Cast, moved: DomainMove, outbox: dict, django_capture_on_commit_callbacks
) -> None:
    from provisioning.domains import domain_delete

    with django_capture_on_commit_callbacks(execute=True):
        domain_delete(domain=cast.a.domain, acting_user=cast.operator)
    retired = RetiredDomain.objects.filter(name="alpha-domain.test")
    assert sorted(retired.values_list("host__name", flat=True)) == ["mx1", "mx2"]
    assert sorted(outbox["retired"]) == sorted(retired.values_list("pk", flat=True))
    assert not DomainMove.objects.exists()
