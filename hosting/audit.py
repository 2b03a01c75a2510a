"""The audit log: one row per act, written inside the transaction of the act."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.db import models

from hosting.models import AuditEvent, User
from hosting.roles import role_of


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
    MAILBOX_CREATE = "mailbox.create"
    MAILBOX_DELETE = "mailbox.delete"
    MAILBOX_SET_PASSWORD = "mailbox.set_password"  # noqa: S105 (an action name, not a password)
    MAILBOX_SET_ROUTING = "mailbox.set_routing"
    MAILBOX_SET_VACATION = "mailbox.set_vacation"
    MAILBOX_SET_ACCESS = "mailbox.set_access"
    MAILBOX_SET_REAL_NAME = "mailbox.set_real_name"
    MAILBOX_SET_ADMIN = "mailbox.set_admin"
    MAILBOX_SET_QUOTA = "mailbox.set_quota"
    FORWARD_CREATE = "forward.create"
    FORWARD_CHANGE = "forward.change"
    FORWARD_DELETE = "forward.delete"
    ROBOT_CREATE = "robot.create"
    ROBOT_DELETE = "robot.delete"
    CATCHALL_SET = "catchall.set"
    LIST_CREATE = "list.create"
    LIST_DELETE = "list.delete"
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


def record(actor: Any, action: Action, target: models.Model | None, **detail: Any) -> AuditEvent:
    """Write who (`actor`: a User, a logged-in Mailbox, or None for the system) did `action`."""
    user = actor if isinstance(actor, User) else None
    label = "system" if actor is None else str(getattr(actor, "email", None) or actor)
    return AuditEvent.objects.create(
        actor=user,
        actor_label=label[:320],
        actor_role=role_of(actor).value if actor is not None else "system",
        action=str(action),
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:320] if target is not None else "",
        detail=detail,
    )
