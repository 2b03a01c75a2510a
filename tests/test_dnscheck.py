"""A domain's DNS checks (issue 18, item 2): MX, SPF, DKIM, DMARC against a real DNS server
(dnsmasq on 127.0.0.1: tests/dnsserver.py), stored by the bulk service, shown on the domain's
menu, an alias domain's page and the Espace Client's pack page, asked again on demand (queued,
never looked up in the request; at most once in 30 s), and never another tenant's."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from hosting import dkim, dnscheck
from hosting.models import DkimKey, DkimKeyState, Domain
from provisioning import dnscheck as service
from provisioning.models import DnsCheck
from tests.conftest import Cast, client_for
from tests.dnsserver import DnsServer, dns_server  # noqa: F401 - the fixture

HOST = "mx1.hosting.test"  # the cast's mail host's fqdn
HOST_IP = "192.0.2.10"
DOMAIN = "alpha-domain.test"  # the cast's domain A

# The checks refuse to run inside a transaction (no row locked while DNS answers): real commits.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def made_key() -> dkim.NewKey:
    return dkim.new_key(1024)  # the checks compare the p= tag: a small key is as good and quick


def add_key(domain: Domain, made: dkim.NewKey, selector: str = "mp20261208",
            state: DkimKeyState = DkimKeyState.ACTIVE) -> DkimKey:
    return DkimKey.objects.create(domain=domain, selector=selector, bits=made.bits, public_key=made.public_b64,
                                  sealed_private_key=dkim.seal(made.private_pem), state=state)


def green_zone(made: dkim.NewKey, name: str = DOMAIN, selector: str = "mp20261208") -> dict[str, Any]:
    """Every record of a domain whose four checks pass (the DKIM TXT split as a DNS server splits it)."""
    return {
        "txt": {name: [f"v=spf1 mx a:{HOST} -all", "google-site-verification=abc"],
                f"{selector}._domainkey.{name}": [dkim.txt_value(made.public_b64)],
                f"_dmarc.{name}": ["v=DMARC1; p=none"]},
        "mx": {name: [HOST]},
        "a": {HOST: [HOST_IP]},
    }


def without(zone: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    changed = {key: dict(value) for key, value in zone.items()}
    del changed[kind][name]
    return changed


def checks(domain: Domain) -> dict[str, dict[str, Any]]:
    """The stored checks of a domain by kind (DKIM by "dkim:selector")."""
    found = DnsCheck.objects.get(domain=domain)
    return {f"{c['kind']}:{c['selector']}" if c["selector"] else c["kind"]: c for c in found.results["checks"]}


def statuses(domain: Domain) -> dict[str, str]:
    return {kind: check["status"] for kind, check in checks(domain).items()}


# --------------------------------------------------------------------------------------------------
# The checks against the real server
# --------------------------------------------------------------------------------------------------


def test_all_green_and_the_key_seen(cast: Cast, dns_server: DnsServer, made_key: dkim.NewKey) -> None:  # noqa: F811
    key = add_key(cast.a.domain, made_key)
    dns_server.publish(**green_zone(made_key))
    assert service.check_domains([cast.a.domain.pk]) == 1
    assert statuses(cast.a.domain) == {"mx": "ok", "spf": "ok", "dkim:mp20261208": "ok", "dmarc": "ok"}
    found = checks(cast.a.domain)
    assert found["mx"]["found"] == [f"10 {HOST}"] and found["spf"]["found"] == [f"v=spf1 mx a:{HOST} -all"]
    assert all(check["publish"] == [] for check in found.values())
    key.refresh_from_db()
    first_seen = key.dns_seen_at
    assert first_seen is not None
    service.check_domains([cast.a.domain.pk])
    key.refresh_from_db()
    assert key.dns_seen_at == first_seen  # the first time only
    assert DnsCheck.objects.get(domain=cast.a.domain).checked_at is not None


@pytest.mark.parametrize(("change", "kind", "reason", "publish"), [
    (lambda z: without(z, "mx", DOMAIN), "mx", "mx_missing", [(DOMAIN, "MX", f"10 {HOST}.")]),
    (lambda z: {**z, "mx": {DOMAIN: ["mx.elsewhere.test"]}}, "mx", "mx_elsewhere", [(DOMAIN, "MX", f"10 {HOST}.")]),
    (lambda z: {**z, "mx": {DOMAIN: ["mx.elsewhere.test", HOST]}}, "mx", "mx_backup", [(DOMAIN, "MX", f"10 {HOST}.")]),
    (lambda z: {**z, "txt": {**z["txt"], DOMAIN: ["other"]}}, "spf", "spf_missing",
     [(DOMAIN, "TXT", f"v=spf1 a:{HOST} ~all")]),
    (lambda z: {**z, "txt": {**z["txt"], DOMAIN: ["v=spf1 mx -all", "v=spf1 -all"]}}, "spf", "spf_several",
     [(DOMAIN, "TXT", f"v=spf1 a:{HOST} ~all")]),
    (lambda z: {**z, "txt": {**z["txt"], DOMAIN: ["v=spf1 ip4:198.51.100.0/24 -all"]}},
     "spf", "spf_not_allowed", [(DOMAIN, "TXT", f"v=spf1 ip4:198.51.100.0/24 a:{HOST} -all")]),
    (lambda z: without(z, "txt", f"mp20261208._domainkey.{DOMAIN}"), "dkim:mp20261208", "dkim_missing", "key"),
    (lambda z: {**z, "txt": {**z["txt"], f"mp20261208._domainkey.{DOMAIN}": ["v=DKIM1; k=rsa; p=MIIBother"]}},
     "dkim:mp20261208", "dkim_mismatch", "key"),
    (lambda z: without(z, "txt", f"_dmarc.{DOMAIN}"), "dmarc", "dmarc_missing",
     [(f"_dmarc.{DOMAIN}", "TXT", f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{DOMAIN}")]),
    (lambda z: {**z, "txt": {**z["txt"], f"_dmarc.{DOMAIN}": ["v=spf1 -all"]}}, "dmarc", "dmarc_missing",
     [(f"_dmarc.{DOMAIN}", "TXT", f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{DOMAIN}")]),
])
def test_each_check_red_in_turn_with_the_record_to_publish(
        cast: Cast, dns_server: DnsServer, made_key: dkim.NewKey,  # noqa: F811
        change: Any, kind: str, reason: str, publish: Any) -> None:
    add_key(cast.a.domain, made_key)
    dns_server.publish(**change(green_zone(made_key)))
    service.check_domains([cast.a.domain.pk])
    found = checks(cast.a.domain)
    assert (found[kind]["status"], found[kind]["reason"]) == ("bad", reason)
    if publish == "key":
        publish = [(f"mp20261208._domainkey.{DOMAIN}", "TXT", dkim.txt_value(made_key.public_b64))]
    assert [(r["name"], r["type"], r["value"]) for r in found[kind]["publish"]] == publish
    assert {k: c["status"] for k, c in found.items() if k != kind} == {k: "ok" for k in found if k != kind}


@pytest.mark.parametrize(("record", "status"), [
    ("v=spf1 a:mx1.hosting.test -all", "ok"),
    ("v=spf1 ip4:192.0.2.0/24 -all", "ok"),
    ("v=spf1 ip4:192.0.2.10 ~all", "ok"),
    ("v=spf1 a:other.alpha-domain.test -all", "ok"),  # that name has the host's address
    ("v=spf1 include:_spf.alpha-domain.test -all", "ok"),  # followed
    ("v=spf1 redirect=_spf.alpha-domain.test", "ok"),
    ("v=spf1 include:_spf.nowhere.test -all", "unknown"),  # an include that does not exist: a permerror
    ("v=spf1 exists:%{i}.bl.test +all", "ok"),  # whatever exists gives, +all passes too
    ("v=spf1 exists:%{i}.bl.test -all", "unknown"),
    ("v=spf1 ptr -all", "unknown"),
    ("v=spf1 -all", "bad"),
    ("v=spf1 ~all", "bad"),
    ("v=spf1 ?mx -all", "bad"),  # the host matches, neutral: not allowed
    ("v=spf1 ip6:2001:db8::/32 -all", "bad"),
    ("v=spf1", "bad"),  # no match: neutral
    ("V=SPF1 MX -ALL", "ok"),
    ("v=spf1 a/99 -all", "unknown"),  # no such prefix: a receiver's permerror, not a crash of the check
    ("v=spf1 mx//200 -all", "unknown"),
])
def test_spf_evaluated_as_far_as_it_honestly_can_be(cast: Cast, dns_server: DnsServer, record: str,  # noqa: F811
                                                      status: str) -> None:
    dns_server.publish(txt={DOMAIN: [record], f"_spf.{DOMAIN}": ["v=spf1 ip4:192.0.2.10 -all"]},
                       mx={DOMAIN: [HOST]}, a={HOST: [HOST_IP], f"other.{DOMAIN}": [HOST_IP]})
    service.check_domains([cast.a.domain.pk])
    assert checks(cast.a.domain)["spf"]["status"] == status


def test_no_key_yet_is_neither_green_nor_red(cast: Cast, dns_server: DnsServer, made_key: dkim.NewKey) -> None:  # noqa: F811
    dns_server.publish(**green_zone(made_key))
    service.check_domains([cast.a.domain.pk])
    dkim_check = checks(cast.a.domain)["dkim"]
    assert (dkim_check["status"], dkim_check["reason"], dkim_check["publish"]) == ("none", "dkim_no_key", [])
    assert dnscheck.summary(DnsCheck.objects.get(domain=cast.a.domain).results) == "ok"


def test_a_next_key_is_checked_beside_the_active_one_and_switched_when_seen(
        cast: Cast, dns_server: DnsServer, made_key: dkim.NewKey) -> None:  # noqa: F811
    add_key(cast.a.domain, made_key)
    second = dkim.new_key(1024)
    following = add_key(cast.a.domain, second, selector="mp20261209", state=DkimKeyState.NEXT)
    dns_server.publish(**green_zone(made_key))
    service.check_domains([cast.a.domain.pk])
    assert statuses(cast.a.domain)["dkim:mp20261209"] == "bad"
    following.refresh_from_db()
    assert following.dns_seen_at is None and following.state == DkimKeyState.NEXT
    zone = green_zone(made_key)
    zone["txt"][f"mp20261209._domainkey.{DOMAIN}"] = [dkim.txt_value(second.public_b64)]
    dns_server.publish(**zone)
    service.check_domains([cast.a.domain.pk])
    following.refresh_from_db()
    assert following.dns_seen_at is not None
    assert following.state == DkimKeyState.ACTIVE  # provisioning.dkim.dkim_activate_seen switched it


def test_an_alias_domain_publishes_its_targets_keys_under_its_own_name(
        cast: Cast, dns_server: DnsServer, made_key: dkim.NewKey) -> None:  # noqa: F811
    key = add_key(cast.a.domain, made_key)
    alias = Domain.objects.create(name="alpha-alias.test", pack=cast.a.pack, alias_of=cast.a.domain,
                                  verified_at=timezone.now(), verified_how="hand")
    zone = green_zone(made_key, name="alpha-alias.test")
    dns_server.publish(**zone)
    service.check_domains([alias.pk])
    assert statuses(alias) == {"mx": "ok", "spf": "ok", "dkim:mp20261208": "ok", "dmarc": "ok"}
    key.refresh_from_db()
    assert key.dns_seen_at is None  # seen at the alias, not at the key's own domain
    dns_server.publish(**without(zone, "txt", "mp20261208._domainkey.alpha-alias.test"))
    service.check_domains([alias.pk])
    assert checks(alias)["dkim:mp20261208"]["publish"] == [{
        "name": "mp20261208._domainkey.alpha-alias.test", "type": "TXT", "value": dkim.txt_value(made_key.public_b64)}]


def test_no_such_domain_and_a_silent_server_could_not_check(cast: Cast, dns_server: DnsServer, settings: Any,  # noqa: F811
                                                             made_key: dkim.NewKey) -> None:
    add_key(cast.a.domain, made_key)
    dns_server.publish()  # nothing: the domain does not exist
    service.check_domains([cast.a.domain.pk])
    found = checks(cast.a.domain)
    assert (found["mx"]["status"], found["mx"]["reason"]) == ("unknown", "no_such_domain")
    assert (found["spf"]["status"], found["spf"]["reason"]) == ("unknown", "no_such_domain")
    assert found["dmarc"]["status"] == "bad" and found["dkim:mp20261208"]["status"] == "bad"  # missing records
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes queries, never answers
        silent.bind(("127.0.0.1", 0))
        settings.DNS_RESOLVER = f"127.0.0.1:{silent.getsockname()[1]}"
        service.check_domains([cast.a.domain.pk])
    found = checks(cast.a.domain)
    assert {check["status"] for check in found.values()} == {"unknown"}
    assert {check["reason"] for check in found.values()} == {"lookup_failed"}
    assert dnscheck.summary(DnsCheck.objects.get(domain=cast.a.domain).results) == "unknown"
    # The page says it in the user's language, not with the resolver's English sentence.
    french = client_for(cast, "domain_admin_a", "fr")
    text = french.get(reverse("screens:domain", args=[cast.a.domain.pk])).content.decode()
    assert "Les serveurs DNS n" in text and "no answer within" not in text


def test_a_domains_lookups_stop_at_its_budget(cast: Cast, settings: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        settings.DNS_RESOLVER = f"127.0.0.1:{silent.getsockname()[1]}"
        facts = dnscheck.DomainFacts(id=1, name=DOMAIN, host=HOST)
        outcome = dnscheck.check_domain(facts, budget=1.0)  # the MX lookup spends it (2 s), the rest is not asked
    assert [(c["kind"], c["status"]) for c in outcome.checks] == [
        ("mx", "unknown"), ("spf", "unknown"), ("dkim", "none"), ("dmarc", "unknown")]
    assert [c["found"][0].endswith("took too long") for c in outcome.checks if c["found"]] == [False, True, True]


HOSTILE = ["v=spf1 <script>alert(1)</script> \x07\x1b[31m " + "x" * 3000]


def test_hostile_records_are_kept_short_and_shown_escaped(cast: Cast, dns_server: DnsServer) -> None:  # noqa: F811
    dns_server.publish(txt={DOMAIN: HOSTILE, f"_dmarc.{DOMAIN}": ["v=DMARC1; <b>bold</b>"] * 1},
                       mx={DOMAIN: [HOST]}, a={HOST: [HOST_IP]})
    service.check_domains([cast.a.domain.pk])
    spf = checks(cast.a.domain)["spf"]
    assert spf["status"] == "unknown"  # "<script>..." is no mechanism: a receiver's permerror
    (text,) = spf["found"]
    assert len(text) <= dnscheck.SHOWN_CHARS + 1 and "\x07" not in text and "\x1b" not in text and "\ufffd" in text
    page = client_for(cast, "customer_a").get(reverse("screens:domain", args=[cast.a.domain.pk])).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "x" * 300 not in page


# --------------------------------------------------------------------------------------------------
# The background run and its storage
# --------------------------------------------------------------------------------------------------


def test_the_beat_checks_what_is_due_oldest_first_in_batches(cast: Cast, dns_server: DnsServer,  # noqa: F811
                                                              made_key: dkim.NewKey) -> None:
    dns_server.publish(**green_zone(made_key))
    a, b = cast.a.domain, cast.b.domain
    DnsCheck.objects.create(domain=b, checked_at=timezone.now() - timedelta(hours=3), results={})
    assert service.due(10, timedelta(hours=1)) == [a.pk, b.pk]  # never checked first
    assert service.check_due(batch=1, limit=10) == 2  # two batches of one
    assert service.due(10, timedelta(hours=1)) == []
    assert service.check_due() == 0  # nothing due: nothing looked up
    assert DnsCheck.objects.get(domain=b).results["format"] == dnscheck.FORMAT
    DnsCheck.objects.filter(domain=a).update(checked_at=timezone.now() - timedelta(hours=2))
    assert service.check_due(budget_seconds=0) == 0  # no batch once the budget is spent
    assert service.check_due(every=timedelta(hours=1)) == 1


def test_a_beat_run_checks_its_share_of_the_domains_not_all_at_once(cast: Cast, dns_server: DnsServer) -> None:  # noqa: F811
    dns_server.publish()
    assert service.per_run(timedelta(hours=1), batch=1) == 1  # 2 domains, 60 runs an hour: at least a batch
    assert service.per_run(timedelta(minutes=1), batch=1) == 4  # one run an interval: twice the domains
    assert service.check_due(batch=1, limit=1) == 1
    assert len(service.due(10, timedelta(hours=1))) == 1  # the other one waits for the next run


def test_the_checks_never_run_inside_a_transaction(cast: Cast) -> None:
    from django.db import transaction

    with transaction.atomic(), pytest.raises(RuntimeError, match="outside any transaction"):
        service.check_domains([cast.a.domain.pk])


def test_a_domain_deleted_during_its_check_is_skipped(cast: Cast, dns_server: DnsServer) -> None:  # noqa: F811
    facts = service.facts_for([cast.a.domain.pk, cast.b.domain.pk])
    checked = service.run_checks(facts)
    gone = dnscheck.DomainFacts(id=999_999, name="gone.test", host=HOST)
    service.store([*checked, (gone, dnscheck.Outcome(checks=[]))])
    assert set(DnsCheck.objects.values_list("domain_id", flat=True)) == {cast.a.domain.pk, cast.b.domain.pk}


# --------------------------------------------------------------------------------------------------
# The screens
# --------------------------------------------------------------------------------------------------


def test_the_domain_menu_shows_each_check_and_the_record_to_publish(cast: Cast, dns_server: DnsServer,  # noqa: F811
                                                                    made_key: dkim.NewKey) -> None:
    add_key(cast.a.domain, made_key)
    dns_server.publish(**without(green_zone(made_key), "txt", f"_dmarc.{DOMAIN}"))
    client = client_for(cast, "domain_admin_a")
    page = client.get(reverse("screens:domain", args=[cast.a.domain.pk])).content.decode()
    assert "DNS checks" in page and "Not checked yet." in page
    service.check_domains([cast.a.domain.pk])
    page = client.get(reverse("screens:domain", args=[cast.a.domain.pk])).content.decode()
    assert 'class="dns dns-ok">MX: OK' in page and 'class="dns dns-bad">DMARC: To fix' in page
    assert f"_dmarc.{DOMAIN}. TXT &quot;v=DMARC1; p=quarantine; rua=mailto:postmaster@{DOMAIN}&quot;" in page
    assert "Last check:" in page and reverse("screens:dns_check", args=[cast.a.domain.pk]) in page
    french = client_for(cast, "domain_admin_a", "fr").get(reverse("screens:domain", args=[cast.a.domain.pk]))
    text = french.content.decode()
    assert "Vérifications DNS" in text and "DMARC : À corriger" in text and "Publiez cet enregistrement" in text


def test_the_pack_page_of_the_espace_client_shows_them(cast: Cast, dns_server: DnsServer,  # noqa: F811
                                                       made_key: dkim.NewKey) -> None:
    dns_server.publish(**without(green_zone(made_key), "mx", DOMAIN))
    service.check_domains([cast.a.domain.pk, cast.b.domain.pk])
    page = client_for(cast, "customer_a").get(reverse("screens:pack", args=[cast.a.pack.pk])).content.decode()
    assert 'class="dns dns-bad">MX: To fix' in page and f"{DOMAIN}. MX 10 {HOST}." in page
    assert "<details open>" in page  # something to fix: unfolded
    assert "bravo" not in page


def test_an_alias_domains_page_shows_its_own(cast: Cast, dns_server: DnsServer, made_key: dkim.NewKey) -> None:  # noqa: F811
    alias = Domain.objects.create(name="alpha-alias.test", pack=cast.a.pack, alias_of=cast.a.domain,
                                  verified_at=timezone.now(), verified_how="hand")
    dns_server.publish(**green_zone(made_key, name="alpha-alias.test"))
    service.check_domains([alias.pk])
    page = client_for(cast, "domain_admin_a").get(
        reverse("screens:alias_domain", args=[cast.a.domain.pk, alias.pk])).content.decode()
    assert 'class="dns dns-ok">SPF: OK' in page
    assert reverse("screens:alias_dns_check", args=[cast.a.domain.pk, alias.pk]) in page


def test_check_now_queues_once_in_30_seconds(cast: Cast, monkeypatch: pytest.MonkeyPatch,
                                             django_capture_on_commit_callbacks: Any) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(service.panel_app, "send_task", lambda name, **kw: sent.append((name, kw)))
    client = client_for(cast, "customer_a")
    url = reverse("screens:dns_check", args=[cast.a.domain.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"back": "pack"})
    assert response.status_code == 302 and response["Location"] == reverse("screens:pack", args=[cast.a.pack.pk])
    assert sent == [(service.CHECK_TASK, {"args": [[cast.a.domain.pk]], "queue": "panel.bulk"})]
    assert DnsCheck.objects.get(domain=cast.a.domain).pending
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(url, follow=True)
    assert len(sent) == 1 and "was asked a moment ago" in again.content.decode()
    assert "A check is on its way" in again.content.decode()
    DnsCheck.objects.filter(domain=cast.a.domain).update(requested_at=timezone.now() - timedelta(seconds=31))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url)
    assert len(sent) == 2


def test_a_broker_that_refuses_frees_the_slot(cast: Cast, monkeypatch: pytest.MonkeyPatch,
                                               django_capture_on_commit_callbacks: Any) -> None:
    def refuse(name: str, **kw: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(service.panel_app, "send_task", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(cast, "customer_a").post(reverse("screens:dns_check", args=[cast.a.domain.pk]))
    assert response.status_code == 302
    assert DnsCheck.objects.get(domain=cast.a.domain).requested_at is None


@pytest.mark.parametrize("role", ["customer_b", "domain_admin_b", "reseller_b", "mailbox_a"])
def test_another_tenant_can_neither_see_nor_ask(cast: Cast, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service.panel_app, "send_task", lambda name, **kw: pytest.fail("queued"))
    alias = Domain.objects.create(name="alpha-alias.test", pack=cast.a.pack, alias_of=cast.a.domain,
                                  verified_at=timezone.now(), verified_how="hand")
    client = client_for(cast, role)
    for url in (reverse("screens:dns_check", args=[cast.a.domain.pk]),
                reverse("screens:alias_dns_check", args=[cast.a.domain.pk, alias.pk]),
                reverse("screens:dns_check", args=[alias.pk])):
        response = client.post(url)
        assert response.status_code in (302, 403, 404) and response.status_code != 200
        if role != "mailbox_a":
            assert response.status_code == 404 or "login" in response.get("Location", "")
    assert not DnsCheck.objects.exists()
    # domain B's alias page cannot reach domain A's alias either
    response = client_for(cast, "domain_admin_b").post(
        reverse("screens:alias_dns_check", args=[cast.b.domain.pk, alias.pk]))
    assert response.status_code == 404
