"""A list's moderation queue: the posts and subscription requests its host holds for the
moderators, each with Approve / Reject (lists/moderation.py sends the decision to the host).

Who may: the seats of the domain's screens (its admins, its customer, their reseller, support,
operators). A moderator who is only a mailbox of the domain has no domain screen: they decide by
replying to mlmmj's mail, as before.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from lists import moderation
from lists.access import get_list_in
from lists.models import Decision, HeldKind
from screens.kit import DomainContext, domain_screen


@require_GET
@domain_screen
def moderation_queue(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    """The queue of one list; opening it asks the host for what it holds now (shown on reload)."""
    mailing_list = get_list_in(ctx.seat, ctx.domain, obj)
    moderation.ask_report(mailing_list)
    return render(request, "lists/moderation.html", ctx.page(
        mailing_list=mailing_list, held=moderation.held_of(mailing_list)))


def _done_message(kind: str, decision: str) -> str:
    if kind == HeldKind.SUBSCRIPTION:
        if decision == Decision.APPROVE:
            return _("The subscription request is approved; the mail host subscribes the address.")
        return _("The subscription request is refused.")
    if decision == Decision.APPROVE:
        return _("The message is approved; the mail host sends it to the list.")
    return _("The message is rejected; the mail host discards it.")


@require_POST
@domain_screen
def held_decide(request: HttpRequest, ctx: DomainContext, obj: int, held: int) -> HttpResponse:
    """Approve or reject one held item (button `decision`), then back to where it was shown."""
    mailing_list = get_list_in(ctx.seat, ctx.domain, obj)
    item = moderation.held_in(mailing_list, held)
    decision = request.POST.get("decision", "")
    try:
        moderation.held_decide(held=item, decision=decision, acting_user=ctx.seat)
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, _done_message(item.kind, decision))
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                require_https=request.is_secure()):
        return redirect(back)
    return redirect("screens:moderation", pk=ctx.domain.pk, obj=mailing_list.pk)
