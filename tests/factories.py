"""factory_boy factories for the tenant tree and mailboxes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import factory
from django.db import models
from django.utils import timezone

from hosting.models import Customer, Domain, MailHost, Pack, Plan, Reseller, User, VerifiedHow
from mail.models import Mailbox, folded
from mailhost.passwords import hash_password

# Hashing with the real scheme is slow on purpose; tests share one hash of this password.
MAILBOX_PASSWORD = "Correct-Horse-42"
MAILBOX_PASSWORD_HASH = hash_password(MAILBOX_PASSWORD)
USER_PASSWORD = "User-Password-42"

Model = TypeVar("Model", bound=models.Model)


class ModelFactory(factory.django.DjangoModelFactory[Model]):
    """A factory whose call gives its model's object, as mypy reads it: factory_boy's metaclass
    makes the object, and its `__new__` (never run) says nothing of the type."""

    class Meta:
        abstract = True

    if TYPE_CHECKING:
        def __new__(cls, *args: Any, **kwargs: Any) -> Model: ...  # type: ignore[misc]  # a factory call's result


class MailHostFactory(ModelFactory[MailHost]):
    class Meta:
        model = MailHost
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"mx{n}")
    fqdn = factory.LazyAttribute(lambda o: f"{o.name}.hosting.test")


class ResellerFactory(ModelFactory[Reseller]):
    class Meta:
        model = Reseller

    name = factory.Sequence(lambda n: f"Reseller {n}")


class CustomerFactory(ModelFactory[Customer]):
    class Meta:
        model = Customer

    reseller = factory.SubFactory(ResellerFactory)
    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@contact.test")


class PlanFactory(ModelFactory[Plan]):
    class Meta:
        model = Plan

    reseller = factory.SubFactory(ResellerFactory)
    name = factory.Sequence(lambda n: f"Plan {n}")
    max_domains = 1
    max_mailboxes = 5
    max_forwards = 10
    max_robots = 5
    max_lists = 10


class PackFactory(ModelFactory[Pack]):
    class Meta:
        model = Pack

    customer = factory.SubFactory(CustomerFactory)
    plan = factory.SubFactory(PlanFactory, reseller=factory.SelfAttribute("..customer.reseller"))
    mail_host = factory.SubFactory(MailHostFactory, name="mx1")
    label = factory.Sequence(lambda n: f"Pack {n}")


class DomainFactory(ModelFactory[Domain]):
    class Meta:
        model = Domain

    pack = factory.SubFactory(PackFactory)
    name = factory.Sequence(lambda n: f"domain{n}.test")
    # The cast's domains are proven their customers' (served by their host); a test of an
    # unproven one passes verified_at=None, verified_how="".
    verified_at = factory.LazyFunction(timezone.now)
    verified_how = VerifiedHow.HAND


class MailboxFactory(ModelFactory[Mailbox]):
    class Meta:
        model = Mailbox

    domain = factory.SubFactory(DomainFactory)
    local_part = factory.Sequence(lambda n: f"user{n}")
    password_hash = MAILBOX_PASSWORD_HASH
    real_name = factory.LazyAttribute(lambda o: o.local_part.title())
    search_name = factory.LazyAttribute(lambda o: folded(f"{o.local_part} {o.real_name}"))


class UserFactory(ModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@people.test")
    password = factory.PostGenerationMethodCall("set_password", USER_PASSWORD)

    @factory.post_generation
    def saved(obj: User, create: bool, extracted: object, **kwargs: object) -> None:  # noqa: N805
        if create:
            obj.save()
