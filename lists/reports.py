"""What a mail host says of its lists: members who joined or left by mail (`record_list_changes`)
and the messages its lists hold for their moderators (`record_held`). Called by the agents'
tasks (hostlink.tasks)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from lists.models import Decision, HeldKind, HeldMessage, ListMember, MailingList, MemberKind
from lists.moderation import decision_request, send_decision
from mail.validators import normalize_address
from provisioning.revisions import domain_changed

log = logging.getLogger(__name__)


def record_list_changes(*, host: str, changes: Sequence[Mapping[str, Any]]) -> int:
    """Take in list membership changed by mail on a host (subscribe/unsubscribe by e-mail, an
    address mlmmj removed for bouncing): add and remove those members, as deltas, so nothing the
    panel changed meanwhile is undone. Batched: one query finds the lists, each list's additions
    are one bulk insert and its removals one delete, and each domain gets one revision (one
    transaction per domain). An address the panel would refuse is left out; the host removed from
    the list those of its files the panel's rules refuse (`refused`): logged, and taken in when
    they are valid in another form (a domain in Unicode). Returns how many (list, kind) changes
    were taken in."""
    wanted: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for change in changes:
        if change.get("kind") in (MemberKind.SUBSCRIBER, MemberKind.DIGEST, MemberKind.NOMAIL):
            wanted.setdefault((str(change.get("domain")), str(change.get("list"))), []).append(change)
    if not wanted:
        return 0
    found = MailingList.objects.select_related("domain").filter(
        domain__pack__mail_host__name=host, domain__name__in={d for d, _n in wanted}, name__in={n for _d, n in wanted})
    by_domain: dict[int, list[tuple[MailingList, list[Mapping[str, Any]]]]] = {}
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


def _take_list_change(mailing_list: MailingList, change: Mapping[str, Any]) -> None:
    kind = change["kind"]
    added, removed = _valid_addresses(change.get("added")), _valid_addresses(change.get("removed"))
    reported_refused = change.get("refused")
    refused = reported_refused if isinstance(reported_refused, list) else []
    for address in refused[:1000]:
        log.warning("list %s: the host removed %s member %r, an address the panel refuses", mailing_list, kind,
                    str(address)[:320])
    added += _valid_addresses(refused)  # held in the panel's form (IDNA), written so at the next push
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
def record_held(*, host: str, lists: Sequence[Mapping[str, Any]], complete: bool) -> int:
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
        list_key = (row.mailing_list.domain.name, row.mailing_list.name)
        if list_key not in reported and not complete:
            continue
        if row.key not in keys.get(list_key, set()):
            gone.append(row.pk)
            continue
        known.add((list_key, row.key))
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
            added += [held for item in fresh if (held := _held_row(mailing_list, item)) is not None]
    HeldMessage.objects.bulk_create(added, ignore_conflicts=True)
    for row in resend:
        request, mail_host = decision_request(row), row.mailing_list.domain.pack.mail_host
        transaction.on_commit(partial(send_decision, mail_host, request))
    return len(added)
