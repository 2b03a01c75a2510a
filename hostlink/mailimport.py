"""Mail of an old server brought into a domain's mailboxes by its mail host's agent.

`request_mail_import(domain, mailboxes)` records the request (`provisioning.models.MailImport`:
the row is the record, as DomainSync is for pushes) and sends it to the domain's host once the
host has applied the revision that created the mailboxes; until then it waits, and the host's
next report (`tasks.report`) or the reconcile (`tasks.reconcile`, every 5 s) sends it. A request
whose answer does not come is sent again after SENT_STALE_AFTER (the agent's copy is idempotent:
nothing is copied twice); a request the broker did not take waits again for the reconcile.
`record_mail_imported` stores what the host reports for each mailbox (mailhost.mailimport)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from config.celery import app as panel_app
from hosting.models import Domain, MailHost
from mail.models import Mailbox
from mailhost import contract
from provisioning.models import DomainSync, MailImport, MailImportState

log = logging.getLogger(__name__)

SENT_STALE_AFTER = timedelta(minutes=30)  # big mailboxes take a while: asked again after


class MailImportRefused(ValueError):
    """A request that cannot be: the message says why (French or English)."""


def request_mail_import(domain: Domain, mailboxes: Sequence[tuple[str, str]]) -> MailImport:
    """Record the import of (address, absolute path of the old Maildir ON THE MAIL HOST) pairs
    into the mailboxes of `domain`, and send it when its host has them (see the module)."""
    if domain.alias_of_id is not None:
        raise MailImportRefused(_("%(domain)s is an alias domain: it has no mailboxes of its own.")
                                % {"domain": domain.name})
    if not mailboxes:
        raise MailImportRefused(_("No mailbox to import."))
    pairs: list[list[str]] = []
    seen: set[str] = set()
    for address, path in mailboxes:
        address = address.strip().lower()
        local, _at, name = address.rpartition("@")
        if name != domain.name or not local:
            raise MailImportRefused(_("%(address)s is not an address of %(domain)s.")
                                    % {"address": address, "domain": domain.name})
        if address in seen:
            raise MailImportRefused(_("%(address)s is listed twice.") % {"address": address})
        if not path.startswith("/") or "\0" in path:
            raise MailImportRefused(_("The old Maildir of %(address)s must be an absolute path on the mail host.")
                                    % {"address": address})
        seen.add(address)
        pairs.append([address, path])
    known = set(Mailbox.objects.filter(domain=domain, local_part__in=[a.rpartition("@")[0] for a, _p in pairs])
                .values_list("local_part", flat=True))
    missing = sorted(a for a, _p in pairs if a.rpartition("@")[0] not in known)
    if missing:
        raise MailImportRefused(_("No such mailbox in %(domain)s: %(addresses)s.")
                                % {"domain": domain.name, "addresses": ", ".join(missing)})
    with transaction.atomic():
        revision = Domain.objects.values_list("revision", flat=True).get(pk=domain.pk)
        item = MailImport.objects.create(domain=domain, revision=revision, mailboxes=pairs)
        send_if_ready(item.pk)
    return item


def import_request(item: MailImport) -> contract.MailImportRequest:
    """What the host's agent needs: the import's id, the domain, each mailbox and its old Maildir."""
    return {"id": item.pk, "domain": item.domain.name,
            "mailboxes": [{"address": str(address), "path": str(path)} for address, path in item.mailboxes]}


def send_if_ready(import_id: int, *, states: tuple[str, ...] = (MailImportState.WAITING,),
                  sent_before: datetime | None = None) -> bool:
    """Claim an import in one of `states` (sent before `sent_before`, when given) and send it to
    the domain's host, if that host has applied the import's revision. Returns whether it was sent."""
    item = MailImport.objects.select_related("domain__pack__mail_host").filter(pk=import_id).first()
    if item is None:
        return False
    host = item.domain.pack.mail_host
    if not DomainSync.objects.filter(domain_id=item.domain_id, host_id=host.pk,
                                     applied_revision__gte=item.revision).exists():
        return False  # the host lacks the mailboxes yet: its report, or the reconcile, sends it later
    claim = MailImport.objects.filter(pk=import_id, state__in=states)
    if sent_before is not None:
        claim = claim.filter(sent_at__lt=sent_before)
    if not claim.update(state=MailImportState.SENT, sent_at=timezone.now(), host=host,
                        attempts=F("attempts") + 1):
        return False
    item.refresh_from_db(fields=["attempts"])
    request = import_request(item)
    attempt = item.attempts
    transaction.on_commit(lambda: send(host, request, attempt))
    return True


def send(host: MailHost, request: contract.MailImportRequest, attempt: int) -> None:
    """Send the request; when the broker does not take it, the import waits again (reconcile)."""
    try:
        panel_app.send_task(contract.IMPORT_MAIL, args=[request], queue=host.queue)
    except Exception:  # noqa: BLE001 - the row is the record: the reconcile sends it again
        log.exception("mail import %s could not be sent to %s: it waits for the reconcile", request["id"], host)
        MailImport.objects.filter(pk=request["id"], state=MailImportState.SENT, attempts=attempt).update(
            state=MailImportState.WAITING)


def send_waiting(domain: str) -> int:
    """Send the imports of `domain` that wait for its host (called when the host reports)."""
    waiting = MailImport.objects.filter(domain__name=domain, state=MailImportState.WAITING)
    return sum(send_if_ready(pk) for pk in waiting.values_list("pk", flat=True))


def reconcile_imports(now: datetime | None = None, stale_after: timedelta = SENT_STALE_AFTER) -> int:
    """Send every import that waits and whose host is ready, and again every import sent more
    than `stale_after` ago without an answer. Returns how many were sent."""
    now = now or timezone.now()
    sent = 0
    for pk in MailImport.objects.filter(state=MailImportState.WAITING).values_list("pk", flat=True):
        sent += send_if_ready(pk)
    stale = now - stale_after
    for pk in MailImport.objects.filter(state=MailImportState.SENT, sent_at__lt=stale).values_list("pk", flat=True):
        sent += send_if_ready(pk, states=(MailImportState.SENT,), sent_before=stale)
    return sent


def record_mail_imported(*, host: str, id: Any, domain: str,  # noqa: A002 - the contract's key
                         mailboxes: list[dict[str, Any]] | None = None, seconds: float = 0.0,
                         error: str = "") -> None:
    """Store what the host says of an import: per mailbox what a run copied (added to what the
    runs before copied), what was there already, its folders, its error."""
    if type(id) is not int:
        log.warning("mail import report of %s without a valid id: %r", host, id)
        return
    with transaction.atomic():
        item = (MailImport.objects.select_for_update()
                .filter(pk=id, domain__name=domain, host__name=host).exclude(state=MailImportState.WAITING).first())
        if item is None:
            log.warning("mail import report of %s for an import it was not sent: %s %s", host, id, domain)
            return
        before = {str(r.get("address")): r for r in item.results if isinstance(r, dict)}
        for reported in mailboxes or []:
            address = str(reported.get("address", ""))
            merged = dict(reported)
            merged["copied"] = int(before.get(address, {}).get("copied", 0)) + int(reported.get("copied", 0))
            before[address] = merged
        item.results = [before[address] for address, _path in item.mailboxes if address in before]
        item.copied = sum(int(r.get("copied", 0)) for r in item.results)
        failed = {str(r["address"]): str(r["error"]) for r in mailboxes or [] if r.get("error")}
        item.error = error or "; ".join(f"{address}: {text}" for address, text in sorted(failed.items()))[:5000]
        item.state = MailImportState.FAILED if item.error else MailImportState.DONE
        item.seconds = float(seconds)
        item.finished_at = timezone.now()
        item.save(update_fields=["results", "copied", "error", "state", "seconds", "finished_at"])
    if item.error:
        log.warning("mail import %s into %s on %s: %s", id, domain, host, item.error)
