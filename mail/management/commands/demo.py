"""Create (or refresh) the demo tenants and print the logins with fresh passwords."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from hosting.models import Customer, Domain, MailHost, Pack, Plan, Reseller, User, VerifiedHow
from hosting.roles import SUPPORT_GROUP
from hosting.services import customer_create, pack_create
from mail.accounts import domain_create_with_accounts
from mail.models import POSTMASTER, Mailbox
from mail.services import mailbox_create, mailbox_set_password
from provisioning.domains import domain_verify

DEMO_DOMAIN = "example.test"


def new_password() -> str:
    return secrets.token_urlsafe(12)


class Command(BaseCommand):
    help = "Create the demo reseller, customer, plan, pack and domain example.test; print the logins."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        host, _ = MailHost.objects.get_or_create(name="local", defaults={"fqdn": "127.0.0.1"})
        reseller, _ = Reseller.objects.get_or_create(
            name="Revendeur Démo", defaults={"max_customers": 10, "max_domains": 20, "max_mailboxes": 100}
        )
        customer = Customer.objects.filter(reseller=reseller, name="Client Exemple").first()
        if customer is None:
            customer = customer_create(
                reseller=reseller, name="Client Exemple", email="client@example.test", acting_user=None
            )
        plan, _ = Plan.objects.get_or_create(
            reseller=reseller,
            name="5 comptes Pop, 10 redirections, 5 robots, 10 listes",
            defaults=dict(max_domains=1, max_mailboxes=5, max_forwards=10, max_robots=5, max_lists=10,
                          default_quota_mb=1024, total_quota_mb=0),
        )
        logins: list[tuple[str, str, str]] = []
        postmaster_password = new_password()
        domain = Domain.objects.filter(name=DEMO_DOMAIN).first()
        if domain is None:
            pack = Pack.objects.filter(customer=customer, plan=plan).first() or pack_create(
                customer=customer, plan=plan, mail_host=host, label="Pack Mail", acting_user=None
            )
            domain = domain_create_with_accounts(pack=pack, name=DEMO_DOMAIN, password=postmaster_password,
                                                 acting_user=None)
            # The demo's domain (.test: no DNS proves it) is served by the local host: proven by hand.
            domain_verify(domain=domain, how=VerifiedHow.HAND, acting_user=None)
        elif (postmaster := Mailbox.objects.filter(domain=domain, local_part=POSTMASTER).first()) is None:
            mailbox_create(domain=domain, local_part=POSTMASTER, password=postmaster_password,
                           real_name="Postmaster", is_admin=True, acting_user=None)
        else:
            mailbox_set_password(mailbox=postmaster, password=postmaster_password, acting_user=None)
        logins.append(("QmailAdmin", f"postmaster @ {DEMO_DOMAIN}", postmaster_password))

        people: list[tuple[str, str, dict[str, Any]]] = [
            ("operator@example.test", "operator", dict(is_staff=True, is_superuser=True)),
            ("support@example.test", "support", dict(is_staff=True)),
            ("revendeur@example.test", "reseller", dict(is_staff=True, reseller=reseller)),
            ("client@example.test", "customer", dict(customer=customer)),
        ]
        for email, role, fields in people:
            user = User.objects.filter(email=email).first() or User(email=email)
            for name, value in fields.items():
                setattr(user, name, value)
            password = new_password()
            user.set_password(password)
            user.save()
            if role == "support":
                user.groups.add(Group.objects.get_or_create(name=SUPPORT_GROUP)[0])
            logins.append((role, email, password))

        self.stdout.write(self.style.SUCCESS("Demo data ready. Logins (passwords are new on every run):"))
        for role, login, password in logins:
            self.stdout.write(f"  {role:<11} {login:<28} {password}")
