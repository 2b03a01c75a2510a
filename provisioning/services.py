"""How a change reaches a mail host, panel side.

1. A service function bumps `Domain.revision` in its transaction
   (`provisioning.revisions.domain_changed`) and claims the domain's `queued` flag there: of a
   burst of 1,000 changes only those that find it free queue a push, on commit; the task releases
   the flag before it reads, so later changes queue again (revisions.py says why none is missed).
3. `push` reads the domain under its row lock (a consistent snapshot) and sends it to the queue of
   the domain's host: the rows changed since the revision that host last confirmed (a delta), or
   the whole domain when the host has confirmed none, is new, or said it lacks the delta's base;
   `record_report` stores what the host says back.
4. `reconcile` re-sends every domain whose host lags (the durable record drives it, not the queue).

A domain that moves to another host (`provisioning.domains.pack_move`) keeps its old host, mail and
all, until the new one has it: a `DomainMove` is opened; when the new host confirms the move's
revision, the old host's agent copies every mailbox there (`mailhost.migrate`: doveadm sync, then
it defers the domain's mail with 4xx, then a final sync) and reports (`record_migrated`); only
then is the domain retired from the old host ("absent" document: its maildirs go), and the move
is done when the old host confirms that. A failed copy keeps everything on the old host.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from config.celery import app as panel_app
from hosting.models import Domain, MailHost
from lists.models import Decision, HeldKind, HeldMessage, ListMember, MailingList, MemberKind
from lists.moderation import decision_request, send_decision
from mail.models import Mailbox
from mail.validators import normalize_address
from mailhost import contract
from provisioning import revisions, snapshot
from provisioning.domains import open_move
from provisioning.models import DomainMove, DomainSync, MoveState, RemovedName, RetiredDomain
from provisioning.revisions import domain_changed, schedule_push, schedule_retired_push

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(seconds=60)
COPY_STALE_AFTER = timedelta(minutes=10)  # a copy of big mailboxes takes a while: asked again after


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
            Domain.objects.select_for_update(of=("self",)).select_related("pack__mail_host")
            .filter(pk=domain_id).first()
        )
        if domain is None:
            return None  # deleted meanwhile: its RetiredDomain carries the removal
        host = domain.pack.mail_host
        sync, _created = DomainSync.objects.select_for_update().get_or_create(domain=domain)
        if sync.host_id is not None and sync.host_id != host.pk:
            # Never retired here: the move removes the domain from the old host once its mail is copied.
            open_move(domain, sync.host, host)
        whole = sync.needs_full or sync.applied_revision == 0 or sync.host_id != host.pk
        document: contract.Document = (
            snapshot.build(domain) if whole else snapshot.build_delta(domain, base=sync.applied_revision)
        )
        DomainSync.objects.filter(pk=sync.pk).update(
            host=host, sent_revision=domain.revision, sent_at=timezone.now(), attempts=F("attempts") + 1,
            needs_full=False,  # a whole domain goes now, or none was asked
        )
        transaction.on_commit(lambda: send(host, document))
    return document["revision"]


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


def push_retired(retired_id: int) -> None:
    retired = RetiredDomain.objects.select_related("host").filter(pk=retired_id, confirmed=False).first()
    if retired is not None:
        send(retired.host, snapshot.absent(retired.name, retired.revision))


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
        applied_revision=revision, applied_at=now, error="", error_revision=0
    ):
        # The host has every removal up to `revision`: a later delta starts above it.
        RemovedName.objects.filter(domain__name=domain, revision__lte=revision).delete()
        # ... and every rename up to it: its mail has followed, the previous names are free again.
        Mailbox.objects.filter(domain__name=domain, renamed_revision__gt=0, renamed_revision__lte=revision).update(
            renamed_from="", renamed_revision=0)
    for move_id in DomainMove.objects.filter(
        domain__name=domain, to_host__name=host, state=MoveState.WAITING, revision__lte=revision
    ).values_list("pk", flat=True):
        ask_copy(move_id, states=(MoveState.WAITING,))


def reconcile(stale_after: timedelta = STALE_AFTER, copy_stale_after: timedelta = COPY_STALE_AFTER) -> int:
    """Re-send every domain whose host has not confirmed its revision in time. Returns how many."""
    cutoff = timezone.now() - stale_after
    lagging = DomainSync.objects.filter(applied_revision__lt=F("domain__revision")).filter(
        Q(sent_at__isnull=True) | Q(sent_at__lt=cutoff) | Q(error_revision__gt=0)
    )
    ids = list(lagging.values_list("domain_id", flat=True))
    for domain_id in ids:
        DomainSync.objects.filter(domain_id=domain_id).update(queued=False)
        schedule_push(domain_id)
    for retired_id in RetiredDomain.objects.filter(confirmed=False, created_at__lt=cutoff).values_list(
        "pk", flat=True
    ):
        schedule_retired_push(retired_id)
    reconcile_moves(cutoff, timezone.now() - copy_stale_after)
    return len(ids)


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


def record_list_changes(*, host: str, changes: list[dict[str, Any]]) -> int:
    """Take in list membership changed by mail on a host (subscribe/unsubscribe by e-mail, an
    address mlmmj removed for bouncing): add and remove those members, as deltas, so nothing the
    panel changed meanwhile is undone. Batched: one query finds the lists, each list's additions
    are one bulk insert and its removals one delete, and each domain gets one revision (one
    transaction per domain). An address the panel would refuse is left out. Returns how many
    (list, kind) changes were taken in."""
    wanted: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for change in changes:
        if change.get("kind") in (MemberKind.SUBSCRIBER, MemberKind.DIGEST):
            wanted.setdefault((str(change.get("domain")), str(change.get("list"))), []).append(change)
    if not wanted:
        return 0
    found = MailingList.objects.select_related("domain").filter(
        domain__pack__mail_host__name=host, domain__name__in={d for d, _n in wanted}, name__in={n for _d, n in wanted})
    by_domain: dict[int, list[tuple[MailingList, list[dict[str, Any]]]]] = {}
    for mailing_list in found:
        if (mailing_list.domain.name, mailing_list.name) in wanted:
            by_domain.setdefault(mailing_list.domain_id, []).append(
                (mailing_list, wanted[mailing_list.domain.name, mailing_list.name]))
    applied = 0
    for lists in by_domain.values():
        with transaction.atomic():
            for mailing_list, list_changes in lists:
                for change in list_changes:
                    _take_list_change(mailing_list, change)
                    applied += 1
            revision = domain_changed(lists[0][0].domain)
            MailingList.objects.filter(pk__in=[ml.pk for ml, _c in lists]).update(revision=revision)
    return applied


def _valid_addresses(addresses: Any) -> list[str]:
    valid = []
    for address in addresses if isinstance(addresses, list) else []:
        try:
            valid.append(normalize_address(str(address)))
        except ValidationError:
            log.warning("list change with an address the panel refuses: %r", address)
    return valid


def _take_list_change(mailing_list: MailingList, change: dict[str, Any]) -> None:
    kind = change["kind"]
    added, removed = _valid_addresses(change.get("added")), _valid_addresses(change.get("removed"))
    ListMember.objects.bulk_create(
        [ListMember(mailing_list=mailing_list, kind=kind, address=address) for address in added],
        ignore_conflicts=True, batch_size=1000)
    for start in range(0, len(removed), 1000):
        ListMember.objects.filter(mailing_list=mailing_list, kind=kind,
                                  address__in=removed[start:start + 1000]).delete()


HELD_KEY = re.compile(r"[0-9a-f]{8,64}")


def _held_row(mailing_list: MailingList, item: dict[str, Any]) -> HeldMessage | None:
    """A new HeldMessage from a reported item (bounded again here; None for what is not one)."""
    if item.get("kind") not in HeldKind.values or not HELD_KEY.fullmatch(str(item.get("key", ""))):
        return None
    try:
        received = datetime.fromisoformat(str(item.get("received_at")))
    except ValueError:
        received = None
    if received is not None and timezone.is_naive(received):
        received = received.replace(tzinfo=UTC)
    return HeldMessage(
        mailing_list=mailing_list, kind=item["kind"], key=str(item["key"]), sender=str(item.get("sender", ""))[:320],
        subject=str(item.get("subject", ""))[:998], received_at=received, preview=str(item.get("preview", ""))[:2000],
    )


@transaction.atomic
def record_held(*, host: str, lists: list[dict[str, Any]], complete: bool) -> int:
    """Take in what a host's lists hold for their moderators (contract.HeldReport): new items
    appear, items gone from the host (decided here or by mail, expired) disappear. A decision
    taken here whose item a complete report (the beat's, every minute) still lists is sent again:
    its message was lost, and mlmmj ignores a repeat. Returns how many items were added."""
    reported = {(str(e.get("domain")), str(e.get("list"))): list(e.get("items", [])) for e in lists}
    keys = {name: {str(item.get("key")) for item in items} for name, items in reported.items()}
    rows = HeldMessage.objects.filter(mailing_list__domain__pack__mail_host__name=host).select_related(
        "mailing_list__domain__pack__mail_host")
    gone, known, resend = [], set(), []
    for row in rows:
        name = (row.mailing_list.domain.name, row.mailing_list.name)
        if name not in reported and not complete:
            continue
        if row.key not in keys.get(name, set()):
            gone.append(row.pk)
            continue
        known.add((name, row.key))
        if complete and row.decision != Decision.PENDING:
            resend.append(row)
    HeldMessage.objects.filter(pk__in=gone).delete()
    added = []
    for (domain, name), items in reported.items():
        fresh = [item for item in items if ((domain, name), str(item.get("key"))) not in known]
        if not fresh:
            continue
        mailing_list = MailingList.objects.filter(
            domain__name=domain, name=name, domain__pack__mail_host__name=host).first()
        if mailing_list is not None:
            added += [row for item in fresh if (row := _held_row(mailing_list, item)) is not None]
    HeldMessage.objects.bulk_create(added, ignore_conflicts=True)
    for row in resend:
        request, mail_host = decision_request(row), row.mailing_list.domain.pack.mail_host
        transaction.on_commit(lambda h=mail_host, r=request: send_decision(h, r))
    return len(added)


def record_usage(*, host: str, usage: dict[str, int]) -> int:
    """Store the space each mailbox of a host uses (reported by its agent); no revision change."""
    by_domain: dict[str, dict[str, int]] = {}
    for address, size in usage.items():
        local, _at, domain = str(address).rpartition("@")
        by_domain.setdefault(domain, {})[local] = max(int(size), 0)
    updated = []
    for domain, sizes in by_domain.items():
        for mailbox in Mailbox.objects.filter(
            domain__name=domain, domain__pack__mail_host__name=host, local_part__in=list(sizes)
        ).only("pk", "local_part", "quota_used_bytes"):
            if mailbox.quota_used_bytes != sizes[mailbox.local_part]:
                mailbox.quota_used_bytes = sizes[mailbox.local_part]
                updated.append(mailbox)
    Mailbox.objects.bulk_update(updated, ["quota_used_bytes"], batch_size=500)
    return len(updated)
