"""A mailbox's rename (`mail.host_push.mailbox_rename`): its rules, the redirects that follow it,
the documents that carry the previous name until the host confirms it, and the host that moves
the old home to the new name (`mailhost.apply`: merged into mail already there, idempotent under
a redelivered document, never a state where a message is nowhere). Then the .fr rules: a .fr
domain is created with postmaster and hostmaster, and its hostmaster is deleted only on purpose.

The panel's tests run the real service functions; the host's run `mailhost.apply` on a root
under tmp_path, documents applied by hand as in tests/test_delta.py.
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from hosting.models import AuditEvent, Domain, Reseller
from hostlink import reports as host_reports
from hostlink import snapshot
from lists.models import MailingList
from mail import services as mail
from mail.accounts import domain_create_with_accounts
from mail.models import HOSTMASTER, POSTMASTER, CatchAll, Forward, Mailbox, Robot, folded, required_accounts
from mailhost import apply as agent_apply
from mailhost import contract
from mailhost.apply import SIEVE_DIR, HostConfig, apply
from mailhost.render import RenderError
from provisioning.domains import pack_move
from provisioning.models import DomainMove, RemovedName
from tests.conftest import Cast, client_for
from tests.factories import MAILBOX_PASSWORD, DomainFactory, MailboxFactory, MailHostFactory, PlanFactory
from tests.test_delta import host, push, state, unlimited
from tests.test_service_rules import MODELS, revision

PASSWORD = "Rename-Test-Password-2026"  # noqa: S105 - a test mailbox's
HASH = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA"
D = "example.test"


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def english() -> Any:
    """Messages read in English (the panel's default is French: one test reads that)."""
    with translation.override("en"):
        yield


def everything() -> dict[str, list[dict[str, Any]]]:
    """Every row a service writes, the tombstones included."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in (*MODELS, RemovedName)}


def refused(code: str, call: Callable[[], Any]) -> ValidationError:
    """`call` raises a ValidationError of exactly this code and leaves every row as it was."""
    before = everything()
    with pytest.raises(ValidationError) as excinfo:
        call()
    assert {error.code for error in excinfo.value.error_list} == {code}, excinfo.value
    assert everything() == before
    return excinfo.value


def rename(cast: Cast, new: str = "alphanew", mailbox: Mailbox | None = None, **options: Any) -> Mailbox:
    return mail.mailbox_rename(mailbox=mailbox or cast.mailbox_user, new_local_part=new, acting_user=cast.operator,
                               **options)


def fresh(mailbox: Mailbox) -> Mailbox:
    return Mailbox.objects.select_related("domain").get(pk=mailbox.pk)


# --------------------------------------------------------------------------------------------------
# the panel: the rename and its rules
# --------------------------------------------------------------------------------------------------


def test_a_rename_keeps_the_mailbox_and_its_previous_name_and_leaves_a_tombstone(cast: Cast) -> None:
    before, user = revision(cast.a.domain), cast.mailbox_user
    renamed = rename(cast, " AlphaNew ")
    row = fresh(user)
    assert user.local_part == renamed.local_part == row.local_part == "alphanew"
    assert (row.renamed_from, row.renamed_revision, row.revision) == ("alphauser", before + 1, before + 1)
    assert revision(cast.a.domain) == before + 1
    assert (row.password_hash, row.real_name, row.quota_mb) == (user.password_hash, "Alpha User", user.quota_mb)
    assert row.search_name == folded("alphanew Alpha User")
    assert list(RemovedName.objects.values_list("name", "revision")) == [("alphauser", before + 1)]
    (event,) = AuditEvent.objects.filter(action="mailbox.rename")
    assert event.target_id == str(row.pk) and event.target_repr == "alphanew@alpha-domain.test"
    assert event.detail["changes"] == {"local_part": ["alphauser", "alphanew"]}
    assert event.detail["redirects_updated"] == []


def test_the_same_name_changes_nothing(cast: Cast) -> None:
    before = everything()
    rename(cast, "AlphaUser")
    assert everything() == before


def test_postmaster_is_neither_the_old_nor_the_new_name(cast: Cast) -> None:
    refused("postmaster", lambda: rename(cast, "boss", mailbox=cast.a.postmaster))
    refused("postmaster", lambda: rename(cast, " PostMaster "))


@pytest.mark.parametrize(("name", "code"), [("", "required"), ("bad name", "invalid"), (".alpha", "invalid"),
                                            ("al..pha", "invalid"), ("é", "invalid"), ("a" * 65, "max_length")])
def test_the_new_name_has_the_syntax_of_a_new_mailboxs(cast: Cast, name: str, code: str) -> None:
    refused(code, lambda: rename(cast, name))


@pytest.mark.parametrize("kind", ["mailbox", "forward", "robot", "list", "list sub-address"])
def test_the_new_name_must_be_free(cast: Cast, kind: str) -> None:
    domain, name = cast.a.domain, "taken"
    if kind == "mailbox":
        MailboxFactory(domain=domain, local_part=name)
    elif kind == "forward":
        Forward.objects.create(domain=domain, local_part=name, destinations=["x@remote.test"])
    elif kind == "robot":
        Robot.objects.create(domain=domain, local_part=name, subject="s", message="m")
    else:
        MailingList.objects.create(domain=domain, name="taken" if kind == "list" else "news", owner="o@remote.test")
        name = "taken" if kind == "list" else "news+subscribe"
    refused("unique", lambda: rename(cast, name))


def test_a_list_sub_address_is_no_new_mailbox_either(cast: Cast) -> None:
    MailingList.objects.create(domain=cast.a.domain, name="news", owner="o@remote.test")
    refused("unique", lambda: mail.mailbox_create(domain=cast.a.domain, local_part="news+unsubscribe",
                                                  password=PASSWORD, acting_user=cast.operator))


def test_a_second_rename_waits_until_the_host_confirms_the_first(cast: Cast, outbox: list) -> None:
    push(cast, outbox)
    rename(cast)
    mailbox = fresh(cast.mailbox_user)
    refused("renaming", lambda: rename(cast, "alphathird", mailbox=mailbox))
    refused("renaming", lambda: rename(cast, "alphauser", mailbox=mailbox))  # nor back
    push(cast, outbox)  # applied and confirmed
    assert rename(cast, "alphathird", mailbox=fresh(mailbox)).renamed_from == "alphanew"


def test_the_previous_name_gets_no_home_until_the_host_confirms_the_rename(cast: Cast, outbox: list) -> None:
    """The host may still be moving its mail: no mailbox, no robot, no rename takes the name; a
    forward (no home) may, at once."""
    unlimited(cast)
    push(cast, outbox)
    rename(cast)
    domain, op = cast.a.domain, cast.operator
    other = MailboxFactory(domain=domain, local_part="other")
    refused("renaming", lambda: mail.mailbox_create(domain=domain, local_part="alphauser", password=PASSWORD,
                                                    acting_user=op))
    refused("renaming", lambda: mail.robot_create(domain=domain, local_part="alphauser", subject="s",
                                                  message="m", acting_user=op))
    refused("renaming", lambda: rename(cast, "alphauser", mailbox=other))
    document = push(cast, outbox, confirm=False)
    host_reports.record_report(host="mx9", domain=domain.name, revision=document["revision"], state="present")
    assert fresh(cast.mailbox_user).renamed_from == "alphauser"  # another host's word is not this host's
    host_reports.record_report(host="mx1", domain=domain.name, revision=document["revision"], state="present")
    assert (fresh(cast.mailbox_user).renamed_from, fresh(cast.mailbox_user).renamed_revision) == ("", 0)
    mail.mailbox_create(domain=domain, local_part="alphauser", password=PASSWORD, acting_user=op)


def test_a_forward_may_take_the_previous_name_at_once(cast: Cast, outbox: list) -> None:
    push(cast, outbox)
    rename(cast)
    forward = mail.forward_create(domain=cast.a.domain, local_part="alphauser", destinations=["alphanew"],
                                  acting_user=cast.operator)
    assert forward.destinations == ["alphanew@alpha-domain.test"]


def test_a_name_the_host_has_not_removed_yet_is_no_new_name(cast: Cast, outbox: list) -> None:
    """Its old home is still there: the renamed mailbox's mail would be merged with it."""
    unlimited(cast)
    gone = MailboxFactory(domain=cast.a.domain, local_part="gone")
    push(cast, outbox)
    mail.mailbox_delete(mailbox=gone, acting_user=cast.operator)
    refused("pending", lambda: rename(cast, "gone"))
    push(cast, outbox)
    assert rename(cast, "gone").local_part == "gone"


def test_no_rename_while_the_domain_moves_to_another_host(cast: Cast) -> None:
    DomainMove.objects.create(domain=cast.a.domain, from_host=cast.host, to_host=MailHostFactory(name="mx2"),
                              revision=revision(cast.a.domain))
    refused("moving", lambda: rename(cast))


def test_no_pack_move_while_a_rename_is_not_confirmed(cast: Cast, outbox: list) -> None:
    """The old host may not have moved the mail yet, and the copy asks it for the new name."""
    push(cast, outbox)
    rename(cast)
    target = MailHostFactory(name="mx2")
    refused("renaming", lambda: pack_move(pack=cast.a.pack, mail_host=target, acting_user=cast.operator))
    push(cast, outbox)
    pack_move(pack=cast.a.pack, mail_host=target, acting_user=cast.operator)
    assert DomainMove.objects.filter(domain=cast.a.domain).exists()


def test_a_redirect_of_another_domain_to_the_old_address_is_refused(cast: Cast) -> None:
    """Mail it forwards would be lost: refused, named, when it is the customer's own."""
    two = DomainFactory(pack=cast.a.pack, name="alpha-two.test")
    Forward.objects.create(domain=two, local_part="team", destinations=["alphauser@alpha-domain.test"])
    error = refused("pointed_at", lambda: rename(cast))
    assert "team@alpha-two.test" in error.messages[0]
    CatchAll.objects.create(domain=two, mode="remote", target="alphauser+x@alpha-domain.test")
    Forward.objects.filter(domain=two).delete()
    assert "the catch-all of alpha-two.test" in refused("pointed_at", lambda: rename(cast)).messages[0]


def test_another_customers_redirects_to_the_old_address_pin_nothing(cast: Cast) -> None:
    """Another customer's address is opaque (issue 15, item 8): its forwards and catch-all that
    point at the address do not stop the rename, and are not rewritten (they are not ours)."""
    Forward.objects.create(domain=cast.b.domain, local_part="spy", destinations=["alphauser+x@alpha-domain.test"])
    CatchAll.objects.create(domain=cast.b.domain, mode="remote", target="alphauser@alpha-domain.test")

    assert rename(cast).local_part == "alphanew"

    assert Forward.objects.get(domain=cast.b.domain).destinations == ["alphauser+x@alpha-domain.test"]
    assert CatchAll.objects.get(domain=cast.b.domain).target == "alphauser@alpha-domain.test"


def test_a_forwarding_mailbox_takes_no_name_that_would_loop_or_chain(cast: Cast) -> None:
    op = cast.operator
    mail.mailbox_set_routing(mailbox=cast.mailbox_user, routing="forward", forward_to=["alphanew@alpha-domain.test"],
                             acting_user=op)
    refused("loop", lambda: rename(cast, "alphanew"))
    two = DomainFactory(pack=cast.a.pack, name="alpha-two.test")
    Forward.objects.create(domain=two, local_part="in", destinations=["alphaother@alpha-domain.test"])
    refused("pointed_at", lambda: rename(cast, "alphaother"))  # it would forward what it is forwarded


def test_the_redirects_of_the_domain_follow_the_new_name(cast: Cast) -> None:
    unlimited(cast)
    domain, op = cast.a.domain, cast.operator
    sales = mail.forward_create(domain=domain, local_part="sales", acting_user=op, destinations=[
        "alphauser", "alphauser+shop@alpha-domain.test", "x@remote.test"])
    both = mail.forward_create(domain=domain, local_part="both", acting_user=op,
                               destinations=["alphauser", "alphanew@alpha-domain.test"])
    near = mail.forward_create(domain=domain, local_part="near", acting_user=op,
                               destinations=["alphauserx@alpha-domain.test", "alphauser@remote.test"])
    bob = mail.mailbox_create(domain=domain, local_part="bob", password=PASSWORD, acting_user=op)
    mail.mailbox_set_routing(mailbox=bob, routing="forward", forward_to=["alphauser"], acting_user=op)
    info = mail.robot_create(domain=domain, local_part="info", subject="s", message="m",
                             copy_to="alphauser@alpha-domain.test", acting_user=op)
    mail.catchall_set(domain=domain, mode="mailbox", target="alphauser", acting_user=op)
    near_revision = Forward.objects.get(pk=near.pk).revision

    renamed = rename(cast)

    new = renamed.revision
    assert Forward.objects.get(pk=sales.pk).destinations == [
        "alphanew@alpha-domain.test", "alphanew+shop@alpha-domain.test", "x@remote.test"]
    assert Forward.objects.get(pk=both.pk).destinations == ["alphanew@alpha-domain.test"]
    assert Mailbox.objects.get(pk=bob.pk).forward_to == ["alphanew@alpha-domain.test"]
    assert Robot.objects.get(pk=info.pk).copy_to == "alphanew@alpha-domain.test"
    assert CatchAll.objects.get(domain=domain).target == "alphanew"
    assert {Forward.objects.get(pk=sales.pk).revision, Forward.objects.get(pk=both.pk).revision,
            Mailbox.objects.get(pk=bob.pk).revision, Robot.objects.get(pk=info.pk).revision,
            CatchAll.objects.get(domain=domain).revision} == {new}
    assert Forward.objects.get(pk=near.pk).destinations == ["alphauserx@alpha-domain.test", "alphauser@remote.test"]
    assert Forward.objects.get(pk=near.pk).revision == near_revision
    (event,) = AuditEvent.objects.filter(action="mailbox.rename")
    assert event.detail["redirects_updated"] == [
        "both@alpha-domain.test", "sales@alpha-domain.test", "bob@alpha-domain.test", "info@alpha-domain.test",
        "@alpha-domain.test"]  # the catch-all


def test_a_remote_catchall_to_the_old_address_follows_it(cast: Cast) -> None:
    mail.catchall_set(domain=cast.a.domain, mode="remote", target="alphauser@alpha-domain.test",
                      acting_user=cast.operator)
    rename(cast)
    assert CatchAll.objects.get(domain=cast.a.domain).target == "alphanew@alpha-domain.test"


# --------------------------------------------------------------------------------------------------
# the panel: what the documents carry
# --------------------------------------------------------------------------------------------------


def test_the_documents_carry_the_previous_name_until_the_host_confirms_the_rename(cast: Cast, outbox: list) -> None:
    unlimited(cast)
    base = push(cast, outbox)["revision"]
    rename(cast)
    lost = push(cast, outbox, confirm=False)  # never arrives
    contract.check_document(lost, complete=True)
    assert lost["removed"] == ["alphauser"]
    assert [(m["local_part"], m["renamed_from"]) for m in lost["mailboxes"]] == [("alphanew", "alphauser")]
    mail.forward_create(domain=cast.a.domain, local_part="later", destinations=["x@remote.test"],
                        acting_user=cast.operator)
    later = push(cast, outbox, confirm=False)
    assert later["base"] == base and later["removed"] == ["alphauser"]
    assert [(m["local_part"], m["renamed_from"]) for m in later["mailboxes"]] == [("alphanew", "alphauser")]
    whole = snapshot.build(Domain.objects.get(pk=cast.a.domain.pk))
    contract.check_document(whole, complete=True)
    assert {m["local_part"]: m["renamed_from"] for m in whole["mailboxes"]} == {"alphanew": "alphauser",
                                                                               "postmaster": ""}
    host_reports.record_report(host="mx1", domain=later["domain"], revision=later["revision"], state="present")
    assert not RemovedName.objects.exists()
    whole = snapshot.build(Domain.objects.get(pk=cast.a.domain.pk))
    assert {m["local_part"]: m["renamed_from"] for m in whole["mailboxes"]} == {"alphanew": "", "postmaster": ""}
    mail.forward_create(domain=cast.a.domain, local_part="after", destinations=["x@remote.test"],
                        acting_user=cast.operator)
    delta = push(cast, outbox)
    assert delta["mailboxes"] == [] and delta["removed"] == []


def test_an_earlier_report_keeps_the_previous_name(cast: Cast, outbox: list) -> None:
    push(cast, outbox)
    mail.mailbox_set_access(mailbox=cast.a.postmaster, allow_pop3=False, acting_user=cast.operator)
    earlier = push(cast, outbox, confirm=False)
    rename(cast)
    push(cast, outbox, confirm=False)
    host_reports.record_report(host="mx1", domain=earlier["domain"], revision=earlier["revision"], state="present")
    assert fresh(cast.mailbox_user).renamed_from == "alphauser"


def test_the_mail_follows_on_a_host_fed_deltas_and_on_one_fed_whole_documents(
    cast: Cast, outbox: list, tmp_path: Path
) -> None:
    by_delta, by_whole = host(tmp_path, "delta"), host(tmp_path, "whole")
    first = push(cast, outbox)
    apply(first, by_delta)
    apply(first, by_whole)
    name = cast.a.domain.name
    for cfg in (by_delta, by_whole):
        put(cfg, "alphauser", "cur", "1.M1.h:2,S", domain=name)
        put(cfg, "alphauser", "new", "2.M2.h", domain=name)
        put(cfg, "alphauser", ".Sent/cur", "3.M3.h:2,S", domain=name)
    rename(cast)
    whole = snapshot.build(Domain.objects.get(pk=cast.a.domain.pk))
    delta = push(cast, outbox)
    assert contract.is_delta(delta)
    apply(delta, by_delta)
    apply(whole, by_whole)
    for cfg in (by_delta, by_whole):
        assert messages(cfg, "alphanew", name) == {"cur/1.M1.h:2,S": "1.M1.h:2,S", "new/2.M2.h": "2.M2.h",
                                                   ".Sent/cur/3.M3.h:2,S": "3.M3.h:2,S"}
        assert not (cfg.vmail_root / name / "alphauser").exists()
    assert state(by_delta, name) == state(by_whole, name)
    emails = [row[0] for row in state(by_delta, name)["mailboxes"]]
    assert emails == [f"alphanew@{name}", f"postmaster@{name}"]


def test_random_renames_keep_every_message_with_its_mailbox(cast: Cast, outbox: list, tmp_path: Path) -> None:
    """Renames (chains of them, back to an old name, to a name deleted before), creations,
    deletions and lost documents at random; one host fed deltas, one fed whole documents. After
    every document applied, both hold the same, and each mailbox holds exactly the messages
    delivered to it, under whatever names it had."""
    unlimited(cast)
    by_delta, by_whole = host(tmp_path, "delta"), host(tmp_path, "whole")
    rng, name, op = random.Random(20261202), cast.a.domain.name, cast.operator
    expected: dict[int, set[str]] = {}
    moved = 0
    for step in range(80):
        domain = Domain.objects.get(pk=cast.a.domain.pk)
        mailboxes = list(Mailbox.objects.filter(domain=domain).exclude(local_part=POSTMASTER))
        names = ["ann", "ben", "cat", "dan", "eve"]
        try:
            if mailboxes and rng.random() < 0.6:
                target = rng.choice(mailboxes)
                moved += target.local_part != (rename(cast, rng.choice(names), mailbox=target).local_part)
            elif mailboxes and rng.random() < 0.3:
                mail.mailbox_delete(mailbox=rng.choice(mailboxes), acting_user=op)
            elif not RemovedName.objects.filter(domain=domain, name=(new := rng.choice(names))).exists():
                # (A name deleted and created again in one document keeps the deleted mailbox's
                # home on the host: that is mailbox_create's, not the rename's, left out here.)
                mail.mailbox_create(domain=domain, local_part=new, password=PASSWORD, acting_user=op)
        except ValidationError:
            pass  # the rules say no (a name in use, a rename not confirmed yet...)
        whole = snapshot.build(Domain.objects.get(pk=cast.a.domain.pk))
        lost = rng.random() < 0.25
        document = push(cast, outbox, confirm=not lost)
        if lost:
            continue
        apply(document, by_delta)
        apply(whole, by_whole)
        assert state(by_delta, name) == state(by_whole, name), f"the hosts differ after step {step}"
        current = {m.pk: m.local_part for m in Mailbox.objects.filter(domain=domain)}
        expected = {pk: expected.get(pk, set()) for pk in current}
        for pk, local in current.items():
            assert set(messages(by_delta, local, name).values()) == expected[pk], f"{local}, step {step}"
            if rng.random() < 0.5:
                for cfg in (by_delta, by_whole):
                    put(cfg, local, "new", f"{step}.M{pk}.h", domain=name)
                expected[pk].add(f"{step}.M{pk}.h")
    assert moved >= 10  # the run renamed enough to mean something


# --------------------------------------------------------------------------------------------------
# the host: the old home moves to the new name
# --------------------------------------------------------------------------------------------------


def mailbox(local: str, **fields: Any) -> dict[str, Any]:
    return {"local_part": local, "password_hash": HASH, "quota_bytes": 0, "active": True, "allow_pop3": True,
            "allow_imap": True, "allow_smtp": True, **fields}


def whole_doc(revision: int, *mailboxes: dict[str, Any], **parts: Any) -> dict[str, Any]:
    return {"format": contract.FORMAT, "domain": D, "revision": revision, "state": "present",
            "mailboxes": list(mailboxes), **parts}


def delta_doc(revision: int, *mailboxes: dict[str, Any], removed: tuple[str, ...] = (), **parts: Any) -> dict[str, Any]:
    return {**whole_doc(revision, *mailboxes, **parts), "base": revision - 1, "removed": list(removed)}


def put(cfg: HostConfig, local: str, folder: str, name: str, text: str | None = None, domain: str = D) -> Path:
    """A message file in the mailbox's Maildir (`folder`: "cur", "new", ".Sent/cur"...), as
    Dovecot stores it; its content is its name unless `text`."""
    path = cfg.vmail_root / domain / local / "Maildir" / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(name if text is None else text)
    return path


def messages(cfg: HostConfig, local: str, domain: str = D) -> dict[str, str]:
    """The messages of a mailbox's Maildir: "folder/file" → content."""
    maildir = cfg.vmail_root / domain / local / "Maildir"
    return {str(p.relative_to(maildir)): p.read_text() for p in sorted(maildir.rglob("*"))
            if p.is_file() and p.parent.name in ("cur", "new")}


def every_message(cfg: HostConfig) -> list[str]:
    """The content of every message anywhere under the mail root (a lost one is missing here)."""
    return sorted(p.read_text() for p in cfg.vmail_root.rglob("*") if p.is_file() and p.parent.name in ("cur", "new"))


def renames(cfg: HostConfig) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(cfg.maps_db)
    try:
        return db.execute("SELECT email, old, moved FROM renames ORDER BY email").fetchall()
    finally:
        db.close()


def emails(cfg: HostConfig) -> list[str]:
    db = sqlite3.connect(cfg.maps_db)
    try:
        return [r[0] for r in db.execute("SELECT email FROM mailboxes WHERE domain = ? ORDER BY email", (D,))]
    finally:
        db.close()


@pytest.fixture
def cfg(tmp_path: Path) -> HostConfig:
    return host(tmp_path, "h")


@pytest.fixture
def alice(cfg: HostConfig) -> HostConfig:
    """A host with alice@example.test (a vacation script, mail in three folders, subscriptions)."""
    apply(whole_doc(1, mailbox("alice", vacation={"message": "away"}), mailbox("bob")), cfg)
    put(cfg, "alice", "cur", "1.M1.h:2,S")
    put(cfg, "alice", "new", "2.M2.h")
    put(cfg, "alice", ".Sent/cur", "3.M3.h:2,S")
    (cfg.vmail_root / D / "alice" / "Maildir" / "subscriptions").write_text("Sent\n")
    return cfg


ALICES = {"cur/1.M1.h:2,S": "1.M1.h:2,S", "new/2.M2.h": "2.M2.h", ".Sent/cur/3.M3.h:2,S": "3.M3.h:2,S"}
RENAME = delta_doc(2, mailbox("alicia", renamed_from="alice", vacation={"message": "away"}), removed=("alice",))


def test_the_old_home_moves_to_the_new_name(alice: HostConfig) -> None:
    outcome = apply(RENAME, alice)
    assert outcome.moved_homes == ["alice → alicia"] and outcome.removed_homes == []
    assert messages(alice, "alicia") == ALICES
    home = alice.vmail_root / D / "alicia"
    assert (home / "Maildir" / "subscriptions").read_text() == "Sent\n"
    assert not (alice.vmail_root / D / "alice").exists()
    assert sorted(p.name for p in (alice.vmail_root / D).iterdir()) == ["alicia"]  # no leftover (bob has no home)
    (script,) = (home / SIEVE_DIR).iterdir()  # its own script only, which answers as alicia
    assert '"alicia@example.test"' in script.read_text()
    assert emails(alice) == ["alicia@example.test", "bob@example.test"]
    assert renames(alice) == [("alicia@example.test", "alice", 1)]


def test_mail_already_delivered_to_the_new_name_is_merged_never_overwritten(
    alice: HostConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the commit and the move, Dovecot delivers to the new name: that mail stays, and a
    message whose file name the new home has already gets another."""
    real = agent_apply._move_home

    def delivered_meanwhile(cfg: HostConfig, *args: Any) -> None:
        put(cfg, "alicia", "cur", "1.M1.h:2,S", text="arrived at alicia, same file name")
        put(cfg, "alicia", "new", "9.M9.h")
        put(cfg, "alicia", ".Sent/cur", "8.M8.h:2,S")
        (cfg.vmail_root / D / "alicia" / "Maildir" / "subscriptions").write_text("Drafts\n")
        real(cfg, *args)

    monkeypatch.setattr(agent_apply, "_move_home", delivered_meanwhile)
    apply(RENAME, alice)
    found = messages(alice, "alicia")
    assert len(found) == 6 and found["cur/1.M1.h:2,S"] == "arrived at alicia, same file name"
    assert sorted(found.values()) == sorted([*ALICES.values(), "arrived at alicia, same file name", "9.M9.h",
                                             "8.M8.h:2,S"])
    renamed_copy = next(k for k, v in found.items() if v == "1.M1.h:2,S")
    assert renamed_copy.startswith("cur/r") and renamed_copy.endswith(".1.M1.h:2,S")
    subscriptions = alice.vmail_root / D / "alicia" / "Maildir" / "subscriptions"
    assert subscriptions.read_text() == "Drafts\nSent\n"
    assert not (alice.vmail_root / D / "alice").exists()


def test_a_redelivered_or_later_document_moves_nothing_again(alice: HostConfig) -> None:
    apply(RENAME, alice)
    put(alice, "alicia", "new", "4.M4.h")  # mail after the rename
    after = messages(alice, "alicia")
    assert not apply(RENAME, alice).applied  # the broker redelivers it
    # A later document that still carries the previous name (the host's confirmation is on its
    # way), where the old name is now a forward: nothing moves, nothing appears under alice.
    forward = {"local_part": "alice", "destinations": ["alicia@example.test"]}
    later = apply(whole_doc(3, mailbox("alicia", renamed_from="alice", vacation={"message": "away"}),
                            mailbox("bob"), forwards=[forward]), alice)
    assert later.applied and later.moved_homes == []
    assert messages(alice, "alicia") == after and not (alice.vmail_root / D / "alice").exists()
    # Confirmed: the panel drops the previous name, and may give it to a new mailbox, whose
    # home starts empty.
    apply(whole_doc(4, mailbox("alicia"), mailbox("bob"), mailbox("alice")), alice)
    put(alice, "alice", "new", "5.M5.h")
    assert messages(alice, "alicia") == after and messages(alice, "alice") == {"new/5.M5.h": "5.M5.h"}
    assert renames(alice) == []


def test_the_old_name_may_not_keep_a_home_in_a_document_that_renames_it(alice: HostConfig) -> None:
    before = state(alice, D)
    for doc in (whole_doc(2, mailbox("alicia", renamed_from="alice"), mailbox("alice"), mailbox("bob")),
                whole_doc(2, mailbox("alicia", renamed_from="alice"), mailbox("bob"),
                          robots=[{"local_part": "alice", "subject": "s", "message": "m"}]),
                delta_doc(2, mailbox("alicia", renamed_from="alice"))):  # alice not removed
        with pytest.raises(RenderError, match="renamed from alice, which keeps its own home here"):
            apply(doc, alice)
        assert state(alice, D) == before


@pytest.mark.parametrize("previous", ["../bob", "Alice", "alicia", "a/b", ""])
def test_an_invalid_previous_name_is_refused(alice: HostConfig, previous: str) -> None:
    before = state(alice, D)
    doc = delta_doc(2, mailbox("alicia", renamed_from=previous), removed=("alice",))
    if previous == "":  # no rename: alice's home goes as any removed mailbox's
        assert apply(doc, alice).removed_homes == ["alice"]
        return
    with pytest.raises(RenderError):
        apply(doc, alice)
    assert state(alice, D) == before


class Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing may swallow it)."""


def crash(*args: Any) -> None:
    """Stands for the move after the commit: the worker dies right there."""
    raise Crash


def test_a_crash_before_the_move_loses_nothing_and_the_redelivery_moves(
    alice: HostConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_apply, "_move_home", crash)
    with pytest.raises(Crash):
        apply(RENAME, alice)
    assert emails(alice) == ["alicia@example.test", "bob@example.test"]  # committed
    assert messages(alice, "alice") == ALICES and renames(alice) == [("alicia@example.test", "alice", 0)]
    monkeypatch.undo()
    outcome = apply(RENAME, alice)  # the broker redelivers the unacknowledged task
    assert not outcome.applied and outcome.moved_homes == ["alice → alicia"]
    assert messages(alice, "alicia") == ALICES and not (alice.vmail_root / D / "alice").exists()


@pytest.mark.parametrize("document", ["delta", "whole"])
def test_a_crash_before_the_move_is_made_good_by_the_next_document_too(
    alice: HostConfig, monkeypatch: pytest.MonkeyPatch, document: str
) -> None:
    """A later document, not the redelivered one: a delta naming alice (its tombstone is still
    sent), or the whole domain, which still carries the rename (unconfirmed) and must not take
    the rename for one that has nothing to move."""
    monkeypatch.setattr(agent_apply, "_move_home", crash)
    with pytest.raises(Crash):
        apply(RENAME, alice)
    monkeypatch.undo()
    forward = {"local_part": "sales", "destinations": ["x@remote.test"]}
    later = delta_doc(3, forwards=[forward], removed=("alice",)) if document == "delta" else whole_doc(
        3, mailbox("alicia", renamed_from="alice", vacation={"message": "away"}), mailbox("bob"), forwards=[forward])
    outcome = apply(later, alice)
    assert outcome.moved_homes == ["alice → alicia"] and outcome.removed_homes == []
    assert messages(alice, "alicia") == ALICES and not (alice.vmail_root / D / "alice").exists()


def test_a_home_is_never_removed_while_a_message_is_left_in_it(
    alice: HostConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(alice, "alicia", "cur", "0.M0.h:2,S")  # merged, message by message
    monkeypatch.setattr(agent_apply, "_move_message", lambda message, folder: None)  # a move that fails
    with pytest.raises(RenderError, match=r"2 messages are still in .*\.renaming-alice: not removed"):
        apply(RENAME, alice)
    assert sorted(every_message(alice)) == sorted([*ALICES.values(), "0.M0.h:2,S"])
    monkeypatch.undo()
    apply(RENAME, alice)
    assert sorted(messages(alice, "alicia").values()) == sorted([*ALICES.values(), "0.M0.h:2,S"])


def test_an_old_home_recreated_while_it_moves_is_moved_too(alice: HostConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A delivery in flight may write under the old name again: moved as well; when that goes on
    and on, the apply says so and the next one takes the rest."""
    real, rounds = agent_apply._merge_home, []

    def delivery_in_flight(source: Path, target: Path, owner: Any) -> None:
        real(source, target, owner)
        if target.name == "alicia" and len(rounds) < limit:
            rounds.append(1)
            put(alice, "alice", "new", f"late{len(rounds)}.M.h")

    put(alice, "alicia", "cur", "0.M0.h:2,S")
    monkeypatch.setattr(agent_apply, "_merge_home", delivery_in_flight)
    limit = 1
    apply(RENAME, alice)
    assert "new/late1.M.h" in messages(alice, "alicia") and not (alice.vmail_root / D / "alice").exists()
    limit, rounds[:] = 5, []
    put(alice, "alice", "new", "late0.M.h")  # the same again on another apply: mail keeps coming
    db = sqlite3.connect(alice.maps_db)
    db.execute("UPDATE renames SET moved = 0")
    db.commit()
    db.close()
    with pytest.raises(RenderError, match="keeps coming back"):
        apply(RENAME, alice)
    assert renames(alice) == [("alicia@example.test", "alice", 0)]
    monkeypatch.undo()
    apply(RENAME, alice)
    assert {f"new/late{n}.M.h" for n in range(4)} <= set(messages(alice, "alicia"))
    assert not (alice.vmail_root / D / "alice").exists()


@pytest.mark.parametrize("link", ["alicia", ".renaming-alice"])
def test_a_symbolic_link_in_the_way_of_the_move_is_refused(alice: HostConfig, tmp_path: Path, link: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (alice.vmail_root / D / link).symlink_to(outside)
    with pytest.raises(RenderError, match="is a symbolic link"):
        apply(RENAME, alice)
    assert list(outside.iterdir()) == [] and messages(alice, "alice") == ALICES


@pytest.mark.parametrize("where", ["after a move", "between the link and the unlink"])
def test_a_crash_in_the_middle_of_a_merge_loses_and_doubles_nothing(
    alice: HostConfig, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    put(alice, "alicia", "cur", "0.M0.h:2,S")  # a home there already (mail delivered to a leftover)
    real, calls = agent_apply._move_message, []

    def dying(message: Path, folder: Path) -> None:
        calls.append(message.name)
        if len(calls) < 2:
            return real(message, folder)
        if where != "after a move":
            os.link(message, folder / message.name)
        raise Crash

    monkeypatch.setattr(agent_apply, "_move_message", dying)
    with pytest.raises(Crash):
        apply(RENAME, alice)
    expected = sorted([*ALICES.values(), "0.M0.h:2,S"])
    if where == "after a move":
        assert every_message(alice) == expected  # each message in one home or the other
    monkeypatch.undo()
    apply(RENAME, alice)
    assert sorted(messages(alice, "alicia").values()) == expected and every_message(alice) == expected
    assert sorted(p.name for p in (alice.vmail_root / D).iterdir()) == ["alicia"]


def test_a_host_that_never_had_the_old_name_moves_nothing(cfg: HostConfig) -> None:
    """A whole document to a new host, or an old name that was a robot here: no mailbox's home."""
    apply(whole_doc(1, mailbox("bob"), robots=[{"local_part": "alice", "subject": "s", "message": "m"}]), cfg)
    assert (cfg.vmail_root / D / "alice" / SIEVE_DIR).is_dir()
    outcome = apply(delta_doc(2, mailbox("alicia", renamed_from="alice"), removed=("alice",)), cfg)
    assert outcome.moved_homes == [] and outcome.removed_homes == ["alice"]
    assert renames(cfg) == [("alicia@example.test", "alice", 1)]
    assert not (cfg.vmail_root / D / "alicia").exists()


def test_the_name_renamed_away_can_be_renamed_to_again(alice: HostConfig) -> None:
    """alice → alicia, alicia → ally, a new alice → alicia: each home goes where it must."""
    apply(RENAME, alice)
    apply(delta_doc(3, mailbox("ally", renamed_from="alicia"), removed=("alicia",)), alice)
    assert messages(alice, "ally") == ALICES and renames(alice) == [("ally@example.test", "alicia", 1)]
    apply(delta_doc(4, mailbox("ally"), mailbox("alice")), alice)  # confirmed; a new alice
    put(alice, "alice", "new", "7.M7.h")
    apply(delta_doc(5, mailbox("alicia", renamed_from="alice"), removed=("alice",)), alice)
    assert messages(alice, "alicia") == {"new/7.M7.h": "7.M7.h"} and messages(alice, "ally") == ALICES


def test_a_removed_domain_forgets_its_renames(alice: HostConfig) -> None:
    apply(RENAME, alice)
    apply({"format": contract.FORMAT, "domain": D, "revision": 3, "state": "absent"}, alice)
    assert renames(alice) == [] and not (alice.vmail_root / D / "alicia").exists()


# --------------------------------------------------------------------------------------------------
# .fr domains: postmaster and hostmaster
# --------------------------------------------------------------------------------------------------


def roomy_pack(cast: Cast, mailboxes: int = -1) -> Any:
    Reseller.objects.filter(pk=cast.a.reseller.pk).update(max_mailboxes=-1, max_domains=-1)
    plan = PlanFactory(reseller=cast.a.reseller, max_domains=-1, max_mailboxes=mailboxes)
    pack = cast.a.pack
    pack.plan = plan
    pack.save(update_fields=["plan"])
    return pack


@pytest.mark.parametrize(("name", "accounts"), [
    ("exemple.fr", ["hostmaster", "postmaster"]), ("Café-Exemple.FR", ["hostmaster", "postmaster"]),
    ("exemple.com", ["postmaster"]), ("exemple.fr.test", ["postmaster"]), ("france.test", ["postmaster"]),
])
def test_a_new_domain_gets_its_required_accounts(cast: Cast, name: str, accounts: list[str]) -> None:
    domain = domain_create_with_accounts(pack=roomy_pack(cast), name=name, password=PASSWORD, acting_user=cast.operator)
    assert sorted(required_accounts(domain.name)) == accounts and required_accounts(domain.name)[0] == POSTMASTER
    assert (HOSTMASTER in accounts) == domain.name.endswith(".fr")
    rows = {m.local_part: m for m in Mailbox.objects.filter(domain=domain)}
    assert sorted(rows) == accounts
    assert rows["postmaster"].is_domain_admin and rows["postmaster"].real_name == "Postmaster"
    if "hostmaster" in rows:
        assert not rows["hostmaster"].is_domain_admin and rows["hostmaster"].real_name == "Hostmaster"
        assert rows["hostmaster"].revision == revision(domain)


def test_a_fr_domain_without_room_for_both_accounts_is_not_created(cast: Cast) -> None:
    pack = roomy_pack(cast, mailboxes=3)  # alpha's domain has two: room for postmaster, not hostmaster
    refused("limit", lambda: domain_create_with_accounts(pack=pack, name="plein.fr", password=PASSWORD,
                                                          acting_user=cast.operator))
    assert not Domain.objects.filter(name="plein.fr").exists()


def test_the_admin_creates_a_fr_domain_with_both_accounts(cast: Cast) -> None:
    roomy_pack(cast)
    response = client_for(cast, "operator").post(reverse("admin:hosting_domain_add"), {
        "pack": cast.a.pack.pk, "name": "boutique.fr", "postmaster_password": MAILBOX_PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert sorted(Mailbox.objects.filter(domain__name="boutique.fr").values_list("local_part", flat=True)) == [
        "hostmaster", "postmaster"]


@pytest.fixture
def fr(cast: Cast) -> Domain:
    return domain_create_with_accounts(pack=roomy_pack(cast), name="exemple.fr", password=PASSWORD,
                                       acting_user=cast.operator)


def test_a_fr_domains_hostmaster_is_deleted_only_on_purpose(cast: Cast, fr: Domain) -> None:
    hostmaster = Mailbox.objects.get(domain=fr, local_part="hostmaster")
    error = refused("hostmaster", lambda: mail.mailbox_delete(mailbox=hostmaster, acting_user=cast.operator))
    assert "the .fr registry checks hostmaster@ before a DNS change" in error.messages[0]
    assert "hostmaster@exemple.fr" in error.messages[0]
    mail.mailbox_delete(mailbox=hostmaster, confirm_hostmaster=True, acting_user=cast.operator)
    assert not Mailbox.objects.filter(domain=fr, local_part="hostmaster").exists()


def test_another_domains_hostmaster_is_deleted_freely(cast: Cast) -> None:
    hostmaster = MailboxFactory(domain=cast.a.domain, local_part="hostmaster")
    mail.mailbox_delete(mailbox=hostmaster, acting_user=cast.operator)
    assert not Mailbox.objects.filter(pk=hostmaster.pk).exists()


def test_the_refusal_speaks_the_users_language(cast: Cast, fr: Domain) -> None:
    hostmaster = Mailbox.objects.get(domain=fr, local_part="hostmaster")
    with translation.override("fr"):
        error = refused("hostmaster", lambda: mail.mailbox_delete(mailbox=hostmaster, acting_user=cast.operator))
    assert error.messages == ["hostmaster@exemple.fr est obligatoire pour un domaine .fr : le registre du .fr "
                              "vérifie hostmaster@ avant tout changement de DNS. Confirmez pour le supprimer "
                              "malgré tout."]


def test_a_fr_domains_hostmaster_is_renamed_only_on_purpose(cast: Cast, fr: Domain) -> None:
    hostmaster = Mailbox.objects.get(domain=fr, local_part="hostmaster")
    error = refused("hostmaster", lambda: rename(cast, "dns", mailbox=hostmaster))
    assert "the .fr registry checks hostmaster@ before a DNS change" in error.messages[0]
    assert rename(cast, "dns", mailbox=hostmaster, confirm_hostmaster=True).local_part == "dns"


def test_the_postmaster_is_never_deleted(cast: Cast, fr: Domain) -> None:
    postmaster = Mailbox.objects.get(domain=fr, local_part="postmaster")
    for seat in (cast.operator, postmaster):
        refused("postmaster", lambda seat=seat: mail.mailbox_delete(mailbox=postmaster, confirm_hostmaster=True,
                                                                   acting_user=seat))


def test_an_admin_cannot_delete_the_mailbox_they_are_logged_in_with(cast: Cast, fr: Domain) -> None:
    hostmaster = Mailbox.objects.get(domain=fr, local_part="hostmaster")
    Mailbox.objects.filter(pk=hostmaster.pk).update(is_admin=True)
    hostmaster.refresh_from_db()
    refused("self", lambda: mail.mailbox_delete(mailbox=hostmaster, confirm_hostmaster=True, acting_user=hostmaster))
    postmaster = Mailbox.objects.get(domain=fr, local_part="postmaster")
    mail.mailbox_delete(mailbox=hostmaster, confirm_hostmaster=True, acting_user=postmaster)  # another admin may
