"""The one way to reach a tenant object: through the seat (who is asking).

An object outside the seat's tree raises Http404, exactly like one that does not exist.
A seat is `request.user` for people who signed in with e-mail + password, or `request.mailbox`
for a mailbox logged in through the QmailAdmin-style form (see `seat_of`).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from hosting.models import AuditEvent, Customer, Domain, MailHost, Pack, Plan, Reseller, User
from mail.models import Mailbox


def seat_of(request: HttpRequest) -> Any:
    """The logged-in mailbox if any, else the user (possibly anonymous)."""
    mailbox = getattr(request, "mailbox", None)
    return mailbox if mailbox is not None else request.user


def get_customer_for_user(user: Any, pk: Any) -> Customer:
    return get_object_or_404(Customer.objects.visible_to(user), pk=pk)


def get_pack_for_user(user: Any, pk: Any) -> Pack:
    return get_object_or_404(
        Pack.objects.visible_to(user).select_related("plan", "mail_host", "customer").with_usage(),
        pk=pk,
    )


def get_domain_for_user(user: Any, pk: Any) -> Domain:
    return get_object_or_404(
        Domain.objects.visible_to(user).select_related("pack__plan", "pack__customer", "sync"), pk=pk
    )


def get_mailbox_for_user(user: Any, pk: Any) -> Mailbox:
    return get_object_or_404(Mailbox.objects.visible_to(user).select_related("domain"), pk=pk)


def visible(model: type, user: Any) -> Any:
    """`model.objects.visible_to(user)` for the admin and tables, which work model by model."""
    if model not in VISIBLE_MODELS:
        raise LookupError(f"{model.__name__} is not a tenant model")
    return model.objects.visible_to(user)


VISIBLE_MODELS = (AuditEvent, Customer, Domain, MailHost, Mailbox, Pack, Plan, Reseller, User)
