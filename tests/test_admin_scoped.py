"""The Django admin as resellers, support and the operator use it: creations within the pool,
choices scoped to the seat's tree, every act audited."""

from __future__ import annotations

import pytest
from django.urls import reverse

from hosting.models import AuditEvent, Customer, Domain, Pack, Plan, User
from mail.models import Mailbox
from tests.conftest import Cast, client_for
from tests.factories import MAILBOX_PASSWORD
from tests.factories import MailHostFactory as HostFactory

pytestmark = pytest.mark.django_db


def test_reseller_creates_a_customer_in_its_own_tree(cast: Cast) -> None:
    client = client_for(cast, "reseller_a")
    response = client.post(reverse("admin:hosting_customer_add"), {"name": "New SARL", "email": "a@new.test"})
    assert response.status_code == 302, response.content.decode()[:2000]
    customer = Customer.objects.get(name="New SARL")
    assert customer.reseller == cast.a.reseller
    assert AuditEvent.objects.filter(action="customer.create", target_id=str(customer.pk),
                                     actor=cast.a.reseller_staff).count() == 1


def test_reseller_cannot_place_a_customer_under_another_reseller(cast: Cast) -> None:
    client = client_for(cast, "reseller_a")
    client.post(reverse("admin:hosting_customer_add"),
                {"name": "Sneaky", "reseller": cast.b.reseller.pk})
    assert Customer.objects.get(name="Sneaky").reseller == cast.a.reseller


def test_customer_pool_full_is_a_form_error_not_a_crash(cast: Cast) -> None:
    cast.a.reseller.max_customers = 1  # it has one already
    cast.a.reseller.save()
    response = client_for(cast, "reseller_a").post(reverse("admin:hosting_customer_add"), {"name": "Too many"})
    assert response.status_code == 200
    assert "Maximum number of customers reached" in response.content.decode()
    assert not Customer.objects.filter(name="Too many").exists()


def test_reseller_plan_is_its_own(cast: Cast) -> None:
    client = client_for(cast, "reseller_a")
    response = client.post(reverse("admin:hosting_plan_add"), {
        "name": "Gold", "reseller": cast.b.reseller.pk, "max_domains": 1, "max_alias_domains": 2, "max_mailboxes": 10,
        "max_forwards": 0, "max_robots": 0, "max_lists": -1, "max_list_members": -1, "default_quota_mb": 500,
        "total_quota_mb": 0,
    })
    assert response.status_code == 302
    assert Plan.objects.get(name="Gold").reseller == cast.a.reseller


def test_reseller_cannot_sell_a_pack_with_another_resellers_plan_or_customer(cast: Cast) -> None:
    client = client_for(cast, "reseller_a")
    response = client.post(reverse("admin:hosting_pack_add"), {
        "customer": cast.b.customer.pk, "plan": cast.a.plan.pk, "mail_host": cast.host.pk, "label": "x",
    })
    assert response.status_code == 200  # the form refuses B's customer: not a valid choice
    assert "customer" in response.context["adminform"].form.errors
    response = client.post(reverse("admin:hosting_pack_add"), {
        "customer": cast.a.customer.pk, "plan": cast.b.plan.pk, "mail_host": cast.host.pk, "label": "x",
    })
    assert "plan" in response.context["adminform"].form.errors
    assert Pack.objects.filter(label="x").count() == 0


def test_reseller_cannot_choose_an_inactive_mail_host(cast: Cast) -> None:
    closed = HostFactory(name="closed", active=False)
    response = client_for(cast, "reseller_a").post(reverse("admin:hosting_pack_add"), {
        "customer": cast.a.customer.pk, "plan": cast.a.plan.pk, "mail_host": closed.pk, "label": "x",
    })
    assert "mail_host" in response.context["adminform"].form.errors


def test_reseller_creates_pack_then_domain_with_its_postmaster(cast: Cast) -> None:
    client = client_for(cast, "reseller_a")
    response = client.post(reverse("admin:hosting_pack_add"), {
        "customer": cast.a.customer.pk, "plan": cast.a.plan.pk, "mail_host": cast.host.pk, "label": "second",
    })
    assert response.status_code == 302
    pack = Pack.objects.get(label="second")
    response = client.post(reverse("admin:hosting_domain_add"), {
        "pack": pack.pk, "name": "Café-Exemple.FR", "postmaster_password": MAILBOX_PASSWORD,
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    domain = Domain.objects.get(pack=pack)
    assert domain.name == "xn--caf-exemple-dbb.fr"
    assert domain.unicode_name == "café-exemple.fr"
    postmaster = Mailbox.objects.get(domain=domain, local_part="postmaster")
    assert postmaster.is_domain_admin
    assert postmaster.password_hash.startswith("{ARGON2ID}")
    assert MAILBOX_PASSWORD not in postmaster.password_hash


def test_domain_limit_of_the_pack_is_a_form_error(cast: Cast) -> None:
    # cast.a.pack's plan allows one domain and has one.
    response = client_for(cast, "reseller_a").post(reverse("admin:hosting_domain_add"), {
        "pack": cast.a.pack.pk, "name": "another.test", "postmaster_password": MAILBOX_PASSWORD,
    })
    assert response.status_code == 200
    assert "Maximum number of domains of this pack reached" in response.content.decode()
    assert not Domain.objects.filter(name="another.test").exists()


def test_weak_postmaster_password_creates_nothing(cast: Cast) -> None:
    cast.a.plan.max_domains = 5
    cast.a.plan.save()
    response = client_for(cast, "reseller_a").post(reverse("admin:hosting_domain_add"), {
        "pack": cast.a.pack.pk, "name": "weak.test", "postmaster_password": "123",
    })
    assert response.status_code == 200
    assert not Domain.objects.filter(name="weak.test").exists()


def test_reseller_cannot_add_a_domain_to_another_resellers_pack(cast: Cast) -> None:
    response = client_for(cast, "reseller_a").post(reverse("admin:hosting_domain_add"), {
        "pack": cast.b.pack.pk, "name": "intrude.test", "postmaster_password": MAILBOX_PASSWORD,
    })
    assert response.status_code == 200
    assert "pack" in response.context["adminform"].form.errors
    assert not Domain.objects.filter(name="intrude.test").exists()


def test_reseller_creates_a_user_only_for_its_customers_and_never_staff(cast: Cast) -> None:
    client = client_for(cast, "reseller_a")
    response = client.post(reverse("admin:hosting_user_add"), {
        "email": "new@alpha.test", "customer": cast.a.customer.pk, "is_staff": "on", "is_superuser": "on",
        "password1": "A-Good-Passw0rd", "password2": "A-Good-Passw0rd", "usable_password": "true",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    user = User.objects.get(email="new@alpha.test")
    assert (user.customer, user.is_staff, user.is_superuser) == (cast.a.customer, False, False)
    response = client.post(reverse("admin:hosting_user_add"), {
        "email": "evil@alpha.test", "customer": cast.b.customer.pk,
        "password1": "A-Good-Passw0rd", "password2": "A-Good-Passw0rd", "usable_password": "true",
    })
    assert not User.objects.filter(email="evil@alpha.test").exists()


def test_reseller_cannot_edit_its_own_staff_account(cast: Cast) -> None:
    url = reverse("admin:hosting_user_change", args=[cast.a.reseller_staff.pk])
    assert client_for(cast, "reseller_a").post(url, {"email": "x@x.test"}).status_code in (302, 403)
    cast.a.reseller_staff.refresh_from_db()
    assert cast.a.reseller_staff.email == "staff@alpha-reseller.test"


def test_support_change_is_audited(cast: Cast) -> None:
    client = client_for(cast, "support")
    response = client.post(reverse("admin:hosting_customer_change", args=[cast.a.customer.pk]),
                           {"name": "alpha-customer renamed", "email": ""})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="customer.change")
    assert (event.actor, event.actor_role, event.target_id) == (cast.support, "support", str(cast.a.customer.pk))
    assert "name" in event.detail["fields"]


def test_support_reads_the_audit_log_and_resellers_do_not(cast: Cast) -> None:
    client_for(cast, "support").post(reverse("admin:hosting_customer_change", args=[cast.a.customer.pk]),
                                     {"name": "renamed", "email": ""})
    body = client_for(cast, "support").get(reverse("admin:hosting_auditevent_changelist")).content.decode()
    assert "customer.change" in body
    assert client_for(cast, "reseller_a").get(reverse("admin:hosting_auditevent_changelist")).status_code == 403


def test_support_cannot_delete(cast: Cast) -> None:
    client = client_for(cast, "support")
    response = client.post(reverse("admin:hosting_customer_delete", args=[cast.a.customer.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Customer.objects.filter(pk=cast.a.customer.pk).exists()


def test_changing_a_packs_mail_host_moves_its_domains(cast: Cast, django_capture_on_commit_callbacks) -> None:
    from hosting.models import Domain
    from provisioning.models import RetiredDomain

    new_host = HostFactory(name="mx9")
    client = client_for(cast, "reseller_a")
    revision = cast.a.domain.revision
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("admin:hosting_pack_change", args=[cast.a.pack.pk]), {
            "plan": cast.a.plan.pk, "mail_host": new_host.pk, "label": "alpha-pack",
        })
    assert response.status_code == 302, response.content.decode()[:2000]
    cast.a.pack.refresh_from_db()
    assert cast.a.pack.mail_host == new_host
    assert Domain.objects.get(pk=cast.a.domain.pk).revision == revision + 1
    assert AuditEvent.objects.filter(action="pack.move", actor=cast.a.reseller_staff).count() == 1
    assert not RetiredDomain.objects.exists()  # written when the push finds the domain on the old host


def test_operator_deleting_a_domain_in_the_admin_retires_it_from_its_host(
    cast: Cast, django_capture_on_commit_callbacks
) -> None:
    from hosting.models import Domain
    from provisioning.models import RetiredDomain

    client = client_for(cast, "operator")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("admin:hosting_domain_delete", args=[cast.a.domain.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Domain.objects.filter(pk=cast.a.domain.pk).exists()
    assert RetiredDomain.objects.filter(name="alpha-domain.test", host=cast.host).exists()
    assert AuditEvent.objects.filter(action="domain.delete").count() == 1


def test_postmaster_cannot_be_deleted_in_the_admin(cast: Cast) -> None:
    from mail.models import Mailbox

    url = reverse("admin:mail_mailbox_delete", args=[cast.a.postmaster.pk])
    assert client_for(cast, "operator").post(url, {"post": "yes"}).status_code == 403
    assert Mailbox.objects.filter(pk=cast.a.postmaster.pk).exists()
    client_for(cast, "operator").post(reverse("admin:mail_mailbox_changelist"), {
        "action": "delete_selected", "_selected_action": [cast.a.postmaster.pk, cast.mailbox_user.pk], "post": "yes",
    })
    assert Mailbox.objects.filter(pk=cast.a.postmaster.pk).exists()
