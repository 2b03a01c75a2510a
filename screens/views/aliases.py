"""A domain's alias domains (vpopmail's `vaddaliasdomain`): every address of the domain is also
valid at each of them. The list with the pack's counter (`Utilisé : n/max`), an alias added, an
alias's own page (what it is an alias of, its proof and what to publish, its "Check now"), its
delete. Every alias is fetched through its target, which `domain_screen` fetched for the seat:
whoever manages the domain manages its aliases (its admin too, as its other names)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from hosting.models import Domain
from hosting.usage import usage_label
from provisioning.domains import alias_domain_create, domain_delete
from provisioning.models import sync_state
from screens.forms.domain import AliasDomainForm
from screens.kit import DomainContext, apply_changes, confirm_delete, domain_screen
from screens.views.client import check_now


def _alias(ctx: DomainContext, pk: int) -> Domain:
    """An alias domain of the screen's domain (404 otherwise: another domain's, or none)."""
    return get_object_or_404(ctx.domain.alias_domains.select_related("sync", "pack__mail_host"), pk=pk)


def _counter(ctx: DomainContext) -> tuple[str, bool]:
    """The pack's alias domains as `Utilisé : n/max`, and whether the pack is full."""
    pack = ctx.pack
    limit = pack.plan.max_alias_domains
    return usage_label(pack.used_alias_domains, limit), limit != -1 and pack.used_alias_domains >= limit


@domain_screen
def alias_domain_list(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    aliases = ctx.domain.alias_domains.select_related("sync", "pack__mail_host").order_by("name")
    usage, full = _counter(ctx)
    return render(request, "mail/alias_domain_list.html", ctx.page(
        aliases=aliases, usage=usage, full=full, limit=ctx.pack.plan.max_alias_domains))


@require_http_methods(["GET", "POST"])
@domain_screen
def alias_domain_add(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    form = AliasDomainForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        added: list[Domain] = []
        if apply_changes(form, [("name", lambda: added.append(alias_domain_create(
                domain=ctx.domain, name=form.cleaned_data["name"], acting_user=ctx.seat)))]):
            messages.success(request, _("%(alias)s is now an alias domain of %(name)s. Prove it yours: its mail "
                                        "server serves it once proven.") % {
                "alias": added[0].unicode_name, "name": ctx.domain.unicode_name})
            return redirect("screens:alias_domain", pk=ctx.domain.pk, obj=added[0].pk)
    usage, full = _counter(ctx)
    return render(request, "mail/alias_domain_add.html", ctx.page(form=form, usage=usage, full=full),
                  status=400 if form.errors else 200)


@domain_screen
def alias_domain(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    alias = _alias(ctx, obj)
    state, error = sync_state(getattr(alias, "sync", None), alias.revision)  # its own state, asked through its target
    return render(request, "mail/alias_domain.html", ctx.page(
        alias=alias, check_url=reverse("screens:alias_domain_check", args=[ctx.domain.pk, alias.pk]),
        state=state, error=error,
        state_url=f"{reverse('screens:alias_domain_state', args=[ctx.domain.pk, alias.pk])}?revision={alias.revision}"))


@require_POST
@domain_screen
def alias_domain_check(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    alias = _alias(ctx, obj)
    check_now(request, alias, ctx.seat)
    if request.POST.get("back") == "pack" and getattr(request, "mailbox", None) is None:  # the pack page's button
        return redirect("screens:pack", pk=alias.pack_id)
    return redirect("screens:alias_domain", pk=ctx.domain.pk, obj=alias.pk)


@require_http_methods(["GET", "POST"])
@domain_screen
def alias_domain_delete(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    alias = _alias(ctx, obj)
    names = {"alias": alias.unicode_name, "name": ctx.domain.unicode_name}
    return confirm_delete(
        request, ctx, alias, delete=lambda: domain_delete(domain=alias, acting_user=ctx.seat),
        back="screens:alias_domains",
        question=_("Delete the alias domain %(alias)s? Mail to its addresses is no longer delivered to "
                   "%(name)s.") % names,
        done=_("The alias domain %(alias)s was deleted.") % names)
