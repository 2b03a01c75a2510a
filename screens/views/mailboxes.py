"""A domain's POP accounts ("Comptes Pop"): the list, add (QmailAdmin's "Nouveau compte Pop", with
its "subscribe to these lists" checkboxes), modify, rename, delete. A new account and its
subscriptions are one change: when the account is refused, no subscription is left behind (the
fault of QmailAdmin, which subscribed first)."""

from __future__ import annotations

import string
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from django.contrib import messages
from django.db.models import BigIntegerField, F, QuerySet
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_tables2 import RequestConfig

from hosting.roles import Role, Seat, role_of
from lists.models import MailingList
from lists.services import list_member_add
from mail import services
from mail.access import get_mailbox_in
from mail.models import CatchAll, CatchAllMode, Mailbox, Routing, folded
from screens.forms.domain import MailboxDeleteForm, MailboxModifyForm, RenameForm
from screens.forms.lists import MailboxWithListsForm
from screens.kit import DomainContext, Field, apply_changes, domain_screen
from screens.tables import MB, NEAR_FULL_PERCENT, MailboxTable

Rows = TypeVar("Rows", bound=QuerySet)

INDEX = string.digits + string.ascii_lowercase  # QmailAdmin's "Index : 0 1 ... z"
LIST_COLUMNS = ("pk", "local_part", "real_name", "quota_mb", "quota_used_bytes", "enabled", "domain_id")


def catchall_status(catchall: CatchAll | None) -> str:
    """The status line above the list ("E-mail inconnu : rejeté", ...)."""
    if catchall is None or catchall.mode == CatchAllMode.BOUNCE:
        return str(CatchAllMode.BOUNCE.label)
    if catchall.mode == CatchAllMode.DELETE:
        return str(CatchAllMode.DELETE.label)
    return _("Unknown e-mail: delivered to %(target)s") % {"target": catchall.target}


def starting_with(rows: Rows, letter: str) -> Rows:
    """The rows whose name starts with the index's `letter`, read as a range of the index on the
    domain and the name (LIKE 'b%' alone is no index range outside the C collation: PostgreSQL
    read all of a domain's 100,000 names for each letter); LIKE stays the rule."""
    rows = rows.filter(local_part__startswith=letter, local_part__gte=letter)
    following = INDEX.index(letter) + 1  # "0" < ... < "9" < "a" < ... < "z" in every collation
    return rows.filter(local_part__lt=INDEX[following]) if following < len(INDEX) else rows


def only_near_full(rows: Rows) -> Rows:
    """The mailboxes with a quota that use NEAR_FULL_PERCENT of it or more (the host's first quota
    warning: mailhost.quota_warning), in integers: used * 100 >= quota_mb * MB * percent."""
    # In 64-bit integers: quota_mb is a 32-bit column, and PostgreSQL refuses what overflows it.
    return rows.alias(used_100=F("quota_used_bytes") * 100).filter(
        quota_mb__gt=0, used_100__gte=Cast("quota_mb", BigIntegerField()) * (MB * NEAR_FULL_PERCENT))


@domain_screen
def mailbox_list(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    rows = Mailbox.objects.visible_to(ctx.seat).filter(domain=ctx.domain).only(*LIST_COLUMNS).order_by("local_part")
    letter = request.GET.get("index", "")
    if len(letter) == 1 and letter in INDEX:
        rows = starting_with(rows, letter)
    query = request.GET.get("q", "").strip()[:100]
    if query:
        rows = rows.filter(search_name__contains=folded(query))
    near_full = request.GET.get("full") == "1"
    if near_full:
        rows = only_near_full(rows)
    catchall = CatchAll.objects.visible_to(ctx.seat).filter(domain=ctx.domain).first()
    local = catchall.target if catchall is not None and catchall.mode == CatchAllMode.MAILBOX else None
    feature = ctx.feature("mailboxes")
    # Then the pack's count has the domain's.
    every = not (len(letter) == 1 and letter in INDEX) and not query and not near_full
    table = MailboxTable(rows, domain_pk=ctx.domain.pk, catchall_local=local,
                         count=feature.by_domain.get(ctx.domain.pk, 0) if every else None)
    RequestConfig(request, paginate={"per_page": 50}).configure(table)
    return render(request, "mail/mailbox_list.html", ctx.page(
        table=table, feature=feature, index=INDEX, letter=letter, query=query,
        catchall_status=catchall_status(catchall), may_set_catchall=True, near_full=near_full,
        near_full_percent=NEAR_FULL_PERCENT,
    ))


def _modify_initial(mailbox: Mailbox) -> dict[str, object]:
    return {
        "real_name": mailbox.real_name, "quota_mb": str(mailbox.quota_mb or ""), "enabled": mailbox.enabled,
        "allow_pop3": mailbox.allow_pop3, "allow_imap": mailbox.allow_imap, "allow_smtp": mailbox.allow_smtp,
        "routing": mailbox.routing, "forward_to": "\n".join(mailbox.forward_to), "keep_copy": mailbox.keep_copy,
        "vacation_enabled": mailbox.vacation_enabled, "vacation_subject": mailbox.vacation_subject,
        "vacation_message": mailbox.vacation_message, "vacation_start": mailbox.vacation_start,
        "vacation_end": mailbox.vacation_end,
    }


def routing_calls(mailbox: Mailbox, data: dict, seat: Seat) -> list:
    """The service calls of the routing and vacation fields (the admin's page and the user's own)."""
    return [
        ("forward_to", lambda: services.mailbox_set_routing(
            mailbox=mailbox, routing=data["routing"], forward_to=data["forward_to"],
            keep_copy=data["keep_copy"], acting_user=seat)),
        ({"": "vacation_message", "dates": "vacation_end", "days": None}, lambda: services.mailbox_set_vacation(
            mailbox=mailbox, enabled=data["vacation_enabled"], subject=data["vacation_subject"],
            message=data["vacation_message"], start=data["vacation_start"], end=data["vacation_end"],
            days=mailbox.vacation_days, acting_user=seat)),
    ]


@require_http_methods(["GET", "POST"])
@domain_screen
def mailbox_modify(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    mailbox = get_mailbox_in(ctx.seat, ctx.domain, obj)
    form = MailboxModifyForm(request.POST if request.method == "POST" else None, initial=_modify_initial(mailbox))
    if request.method == "POST" and form.is_valid():
        data, seat = form.cleaned_data, ctx.seat
        calls = [
            ("real_name", lambda: services.mailbox_set_real_name(
                mailbox=mailbox, real_name=data["real_name"], acting_user=seat)),
            ("quota_mb", lambda: services.mailbox_set_quota(
                mailbox=mailbox, quota_mb=data["quota_mb"] or 0, acting_user=seat)),
            ("enabled", lambda: services.mailbox_set_access(
                mailbox=mailbox, enabled=data["enabled"], allow_pop3=data["allow_pop3"],
                allow_imap=data["allow_imap"], allow_smtp=data["allow_smtp"], acting_user=seat)),
            *routing_calls(mailbox, data, seat),
        ]
        if data["password1"]:
            password = services.prepare_password(data["password1"])  # hashed before the change's transaction
            calls.append(("password1", lambda: services.mailbox_set_password(
                mailbox=mailbox, password=password, acting_user=seat)))
        if apply_changes(form, calls):
            messages.success(request, _("%(address)s was modified.") % {"address": mailbox.address})
            return redirect("screens:mailbox_modify", pk=ctx.domain.pk, obj=mailbox.pk)
        mailbox.refresh_from_db()  # the refused change rolled back: show what is stored
    return render(request, "mail/mailbox_modify.html", ctx.page(
        form=form, mailbox=mailbox, **ctx.sync(mailbox.revision), routing_forward=Routing.FORWARD,
        rename_form=RenameForm(initial={"new_local_part": mailbox.local_part},
                               hostmaster=mailbox.local_part == "hostmaster" and ctx.domain.name.endswith(".fr")),
        renamable=mailbox.local_part != "postmaster",
    ), status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@domain_screen
def mailbox_delete(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    """QmailAdmin's "Supprimer l'utilisateur x@domaine ?" with "Oui, rediriger vers :"."""
    mailbox = get_mailbox_in(ctx.seat, ctx.domain, obj)
    form = MailboxDeleteForm(request.POST if request.method == "POST" else None)
    hostmaster_matters = mailbox.local_part == "hostmaster" and ctx.domain.name.endswith(".fr")
    if not hostmaster_matters:
        del form.fields["confirm_hostmaster"]
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        extra = {"confirm_hostmaster": True} if hostmaster_matters and data.get("confirm_hostmaster") else {}
        address = mailbox.address
        # The redirect's refusals on its address; those about the account itself on the whole form.
        fields: Field = {"": "redirect_to", "postmaster": None, "self": None, "hostmaster": None, "limit": None,
                         "pointed_at": None}
        if apply_changes(form, [(fields, lambda: services.mailbox_delete(
            mailbox=mailbox, redirect_to=data["redirect_to"], acting_user=ctx.seat, **extra,
        ))]):
            messages.success(request, _("The POP account %(address)s was deleted.") % {"address": address})
            return redirect("screens:mailboxes", pk=ctx.domain.pk)
    is_self = role_of(ctx.seat) == Role.DOMAIN_ADMIN and ctx.seat.pk == mailbox.pk
    return render(request, "mail/mailbox_delete.html", ctx.page(
        form=form, mailbox=mailbox, hostmaster_matters=hostmaster_matters, is_self=is_self,
    ), status=400 if form.errors else 200)


@require_POST
@domain_screen
def mailbox_rename(request: HttpRequest, ctx: DomainContext, obj: int) -> HttpResponse:
    """Rename an account: its mail follows it on the mail host (mail.rename)."""
    mailbox = get_mailbox_in(ctx.seat, ctx.domain, obj)
    form = RenameForm(request.POST, hostmaster=mailbox.local_part == "hostmaster" and ctx.domain.name.endswith(".fr"))
    if form.is_valid():
        data = form.cleaned_data
        old = mailbox.address
        if apply_changes(form, [("new_local_part", lambda: services.mailbox_rename(
            mailbox=mailbox, new_local_part=data["new_local_part"],
            confirm_hostmaster=data.get("confirm_hostmaster", False), acting_user=ctx.seat,
        ))]):
            mailbox.refresh_from_db()
            messages.success(request, _("%(old)s is now %(new)s; its mail follows it.") % {
                "old": old, "new": mailbox.address})
            return redirect("screens:mailbox_modify", pk=ctx.domain.pk, obj=mailbox.pk)
    for error in form.errors.get("new_local_part", []) + form.non_field_errors():
        messages.error(request, str(error))
    return redirect("screens:mailbox_modify", pk=ctx.domain.pk, obj=mailbox.pk)


@require_http_methods(["GET", "POST"])
@domain_screen
def mailbox_create(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    default = ctx.domain.pack.plan.default_quota_mb
    domain_lists = MailingList.objects.visible_to(ctx.seat).filter(domain=ctx.domain).order_by("name")
    form = MailboxWithListsForm(
        request.POST if request.method == "POST" else None,
        lists=domain_lists if ctx.domain.pack.plan.max_lists else None,
        default_quota=_("%(quota)d MB") % {"quota": default} if default else _("unlimited"))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        address = f"{data['local_part'].strip().lower()}@{ctx.domain.name}"
        password = services.prepare_password(data["password1"])  # hashed before the change's transaction
        calls: list[tuple[Field, Callable[[], object]]] = [
            ({"quota": "quota_mb", "": "local_part"}, lambda: services.mailbox_create(
                domain=ctx.domain, local_part=data["local_part"], password=password,
                real_name=data["real_name"], quota_mb=data["quota_mb"] or None, acting_user=ctx.seat,
            ))]
        calls += [("lists", partial(list_member_add, mailing_list=ml, address=address, acting_user=ctx.seat))
                  for ml in data.get("lists", [])]
        if apply_changes(form, calls):
            messages.success(request, _("The POP account %(address)s was created.") % {
                "address": f"{data['local_part'].strip().lower()}@{ctx.domain.unicode_name}"})
            return redirect("screens:mailboxes", pk=ctx.domain.pk)
    status = 400 if form.errors else 200
    return render(request, "mail/mailbox_create.html", ctx.page(form=form, feature=ctx.room("mailboxes")),
                  status=status)
