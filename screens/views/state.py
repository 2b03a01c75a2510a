"""Where a change stands on its mail host, for the banner that asks again while it is pending
(static/js/sync.js): a domain's screens and the Espace Client's pack page (`domain_state`), a
mailbox user's own page (`me_state`). Asked every few seconds: a few indexed queries, no page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from mail.auth import MailboxRequest
from provisioning.models import DomainSync, sync_state
from screens.kit import DomainContext, domain_screen, serves_alias_domains
from screens.views.account import mailbox_required


def _revision(request: HttpRequest, default: int) -> int:
    """The revision the page shows the state of (`?revision=`), else `default`."""
    text = request.GET.get("revision", "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 20 else default


def _answer(sync: DomainSync | None, revision: int) -> HttpResponse:
    state, error = sync_state(sync, revision)
    response = JsonResponse({"state": state, "error": error})
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@domain_screen
@serves_alias_domains
def domain_state(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    """The state of the domain's change at `?revision=` (its last one by default), for the seats
    that manage the domain (404 for any other, as every screen of a domain)."""
    return _answer(getattr(ctx.domain, "sync", None), _revision(request, ctx.domain.revision))


@require_GET
@domain_screen
def alias_domain_state(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    """The state of an alias domain's change, asked through its target (as its page is)."""
    alias = get_object_or_404(ctx.domain.alias_domains.select_related("sync"), pk=obj)
    return _answer(getattr(alias, "sync", None), _revision(request, alias.revision))


@require_GET
@mailbox_required
def me_state(request: MailboxRequest) -> HttpResponse:
    """The state of the logged-in mailbox's own change at `?revision=` (its last one by default)."""
    mailbox = request.mailbox
    return _answer(getattr(mailbox.domain, "sync", None), _revision(request, mailbox.revision))
