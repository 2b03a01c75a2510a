"""Alias domains across the contract (format 5): the document the panel builds and always sends
whole, what the agent refuses, the rows it writes and removes, and the maps' queries that make
x@alias mean x@target for Postfix and Dovecot, run here on the agent's SQLite database as Postfix
and Dovecot expand them (tests/e2e/test_alias_domains_e2e.py proves them with real mail).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.test import TestCase

from hosting.models import Domain, VerifiedHow
from hostlink import push as host_push
from hostlink import reports as host_reports
from hostlink import snapshot
from mail import services as mail
from mailhost import apply as agent_apply
from mailhost import contract, lists, maps
from mailhost.apply import SERVED, UNPROVEN, HostConfig, apply
from mailhost.render import RenderError
from mailhost.stack import templates
from mailhost.stack.config import StackConfig
from provisioning import revisions
from provisioning.domains import alias_domain_create
from tests.conftest import Cast

HASH = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA"
REAL, ALIAS = "real.test", "alias.test"


def alias_document(revision: int = 1, **changes: Any) -> dict[str, Any]:
    return {"format": contract.FORMAT, "domain": ALIAS, "revision": revision, "state": "present",
            "verified": True, "alias_of": REAL, **changes}


def mailbox(local: str, **changes: Any) -> dict[str, Any]:
    return {"local_part": local, "password_hash": HASH, "quota_bytes": 0, "active": True, "allow_pop3": True,
            "allow_imap": True, "allow_smtp": True, **changes}


def real_document(revision: int = 1, **changes: Any) -> dict[str, Any]:
    return {"format": contract.FORMAT, "domain": REAL, "revision": revision, "state": "present", "verified": True,
            "mailboxes": [mailbox("bob"), mailbox("carl", active=False), mailbox("pat", allow_pop3=False)],
            "forwards": [{"local_part": "sales", "destinations": ["someone@else.test"]}],
            "robots": [{"local_part": "info", "subject": "Hi", "message": "Hello"}],
            "lists": [{"name": "news", "owner": "boss@else.test"}], **changes}


@pytest.fixture
def cfg(tmp_path: Path) -> HostConfig:
    config = HostConfig(name="t", root=tmp_path)
    (tmp_path / "db").mkdir()
    maps.create(config.maps_db)
    return config


def rows(cfg: HostConfig, sql: str, *args: object) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(cfg.maps_db)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


# --- the contract ---------------------------------------------------------------------------------


def test_an_alias_document_has_its_shape_and_nothing_else() -> None:
    document = contract.check_document(alias_document(), complete=True)
    assert contract.is_alias(document) and not contract.is_delta(document)
    assert contract.FORMAT >= 5 and 5 in contract.READS
    for key, value in (("mailboxes", []), ("forwards", []), ("robots", []), ("lists", []),
                       ("catchall", {"mode": "bounce"}), ("removed", [])):
        with pytest.raises(contract.DocumentError,
                           match=rf"^an alias domain has no objects of its own and travels whole: {key} refused$"):
            contract.check_document(alias_document(**{key: value}))
    with pytest.raises(contract.DocumentError, match=r"travels whole: base refused$"):
        contract.check_document(alias_document(2, base=1))
    with pytest.raises(contract.DocumentError, match=r"^alias_of: unknown in format 4 \(an alias domain is format 5"):
        contract.check_document(alias_document(format=4))
    with pytest.raises(contract.DocumentError, match=r"^alias_of: expected str, got NoneType$"):
        contract.check_document(alias_document(alias_of=None))
    with pytest.raises(contract.DocumentError, match=r"^the document: missing alias_of$"):
        contract.check({k: v for k, v in alias_document().items() if k != "alias_of"}, contract.AliasDocument)
    # An older agent (format 4) refuses the document: `alias_of` is unknown to its DomainDocument.
    with pytest.raises(contract.DocumentError, match=r"^the document: unknown alias_of$"):
        contract.check(alias_document(), contract.DomainDocument)


# --- the panel: the document and its push ------------------------------------------------------


def make_alias(target: Domain, name: str = "alias-domain.test", *, proven: bool = True) -> Domain:
    return alias_domain_create(domain=target, name=name, acting_user=None,
                               verified_how=VerifiedHow.HAND if proven else None)


@pytest.mark.django_db
def test_the_document_of_an_alias_domain(cast: Cast) -> None:
    alias = make_alias(cast.a.domain)
    document = snapshot.build(Domain.objects.get(pk=alias.pk))
    contract.check_document(document, complete=True)
    assert document == {"format": contract.FORMAT, "domain": "alias-domain.test", "revision": alias.revision,
                        "state": "present", "verified": True, "alias_of": "alpha-domain.test"}
    unproven = make_alias(cast.a.domain, "unproven-alias.test", proven=False)
    assert snapshot.build(unproven)["verified"] is False
    assert contract.is_alias(snapshot.build(unproven))


@pytest.mark.django_db
def test_an_alias_domain_is_always_sent_whole(cast: Cast, outbox: list[contract.Document]) -> None:
    alias = make_alias(cast.a.domain)
    for _round in range(3):  # each confirmed by the host: a domain of its own would then get deltas
        with TestCase.captureOnCommitCallbacks(execute=True):
            host_push.push(alias.pk)
        document = outbox[-1]
        assert contract.is_alias(document) and not contract.is_delta(document)
        contract.check_document(document, complete=True)
        host_reports.record_report(host="mx1", domain=document["domain"], revision=document["revision"],
                                   state="present")
        with transaction.atomic():
            revisions.domain_changed(alias)
    # The target itself still goes as deltas once confirmed.
    for _round in range(2):
        with TestCase.captureOnCommitCallbacks(execute=True):
            host_push.push(cast.a.domain.pk)
        host_reports.record_report(host="mx1", domain=outbox[-1]["domain"], revision=outbox[-1]["revision"],
                                   state="present")
        mail.mailbox_set_access(mailbox=cast.mailbox_user, allow_pop3=False, acting_user=cast.operator)
    assert contract.is_delta(outbox[-1])


# --- the agent ------------------------------------------------------------------------------------


def test_an_alias_document_writes_its_two_rows(cfg: HostConfig) -> None:
    apply(real_document(), cfg)
    outcome = apply(alias_document(), cfg)
    assert outcome.applied
    assert rows(cfg, "SELECT * FROM domains WHERE domain = ?", ALIAS) == [(ALIAS, SERVED, 1)]
    assert rows(cfg, "SELECT * FROM alias_domains") == [(ALIAS, REAL)]
    assert not apply(alias_document(), cfg).applied  # the same revision again: nothing changes
    assert apply(alias_document(2, verified=False), cfg).applied
    assert rows(cfg, "SELECT * FROM domains WHERE domain = ?", ALIAS) == [(ALIAS, UNPROVEN, 2)]
    assert rows(cfg, "SELECT * FROM alias_domains") == [(ALIAS, REAL)]


def test_an_alias_document_removes_what_the_name_held(cfg: HostConfig) -> None:
    """A name that was a domain of its own here (mailboxes, a list, maildirs) and comes as an alias
    keeps none of it."""
    apply(real_document(domain=ALIAS), cfg)
    home = cfg.vmail_root / ALIAS / "bob" / "Maildir" / "new"
    home.mkdir(parents=True)
    assert rows(cfg, "SELECT count(*) FROM names WHERE domain = ?", ALIAS)[0][0] > 6  # the list has its own names
    outcome = apply(alias_document(2), cfg)
    for table in ("mailboxes", "aliases", "transports", "names"):
        assert rows(cfg, f"SELECT * FROM {table} WHERE domain = ?", ALIAS) == [], table  # noqa: S608
    assert "bob" in outcome.removed_homes and not (cfg.vmail_root / ALIAS / "bob").exists()
    assert rows(cfg, "SELECT * FROM alias_domains") == [(ALIAS, REAL)]


def test_the_absent_document_removes_both_rows_and_the_targets_never_touch_them(cfg: HostConfig) -> None:
    apply(real_document(), cfg)
    apply(alias_document(), cfg)
    apply(real_document(2, mailboxes=[mailbox("bob")]), cfg)
    apply({"format": contract.FORMAT, "domain": REAL, "revision": 3, "state": "absent"}, cfg)
    assert rows(cfg, "SELECT * FROM alias_domains") == [(ALIAS, REAL)]  # the target's documents left it
    assert rows(cfg, "SELECT * FROM domains WHERE domain = ?", ALIAS) == [(ALIAS, SERVED, 1)]
    apply({"format": contract.FORMAT, "domain": ALIAS, "revision": 2, "state": "absent"}, cfg)
    assert rows(cfg, "SELECT * FROM alias_domains") == []
    assert rows(cfg, "SELECT active FROM domains WHERE domain = ?", ALIAS) == [(0,)]


def test_an_alias_that_becomes_a_domain_of_its_own(cfg: HostConfig) -> None:
    apply(alias_document(), cfg)
    delta = {"format": contract.FORMAT, "domain": ALIAS, "revision": 2, "base": 1, "state": "present",
             "mailboxes": [mailbox("bob")]}
    with pytest.raises(contract.Behind, match="alias domain here"):
        apply(delta, cfg)  # it holds none of the rows a delta would build on
    apply(real_document(2, domain=ALIAS), cfg)
    assert rows(cfg, "SELECT * FROM alias_domains") == []


def test_an_alias_of_itself_or_of_an_alias_is_refused(cfg: HostConfig) -> None:
    with pytest.raises(RenderError, match="cannot be an alias of itself"):
        apply(alias_document(alias_of=ALIAS), cfg)
    apply(alias_document(), cfg)
    with pytest.raises(RenderError, match=r"alias\.test is itself an alias domain here"):
        apply(alias_document(domain="second.test", alias_of=ALIAS), cfg)
    with pytest.raises(RenderError, match="reserved domain name"):
        apply(alias_document(domain="second.test", alias_of="discard.invalid"), cfg)
    assert rows(cfg, "SELECT * FROM alias_domains") == [(ALIAS, REAL)]


def test_the_agents_start_adds_the_table_to_an_older_database(tmp_path: Path) -> None:
    path = tmp_path / "maps.sqlite"
    maps.create(path)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE alias_domains")
    db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    maps.create(path)  # the agent's start (mailhost.agent._prepare)
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(maps.SCHEMA_VERSION),)
    assert db.execute("SELECT * FROM alias_domains").fetchall() == []
    db.close()


# --- the queries Postfix and Dovecot run ----------------------------------------------------------


def postfix(cfg: HostConfig, name: str, key: str) -> list[str]:
    """A Postfix sqlite lookup of `key` in map `name` (mailhost.maps.POSTFIX_QUERIES), expanded as
    Postfix does: %s the key, %u its local part, %d its domain; a query whose %u or %d would be
    empty is not run (no result). Postfix quotes the values; these keys hold no quote."""
    query = maps.POSTFIX_QUERIES[name]
    local, _at, domain = key.rpartition("@") if "@" in key else (key, "", "")
    if ("%u" in query and not local) or ("%d" in query and not domain):
        return []
    sql = query.replace("%s", key).replace("%u", local).replace("%d", domain)
    return [row[0] for row in rows(cfg, sql)]


def dovecot(cfg: HostConfig, query: str, user: str, service: str = "imap") -> list[tuple[Any, ...]]:
    """A Dovecot sql lookup: %Lu the user lower-cased, %Ln its local part, %Ld its domain, %s the service."""
    local, _at, domain = user.lower().partition("@")
    sql = query.replace("%Lu", user.lower()).replace("%Ln", local).replace("%Ld", domain).replace("%s", service)
    return rows(cfg, sql)


def test_postfix_rewrites_an_alias_address_only_to_one_held_at_a_served_target(cfg: HostConfig) -> None:
    apply(real_document(), cfg)
    apply(alias_document(), cfg)
    for local in ("bob", "carl", "sales", "info", "news", "news-subscribe"):
        assert postfix(cfg, "valiasdomains", f"{local}@{ALIAS}") == [f"{local}@{REAL}"], local
    assert postfix(cfg, "valiasdomains", f"nobody@{ALIAS}") == []  # refused at RCPT (550 5.1.1)
    assert postfix(cfg, "valiasdomains", f"news-request@{ALIAS}") == [f"news-request@{REAL}"]
    apply(real_document(2, lists=[{"name": "news", "owner": "boss@else.test", "request_address": False}]), cfg)
    assert postfix(cfg, "valiases", f"news-request@{REAL}") == []  # held (names) but delivered nowhere:
    assert postfix(cfg, "valiasdomains", f"news-request@{ALIAS}") == []  # refused at RCPT, at alias too
    assert postfix(cfg, "valiasdomains", f"news+subscribe@{ALIAS}") == []  # then news@alias, +subscribe kept
    assert postfix(cfg, "valiasdomains", f"@{ALIAS}") == []  # not even run
    assert postfix(cfg, "valiasdomains", f"bob@{REAL}") == []
    assert postfix(cfg, "vdomains", ALIAS) == ["OK"]
    # The target's catch-all answers for every name of the alias, the unknown too.
    apply(real_document(3, catchall={"mode": "mailbox", "target": "bob"}), cfg)
    assert postfix(cfg, "valiasdomains", f"nobody@{ALIAS}") == [f"nobody@{REAL}"]
    assert postfix(cfg, "valiases", f"nobody@{REAL}") == []  # then '@real.test', the catch-all's row
    # An unproven alias, or an unproven target: nothing.
    apply(alias_document(2, verified=False), cfg)
    assert postfix(cfg, "valiasdomains", f"bob@{ALIAS}") == [] and postfix(cfg, "vdomains", ALIAS) == []
    apply(alias_document(3), cfg)
    apply(real_document(4, verified=False), cfg)
    assert postfix(cfg, "valiasdomains", f"bob@{ALIAS}") == []


def test_a_disabled_mailbox_is_refused_at_its_alias_name_and_senders_may_use_both(cfg: HostConfig) -> None:
    apply(real_document(), cfg)
    apply(alias_document(), cfg)
    assert postfix(cfg, "disabled", f"carl@{ALIAS}") == ["550 5.2.1 Mailbox disabled"]
    assert postfix(cfg, "disabled", f"carl@{REAL}") == ["550 5.2.1 Mailbox disabled"]
    assert postfix(cfg, "disabled", f"bob@{ALIAS}") == []
    assert postfix(cfg, "disabled", ALIAS) == []
    assert postfix(cfg, "senders", f"bob@{ALIAS}") == [f"bob@{REAL}"]
    assert postfix(cfg, "senders", f"bob@{REAL}") == [f"bob@{REAL}"]
    assert postfix(cfg, "senders", f"carl@{ALIAS}") == []


def test_dovecot_logs_an_alias_name_in_as_the_real_mailbox(cfg: HostConfig) -> None:
    apply(real_document(), cfg)
    apply(alias_document(), cfg)
    home = str(cfg.vmail_root.resolve() / REAL / "bob")
    assert dovecot(cfg, maps.DOVECOT_AUTH_QUERY, f"Bob@{ALIAS.upper()}") == [(f"bob@{REAL}", HASH)]
    assert dovecot(cfg, maps.DOVECOT_AUTH_QUERY, f"bob@{REAL}") == [(f"bob@{REAL}", HASH)]
    assert dovecot(cfg, maps.DOVECOT_AUTH_QUERY, f"pat@{ALIAS}", "pop3") == []  # its POP3 is off
    assert dovecot(cfg, maps.DOVECOT_AUTH_QUERY, f"pat@{ALIAS}", "imap") == [(f"pat@{REAL}", HASH)]
    for refused in (f"carl@{ALIAS}", f"info@{ALIAS}", f"nobody@{ALIAS}", "bob"):  # disabled, a robot, none
        assert dovecot(cfg, maps.DOVECOT_AUTH_QUERY, refused) == [], refused
    assert [row[0] for row in dovecot(cfg, maps.DOVECOT_USER_QUERY, f"bob@{ALIAS}")] == [home]
    assert [row[0] for row in dovecot(cfg, maps.DOVECOT_USER_QUERY, f"bob@{REAL}")] == [home]
    apply(alias_document(2, verified=False), cfg)
    assert dovecot(cfg, maps.DOVECOT_AUTH_QUERY, f"bob@{ALIAS}") == []
    assert dovecot(cfg, maps.DOVECOT_USER_QUERY, f"bob@{ALIAS}") == []


def test_postfix_reads_the_alias_map_after_the_domains_own() -> None:
    config = StackConfig(root=Path("/srv/stack"))
    main_cf = dict(line.split(" = ", 1) for line in templates.postfix_main_cf(config).splitlines()[1:])
    maps_dir = config.postfix_maps_dir
    assert main_cf["virtual_alias_maps"] == (f"proxy:sqlite:{maps_dir}/valiases.cf, "
                                             f"proxy:sqlite:{maps_dir}/valiasdomains.cf")
    assert "canonical, virtual" == main_cf["propagate_unmatched_extensions"]
    assert templates.POSTFIX_MAPS["valiasdomains"] == maps.POSTFIX_QUERIES["valiasdomains"]


def test_a_list_takes_its_names_at_the_served_aliases(cfg: HostConfig) -> None:
    """mlmmj takes a post only when one of its list addresses is in To: or Cc: (news@alias reaches
    it as news@real): control/listaddress lists the served aliases' names after its own two."""
    if not lists.available():
        pytest.skip("mlmmj is not installed")
    listaddress = cfg.mlmmj_root / REAL / "news" / "control" / "listaddress"
    own = [f"news@{REAL}", f"news@{REAL}.{contract.LIST_INTERNAL_DOMAIN}"]

    def addresses() -> list[str]:
        return listaddress.read_text().split()

    apply(real_document(), cfg)
    assert addresses() == own
    apply(alias_document(), cfg)
    apply(alias_document(domain="second.test", verified=False), cfg)
    assert addresses() == [*own, f"news@{ALIAS}"]  # not the unproven one
    apply(alias_document(2, domain="second.test"), cfg)
    assert addresses() == [*own, f"news@{ALIAS}", "news@second.test"]
    apply(real_document(2), cfg)  # the list written again from the target's document
    assert addresses() == [*own, f"news@{ALIAS}", "news@second.test"]
    apply({"format": contract.FORMAT, "domain": ALIAS, "revision": 2, "state": "absent"}, cfg)
    assert addresses() == [*own, "news@second.test"]


def test_an_alias_is_not_served_by_a_postfix_configured_before_alias_domains(tmp_path: Path, cfg: HostConfig) -> None:
    """A host whose configuration predates alias domains would refuse every address of the alias:
    the agent refuses the proven alias's document and says what to run (the panel shows it)."""
    postfix_dir = tmp_path / "postfix"
    postfix_dir.mkdir()
    (postfix_dir / "main.cf").write_text("virtual_alias_maps = proxy:sqlite:/etc/postfix/sqlite/valiases.cf\n")
    old_host = dataclasses.replace(cfg, postfix_dir=postfix_dir)
    with pytest.raises(RenderError, match=r"does not read alias domains yet .* mailhost\.stack configure"):
        apply(alias_document(), old_host)
    assert rows(cfg, "SELECT * FROM alias_domains") == []
    assert apply(alias_document(verified=False), old_host).applied  # not served: nothing to read
    main_cf = templates.postfix_main_cf(StackConfig(root=tmp_path))
    (postfix_dir / "main.cf").write_text(next(line for line in main_cf.splitlines() if "virtual_alias_maps" in line))
    agent_apply._check_alias_maps(old_host)  # configured again: served
