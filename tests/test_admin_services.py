"""Every admin add and change goes through the service functions (issue 6, faults 4, 7 and 9):
a refusal of any service is a message on the form (never a 500) and leaves nothing written; an
accepted edit writes through its service (revision, one audit row per act); what no service
changes is read-only; outsiders neither see nor edit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from hosting.models import AuditEvent, Customer, Domain, MailHost, Pack, Plan, Reseller
from hosting.services import customer_update, pack_update, plan_create, plan_update
from mail.models import Mailbox
from mail.services import mailbox_set_access, mailbox_set_admin, mailbox_set_real_name
from tests.conftest import Cast, client_for
from tests.factories import MAILBOX_PASSWORD
from tests.factories import MailHostFactory as HostFactory

pytestmark = pytest.mark.django_db

TENANT_MODELS = (Reseller, Customer, Plan, Pack, Domain, Mailbox, MailHost, AuditEvent)


def stored(cast: Cast) -> list[list[dict[str, Any]]]:
    """Every row of every tenant table and of the audit log (domain revisions included)."""
    return [list(model.objects.order_by("pk").values()) for model in TENANT_MODELS]


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:{name}", args=args)


def form_data(client: Client, path: str, **changes: Any) -> dict[str, Any]:
    """What the change form at `path` posts as shown (whatever fields it has), with `changes`."""
    form = client.get(path).context["adminform"].form
    data: dict[str, Any] = {}
    for name, form_field in form.fields.items():
        value = form[name].value()
        if isinstance(form_field, forms.BooleanField):
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else value
    data.update(changes)
    return data


def plan_data(name: str, **limits: Any) -> dict[str, Any]:
    return {"name": name, "max_domains": 1, "max_alias_domains": 2, "max_mailboxes": 10, "max_forwards": 0,
            "max_robots": 0,
            "max_lists": -1, "max_list_members": -1, "default_quota_mb": 500, "total_quota_mb": 0, **limits}


def pack_data(cast: Cast, **changes: Any) -> dict[str, Any]:
    """The change form of pack A as posted (customer read-only), with `changes`."""
    return {"plan": cast.a.plan.pk, "mail_host": cast.host.pk, "label": "alpha-pack", **changes}


def mailbox_data(mailbox: Mailbox, **changes: Any) -> dict[str, Any]:
    """The change form of a mailbox as posted by the operator, with `changes`."""
    data = {"real_name": mailbox.real_name, "quota_mb": mailbox.quota_mb}
    for name in ("is_admin", "enabled", "allow_pop3", "allow_imap", "allow_smtp"):
        if getattr(mailbox, name):
            data[name] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not False}


def set_attrs(obj: Any, **values: Any) -> None:
    for name, value in values.items():
        setattr(obj, name, value)
    obj.save()


@dataclass
class Refusal:
    seat: str
    url: Callable[[Cast], str]
    data: Callable[[Cast], dict[str, Any]]
    message: str
    setup: Callable[[Cast], Any] = field(default=lambda cast: None)


def _second_plan_of_a(cast: Cast) -> None:
    plan_create(reseller=cast.a.reseller, name="Gold", acting_user=cast.operator)


def _plan_of_a_full_of_mailboxes(cast: Cast) -> None:
    set_attrs(cast.a.plan, max_domains=5, max_mailboxes=2)  # postmaster and alphauser


def _pool_of_a_full_of_mailboxes(cast: Cast) -> None:
    set_attrs(cast.a.plan, max_domains=5)
    set_attrs(cast.a.reseller, max_mailboxes=2)


def _pool_of_a_full_of_domains(cast: Cast) -> None:
    set_attrs(cast.a.plan, max_domains=5)
    set_attrs(cast.a.reseller, max_domains=1)


def _pack_of_a_with_a_total_quota(cast: Cast) -> None:
    set_attrs(cast.a.plan, total_quota_mb=1000)
    Mailbox.objects.filter(domain=cast.a.domain).update(quota_mb=100)
    cast.mailbox_user.refresh_from_db()


def _new_domain(cast: Cast, name: str = "new-domain.test") -> dict[str, Any]:
    return {"pack": cast.a.pack.pk, "name": name, "postmaster_password": MAILBOX_PASSWORD}


REFUSALS = {
    "customer add, the reseller's pool full": Refusal(
        "reseller_a", lambda c: url("hosting_customer_add"), lambda c: {"name": "Too many", "email": ""},
        "Maximum number of customers reached (1).", lambda c: set_attrs(c.a.reseller, max_customers=1),
    ),
    "plan add, a name the reseller already uses": Refusal(
        "reseller_a", lambda c: url("hosting_plan_add"), lambda c: plan_data("alpha-plan"),
        "There is already a plan named “alpha-plan”.",
    ),
    "plan change, renamed to a name the reseller already uses": Refusal(
        "reseller_a", lambda c: url("hosting_plan_change", Plan.objects.get(name="Gold").pk),
        lambda c: plan_data("alpha-plan"), "There is already a plan named “alpha-plan”.", _second_plan_of_a,
    ),
    "plan add by the operator, a name of its own plans": Refusal(
        "operator", lambda c: url("hosting_plan_add"), lambda c: plan_data("House"),
        "There is already a plan named “House”.",
        lambda c: plan_create(reseller=None, name="House", acting_user=c.operator),
    ),
    "pack add by the operator, another reseller's plan": Refusal(
        "operator", lambda c: url("hosting_pack_add"),
        lambda c: {"customer": c.a.customer.pk, "plan": c.b.plan.pk, "mail_host": c.host.pk, "label": "x"},
        "This plan is not sold to this customer.",
    ),
    "pack change by support, another reseller's plan": Refusal(
        "support", lambda c: url("hosting_pack_change", c.a.pack.pk), lambda c: pack_data(c, plan=c.b.plan.pk),
        "This plan is not sold to this customer.",
    ),
    "pack change by the operator, another reseller's plan": Refusal(
        "operator", lambda c: url("hosting_pack_change", c.a.pack.pk), lambda c: pack_data(c, plan=c.b.plan.pk),
        "This plan is not sold to this customer.",
    ),
    "pack change by the operator, an inactive mail host": Refusal(
        "operator", lambda c: url("hosting_pack_change", c.a.pack.pk),
        lambda c: pack_data(c, mail_host=MailHost.objects.get(name="closed").pk, label="renamed"),
        "This mail host does not accept new packs.", lambda c: HostFactory(name="closed", active=False),
    ),
    "domain add, no room in the plan for the postmaster": Refusal(
        "reseller_a", lambda c: url("hosting_domain_add"), _new_domain,
        "Maximum number of POP accounts reached.", _plan_of_a_full_of_mailboxes,
    ),
    "domain add, no room in the reseller's pool for the postmaster": Refusal(
        "reseller_a", lambda c: url("hosting_domain_add"), _new_domain,
        "The reseller has reached its maximum number of POP accounts.", _pool_of_a_full_of_mailboxes,
    ),
    "domain add, the reseller's pool full of domains": Refusal(
        "reseller_a", lambda c: url("hosting_domain_add"), _new_domain,
        "The reseller has reached its maximum number of domains (1).", _pool_of_a_full_of_domains,
    ),
    "mailbox change, a real name of two lines": Refusal(
        "operator", lambda c: url("mail_mailbox_change", c.mailbox_user.pk),
        lambda c: mailbox_data(c.mailbox_user, real_name="Alpha\nUser"),
        "This text contains characters that are not allowed.",
    ),
    "mailbox change, a quota over the pack's total": Refusal(
        "operator", lambda c: url("mail_mailbox_change", c.mailbox_user.pk),
        lambda c: mailbox_data(c.mailbox_user, quota_mb=5000), "The pack's total quota would be exceeded",
        _pack_of_a_with_a_total_quota,
    ),
    "mailbox change, a new real name (accepted) with a quota over the pack's total": Refusal(
        "operator", lambda c: url("mail_mailbox_change", c.mailbox_user.pk),
        lambda c: mailbox_data(c.mailbox_user, real_name="Renamed", quota_mb=5000),
        "The pack's total quota would be exceeded", _pack_of_a_with_a_total_quota,
    ),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_service_refusal_is_a_message_on_the_form_and_nothing_is_written(cast: Cast, case: Refusal) -> None:
    case.setup(cast)
    before = stored(cast)
    response = client_for(cast, case.seat).post(case.url(cast), case.data(cast))
    assert response.status_code == 200, response.content.decode()[:2000]
    assert response.context["adminform"].form.errors
    assert escape(case.message) in response.content.decode()
    assert stored(cast) == before  # no row, no audit row, no revision bump


@pytest.mark.parametrize("case, french", [
    ("plan add, a name the reseller already uses", "Il existe déjà une offre nommée « alpha-plan »."),
    ("pack change by support, another reseller's plan", "Cette offre n'est pas proposée à ce client."),
    ("domain add, no room in the plan for the postmaster", "Nombre maximum de comptes Pop atteint."),
])
def test_the_refusal_is_in_french_for_a_french_seat(cast: Cast, case: str, french: str) -> None:
    refusal = REFUSALS[case]
    refusal.setup(cast)
    response = client_for(cast, refusal.seat, language="fr").post(refusal.url(cast), refusal.data(cast))
    assert response.status_code == 200
    assert escape(french) in response.content.decode()


# Fault 4: the plan of a pack is checked on every save, by the service.

def test_pack_update_refuses_another_resellers_plan(cast: Cast) -> None:
    with pytest.raises(ValidationError) as refused:
        pack_update(pack=cast.a.pack, plan=cast.b.plan, label="alpha-pack", acting_user=cast.operator)
    assert refused.value.code == "plan"
    assert Pack.objects.get(pk=cast.a.pack.pk).plan == cast.a.plan
    assert not AuditEvent.objects.exists()


def test_pack_change_writes_one_audit_row_and_nothing_when_nothing_changed(cast: Cast) -> None:
    gold = plan_create(reseller=cast.a.reseller, name="Gold", acting_user=cast.operator)
    client = client_for(cast, "reseller_a")
    response = client.post(url("hosting_pack_change", cast.a.pack.pk), pack_data(cast, plan=gold.pk))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Pack.objects.get(pk=cast.a.pack.pk).plan == gold
    event = AuditEvent.objects.get(action="pack.change")
    assert (event.actor, event.detail["fields"]) == (cast.a.reseller_staff, ["plan"])
    before = stored(cast)
    assert client.post(url("hosting_pack_change", cast.a.pack.pk), pack_data(cast, plan=gold.pk)).status_code == 302
    assert stored(cast) == before


# Fault 7: plans through their service functions.

def test_plan_names_are_unique_per_reseller_the_operators_included(cast: Cast) -> None:
    plan_create(reseller=cast.b.reseller, name="Gold", acting_user=cast.operator)
    plan_create(reseller=cast.a.reseller, name="Gold", acting_user=cast.operator)  # another reseller: free
    plan_create(reseller=None, name="Gold", acting_user=cast.operator)
    for reseller in (cast.a.reseller, None):
        with pytest.raises(ValidationError) as refused:
            plan_create(reseller=reseller, name=" Gold ", acting_user=cast.operator)
        assert refused.value.code == "unique"
    assert Plan.objects.filter(name="Gold").count() == 3
    assert AuditEvent.objects.filter(action="plan.create").count() == 3


def test_reseller_adds_a_plan_in_its_own_tree_audited(cast: Cast) -> None:
    response = client_for(cast, "reseller_a").post(
        url("hosting_plan_add"), {**plan_data("Gold"), "reseller": cast.b.reseller.pk}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    plan = Plan.objects.get(name="Gold")
    assert (plan.reseller, plan.max_mailboxes, plan.max_lists) == (cast.a.reseller, 10, -1)
    event = AuditEvent.objects.get(action="plan.create")
    assert (event.actor, event.target_id) == (cast.a.reseller_staff, str(plan.pk))


def test_plan_change_writes_one_audit_row_and_nothing_when_nothing_changed(cast: Cast) -> None:
    client = client_for(cast, "reseller_a")
    data = plan_data("alpha-plan", max_mailboxes=7)
    response = client.post(url("hosting_plan_change", cast.a.plan.pk), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    cast.a.plan.refresh_from_db()
    assert cast.a.plan.max_mailboxes == 7
    event = AuditEvent.objects.get(action="plan.change")
    assert "max_mailboxes" in event.detail["fields"]
    before = stored(cast)
    assert client.post(url("hosting_plan_change", cast.a.plan.pk), data).status_code == 302
    assert stored(cast) == before


def test_plan_update_refuses_the_name_of_another_plan_and_changes_nothing(cast: Cast) -> None:
    gold = plan_create(reseller=cast.a.reseller, name="Gold", acting_user=cast.operator)
    with pytest.raises(ValidationError):
        plan_update(plan=gold, name="alpha-plan", max_mailboxes=99, acting_user=cast.operator)
    gold.refresh_from_db()
    assert (gold.name, gold.max_mailboxes) == ("Gold", 5)


def test_a_plan_limit_below_unlimited_is_refused_not_a_500(cast: Cast) -> None:
    response = client_for(cast, "reseller_a").post(url("hosting_plan_add"), plan_data("Bad", max_domains=-5))
    assert response.status_code == 200
    assert not Plan.objects.filter(name="Bad").exists()


# Customers.

def test_customer_change_writes_one_audit_row_and_nothing_when_nothing_changed(cast: Cast) -> None:
    client = client_for(cast, "support")
    data = {"name": "alpha-customer", "email": "new@alpha.test"}
    assert client.post(url("hosting_customer_change", cast.a.customer.pk), data).status_code == 302
    assert Customer.objects.get(pk=cast.a.customer.pk).email == "new@alpha.test"
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.detail["fields"]) == ("customer.change", cast.support, ["email"])
    before = stored(cast)
    assert client.post(url("hosting_customer_change", cast.a.customer.pk), data).status_code == 302
    assert stored(cast) == before


def test_customer_update_keeps_the_reseller_and_refuses_a_blank_name(cast: Cast) -> None:
    with pytest.raises(ValidationError):
        customer_update(customer=cast.a.customer, name="  ", acting_user=cast.operator)
    assert Customer.objects.get(pk=cast.a.customer.pk).name == "alpha-customer"
    assert not AuditEvent.objects.exists()


def test_domain_added_by_a_reseller_with_its_postmaster_in_one_go(cast: Cast) -> None:
    set_attrs(cast.a.plan, max_domains=5)
    response = client_for(cast, "reseller_a").post(url("hosting_domain_add"), _new_domain(cast))
    assert response.status_code == 302, response.content.decode()[:2000]
    domain = Domain.objects.get(name="new-domain.test")
    assert Mailbox.objects.get(domain=domain).local_part == "postmaster"
    assert sorted(AuditEvent.objects.values_list("action", flat=True)) == ["domain.create", "mailbox.create"]


# Fault 9: the operator's mailbox edit.

def test_operator_cannot_store_a_path_as_a_name_nor_a_command_as_a_forward(cast: Cast) -> None:
    mailbox = cast.mailbox_user
    before = stored(cast)
    response = client_for(cast, "operator").post(url("mail_mailbox_change", mailbox.pk), mailbox_data(
        mailbox, local_part="../../etc", forward_to='["|/bin/sh -c id"]', routing="forward",
        domain=cast.b.domain.pk, password_hash="{PLAIN}x", vacation_enabled="on", vacation_message="x",
    ))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert stored(cast) == before  # every one of those fields is read-only: ignored
    body = client_for(cast, "operator").get(url("mail_mailbox_change", mailbox.pk)).content.decode()
    assert 'name="local_part"' not in body and 'name="forward_to"' not in body
    assert mailbox.password_hash not in body


EDITS = {
    "real_name": ("Alpha Renamed", "mailbox.set_real_name"),
    "quota_mb": (250, "mailbox.set_quota"),
    "is_admin": ("on", "mailbox.set_admin"),
    "enabled": (False, "mailbox.set_access"),
    "allow_pop3": (False, "mailbox.set_access"),
    "allow_imap": (False, "mailbox.set_access"),
    "allow_smtp": (False, "mailbox.set_access"),
}


@pytest.mark.parametrize("name", EDITS)
def test_operator_mailbox_edit_goes_through_its_service(cast: Cast, name: str) -> None:
    value, action = EDITS[name]
    mailbox = cast.mailbox_user
    revision = Domain.objects.get(pk=cast.a.domain.pk).revision
    response = client_for(cast, "operator").post(url("mail_mailbox_change", mailbox.pk),
                                                 mailbox_data(mailbox, **{name: value}))
    assert response.status_code == 302, response.content.decode()[:2000]
    stored_value = Mailbox.objects.values_list(name, flat=True).get(pk=mailbox.pk)
    assert stored_value == {"on": True}.get(value, value)
    assert Domain.objects.get(pk=cast.a.domain.pk).revision == revision + 1
    assert Mailbox.objects.get(pk=mailbox.pk).revision == revision + 1
    event = AuditEvent.objects.get()  # exactly one
    assert (event.action, event.actor, event.target_id) == (action, cast.operator, str(mailbox.pk))


def test_mailbox_post_with_nothing_changed_writes_nothing(cast: Cast) -> None:
    before = stored(cast)
    response = client_for(cast, "operator").post(url("mail_mailbox_change", cast.mailbox_user.pk),
                                                 mailbox_data(cast.mailbox_user))
    assert response.status_code == 302
    assert stored(cast) == before


def test_mailbox_services_change_nothing_when_nothing_changes(cast: Cast) -> None:
    mailbox = cast.mailbox_user
    before = stored(cast)
    mailbox_set_real_name(mailbox=mailbox, real_name=" Alpha User ", acting_user=cast.operator)
    mailbox_set_admin(mailbox=mailbox, is_admin=False, acting_user=cast.operator)
    mailbox_set_access(mailbox=mailbox, enabled=True, allow_pop3=True, acting_user=cast.operator)
    assert stored(cast) == before


@pytest.mark.parametrize("seat, status", [
    ("reseller_b", 403),  # read only, and not in its tree
    ("reseller_a", 403),  # its own tree, read only
    ("support", 403),
    ("customer_a", 302),  # to the login page
    ("domain_admin_a", 302),
])
def test_only_the_operator_edits_a_mailbox(cast: Cast, seat: str, status: int) -> None:
    mailbox = cast.mailbox_user
    before = stored(cast)
    response = client_for(cast, seat).post(url("mail_mailbox_change", mailbox.pk),
                                           mailbox_data(mailbox, real_name="Intruder"))
    assert response.status_code == status
    assert stored(cast) == before
    if seat == "reseller_b":  # not in its tree: "does not exist", back to the admin's index
        response = client_for(cast, seat).get(url("mail_mailbox_change", mailbox.pk))
        assert response.status_code == 302
        assert response.url == reverse("admin:index")


def test_reseller_b_cannot_change_alphas_pack_plan_or_customer(cast: Cast) -> None:
    before = stored(cast)
    client = client_for(cast, "reseller_b")
    assert client.post(url("hosting_pack_change", cast.a.pack.pk), pack_data(cast, label="mine")).status_code == 302
    assert client.post(url("hosting_plan_change", cast.a.plan.pk), plan_data("mine")).status_code == 302
    assert client.post(url("hosting_customer_change", cast.a.customer.pk), {"name": "mine"}).status_code == 302
    assert stored(cast) == before


def test_mail_host_name_is_read_only_after_creation(cast: Cast) -> None:
    client, path = client_for(cast, "operator"), url("hosting_mailhost_change", cast.host.pk)
    response = client.post(path, form_data(client, path, name="renamed"))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert MailHost.objects.get(pk=cast.host.pk).name == "mx1"
