"""State changes of mailboxes: one function per act, each in one transaction.

The order of the checks is QmailAdmin's: limit, name syntax, name free, passwords, strength.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.password_validation import (
    CommonPasswordValidator,
    MinimumLengthValidator,
    NumericPasswordValidator,
    validate_password,
)
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from hosting import audit
from hosting.models import Domain, Pack
from hosting.services import domain_changed, limit_allows, lock_pack
from mail.models import Mailbox
from mail.validators import normalize_local_part
from mailhost.passwords import hash_password

PASSWORD_VALIDATORS = [MinimumLengthValidator(8), CommonPasswordValidator(), NumericPasswordValidator()]


def check_password_strength(password: str) -> None:
    if not password:
        raise ValidationError(_("Enter a password."), code="required")
    validate_password(password, password_validators=PASSWORD_VALIDATORS)


def check_mailbox_limits(pack: Pack) -> None:
    """Raise when the pack, or its reseller's pool, has no room for one more mailbox.

    Call inside a transaction after `lock_pack`."""
    used = Mailbox.objects.filter(domain__pack=pack).count()
    if not limit_allows(pack.plan.max_mailboxes, used):
        raise ValidationError(_("Maximum number of POP accounts reached."), code="limit")
    reseller = pack.customer.reseller
    if reseller is not None:
        used = Mailbox.objects.filter(domain__pack__customer__reseller=reseller).count()
        if not limit_allows(reseller.max_mailboxes, used):
            raise ValidationError(
                _("The reseller has reached its maximum number of POP accounts."), code="limit"
            )


def address_taken(domain: Domain, local_part: str) -> bool:
    return Mailbox.objects.filter(domain=domain, local_part=local_part).exists()


def resolve_quota(pack: Pack, quota_mb: int | None) -> int:
    plan = pack.plan
    quota = plan.default_quota_mb if quota_mb is None else quota_mb
    if quota < 0:
        raise ValidationError(_("The quota cannot be negative."), code="quota")
    if plan.total_quota_mb:
        if quota == 0:
            raise ValidationError(_("This pack does not allow unlimited quotas."), code="quota")
        allotted = Mailbox.objects.filter(domain__pack=pack).aggregate(s=Sum("quota_mb"))["s"] or 0
        if allotted + quota > plan.total_quota_mb:
            raise ValidationError(
                _("The pack's total quota would be exceeded (%(free)d MB left).")
                % {"free": max(plan.total_quota_mb - allotted, 0)},
                code="quota",
            )
    return quota


@transaction.atomic
def mailbox_create(
    *,
    domain: Domain,
    local_part: str,
    password: str,
    real_name: str = "",
    quota_mb: int | None = None,
    is_admin: bool = False,
    acting_user: Any,
) -> Mailbox:
    pack = lock_pack(domain.pack_id)
    check_mailbox_limits(pack)
    local = normalize_local_part(local_part)
    if address_taken(domain, local):
        raise ValidationError(_("Name already used."), code="unique")
    check_password_strength(password)
    quota = resolve_quota(pack, quota_mb)
    revision = domain_changed(domain)
    try:
        with transaction.atomic():
            mailbox = Mailbox.objects.create(
                domain=domain,
                local_part=local,
                password_hash=hash_password(password),
                real_name=real_name.strip(),
                quota_mb=quota,
                is_admin=is_admin,
                revision=revision,
            )
    except IntegrityError:
        raise ValidationError(_("Name already used."), code="unique") from None
    audit.record(acting_user, "mailbox.create", mailbox)
    return mailbox


@transaction.atomic
def mailbox_set_password(*, mailbox: Mailbox, password: str, acting_user: Any) -> None:
    """Check the new password's strength first, then store only its hash."""
    check_password_strength(password)
    revision = domain_changed(mailbox.domain)
    Mailbox.objects.filter(pk=mailbox.pk).update(password_hash=hash_password(password), revision=revision)
    mailbox.refresh_from_db(fields=["password_hash", "revision"])
    audit.record(acting_user, "mailbox.set_password", mailbox)
