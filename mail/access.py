"""The access helpers of mail's own objects, beside hosting's (see hosting/access.py): each
object of a domain's screens is fetched here, from the seat and within the domain, or 404."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404

from hosting.models import Domain
from hosting.roles import Seat
from mail.models import Forward, Mailbox, Robot


def get_mailbox_for_user(user: Seat, pk: int | str) -> Mailbox:
    return get_object_or_404(Mailbox.objects.visible_to(user).select_related("domain"), pk=pk)


def get_mailbox_in(seat: Seat, domain: Domain, pk: int | str) -> Mailbox:
    """A mailbox of `domain` the seat may see (the domain came from `get_domain_for_user`)."""
    return get_object_or_404(Mailbox.objects.visible_to(seat).filter(domain=domain), pk=pk)


def get_forward_in(seat: Seat, domain: Domain, pk: int | str) -> Forward:
    return get_object_or_404(Forward.objects.visible_to(seat).filter(domain=domain), pk=pk)


def get_robot_in(seat: Seat, domain: Domain, pk: int | str) -> Robot:
    return get_object_or_404(Robot.objects.visible_to(seat).filter(domain=domain), pk=pk)


def find_address(seat: Seat, domain: Domain, local: str) -> tuple[str, Any] | None:
    """What holds `local@domain` (the quick box): ("mailbox" | "forward" | "robot", the row),
    ("list", its pk), or None when nothing does."""
    for kind, model in (("mailbox", Mailbox), ("forward", Forward), ("robot", Robot)):
        row = model.objects.visible_to(seat).filter(domain=domain, local_part=local).first()
        if row is not None:
            return kind, row
    # The lists app is above mail: its rows are read through the domain's relation `lists`.
    list_pk = Domain.objects.filter(pk=domain.pk, lists__name=local).values_list("lists__pk", flat=True).first()
    return ("list", list_pk) if list_pk is not None else None
