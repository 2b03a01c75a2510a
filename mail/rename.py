"""What a mailbox's rename needs besides the row itself (`mail.services.mailbox_rename`): the
redirects of its domain follow it, and a name whose home is still moving on the mail host is
not given to another mailbox or robot until the host has confirmed the move.

The host moves the old home to the new name when it applies the rename (`mailhost.apply`); the
mailbox carries its previous name (`Mailbox.renamed_from`) until the host confirms the rename's
revision (`hostlink.reports.record_report` clears it), so a lost document is made good by
the next one, whole or delta.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.core.exceptions import ValidationError
from django.db.models import Exists, Q, QuerySet, TextField, Value
from django.db.models.functions import Cast, Concat
from django.dispatch import Signal
from django.utils.translation import gettext as _

from hosting.models import Domain
from mail import routing_rules
from mail.models import CatchAll, CatchAllMode, Forward, Mailbox, Robot, Routing
from provisioning.models import RemovedName

# Sent by `mailbox_rename` inside its transaction (domain, old, new: local parts; revision): the
# floors above make what names the old address follow it (the lists' members and owners). Each
# receiver returns the names of what it changed, for the audit row.
mailbox_renamed = Signal()


def pending_renames(domain: Domain) -> QuerySet[Mailbox]:
    """The mailboxes of the domain whose rename the host has not confirmed (the partial index
    `mailbox_renamed`: a few rows whatever the domain's size)."""
    return Mailbox.objects.filter(domain=domain, renamed_revision__gt=0)


def home_checks(domain: Domain, local: str) -> dict[str, Exists]:
    """What may still hold another's mail at `local`'s home on the host, as annotations of one
    query (see `refuse_busy_home`): the previous name of a renamed mailbox whose mail the host may
    still be moving, a name whose deletion it has not confirmed (the deleted mailbox's Maildir is
    still in place: a new account would see its mail)."""
    return {"renaming": Exists(pending_renames(domain).filter(renamed_from=local)),
            "pending": Exists(RemovedName.objects.filter(domain=domain, name=local))}


def refuse_busy_home(local: str, *, renaming: bool, pending: bool) -> None:
    """Refuse to give `local` a home (a mailbox, a robot, a rename's new name) on `home_checks`' answer."""
    if renaming:
        raise ValidationError(
            _("%(name)s was renamed a moment ago: its mail is still moving to the new name on the mail "
              "server. Try again in a moment.") % {"name": local},
            code="renaming",
        )
    if pending:
        raise ValidationError(
            _("%(name)s was deleted a moment ago and the mail server has not removed it yet. Try again "
              "in a moment.") % {"name": local},
            code="pending",
        )


def repoint(domain: Domain, old: str, new: str, revision: int) -> list[str]:
    """Make the redirects of the domain that reach old@domain (old+tag@ too) reach new@domain:
    forwards, forwarding mailboxes, robots' copies, the catch-all. Each row changed gets
    `revision`. Returns the addresses of what changed (the catch-all's: @domain), for the audit
    row."""
    names = routing_rules.names_of(domain)  # its own name and its alias domains' (old@alias is old@domain)

    def moved(address: str) -> str:
        if not routing_rules.reaches(domain, old, address):
            return address
        local, _at, host = address.rpartition("@")
        return f"{new}{local[len(old):]}@{host}"

    def rewritten(addresses: list[str]) -> list[str]:
        result: list[str] = []
        for address in map(moved, addresses):
            if address not in result:
                result.append(address)
        return result

    wanted = reduce(or_, (Q(text__contains=f'"{old}@{name}"') for name in names), Q(text__contains=f'"{old}+'))
    labels: list[str] = []
    for forward in Forward.objects.filter(domain=domain).annotate(
            text=Cast("destinations", TextField())).filter(wanted):
        targets = rewritten(forward.destinations)
        if targets != forward.destinations:
            Forward.objects.filter(pk=forward.pk).update(destinations=targets, revision=revision)
            labels.append(f"{forward.local_part}@{domain.unicode_name}")
    for mailbox in Mailbox.objects.filter(domain=domain, routing=Routing.FORWARD).annotate(
            text=Cast("forward_to", TextField())).filter(wanted):
        targets = rewritten(mailbox.forward_to)
        if targets != mailbox.forward_to:
            Mailbox.objects.filter(pk=mailbox.pk).update(forward_to=targets, revision=revision)
            labels.append(f"{mailbox.local_part}@{domain.unicode_name}")
    quoted = Concat(Value('"'), "copy_to", Value('"'), output_field=TextField())
    for robot in Robot.objects.filter(domain=domain).exclude(copy_to="").annotate(text=quoted).filter(wanted):
        if moved(robot.copy_to) != robot.copy_to:
            Robot.objects.filter(pk=robot.pk).update(copy_to=moved(robot.copy_to), revision=revision)
            labels.append(f"{robot.local_part}@{domain.unicode_name}")
    catchall = CatchAll.objects.filter(domain=domain).first()
    if catchall is not None:
        target = catchall.target
        if catchall.mode == CatchAllMode.MAILBOX and target == old:
            target = new
        elif catchall.mode == CatchAllMode.REMOTE:
            target = moved(target)
        if target != catchall.target:
            CatchAll.objects.filter(pk=catchall.pk).update(target=target, revision=revision)
            labels.append(f"@{domain.unicode_name}")  # the catch-all, as the maps name it
    return labels
