"""The audit log: one row per act, written inside the transaction of the act."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from hosting.models import AuditEvent, Customer, Domain, Pack, User
from hosting.roles import Seat, role_of


class Action(StrEnum):
    """Every action an audit row can name ("model.verb"); the value is what `AuditEvent.action` stores."""

    CUSTOMER_CREATE = "customer.create"
    CUSTOMER_CHANGE = "customer.change"
    CUSTOMER_DELETE = "customer.delete"
    PLAN_CREATE = "plan.create"
    PLAN_CHANGE = "plan.change"
    PLAN_DELETE = "plan.delete"
    PACK_CREATE = "pack.create"
    PACK_CHANGE = "pack.change"
    PACK_DELETE = "pack.delete"
    PACK_MOVE = "pack.move"
    DOMAIN_CREATE = "domain.create"
    DOMAIN_DELETE = "domain.delete"
    DOMAIN_RETRY = "domain.retry"
    ALIAS_DOMAIN_CREATE = "domain.alias_create"  # an alias domain of the target domain named in the detail
    ALIAS_DOMAIN_DELETE = "domain.alias_delete"
    DOMAIN_VERIFY = "domain.verify"  # proven the customer's (DNS, its parent, or by hand): served from now
    DKIM_KEY_CREATE = "dkim.create"  # the domain's first DKIM key, signing at once (selector in the detail)
    DKIM_ROTATE = "dkim.rotate"  # a new key published beside the signing one (selector in the detail)
    DKIM_ACTIVATE = "dkim.activate"  # the new key's record seen in DNS: it signs, the old one is retired
    MAILBOX_CREATE = "mailbox.create"
    MAILBOX_DELETE = "mailbox.delete"
    MAILBOX_SET_PASSWORD = "mailbox.set_password"  # noqa: S105 (an action name, not a password)
    MAILBOX_SET_ROUTING = "mailbox.set_routing"
    MAILBOX_SET_VACATION = "mailbox.set_vacation"
    MAILBOX_SET_ACCESS = "mailbox.set_access"
    MAILBOX_SET_REAL_NAME = "mailbox.set_real_name"
    MAILBOX_SET_ADMIN = "mailbox.set_admin"
    MAILBOX_SET_QUOTA = "mailbox.set_quota"
    MAILBOX_RENAME = "mailbox.rename"
    MAILBOX_EXPORT = "mailbox.export"  # a domain's POP accounts downloaded as CSV (mail.transfer)
    MAILBOX_IMPORT = "mailbox.import"  # POP accounts imported from CSV into a domain, one row per import
    FORWARD_CREATE = "forward.create"
    FORWARD_CHANGE = "forward.change"
    FORWARD_DELETE = "forward.delete"
    FORWARD_EXPORT = "forward.export"
    FORWARD_IMPORT = "forward.import"
    ROBOT_CREATE = "robot.create"
    ROBOT_CHANGE = "robot.change"
    ROBOT_DELETE = "robot.delete"
    CATCHALL_SET = "catchall.set"
    SPAM_FILTER_SET = "spam_filter.set"
    LIST_CREATE = "list.create"
    LIST_DELETE = "list.delete"
    LIST_UPDATE = "list.update"
    LIST_MEMBER_IMPORT = "list.member_import"
    LIST_MODERATE = "list.moderate"
    LIST_MEMBER_ADD = "list.member_add"
    LIST_MEMBER_REMOVE = "list.member_remove"
    # Saved by the admin's own forms (no service function): mail hosts, resellers, users.
    MAILHOST_CREATE = "mailhost.create"
    MAILHOST_CHANGE = "mailhost.change"
    MAILHOST_DELETE = "mailhost.delete"
    RESELLER_CREATE = "reseller.create"
    RESELLER_CHANGE = "reseller.change"
    RESELLER_DELETE = "reseller.delete"
    USER_CREATE = "user.create"
    USER_CHANGE = "user.change"
    USER_DELETE = "user.delete"

    @classmethod
    def of(cls, model: type[models.Model] | models.Model, verb: str) -> Action:
        """The action "model.verb" of a model the admin saves or deletes itself (ValueError if none)."""
        return cls(f"{model._meta.model_name}.{verb}")


def record(actor: Seat | None, action: Action, target: models.Model | None, **detail: Any) -> AuditEvent:
    """Write who (`actor`: a User, a logged-in Mailbox, or None for the system) did `action`.

    `changes` in the detail is what the act changed, `{"field": [before, after]}`; a field that
    holds a secret (a password, its hash) never gets there, only the fact (`password_changed`).
    The row gets the ids of the target's domain, pack, customer and reseller (`_scope`): who may
    read it (`AuditEventQuerySet.visible_to`). One INSERT, whatever the target."""
    user = actor if isinstance(actor, User) else None
    label = "system" if actor is None else str(getattr(actor, "email", None) or actor)
    scope = _scope(target)
    event = AuditEvent.objects.create(
        actor=user,
        actor_label=label[:320],
        actor_role=role_of(actor).value if actor is not None else "system",
        action=str(action),
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:320] if target is not None else "",
        detail=_stored_detail(detail),
        **scope,
    )
    for name, value in scope.items():
        if isinstance(value, models.Subquery):
            del event.__dict__[name]  # computed by the INSERT: read back from the row if asked for
    return event


SECRET_NAME = re.compile(r"password|secret|hash|token", re.IGNORECASE)


def _stored_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail as the row keeps it: JSON values (dates as ISO strings), no secret's value."""
    clean: dict[str, Any] = {}
    secret = False
    for key, value in detail.items():
        if SECRET_NAME.search(key):
            secret = True
        elif key == "changes":
            changes = {name: pair for name, pair in value.items() if not SECRET_NAME.search(name)}
            secret = secret or len(changes) < len(value)
            if changes:
                clean["changes"] = changes
        else:
            clean[key] = value
    if secret:
        clean["password_changed"] = True
    return json.loads(json.dumps(clean, cls=DjangoJSONEncoder))


def _cached(obj: models.Model, relation: str) -> Any:
    """The related object `relation` of `obj` if it is already loaded (no query), else None."""
    try:
        field = obj._meta.get_field(relation)
    except FieldDoesNotExist:
        return None
    return field.get_cached_value(obj, None) if hasattr(field, "get_cached_value") else None


def _scope(target: models.Model | None) -> dict[str, Any]:
    """The domain (id and name), pack, customer and reseller ids of an event on `target`: a Domain,
    a Pack, or a row of a domain (`domain_id`). What the objects in memory already hold is taken
    from them; the rest is read by subqueries of the INSERT itself (no query of its own)."""
    if isinstance(target, Pack):
        return _pack_scope(target.pk, target)
    domain_id: int | None = getattr(target, "domain_id", None)
    domain: Domain | None = None
    if isinstance(target, Domain):
        domain_id, domain = target.pk, target
    elif target is not None and domain_id is not None:
        domain = _cached(target, "domain")
    if domain_id is None:
        return {}
    if domain is not None:
        return {"domain_id": domain_id, "domain_name": domain.name,
                **_pack_scope(domain.pack_id, _cached(domain, "pack"))}
    row = Domain.objects.filter(pk=domain_id).order_by()
    return {
        "domain_id": domain_id,
        "domain_name": models.Subquery(row.values("name")),
        "pack_id": models.Subquery(row.values("pack_id")),
        "customer_id": models.Subquery(row.values("pack__customer_id")),
        "reseller_id": models.Subquery(row.values("pack__customer__reseller_id")),
    }


def _pack_scope(pack_id: int | None, pack: Pack | None) -> dict[str, Any]:
    if pack_id is None:
        return {}
    if pack is None:
        row = Pack.objects.filter(pk=pack_id).order_by()
        return {"pack_id": pack_id, "customer_id": models.Subquery(row.values("customer_id")),
                "reseller_id": models.Subquery(row.values("customer__reseller_id"))}
    customer = _cached(pack, "customer")
    reseller_id = (
        customer.reseller_id if customer is not None
        else models.Subquery(Customer.objects.filter(pk=pack.customer_id).order_by().values("reseller_id"))
    )
    return {"pack_id": pack_id, "customer_id": pack.customer_id, "reseller_id": reseller_id}
