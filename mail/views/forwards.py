"""A domain's forwards ("Redirections"): the list, add, modify (add or remove a destination),
delete."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_tables2 import RequestConfig

from mail import services
from mail.access import get_forward_in
from mail.models import Forward, Mailbox
from mail.screen_forms import DestinationForm, ForwardCreateForm
from mail.tables import ForwardTable
from mail.views.domain import DomainContext, apply_changes, confirm_delete, domain_screen
from mail.views.mailboxes import INDEX
from provisioning.models import sync_state


@domain_screen
def forward_list(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    rows = Forward.objects.visible_to(ctx.seat).filter(domain=ctx.domain).order_by("local_part")
    letter = request.GET.get("index", "")
    if len(letter) == 1 and letter in INDEX:
        rows = rows.filter(local_part__startswith=letter)
    query = request.GET.get("q", "").strip().lower()[:100]
    if query:
        rows = rows.filter(local_part__contains=query)
    table = ForwardTable(rows, domain_pk=ctx.domain.pk, domain_name=ctx.domain.name, mailboxes=set())
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    # The local destinations of this page only: whether each account still exists (one query).
    page = list(table.page.object_list) if table.page else []
    locals_ = {d.rpartition("@")[0] for row in page for d in row.record.destinations
               if d.rpartition("@")[2] == ctx.domain.name}
    table.mailboxes = set(Mailbox.objects.visible_to(ctx.seat).filter(domain=ctx.domain, local_part__in=locals_)
                          .values_list("local_part", flat=True)) if locals_ else set()
    return render(request, "mail/forward_list.html", ctx.page(
        table=table, feature=ctx.feature("forwards"), index=INDEX, letter=letter, query=query))


@require_http_methods(["GET", "POST"])
@domain_screen
def forward_create(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    form = ForwardCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if apply_changes(form, [("local_part", lambda: services.forward_create(
            domain=ctx.domain, local_part=data["local_part"], destinations=data["destinations"],
            acting_user=ctx.seat,
        ))]):
            messages.success(request, _("The forward %(name)s@%(domain)s was created.") % {
                "name": data["local_part"].strip().lower(), "domain": ctx.domain.unicode_name})
            return redirect("mail:forwards", pk=ctx.domain.pk)
    return render(request, "mail/forward_create.html", ctx.page(form=form, feature=ctx.room("forwards")),
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@domain_screen
def forward_modify(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    """The destinations, each with its delete button (not the last one), and "add a destination"."""
    forward = get_forward_in(ctx.seat, ctx.domain, obj)
    form = DestinationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        destinations = [*forward.destinations, form.cleaned_data["destination"]]
        if apply_changes(form, [("destination", lambda: services.forward_set_destinations(
            forward=forward, destinations=destinations, acting_user=ctx.seat,
        ))]):
            messages.success(request, _("%(address)s was modified.") % {"address": str(forward)})
            return redirect("mail:forward_modify", pk=ctx.domain.pk, obj=forward.pk)
        forward.refresh_from_db()
    state, error = sync_state(getattr(ctx.domain, "sync", None), forward.revision)
    return render(request, "mail/forward_modify.html", ctx.page(
        form=form, forward=forward, state=state, error=error), status=400 if form.errors else 200)


@require_POST
@domain_screen
def forward_remove_destination(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    forward = get_forward_in(ctx.seat, ctx.domain, obj)
    removed = request.POST.get("destination", "")
    if removed not in forward.destinations:
        messages.error(request, _("This destination is not one of the forward's."))
    elif len(forward.destinations) == 1:
        messages.error(request, _("Cannot delete the last destination: delete the forward instead."))
    else:
        form = DestinationForm()
        if apply_changes(form, [(None, lambda: services.forward_set_destinations(
            forward=forward, destinations=[d for d in forward.destinations if d != removed],
            acting_user=ctx.seat,
        ))]):
            messages.success(request, _("%(address)s was modified.") % {"address": str(forward)})
        else:
            messages.error(request, " ".join(form.non_field_errors()))
    return redirect("mail:forward_modify", pk=ctx.domain.pk, obj=forward.pk)


@require_http_methods(["GET", "POST"])
@domain_screen
def forward_delete(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    forward = get_forward_in(ctx.seat, ctx.domain, obj)
    address = {"address": str(forward)}
    return confirm_delete(
        request, ctx, forward, delete=lambda: services.forward_delete(forward=forward, acting_user=ctx.seat),
        back="mail:forwards", question=_("Delete the forward %(address)s?") % address,
        done=_("The forward %(address)s was deleted.") % address)
