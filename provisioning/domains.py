"""A domain's life on the mail hosts: created at a revision above any it had, deleted from every
host that keeps it, moved with its pack to another host. Each is one transaction.

Above hosting (the tenant tree, its limits) and provisioning's records; below mail, which
creates a new domain with its required accounts (`mail.accounts.domain_create_with_accounts`:
postmaster, and hostmaster on a .fr domain) around `domain_create`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from hosting import audit
from hosting.audit import Action
from hosting.models import Domain, MailHost, Pack
from hosting.services import check_domain_limits, lock_pack
from hosting.validators import normalize_domain
from provisioning.models import DomainMove, RetiredDomain
from provisioning.revisions import domain_changed, schedule_retired_push


@transaction.atomic
def domain_create(*, pack: Pack, name: str, acting_user: Any) -> Domain:
    ascii_name = normalize_domain(name)
    locked = lock_pack(pack.pk)
    check_domain_limits(locked)
    if Domain.objects.filter(name=ascii_name).exists():
        raise ValidationError(_("This domain is already hosted."), code="unique")
    # Revisions only grow for a name on a host, even across a delete and a re-create.
    retired = RetiredDomain.objects.filter(name=ascii_name).aggregate(m=Max("revision"))["m"] or 0
    try:
        with transaction.atomic():
            domain = Domain.objects.create(pack=locked, name=ascii_name, revision=retired)
    except IntegrityError:
        raise ValidationError(_("This domain is already hosted."), code="unique") from None
    domain_changed(domain)
    audit.record(acting_user, Action.DOMAIN_CREATE, domain)
    return domain


@transaction.atomic
def domain_delete(*, domain: Domain, acting_user: Any) -> None:
    """Delete a domain with everything in it; its mail host removes it (maildirs included), and
    so does the host it is leaving when a move is still open (that host still keeps it)."""
    # Only the domain's row: locking the joined pack too would deadlock with lock_pack's order.
    locked = (
        Domain.objects.select_for_update(of=("self",)).select_related("pack__mail_host").get(pk=domain.pk)
    )
    hosts = {locked.pack.mail_host_id, *DomainMove.objects.open().filter(domain=locked).values_list(
        "from_host_id", flat=True)}
    retired_ids = [
        RetiredDomain.objects.update_or_create(
            name=locked.name, host_id=host_id,
            defaults={"revision": locked.revision + 1, "confirmed": False, "error": ""},
        )[0].pk
        for host_id in sorted(hosts)
    ]
    audit.record(acting_user, Action.DOMAIN_DELETE, locked)
    locked.delete()
    for retired_id in retired_ids:
        transaction.on_commit(partial(schedule_retired_push, retired_id))


def open_move(domain: Domain, from_host: MailHost, to_host: MailHost) -> DomainMove | None:
    """Record, in the caller's transaction, that the domain leaves `from_host` for `to_host` at
    its current revision (the caller bumped it). An open move of the domain is kept as it is."""
    if from_host.pk == to_host.pk or DomainMove.objects.open().filter(domain=domain).exists():
        return None
    return DomainMove.objects.create(domain=domain, from_host=from_host, to_host=to_host, revision=domain.revision)


@transaction.atomic
def pack_move(*, pack: Pack, mail_host: MailHost, acting_user: Any) -> None:
    """Place a pack on another mail host: its domains are applied there, their mail is copied
    there, and only then are they removed from the old one (one DomainMove per domain)."""
    locked = lock_pack(pack.pk)
    if locked.mail_host_id == mail_host.pk:
        return
    if not mail_host.active:
        raise ValidationError(_("This mail host does not accept new packs."), code="host")
    if DomainMove.objects.open().filter(domain__pack=locked).exists():
        raise ValidationError(_("A move of this pack is still in progress."), code="moving")
    # A rename the old host has not applied: its mail is still under the old name there, and the
    # copy asks for the new one (mail is above this floor: read through `Domain.mailboxes`).
    if Domain.objects.filter(pack=locked, mailboxes__renamed_revision__gt=0).exists():
        raise ValidationError(_("A POP account of this pack was renamed a moment ago and its mail host has not "
                                "applied it yet. Try again in a moment."), code="renaming")
    old = locked.mail_host
    Pack.objects.filter(pk=locked.pk).update(mail_host=mail_host)
    for domain in Domain.objects.filter(pack=locked):
        domain_changed(domain)
        open_move(domain, old, mail_host)
    audit.record(acting_user, Action.PACK_MOVE, locked, old_host=old.name, new_host=mail_host.name)
