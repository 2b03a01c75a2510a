"""The audit log per domain: each event knows its domain (and the pack, customer and reseller that
scope it), each seat reads only what `AuditEvent.objects.visible_to` gives it, the service calls
record what they changed (before and after, never a password), and the domain's audit page shows
it, 50 events a page, in a constant number of queries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from hosting import audit
from hosting.audit import Action
from hosting.audit_display import ACTION_LABELS, action_label
from hosting.models import AuditEvent, Domain
from lists.services import list_create
from mail import services as mail
from mail.models import Mailbox, Routing
from provisioning.domains import domain_delete
from tests.conftest import ROLES, Cast, client_for
from tests.factories import MAILBOX_PASSWORD

pytestmark = pytest.mark.django_db


def page(cast: Cast, role: str = "operator", domain: Domain | None = None, language: str = "en",
         **params: Any) -> Any:
    domain = domain or cast.a.domain
    return client_for(cast, role, language).get(reverse("screens:domain_audit", args=[domain.pk]), params)


def scope_of(event: AuditEvent) -> tuple[Any, ...]:
    event = AuditEvent.objects.get(pk=event.pk)
    return event.domain_id, event.domain_name, event.pack_id, event.customer_id, event.reseller_id


def scope_of_domain(cast: Cast) -> tuple[Any, ...]:
    a = cast.a
    return a.domain.pk, a.domain.name, a.pack.pk, a.customer.pk, a.reseller.pk


# --- 1. each event knows its domain ------------------------------------------------------------


def test_an_event_on_a_row_of_a_domain_knows_the_domain_its_pack_customer_and_reseller(cast: Cast) -> None:
    mailbox = Mailbox.objects.get(pk=cast.mailbox_user.pk)  # its domain not loaded
    loaded = Mailbox.objects.select_related("domain__pack__customer").get(pk=cast.mailbox_user.pk)
    mailing_list = list_create(domain=cast.a.domain, name="news", owner="owner@remote.test",
                               acting_user=cast.operator)
    for target in (mailbox, loaded, cast.a.domain, Domain.objects.get(pk=cast.a.domain.pk), mailing_list):
        assert scope_of(audit.record(cast.operator, Action.MAILBOX_SET_QUOTA, target)) == scope_of_domain(cast)


def test_an_event_on_a_pack_knows_its_customer_and_reseller_but_no_domain(cast: Cast) -> None:
    event = audit.record(cast.operator, Action.PACK_CHANGE, cast.a.pack)
    assert scope_of(event) == (None, "", cast.a.pack.pk, cast.a.customer.pk, cast.a.reseller.pk)


def test_an_event_on_no_domain_belongs_to_nobody(cast: Cast) -> None:
    for target in (None, cast.a.customer, cast.a.plan, cast.host):
        assert scope_of(audit.record(cast.operator, Action.PLAN_CHANGE, target)) == (None, "", None, None, None)


def test_writing_the_event_stays_one_statement(cast: Cast) -> None:
    """The ids the objects in memory do not hold are read by the INSERT itself."""
    mailbox = Mailbox.objects.select_related("domain").get(pk=cast.mailbox_user.pk)  # its pack not loaded
    with CaptureQueriesContext(connection) as queries:
        event = audit.record(cast.operator, Action.MAILBOX_SET_QUOTA, mailbox)
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert (event.customer_id, event.reseller_id) == (cast.a.customer.pk, cast.a.reseller.pk)  # read back


def test_the_events_of_a_deleted_domain_stay_readable_by_its_tenants(cast: Cast) -> None:
    mail.mailbox_set_quota(mailbox=cast.mailbox_user, quota_mb=50, acting_user=cast.a.postmaster)
    domain_pk, name = cast.a.domain.pk, cast.a.domain.name
    domain_delete(domain=cast.a.domain, acting_user=cast.a.reseller_staff)
    assert not Domain.objects.filter(pk=domain_pk).exists()
    events = AuditEvent.objects.filter(domain_id=domain_pk)
    assert set(events.values_list("action", flat=True)) == {"mailbox.set_quota", "domain.delete"}
    assert set(events.values_list("domain_name", flat=True)) == {name}
    for seat in (cast.a.customer_user, cast.a.reseller_staff, cast.support):
        assert AuditEvent.objects.visible_to(seat).filter(domain_id=domain_pk).count() == 2
    for seat in (cast.b.customer_user, cast.b.reseller_staff, cast.b.postmaster):
        assert not AuditEvent.objects.visible_to(seat).filter(domain_id=domain_pk).exists()


# --- 2. who may read what ----------------------------------------------------------------------


@pytest.fixture
def events(cast: Cast) -> dict[str, AuditEvent]:
    """One event of each kind of scope: domains A and B, pack A, customer A, the operator's plan."""
    return {
        "domain_a": audit.record(cast.operator, Action.MAILBOX_SET_QUOTA, cast.mailbox_user),
        "domain_b": audit.record(cast.operator, Action.MAILBOX_SET_QUOTA, cast.b.postmaster),
        "pack_a": audit.record(cast.a.reseller_staff, Action.PACK_CHANGE, cast.a.pack),
        "customer_a": audit.record(cast.a.reseller_staff, Action.CUSTOMER_CHANGE, cast.a.customer),
        "plan": audit.record(cast.operator, Action.PLAN_CHANGE, cast.a.plan),
    }


VISIBLE = {
    "anonymous": set(),
    "operator": {"domain_a", "domain_b", "pack_a", "customer_a", "plan"},
    "support": {"domain_a", "domain_b", "pack_a", "customer_a", "plan"},
    "reseller_a": {"domain_a", "pack_a"},
    "reseller_b": {"domain_b"},
    "customer_a": {"domain_a"},
    "customer_b": {"domain_b"},
    "domain_admin_a": {"domain_a"},
    "domain_admin_b": {"domain_b"},
    "mailbox_a": set(),
}


@pytest.mark.parametrize("role", ROLES)
def test_each_seat_reads_only_its_events(cast: Cast, events: dict[str, AuditEvent], role: str) -> None:
    seen = set(AuditEvent.objects.visible_to(cast.seat(role)).values_list("pk", flat=True))
    assert {name for name, event in events.items() if event.pk in seen} == VISIBLE[role]


# --- 3, 5. the page ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_the_page_from_every_seat(cast: Cast, role: str) -> None:
    mail.mailbox_set_quota(mailbox=cast.mailbox_user, quota_mb=70, acting_user=cast.support)
    audit.record(cast.operator, Action.MAILBOX_SET_QUOTA, cast.b.postmaster)  # B's: never on A's page
    response = page(cast, role)
    if role == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("screens:login") + "?next=")
        return
    if role in ("reseller_b", "customer_b", "domain_admin_b", "mailbox_a"):
        assert response.status_code == 404
        body = response.content.decode()
        if role == "mailbox_a":  # its own address, in the top bar of every page it sees
            body = body.replace("alphauser@alpha-domain.test", "")
        assert "alpha-" not in body
        return
    body = response.content.decode()
    assert response.status_code == 200
    assert "alphauser@alpha-domain.test" in body
    assert "bravo-" not in body


def test_outsiders_get_a_404_for_their_own_page_of_another_domain_and_see_their_own(cast: Cast) -> None:
    audit.record(cast.operator, Action.MAILBOX_SET_QUOTA, cast.b.postmaster)
    for role in ("reseller_b", "customer_b", "domain_admin_b"):
        assert page(cast, role, domain=cast.b.domain).status_code == 200, role
        assert "postmaster@bravo-domain.test" in page(cast, role, domain=cast.b.domain).content.decode(), role


def test_who_says_acting_on_for_seats_outside_the_domain(cast: Cast) -> None:
    for actor in (cast.support, cast.operator, cast.a.reseller_staff, cast.a.customer_user, cast.a.postmaster):
        mail.mailbox_set_real_name(mailbox=cast.mailbox_user, real_name=f"by {actor}", acting_user=actor)
    body = page(cast, "operator").content.decode()
    assert "agent@support.test (support) acting on alpha-domain.test" in body
    assert "root@operator.test (operator) acting on alpha-domain.test" in body
    assert "staff@alpha-reseller.test (reseller) acting on alpha-domain.test" in body
    assert "owner@alpha-customer.test (customer) acting on alpha-domain.test" in body
    assert "postmaster@alpha-domain.test (domain admin)" in body
    assert "postmaster@alpha-domain.test (domain admin) acting on" not in body
    french = page(cast, "operator", language="fr").content.decode()
    assert "agent@support.test (support) agissant sur alpha-domain.test" in french
    assert "postmaster@alpha-domain.test (administrateur du domaine)" in french


def test_the_page_shows_what_was_done_and_what_changed(cast: Cast) -> None:
    mailbox = cast.mailbox_user
    mail.mailbox_set_quota(mailbox=mailbox, quota_mb=100, acting_user=cast.a.postmaster)
    mail.mailbox_set_quota(mailbox=mailbox, quota_mb=900, acting_user=cast.a.postmaster)
    mail.mailbox_set_routing(mailbox=mailbox, routing=Routing.DELETE, acting_user=cast.a.postmaster)
    mail.mailbox_set_access(mailbox=mailbox, allow_imap=False, acting_user=cast.a.postmaster)
    mail.mailbox_set_password(mailbox=mailbox, password=MAILBOX_PASSWORD + "x", acting_user=cast.a.postmaster)
    body = page(cast, "domain_admin_a").content.decode()
    assert "Quota changed" in body
    assert "quota (MB): 100 → 900" in body
    assert "routing: Standard (no forwarding) → All mail deleted" in body
    assert "IMAP allowed: yes → no" in body
    assert "Password changed" in body
    french = page(cast, "domain_admin_a", language="fr").content.decode()
    assert "Quota modifié" in french
    assert "IMAP autorisé : oui → non" in french
    assert "Mot de passe modifié" in french


def test_the_page_is_50_events_newest_first(cast: Cast) -> None:
    for n in range(60):
        audit.record(cast.operator, Action.FORWARD_CREATE, cast.mailbox_user, n=n)
    newest = AuditEvent.objects.filter(domain_id=cast.a.domain.pk).order_by("-created_at", "-pk")
    first = page(cast).context["table"].page.object_list.data
    assert [e.pk for e in first] == [e.pk for e in newest[:50]]
    second = page(cast, page=2).context["table"].page.object_list.data
    assert [e.pk for e in second] == [e.pk for e in newest[50:]]


def queries_of_page(cast: Cast, role: str, **params: Any) -> int:
    client = client_for(cast, role)
    url = reverse("screens:domain_audit", args=[cast.a.domain.pk])
    client.get(url)  # the session and caches warm
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params).status_code == 200
    return len(queries)


@pytest.mark.parametrize("role", ["operator", "support", "reseller_a", "customer_a", "domain_admin_a"])
def test_the_page_makes_the_same_number_of_queries_whatever_the_number_of_events(cast: Cast, role: str) -> None:
    actors = [cast.support, cast.a.customer_user, cast.a.postmaster, cast.a.reseller_staff, None]
    mail.mailbox_set_quota(mailbox=cast.mailbox_user, quota_mb=10, acting_user=cast.operator)
    few = queries_of_page(cast, role)
    for n in range(120):
        mail.mailbox_set_quota(mailbox=cast.mailbox_user, quota_mb=11 + n, acting_user=actors[n % len(actors)])
        audit.record(actors[n % len(actors)], Action.FORWARD_CREATE, cast.mailbox_user)
    assert AuditEvent.objects.filter(domain_id=cast.a.domain.pk).count() == 241
    assert queries_of_page(cast, role) == few
    assert queries_of_page(cast, role, page=3) == few


def test_every_action_has_a_label_in_english_and_french() -> None:
    missing = [action.value for action in Action if action.value not in ACTION_LABELS]
    assert not missing, f"actions without a label in hosting.audit_display.ACTION_LABELS: {missing}"
    untranslated = []
    for action in Action:
        with translation.override("en"):
            english = action_label(action.value)
        with translation.override("fr"):
            french = action_label(action.value)
        if english == french:
            untranslated.append(action.value)
    assert not untranslated, f"labels without a French translation: {untranslated}"


# --- 4. before/after, never a password ---------------------------------------------------------


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("pk")


def test_the_services_record_before_and_after(cast: Cast) -> None:
    mailbox, by = cast.mailbox_user, cast.a.postmaster
    mail.mailbox_set_real_name(mailbox=mailbox, real_name="Alice", acting_user=by)
    assert last_event("mailbox.set_real_name").detail["changes"] == {"real_name": ["Alpha User", "Alice"]}
    mail.mailbox_set_admin(mailbox=mailbox, is_admin=True, acting_user=cast.operator)
    assert last_event("mailbox.set_admin").detail["changes"] == {"is_admin": [False, True]}
    mail.mailbox_set_access(mailbox=mailbox, enabled=False, allow_pop3=True, acting_user=by)
    assert last_event("mailbox.set_access").detail["changes"] == {"enabled": [True, False]}
    mail.mailbox_set_routing(mailbox=mailbox, routing=Routing.FORWARD, forward_to=["x@remote.test"], acting_user=by)
    assert last_event("mailbox.set_routing").detail["changes"] == {
        "routing": ["standard", "forward"], "forward_to": [[], ["x@remote.test"]]}
    mail.mailbox_set_vacation(mailbox=mailbox, enabled=True, message="Away", days=3, acting_user=by)
    assert last_event("mailbox.set_vacation").detail["changes"] == {
        "vacation_enabled": [False, True], "vacation_message": ["", "Away"], "vacation_days": [1, 3]}
    forward = mail.forward_create(domain=cast.a.domain, local_part="sales", destinations=["a@remote.test"],
                                  acting_user=by)
    mail.forward_set_destinations(forward=forward, destinations=["b@remote.test"], acting_user=by)
    assert last_event("forward.change").detail["changes"] == {"destinations": [["a@remote.test"], ["b@remote.test"]]}


def test_no_password_nor_its_hash_reaches_the_audit_log(cast: Cast) -> None:
    new = "Another-Horse-43"
    mail.mailbox_set_password(mailbox=cast.mailbox_user, password=new, acting_user=cast.a.postmaster)
    stored_hash = Mailbox.objects.get(pk=cast.mailbox_user.pk).password_hash
    event = audit.record(cast.operator, Action.MAILBOX_SET_PASSWORD, cast.mailbox_user, password=new,
                         changes={"password_hash": ["old", stored_hash], "quota_mb": [1, 2]})
    assert AuditEvent.objects.get(pk=event.pk).detail == {"changes": {"quota_mb": [1, 2]}, "password_changed": True}
    everything = json.dumps(list(AuditEvent.objects.values_list("detail", flat=True)))
    assert new not in everything and stored_hash not in everything and "old" not in everything
    assert "The password was changed." in page(cast).content.decode()


def test_a_service_call_still_makes_four_statements_with_its_before_and_after(cast: Cast) -> None:
    """The README's count: the revision, the push's claim, the row, the audit row (scope included)."""
    mailbox = Mailbox.objects.select_related("domain").get(pk=cast.mailbox_user.pk)
    with CaptureQueriesContext(connection) as queries:
        mail.mailbox_set_access(mailbox=mailbox, allow_pop3=False, acting_user=cast.operator)
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))]
    assert len(statements) == 4, statements
    event = last_event("mailbox.set_access")
    assert event.detail["changes"] == {"allow_pop3": [True, False]}
    assert scope_of(event) == scope_of_domain(cast)
