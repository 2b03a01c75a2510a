"""The QmailAdmin-style login, the standalone password page and a mailbox user's own pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from mail.auth import (
    MailboxRequest,
    PanelRequest,
    TooManyAttempts,
    authenticate_mailbox,
    check_current_password,
    login_mailbox,
    logout_mailbox,
)
from mail.models import Mailbox
from mail.services import mailbox_set_password, mailbox_set_real_name, prepare_password
from provisioning.models import sync_state
from screens.forms.account import MailboxLoginForm, OwnPasswordForm, StandalonePasswordForm
from screens.forms.domain import OwnAccountForm
from screens.kit import apply_changes
from screens.views.client import home_of_mailbox
from screens.views.mailboxes import routing_calls


def mailbox_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: PanelRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.mailbox is None:
            messages.info(request, _("Please log in."))
            return redirect("screens:login")
        return view(request, *args, **kwargs)

    return wrapper


def _too_many() -> str:
    return _("Too many failed attempts: wait a few minutes before trying again.")


def _authenticated(request: HttpRequest, form: Any, account: str, domain: str, password: str) -> Mailbox | None:
    """The mailbox these credentials open (throttled: mail.auth), or None with the reason on the form."""
    try:
        mailbox = authenticate_mailbox(request, account, domain, password)
    except TooManyAttempts:
        form.add_error(None, _too_many())
        return None
    if mailbox is None:
        form.add_error(None, _("Invalid login."))
    return mailbox


def _current_password_ok(request: MailboxRequest, form: Any, field: str) -> bool:
    """Whether the current password typed in `field` is the logged-in mailbox's, throttled as a
    login (`mail.auth.check_current_password`); else the reason on the field."""
    try:
        if check_current_password(request, request.mailbox, form.cleaned_data[field]):
            return True
    except TooManyAttempts:
        form.add_error(field, _too_many())
        return False
    form.add_error(field, _("Your current password is not this one."))
    return False


def login(request: PanelRequest) -> HttpResponse:
    if request.mailbox is not None:
        return home_of_mailbox(request.mailbox)
    form = MailboxLoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        mailbox = _authenticated(request, form, data["account"], data["domain"], data["password"])
        if mailbox is not None:
            login_mailbox(request, mailbox)
            return home_of_mailbox(mailbox)
    status = 200 if not form.errors else 400
    return render(request, "mail/login.html", {"form": form}, status=status)


@require_POST
def logout(request: PanelRequest) -> HttpResponse:
    logout_mailbox(request)
    return redirect("screens:login")


OWN_PASSWORD_FIELDS = ("current_password", "password1", "password2")


def _me_context(mailbox: Mailbox, account_form: OwnAccountForm | None = None) -> dict[str, Any]:
    """The page's one form: its fields, then its password block (the same form's own fields)."""
    state, error = sync_state(getattr(mailbox.domain, "sync", None), mailbox.revision)
    state_url = f"{reverse('screens:me_state')}?revision={mailbox.revision}"
    account_form = account_form or OwnAccountForm(initial=_own_initial(mailbox))
    fields = account_form.visible_fields()
    return {"mailbox": mailbox, "state": state, "error": error, "state_url": state_url,
            "account_form": account_form,
            "account_fields": [f for f in fields if f.name not in OWN_PASSWORD_FIELDS],
            "password_fields": [f for f in fields if f.name in OWN_PASSWORD_FIELDS]}


def _own_initial(mailbox: Mailbox) -> dict[str, Any]:
    return {
        "real_name": mailbox.real_name, "routing": mailbox.routing, "forward_to": "\n".join(mailbox.forward_to),
        "keep_copy": mailbox.keep_copy, "vacation_enabled": mailbox.vacation_enabled,
        "vacation_subject": mailbox.vacation_subject, "vacation_message": mailbox.vacation_message,
        "vacation_start": mailbox.vacation_start, "vacation_end": mailbox.vacation_end,
    }


@require_http_methods(["GET", "POST"])
@mailbox_required
def me(request: MailboxRequest) -> HttpResponse:
    """A mailbox user's own account: real name, password (the current one asked), routing and
    vacation; the quota used, read only. Nothing else of the domain."""
    mailbox = request.mailbox
    if request.method != "POST":
        return render(request, "mail/me.html", _me_context(mailbox))
    form = OwnAccountForm(request.POST, initial=_own_initial(mailbox))
    if form.is_valid():
        data = form.cleaned_data
        calls = [("real_name", lambda: mailbox_set_real_name(
            mailbox=mailbox, real_name=data["real_name"], acting_user=mailbox)),
            *routing_calls(mailbox, data, mailbox)]
        if data["password1"] and _current_password_ok(request, form, "current_password"):
            password = prepare_password(data["password1"])  # hashed before the change's transaction
            calls.append(("password1", lambda: mailbox_set_password(
                mailbox=mailbox, password=password, acting_user=mailbox)))
        if not form.errors and apply_changes(form, calls):
            if data["password1"]:
                login_mailbox(request, mailbox)  # keep this session, end the others
            messages.success(request, _("Your account was modified."))
            return redirect("screens:me")
        mailbox.refresh_from_db()
    return render(request, "mail/me.html", _me_context(mailbox, form), status=400)


@require_POST
@mailbox_required
def me_password(request: MailboxRequest) -> HttpResponse:
    form = OwnPasswordForm(request.POST)
    if form.is_valid() and _current_password_ok(request, form, "current_password"):
        try:
            mailbox_set_password(
                mailbox=request.mailbox, password=form.cleaned_data["new_password1"],
                acting_user=request.mailbox,
            )
        except ValidationError as error:
            form.add_error("new_password1", error)
        else:
            login_mailbox(request, request.mailbox)  # keep this session, end the others
            messages.success(request, _("Your password has been changed."))
            return redirect("screens:me")
    # /me/ has one password block (its own form's): a refusal here is shown on this form's own page.
    return render(request, "mail/me_password.html", {"mailbox": request.mailbox, "form": form}, status=400)


def change_password(request: HttpRequest) -> HttpResponse:
    """For mailbox users: address, current password, new password twice; no session needed."""
    form = StandalonePasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        mailbox = _authenticated(request, form, form.cleaned_data["address"], "", form.cleaned_data["old_password"])
        if mailbox is not None:
            try:
                mailbox_set_password(mailbox=mailbox, password=form.cleaned_data["new_password1"], acting_user=mailbox)
            except ValidationError as error:
                form.add_error("new_password1", error)
            else:
                messages.success(request, _("Your password has been changed."))
                return redirect("screens:login")
    status = 200 if not form.errors else 400
    return render(request, "mail/change_password.html", {"form": form}, status=status)
