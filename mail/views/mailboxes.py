"""A domain's POP accounts ("Comptes Pop"): the list, add, modify, delete."""

from __future__ import annotations

import string

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_tables2 import RequestConfig

from hosting.roles import Role, role_of
from mail import services
from mail.access import get_mailbox_in
from mail.models import CatchAll, CatchAllMode, Mailbox, Routing, folded
from mail.screen_forms import MailboxDeleteForm, MailboxModifyForm, RenameForm
from mail.tables import MailboxTable
from mail.views.domain import DomainContext, apply_changes, domain_screen
from provisioning.models import sync_state

INDEX = string.digits + string.ascii_lowercase  # QmailAdmin's "Index : 0 1 ... z"
LIST_COLUMNS = ("pk", "local_part", "real_name", "quota_mb", "quota_used_bytes", "enabled", "domain_id")


def catchall_status(catchall: CatchAll | None) -> str:
    """The status line above the list ("E-mail inconnu : rejeté", ...)."""
    if catchall is None or catchall.mode == CatchAllMode.BOUNCE:
        return str(CatchAllMode.BOUNCE.label)
    if catchall.mode == CatchAllMode.DELETE:
        return str(CatchAllMode.DELETE.label)
    return _("Unknown e-mail: delivered to %(target)s") % {"target": catchall.target}


@domain_screen
def mailbox_list(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    rows = Mailbox.objects.visible_to(ctx.seat).filter(domain=ctx.domain).only(*LIST_COLUMNS).order_by("local_part")
    letter = request.GET.get("index", "")
    if len(letter) == 1 and letter in INDEX:
        rows = rows.filter(local_part__startswith=letter)
    query = request.GET.get("q", "").strip()[:100]
    if query:
        rows = rows.filter(search_name__contains=folded(query))
    catchall = CatchAll.objects.visible_to(ctx.seat).filter(domain=ctx.domain).first()
    local = catchall.target if catchall is not None and catchall.mode == CatchAllMode.MAILBOX else None
    table = MailboxTable(rows, domain_pk=ctx.domain.pk, catchall_local=local)
    RequestConfig(request, paginate={"per_page": 50}).configure(table)
    return render(request, "mail/mailbox_list.html", ctx.page(
        table=table, feature=ctx.feature("mailboxes"), index=INDEX, letter=letter, query=query,
        catchall_status=catchall_status(catchall), may_set_catchall=True,
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


def routing_calls(mailbox: Mailbox, data: dict, seat: object) -> list:
    """The service calls of the routing and vacation fields (the admin's page and the user's own)."""
    return [
        ("forward_to", lambda: services.mailbox_set_routing(
            mailbox=mailbox, routing=data["routing"], forward_to=data["forward_to"],
            keep_copy=data["keep_copy"], acting_user=seat)),
        ("vacation_message", lambda: services.mailbox_set_vacation(
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
            calls.append(("password1", lambda: services.mailbox_set_password(
                mailbox=mailbox, password=data["password1"], acting_user=seat)))
        if apply_changes(form, calls):
            messages.success(request, _("%(address)s was modified.") % {"address": mailbox.address})
            return redirect("mail:mailbox_modify", pk=ctx.domain.pk, obj=mailbox.pk)
        mailbox.refresh_from_db()  # the refused change rolled back: show what is stored
    state, error = sync_state(getattr(ctx.domain, "sync", None), mailbox.revision)
    return render(request, "mail/mailbox_modify.html", ctx.page(
        form=form, mailbox=mailbox, state=state, error=error, routing_forward=Routing.FORWARD,
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
        if apply_changes(form, [("redirect_to", lambda: services.mailbox_delete(
            mailbox=mailbox, redirect_to=data["redirect_to"], acting_user=ctx.seat, **extra,
        ))]):
            messages.success(request, _("The POP account %(address)s was deleted.") % {"address": address})
            return redirect("mail:mailboxes", pk=ctx.domain.pk)
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
            return redirect("mail:mailbox_modify", pk=ctx.domain.pk, obj=mailbox.pk)
    for error in form.errors.get("new_local_part", []) + form.non_field_errors():
        messages.error(request, error)
    return redirect("mail:mailbox_modify", pk=ctx.domain.pk, obj=mailbox.pk)
