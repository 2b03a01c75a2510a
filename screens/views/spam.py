"""Spam filtering of the domain's incoming mail (rspamd on its mail host): off, mark the subject,
file in the Junk folder or refuse at SMTP, from a score; senders always allowed or always refused.
Domain admins and above (the domain's page)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from mail import services
from mail.models import SpamFilter, SpamMode
from screens.forms.domain import SpamFilterForm
from screens.kit import DomainContext, apply_changes, domain_screen


@require_http_methods(["GET", "POST"])
@domain_screen
def spam_filter(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    current = SpamFilter.objects.visible_to(ctx.seat).filter(domain=ctx.domain).first()
    initial = {"mode": SpamMode.OFF, "score": "6.0", "allow": "", "block": ""} if current is None else {
        "mode": current.mode, "score": current.score, "allow": "\n".join(current.allow),
        "block": "\n".join(current.block)}
    form = SpamFilterForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if apply_changes(form, [({"": None, "mode": "mode", "score": "score", "allow": "allow", "block": "block"},
                                 lambda: services.spam_filter_set(
                                     domain=ctx.domain, mode=data["mode"], score=data["score"], allow=data["allow"],
                                     block=data["block"], acting_user=ctx.seat))]):
            messages.success(request, _("Spam filtering saved."))
            return redirect("screens:spam_filter", pk=ctx.domain.pk)
    return render(request, "mail/spam_filter.html", ctx.page(
        form=form, **ctx.sync(current.revision if current else 0),
    ), status=400 if form.errors else 200)
