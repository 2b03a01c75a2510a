"""State changes of the tenant tree: one function per act, each in one transaction. A domain's
create, delete and move reach the mail hosts: they are `provisioning.domains`.

Limits are checked after locking the rows they are counted against (reseller first, then pack),
so two concurrent requests can never both take the last place.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from hosting import audit
from hosting.audit import Action
from hosting.models import UNLIMITED, Customer, Domain, Language, MailHost, Pack, Plan, Reseller
from hosting.roles import Seat


def limit_allows(limit: int, used: int) -> bool:
    return limit == UNLIMITED or used < limit


def has_room(limit: int, rows: QuerySet[Any]) -> bool:
    """Whether `rows` (a queryset, counted under the caller's lock) leave room for one more within
    `limit`: nothing is counted when it is unlimited, and no further than the limit otherwise
    (the same cost for ten rows or 100,000)."""
    if limit == UNLIMITED:
        return True
    return limit > 0 and rows.order_by().values("pk")[:limit].count() < limit


def lock_reseller(reseller_id: int | None) -> Reseller | None:
    """Lock a reseller's row until the end of the transaction (its pool is counted next)."""
    if reseller_id is None:
        return None
    return Reseller.objects.select_for_update().get(pk=reseller_id)


def lock_pack(pack_id: int) -> Pack:
    """Lock the reseller of a pack, then the pack, always in that order (no deadlock): two
    statements. The pack comes with its plan, customer and reseller (the limits read them)."""
    list(Reseller.objects.select_for_update(of=("self",)).filter(customers__packs__pk=pack_id).order_by().values_list(
        "pk", flat=True))
    return (Pack.objects.select_for_update(of=("self",)).select_related("plan", "customer__reseller")
            .get(pk=pack_id))


def check_customer_pool(reseller: Reseller | None) -> None:
    if reseller is None:
        return
    used = Customer.objects.filter(reseller=reseller).count()
    if not limit_allows(reseller.max_customers, used):
        raise ValidationError(
            _("Maximum number of customers reached (%(max)d).") % {"max": reseller.max_customers},
            code="limit",
        )


@transaction.atomic
def customer_create(
    *, reseller: Reseller | None, name: str, email: str = "", language: str = Language.FRENCH,
    acting_user: Seat | None,
) -> Customer:
    locked = lock_reseller(reseller.pk if reseller else None)
    check_customer_pool(locked)
    if language not in Language.values:
        raise ValidationError(_("Unknown language."), code="language")
    customer = Customer.objects.create(reseller=locked, name=name.strip(), email=email.strip(), language=language)
    audit.record(acting_user, Action.CUSTOMER_CREATE, customer)
    return customer


def _assign(obj: Any, values: dict[str, Any]) -> list[str]:
    """Set on `obj` the values that differ from its own; return the names of those fields."""
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    for name in changed:
        setattr(obj, name, values[name])
    return changed


@transaction.atomic
def customer_update(*, customer: Customer, name: str, email: str = "", acting_user: Seat | None) -> Customer:
    """Rename a customer or change its contact address (its reseller never changes; its language:
    provisioning.customers.customer_set_language, which reaches its domains' hosts)."""
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    changed = _assign(locked, {"name": name.strip(), "email": email.strip()})
    if not changed:
        return locked
    locked.full_clean(exclude=["reseller"])
    locked.save(update_fields=changed)
    audit.record(acting_user, Action.CUSTOMER_CHANGE, locked, fields=changed)
    return locked


def check_pack_plan(customer: Customer, plan: Plan) -> None:
    if plan.reseller_id != customer.reseller_id:
        raise ValidationError(_("This plan is not sold to this customer."), code="plan")


@transaction.atomic
def pack_create(
    *, customer: Customer, plan: Plan, mail_host: MailHost, label: str = "", acting_user: Seat | None
) -> Pack:
    check_pack_plan(customer, plan)
    if not mail_host.active:
        raise ValidationError(_("This mail host does not accept new packs."), code="host")
    pack = Pack.objects.create(customer=customer, plan=plan, mail_host=mail_host, label=label)
    audit.record(acting_user, Action.PACK_CREATE, pack, plan=plan.name, mail_host=mail_host.name)
    return pack


@transaction.atomic
def pack_update(*, pack: Pack, plan: Plan, label: str = "", acting_user: Seat | None) -> Pack:
    """Change a pack's plan or label. The plan is checked on every save: only a plan of the
    customer's own reseller (the limits are that reseller's). A new mail host is `pack_move`."""
    locked = lock_pack(pack.pk)
    check_pack_plan(locked.customer, plan)
    changed = _assign(locked, {"plan": plan, "label": label.strip()})
    if not changed:
        return locked
    locked.full_clean(exclude=["customer", "mail_host"])
    locked.save(update_fields=changed)
    audit.record(acting_user, Action.PACK_CHANGE, locked, fields=changed, plan=plan.name)
    return locked


PLAN_LIMITS = (
    "max_domains", "max_alias_domains", "max_mailboxes", "max_forwards", "max_robots", "max_lists",
    "max_list_members", "default_quota_mb", "total_quota_mb",
)


def _save_plan(plan: Plan, update_fields: list[str] | None = None) -> None:
    """Validate a plan (its name unique among its reseller's plans, the operator's included;
    the model's field validators and constraints) and save it."""
    name_taken = _("There is already a plan named “%(name)s”.") % {"name": plan.name}
    same_reseller = Q(reseller__isnull=True) if plan.reseller_id is None else Q(reseller_id=plan.reseller_id)
    same_name = Plan.objects.filter(same_reseller, name=plan.name).exclude(pk=plan.pk)
    if same_name.exists():
        raise ValidationError(name_taken, code="unique")
    plan.full_clean()
    try:
        with transaction.atomic():
            plan.save(update_fields=update_fields)
    except IntegrityError:  # a concurrent create of the same name
        raise ValidationError(name_taken, code="unique") from None


def _plan_values(name: str, limits: dict[str, int]) -> dict[str, Any]:
    unknown = set(limits) - set(PLAN_LIMITS)
    if unknown:
        raise TypeError(f"not a limit of a plan: {', '.join(sorted(unknown))}")
    return {"name": name.strip(), **limits}


@transaction.atomic
def plan_create(*, reseller: Reseller | None, name: str, acting_user: Seat | None, **limits: int) -> Plan:
    """A plan of `reseller` (None: the operator's own); `limits`: any of PLAN_LIMITS."""
    locked = lock_reseller(reseller.pk if reseller else None)
    plan = Plan(reseller=locked, **_plan_values(name, limits))
    _save_plan(plan)
    audit.record(acting_user, Action.PLAN_CREATE, plan)
    return plan


@transaction.atomic
def plan_update(*, plan: Plan, name: str, acting_user: Seat | None, **limits: int) -> Plan:
    """Rename a plan or change its limits (its reseller never changes); they apply to what is
    created next, nothing already created is removed."""
    lock_reseller(plan.reseller_id)
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    changed = _assign(locked, _plan_values(name, limits))
    if not changed:
        return locked
    _save_plan(locked, update_fields=changed)
    audit.record(acting_user, Action.PLAN_CHANGE, locked, fields=changed)
    return locked


def check_domain_limits(pack: Pack) -> None:
    """Raise when the pack or its reseller's pool has no room for one more domain.

    Call inside a transaction after `lock_pack`. Alias domains are not counted: they have their
    own limit (`check_alias_domain_limits`)."""
    if not has_room(pack.plan.max_domains, Domain.objects.filter(pack=pack, alias_of__isnull=True)):
        raise ValidationError(
            _("Maximum number of domains of this pack reached (%(max)d).")
            % {"max": pack.plan.max_domains},
            code="limit",
        )
    reseller_id = pack.customer.reseller_id
    if reseller_id is not None:
        reseller = Reseller.objects.get(pk=reseller_id)
        if not has_room(reseller.max_domains, Domain.objects.filter(pack__customer__reseller_id=reseller_id,
                                                                    alias_of__isnull=True)):
            raise ValidationError(
                _("The reseller has reached its maximum number of domains (%(max)d).")
                % {"max": reseller.max_domains},
                code="limit",
            )


def check_alias_domain_limits(pack: Pack) -> None:
    """Raise when the pack has no room for one more alias domain (the plan's own count, apart from
    its domains). Call inside a transaction after `lock_pack`."""
    if not has_room(pack.plan.max_alias_domains, Domain.objects.filter(pack=pack, alias_of__isnull=False)):
        if pack.plan.max_alias_domains == 0:
            raise ValidationError(_("The plan of this pack has no alias domains."), code="limit")
        raise ValidationError(
            _("Maximum number of alias domains of this pack reached (%(max)d).")
            % {"max": pack.plan.max_alias_domains},
            code="limit",
        )
