"""A domain is served only once proven its customer's (issue 15, item 2).

The panel's side against a real DNS server (dnsmasq on 127.0.0.1, tests/dnsserver.py): the TXT
record or the MX on the pack's mail host proves a domain, what a failed check found is kept, a
subdomain of another customer's domain is refused, one of the customer's own proven domain is
proven with it, operators and resellers prove by hand (audited). The host's side on a temporary
root (mailhost/apply.py, no Postfix): an unproven domain is not among Postfix's local domains and
nothing of it is stored, and it is served, whole, once proven. By real mail:
tests/e2e/test_ownership_e2e.py.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import translation

from hosting import dns
from hosting.audit import Action
from hosting.models import AuditEvent, Domain, VerifiedHow
from hostlink import snapshot, tasks
from mailhost import contract, maps
from mailhost.apply import SERVED, UNPROVEN, HostConfig, apply
from provisioning.domains import (
    check_unproven,
    domain_check_ownership,
    domain_create,
    domain_verify,
    proof_record,
)
from provisioning.models import DomainSync
from tests.conftest import Cast, client_for
from tests.dnsserver import DnsServer, dns_server  # noqa: F401 - the fixture

HASH = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA"


def roomy(cast: Cast) -> None:
    for plan in (cast.a.plan, cast.b.plan):
        plan.max_domains = 10
        plan.save()


def new_domain(cast: Cast, name: str, tenant: str = "a") -> Domain:
    return domain_create(pack=getattr(cast, tenant).pack, name=name, acting_user=cast.operator)


def fresh(domain: Domain) -> Domain:
    return Domain.objects.get(pk=domain.pk)


# --------------------------------------------------------------------------------------------------
# hosting/dns.py against the real server
# --------------------------------------------------------------------------------------------------


def test_lookups_through_the_resolver_of_the_setting(dns_server: DnsServer) -> None:  # noqa: F811
    dns_server.publish(txt={"_x.zone.test": ["one", "two"]}, mx={"zone.test": ["mx1.host.test", "mx2.host.test"]})
    assert sorted(dns.txt_records("_x.zone.test")) == ["one", "two"]
    assert dns.mx_hosts("zone.test") == ["mx1.host.test", "mx2.host.test"]
    assert dns.txt_records("zone.test") == []  # the name exists, without TXT
    with pytest.raises(dns.LookupFailed, match="no such name"):
        dns.mx_hosts("nothing.test")


def test_a_silent_server_is_given_up_within_the_bound(settings: Any) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes queries, never answers
        silent.bind(("127.0.0.1", 0))
        settings.DNS_RESOLVER = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(dns.LookupFailed, match="no answer within 2 s"):
            dns.txt_records("slow.test")
        assert time.monotonic() - started < dns.LIFETIME + 1


def test_the_setting_names_several_servers() -> None:
    assert dns.parse_servers("127.0.0.1:5353, 10.0.0.1,[::1]:53") == [
        dns.Server("127.0.0.1", 5353), dns.Server("10.0.0.1", 53), dns.Server("::1", 53)]
    assert dns.parse_servers("") == []
    with pytest.raises(ValueError, match="invalid port"):
        dns.parse_servers("127.0.0.1:x")


# --------------------------------------------------------------------------------------------------
# The check (provisioning.domains.domain_check_ownership)
# --------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_new_domain_is_unproven_and_its_document_says_so(cast: Cast) -> None:
    roomy(cast)
    domain = new_domain(cast, "claimed.test")
    assert domain.verified_at is None and domain.verification_token
    document = snapshot.build(fresh(domain))
    assert document["verified"] is False
    contract.check_document(document, complete=True)
    assert snapshot.build(cast.a.domain)["verified"] is True  # the cast's are proven


@pytest.mark.django_db(transaction=True)
def test_the_txt_record_proves_the_domain(cast: Cast, dns_server: DnsServer) -> None:  # noqa: F811
    roomy(cast)
    domain = new_domain(cast, "claimed.test")
    name, text = proof_record(domain)
    assert name == "_mailpanel-verify.claimed.test" and text == f"mailpanel-verify={domain.verification_token}"

    dns_server.publish(txt={name: ["mailpanel-verify=someone-elses-token"]}, mx={"claimed.test": ["mx.elsewhere.test"]})
    assert domain_check_ownership(domain=domain) is False
    checked = fresh(domain)
    assert checked.verified_at is None and checked.verification_checked_at is not None
    assert '"mailpanel-verify=someone-elses-token"' in checked.verification_error
    assert "mx.elsewhere.test" in checked.verification_error

    revision = checked.revision
    dns_server.publish(txt={name: ["v=spf1 -all", text]})
    assert domain_check_ownership(domain=domain) is True
    proven = fresh(domain)
    assert proven.verified_how == VerifiedHow.TXT and proven.verified_at is not None
    assert proven.verification_error == ""
    assert proven.revision > revision  # its host gets it: served from now on
    assert DomainSync.objects.get(domain=domain).needs_full  # ... as the whole domain
    assert snapshot.build(proven)["verified"] is True
    event = AuditEvent.objects.get(action=Action.DOMAIN_VERIFY)
    assert event.actor_label == "system" and event.detail == {"how": "txt"} and event.domain_id == domain.pk


@pytest.mark.django_db(transaction=True)
def test_the_mx_on_the_packs_mail_host_proves_the_domain(cast: Cast, dns_server: DnsServer) -> None:  # noqa: F811
    roomy(cast)
    domain = new_domain(cast, "moved.test")
    assert cast.host.fqdn == "mx1.hosting.test"
    dns_server.publish(mx={"moved.test": ["mx.other-provider.test"]})
    assert domain_check_ownership(domain=domain) is False
    assert fresh(domain).verification_error.endswith("MX moved.test: mx.other-provider.test")
    dns_server.publish(mx={"moved.test": ["backup.other.test", "MX1.Hosting.Test"]})
    assert domain_check_ownership(domain=domain) is True
    assert fresh(domain).verified_how == VerifiedHow.MX


@pytest.mark.django_db(transaction=True)
def test_a_missing_name_is_said(cast: Cast, dns_server: DnsServer) -> None:  # noqa: F811
    roomy(cast)
    domain = new_domain(cast, "nowhere.test")
    assert domain_check_ownership(domain=domain) is False
    assert fresh(domain).verification_error == (
        "TXT _mailpanel-verify.nowhere.test: no such name; MX nowhere.test: no such name")


@pytest.mark.django_db(transaction=True)
def test_the_check_never_runs_inside_a_transaction(cast: Cast) -> None:
    with transaction.atomic(), pytest.raises(RuntimeError, match="outside any transaction"):
        domain_check_ownership(domain=cast.a.domain)


@pytest.mark.django_db(transaction=True)
def test_the_background_check_takes_the_due_domains_in_bounds(cast: Cast, dns_server: DnsServer) -> None:  # noqa: F811
    roomy(cast)
    first, second, third = (new_domain(cast, f"bg{i}.test") for i in range(3))
    dns_server.publish(txt={proof_record(second)[0]: [proof_record(second)[1]]})
    assert check_unproven(batch=2) == 1  # the first two (never checked): the second is proven
    assert fresh(first).verification_checked_at and fresh(second).verified_how == VerifiedHow.TXT
    assert fresh(third).verification_checked_at is None
    assert check_unproven() == 0  # the first was checked a moment ago: only the third now
    assert fresh(third).verification_checked_at is not None
    before = fresh(first).verification_checked_at
    assert check_unproven() == 0 and fresh(first).verification_checked_at == before


# --------------------------------------------------------------------------------------------------
# Subdomains, and by hand
# --------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_subdomain_of_another_customers_domain_is_refused(cast: Cast) -> None:
    roomy(cast)
    with pytest.raises(ValidationError) as refused, translation.override("fr"):
        new_domain(cast, "mail.Bravo-Domain.test")
    assert refused.value.code == "parent"
    assert refused.value.messages == ["Ce domaine est un sous-domaine de bravo-domain.test, qui appartient à un "
                                      "autre client."]
    with pytest.raises(ValidationError):
        new_domain(cast, "a.b.bravo-domain.test")
    assert not Domain.objects.filter(name__endswith="bravo-domain.test").exclude(pk=cast.b.domain.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_subdomain_of_ones_own_proven_domain_is_proven(cast: Cast, dns_server: DnsServer) -> None:  # noqa: F811
    roomy(cast)
    sub = new_domain(cast, "lists.alpha-domain.test")
    assert sub.verified_how == VerifiedHow.PARENT and snapshot.build(fresh(sub))["verified"] is True
    # Under one of its own not yet proven: unproven, until the parent is.
    parent = new_domain(cast, "parent.test")
    child = new_domain(cast, "shop.parent.test")
    assert child.verified_at is None
    assert domain_check_ownership(domain=child) is False
    domain_verify(domain=parent, acting_user=cast.operator)
    assert domain_check_ownership(domain=child) is True
    assert fresh(child).verified_how == VerifiedHow.PARENT


@pytest.mark.django_db(transaction=True)
def test_proven_by_hand_once_and_audited(cast: Cast) -> None:
    roomy(cast)
    domain = new_domain(cast, "byhand.test")
    assert domain_verify(domain=domain, acting_user=cast.a.reseller_staff) is True
    assert fresh(domain).verified_how == VerifiedHow.HAND
    assert domain_verify(domain=domain, acting_user=cast.operator) is False  # already: nothing changes
    events = AuditEvent.objects.filter(action=Action.DOMAIN_VERIFY)
    assert [(e.actor_label, e.detail) for e in events] == [("staff@alpha-reseller.test", {"how": "hand"})]


@pytest.mark.django_db(transaction=True)
def test_the_admin_action_marks_verified_for_operators_and_resellers(cast: Cast) -> None:
    roomy(cast)
    mine = new_domain(cast, "admin-a.test")
    theirs = new_domain(cast, "admin-b.test", tenant="b")
    url = reverse("admin:hosting_domain_changelist")
    response = client_for(cast, "reseller_a").post(
        url, {"action": "mark_verified", "_selected_action": [mine.pk, theirs.pk]})
    assert response.status_code == 302
    assert fresh(mine).verified_how == VerifiedHow.HAND
    assert fresh(theirs).verified_at is None  # not in reseller A's scope
    client_for(cast, "operator").post(url, {"action": "mark_verified", "_selected_action": [theirs.pk]})
    assert fresh(theirs).verified_how == VerifiedHow.HAND


# --------------------------------------------------------------------------------------------------
# The page: the record to publish, the last check, the button
# --------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_pages_say_what_to_publish_and_the_last_check(cast: Cast, dns_server: DnsServer) -> None:  # noqa: F811
    roomy(cast)
    domain = new_domain(cast, "shown.test")
    name, text = proof_record(domain)
    domain_check_ownership(domain=domain)
    for language, said in (("en", "Not yet proven"), ("fr", "Pas encore prouvé")):
        client = client_for(cast, "customer_a", language=language)
        for url in (reverse("screens:pack", args=[cast.a.pack.pk]), reverse("screens:domain", args=[domain.pk])):
            page = client.get(url).content.decode()
            assert said in page and name in page and f"&quot;{text}&quot;" in page, (language, url)
            assert "no such name" in page and reverse("screens:domain_check", args=[domain.pk]) in page
    page = client_for(cast, "customer_a").get(reverse("screens:domain", args=[cast.a.domain.pk])).content.decode()
    assert "_mailpanel-verify" not in page  # a proven domain's page does not ask for it


@pytest.mark.django_db(transaction=True)
def test_the_button_checks_at_once(cast: Cast, dns_server: DnsServer) -> None:  # noqa: F811
    roomy(cast)
    domain = new_domain(cast, "button.test")
    url = reverse("screens:domain_check", args=[domain.pk])
    client = client_for(cast, "customer_a")
    response = client.post(url, {"back": "pack"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("screens:pack", args=[cast.a.pack.pk])
    assert "is not proven yet. The DNS check found: TXT _mailpanel-verify.button.test: no such name" in (
        response.content.decode().replace("&#x27;", "'"))
    name, text = proof_record(domain)
    dns_server.publish(txt={name: [text]})
    response = client.post(url, follow=True)
    assert "was checked a moment ago" in response.content.decode()  # at most one check in CHECK_AGAIN_AFTER
    assert fresh(domain).verified_at is None
    Domain.objects.filter(pk=domain.pk).update(verification_checked_at=None)
    response = client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse("screens:domain", args=[domain.pk])
    assert "is proven yours" in response.content.decode()
    assert fresh(domain).verified_how == VerifiedHow.TXT
    event = AuditEvent.objects.get(action=Action.DOMAIN_VERIFY)
    assert event.actor_label == "owner@alpha-customer.test"
    # Another customer's domain: not found, nothing checked.
    other = new_domain(cast, "other-b.test", tenant="b")
    response = client.post(reverse("screens:domain_check", args=[other.pk]))
    assert response.status_code == 404 and fresh(other).verification_checked_at is None


# --------------------------------------------------------------------------------------------------
# The host: an unproven domain is not served, nothing of it stored; proven, served whole
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def cfg(tmp_path: Path) -> HostConfig:
    config = HostConfig(name="t", root=tmp_path)
    (tmp_path / "db").mkdir()
    maps.create(config.maps_db)
    return config


def whole(revision: int, verified: bool | None, **extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": contract.FORMAT, "domain": "gmail.test", "revision": revision, "state": "present",
        "mailboxes": [{"local_part": "boss", "password_hash": HASH, "quota_bytes": 1, "active": False,
                       "allow_pop3": True, "allow_imap": True, "allow_smtp": True}],
        "forwards": [{"local_part": "ceo", "destinations": ["thief@elsewhere.test"]}],
        "catchall": {"mode": "remote", "target": "thief@elsewhere.test"}, **extra,
    }
    if verified is not None:
        document["verified"] = verified
    return document


def lookup(cfg: HostConfig, query: str, key: str) -> list[tuple[Any, ...]]:
    """What Postfix's or Dovecot's query (mailhost.maps) answers for `key` (%s/%Lu the key, %u/%Ln
    its local part, %d/%Ld its domain: these keys hold no quote; Postfix skips a query whose %u
    or %d would be empty)."""
    local, _at, domain = key.rpartition("@") if "@" in key else (key, "", "")
    if ("%u" in query and not local) or ("%d" in query and not domain):
        return []
    for variable, value in (("%Lu", key), ("%Ln", local), ("%Ld", domain), ("%s", key), ("%u", local),
                            ("%d", domain)):
        query = query.replace(variable, value)
    db = sqlite3.connect(cfg.maps_db)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def served(cfg: HostConfig) -> dict[str, Any]:
    q = maps.POSTFIX_QUERIES
    return {
        "vdomains": lookup(cfg, q["vdomains"], "gmail.test"),
        "forward": lookup(cfg, q["valiases"], "ceo@gmail.test"),
        "catch-all": lookup(cfg, q["valiases"], "@gmail.test"),
        "disabled": lookup(cfg, q["disabled"], "boss@gmail.test"),
        "senders": lookup(cfg, q["senders"], "boss@gmail.test"),
        "dovecot": lookup(cfg, maps.DOVECOT_USER_QUERY, "boss@gmail.test"),
    }


NOTHING = {"vdomains": [], "forward": [], "catch-all": [], "disabled": [], "senders": [], "dovecot": []}


def domain_row(cfg: HostConfig) -> tuple[int, int]:
    db = sqlite3.connect(cfg.maps_db)
    try:
        return db.execute("SELECT active, revision FROM domains WHERE domain = 'gmail.test'").fetchone()
    finally:
        db.close()


def test_the_host_does_not_serve_an_unproven_domain(cfg: HostConfig) -> None:
    assert apply(whole(1, verified=False), cfg).applied
    assert served(cfg) == NOTHING  # not local; no alias, no refusal, no login: mail to it leaves
    assert domain_row(cfg) == (UNPROVEN, 1)
    # A delta of an unproven domain: still nothing; a delta that says it is proven cannot be
    # applied on nothing (the host answers "behind": the panel sends the whole domain).
    delta = {"format": contract.FORMAT, "domain": "gmail.test", "revision": 2, "base": 1, "state": "present",
             "verified": False, "forwards": [{"local_part": "cfo", "destinations": ["thief@elsewhere.test"]}]}
    assert apply(delta, cfg).applied and served(cfg) == NOTHING
    with pytest.raises(contract.Behind):
        apply({**delta, "revision": 3, "base": 2, "verified": True}, cfg)
    assert apply(whole(3, verified=True), cfg).applied
    assert domain_row(cfg) == (SERVED, 3)
    now = served(cfg)
    assert now["vdomains"] == [("OK",)] and now["forward"] == [("thief@elsewhere.test",)]
    assert now["disabled"] and now["catch-all"] == [("thief@elsewhere.test",)]


def test_documents_without_the_key_are_served_as_before(cfg: HostConfig) -> None:
    for version in (3, contract.FORMAT):
        apply({**whole(version, verified=None), "format": version}, cfg)
        assert domain_row(cfg) == (SERVED, version) and served(cfg)["vdomains"] == [("OK",)]


def test_a_served_domain_is_not_taken_by_a_delta_of_an_unproven_one(cfg: HostConfig) -> None:
    apply(whole(1, verified=True), cfg)
    with pytest.raises(contract.Behind):
        apply({"format": contract.FORMAT, "domain": "gmail.test", "revision": 2, "base": 1, "state": "present",
               "verified": False}, cfg)
    assert domain_row(cfg) == (SERVED, 1)


def test_an_unproven_document_removes_nothing_on_disk(cfg: HostConfig) -> None:
    apply(whole(1, verified=True), cfg)
    home = cfg.vmail_root / "gmail.test" / "boss"
    (home / "Maildir" / "cur").mkdir(parents=True)
    apply(whole(2, verified=False), cfg)
    apply(whole(2, verified=False), cfg)  # delivered again: the same
    assert served(cfg) == NOTHING and home.is_dir()


def test_the_background_check_is_scheduled_on_the_bulk_queue(settings: Any) -> None:
    """Celery beat runs it; on the bulk queue's worker, so that a slow DNS never delays a push."""
    from config.celery import app

    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "provisioning.check_unproven"]
    assert entry["schedule"] > 0 and tasks.check_unproven.name == entry["task"]
    assert app.amqp.router.route({}, entry["task"])["queue"].name == contract.BULK_QUEUE
    assert app.amqp.router.route({}, contract.PUSH_DOMAIN)["queue"].name == contract.PANEL_QUEUE


@pytest.mark.django_db(transaction=True)
def test_what_a_hostile_record_holds_is_kept_inert(cast: Cast, dns_server: DnsServer) -> None:  # noqa: F811
    roomy(cast)
    domain = new_domain(cast, "hostile.test")
    name, _text = proof_record(domain)
    dns_server.publish(txt={name: ["<b>\x1b[31m\x7f" + "x" * 500]})
    assert domain_check_ownership(domain=domain) is False
    found = fresh(domain).verification_error
    assert found.startswith('TXT _mailpanel-verify.hostile.test: "<b>\ufffd[31m\ufffdxxx') and len(found) < 300
    page = client_for(cast, "customer_a").get(reverse("screens:domain", args=[domain.pk])).content.decode()
    assert "&lt;b&gt;\ufffd[31m" in page and "<b>\ufffd" not in page
