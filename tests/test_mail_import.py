"""A mail import's panel side (hostlink.mailimport, provisioning.models.MailImport) and the agent's
rules that need no Dovecot (mailhost.mailimport: the import root, the old tree never written, what
is staged). The copy itself through a real Dovecot is tests/e2e/test_mail_import_e2e.py.

The requests go through a real broker (the embedded SQLite one, in a file of the test's own) and
are read back from it; the broker down is a real Redis server of the test's own, stopped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone, translation

from config.celery import app as panel_app
from hosting.models import Domain
from hostlink import mailimport, reports, tasks
from mail.models import Mailbox
from mailhost import broker, contract
from mailhost import mailimport as agent_import
from provisioning.models import DomainSync, MailImport, MailImportState
from tests.conftest import Cast
from tests.factories import MailboxFactory
from tests.test_broker_down import RedisBroker, drain, point_panel_at

OLD = "/srv/old/home/vpopmail/domains/alpha-domain.test/alice/Maildir"


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[str]:
    """The panel sends to an embedded broker of this test's own; yields its URL."""
    url = broker.url_for(tmp_path / "broker.sqlite3")
    saved = panel_app.conf.broker_url
    point_panel_at(url)
    try:
        yield url
    finally:
        point_panel_at(saved)


def sent(url: str) -> list[Any]:
    return [args[0] for task, args in drain(url, contract.host_queue("mx1")) if task == contract.IMPORT_MAIL]


@pytest.fixture
def alice(cast: Cast) -> Mailbox:
    """alice, created at revision 5 of domain A (the factories write no revision)."""
    mailbox = MailboxFactory(domain=cast.a.domain, local_part="alice")
    Domain.objects.filter(pk=cast.a.domain.pk).update(revision=5)
    cast.a.domain.refresh_from_db()
    return mailbox


def applied(cast: Cast, revision: int | None = None) -> None:
    """The host (mx1) reports domain A applied at its current revision (or `revision`)."""
    cast.a.domain.refresh_from_db()
    DomainSync.objects.update_or_create(domain=cast.a.domain, defaults={"host": cast.host})
    revision = cast.a.domain.revision if revision is None else revision
    tasks.report(host="mx1", domain=cast.a.domain.name, revision=revision)


# --- the panel ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the requests leave after commit
def test_a_request_waits_for_the_host_to_have_the_mailboxes_then_goes_once(cast: Cast, alice: Mailbox,
                                                                              outbox: str) -> None:
    cast.a.domain.refresh_from_db()
    applied(cast, revision=cast.a.domain.revision - 1)  # the host lacks the last change (alice)
    item = mailimport.request_mail_import(cast.a.domain, [("Alice@alpha-domain.test", OLD)])
    assert item.state == MailImportState.WAITING and sent(outbox) == []
    assert mailimport.reconcile_imports() == 0 and sent(outbox) == []  # still not applied
    applied(cast)  # the host's report of the revision that created alice sends it
    item.refresh_from_db()
    assert item.state == MailImportState.SENT and item.host == cast.host and item.attempts == 1
    request = {"id": item.pk, "domain": "alpha-domain.test",
               "mailboxes": [{"address": "alice@alpha-domain.test", "path": OLD}]}
    assert sent(outbox) == [request]
    contract.check(request, contract.MailImportRequest, complete=True)
    applied(cast)  # another report: nothing sent twice
    assert mailimport.reconcile_imports() == 0 and sent(outbox) == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the requests leave after commit
def test_a_request_whose_host_is_ready_goes_at_once_and_an_unanswered_one_again(cast: Cast, alice: Mailbox,
                                                                                outbox: str) -> None:
    applied(cast)
    item = mailimport.request_mail_import(cast.a.domain, [("alice@alpha-domain.test", OLD)])
    assert len(sent(outbox)) == 1
    assert mailimport.reconcile_imports() == 0  # answered soon enough: not yet
    MailImport.objects.filter(pk=item.pk).update(sent_at=timezone.now() - timedelta(hours=1))
    assert mailimport.reconcile_imports() == 1
    assert [r["id"] for r in sent(outbox)] == [item.pk]
    item.refresh_from_db()
    assert item.attempts == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the requests leave after commit
def test_a_request_the_broker_did_not_take_waits_for_the_reconcile(cast: Cast, alice: Mailbox,
                                                                   tmp_path: Path) -> None:
    down = RedisBroker(tmp_path)  # never started: nothing listens on its port
    saved = panel_app.conf.broker_url
    point_panel_at(down.url)
    try:
        applied(cast)
        item = mailimport.request_mail_import(cast.a.domain, [("alice@alpha-domain.test", OLD)])
        item.refresh_from_db()
        assert item.state == MailImportState.WAITING and item.attempts == 1  # the row keeps it
        down.up()
        try:
            assert mailimport.reconcile_imports() == 1
            assert [r["id"] for r in [a[0] for _t, a in drain(down.url, contract.host_queue("mx1"))]] == [item.pk]
        finally:
            down.down()
    finally:
        point_panel_at(saved)
    item.refresh_from_db()
    assert item.state == MailImportState.SENT and item.attempts == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("pairs", "message"), [
    ([], "No mailbox to import."),
    ([("alice@bravo-domain.test", OLD)], "alice@bravo-domain.test is not an address of alpha-domain.test."),
    ([("nobody@alpha-domain.test", OLD)], "No such mailbox in alpha-domain.test: nobody@alpha-domain.test."),
    ([("alice@alpha-domain.test", "old/Maildir")],
     "The old Maildir of alice@alpha-domain.test must be an absolute path on the mail host."),
    ([("alice@alpha-domain.test", OLD), ("ALICE@alpha-domain.test", OLD)], "alice@alpha-domain.test is listed twice."),
])
def test_a_request_that_cannot_be_is_refused(cast: Cast, alice: Mailbox, pairs: list[tuple[str, str]],
                                             message: str) -> None:
    with translation.override("en"), pytest.raises(mailimport.MailImportRefused,
                                                   match=f"^{message.replace('.', '[.]')}$"):
        mailimport.request_mail_import(cast.a.domain, pairs)
    assert not MailImport.objects.exists()


@pytest.mark.django_db
def test_an_alias_domain_has_no_mailboxes_to_import_into(cast: Cast, alice: Mailbox) -> None:
    cast.b.domain.alias_of = cast.a.domain
    with translation.override("en"), pytest.raises(mailimport.MailImportRefused, match="is an alias domain"):
        mailimport.request_mail_import(cast.b.domain, [("alice@bravo-domain.test", OLD)])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the requests leave after commit
def test_the_hosts_report_is_stored_per_mailbox_and_runs_add_up(cast: Cast, alice: Mailbox, outbox: str) -> None:
    MailboxFactory(domain=cast.a.domain, local_part="bob")
    applied(cast)
    item = mailimport.request_mail_import(cast.a.domain, [("alice@alpha-domain.test", OLD),
                                                          ("bob@alpha-domain.test", OLD.replace("alice", "bob"))])
    report: contract.MailImported = {"host": "mx1", "id": item.pk, "domain": "alpha-domain.test", "seconds": 1.5,
                                     "mailboxes": [
                                         {"address": "alice@alpha-domain.test", "copied": 5, "present": 0,
                                          "folders": ["INBOX", "Sent"], "subscribed": ["Sent"]},
                                         {"address": "bob@alpha-domain.test", "copied": 0, "present": 0, "folders": [],
                                          "error": "old Maildir /x: not a Maildir (no cur/ nor new/)"}]}
    contract.check(report, contract.MailImported, complete=False)
    tasks.mail_imported(**report)
    item.refresh_from_db()
    assert (item.state, item.copied) == (MailImportState.FAILED, 5)
    assert item.errors() == {"bob@alpha-domain.test": "old Maildir /x: not a Maildir (no cur/ nor new/)"}
    # Another run (sent again): alice gets one more message, bob's Maildir is mended.
    report["mailboxes"] = [{"address": "alice@alpha-domain.test", "copied": 1, "present": 5, "folders": ["INBOX"]},
                           {"address": "bob@alpha-domain.test", "copied": 2, "present": 0, "folders": ["INBOX"]}]
    tasks.mail_imported(**report)
    item.refresh_from_db()
    assert (item.state, item.copied, item.error) == (MailImportState.DONE, 8, "")
    assert [(r["address"], r["copied"], r["present"]) for r in item.results] == [
        ("alice@alpha-domain.test", 6, 5), ("bob@alpha-domain.test", 2, 0)]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the requests leave after commit
def test_a_report_from_another_host_or_for_an_import_never_sent_is_ignored(cast: Cast, alice: Mailbox,
                                                                           outbox: str) -> None:
    item = mailimport.request_mail_import(cast.a.domain, [("alice@alpha-domain.test", OLD)])
    report: dict[str, Any] = {"host": "mx1", "id": item.pk, "domain": "alpha-domain.test",
                              "mailboxes": [{"address": "alice@alpha-domain.test", "copied": 3, "present": 0,
                                             "folders": ["INBOX"]}]}
    mailimport.record_mail_imported(**report)  # still waiting: never sent, nothing to take in
    item.refresh_from_db()
    assert (item.state, item.copied) == (MailImportState.WAITING, 0)
    applied(cast)
    mailimport.record_mail_imported(**{**report, "host": "mx9"})
    mailimport.record_mail_imported(**{**report, "domain": "bravo-domain.test"})
    item.refresh_from_db()
    assert (item.state, item.copied) == (MailImportState.SENT, 0)
    mailimport.record_mail_imported(**report)
    item.refresh_from_db()
    assert (item.state, item.copied) == (MailImportState.DONE, 3)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the requests leave after commit
def test_a_failed_push_report_sends_nothing(cast: Cast, alice: Mailbox, outbox: str) -> None:
    cast.a.domain.refresh_from_db()
    DomainSync.objects.update_or_create(domain=cast.a.domain, defaults={"host": cast.host})
    item = mailimport.request_mail_import(cast.a.domain, [("alice@alpha-domain.test", OLD)])
    reports.record_report(host="mx1", domain=cast.a.domain.name, revision=cast.a.domain.revision,
                          state="present", error="boom")
    tasks.report(host="mx1", domain=cast.a.domain.name, revision=cast.a.domain.revision, error="boom")
    item.refresh_from_db()
    assert item.state == MailImportState.WAITING and sent(outbox) == []


# --- the agent's rules -----------------------------------------------------------------------------


def message(path: Path, body: str, mtime: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"Subject: {body}\r\n\r\n{body}\r\n".encode())
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def old_tree(tmp_path: Path) -> Path:
    """An old server's tree: one Maildir++ with INBOX (cur/ and new/), .Sent, .Archive.2019, the
    Courier subscriptions, and a symlink to a folder outside."""
    maildir = tmp_path / "old" / "home" / "vpopmail" / "domains" / "d.test" / "alice" / "Maildir"
    message(maildir / "cur" / "100.1.old:2,FS", "one", 1_500_000_001)
    message(maildir / "new" / "100.2.old", "two", 1_500_000_002)
    message(maildir / ".Sent" / "cur" / "100.3.old:2,S", "three", 1_500_000_003)
    message(maildir / ".Archive.2019" / "cur" / "100.4.old:2,DT", "four", 1_500_000_004)
    (maildir / ".Archive.2019" / "tmp").mkdir()
    (maildir / "courierimapsubscribed").write_text("INBOX.Sent\nINBOX.Archive.2019\nINBOX.Gone\n")
    (maildir / "dovecot-keywords").write_bytes(b"0 $Label1\n")  # an old Dovecot's keyword letters
    os.utime(maildir / "dovecot-keywords", (1_400_000_000, 1_400_000_000))
    outside = tmp_path / "elsewhere"
    message(outside / "cur" / "666.1.x:2,", "secret", 1_500_000_000)
    (maildir / ".Leak").symlink_to(outside)
    (maildir / "cur" / "777.1.x:2,").symlink_to(outside / "cur" / "666.1.x:2,")
    return maildir


def config(tmp_path: Path, root: Path | None) -> agent_import.ImportConfig:
    return agent_import.ImportConfig(maps_db=tmp_path / "maps.sqlite", work_root=tmp_path / "work", source_root=root)


def tree_state(root: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p), p.lstat().st_mtime_ns, p.lstat().st_size) for p in root.rglob("*"))


def test_an_old_maildir_outside_the_import_root_is_refused(tmp_path: Path, old_tree: Path) -> None:
    root = tmp_path / "old"
    assert agent_import.source_maildir(config(tmp_path, root), str(old_tree)) == old_tree.resolve()
    escape = root / "escape"
    escape.symlink_to(tmp_path / "elsewhere")
    refusals = {
        str(escape): "outside the import root",
        str(root / ".." / "elsewhere"): "outside the import root",
        str(tmp_path / "elsewhere"): "outside the import root",
        str(root / "home"): "not a Maildir",
        "relative/Maildir": "not an absolute path",
    }
    for path, reason in refusals.items():
        with pytest.raises(agent_import.ImportError_, match=reason):
            agent_import.source_maildir(config(tmp_path, root), path)
    with pytest.raises(agent_import.ImportError_, match="no import root"):
        agent_import.source_maildir(config(tmp_path, None), str(old_tree))


def test_staging_copies_bytes_names_and_dates_skips_symlinks_and_never_writes_the_old_tree(
        tmp_path: Path, old_tree: Path) -> None:
    before = tree_state(tmp_path / "old")
    found = agent_import.folders(old_tree)
    assert [f.imap_name("/") for f in found] == ["INBOX", "Archive/2019", "Sent"]  # .Leak: a symlink
    stage = tmp_path / "stage"
    staged = agent_import.stage(old_tree, found, "/", stage, {("Sent", "100.3.old")}, owner=None)
    assert staged.keys == {("INBOX", "100.1.old"), ("INBOX", "100.2.old"), ("Archive/2019", "100.4.old")}
    assert staged.present == 1
    copied = {str(p.relative_to(stage)): (p.read_bytes(), p.stat().st_mtime) for p in stage.rglob("*") if p.is_file()}
    assert copied == {
        "cur/100.1.old:2,FS": (b"Subject: one\r\n\r\none\r\n", 1_500_000_001),
        "new/100.2.old": (b"Subject: two\r\n\r\ntwo\r\n", 1_500_000_002),
        ".Archive.2019/cur/100.4.old:2,DT": (b"Subject: four\r\n\r\nfour\r\n", 1_500_000_004),
        "dovecot-keywords": (b"0 $Label1\n", 1_400_000_000),
    }
    assert tree_state(tmp_path / "old") == before


def test_the_old_subscriptions_as_this_host_names_them(tmp_path: Path, old_tree: Path) -> None:
    assert agent_import.read_subscriptions(old_tree, "/") == ["Sent", "Archive/2019", "Gone"]
    (old_tree / "courierimapsubscribed").unlink()
    (old_tree / "subscriptions").write_text("V\t2\n\nINBOX\nArchive\t2019\n")  # Dovecot's own, version 2
    assert agent_import.read_subscriptions(old_tree, ".") == ["INBOX", "Archive.2019"]


def test_the_record_of_what_came_in_reads_back(tmp_path: Path) -> None:
    record = tmp_path / "imported"
    assert agent_import.read_record(record) == set()
    agent_import.append_record(record, {("INBOX", "1.a"), ("Archive/2019", "2.b")})
    agent_import.append_record(record, {("Sent", "3.c")})
    assert agent_import.read_record(record) == {("INBOX", "1.a"), ("Archive/2019", "2.b"), ("Sent", "3.c")}


def test_a_request_of_the_wrong_shape_is_refused_whole(tmp_path: Path) -> None:
    outcome = agent_import.import_mail({"id": 7, "domain": "d.test", "mailboxes": [{"address": "a@d.test"}]},
                                       config(tmp_path, tmp_path), "mx1")
    assert outcome["mailboxes"] == [] and outcome["id"] == 7
    assert outcome["error"].startswith("refused: mailboxes[0]: missing path")


@pytest.mark.django_db
def test_a_refusal_speaks_french(cast: Cast, alice: Mailbox) -> None:
    with translation.override("fr"), pytest.raises(mailimport.MailImportRefused) as refused:
        mailimport.request_mail_import(cast.a.domain, [("nobody@alpha-domain.test", OLD)])
    assert str(refused.value) == "Ces Comptes Pop n’existent pas dans alpha-domain.test : nobody@alpha-domain.test."
    with translation.override("fr"):
        assert str(MailImportState.WAITING.label) == "en attente des Comptes Pop sur le serveur de messagerie"


def test_a_folder_name_in_modified_utf7_is_named_in_unicode(tmp_path: Path, old_tree: Path) -> None:
    assert [agent_import.decode_mutf7(n) for n in ("Re&AOc-us", "A&-B", "&ZeVnLIqe-", "bad&zz", "bad&AOc")] == [
        "Reçus", "A&B", "日本語", "bad&zz", "bad&AOc"]
    message(old_tree / ".Factures.&AMk-t&AOk-" / "cur" / "100.5.old:2,S", "five", 1_500_000_005)
    (old_tree / "courierimapsubscribed").write_text("INBOX.Factures.&AMk-t&AOk-\n")
    found = agent_import.folders(old_tree)
    assert [f.imap_name("/") for f in found] == ["INBOX", "Archive/2019", "Factures/Été", "Sent"]
    assert agent_import.read_subscriptions(old_tree, "/") == ["Factures/Été"]
    staged = agent_import.stage(old_tree, found, "/", tmp_path / "stage", set(), owner=None)
    assert ("Factures/Été", "100.5.old") in staged.keys
    assert (tmp_path / "stage" / ".Factures.&AMk-t&AOk-" / "cur" / "100.5.old:2,S").is_file()
