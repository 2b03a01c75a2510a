"""A domain's mailing lists ("Listes de diffusion"): the list of lists, create, modify (with the
list's addresses and its text files), delete."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods
from django_tables2 import RequestConfig

from lists import moderation, services
from lists.access import get_list_in
from lists.models import MailingList, MemberKind
from screens.forms.lists import TEXT_LABELS, ListForm, ListTextForm
from screens.kit import DomainContext, apply_changes, confirm_delete, domain_screen
from screens.tables import ListTable

# The addresses a list answers at: mlmmj's own, and the ezmlm-style ones QmailAdmin's lists published.
ADDRESSES = (
    (gettext_lazy("Write to the list"), "", ""),
    (gettext_lazy("Subscribe"), "+subscribe", "-subscribe"),
    (gettext_lazy("Unsubscribe"), "+unsubscribe", "-unsubscribe"),
    (gettext_lazy("Subscribe to the digest"), "+subscribe-digest", "-digest-subscribe"),
    (gettext_lazy("Unsubscribe from the digest"), "+unsubscribe-digest", "-digest-unsubscribe"),
    (gettext_lazy("Help"), "+help", "-help"),
    (gettext_lazy("Owner"), "+owner", "-owner"),
)


def list_addresses(mailing_list: MailingList) -> list[tuple[str, str, str]]:
    """(what, mlmmj's address, the ezmlm-style address) of each of the list's addresses."""
    at = f"@{mailing_list.domain.unicode_name}"
    name = mailing_list.name
    rows = [(str(label), f"{name}{plus}{at}", f"{name}{minus}{at}" if minus else "")
            for label, plus, minus in ADDRESSES]
    if mailing_list.request_address:
        rows.append((_("Commands in the subject"), "", f"{name}-request{at}"))
    return rows


@domain_screen
def list_list(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    rows = (MailingList.objects.visible_to(ctx.seat).filter(domain=ctx.domain)
            .annotate(subscriber_count=Count("members", filter=Q(members__kind=MemberKind.SUBSCRIBER)))
            .only("pk", "name", "posting", "domain_id").order_by("name"))
    table = ListTable(rows, domain_pk=ctx.domain.pk)
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    return render(request, "lists/list_list.html", ctx.page(table=table, feature=ctx.feature("lists")))


@require_http_methods(["GET", "POST"])
@domain_screen
def list_create(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    form = ListForm(request.POST if request.method == "POST" else None,
                    initial={"owner": f"postmaster@{ctx.domain.name}"}, list_name=request.POST.get("name", ""))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        made: list[MailingList] = []
        if apply_changes(form, [({"limit": None, "": "name"}, lambda: made.append(services.list_create(
            domain=ctx.domain, name=data["name"], acting_user=ctx.seat, **form.settings(),
        )))]):
            messages.success(request, _("The mailing list %(address)s was created.") % {"address": str(made[0])})
            return redirect("screens:list_modify", pk=ctx.domain.pk, obj=made[0].pk)
    return render(request, "lists/list_form.html", ctx.page(form=form, feature=ctx.room("lists"),
                                                            mailing_list=None),
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@domain_screen
def list_modify(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    """The list's settings, its addresses, its members by kind, its text files, its held mail."""
    mailing_list = get_list_in(ctx.seat, ctx.domain, obj)
    form = ListForm(request.POST if request.method == "POST" else None, mailing_list=mailing_list)
    if request.method == "POST" and form.is_valid():
        if apply_changes(form, [(None, lambda: services.list_update(
            mailing_list=mailing_list, acting_user=ctx.seat, **form.settings(),
        ))]):
            messages.success(request, _("%(address)s was modified.") % {"address": str(mailing_list)})
            return redirect("screens:list_modify", pk=ctx.domain.pk, obj=mailing_list.pk)
        mailing_list.refresh_from_db()
    counts = dict(mailing_list.members.values_list("kind").annotate(n=Count("pk")).values_list("kind", "n"))
    kinds = [(kind, label, counts.get(kind, 0)) for kind, label in MemberKind.choices]
    moderation.ask_report(mailing_list)  # what the host holds now shows on the next visit
    held = moderation.held_of(mailing_list)[:20]
    return render(request, "lists/list_form.html", ctx.page(
        form=form, mailing_list=mailing_list, **ctx.sync(mailing_list.revision), kinds=kinds, held=held,
        addresses=list_addresses(mailing_list),
        texts=[(name, str(label) % {"name": mailing_list.name}, name in mailing_list.texts)
               for name, label in TEXT_LABELS.items()],
    ), status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@domain_screen
def list_text(request: HttpRequest, ctx: DomainContext, obj: int, name: str) -> HttpResponse:
    """One of the list's text files: the text the panel sends to the host, or empty for mlmmj's own."""
    mailing_list = get_list_in(ctx.seat, ctx.domain, obj)
    if name not in TEXT_LABELS:
        raise Http404
    form = ListTextForm(request.POST if request.method == "POST" else None,
                        initial={"text": mailing_list.texts.get(name, "")})
    if request.method == "POST" and form.is_valid():
        if apply_changes(form, [("text", lambda: services.list_set_text(
            mailing_list=mailing_list, name=name, text=form.cleaned_data["text"], acting_user=ctx.seat,
        ))]):
            messages.success(request, _("%(address)s was modified.") % {"address": str(mailing_list)})
            return redirect("screens:list_modify", pk=ctx.domain.pk, obj=mailing_list.pk)
    return render(request, "lists/list_text.html", ctx.page(
        form=form, mailing_list=mailing_list, text_name=name,
        text_label=str(TEXT_LABELS[name]) % {"name": mailing_list.name}), status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@domain_screen
def list_delete(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    mailing_list = get_list_in(ctx.seat, ctx.domain, obj)
    address = {"address": str(mailing_list)}
    return confirm_delete(
        request, ctx, mailing_list,
        delete=lambda: services.list_delete(mailing_list=mailing_list, acting_user=ctx.seat),
        back="screens:lists", question=_("Delete the mailing list %(address)s, its members and its archive?") % address,
        done=_("The mailing list %(address)s was deleted.") % address)
