"""A new domain and the accounts it is created with, in one place: `postmaster` (the domain's
admin), and `hostmaster` on a .fr domain (the .fr registry checks hostmaster@ before a DNS
change: the seed's "2 comptes obligatoires pour les .fr, 1 pour les autres domaines").

The admin's "add domain" page and the demo data create domains through this function; the
domain and its accounts are created together or not at all (a pack with no room for them
refuses the domain).
"""

from __future__ import annotations

from django.db import transaction

from hosting.models import Domain, Pack
from hosting.roles import Seat
from mail.models import POSTMASTER, required_accounts
from mail.services import PreparedPassword, mailbox_create, prepare_password
from provisioning.domains import domain_create


def domain_create_with_accounts(*, pack: Pack, name: str, password: str | PreparedPassword,
                                acting_user: Seat | None) -> Domain:
    """Create the domain and its required accounts (`mail.models.required_accounts`), all with
    `password`: the domain's admin reads hostmaster@'s mail with the password they chose, and
    may give it its own later. The password is hashed once, before the transaction."""
    prepared = prepare_password(password)
    with transaction.atomic():
        domain = domain_create(pack=pack, name=name, acting_user=acting_user)
        for local in required_accounts(domain.name):
            mailbox_create(domain=domain, local_part=local, password=prepared, real_name=local.title(),
                           is_admin=local == POSTMASTER, acting_user=acting_user)
    return domain
