"""The revision of a domain and the push that follows it: the low floor of provisioning.

Every service function calls `domain_changed` in its transaction; on commit one push per domain
is queued (a burst of changes coalesces on the `DomainSync.queued` flag). The push tasks are
enqueued by name (`provisioning/tasks.py` registers them), so this module imports only hosting
and provisioning's records, and mail, lists and the domain life-cycle can all call it.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from config.celery import app as panel_app
from hosting.models import Domain
from mailhost import contract
from provisioning.models import DomainSync


def domain_changed(domain: Domain) -> int:
    """Record, in the caller's transaction, that the domain's desired state changed; the mail
    host gets the new state after commit. Returns the new revision (stamp it on changed rows)."""
    Domain.objects.filter(pk=domain.pk).update(revision=F("revision") + 1)
    revision = Domain.objects.values_list("revision", flat=True).get(pk=domain.pk)
    domain.revision = revision
    domain_id = domain.pk
    transaction.on_commit(lambda: schedule_push(domain_id))
    return revision


def enqueue_push(domain_id: int) -> None:
    """Queue the push task of a domain on the panel's queue (through the panel's own Celery app,
    whatever app another import made current)."""
    panel_app.send_task(contract.PUSH_DOMAIN, args=[domain_id], queue=contract.PANEL_QUEUE)


def enqueue_retired_push(retired_id: int) -> None:
    """Queue the task that sends a retired domain's "absent" document to its host."""
    panel_app.send_task(contract.PUSH_RETIRED, args=[retired_id], queue=contract.PANEL_QUEUE)


def schedule_push(domain_id: int) -> None:
    """Enqueue one push for the domain unless one is already waiting (call on commit)."""
    claimed = DomainSync.objects.filter(domain_id=domain_id, queued=False).update(queued=True)
    if not claimed and not DomainSync.objects.filter(domain_id=domain_id).exists():
        DomainSync.objects.get_or_create(domain_id=domain_id)  # the domain's first change
        claimed = DomainSync.objects.filter(domain_id=domain_id, queued=False).update(queued=True)
    if claimed:
        enqueue_push(domain_id)


def schedule_retired_push(retired_id: int) -> None:
    enqueue_retired_push(retired_id)
