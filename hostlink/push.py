"""How a change reaches a mail host, panel side.

1. A service function bumps `Domain.revision` in its transaction
   (`provisioning.revisions.domain_changed`) and claims the domain's `queued` flag there: of a
   burst of 1,000 changes only those that find it free queue a push, on commit; the task releases
   the flag before it reads, so later changes queue again (revisions.py says why none is missed).
3. `push` reads the domain under its row lock (a consistent snapshot) and sends it to the queue of
   the domain's host: the rows changed since the revision that host last confirmed (a delta), or
   the whole domain when the host has confirmed none, is new, or said it lacks the delta's base
   (an alias domain's document always: it holds nothing but its target's name);
   `hostlink.reports.record_report` stores what the host says back.
4. `reconcile` (Celery beat, every RECONCILE_SECONDS: 5) re-sends every domain whose host lags
   (the durable record drives it, not the queue): a flag taken longer than PUSH_LOST_AFTER ago
   (its push was lost: a worker killed holding it, a broker down), a change whose push was never
   sent, a document the host has not confirmed RESEND_AFTER after it went (its agent killed in the
   middle of the apply: each later one waits twice as long, up to STALE_AFTER; sooner when the
   agent's worker comes back, `resend_unconfirmed`), a failed one STALE_AFTER after it went; a
   retired domain's removal STALE_AFTER after it went. It also watches the hosts: `heard_from`
   records each agent's heartbeat and reports, `check_hosts` flags and logs a host silent for
   HOST_SILENT_AFTER.

A domain that moves to another host is `hostlink.moves`'s.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from config.celery import app as panel_app
from hosting.models import Domain, MailHost
from hostlink import snapshot
from hostlink.moves import COPY_STALE_AFTER, reconcile_moves
from mailhost import contract
from provisioning import revisions
from provisioning.domains import open_move
from provisioning.models import DomainSync, HostHealth, RetiredDomain
from provisioning.revisions import schedule_push, schedule_retired_push

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(seconds=60)  # a failed document is sent again after this; the longest resend delay
PUSH_LOST_AFTER = timedelta(seconds=5)  # a push claimed this long ago and not run is lost: sent again
RESEND_AFTER = timedelta(seconds=10)  # a document unconfirmed this long after it went is sent again
HOST_SILENT_AFTER = timedelta(seconds=60)  # four heartbeats missed (contract.HEARTBEAT_SECONDS)


def send(host: MailHost, document: contract.Document) -> None:
    """Queue a document for the host's agent, packed (contract.pack: a whole domain of 100,000
    mailboxes is 35 MB of JSON, 6 MB packed, and Celery's own decoding of it costs nothing)."""
    panel_app.send_task(contract.APPLY, args=[contract.pack(document)], queue=host.queue)


def push(domain_id: int) -> int | None:
    """Send the domain's current state to its host: what changed since the revision the host
    confirmed, or the whole domain (see the module's step 3). Returns the revision sent; None when
    the domain is gone, or when its last document left less than PUSH_INTERVAL_MS ago: the push
    then runs again when that time is up, with the flag still taken, so the changes made until
    then travel together."""
    last = DomainSync.objects.filter(domain_id=domain_id).values_list("sent_at", flat=True).first()
    if last is not None:
        wait = (last + timedelta(milliseconds=settings.PUSH_INTERVAL_MS) - timezone.now()).total_seconds()
        if wait > 0:
            revisions.enqueue_push(domain_id, countdown=wait)
            return None
    DomainSync.objects.filter(domain_id=domain_id).update(queued=False)
    with transaction.atomic():
        # The domain's row only (writers lock pack, then domain): a consistent read of its state.
        domain = (
            Domain.objects.select_for_update(of=("self",)).select_related("pack__mail_host", "alias_of")
            .filter(pk=domain_id).first()
        )
        if domain is None:
            return None  # deleted meanwhile: its RetiredDomain carries the removal
        host = domain.pack.mail_host
        sync, _created = DomainSync.objects.select_for_update().get_or_create(domain=domain)
        if sync.host_id is not None and sync.host_id != host.pk:
            # Never retired here: the move removes the domain from the old host once its mail is copied.
            old_host = sync.host
            assert old_host is not None  # its host_id is set
            open_move(domain, old_host, host)
        # An alias domain holds nothing to send a delta of: always whole (contract.AliasDocument).
        whole = (sync.needs_full or sync.applied_revision == 0 or sync.host_id != host.pk
                 or domain.alias_of_id is not None)
        document: contract.Document = (
            snapshot.build(domain) if whole else snapshot.build_delta(domain, base=sync.applied_revision)
        )
        DomainSync.objects.filter(pk=sync.pk).update(
            host=host, sent_revision=domain.revision, sent_at=timezone.now(), attempts=F("attempts") + 1,
            needs_full=False,  # a whole domain goes now, or none was asked
        )
        transaction.on_commit(lambda: send(host, document))
    return document["revision"]












def push_retired(retired_id: int) -> None:
    retired = RetiredDomain.objects.select_related("host").filter(pk=retired_id, confirmed=False).first()
    if retired is not None:
        RetiredDomain.objects.filter(pk=retired.pk).update(sent_at=timezone.now())
        send(retired.host, snapshot.absent(retired.name, retired.revision))




def resend_delay(resends: int) -> timedelta:
    """How long a document waits for its host's answer before the reconcile sends it again, when
    the reconcile already sent it `resends` times since the host's last confirmation."""
    return min(RESEND_AFTER * 2 ** min(resends, 8), STALE_AFTER)


def due(sync: DomainSync, revision: int, now: datetime, stale_after: timedelta = STALE_AFTER) -> bool:
    """Whether the reconcile must send a lagging domain (`revision` above what its host confirmed)
    again now; see the module's step 4."""
    if stale_after <= timedelta(0):
        return True  # asked for every lagging domain (tests, `manage.py` callers)
    if sync.queued:
        return sync.queued_at is None or sync.queued_at < now - PUSH_LOST_AFTER
    if sync.sent_at is None or sync.sent_revision < revision:
        return True  # a change whose push was never sent (refused by the broker, lost before it ran)
    if sync.error and sync.error_revision >= sync.sent_revision:
        return sync.sent_at < now - stale_after
    return sync.sent_at < now - resend_delay(sync.resends)


def reconcile(stale_after: timedelta = STALE_AFTER, copy_stale_after: timedelta = COPY_STALE_AFTER) -> int:
    """Re-send every domain whose host has not confirmed its revision in time (`due`), retired
    domains and stalled moves whose step is older than `stale_after`; flag the silent hosts.
    Returns how many domains were sent again."""
    now = timezone.now()
    cutoff = now - stale_after
    lagging = DomainSync.objects.filter(applied_revision__lt=F("domain__revision")).annotate(
        revision=F("domain__revision")).only(
        "domain_id", "queued", "queued_at", "sent_at", "sent_revision", "error", "error_revision", "resends")
    ids = []
    for sync in lagging:
        if not due(sync, sync.revision, now, stale_after):
            continue
        # Freed only as seen (a flag a change took meanwhile is that change's push, on its way).
        freed = DomainSync.objects.filter(pk=sync.pk, queued=sync.queued)
        if sync.queued:
            freed = freed.filter(Q(queued_at__isnull=True) | Q(queued_at__lte=sync.queued_at))
        resent = sync.sent_at is not None and sync.sent_revision >= sync.revision
        if freed.update(queued=False, resends=F("resends") + int(resent)):
            if sync.queued:
                log.warning("the push of domain %s queued at %s was lost: sent again", sync.domain_id, sync.queued_at)
            ids.append(sync.domain_id)
            schedule_push(sync.domain_id)
    for retired_id in RetiredDomain.objects.filter(confirmed=False, created_at__lt=cutoff).filter(
        Q(sent_at__isnull=True) | Q(sent_at__lt=cutoff)
    ).values_list("pk", flat=True):
        schedule_retired_push(retired_id)
    reconcile_moves(cutoff, timezone.now() - copy_stale_after)
    check_hosts(now)
    return len(ids)


def heard_from(host: str, *, contract_version: int | None = None, heartbeat: bool = False,
               started: bool = False) -> None:
    """Record that the agent of `host` spoke (a report, or its heartbeat with the highest document
    format it reads): the host is alive; a silence flagged before ends, and the log says so. When
    its worker has just `started`, what the host has not confirmed is sent again now (a document
    it was applying when it was killed is gone with it), not RESEND_AFTER later."""
    mail_host = MailHost.objects.filter(name=host).only("pk").first()
    if mail_host is None:
        return
    if started:
        resend_unconfirmed(mail_host)
    now = timezone.now()
    fields: dict[str, Any] = {"last_report_at": now}
    if heartbeat:
        fields["last_heartbeat_at"] = now
    if contract_version is not None:
        fields["contract_version"] = contract_version
    health, created = HostHealth.objects.get_or_create(host=mail_host, defaults=fields)
    if created:
        return
    if HostHealth.objects.filter(pk=health.pk, silent_since__isnull=False).update(silent_since=None, **fields):
        log.warning("mail host %s reports again (silent since %s)", host, health.silent_since)
    else:
        HostHealth.objects.filter(pk=health.pk).update(**fields)


def resend_unconfirmed(host: MailHost) -> int:
    """Send again every domain of `host` whose last document it has not confirmed (its agent
    restarted: that document may have died with the previous worker). A push already on its way
    is left to go. Returns how many."""
    ids = list(DomainSync.objects.filter(
        host=host, queued=False, sent_at__isnull=False, applied_revision__lt=F("domain__revision"),
    ).values_list("domain_id", flat=True))
    for domain_id in ids:
        schedule_push(domain_id)
    if ids:
        log.info("the agent of %s restarted: %d domain(s) it had not confirmed sent again", host, len(ids))
    return len(ids)


def check_hosts(now: datetime | None = None, silent_after: timedelta = HOST_SILENT_AFTER) -> list[str]:
    """Flag every mail host that holds domains and whose agent has said nothing for `silent_after`
    (never, or not since): `HostHealth.silent_since`, and an error in the log, once per silence
    (the flag is taken in one conditional UPDATE: two reconciles never both log it). A host first
    seen here gets its record, and `silent_after` to speak. Two queries a run while every host
    speaks. Returns the names of the hosts flagged by this call."""
    now = now or timezone.now()
    cutoff = now - silent_after
    serving = MailHost.objects.filter(Exists(Domain.objects.filter(pack__mail_host=OuterRef("pk"))))
    HostHealth.objects.bulk_create(
        [HostHealth(host_id=pk) for pk in serving.filter(health__isnull=True).values_list("pk", flat=True)],
        ignore_conflicts=True)
    silent = Q(silent_since__isnull=True) & (
        Q(last_report_at__lt=cutoff) | Q(last_report_at__isnull=True, created_at__lt=cutoff))
    flagged = []
    for pk, name, last in HostHealth.objects.filter(silent, host__in=serving).values_list(
            "pk", "host__name", "last_report_at"):
        if HostHealth.objects.filter(silent, pk=pk).update(silent_since=now):  # unless it spoke meanwhile
            log.error("mail host %s is silent: its agent has not reported since %s (its domains' changes wait)",
                      name, last or "it was first expected")
            flagged.append(name)
    return flagged
