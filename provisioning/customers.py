"""A customer's acts that reach the mail hosts of its domains: its language (the host's own mail to
its mailboxes, the quota warnings: mailhost.quota_warning) travels in each domain's document."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from hosting import audit
from hosting.audit import Action
from hosting.models import Customer, Domain, Language
from hosting.roles import Seat
from provisioning.revisions import domain_changed


@transaction.atomic
def customer_set_language(*, customer: Customer, language: str, acting_user: Seat | None) -> Customer:
    """Set the customer's language; each of its domains (not its alias domains, whose documents
    carry none) gets a new revision, so that its host has the language with the next push."""
    if language not in Language.values:
        raise ValidationError(_("Unknown language."), code="language")
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if locked.language == language:
        return locked
    locked.language = language
    locked.save(update_fields=["language"])
    audit.record(acting_user, Action.CUSTOMER_CHANGE, locked, fields=["language"])
    for domain in Domain.objects.filter(pack__customer=locked, alias_of__isnull=True).order_by("pk"):
        domain_changed(domain)
    return locked
