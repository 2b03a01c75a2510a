"""Who is on the other side of a request: the seat's role.

A seat is either a Django user (operator, support agent, reseller staff, customer user) or a
mailbox that logged in through the QmailAdmin-style form (domain admin or plain mailbox user).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing's own from Python 3.13

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


class Seat(Protocol):
    """Who acts: the `acting_user` of every service and the `seat` of every `visible_to`. A
    person's User (hosting.models.User; AnonymousUser before signing in) or a Mailbox logged in
    through the QmailAdmin-style form (mail.models.Mailbox, on a floor above: hence a Protocol).
    What every seat has; `role_of` tells which it is, `is_person` / `is_mailbox` give the rest."""

    @property
    def pk(self) -> Any: ...

    @property
    def is_authenticated(self) -> bool: ...

    @property
    def is_active(self) -> bool: ...


class PersonSeat(Seat, Protocol):
    """A User signed in with e-mail and password: operator, support agent, reseller staff, customer."""

    @property
    def reseller_id(self) -> int | None: ...

    @property
    def customer_id(self) -> int | None: ...

    @property
    def is_superuser(self) -> bool: ...

    @property
    def is_staff(self) -> bool: ...

    @property
    def groups(self) -> Any: ...  # the User's Group manager


class MailboxSeat(Seat, Protocol):
    """A Mailbox logged in through the QmailAdmin-style form: domain admin or plain mailbox user."""

    @property
    def domain_id(self) -> int: ...

    @property
    def is_domain_admin(self) -> bool: ...


def is_mailbox(seat: Seat | None) -> TypeIs[MailboxSeat]:
    return bool(getattr(seat, "is_mailbox_seat", False))


def is_person(seat: Seat | None) -> TypeIs[PersonSeat]:
    """A signed-in User (not a mailbox, not anonymous)."""
    return seat is not None and not is_mailbox(seat) and bool(getattr(seat, "is_authenticated", False))


def role_of(seat: Seat | None) -> Role:
    """The role of a seat; cached on the object, so it costs at most one query per request."""
    if seat is None:
        return Role.ANONYMOUS
    cached = getattr(seat, "_seat_role", None)
    if cached is not None:
        return cached
    role = _compute_role(seat)
    try:
        seat.__dict__["_seat_role"] = role  # the object's own cache: no part of a seat's type
    except AttributeError:  # pragma: no cover - immutable seats
        pass
    return role


def _compute_role(seat: Seat) -> Role:
    if is_mailbox(seat):
        return Role.DOMAIN_ADMIN if seat.is_domain_admin else Role.MAILBOX
    if not is_person(seat) or not seat.is_active:
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

