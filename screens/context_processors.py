"""Who is logged in, on which domain: shown in every page's header."""

from typing import Any

from django.http import HttpRequest

from hosting.access import seat_of
from hosting.roles import Role, role_of


def seat(request: HttpRequest) -> dict[str, Any]:
    current = seat_of(request)
    role = role_of(current)
    return {
        "seat": current,
        "seat_role": role.value,
        "seat_is_mailbox": role in (Role.DOMAIN_ADMIN, Role.MAILBOX),
        "seat_is_staff": role in (Role.OPERATOR, Role.SUPPORT, Role.RESELLER),
    }
