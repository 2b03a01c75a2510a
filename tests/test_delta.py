"""A change travels as a delta (the rows changed since the revision the host confirmed, with the
names removed since then) and the host ends up exactly where the complete document takes it.

- The panel: the first push is complete; then deltas on the confirmed revision; complete again
  when the host says it is behind, after a resync, after support's retry, and on a new host. A
  delta costs the same queries whatever the domain holds. A deletion leaves a tombstone, which
  goes once the host confirms it.
- The host: a long random run of the panel's own service calls, sent as deltas to one host and as
  complete documents to another: after every push the two hosts hold the same rows, homes and
  Sieve scripts. A delta on a revision the host does not have changes nothing and says "behind";
  a delta never takes an address something else holds.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from hosting.models import Domain, Plan, Reseller
from hostlink import push as host_push
from hostlink import reports as host_reports
from hostlink import snapshot, tasks
from lists.models import MailingList
from lists.services import list_create, list_delete, list_member_add
from mail import services as mail
from mail.models import CatchAllMode, Forward, Mailbox, Robot, Routing
from mailhost import agent, contract, maps
from mailhost.apply import HostConfig, apply
from provisioning import revisions
from provisioning.models import DomainSync, RemovedName
from tests.conftest import Cast
from tests.factories import MailboxFactory, MailHostFactory

pytestmark = pytest.mark.django_db
PASSWORD = "Delta-Test-Password-2026"  # noqa: S105 - a test mailbox's
TABLES = ("mailboxes", "aliases", "transports", "names")


def unlimited(cast: Cast) -> None:
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_mailboxes=-1, max_forwards=-1, max_robots=-1, max_lists=-1)
    Reseller.objects.filter(pk=cast.a.reseller.pk).update(max_mailboxes=-1)


def push(cast: Cast, outbox: list[contract.Document], confirm: bool = True) -> contract.Document:
    """Run the push task (its document is sent on commit), and take in the host's report."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        host_push.push(cast.a.domain.pk)
    document = outbox[-1]
    if confirm:
        host_reports.record_report(host="mx1", domain=document["domain"], revision=document["revision"],
                                   state="present")
    return document


def host(tmp_path: Path, name: str) -> HostConfig:
    config = HostConfig(name=name, root=tmp_path / name)
    (config.root / "db").mkdir(parents=True)
    maps.create(config.maps_db)
    return config


def state(cfg: HostConfig, domain: str) -> dict[str, Any]:
    """What the host holds for a domain, its own root written as ROOT (two hosts compare equal)."""
    db = sqlite3.connect(cfg.maps_db)
    try:
        rows = {t: sorted(db.execute(f"SELECT * FROM {t} WHERE domain = ?", (domain,)).fetchall())  # noqa: S608
                for t in TABLES}
        rows["domains"] = db.execute("SELECT * FROM domains WHERE domain = ?", (domain,)).fetchall()
    finally:
        db.close()
    root = str(cfg.vmail_root.resolve())
    rows = {t: [tuple(str(v).replace(root, "ROOT") if isinstance(v, str) else v for v in r) for r in found]
            for t, found in rows.items()}
    folder = cfg.vmail_root / domain
    rows["files"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.is_dir() else []
    lists_folder = cfg.mlmmj_root / domain
    rows["lists"] = sorted(p.name for p in lists_folder.iterdir()) if lists_folder.is_dir() else []
    return rows


def deliver(cfg: HostConfig, domain: str, local: str, step: int) -> None:
    """A message in the mailbox's Maildir, as Dovecot would leave it."""
    new = cfg.vmail_root / domain / local / "Maildir" / "new"
    new.mkdir(parents=True, exist_ok=True)
    (new / f"{step}.msg").write_text("Subject: hello\n\nhi\n")


# --------------------------------------------------------------------------------------------------
# The panel: what it sends
# --------------------------------------------------------------------------------------------------


def test_the_first_push_is_complete_then_deltas_on_the_confirmed_revision(cast: Cast, outbox: list) -> None:
    first = push(cast, outbox)
    assert not contract.is_delta(first) and len(first["mailboxes"]) == 2
    mail.mailbox_set_access(mailbox=cast.mailbox_user, allow_pop3=False, acting_user=cast.operator)
    delta = push(cast, outbox)
    contract.check_document(delta, complete=True)
    assert delta["base"] == first["revision"] and delta["revision"] == first["revision"] + 1
    assert [m["local_part"] for m in delta["mailboxes"]] == ["alphauser"] and not delta["mailboxes"][0]["allow_pop3"]
    assert (delta["forwards"], delta["robots"], delta["lists"], delta["removed"]) == ([], [], [], [])
    assert delta["catchall"] == {"mode": "bounce", "target": ""}


def test_an_unconfirmed_revision_is_sent_again_in_the_next_delta(cast: Cast, outbox: list) -> None:
    base = push(cast, outbox)["revision"]
    mail.mailbox_set_access(mailbox=cast.mailbox_user, allow_pop3=False, acting_user=cast.operator)
    push(cast, outbox, confirm=False)  # lost on the way
    mail.forward_create(domain=cast.a.domain, local_part="sales", destinations=["x@remote.test"],
                        acting_user=cast.operator)
    delta = push(cast, outbox)
    assert delta["base"] == base
    assert [m["local_part"] for m in delta["mailboxes"]] == ["alphauser"]
    assert [f["local_part"] for f in delta["forwards"]] == ["sales"]


@pytest.mark.parametrize("reason", ["behind", "resync", "retry", "new host"])
def test_the_whole_domain_is_sent_again(cast: Cast, outbox: list, reason: str) -> None:
    push(cast, outbox)
    mail.mailbox_set_access(mailbox=cast.mailbox_user, allow_pop3=False, acting_user=cast.operator)
    if reason == "behind":
        revision = Domain.objects.get(pk=cast.a.domain.pk).revision
        tasks.report(host="mx1", domain=cast.a.domain.name, revision=revision, state="present", behind=True)
        assert DomainSync.objects.get(domain=cast.a.domain).needs_full
    elif reason == "resync":
        revisions.resync_host(cast.host)
    elif reason == "retry":
        revisions.retry(cast.a.domain)
    else:
        cast.a.pack.mail_host = MailHostFactory(name="mx2")
        cast.a.pack.save(update_fields=["mail_host"])
    document = push(cast, outbox, confirm=False)
    assert not contract.is_delta(document) and len(document["mailboxes"]) == 2
    assert not DomainSync.objects.get(domain=cast.a.domain).needs_full


def test_a_deletion_travels_as_a_tombstone_until_the_host_confirms_it(cast: Cast, outbox: list) -> None:
    unlimited(cast)
    push(cast, outbox)
    mail.mailbox_delete(mailbox=cast.mailbox_user, redirect_to="boss@remote.test", acting_user=cast.operator)
    robot = mail.robot_create(domain=cast.a.domain, local_part="info", subject="Hi", message="Hello",
                              acting_user=cast.operator)
    mail.robot_delete(robot=robot, acting_user=cast.operator)
    delta = push(cast, outbox, confirm=False)
    assert delta["removed"] == ["alphauser", "info"]
    assert delta["mailboxes"] == [] and delta["robots"] == []
    assert [(f["local_part"], f["destinations"]) for f in delta["forwards"]] == [("alphauser", ["boss@remote.test"])]
    host_reports.record_report(host="mx1", domain=delta["domain"], revision=delta["revision"] - 1, state="present")
    assert list(RemovedName.objects.values_list("name", flat=True)) == ["info"]  # not confirmed yet
    host_reports.record_report(host="mx1", domain=delta["domain"], revision=delta["revision"], state="present")
    assert not RemovedName.objects.exists()
    assert push(cast, outbox)["removed"] == []


def test_a_report_from_another_host_keeps_the_tombstones(cast: Cast, outbox: list) -> None:
    push(cast, outbox)
    forward = mail.forward_create(domain=cast.a.domain, local_part="sales", destinations=["x@remote.test"],
                                  acting_user=cast.operator)
    mail.forward_delete(forward=forward, acting_user=cast.operator)
    revision = Domain.objects.get(pk=cast.a.domain.pk).revision
    MailHostFactory(name="mx9")
    host_reports.record_report(host="mx9", domain=cast.a.domain.name, revision=revision, state="present")
    assert RemovedName.objects.filter(name="sales").exists()


def test_a_delta_costs_the_same_queries_whatever_the_domain_holds(cast: Cast, outbox: list) -> None:
    unlimited(cast)
    list_create(domain=cast.a.domain, name="news", owner="owner@remote.test", acting_user=cast.operator)
    push(cast, outbox)

    def delta_queries() -> int:
        mail.mailbox_set_access(mailbox=cast.mailbox_user, allow_imap=not cast.mailbox_user.allow_imap,
                                acting_user=cast.operator)
        domain = Domain.objects.get(pk=cast.a.domain.pk)
        with CaptureQueriesContext(connection) as queries:
            delta = snapshot.build_delta(domain, base=domain.revision - 1)
        assert [m["local_part"] for m in delta["mailboxes"]] == ["alphauser"]
        return len(queries)

    small = delta_queries()
    for i in range(200):
        MailboxFactory(domain=cast.a.domain, local_part=f"user{i:03d}", revision=1)
        Forward.objects.create(domain=cast.a.domain, local_part=f"fwd{i:03d}", destinations=["x@remote.test"],
                               revision=1)
    assert delta_queries() == small <= 9  # 8: the DKIM key (one row, format 6); 9: spam filtering (format 7)


def test_a_service_call_makes_at_most_five_queries(cast: Cast, outbox: list) -> None:
    mailbox = Mailbox.objects.select_related("domain").get(pk=cast.mailbox_user.pk)
    with CaptureQueriesContext(connection) as queries:
        mail.mailbox_set_access(mailbox=mailbox, allow_pop3=False, acting_user=cast.operator)
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))]
    assert len(statements) <= 5, statements


# --------------------------------------------------------------------------------------------------
# The host: a delta takes it where the whole document would
# --------------------------------------------------------------------------------------------------


def random_change(cast: Cast, rng: random.Random, step: int) -> None:
    """One of the panel's service calls on domain A, chosen at random among those that apply."""
    domain, op = Domain.objects.get(pk=cast.a.domain.pk), cast.operator
    mailboxes = list(Mailbox.objects.filter(domain=domain).exclude(local_part="postmaster"))
    forwards = list(Forward.objects.filter(domain=domain))
    robots = list(Robot.objects.filter(domain=domain))
    lists = list(MailingList.objects.filter(domain=domain))
    free = f"n{step}"
    reused = rng.choice(["gone1", "gone2", free])  # names that come back after a deletion
    if not mail.address_taken(domain, reused):
        free = reused
    choices: list[Any] = [
        lambda: mail.mailbox_create(domain=domain, local_part=free, password=PASSWORD, acting_user=op),
        lambda: mail.forward_create(domain=domain, local_part=free, destinations=["x@remote.test"], acting_user=op),
        lambda: mail.robot_create(domain=domain, local_part=free, subject="Réponse", message="Bonjour",
                                  copy_to=rng.choice(["", "copy@remote.test"]), acting_user=op),
        lambda: mail.catchall_set(domain=domain, mode=rng.choice([CatchAllMode.BOUNCE, CatchAllMode.DELETE,
                                                                  CatchAllMode.REMOTE]),
                                  target="all@remote.test", acting_user=op),
    ]
    if len(lists) < 2:
        choices.append(lambda: list_create(domain=domain, name=free, owner="owner@remote.test", acting_user=op))
    if mailboxes:
        m = rng.choice(mailboxes)
        choices += [
            lambda: mail.mailbox_set_access(mailbox=m, allow_pop3=not m.allow_pop3, acting_user=op),
            lambda: mail.mailbox_set_quota(mailbox=m, quota_mb=rng.choice([10, 20, 30]), acting_user=op),
            lambda: mail.mailbox_set_routing(mailbox=m, routing=rng.choice([Routing.STANDARD, Routing.DELETE,
                                                                            Routing.FORWARD]),
                                             forward_to=["away@remote.test"], keep_copy=rng.random() < 0.5,
                                             acting_user=op),
            lambda: mail.mailbox_set_vacation(mailbox=m, enabled=rng.random() < 0.7, subject="Absent",
                                              message=f"Retour le {step}", start=date(2026, 12, 1),
                                              end=date(2026, 12, 31), days=2, acting_user=op),
            lambda: mail.mailbox_set_password(mailbox=m, password=PASSWORD + str(step), acting_user=op),
            lambda: mail.mailbox_delete(mailbox=m, redirect_to=rng.choice(["", "boss@remote.test"]),
                                        acting_user=op),
        ]
    if forwards:
        f = rng.choice(forwards)
        choices += [
            lambda: mail.forward_set_destinations(forward=f, destinations=[f"d{step}@remote.test"], acting_user=op),
            lambda: mail.forward_delete(forward=f, acting_user=op),
        ]
    if robots:
        choices.append(lambda: mail.robot_delete(robot=rng.choice(robots), acting_user=op))
    if lists:
        ml = rng.choice(lists)
        choices += [
            lambda: list_member_add(mailing_list=ml, address=f"reader{step}@remote.test", acting_user=op),
            lambda: list_delete(mailing_list=ml, acting_user=op),
        ]
    try:
        rng.choice(choices)()
    except Exception as error:  # noqa: BLE001 - a refusal of the panel's rules (a loop...) is a no-op here
        if type(error).__name__ != "ValidationError":
            raise


@pytest.fixture
def open_root() -> Iterator[Path]:
    """A folder the mail user may cross (as root, mlmmj's tools run as the owner of the list)."""
    root = Path(tempfile.mkdtemp(prefix="mailpanel-delta-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("read", ["by address", "one pass"])
def test_deltas_take_the_host_where_the_whole_document_takes_it(cast: Cast, outbox: list, open_root: Path,
                                                                 read: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host reads a delta's rows by address, or (a delta of thousands of addresses) in one
    pass over the domain's: both ways give the same host."""
    if read == "one pass":
        monkeypatch.setattr("mailhost.apply.MANY", 0)
    unlimited(cast)
    by_delta, by_whole = host(open_root, "delta"), host(open_root, "whole")
    rng = random.Random(20261201)
    name = cast.a.domain.name
    deltas = 0
    for step in range(60):

        for _ in range(rng.choice([1, 1, 1, 2, 4])):  # sometimes several changes coalesce in one push
            random_change(cast, rng, step)
        document = push(cast, outbox)
        deltas += contract.is_delta(document)
        apply(document, by_delta)
        apply(snapshot.build(Domain.objects.get(pk=cast.a.domain.pk)), by_whole)
        for local in Mailbox.objects.filter(domain=cast.a.domain).values_list("local_part", flat=True):
            if rng.random() < 0.2:
                deliver(by_delta, name, local, step)
                deliver(by_whole, name, local, step)
        # The maildirs written the same way on both: compare them by name only.
        assert state(by_delta, name) == state(by_whole, name), f"the hosts differ after step {step}"
    assert deltas == 59  # the first push only is complete
    assert RemovedName.objects.count() == 0  # every tombstone went once confirmed


def test_a_delta_on_a_revision_the_host_lacks_changes_nothing(cast: Cast, outbox: list, tmp_path: Path) -> None:
    cfg = host(tmp_path, "h")
    apply(push(cast, outbox), cfg)
    mail.mailbox_set_access(mailbox=cast.mailbox_user, allow_pop3=False, acting_user=cast.operator)
    apply(push(cast, outbox), cfg)
    mail.mailbox_set_access(mailbox=cast.mailbox_user, allow_pop3=True, acting_user=cast.operator)
    lost = push(cast, outbox)  # never applied
    mail.mailbox_set_access(mailbox=cast.mailbox_user, allow_imap=False, acting_user=cast.operator)
    delta = push(cast, outbox)
    assert delta["base"] == lost["revision"]
    before = state(cfg, cast.a.domain.name)
    with pytest.raises(contract.Behind, match=f"this host has revision {lost['revision'] - 1}, "
                                              f"the delta needs {lost['revision']}"):
        apply(delta, cfg)
    assert state(cfg, cast.a.domain.name) == before
    absent = {"format": contract.FORMAT, "domain": cast.a.domain.name, "revision": delta["revision"] + 1,
              "state": "absent"}
    apply(absent, cfg)
    with pytest.raises(contract.Behind):  # a removed domain takes no delta, whatever its revision
        apply({**delta, "base": 1, "revision": delta["revision"] + 2}, cfg)


def test_the_agent_says_behind_and_the_panel_sends_the_whole_domain(
    cast: Cast, outbox: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = HostConfig(name="mx1", root=tmp_path)
    monkeypatch.setattr(agent, "CONFIG", config)
    monkeypatch.setattr(agent, "_prepared", False)
    reports: list[dict[str, Any]] = []
    monkeypatch.setattr(agent.app, "send_task", lambda name, kwargs, queue: reports.append(kwargs))
    push(cast, outbox)  # confirmed by a host that is then rebuilt empty
    mail.mailbox_set_access(mailbox=cast.mailbox_user, allow_pop3=False, acting_user=cast.operator)
    agent.apply_document(push(cast, outbox, confirm=False))
    (report,) = reports
    contract.check(report, contract.Report)
    assert report["behind"] is True and "error" not in report
    tasks.report(**report)
    document = push(cast, outbox, confirm=False)
    assert not contract.is_delta(document)
    agent.apply_document(document)
    assert "error" not in reports[-1] and not reports[-1].get("behind")
    db = sqlite3.connect(config.maps_db)
    assert db.execute("SELECT allow_pop3 FROM mailboxes WHERE email = ?",
                      (f"alphauser@{cast.a.domain.name}",)).fetchone() == (0,)


def test_a_delta_never_takes_an_address_something_else_holds(tmp_path: Path) -> None:
    cfg = host(tmp_path, "h")
    mailbox = {"local_part": "sales", "password_hash": "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA",
               "quota_bytes": 0, "active": True, "allow_pop3": True, "allow_imap": True, "allow_smtp": True}
    apply({"format": contract.FORMAT, "domain": "d.test", "revision": 1, "state": "present",
           "mailboxes": [mailbox]}, cfg)
    before = state(cfg, "d.test")
    forward = {"local_part": "sales", "destinations": ["x@remote.test"]}
    delta = {"format": contract.FORMAT, "domain": "d.test", "revision": 2, "base": 1, "state": "present",
             "forwards": [forward]}
    with pytest.raises(contract.DocumentError, match="address used twice: sales@d.test is a mailbox here"):
        apply(delta, cfg)
    assert state(cfg, "d.test") == before
    apply({**delta, "removed": ["sales"]}, cfg)  # removed first: the name is free
    after = state(cfg, "d.test")
    assert after["mailboxes"] == [] and after["names"] == [("sales@d.test", "d.test", "forward")]


def test_a_host_of_the_first_schema_takes_the_whole_domain_first(tmp_path: Path) -> None:
    cfg = host(tmp_path, "h")
    apply({"format": contract.FORMAT, "domain": "d.test", "revision": 5, "state": "present"}, cfg)
    db = sqlite3.connect(cfg.maps_db)
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    maps.create(cfg.maps_db)  # the agent's start on the new version
    with pytest.raises(contract.Behind):
        apply({"format": contract.FORMAT, "domain": "d.test", "revision": 6, "base": 5, "state": "present"}, cfg)
    apply({"format": contract.FORMAT, "domain": "d.test", "revision": 6, "state": "present"}, cfg)
    assert state(cfg, "d.test")["domains"] == [("d.test", 1, 6)]


def test_only_a_delta_may_name_removed_objects(tmp_path: Path) -> None:
    cfg = host(tmp_path, "h")
    whole = {"format": contract.FORMAT, "domain": "d.test", "revision": 1, "state": "present", "removed": ["x"]}
    with pytest.raises(contract.DocumentError, match="unknown removed"):
        apply(whole, cfg)
    with pytest.raises(contract.DocumentError, match="base: expected int"):
        apply({**whole, "base": "1"}, cfg)
