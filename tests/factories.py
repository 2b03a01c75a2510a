"""factory_boy factories for the tenant tree and mailboxes."""

from __future__ import annotations

import factory

from hosting.models import Customer, Domain, MailHost, Pack, Plan, Reseller, User
from mail.models import Mailbox, folded
from mailhost.passwords import hash_password

# Hashing with the real scheme is slow on purpose; tests share one hash of this password.
MAILBOX_PASSWORD = "Correct-Horse-42"
MAILBOX_PASSWORD_HASH = hash_password(MAILBOX_PASSWORD)
USER_PASSWORD = "User-Password-42"


class MailHostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MailHost
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"mx{n}")
    fqdn = factory.LazyAttribute(lambda o: f"{o.name}.hosting.test")


class ResellerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reseller

    name = factory.Sequence(lambda n: f"Reseller {n}")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    reseller = factory.SubFactory(ResellerFactory)
    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@contact.test")


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan

    reseller = factory.SubFactory(ResellerFactory)
    name = factory.Sequence(lambda n: f"Plan {n}")
    max_domains = 1
    max_mailboxes = 5
    max_forwards = 10
    max_robots = 5
    max_lists = 10


class PackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pack

    customer = factory.SubFactory(CustomerFactory)
    plan = factory.SubFactory(PlanFactory, reseller=factory.SelfAttribute("..customer.reseller"))
    mail_host = factory.SubFactory(MailHostFactory, name="mx1")
    label = factory.Sequence(lambda n: f"Pack {n}")


class DomainFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Domain

    pack = factory.SubFactory(PackFactory)
    name = factory.Sequence(lambda n: f"domain{n}.test")


class MailboxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Mailbox

    domain = factory.SubFactory(DomainFactory)
    local_part = factory.Sequence(lambda n: f"user{n}")
    password_hash = MAILBOX_PASSWORD_HASH
    real_name = factory.LazyAttribute(lambda o: o.local_part.title())
    search_name = factory.LazyAttribute(lambda o: folded(f"{o.local_part} {o.real_name}"))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@people.test")
    password = factory.PostGenerationMethodCall("set_password", USER_PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()
