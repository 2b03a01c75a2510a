"""What a mail host says it did with a document (its agent calls `record_report` through a task)."""

from __future__ import annotations

import logging

from django.db.models import F
from django.utils import timezone

from hostlink.moves import ask_copy
from mail.models import Mailbox
from provisioning.models import DomainMove, DomainSync, MoveState, RemovedName, RetiredDomain
from provisioning.revisions import schedule_push

log = logging.getLogger(__name__)


def record_report(*, host: str, domain: str, revision: int, state: str, error: str = "",
                  behind: bool = False) -> None:
    """Store what a host says it did with a document (the agent calls this through a task):
    applied, failed with `error`, or `behind` (it lacks a delta's base: send the whole domain)."""
    now = timezone.now()
    if state == "absent":
        RetiredDomain.objects.filter(host__name=host, name=domain, revision__lte=revision).update(
            confirmed=not error, error=error
        )
        if not error:
            DomainMove.objects.filter(domain__name=domain, from_host__name=host, state=MoveState.REMOVING).update(
                state=MoveState.DONE, finished_at=now
            )
        return
    syncs = DomainSync.objects.filter(domain__name=domain, host__name=host)
    if behind:
        for domain_id in syncs.values_list("domain_id", flat=True):
            DomainSync.objects.filter(domain_id=domain_id).update(needs_full=True, queued=False)
            schedule_push(domain_id)
        return
    if error:
        syncs.filter(applied_revision__lt=revision).update(error=error, error_revision=revision)
        log.warning("host %s failed to apply %s@%s: %s", host, domain, revision, error)
        return
    if syncs.filter(applied_revision__lt=revision).update(
        applied_revision=revision, applied_at=now, error="", error_revision=0, resends=0
    ):
        # The host has every change (no wait any more), or a part of them (the rest waits from now).
        syncs.filter(applied_revision__gte=F("domain__revision")).update(pending_since=None)
        syncs.filter(applied_revision__lt=F("domain__revision")).update(pending_since=now)
        # The host has every removal up to `revision`: a later delta starts above it.
        RemovedName.objects.filter(domain__name=domain, revision__lte=revision).delete()
        # ... and every rename up to it: its mail has followed, the previous names are free again.
        Mailbox.objects.filter(domain__name=domain, renamed_revision__gt=0, renamed_revision__lte=revision).update(
            renamed_from="", renamed_revision=0)
    for move_id in DomainMove.objects.filter(
        domain__name=domain, to_host__name=host, state=MoveState.WAITING, revision__lte=revision
    ).values_list("pk", flat=True):
        ask_copy(move_id, states=(MoveState.WAITING,))
