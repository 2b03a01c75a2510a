"""A list's members: subscribers, moderators, digest subscribers and subscribers without mail (mlmmj's
"nomail": they may post and get no mail), one kind a page, searched and
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

from hosting.services import has_room
from lists import services
from lists.access import get_list_in
from lists.models import ListMember, MemberKind
from screens.forms.lists import MemberForm, member_kind
from screens.kit import DomainContext, apply_changes, domain_screen
from screens.tables import MemberTable

HEADINGS = {
    MemberKind.SUBSCRIBER: gettext_lazy("Subscribers of %(address)s (%(count)d)"),
    MemberKind.MODERATOR: gettext_lazy("Moderators of %(address)s (%(count)d)"),
    MemberKind.DIGEST: gettext_lazy("Digest subscribers of %(address)s (%(count)d)"),
    MemberKind.NOMAIL: gettext_lazy("Subscribers without mail of %(address)s (%(count)d)"),
}

ALREADY = {
    MemberKind.SUBSCRIBER: gettext_lazy("%(address)s is already subscribed: nothing was added."),
    MemberKind.MODERATOR: gettext_lazy("%(address)s is already a moderator: nothing was added."),
    MemberKind.DIGEST: gettext_lazy("%(address)s is already subscribed to the digest: nothing was added."),
    MemberKind.NOMAIL: gettext_lazy("%(address)s is already a subscriber without mail: nothing was added."),
}
NO_MATCH = {
    MemberKind.SUBSCRIBER: gettext_lazy("No subscriber matches “%(query)s”."),
    MemberKind.MODERATOR: gettext_lazy("No moderator matches “%(query)s”."),
    MemberKind.DIGEST: gettext_lazy("No digest subscriber matches “%(query)s”."),
    MemberKind.NOMAIL: gettext_lazy("No subscriber without mail matches “%(query)s”."),
}


def _kind(request: HttpRequest) -> MemberKind:
    return member_kind(request.GET.get("kind") or request.POST.get("kind"))


@require_http_methods(["GET", "POST"])
@domain_screen
def members(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    """QmailAdmin's "Afficher / Ajouter un abonné" (and the moderators', the digest subscribers')."""
    mailing_list = get_list_in(ctx.seat, ctx.domain, obj)
    kind = _kind(request)
    form = MemberForm(request.POST if request.method == "POST" else None)
    back = f"{reverse('screens:members', args=[ctx.domain.pk, mailing_list.pk])}?kind={kind}"
    if request.method == "POST" and form.is_valid():
        address = form.cleaned_data["address"]
        if ListMember.objects.visible_to(ctx.seat).filter(mailing_list=mailing_list, kind=kind,
                                                          address=address).exists():
            messages.info(request, ALREADY[kind] % {"address": address})  # not "added": nothing changed
            return redirect(back)
        if apply_changes(form, [("address", lambda: services.list_member_add(
            mailing_list=mailing_list, address=address, kind=kind, acting_user=ctx.seat,
        ))]):
            messages.success(request, _("%(address)s was added.") % {"address": address})
            return redirect(back)
    rows = ListMember.objects.visible_to(ctx.seat).filter(mailing_list=mailing_list, kind=kind).only(
        "pk", "address", "created_at", "mailing_list_id").order_by("address")
    query = request.GET.get("q", "").strip().lower()[:100]
    if query:
        rows = rows.filter(address__contains=query)
    remove_url = reverse("screens:member_remove", args=[ctx.domain.pk, mailing_list.pk])
    table = MemberTable(rows, remove_url=remove_url, kind=kind)
    RequestConfig(request, paginate={"per_page": 50}).configure(table)
    # A list at its plan's limit says so instead of the add form (the service checks it again, locked).
    # The plan read with the domain: the pack's counters (ctx.pack) are not shown here.
    full = not has_room(ctx.domain.pack.plan.max_list_members,
                        ListMember.objects.visible_to(ctx.seat).filter(mailing_list=mailing_list))
    return render(request, "lists/members.html", ctx.page(
        mailing_list=mailing_list, kind=kind, kinds=MemberKind.choices,
        heading=HEADINGS[kind] % {"address": mailing_list, "count": table.paginator.count},
        table=table, form=form, query=query, remove_url=remove_url, full=full,
        no_match=NO_MATCH[kind] % {"query": query} if query and not table.paginator.count else "",
    ), status=400 if form.errors else 200)


REMOVE_QUESTIONS = {
    MemberKind.SUBSCRIBER: gettext_lazy("Remove the subscriber %(address)s from the list %(list)s?"),
    MemberKind.MODERATOR: gettext_lazy("Remove the moderator %(address)s from the list %(list)s?"),
    MemberKind.DIGEST: gettext_lazy("Remove the digest subscriber %(address)s from the list %(list)s?"),
    MemberKind.NOMAIL: gettext_lazy("Remove the subscriber without mail %(address)s from the list %(list)s?"),
}


@require_POST
@domain_screen
def member_remove(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    """A row's "Delete" asks first (the address travels in the POST, never in a URL); the answer
    `confirm` removes it. A GET removes nothing (405)."""
    mailing_list = get_list_in(ctx.seat, ctx.domain, obj)
    kind, address = _kind(request), request.POST.get("address", "")[:320]
    back = f"{reverse('screens:members', args=[ctx.domain.pk, mailing_list.pk])}?kind={kind}"
    if request.POST.get("confirm") != "yes":
        return render(request, "lists/member_remove.html", ctx.page(
            mailing_list=mailing_list, kind=kind, address=address, back=back,
            question=REMOVE_QUESTIONS[kind] % {"address": address, "list": mailing_list}))
    services.list_member_remove(mailing_list=mailing_list, address=address, kind=kind, acting_user=ctx.seat)
    messages.success(request, _("%(address)s was removed.") % {"address": address})
    return redirect(back)
