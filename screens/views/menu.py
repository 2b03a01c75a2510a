"""A domain's main menu (QmailAdmin's "Menu principal") and its quick box."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from hosting.usage import pack_features, usage_label
from mail.access import find_address
from mail.validators import normalize_local_part
from screens.kit import DomainContext, domain_screen, serves_alias_domains


@domain_screen
@serves_alias_domains
def domain_menu(request: HttpRequest, ctx: DomainContext) -> HttpResponseBase:
    """The domain's main menu (QmailAdmin's "Menu principal"): the lists, the "new" links, the quick
    box, its alias domains. An alias domain's is its page under its target."""
    if ctx.domain.alias_of_id is not None:
        return redirect("screens:alias_domain", pk=ctx.domain.alias_of_id, obj=ctx.domain.pk)
    pack = ctx.pack
    features = [f for f in pack_features(pack) if f.shown]
    aliases = usage_label(pack.used_alias_domains, pack.plan.max_alias_domains) if pack.plan.max_alias_domains else ""
    return render(request, "mail/domain_menu.html", ctx.page(features=features, alias_usage=aliases))


QUICK_TARGETS = {
    "mailbox": ("screens:mailbox_modify", "screens:mailbox_delete"),
    "forward": ("screens:forward_modify", "screens:forward_delete"),
    "robot": ("screens:robot_modify", "screens:robot_delete"),
    "list": ("screens:list_modify", "screens:list_delete"),  # the lists' floor: named, never imported
}


@domain_screen
def quick(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    """The quick box: a name typed, Modify or Delete pressed; the panel finds what holds the name."""
    name, action = request.GET.get("name", ""), request.GET.get("do", "modify")
    try:
        local = normalize_local_part(name)
    except ValidationError as error:
        messages.error(request, error.messages[0])
        return redirect("screens:domain", pk=ctx.domain.pk)
    found = find_address(ctx.seat, ctx.domain, local)
    if found is None:
        messages.error(request, _("Nothing is called %(name)s@%(domain)s.") % {
            "name": local, "domain": ctx.domain.unicode_name})
        return redirect("screens:domain", pk=ctx.domain.pk)
    kind, obj = found
    modify, delete = QUICK_TARGETS[kind]
    return redirect(delete if action == "delete" else modify, pk=ctx.domain.pk, obj=getattr(obj, "pk", obj))
