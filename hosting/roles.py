"""Who is on the other side of a request: the seat's role.

A seat is either a Django user (operator, support agent, reseller staff, customer user) or a
mailbox that logged in through the QmailAdmin-style form (domain admin or plain mailbox user).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

SUPPORT_GROUP = "support"


class Role(StrEnum):
    OPERATOR = "operator"
    SUPPORT = "support"
    RESELLER = "reseller"
    CUSTOMER = "customer"
    DOMAIN_ADMIN = "domain_admin"
    MAILBOX = "mailbox"
    ANONYMOUS = "anonymous"


STAFF_ROLES = {Role.OPERATOR, Role.SUPPORT, Role.RESELLER}


def role_of(seat: Any) -> Role:
    """The role of a seat; cached on the object, so it costs at most one query per request."""
    if seat is None:
        return Role.ANONYMOUS
    cached = getattr(seat, "_seat_role", None)
    if cached is not None:
        return cached
    role = _compute_role(seat)
    try:
        seat._seat_role = role
    except AttributeError:  # pragma: no cover - immutable seats
        pass
    return role


def _compute_role(seat: Any) -> Role:
    if getattr(seat, "is_mailbox_seat", False):
        return Role.DOMAIN_ADMIN if seat.is_domain_admin else Role.MAILBOX
    if not getattr(seat, "is_authenticated", False) or not seat.is_active:
        return Role.ANONYMOUS
    if seat.is_superuser:
        return Role.OPERATOR
    if seat.is_staff and seat.groups.filter(name=SUPPORT_GROUP).exists():
        return Role.SUPPORT
    if seat.reseller_id is not None and seat.is_staff:
        return Role.RESELLER
    if seat.customer_id is not None:
        return Role.CUSTOMER
    return Role.ANONYMOUS

