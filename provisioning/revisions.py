"""The revision of a domain and the push that follows it: the low floor of provisioning.

Every service function calls `domain_changed` in its transaction: two statements, the revision
bump and the claim of the domain's push. A burst of changes coalesces on the `DomainSync.queued`
flag: only the change that claims it queues a push (on commit); the push task releases the flag
before it reads the domain, so a later change claims it again.

Why a change that finds the flag taken is never missed: it claims inside its transaction, and
holds two row locks until it commits: the domain's (the revision bump) and the record's (the
upsert locks the row it conflicts with, even when it leaves the flag alone). A push still queued
releases the flag (waiting on the record's lock), then reads the domain under the domain's lock
(`hostlink.push.push`): it reads after the change's commit. tests/test_push_race.py.

The flag carries the time it was taken (`queued_at`): a push lost after its claim (its worker
killed holding it, the broker down when it was sent) leaves it taken, and the reconcile frees a
flag older than a few seconds and sends the push again (services.reconcile). A send refused by
the broker never fails the change, which is saved: it is logged, the flag is freed, and the
reconcile sends it when the broker is back.

The push tasks are enqueued by name (`provisioning/tasks.py` registers them), so this module
imports only hosting and provisioning's records, and mail, lists and the domain life-cycle can
all call it.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.utils import timezone

from config.celery import app as panel_app
from hosting.models import Domain, MailHost
from mailhost import contract
from provisioning.models import DomainSync, RemovedName

log = logging.getLogger(__name__)

def _sql(template: str) -> str:
    quote = connection.ops.quote_name
    return template.format(domain=quote(Domain._meta.db_table), sync=quote(DomainSync._meta.db_table))


# One statement each (PostgreSQL and SQLite ≥ 3.35 both have RETURNING and ON CONFLICT).
BUMP = "UPDATE {domain} SET revision = revision + 1 WHERE id = %s RETURNING revision"
# The domain's first change creates its record (every other column has its database default);
# a row comes back only when this call inserted the record or turned its flag from false to true
# (and stamped the time it took it).
CLAIM = (
    "INSERT INTO {sync} (domain_id, queued, queued_at, pending_since) VALUES (%s, TRUE, %s, %s) "
    "ON CONFLICT (domain_id) DO UPDATE SET queued = TRUE, queued_at = excluded.queued_at, "
    "pending_since = COALESCE({sync}.pending_since, excluded.queued_at) "
    "WHERE {sync}.queued = FALSE RETURNING id"
)


def domain_changed(domain: Domain, *, removed: str = "") -> int:
    """Record, in the caller's transaction, that the domain's desired state changed; the mail
    host gets the new state after commit. Returns the new revision: stamp it on the rows changed,
    and name the object deleted, if any, in `removed` (its tombstone for the host's delta)."""
    with connection.cursor() as cursor:
        cursor.execute(_sql(BUMP), [domain.pk])
        (revision,) = cursor.fetchone()
    domain.revision = revision
    if removed:
        RemovedName.objects.update_or_create(domain=domain, name=removed, defaults={"revision": revision})
    schedule_push(domain.pk)
    return revision


def claim_push(domain_id: int) -> bool:
    """Take the domain's `queued` flag; True when this caller took it and must queue the push."""
    with connection.cursor() as cursor:
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        cursor.execute(_sql(CLAIM), [domain_id, now, now])
        return cursor.fetchone() is not None


def schedule_push(domain_id: int) -> None:
    """Queue one push for the domain, on commit, unless one is already waiting."""
    if claim_push(domain_id):
        transaction.on_commit(lambda: enqueue_push(domain_id))


def enqueue_push(domain_id: int, countdown: float | None = None) -> bool:
    """Queue the push task of a domain on the panel's queue (through the panel's own Celery app,
    whatever app another import made current), to run now or in `countdown` seconds. Returns
    False when the broker refused it: the change is saved (this runs after its commit), so the
    failure is logged, never raised (a page would answer 500 for a saved change), and the flag
    is freed: the next change, or the reconcile, sends the push once the broker is back."""
    try:
        panel_app.send_task(contract.PUSH_DOMAIN, args=[domain_id], queue=contract.PANEL_QUEUE,
                            countdown=countdown or None)
    except Exception as error:  # noqa: BLE001 - whatever the broker's client raises, the change is saved
        log.error("the push of domain %s could not be queued (%s: %s); the change is saved, the reconcile "
                  "will send it", domain_id, type(error).__name__, error)
        DomainSync.objects.filter(domain_id=domain_id).update(queued=False)
        return False
    return True


def enqueue_retired_push(retired_id: int) -> bool:
    """Queue the task that sends a retired domain's "absent" document to its host. A refusal of
    the broker is logged, never raised (see enqueue_push): the reconcile sends it again."""
    try:
        panel_app.send_task(contract.PUSH_RETIRED, args=[retired_id], queue=contract.PANEL_QUEUE)
    except Exception as error:  # noqa: BLE001 - whatever the broker's client raises, the deletion is saved
        log.error("the removal %s could not be queued (%s: %s); the reconcile will send it", retired_id,
                  type(error).__name__, error)
        return False
    return True


def schedule_retired_push(retired_id: int) -> None:
    enqueue_retired_push(retired_id)


def resync_host(host: MailHost) -> int:
    """Send every domain of a host again, whatever it confirmed (after a host was rebuilt)."""
    ids = list(Domain.objects.filter(pack__mail_host=host).values_list("pk", flat=True))
    DomainSync.objects.filter(domain_id__in=ids).update(queued=False, applied_revision=0)
    for domain_id in ids:
        schedule_push(domain_id)
    return len(ids)


def retry(domain: Domain) -> None:
    """Support's "retry": forget the error and send the whole domain again."""
    DomainSync.objects.filter(domain=domain).update(error="", error_revision=0, queued=False, needs_full=True)
    schedule_push(domain.pk)
