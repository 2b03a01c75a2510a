"""Moderation from the panel: what a list's host holds for its moderators, and the decisions.

The host reports what mlmmj holds (`lists.reports.record_held`: on the agent's maintain
beat, every minute, and within seconds when a moderation page asks for it, `ask_report`). A
decision taken here (`held_decide`) is audited and sent to the host after commit; the item stays,
marked "being sent", until the host's next report of the list no longer has it. A decision
taken by mail makes the item disappear at the next report. What reaches mlmmj is its own
moderator's mail (mailhost/moderation.py), so it distributes, discards or subscribes as usual.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from config.celery import app as panel_app
from hosting import audit
from hosting.audit import Action
from hosting.models import MailHost
from hosting.roles import Seat
from lists.models import Decision, HeldMessage, MailingList
from mailhost import contract

log = logging.getLogger(__name__)

ASK_EVERY_SECONDS = 5  # at most one report asked per list in this time, however often its page opens


def held_of(mailing_list: MailingList) -> QuerySet[HeldMessage]:
    """The list's held items, oldest first (those decided here until the host confirms)."""
    return mailing_list.held.order_by("received_at", "pk")


def held_in(mailing_list: MailingList, pk: Any) -> HeldMessage:
    """A held item of `mailing_list` (itself from `lists.access.get_list_in`), or 404: an item of
    another list is not found through this one."""
    return get_object_or_404(mailing_list.held.all(), pk=pk)


def _actor_label(actor: Seat | None) -> str:
    return str(getattr(actor, "email", None) or actor)[:320]


def decision_request(held: HeldMessage) -> contract.Moderation:
    request = {"domain": held.mailing_list.domain.name, "list": held.mailing_list.name, "key": held.key,
               "kind": held.kind, "decision": held.decision}
    return contract.check(request, contract.Moderation)


def send_decision(host: MailHost, request: contract.Moderation) -> None:
    """Queue a decision for the host's agent (mlmmj ignores one whose item is gone: safe to resend).
    Sent after commit: with the broker down the decision is saved all the same, the failure is
    logged, and the host's next report of the list (its beat, every minute) finds the item still
    held and decided, which sends it again (`lists.reports.record_held`)."""
    try:
        panel_app.send_task(contract.MODERATE, args=[request], queue=host.queue)
    except Exception as error:  # noqa: BLE001 - a broker down must not turn a saved decision into a 500
        log.error("the decision on %s of %s@%s could not be queued for %s (%s: %s); sent again at the "
                  "host's next report", request["key"], request["list"], request["domain"], host,
                  type(error).__name__, error)


@transaction.atomic
def held_decide(*, held: HeldMessage, decision: str, acting_user: Seat | None) -> HeldMessage:
    """Approve or reject one held item: the post goes to the list or is discarded, the
    subscription request is let in or refused. Once only: a decided item is refused."""
    if decision not in (Decision.APPROVE, Decision.REJECT):
        raise ValidationError(_("Choose one of the options."), code="invalid")
    locked = (
        HeldMessage.objects.select_for_update(of=("self",))
        .select_related("mailing_list__domain__pack__mail_host").filter(pk=held.pk).first()
    )
    if locked is None:
        raise ValidationError(_("This item is no longer held: it was decided meanwhile."), code="gone")
    if locked.decision != Decision.PENDING:
        raise ValidationError(_("This item was already decided."), code="decided")
    locked.decision, locked.decided_by = decision, _actor_label(acting_user)
    locked.save(update_fields=["decision", "decided_by"])
    audit.record(acting_user, Action.LIST_MODERATE, locked.mailing_list, kind=locked.kind, key=locked.key,
                 sender=locked.sender, subject=locked.subject[:200], decision=decision)
    host, request = locked.mailing_list.domain.pack.mail_host, decision_request(locked)
    transaction.on_commit(lambda: send_decision(host, request))
    return locked


def ask_report(mailing_list: MailingList) -> bool:
    """Ask the list's host what it holds now (after commit; its report comes within seconds). At
    most once per ASK_EVERY_SECONDS per list; best effort: the page shows what the panel has
    meanwhile. Returns whether it asked."""
    if not cache.add(f"held-ask:{mailing_list.pk}", 1, timeout=ASK_EVERY_SECONDS):
        return False
    ask: contract.HeldAsk = {"domain": mailing_list.domain.name, "list": mailing_list.name}
    host = mailing_list.domain.pack.mail_host
    transaction.on_commit(lambda: _send_ask(host, ask))
    return True


def _send_ask(host: MailHost, ask: contract.HeldAsk) -> None:
    try:
        panel_app.send_task(contract.REPORT_HELD, args=[ask], queue=host.queue)
    except Exception:  # noqa: BLE001 - a broker down must not take the page with it; the beat reports anyway
        log.exception("could not ask %s for the held items of %s@%s", host, ask["list"], ask["domain"])
