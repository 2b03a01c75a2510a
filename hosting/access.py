"""The one way to reach a tenant object: through the seat (who is asking).

An object outside the seat's tree raises Http404, exactly like one that does not exist.
A seat is `request.user` for people who signed in with e-mail + password, or `request.mailbox`
for a mailbox logged in through the QmailAdmin-style form (see `seat_of`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import apps
from django.db import models
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from hosting.models import Customer, Domain, Pack, PackUsage, ScopedQuerySet
from hosting.roles import Seat

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # django-stubs' (a development requirement): types only


def seat_of(request: HttpRequest) -> Seat:
    """The logged-in mailbox if any, else the user (possibly anonymous)."""
    mailbox = getattr(request, "mailbox", None)
    return mailbox if mailbox is not None else request.user


def get_customer_for_user(user: Seat, pk: int | str) -> Customer:
    return get_object_or_404(Customer.objects.visible_to(user), pk=pk)


def get_pack_for_user(user: Seat, pk: int | str) -> WithAnnotations[Pack, PackUsage]:
    return get_object_or_404(
        Pack.objects.visible_to(user).select_related("plan", "mail_host", "customer").with_usage(pack_id=int(pk)),
        pk=pk,
    )


def get_domain_for_user(user: Seat, pk: int | str) -> Domain:
    return get_object_or_404(
        Domain.objects.visible_to(user).select_related("pack__plan", "pack__customer", "sync"), pk=pk
    )


def is_tenant_model(model: type[models.Model]) -> bool:
    """Whether the model's rows are scoped to seats (its manager gives a ScopedQuerySet)."""
    return isinstance(model._default_manager.all(), ScopedQuerySet)


def visible(model: type[models.Model], user: Seat) -> ScopedQuerySet:
    """`model.objects.visible_to(user)` for the admin and tables, which work model by model."""
    rows = model._default_manager.all()
    if not isinstance(rows, ScopedQuerySet):
        raise LookupError(f"{model.__name__} is not a tenant model")
    return rows.visible_to(user)


def tenant_models() -> list[type[models.Model]]:
    """Every installed model whose rows are scoped to seats (the tenant-query lint's list): derived
    from the managers, so a new tenant model is covered as soon as its manager is scoped."""
    return [model for model in apps.get_models() if is_tenant_model(model)]
