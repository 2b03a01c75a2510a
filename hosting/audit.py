"""The audit log: one row per act, written inside the transaction of the act."""

from __future__ import annotations

from typing import Any

from django.db import models

from hosting.models import AuditEvent, User
from hosting.roles import role_of


def record(actor: Any, action: str, target: models.Model | None, **detail: Any) -> AuditEvent:
    """Write who (`actor`: a User, a logged-in Mailbox, or None for the system) did `action`."""
    user = actor if isinstance(actor, User) else None
    label = "system" if actor is None else str(getattr(actor, "email", None) or actor)
    return AuditEvent.objects.create(
        actor=user,
        actor_label=label[:320],
        actor_role=role_of(actor).value if actor is not None else "system",
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:320] if target is not None else "",
        detail=detail,
    )
