"""A domain that moves to another host (`provisioning.domains.pack_move`) keeps its old host, mail
and all, until the new one has it: a `DomainMove` is opened; when the new host confirms the move's
revision, the old host's agent copies every mailbox there (`mailhost.migrate`: doveadm sync, then
it defers the domain's mail with 4xx, then a final sync) and reports (`record_migrated`); only
then is the domain retired from the old host ("absent" document: its maildirs go), and the move
is done when the old host confirms that (`hostlink.reports`). A failed copy keeps everything on
the old host; `reconcile_moves` asks again for a copy that stalls."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from config.celery import app as panel_app
from hosting.models import Domain, MailHost
from mail.models import Mailbox
from mailhost import contract
from provisioning.models import DomainMove, DomainSync, MoveState, RetiredDomain
from provisioning.revisions import schedule_retired_push

log = logging.getLogger(__name__)

def _retire_from(old_host: MailHost, name: str, revision: int) -> None:
    retired, _created = RetiredDomain.objects.update_or_create(
        name=name, host=old_host, defaults={"revision": revision, "confirmed": False, "error": ""}
    )
    transaction.on_commit(lambda: schedule_retired_push(retired.pk))


def copy_request(move: DomainMove) -> contract.CopyRequest:
    """What the old host's agent needs to copy the domain's mail: its mailboxes and the target."""
    names = Mailbox.objects.filter(domain_id=move.domain_id).order_by("local_part").values_list("local_part", flat=True)
    return {
        "move": move.pk,
        "domain": move.domain.name,
        "mailboxes": [f"{local}@{move.domain.name}" for local in names],
        "target": move.to_host.doveadm_target,
    }


def ask_copy(move_id: int, *, states: tuple[str, ...]) -> bool:
    """Claim a move in one of `states` for a copy and send the request to the old host's agent.
    Returns whether this call sent it (a redelivered report claims nothing and sends nothing)."""
    claimed = DomainMove.objects.filter(pk=move_id, state__in=states).update(
        state=MoveState.COPYING, copy_sent_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return False
    move = DomainMove.objects.select_related("domain", "from_host", "to_host").get(pk=move_id)
    request = copy_request(move)
    transaction.on_commit(lambda: send_copy(move.from_host, request))
    return True


def send_copy(host: MailHost, request: contract.CopyRequest) -> None:
    panel_app.send_task(contract.MIGRATE, args=[request], queue=host.queue)


def record_migrated(*, host: str, move: int, domain: str, copied: list[str] | None = None,
                    error: str = "") -> None:
    """Store what the old host says of a copy; once copied, retire the domain from it."""
    with transaction.atomic():
        found = (
            DomainMove.objects.select_for_update().select_related("domain", "from_host")
            .filter(pk=move, from_host__name=host, domain__name=domain, state__in=[MoveState.COPYING, MoveState.FAILED])
            .first()
        )
        if found is None:
            return  # another host, or a late report of a copy already taken in
        if error:
            DomainMove.objects.filter(pk=found.pk).update(state=MoveState.FAILED, error=error)
            log.warning("host %s failed to copy %s: %s", host, domain, error)
            return
        DomainMove.objects.filter(pk=found.pk).update(
            state=MoveState.REMOVING, error="", copied=list(copied or []), copied_at=timezone.now()
        )
        revision = Domain.objects.values_list("revision", flat=True).get(pk=found.domain_id)
        _retire_from(found.from_host, domain, revision)


def reconcile_moves(cutoff: datetime, copy_cutoff: datetime) -> int:
    """Ask again for the copy of every move that stalls: the new host confirmed but the copy was
    never asked (a lost report), a copy unanswered since `copy_cutoff`, a failed one. Returns how many."""
    confirmed = DomainSync.objects.filter(
        domain_id=OuterRef("domain_id"), host_id=OuterRef("to_host_id"), applied_revision__gte=OuterRef("revision")
    )
    stalled = DomainMove.objects.filter(
        Q(state=MoveState.WAITING, created_at__lt=cutoff) & Exists(confirmed)
        | Q(state=MoveState.COPYING, copy_sent_at__lt=copy_cutoff)
        | Q(state=MoveState.FAILED, copy_sent_at__lt=cutoff)
    )
    asked = 0
    for move in stalled.values("pk", "state"):
        asked += ask_copy(move["pk"], states=(move["state"],))
    return asked


COPY_STALE_AFTER = timedelta(minutes=10)  # a copy of big mailboxes takes a while: asked again after
