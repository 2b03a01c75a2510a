"""A list's members: subscribers, moderators and digest subscribers, one kind a page, searched and
paged by the database (the same queries at 100 members or 50,000); add one, remove one."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST
from django_tables2 import RequestConfig

from lists import services
from lists.access import get_list_in
from lists.forms import MemberForm, member_kind
from lists.models import ListMember, MemberKind
from lists.tables import MemberTable
from mail.views.domain import DomainContext, apply_changes, domain_screen

HEADINGS = {
    MemberKind.SUBSCRIBER: gettext_lazy("Subscribers of %(address)s (%(count)d)"),
    MemberKind.MODERATOR: gettext_lazy("Moderators of %(address)s (%(count)d)"),
    MemberKind.DIGEST: gettext_lazy("Digest subscribers of %(address)s (%(count)d)"),
}


def _kind(request: HttpRequest) -> str:
    return member_kind(request.GET.get("kind") or request.POST.get("kind"))


@require_http_methods(["GET", "POST"])
@domain_screen
def members(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    """QmailAdmin's "Afficher / Ajouter un abonné" (and the moderators', the digest subscribers')."""
    mailing_list = get_list_in(ctx.seat, ctx.domain, obj)
    kind = _kind(request)
    form = MemberForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        address = form.cleaned_data["address"]
        if apply_changes(form, [("address", lambda: services.list_member_add(
            mailing_list=mailing_list, address=address, kind=kind, acting_user=ctx.seat,
        ))]):
            messages.success(request, _("%(address)s was added.") % {"address": address.strip().lower()})
            return redirect(f"{reverse('lists:members', args=[ctx.domain.pk, mailing_list.pk])}?kind={kind}")
    rows = ListMember.objects.visible_to(ctx.seat).filter(mailing_list=mailing_list, kind=kind).only(
        "pk", "address", "created_at", "mailing_list_id").order_by("address")
    query = request.GET.get("q", "").strip().lower()[:100]
    if query:
        rows = rows.filter(address__contains=query)
    remove_url = reverse("lists:member_remove", args=[ctx.domain.pk, mailing_list.pk])
    table = MemberTable(rows, remove_url=remove_url, kind=kind)
    RequestConfig(request, paginate={"per_page": 50}).configure(table)
    return render(request, "lists/members.html", ctx.page(
        mailing_list=mailing_list, kind=kind, kinds=MemberKind.choices,
        heading=HEADINGS[kind] % {"address": mailing_list, "count": table.paginator.count},
        table=table, form=form, query=query, remove_url=remove_url,
    ), status=400 if form.errors else 200)


@require_POST
@domain_screen
def member_remove(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    mailing_list = get_list_in(ctx.seat, ctx.domain, obj)
    kind, address = _kind(request), request.POST.get("address", "")[:320]
    services.list_member_remove(mailing_list=mailing_list, address=address, kind=kind, acting_user=ctx.seat)
    messages.success(request, _("%(address)s was removed.") % {"address": address})
    return redirect(f"{reverse('lists:members', args=[ctx.domain.pk, mailing_list.pk])}?kind={kind}")
