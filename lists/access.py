"""The access helper of the lists' objects, beside hosting's and mail's: a list of a domain's
screens is fetched here, from the seat and within the domain, or 404."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from hosting.models import Domain
from hosting.roles import Seat
from lists.models import MailingList


def get_list_in(seat: Seat, domain: Domain, pk: int | str) -> MailingList:
    """A mailing list of `domain` (from `get_domain_for_user`) that the seat may see."""
    return get_object_or_404(MailingList.objects.visible_to(seat).filter(domain=domain), pk=pk)
