"""The QmailAdmin-style login, the standalone password page and a mailbox user's own pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from hosting.views import home_of_mailbox
from mail.auth import TooManyAttempts, authenticate_mailbox, login_mailbox, logout_mailbox
from mail.forms import MailboxLoginForm, OwnPasswordForm, StandalonePasswordForm
from mail.screen_forms import OwnAccountForm
from mail.services import mailbox_set_password, mailbox_set_real_name
from mail.views.domain import apply_changes
from mail.views.mailboxes import routing_calls
from mailhost.passwords import verify_password
from provisioning.models import sync_state


def mailbox_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.mailbox is None:
            messages.info(request, _("Please log in."))
            return redirect("mail:login")
        return view(request, *args, **kwargs)

    return wrapper


def _authenticated(request: HttpRequest, form: Any, account: str, domain: str, password: str) -> Any:
    """The mailbox these credentials open (throttled: mail.auth), or None with the reason on the form."""
    try:
        mailbox = authenticate_mailbox(request, account, domain, password)
    except TooManyAttempts:
        form.add_error(None, _("Too many failed attempts: wait a few minutes before trying again."))
        return None
    if mailbox is None:
        form.add_error(None, _("Invalid login."))
    return mailbox


def login(request: HttpRequest) -> HttpResponse:
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
def logout(request: HttpRequest) -> HttpResponse:
    logout_mailbox(request)
    return redirect("mail:login")


def _me_context(mailbox: Any, form: Any, account_form: Any = None) -> dict[str, Any]:
    state, error = sync_state(getattr(mailbox.domain, "sync", None), mailbox.revision)
    return {"mailbox": mailbox, "form": form, "state": state, "error": error,
            "account_form": account_form or OwnAccountForm(initial=_own_initial(mailbox))}


def _own_initial(mailbox: Any) -> dict[str, Any]:
    return {
        "real_name": mailbox.real_name, "routing": mailbox.routing, "forward_to": "\n".join(mailbox.forward_to),
        "keep_copy": mailbox.keep_copy, "vacation_enabled": mailbox.vacation_enabled,
        "vacation_subject": mailbox.vacation_subject, "vacation_message": mailbox.vacation_message,
        "vacation_start": mailbox.vacation_start, "vacation_end": mailbox.vacation_end,
    }


@require_http_methods(["GET", "POST"])
@mailbox_required
def me(request: HttpRequest) -> HttpResponse:
    """A mailbox user's own account: real name, password (the current one asked), routing and
    vacation; the quota used, read only. Nothing else of the domain."""
    mailbox = request.mailbox
    if request.method != "POST":
        return render(request, "mail/me.html", _me_context(mailbox, OwnPasswordForm()))
    form = OwnAccountForm(request.POST, initial=_own_initial(mailbox))
    if form.is_valid():
        data = form.cleaned_data
        calls = [("real_name", lambda: mailbox_set_real_name(
            mailbox=mailbox, real_name=data["real_name"], acting_user=mailbox)),
            *routing_calls(mailbox, data, mailbox)]
        if data["password1"]:
            if not verify_password(data["current_password"], mailbox.password_hash):
                form.add_error("current_password", _("Your current password is not this one."))
            calls.append(("password1", lambda: mailbox_set_password(
                mailbox=mailbox, password=data["password1"], acting_user=mailbox)))
        if not form.errors and apply_changes(form, calls):
            if data["password1"]:
                login_mailbox(request, mailbox)  # keep this session, end the others
            messages.success(request, _("Your account was modified."))
            return redirect("mail:me")
        mailbox.refresh_from_db()
    return render(request, "mail/me.html", _me_context(mailbox, OwnPasswordForm(), form), status=400)


@require_POST
@mailbox_required
def me_password(request: HttpRequest) -> HttpResponse:
    form = OwnPasswordForm(request.POST)
    if form.is_valid() and not verify_password(form.cleaned_data["current_password"], request.mailbox.password_hash):
        form.add_error("current_password", _("Your current password is not this one."))
    if form.is_valid():
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
            return redirect("mail:me")
    return render(request, "mail/me.html", _me_context(request.mailbox, form), status=400)


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
                return redirect("mail:login")
    status = 200 if not form.errors else 400
    return render(request, "mail/change_password.html", {"form": form}, status=status)
