"""The vpopmail import, the panel's side (vpopmail.importer, mail.bulkimport, lists.bulkimport):
every mapping from a source tree's objects to the panel's rows, a second run that changes nothing,
a dry run that writes nothing, names the panel holds already (another customer's, reserved)
skipped and reported, the pack's limits, hashes kept as they are and upgraded at the panel's
login, and a hostile tree that harms nothing.

The source is built by hand (vpopmail.source's dataclasses, the reader's output); the command's
tests read a real tree (tests/vpopmail_tree.py) when it is there."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation
from passlib.hash import md5_crypt, sha512_crypt

from hosting.models import AuditEvent, Domain, Pack, VerifiedHow
from hosting.validators import MAX_QUOTA_MB
from lists import bulkimport as list_bulk
from lists.models import ListMember, MailingList, MemberKind, Posting
from mail import bulkimport
from mail.models import CatchAll, CatchAllMode, Forward, Mailbox, Robot, Routing
from mailhost.contract import reserved_suffix
from mailhost.passwords import verify_password
from provisioning.models import MailImport, RemovedName
from tests.conftest import Cast
from tests.factories import MAILBOX_PASSWORD_HASH, DomainFactory, MailboxFactory, PackFactory, PlanFactory
from tests.vpopmail_tree import Tree, big_tree, build_tree
from vpopmail import importer
from vpopmail import source as vp
from vpopmail.importer import Kind, State

ROOT = Path("/srv/old")
OLD_PASSWORD = "Old-Server-Secret-7"
MD5_HASH = "{MD5-CRYPT}" + md5_crypt.hash(OLD_PASSWORD)
SHA512_HASH = "{SHA512-CRYPT}" + sha512_crypt.hash("Another-Old-Secret-8")


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """The refusals are read in English here, whichever test ran before (LANGUAGE_CODE is fr)."""
    with translation.override("en"):
        yield


@pytest.fixture
def pack(cast: Cast) -> Pack:
    """A pack of customer A with room for the import."""
    plan = PlanFactory(reseller=cast.a.reseller, name="import-plan", max_domains=5, max_alias_domains=3,
                       max_mailboxes=50, max_forwards=20, max_robots=5, max_lists=5, max_list_members=100,
                       default_quota_mb=200)
    return PackFactory(customer=cast.a.customer, plan=plan, mail_host=cast.host)


def home(domain: str, local: str) -> Path:
    return ROOT / "home/vpopmail/domains" / domain / local


def mailbox(domain: str, local: str, **fields) -> vp.Mailbox:
    fields.setdefault("password_hash", MD5_HASH)
    return vp.Mailbox(local_part=local, home=home(domain, local), maildir=home(domain, local) / "Maildir", **fields)


def rich_domain(name: str = "moved.test") -> vp.Domain:
    """One domain with one of each thing a vpopmail domain holds."""
    return vp.Domain(
        name=name, path=ROOT / "home/vpopmail/domains" / name, aliases=[f"alias-{name}"],
        limits=vp.Limits(max_mailboxes=-1, default_quota_mb=100),
        mailboxes=[
            mailbox(name, "postmaster", real_name="Postmaster", flags=vp.QA_ADMIN),
            mailbox(name, "alice", real_name="Alice Dupré", quota_bytes=50 * 1024 * 1024 + 1,
                    password_hash=SHA512_HASH, quota_messages=1000),
            mailbox(name, "bob", real_name="Bob", flags=vp.NO_POP | vp.NO_IMAP | vp.NO_SMTP, quota_bytes=None,
                    forward_to=["bob@elsewhere.test"], keep_copy=True),
            mailbox(name, "carol", flags=vp.QA_ADMIN, delete_all=True),
            mailbox(name, "dave", vacation=vp.Vacation(subject="Away", message="Back on Monday.",
                                                       reply_seconds=3 * 86400)),
            mailbox(name, "erin", forward_to=["erin@elsewhere.test"]),
        ],
        forwards=[vp.Forward(local_part="sales", destinations=["alice@" + name, "partner@elsewhere.test"]),
                  vp.Forward(local_part="void", discard=True)],
        robots=[vp.Robot(local_part="info", subject="Info", message="We answer within a day.",
                         copy_to="alice@" + name, reply_seconds=7200)],
        catchall=vp.CatchAll(mode="mailbox", target="alice"),
        lists=[vp.MailingList(
            name="club", owner="alice@" + name,
            options={"posting": Posting.MODERATED, "prefix": "[club]", "archive": False},
            texts={"prologue": "Welcome to the club."},
            subscribers=["one@members.test", "two@members.test", "not an address"],
            moderators=["alice@" + name], digest_subscribers=["three@members.test"],
            path=ROOT / "home/vpopmail/domains" / name / "club")],
    )


def server(*domains: vp.Domain) -> vp.Server:
    return vp.Server(root=ROOT, domains=list(domains))


def import_all(src: vp.Server, pack: Pack) -> importer.Report:
    return importer.run(importer.plan(src, pack))


def snapshot() -> tuple:
    """What a run may change: rows of every kind, every domain's revision, the audit log."""
    return (
        list(Domain.objects.order_by("pk").values_list("name", "revision", "verified_at")),
        list(Mailbox.objects.order_by("pk").values_list("local_part", "password_hash", "revision")),
        Forward.objects.count(), Robot.objects.count(), MailingList.objects.count(), ListMember.objects.count(),
        CatchAll.objects.count(), AuditEvent.objects.count(),
    )


# The mappings.

def test_every_object_of_a_domain_is_mapped(cast: Cast, pack: Pack) -> None:
    report = import_all(server(rich_domain()), pack)

    domain = Domain.objects.get(name="moved.test")
    assert domain.pack == pack and domain.verified_how == VerifiedHow.IMPORT and domain.verified_at
    alias = Domain.objects.get(name="alias-moved.test")
    assert alias.alias_of == domain and alias.verified_how == VerifiedHow.IMPORT

    boxes = {m.local_part: m for m in Mailbox.objects.filter(domain=domain)}
    assert set(boxes) == {"postmaster", "alice", "bob", "carol", "dave", "erin"}
    assert boxes["postmaster"].is_admin and boxes["carol"].is_admin and not boxes["alice"].is_admin
    assert boxes["postmaster"].password_hash == MD5_HASH  # as is, never re-hashed
    assert boxes["alice"].password_hash == SHA512_HASH
    assert boxes["alice"].real_name == "Alice Dupré" and boxes["alice"].search_name == "alice alice dupre"
    assert boxes["alice"].quota_mb == 51  # bytes rounded up to whole MB
    assert boxes["bob"].quota_mb == 0  # NOQUOTA: unlimited (the pack has no total quota)
    assert boxes["postmaster"].quota_mb == 0  # NOQUOTA as well
    assert (boxes["bob"].allow_pop3, boxes["bob"].allow_imap, boxes["bob"].allow_smtp) == (False, False, False)
    assert (boxes["alice"].allow_pop3, boxes["alice"].allow_imap, boxes["alice"].allow_smtp) == (True, True, True)
    assert (boxes["bob"].routing, boxes["bob"].forward_to, boxes["bob"].keep_copy) == (
        Routing.FORWARD, ["bob@elsewhere.test"], True)
    assert (boxes["erin"].routing, boxes["erin"].keep_copy) == (Routing.FORWARD, False)
    assert boxes["carol"].routing == Routing.DELETE
    dave = boxes["dave"]
    assert (dave.vacation_enabled, dave.vacation_subject, dave.vacation_message, dave.vacation_days) == (
        True, "Away", "Back on Monday.", 3)

    assert Forward.objects.get(domain=domain, local_part="sales").destinations == [
        "alice@moved.test", "partner@elsewhere.test"]
    assert Forward.objects.get(domain=domain, local_part="void").destinations == []  # accepted and dropped
    robot = Robot.objects.get(domain=domain, local_part="info")
    assert (robot.subject, robot.message, robot.copy_to, robot.reply_hours) == (
        "Info", "We answer within a day.", "alice@moved.test", 2)
    catchall = CatchAll.objects.get(domain=domain)
    assert (catchall.mode, catchall.target) == (CatchAllMode.MAILBOX, "alice")

    club = MailingList.objects.get(domain=domain, name="club")
    assert (club.posting, club.prefix, club.archive, club.owner) == (
        Posting.MODERATED, "[club]", False, "alice@moved.test")
    assert club.texts == {"prologue": "Welcome to the club."}
    members = set(ListMember.objects.filter(mailing_list=club).values_list("kind", "address"))
    assert {(MemberKind.SUBSCRIBER, "one@members.test"), (MemberKind.SUBSCRIBER, "two@members.test"),
            (MemberKind.MODERATOR, "alice@moved.test"),
            (MemberKind.DIGEST, "three@members.test")} <= members

    assert report.created[Kind.MAILBOX] == 6 and report.created["domains"] == 1
    whys = " | ".join(f"{p.what}: {p.why}" for p in report.problems)
    assert "1000 messages" in whys and "not an address" in whys and "void" not in whys
    # The mail copy's list: each account created and its Maildir under ROOT.
    [(copied_domain, pairs)] = report.maildirs
    assert copied_domain == domain
    assert ("alice@moved.test", home("moved.test", "alice") / "Maildir") in pairs


def test_quota_none_given_takes_nothing_unlimited_when_the_pack_has_a_total(cast: Cast, pack: Pack) -> None:
    """NOQUOTA on a pack with a total quota: the plan's default (the pack refuses unlimited ones), reported."""
    pack.plan.total_quota_mb = 10_000
    pack.plan.save()
    src = server(vp.Domain(name="q.test", path=ROOT / "q", mailboxes=[mailbox("q.test", "postmaster")]))
    report = import_all(src, pack)
    assert Mailbox.objects.get(domain__name="q.test").quota_mb == 200
    assert any("plan's default" in p.why for p in report.problems)


def test_a_bulk_import_writes_one_revision_and_one_audit_row_for_its_mailboxes(cast: Cast, pack: Pack) -> None:
    src = server(vp.Domain(name="many.test", path=ROOT / "many",
                           mailboxes=[mailbox("many.test", f"user{n}") for n in range(30)]))
    pack.plan.max_mailboxes = -1
    pack.plan.save()
    import_all(src, pack)
    domain = Domain.objects.get(name="many.test")
    assert len(set(Mailbox.objects.filter(domain=domain).values_list("revision", flat=True))) == 1
    rows = AuditEvent.objects.filter(domain_id=domain.pk, action="mailbox.import")
    assert rows.count() == 1 and rows.get().detail["source"] == "vpopmail import"
    assert not AuditEvent.objects.filter(domain_id=domain.pk, action="mailbox.create").exists()


# A second run, a changed source, a dry run.

def test_a_second_run_changes_nothing(cast: Cast, pack: Pack) -> None:
    src = server(rich_domain())
    import_all(src, pack)
    before = snapshot()
    again = importer.plan(src, pack)
    assert {i.state for dp in again.domains for i in dp.items} <= {State.PRESENT, State.SKIP}
    report = importer.run(again)
    assert snapshot() == before  # no row, no revision, no audit row
    assert not report.created


def test_a_changed_source_is_reported_and_not_overwritten(cast: Cast, pack: Pack) -> None:
    import_all(server(rich_domain()), pack)
    changed = rich_domain()
    changed.mailboxes[1].real_name = "Alice Martin"
    changed.mailboxes[1].password_hash = "{MD5-CRYPT}" + md5_crypt.hash("A-New-Password-9")
    changed.forwards[0].destinations = ["someone@else.test"]
    changed.catchall = vp.CatchAll(mode="bounce")
    before = snapshot()
    found = importer.plan(server(changed), pack)
    differs = {(i.kind, i.name): i.why for dp in found.domains for i in dp.items if i.state == State.DIFFERS}
    assert "real_name" in differs[(Kind.MAILBOX, "alice")] and "password" in differs[(Kind.MAILBOX, "alice")]
    assert (Kind.FORWARD, "sales") in differs and (Kind.CATCHALL, "bounce") in differs
    importer.run(found)
    assert snapshot() == before
    assert Mailbox.objects.get(local_part="alice", domain__name="moved.test").real_name == "Alice Dupré"


def test_a_password_upgraded_at_a_login_is_not_a_difference(cast: Cast, pack: Pack) -> None:
    import_all(server(rich_domain()), pack)
    Mailbox.objects.filter(local_part="alice").update(password_hash=MAILBOX_PASSWORD_HASH)  # {ARGON2ID}
    found = importer.plan(server(rich_domain()), pack)
    assert all(i.state != State.DIFFERS for dp in found.domains for i in dp.items)


def test_the_plan_writes_nothing(cast: Cast, pack: Pack) -> None:
    before = snapshot()
    found = importer.plan(server(rich_domain(), rich_domain("other.test")), pack)
    assert snapshot() == before
    assert [dp.state for dp in found.domains] == [State.CREATE, State.CREATE]
    assert len(found.domains[0].of(Kind.MAILBOX, State.CREATE)) == 6


# Names the panel holds already: skipped, reported, never touched.

def test_a_domain_another_customer_holds_is_skipped_and_untouched(cast: Cast, pack: Pack) -> None:
    theirs = cast.b.domain
    before = (theirs.revision, list(Mailbox.objects.filter(domain=theirs).values_list("local_part", "password_hash")))
    hostile = rich_domain(theirs.name)
    hostile.mailboxes[0].password_hash = MD5_HASH  # the attacker's postmaster password
    found = importer.plan(server(hostile, rich_domain()), pack)
    assert found.domains[0].state == State.SKIP and "another pack" in found.domains[0].why
    report = importer.run(found)
    theirs.refresh_from_db()
    assert (theirs.revision, list(Mailbox.objects.filter(domain=theirs).values_list("local_part", "password_hash"))
            ) == before
    assert theirs.pack == cast.b.pack
    assert any(p.what == theirs.name for p in report.problems)
    assert Domain.objects.filter(name="moved.test", pack=pack).exists()  # the others go on


@pytest.mark.parametrize("name", ["mail.invalid", "mx1.hosting.test", "www.moved.test"])
def test_a_reserved_name_is_skipped(cast: Cast, pack: Pack, name: str) -> None:
    found = importer.plan(server(rich_domain(name)), pack)
    assert found.domains[0].state == State.SKIP
    importer.run(found)
    assert not Domain.objects.filter(pack=pack).exists()


def test_a_name_under_another_customers_domain_is_skipped(cast: Cast, pack: Pack) -> None:
    found = importer.plan(server(rich_domain(f"sub.{cast.b.domain.name}")), pack)
    assert found.domains[0].state == State.SKIP and "another customer" in found.domains[0].why


def test_an_alias_name_another_customer_holds_is_skipped(cast: Cast, pack: Pack) -> None:
    src = rich_domain()
    src.aliases = [cast.b.domain.name, "mine-too.test"]
    report = import_all(server(src), pack)
    assert Domain.objects.get(name=cast.b.domain.name).alias_of is None
    assert getattr(Domain.objects.get(name="mine-too.test").alias_of, "name", None) == "moved.test"
    assert any(p.what.endswith(cast.b.domain.name) for p in report.problems)


def test_a_domain_of_another_pack_of_the_same_customer_is_skipped(cast: Cast, pack: Pack) -> None:
    found = importer.plan(server(rich_domain(cast.a.domain.name)), pack)
    assert found.domains[0].state == State.SKIP


# The pack's limits.

def test_a_domain_beyond_the_packs_mailboxes_is_refused_whole(cast: Cast, pack: Pack) -> None:
    pack.plan.max_mailboxes = 7
    pack.plan.save()
    small = vp.Domain(name="small.test", path=ROOT / "small", mailboxes=[mailbox("small.test", "postmaster")])
    found = importer.plan(server(rich_domain(), rich_domain("second.test"), small), pack)
    assert [dp.state for dp in found.domains] == [State.CREATE, State.SKIP, State.CREATE]
    assert "6 new POP accounts (room for 1)" in found.domains[1].why
    importer.run(found)
    assert not Domain.objects.filter(name="second.test").exists()
    assert Mailbox.objects.filter(domain__pack=pack).count() == 7


def test_a_domain_beyond_the_packs_domains_is_refused(cast: Cast, pack: Pack) -> None:
    pack.plan.max_domains = 1
    pack.plan.save()
    found = importer.plan(server(rich_domain(), rich_domain("second.test")), pack)
    assert [dp.state for dp in found.domains] == [State.CREATE, State.SKIP]
    assert "domains" in found.domains[1].why


def test_a_domain_beyond_the_alias_domains_is_refused(cast: Cast, pack: Pack) -> None:
    pack.plan.max_alias_domains = 0
    pack.plan.save()
    found = importer.plan(server(rich_domain()), pack)
    assert found.domains[0].state == State.SKIP and "alias domains" in found.domains[0].why


def test_a_list_beyond_its_member_limit_refuses_its_domain(cast: Cast, pack: Pack) -> None:
    pack.plan.max_list_members = 3
    pack.plan.save()
    found = importer.plan(server(rich_domain()), pack)
    assert found.domains[0].state == State.SKIP and "club" in found.domains[0].why


def test_the_old_servers_larger_limits_are_reported(cast: Cast, pack: Pack) -> None:
    found = importer.plan(server(rich_domain()), pack)
    assert any("allowed unlimited POP accounts" in p.why for p in found.domains[0].problems)


# Passwords: kept as they are, upgraded at the panel's login; never a clear text.

def test_an_imported_hash_opens_the_panels_login_and_is_upgraded_there(cast: Cast, pack: Pack) -> None:
    import_all(server(rich_domain()), pack)
    response = Client(HTTP_ACCEPT_LANGUAGE="en").post(
        reverse("screens:login"), {"account": "postmaster", "domain": "moved.test", "password": OLD_PASSWORD},
        REMOTE_ADDR="192.0.2.77")
    assert response.status_code == 302
    stored = Mailbox.objects.get(domain__name="moved.test", local_part="postmaster").password_hash
    assert stored.startswith("{ARGON2ID}") and verify_password(OLD_PASSWORD, stored)


@pytest.mark.parametrize("given", ["", "{PLAIN}Clear-Text-1", "{CLEARTEXT}Clear-Text-1", "no scheme at all"])
def test_an_unusable_hash_is_never_stored_and_no_password_opens_it(cast: Cast, pack: Pack, given: str) -> None:
    src = server(vp.Domain(name="bad.test", path=ROOT / "bad",
                           mailboxes=[mailbox("bad.test", "postmaster", password_hash=given)]))
    report = import_all(src, pack)
    stored = Mailbox.objects.get(domain__name="bad.test").password_hash
    assert stored.startswith("{SHA512-CRYPT}$6$") and "Clear-Text" not in stored
    assert not verify_password("Clear-Text-1", stored) and not verify_password("", stored)
    assert any("password nobody knows" in p.why for p in report.problems)


# A hostile tree.

def test_a_hostile_tree_harms_nothing(cast: Cast, pack: Pack) -> None:
    name = "evil.test"
    src = vp.Domain(
        name=name, path=ROOT / name,
        mailboxes=[
            mailbox(name, "postmaster"),
            vp.Mailbox(local_part="escape", password_hash=MD5_HASH, home=ROOT / name / "escape",
                       maildir=ROOT / ".." / ".." / "etc"),
            vp.Mailbox(local_part="../../root", password_hash=MD5_HASH),
            vp.Mailbox(local_part=cast.a.postmaster.local_part, password_hash=MD5_HASH, real_name="a\nb"),
        ],
        forwards=[vp.Forward(local_part="escape", destinations=["x@y.test"]),
                  vp.Forward(local_part="loop", destinations=["loop@" + name])],
        robots=[vp.Robot(local_part="bot", subject="Subject\nBcc: victim@x.test", message="hi")],
        catchall=vp.CatchAll(mode="remote", target="not an address"),
        lists=[vp.MailingList(name="bad+list", owner="postmaster@" + name)],
    )
    theirs = snapshot()[1][:3]
    report = import_all(server(src), pack)
    domain = Domain.objects.get(name=name)
    assert set(Mailbox.objects.filter(domain=domain).values_list("local_part", flat=True)) == {"escape", "postmaster"}
    assert not Forward.objects.filter(domain=domain).exists()  # "escape" is a POP account; a loop refused
    assert not Robot.objects.filter(domain=domain).exists()  # a header in a subject refused
    assert not CatchAll.objects.filter(domain=domain).exists()
    assert not MailingList.objects.filter(domain=domain).exists()
    copies = [path for _domain, pairs in report.maildirs for _address, path in pairs]
    assert all(importer.inside(server(), path) for path in copies) and len(copies) == 1
    assert snapshot()[1][:3] == theirs  # the cast's mailboxes as they were
    assert len(report.problems) >= 6


# The bulk services' own rules.

def new(local: str, **fields) -> bulkimport.NewMailbox:
    return bulkimport.NewMailbox(local_part=local, password_hash=fields.pop("password_hash", MD5_HASH), **fields)


def test_the_bulk_service_refuses_the_whole_call_beyond_the_packs_room(cast: Cast) -> None:
    domain = cast.a.domain  # plan: 5 POP accounts; postmaster and alphauser there
    before = snapshot()
    with pytest.raises(ValidationError, match="Maximum number of POP accounts"):
        bulkimport.mailboxes_import(domain=domain, mailboxes=[new(f"n{i}") for i in range(4)], acting_user=None)
    assert snapshot() == before
    result = bulkimport.mailboxes_import(domain=domain, mailboxes=[new(f"n{i}") for i in range(3)], acting_user=None)
    assert len(result.created) == 3


def test_the_bulk_service_refuses_the_reseller_pool_beyond_its_room(cast: Cast) -> None:
    cast.a.plan.max_mailboxes = -1
    cast.a.plan.save()
    cast.a.reseller.max_mailboxes = 3
    cast.a.reseller.save()
    with pytest.raises(ValidationError, match="reseller"):
        bulkimport.mailboxes_import(domain=cast.a.domain, mailboxes=[new("n1"), new("n2")], acting_user=None)


def test_the_bulk_service_refuses_the_packs_total_quota(cast: Cast) -> None:
    cast.a.plan.total_quota_mb = 100
    cast.a.plan.save()
    Mailbox.objects.filter(domain=cast.a.domain).update(quota_mb=10)
    with pytest.raises(ValidationError, match="total quota"):
        bulkimport.mailboxes_import(domain=cast.a.domain, mailboxes=[new("big", quota_mb=81)], acting_user=None)
    with pytest.raises(ValidationError, match="unlimited"):
        bulkimport.mailboxes_import(domain=cast.a.domain, mailboxes=[new("big", quota_mb=0)], acting_user=None)


def test_the_bulk_service_leaves_out_taken_names_and_bad_rows(cast: Cast) -> None:
    domain = cast.a.domain
    Forward.objects.create(domain=domain, local_part="sales", destinations=["x@y.test"])
    MailingList.objects.create(domain=domain, name="news", owner="x@y.test")
    result = bulkimport.mailboxes_import(domain=domain, acting_user=None, mailboxes=[
        new("postmaster"), new("sales"), new("news"), new("news-subscribe"), new("bad hash", password_hash="x"),
        new("nohash", password_hash="secret"), new("twice"), new("twice"), new("huge", quota_mb=MAX_QUOTA_MB + 1),
        new("ok")])
    assert result.created == ["twice", "ok"]
    assert set(result.refused) == {"postmaster", "sales", "news", "news-subscribe", "bad hash", "nohash", "twice",
                                   "huge"}
    assert Mailbox.objects.get(domain=cast.a.domain, local_part="postmaster").password_hash == MAILBOX_PASSWORD_HASH


def test_the_bulk_service_refuses_a_chained_forward_and_keeps_the_account(cast: Cast) -> None:
    domain = cast.a.domain
    Forward.objects.create(domain=domain, local_part="sales", destinations=["x@y.test"])
    result = bulkimport.mailboxes_import(domain=domain, acting_user=None, mailboxes=[
        new("fwd", routing=Routing.FORWARD, forward_to=[f"sales@{domain.name}"])])
    assert result.created == ["fwd"] and "fwd" in result.routing_refused
    assert Mailbox.objects.get(domain=domain, local_part="fwd").routing == Routing.STANDARD


def test_the_members_service_refuses_the_whole_call_beyond_the_lists_room(cast: Cast) -> None:
    cast.a.plan.max_list_members = 3
    cast.a.plan.save()
    club = MailingList.objects.create(domain=cast.a.domain, name="club", owner="x@y.test")
    ListMember.objects.create(mailing_list=club, address="x@y.test")
    with pytest.raises(ValidationError):
        list_bulk.members_import(mailing_list=club, acting_user=None, members={
            MemberKind.SUBSCRIBER: ["a@b.test", "c@d.test"], MemberKind.DIGEST: ["e@f.test"]})
    assert club.members.count() == 1
    revision = cast.a.domain.revision
    result = list_bulk.members_import(mailing_list=club, acting_user=None, members={
        MemberKind.SUBSCRIBER: ["x@y.test", "A@b.test", "a@b.test", f"club@{cast.a.domain.name}"],
        MemberKind.MODERATOR: ["x@y.test"]})
    assert (result.added, result.present, len(result.invalid)) == (2, 1, 1)
    club.refresh_from_db()
    cast.a.domain.refresh_from_db()
    assert club.revision == cast.a.domain.revision > revision


# Speed.

def test_ten_thousand_mailboxes_are_written_in_bulk(cast: Cast, pack: Pack) -> None:
    """10,000 accounts in one bulk call per domain (their time: bench/vpopmail_bench.py, BENCHMARKS.md)."""
    pack.plan.max_mailboxes = -1
    pack.plan.save()
    name = "big.test"
    src = server(vp.Domain(name=name, path=ROOT / name, mailboxes=[
        mailbox(name, "postmaster"), *(mailbox(name, f"user{n:05}", real_name=f"User {n}") for n in range(9999))]))
    lines: list[str] = []
    report = importer.run(importer.plan(src, pack), progress=lines.append)
    assert report.created[Kind.MAILBOX] == 10_000
    assert Mailbox.objects.filter(domain__name=name).count() == 10_000
    assert sum("POP accounts written" in line for line in lines) == 10  # a progress line every 1,000


# The command, on a real tree (tests/vpopmail_tree.py).

def run_command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_vpopmail", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return build_tree(tmp_path / "old")


def hosted(name: str) -> bool:
    """Whether the panel may host `name` (a special-use name such as .example never: reported, skipped)."""
    return reserved_suffix(name) is None


def test_the_command_dry_run_prints_the_plan_and_writes_nothing(cast: Cast, pack: Pack, tree: Tree) -> None:
    before = snapshot()
    out, err = run_command(str(tree.root), "--pack", str(pack.pk), "--dry-run", "-v", "2")
    assert snapshot() == before
    assert "exemple.fr (new domain): to create:" in out and "Dry run: nothing written." in out
    for name in tree.domains:
        assert (f"{name} (new domain): to create:" if hosted(name) else f"{name}: SKIPPED") in out
    assert "problem(s):" in out and "reading" in err
    assert "    create: POP account postmaster" in out  # -v 2: each object


def test_the_command_imports_a_tree_once_and_a_second_run_changes_nothing(cast: Cast, pack: Pack, tree: Tree) -> None:
    out, err = run_command(str(tree.root), "--pack", str(pack.pk), "--no-mail")
    domains = [name for name in [*tree.domains, *tree.aliases] if hosted(name)]
    assert f"Created: {len([n for n in tree.domains if hosted(n)])} domains" in out, out
    real = [n for n in tree.domains if hosted(n)]
    assert all(f"/{len(real)}] {name}:" in err for name in real)  # a line per domain
    for name in domains:
        assert Domain.objects.get(name=name, pack=pack).verified_how == VerifiedHow.IMPORT
    for address, box in tree.mailboxes.items():
        local, _at, name = address.partition("@")
        if not hosted(name):
            continue
        assert Mailbox.objects.get(domain__name=name, local_part=local).password_hash == importer_hash(box.hash)
    assert not MailImport.objects.exists()  # --no-mail
    before = snapshot()
    out, _err = run_command(str(tree.root), "--pack", str(pack.pk), "--no-mail")
    assert snapshot() == before and "Created: nothing." in out
    print(out)
    assert "exemple.fr (already in the pack)" in out and "different: 1" not in out


def importer_hash(vpasswd_hash: str) -> str:
    """What the reader makes of a vpasswd hash (Dovecot's form): the importer stores exactly that."""
    scheme = {"$1$": "MD5-CRYPT", "$5$": "SHA256-CRYPT", "$6$": "SHA512-CRYPT", "$2": "BLF-CRYPT"}
    prefix = next((p for p in scheme if vpasswd_hash.startswith(p)), None)
    return "{" + (scheme[prefix] if prefix else "CRYPT") + "}" + vpasswd_hash


def test_the_trees_passwords_open_the_panels_login(cast: Cast, pack: Pack, tree: Tree) -> None:
    run_command(str(tree.root), "--pack", str(pack.pk), "--no-mail")
    checked = 0
    for n, (address, box) in enumerate(tree.mailboxes.items()):
        local, _at, name = address.partition("@")
        if not hosted(name) or not box.panel_login:
            continue
        response = Client(HTTP_ACCEPT_LANGUAGE="en").post(
            reverse("screens:login"), {"account": local, "domain": name, "password": box.password},
            REMOTE_ADDR=f"192.0.2.{n + 1}")
        assert response.status_code == 302, address
        stored = Mailbox.objects.get(domain__name=name, local_part=local).password_hash
        assert stored.startswith("{ARGON2ID}") and verify_password(box.password, stored)
        checked += 1
    assert checked >= 3


def test_the_command_asks_the_mail_host_for_the_copy(cast: Cast, pack: Pack, tree: Tree) -> None:
    out, err = run_command(str(tree.root), "--pack", str(pack.pk), "--mail-root", "/srv/oldmail", "--no-wait")
    imports = {item.domain.name: item for item in MailImport.objects.select_related("domain")}
    assert set(imports) == {n for n in tree.domains if hosted(n)}
    pairs = dict(imports["exemple.fr"].mailboxes)
    assert pairs["postmaster@exemple.fr"] == "/srv/oldmail/home/vpopmail/domains/exemple.fr/postmaster/Maildir"
    assert "mail copy of" in err
    before = snapshot()
    run_command(str(tree.root), "--pack", str(pack.pk), "--mail-root", "/srv/oldmail", "--no-wait")
    # Asked again (the host copies only what is new), and nothing else written.
    assert snapshot() == before and MailImport.objects.count() == 2 * len(imports)


def test_the_command_says_when_the_host_never_confirms(cast: Cast, pack: Pack, tree: Tree) -> None:
    with pytest.raises(CommandError, match="has not confirmed the mail copy in time .it has not applied"):
        run_command(str(tree.root), "--pack", str(pack.pk), "--wait", "0")
    assert Domain.objects.filter(pack=pack).count() == len(
        [n for n in [*tree.domains, *tree.aliases] if hosted(n)])  # the rows are imported


def test_the_command_refuses_a_bad_root_or_pack(cast: Cast, pack: Pack, tree: Tree, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not a vpopmail server's tree"):
        run_command(str(tmp_path / "nothing"), "--pack", str(pack.pk))
    with pytest.raises(CommandError, match="no pack with id 999999"):
        run_command(str(tree.root), "--pack", "999999")
    with pytest.raises(CommandError, match="absolute path"):
        run_command(str(tree.root), "--pack", str(pack.pk), "--mail-root", "relative/path")


def test_the_trees_objects_become_the_panels(cast: Cast, pack: Pack, tree: Tree) -> None:
    out, _err = run_command(str(tree.root), "--pack", str(pack.pk), "--no-mail")
    boxes = {m.address: m for m in Mailbox.objects.filter(domain__pack=pack).select_related("domain")}
    for address, (destinations, keep) in tree.mailbox_forwards.items():
        assert (boxes[address].routing, boxes[address].forward_to, boxes[address].keep_copy) == (
            Routing.FORWARD, destinations, keep)
    for address in tree.delete_all:
        assert boxes[address].routing == Routing.DELETE
    for address, (subject, text) in tree.vacations.items():
        assert boxes[address].vacation_enabled and boxes[address].vacation_subject == subject
        assert boxes[address].vacation_message == text.strip()
    for address, (subject, text, copy) in tree.robots.items():
        robot = Robot.objects.get(domain__name=address.partition("@")[2], local_part=address.partition("@")[0])
        assert (robot.subject, robot.message, robot.copy_to) == (subject, text.strip(), copy)
    catchall = CatchAll.objects.get(domain__name="club-voile.org")
    assert (catchall.mode, catchall.target) == tree.catchalls["club-voile.org"]
    assert not CatchAll.objects.filter(domain__name="exemple.fr").exists()  # bounce: the panel's default
    for address, expected in tree.lists.items():
        local, _at, name = address.partition("@")
        ml = MailingList.objects.get(domain__name=name, name=local)
        for option, value in expected.items():
            if option in ("subscribers", "moderators", "digest_subscribers"):
                kind = {"subscribers": MemberKind.SUBSCRIBER, "moderators": MemberKind.MODERATOR,
                        "digest_subscribers": MemberKind.DIGEST}[option]
                there = set(ml.members.filter(kind=kind).values_list("address", flat=True))
                assert {str(a).lower() for a in value} <= there, (address, option)  # type: ignore[attr-defined]
            elif isinstance(value, str):
                assert getattr(ml, option) == value.strip(), (address, option)
            else:
                assert getattr(ml, option) == value, (address, option)
    # The clear-text field of vpasswd never reaches the panel.
    for secret in tree.never_imported:
        assert not Mailbox.objects.filter(password_hash__contains=secret).exists()
        assert not any(secret in str(detail) for detail in AuditEvent.objects.values_list("detail", flat=True))
        assert secret not in out


def test_the_benchmarks_tree_is_imported_by_the_command(cast: Cast, pack: Pack, tmp_path: Path) -> None:
    """The benchmark's tree, read, planned and written by the command (its mail aside; its time:
    bench/vpopmail_bench.py, BENCHMARKS.md)."""
    pack.plan.max_mailboxes = -1
    pack.plan.save()
    big = big_tree(tmp_path / "big", 10_000, 0)
    out, _err = run_command(str(big.root), "--pack", str(pack.pk), "--no-mail")
    assert Mailbox.objects.filter(domain__pack=pack).count() == 10_000, out


def test_a_later_run_asks_for_the_mail_an_earlier_one_did_not(cast: Cast, pack: Pack, tree: Tree) -> None:
    run_command(str(tree.root), "--pack", str(pack.pk), "--no-mail")
    assert not MailImport.objects.exists()
    before = snapshot()
    run_command(str(tree.root), "--pack", str(pack.pk), "--no-wait")
    assert snapshot() == before
    asked = {address for item in MailImport.objects.all() for address, _path in item.mailboxes}
    assert asked == {a for a in tree.mailboxes if hosted(a.partition("@")[2])}


@pytest.mark.parametrize(("fields", "why"), [
    ({"routing": "elsewhere"}, "Choose a routing."),
    ({"vacation_enabled": True, "vacation_subject": "Away"}, "Enter the vacation message."),
    ({"vacation_enabled": True, "vacation_message": "Out", "vacation_days": 0}, "Between 1 and 365 days."),
    ({"vacation_enabled": True, "vacation_message": "Out", "vacation_days": 366}, "Between 1 and 365 days."),
    ({"real_name": "Eve\nBcc: x@y.test"}, "characters that are not allowed"),
    ({"vacation_subject": "Hi\nBcc: x@y.test"}, "characters that are not allowed"),
    ({"vacation_message": "x" * 4001}, "too long"),
    ({"password_hash": "{SHA512-CRYPT}$6$with space"}, "cannot be used by the mail server"),
])
def test_the_bulk_service_refuses_a_bad_row_alone(cast: Cast, fields: dict, why: str) -> None:
    result = bulkimport.mailboxes_import(domain=cast.a.domain, acting_user=None,
                                         mailboxes=[new("bad", **fields), new("good")])
    assert result.created == ["good"] and why in result.refused["bad"]


def test_the_bulk_service_refuses_a_robots_name_and_a_home_still_in_use(cast: Cast) -> None:
    domain = cast.a.domain
    Robot.objects.create(domain=domain, local_part="bot", subject="s", message="m")
    MailboxFactory(domain=domain, local_part="newname", renamed_from="oldname", renamed_revision=5)
    RemovedName.objects.create(domain=domain, name="gone", revision=3)
    result = bulkimport.mailboxes_import(domain=domain, acting_user=None,
                                         mailboxes=[new("bot"), new("oldname"), new("gone")])
    assert not result.created
    assert "mail robot" in result.refused["bot"] and "renamed a moment ago" in result.refused["oldname"]
    assert "deleted a moment ago" in result.refused["gone"]


@pytest.mark.parametrize(("limit", "value", "label"), [
    ("max_forwards", 0, "forwards"), ("max_robots", 0, "robots"), ("max_lists", 0, "mailing lists"),
    ("total_quota_mb", 50, "total quota (MB)"),
])
def test_a_domain_beyond_each_of_the_packs_counts_is_refused(cast: Cast, pack: Pack, limit: str, value: int,
                                                            label: str) -> None:
    setattr(pack.plan, limit, value)
    pack.plan.save()
    src = rich_domain()
    for box in src.mailboxes:
        box.quota_bytes = 10 * 1024 * 1024
    found = importer.plan(server(src), pack)
    assert found.domains[0].state == State.SKIP and f"new {label}" in found.domains[0].why


def test_a_domain_beyond_the_resellers_pool_is_refused(cast: Cast, pack: Pack) -> None:
    cast.a.reseller.max_mailboxes = Mailbox.objects.filter(domain__pack__customer__reseller=cast.a.reseller).count() + 5
    cast.a.reseller.save()
    found = importer.plan(server(rich_domain()), pack)
    assert found.domains[0].state == State.SKIP and "POP accounts of the reseller" in found.domains[0].why


def test_a_name_twice_in_the_source_is_skipped_the_second_time(cast: Cast, pack: Pack) -> None:
    src = rich_domain()
    src.forwards.append(vp.Forward(local_part="alice", destinations=["x@y.test"]))
    src.aliases.append("moved.test")
    found = importer.plan(server(src, rich_domain()), pack)
    assert found.domains[1].state == State.SKIP and "twice" in found.domains[1].why
    [twice] = [i for i in found.domains[0].of(Kind.FORWARD) if i.name == "alice"]
    assert twice.state == State.SKIP and "also a POP account" in twice.why
    assert [i.state for i in found.domains[0].of(Kind.ALIAS) if i.name == "moved.test"] == [State.SKIP]


def test_the_forwards_service_checks_each_and_writes_one_revision_and_one_audit_row(cast: Cast) -> None:
    domain = cast.a.domain
    events = AuditEvent.objects.count()
    result = bulkimport.forwards_import(domain=domain, acting_user=None, source="vpopmail import", forwards=[
        ("sales", ["x@y.test"]), ("again", [f"sales@{domain.name}"]), ("postmaster", ["x@y.test"]),
        ("self", [f"self@{domain.name}"]), ("bad name!", ["x@y.test"]), ("ok", ["z@y.test", "x@y.test"])])
    assert result.created == ["sales", "ok"]
    assert set(result.refused) == {"again", "postmaster", "self", "bad name!"}
    assert "itself a forward" in result.refused["again"] and "already a POP account" in result.refused["postmaster"]
    domain.refresh_from_db()
    assert set(Forward.objects.filter(domain=domain).values_list("revision", flat=True)) == {domain.revision}
    assert AuditEvent.objects.count() == events + 1
    assert AuditEvent.objects.get(action="forward.import").detail["source"] == "vpopmail import"


def test_the_forwards_service_refuses_the_whole_call_beyond_the_packs_room(cast: Cast) -> None:
    cast.a.plan.max_forwards = 1
    cast.a.plan.save()
    with pytest.raises(ValidationError, match="Maximum number of forwards"):
        bulkimport.forwards_import(domain=cast.a.domain, acting_user=None,
                                   forwards=[("a", ["x@y.test"]), ("b", ["x@y.test"])])
    assert not Forward.objects.exists()


def test_a_later_run_proves_what_an_earlier_one_left_unproven(cast: Cast, pack: Pack) -> None:
    import_all(server(rich_domain()), pack)
    Domain.objects.filter(name__in=["moved.test", "alias-moved.test"]).update(verified_at=None, verified_how="")
    import_all(server(rich_domain()), pack)
    for name in ("moved.test", "alias-moved.test"):
        domain = Domain.objects.get(name=name)
        assert domain.verified_at is not None and domain.verified_how == VerifiedHow.IMPORT


# Chains: the panel refuses a destination that forwards again; the import replaces it by the
# final addresses (a small tree of its own: tests/vpopmail_tree.py stays as the e2e knows it).

def chained_domain(theirs: str) -> vp.Domain:
    """A domain whose redirects point at redirects: of its own, of another domain of the import
    (through its alias domain), of the pack's domain in the panel, and of another customer's."""
    name = "chain.test"
    return vp.Domain(
        name=name, path=ROOT / "home/vpopmail/domains" / name, aliases=["alias-chain.test"],
        mailboxes=[
            mailbox(name, "postmaster", flags=vp.QA_ADMIN),
            mailbox(name, "paul", forward_to=["paul.durand@example.net"]),  # forwards everything away
            mailbox(name, "keeper", forward_to=["info@chain.test"], keep_copy=True),  # a mailbox to a forward
            mailbox(name, "drop", forward_to=["void@chain.test"]),  # to a forward that drops
        ],
        forwards=[
            vp.Forward(local_part="info", destinations=["paul@chain.test"]),
            vp.Forward(local_part="relay", destinations=[  # duplicates removed, another customer's left as is
                "info@alias-chain.test", "team@panel.test", "paul.durand@example.net", f"sales@{theirs}"]),
            vp.Forward(local_part="tagged", destinations=["info+news@chain.test"]),
            vp.Forward(local_part="loop1", destinations=["loop2@chain.test"]),
            vp.Forward(local_part="loop2", destinations=["loop1@chain.test"]),
            vp.Forward(local_part="intoloop", destinations=["loop1@chain.test", "ok@remote.test"]),
            vp.Forward(local_part="wide", destinations=["team@panel.test", *[f"w{n}@remote.test" for n in range(9)]]),
            vp.Forward(local_part="void", discard=True),
            vp.Forward(local_part="tovoid", destinations=["void@chain.test"]),
        ],
        robots=[vp.Robot(local_part="bot", subject="Hi", message="Got it.", copy_to="info@chain.test"),
                vp.Robot(local_part="bot2", subject="Hi", message="Got it.", copy_to="team@panel.test")],
    )


def test_chains_are_flattened_to_their_final_addresses(cast: Cast, pack: Pack) -> None:
    theirs = cast.b.domain  # another customer's: its forward is never read, from the panel nor the source
    services_forward = Forward.objects.create(domain=theirs, local_part="sales", destinations=["z@remote.test"])
    panel = DomainFactory(pack=pack, name="panel.test")
    Forward.objects.create(domain=panel, local_part="team", destinations=["x@remote.test", "y@remote.test"])
    hostile = vp.Domain(name=theirs.name, path=ROOT / "home/vpopmail/domains" / theirs.name,
                        forwards=[vp.Forward(local_part="sales", destinations=["evil@attacker.test"])])
    second = vp.Domain(name="second.test", path=ROOT / "home/vpopmail/domains/second.test",
                       mailboxes=[mailbox("second.test", "postmaster")],
                       forwards=[vp.Forward(local_part="fw", destinations=["relay@chain.test"])])
    src = server(hostile, second, chained_domain(theirs.name))

    found = importer.plan(src, pack)
    assert found.domains[0].state == State.SKIP
    chain = found.domains[2]
    skipped = {i.name: i.why for i in chain.of(Kind.FORWARD, State.SKIP)}
    assert set(skipped) == {"loop1", "loop2", "intoloop", "wide"}
    assert "loop (loop1@chain.test → loop2@chain.test → loop1@chain.test)" in skipped["loop1"]
    assert "loop" in skipped["intoloop"]
    assert "11 final addresses" in skipped["wide"] and "allows 10" in skipped["wide"]
    notes = [f"{p.what}: {p.why}" for p in chain.problems]
    assert "info: paul@chain.test → paul.durand@example.net (forwards again: replaced by its final address(es))" \
        in notes
    assert any(n.startswith("bot2: its copy went to x@remote.test, y@remote.test") for n in notes)

    report = importer.run(found)
    assert report.problems[report.planned:] == []  # nothing refused while writing: no chain left
    destinations = dict(Forward.objects.filter(domain__name="chain.test").values_list("local_part", "destinations"))
    assert destinations == {
        "info": ["paul.durand@example.net"],
        "relay": ["paul.durand@example.net", "x@remote.test", "y@remote.test", f"sales@{theirs.name}"],
        "tagged": ["paul.durand@example.net"],
        "void": [], "tovoid": [],
    }
    assert Forward.objects.get(domain__name="second.test").destinations == destinations["relay"]
    keeper = Mailbox.objects.get(domain__name="chain.test", local_part="keeper")
    assert (keeper.routing, keeper.forward_to, keeper.keep_copy) == (Routing.FORWARD, ["paul.durand@example.net"], True)
    assert Mailbox.objects.get(domain__name="chain.test", local_part="drop").routing == Routing.DELETE
    robots = dict(Robot.objects.filter(domain__name="chain.test").values_list("local_part", "copy_to"))
    assert robots == {"bot": "paul.durand@example.net", "bot2": ""}
    services_forward.refresh_from_db()
    assert services_forward.destinations == ["z@remote.test"]  # the other customer's: untouched

    before = snapshot()
    again = importer.plan(src, pack)  # the panel's rows now: equal to the flattened source
    assert {i.state for dp in again.domains[1:] for i in dp.items} <= {State.PRESENT, State.SKIP}
    importer.run(again)
    assert snapshot() == before


def test_what_a_chain_cannot_keep_is_reported(cast: Cast, pack: Pack) -> None:
    name = "knots.test"
    src = server(vp.Domain(
        name=name, path=ROOT / "home/vpopmail/domains" / name,
        mailboxes=[mailbox(name, "postmaster"),
                   mailbox(name, "ann", forward_to=["bea@knots.test"]),  # ann → bea → ann: a loop
                   mailbox(name, "bea", forward_to=["ann@knots.test"]),
                   mailbox(name, "wide", forward_to=["many@knots.test", "w@remote.test"]),
                   mailbox(name, "gone", forward_to=["tobot@knots.test"], delete_all=True)],  # forwards nothing
        forwards=[vp.Forward(local_part="many", destinations=[f"m{n}@remote.test" for n in range(10)]),
                  vp.Forward(local_part="tobot", destinations=["bot@knots.test"])],
        robots=[vp.Robot(local_part="bot", subject="Hi", message="Got it.", copy_to="c@remote.test"),
                vp.Robot(local_part="self", subject="Hi", message="Got it.", copy_to="loop@knots.test")],
    ))
    src.domains[0].forwards.append(vp.Forward(local_part="loop", destinations=["self@knots.test"]))
    found = importer.plan(src, pack)
    notes = {(p.what, p.why) for p in found.domains[0].problems}
    assert ("ann", "its mail would go round a loop (ann@knots.test → bea@knots.test → ann@knots.test): created "
                   "without its forwarding") in notes
    assert ("wide", "its chains lead to 11 final addresses: the panel allows 10; created without its forwarding"
            ) in notes
    assert ("tobot", "bot@knots.test is a robot that copies its mail on: the panel refuses it as a destination"
            ) in notes
    assert any(what == "self" and "created without its copy" in why for what, why in notes)
    assert {i.name: i.obj.copy_to for i in found.domains[0].of(Kind.ROBOT)} == {"bot": "c@remote.test", "self": ""}
    assert not any(what == "loop" for what, _why in notes)  # to a robot made without its copy: final
    assert not any(what == "gone" and "→" in why for what, why in notes)
    assert {i.name: i.obj.forward_to for i in found.domains[0].of(Kind.MAILBOX)}["wide"] == [
        "many@knots.test", "w@remote.test"]  # left as it is: the service refuses it, reported


def test_a_later_run_sees_a_changed_quota_and_vacation_and_no_false_password(cast: Cast, pack: Pack) -> None:
    first = rich_domain()
    first.mailboxes.append(mailbox("moved.test", "nohash", password_hash=""))  # given an unusable hash
    import_all(server(first), pack)
    assert all(i.state == State.PRESENT for i in importer.plan(server(first), pack).domains[0].of(Kind.MAILBOX))
    changed = rich_domain()
    changed.mailboxes[1].quota_bytes = 80 * 1024 * 1024
    changed.mailboxes[4].vacation = vp.Vacation(subject="Gone", message="Back on Monday.", reply_seconds=3 * 86400)
    differs = {i.name: i.why for i in importer.plan(server(changed), pack).domains[0].of(Kind.MAILBOX, State.DIFFERS)}
    assert set(differs) == {"alice", "dave"}
    assert "quota_mb" in differs["alice"] and "vacation_subject" in differs["dave"]


def test_a_remote_and_a_domain_catchall_are_normalised(cast: Cast, pack: Pack) -> None:
    remote = vp.Domain(name="remote.test", path=ROOT / "home/vpopmail/domains/remote.test",
                       mailboxes=[mailbox("remote.test", "postmaster")],
                       catchall=vp.CatchAll(mode="remote", target=" Someone@Elsewhere.TEST "))
    onward = vp.Domain(name="onward.test", path=ROOT / "home/vpopmail/domains/onward.test",
                       mailboxes=[mailbox("onward.test", "postmaster")],
                       catchall=vp.CatchAll(mode="domain", target="Far-Away.TEST."))
    report = import_all(server(remote, onward), pack)
    assert report.problems == []
    assert dict(CatchAll.objects.values_list("domain__name", "target")) == {
        "remote.test": "someone@elsewhere.test", "onward.test": "far-away.test"}
    again = importer.plan(server(remote, onward), pack)
    assert [i.state for dp in again.domains for i in dp.of(Kind.CATCHALL)] == [State.PRESENT, State.PRESENT]


def test_the_reports_places_are_under_root(cast: Cast, pack: Pack) -> None:
    found = importer.plan(server(rich_domain()), pack)
    notes = {(p.where, p.what) for p in found.all_problems()}
    assert ("home/vpopmail/domains/moved.test/alice", "alice") in notes  # its message quota, noted
    assert importer.rel(found.server, Path("relative/already")) == "relative/already"
    assert importer.rel(found.server, Path("/elsewhere/x")) == ""


def test_a_chain_reads_only_this_packs_names_and_a_tag_only_when_it_is_no_name(cast: Cast, pack: Pack) -> None:
    theirs = cast.b.domain.name
    panel = DomainFactory(pack=pack, name="panel2.test")
    Robot.objects.create(domain=panel, local_part="pbot", subject="s", message="m", copy_to="c@remote.test")
    Robot.objects.create(domain=panel, local_part="quiet", subject="s", message="m")
    name = "own.test"
    src = server(vp.Domain(
        name=name, path=ROOT / "home/vpopmail/domains" / name, aliases=[theirs],  # another customer's: not ours
        mailboxes=[mailbox(name, "postmaster"), mailbox(name, "paul", forward_to=["paul@example.net"])],
        forwards=[vp.Forward(local_part="info", destinations=["paul@own.test"]),
                  vp.Forward(local_part="info+news", destinations=["news@remote.test"]),
                  vp.Forward(local_part="relay", destinations=[f"info@{theirs}", "info+news@own.test",
                                                               "info+other@own.test"]),
                  vp.Forward(local_part="tobot", destinations=["pbot@panel2.test"]),
                  vp.Forward(local_part="toquiet", destinations=["quiet@panel2.test"])],
    ))
    found = importer.plan(src, pack)
    forwards = {i.name: i.obj.destinations for i in found.domains[0].of(Kind.FORWARD)}
    assert forwards["relay"] == [f"info@{theirs}", "news@remote.test", "paul@example.net"]
    notes = {(p.what, p.why) for p in found.domains[0].problems}
    assert ("tobot", "pbot@panel2.test is a robot that copies its mail on: the panel refuses it as a destination"
            ) in notes
    assert not any(what == "toquiet" for what, _why in notes)


def test_an_alias_domain_is_present_at_a_later_run_and_refused_to_another_domain(cast: Cast, pack: Pack) -> None:
    import_all(server(rich_domain()), pack)
    other = vp.Domain(name="other.test", path=ROOT / "home/vpopmail/domains/other.test",
                      aliases=["alias-moved.test"], mailboxes=[mailbox("other.test", "postmaster")])
    again = importer.plan(server(rich_domain()), pack)
    assert [(i.name, i.state) for i in again.domains[0].of(Kind.ALIAS)] == [("alias-moved.test", State.PRESENT)]
    refused = importer.plan(server(other), pack).domains[0].of(Kind.ALIAS)
    assert [(i.name, i.state) for i in refused] == [("alias-moved.test", State.SKIP)]
    assert "not as an alias of this domain" in refused[0].why
    import_all(server(replace(other, aliases=[])), pack)  # other.test in the pack: still not its alias
    refused = importer.plan(server(other), pack).domains[0].of(Kind.ALIAS)
    assert [(i.name, i.state) for i in refused] == [("alias-moved.test", State.SKIP)]


def test_a_new_domain_without_postmaster_is_noted(cast: Cast, pack: Pack) -> None:
    bare = vp.Domain(name="bare.test", path=ROOT / "home/vpopmail/domains/bare.test",
                     mailboxes=[mailbox("bare.test", "someone")])
    found = importer.plan(server(bare, rich_domain()), pack)
    noted = [dp.name for dp in found.domains for p in dp.problems if "no postmaster account" in p.why]
    assert noted == ["bare.test"]
    importer.run(found)
    assert not any("no postmaster account" in p.why for dp in importer.plan(server(bare), pack).domains
                   for p in dp.problems)  # in the panel now: its admin is the panel's business


def test_the_plans_notes_name_exactly_what_the_panel_keeps_otherwise(cast: Cast, pack: Pack) -> None:
    pack.plan.max_lists = -1  # unlimited: no note for the old server's unlimited lists
    pack.plan.save()
    name = "notes.fr"  # a .fr domain without hostmaster
    domain = vp.Domain(
        name=name, path=ROOT / "home/vpopmail/domains" / name,
        limits=vp.Limits(max_mailboxes=3, max_forwards=30, max_robots=-1, max_lists=-1, default_quota_mb=200),
        mailboxes=[mailbox(name, "postmaster"),
                   mailbox(name, "vac", vacation=vp.Vacation(subject="Off", message="Off.", sender=f"vac@{name}")),
                   mailbox(name, "vac2", vacation=vp.Vacation(subject="Off", message="Off.", sender="boss@x.test")),
                   mailbox(name, "bin", delete_all=True, forward_to=["a@remote.test"]),
                   mailbox(name, "bin2", delete_all=True), mailbox(name, "fwd", forward_to=["a@remote.test"])],
        robots=[vp.Robot(local_part="club-request", subject="s", message="m"),
                vp.Robot(local_part="club+x", subject="s", message="m")],
        forwards=[vp.Forward(local_part="clubby", destinations=["a@remote.test"])],
        lists=[vp.MailingList(name="club", path=ROOT / "home/vpopmail/domains" / name / "club")],
    )
    fine = vp.Domain(name="fine.fr", path=ROOT / "home/vpopmail/domains/fine.fr",
                     limits=vp.Limits(default_quota_mb=100),
                     mailboxes=[mailbox("fine.fr", "postmaster"), mailbox("fine.fr", "hostmaster")])
    plain = vp.Domain(name="plain.test", path=ROOT / "home/vpopmail/domains/plain.test",
                      mailboxes=[mailbox("plain.test", "postmaster")])
    found = importer.plan(server(domain, fine, plain), pack)
    assert found.domains[2].problems == []  # no hostmaster needed, no default quota said
    notes = sorted((p.what, p.why) for p in found.domains[0].problems)
    assert notes == sorted([
        ("bin", "deletes all its mail: its forwards are not kept"),
        ("forwards: 30", "the old server allowed 30 forwards; the pack's plan allows 20"),
        ("robots: unlimited", "the old server allowed unlimited robots; the pack's plan allows 5"),
        (name, "a .fr domain needs a hostmaster account (the .fr registry checks it): none in the source, "
               "create it in the panel"),
        ("vac2", "the vacation reply's From is the account's own address in the panel, not boss@x.test"),
    ])
    assert [(p.what, p.why) for p in found.domains[1].problems] == [
        ("default quota: 100 MB", "new POP accounts get the plan's default (200 MB) from now on")]
    states = {(i.kind, i.name): (i.state, i.why) for i in found.domains[0].items}
    assert states[(Kind.ROBOT, "club-request")][0] == states[(Kind.ROBOT, "club+x")][0] == State.SKIP
    assert "mailing list's address" in states[(Kind.ROBOT, "club+x")][1]
    assert states[(Kind.LIST, "club")][0] == states[(Kind.FORWARD, "clubby")][0] == State.CREATE
    assert not found.domains[0].of(Kind.CATCHALL)  # a new domain bounces already: nothing to show

    importer.run(importer.plan(server(fine), pack))
    fine.catchall = vp.CatchAll(mode="remote", target="all@remote.test")
    assert [(i.state, i.why) for i in importer.plan(server(fine), pack).domains[0].of(Kind.CATCHALL)] == [
        (State.CREATE, "")]  # the panel's bounces: the source's is set


def test_a_second_runs_report_counts_what_is_there(cast: Cast, pack: Pack) -> None:
    import_all(server(rich_domain()), pack)
    report = import_all(server(rich_domain()), pack)
    assert dict(report.present) == {"domains": 1, Kind.ALIAS: 1, Kind.MAILBOX: 6, Kind.ROBOT: 1, Kind.LIST: 1,
                                    Kind.FORWARD: 2, Kind.CATCHALL: 1}


def test_the_forwards_service_takes_any_number_under_an_unlimited_plan(cast: Cast) -> None:
    cast.a.plan.max_forwards = -1
    cast.a.plan.save()
    result = bulkimport.forwards_import(domain=cast.a.domain, acting_user=None,
                                        forwards=[("a", ["x@y.test"]), ("b", ["x@y.test"])])
    assert sorted(result.created) == ["a", "b"] and Forward.objects.count() == 2


def test_a_fr_domain_in_the_pack_needs_no_hostmaster_from_the_source_when_the_panel_has_one(cast: Cast,
                                                                                              pack: Pack) -> None:
    held = DomainFactory(pack=pack, name="held.fr")
    bare = DomainFactory(pack=pack, name="bare.fr")
    MailboxFactory(domain=held, local_part="hostmaster")
    src = server(*[vp.Domain(name=n, path=ROOT / "home/vpopmail/domains" / n, mailboxes=[mailbox(n, "postmaster")])
                   for n in (held.name, bare.name)])
    found = importer.plan(src, pack)
    noted = [dp.name for dp in found.domains for p in dp.problems if "hostmaster" in p.why]
    assert noted == ["bare.fr"]
