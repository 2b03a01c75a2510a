"""A domain's DNS checks asked now ("Check the DNS records now"): queued on the bulk queue
(`provisioning.dnscheck.request_check`), never looked up in the request; at most one a domain
per `ASK_AGAIN_AFTER`. The checks are shown by `{% dns_checks %}` on the domain's menu, an alias
domain's page and the Espace Client's pack page."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from hosting.models import Domain
from mail.auth import PanelRequest
from provisioning.dnscheck import request_check
from screens.kit import DomainContext, domain_screen


def _ask(request: PanelRequest, domain: Domain) -> None:
    if request_check(domain):
        messages.success(request, _("The DNS records of %(name)s are being checked: reload the page in a moment.")
                         % {"name": domain.unicode_name})
    else:
        messages.info(request, _("A check of %(name)s was asked a moment ago. Try again in a few seconds.")
                      % {"name": domain.unicode_name})


@require_POST
@domain_screen
def dns_check(request: PanelRequest, ctx: DomainContext) -> HttpResponse:
    """The domain's menu and the Espace Client's pack page (`back=pack`) have the button."""
    _ask(request, ctx.domain)
    if request.POST.get("back") == "pack" and request.mailbox is None:
        return redirect("screens:pack", pk=ctx.domain.pack_id)
    return redirect("screens:domain", pk=ctx.domain.pk)


@require_POST
@domain_screen
def alias_dns_check(request: PanelRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    """An alias domain's, fetched through its target (whoever manages the domain manages it)."""
    alias = get_object_or_404(ctx.domain.alias_domains.all(), pk=obj)
    _ask(request, alias)
    if request.POST.get("back") == "pack" and request.mailbox is None:
        return redirect("screens:pack", pk=alias.pack_id)
    return redirect("screens:alias_domain", pk=ctx.domain.pk, obj=alias.pk)
