"""A domain's forwards ("Redirections"): the list, add, modify (add or remove a destination),
delete."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Model, Value
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_http_methods, require_POST
from django_tables2 import RequestConfig

from hosting.access import visible
from lists.models import MailingList
from mail import services
from mail.access import get_forward_in
from mail.models import Forward, Mailbox, Robot
from mailhost.render import list_bases
from screens.forms.domain import DestinationForm, ForwardCreateForm
from screens.kit import DomainContext, Field, apply_changes, confirm_delete, domain_screen
from screens.tables import ForwardTable
from screens.views.mailboxes import INDEX, starting_with

# Where the service's refusal goes, by its code: the destinations' own, the limit on the whole form,
# the rest (the name's syntax, "Name already used.") on the name.
FORWARD_FIELDS: Field = {"": "local_part", "limit": None, "destination": "destinations", "required": "destinations",
                         "max_destinations": "destinations", "chain": "destinations", "loop": "destinations"}

KINDS = {"mailbox": "", "forward": _lazy("forward"), "robot": _lazy("mail robot"),
         "list": _lazy("mailing list")}


def what_they_are(ctx: DomainContext, locals_: set[str]) -> dict[str, str]:
    """What each local destination of a page is, said as its cell shows it: "" for a POP account
    (`name+tag` is `name`'s), "forward", "mail robot", "mailing list", or "address of the list x"
    for a list's command addresses (`x+subscribe`, `x-request`...). A name missing from the answer
    does not exist. One query, whatever the page holds."""
    if not locals_:
        return {}
    bases = {base for local in locals_ for base in list_bases(local)}
    names = locals_ | {local.split("+", 1)[0] for local in locals_}
    in_domain = {"domain": ctx.domain}

    def named(model: type[Model], field: str, kind: str, wanted: set[str]) -> Any:
        return (visible(model, ctx.seat).filter(**in_domain, **{f"{field}__in": wanted}).order_by()
                .values_list(field, Value(kind)))

    rows = named(Mailbox, "local_part", "mailbox", names).union(
        named(Forward, "local_part", "forward", names), named(Robot, "local_part", "robot", names),
        named(MailingList, "name", "list", names | bases), all=True)
    kinds = dict(rows)
    found: dict[str, str] = {}
    for local in locals_:
        lists = sorted(base for base in {local.split("+", 1)[0], *list_bases(local)} - {local}
                       if kinds.get(base) == "list")
        if local in kinds:
            found[local] = str(KINDS[kinds[local]])
        elif lists:
            found[local] = _("address of the list %(name)s") % {"name": lists[0]}
        elif "+" in local and local.split("+", 1)[0] in kinds:
            found[local] = str(KINDS[kinds[local.split("+", 1)[0]]])
    return found


@domain_screen
def forward_list(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    rows = Forward.objects.visible_to(ctx.seat).filter(domain=ctx.domain).order_by("local_part")
    letter = request.GET.get("index", "")
    if len(letter) == 1 and letter in INDEX:
        rows = starting_with(rows, letter)
    query = request.GET.get("q", "").strip().lower()[:100]
    if query:
        rows = rows.filter(local_part__contains=query)
    feature = ctx.feature("forwards")
    every = not (len(letter) == 1 and letter in INDEX) and not query  # then the pack's count has the domain's
    table = ForwardTable(rows, domain_pk=ctx.domain.pk, domain_name=ctx.domain.name, known={},
                         count=feature.by_domain.get(ctx.domain.pk, 0) if every else None)
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    page = list(table.page.object_list) if table.page else []
    table.known = what_they_are(ctx, {d.rpartition("@")[0] for row in page for d in row.record.destinations
                                      if d.rpartition("@")[2] == ctx.domain.name})
    return render(request, "mail/forward_list.html", ctx.page(
        table=table, feature=feature, index=INDEX, letter=letter, query=query))


@require_http_methods(["GET", "POST"])
@domain_screen
def forward_create(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    form = ForwardCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if apply_changes(form, [(FORWARD_FIELDS, lambda: services.forward_create(
            domain=ctx.domain, local_part=data["local_part"], destinations=data["destinations"],
            acting_user=ctx.seat,
        ))]):
            messages.success(request, _("The forward %(name)s@%(domain)s was created.") % {
                "name": data["local_part"].strip().lower(), "domain": ctx.domain.unicode_name})
            return redirect("screens:forwards", pk=ctx.domain.pk)
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
            return redirect("screens:forward_modify", pk=ctx.domain.pk, obj=forward.pk)
        forward.refresh_from_db()
    return render(request, "mail/forward_modify.html", ctx.page(
        form=form, forward=forward, **ctx.sync(forward.revision)), status=400 if form.errors else 200)


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
            messages.error(request, " ".join(str(error) for error in form.non_field_errors()))
    return redirect("screens:forward_modify", pk=ctx.domain.pk, obj=forward.pk)


@require_http_methods(["GET", "POST"])
@domain_screen
def forward_delete(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    forward = get_forward_in(ctx.seat, ctx.domain, obj)
    address = {"address": str(forward)}
    return confirm_delete(
        request, ctx, forward, delete=lambda: services.forward_delete(forward=forward, acting_user=ctx.seat),
        back="screens:forwards", question=_("Delete the forward %(address)s?") % address,
        done=_("The forward %(address)s was deleted.") % address)
