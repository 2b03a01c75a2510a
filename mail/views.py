"""The QmailAdmin-style login, a domain's main menu and a mailbox's own pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from hosting.access import get_domain_for_user, get_pack_for_user, seat_of
from hosting.roles import Role, role_of
from hosting.usage import pack_features
from hosting.views import home_of_mailbox
from mail.auth import TooManyAttempts, authenticate_mailbox, login_mailbox, logout_mailbox
from mail.forms import MailboxLoginForm, NewPasswordForm, StandalonePasswordForm
from mail.services import mailbox_set_password
from provisioning.models import sync_state


def mailbox_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.mailbox is None:
            messages.info(request, _("Please log in."))
            return redirect("mail:login")
        return view(request, *args, **kwargs)

    return wrapper


def login(request: HttpRequest) -> HttpResponse:
    if request.mailbox is not None:
        return home_of_mailbox(request.mailbox)
    form = MailboxLoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        account, domain = form.cleaned_data["account"], form.cleaned_data["domain"]
        try:
            mailbox = authenticate_mailbox(request, account, domain, form.cleaned_data["password"])
        except TooManyAttempts:
            form.add_error(None, _("Too many failed attempts: wait a few minutes before trying again."))
        else:
            if mailbox is None:
                form.add_error(None, _("Invalid login."))
            else:
                login_mailbox(request, mailbox)
                return home_of_mailbox(mailbox)
    status = 200 if not form.errors else 400
    return render(request, "mail/login.html", {"form": form}, status=status)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    logout_mailbox(request)
    return redirect("mail:login")


def _me_context(mailbox: Any, form: Any) -> dict[str, Any]:
    state, error = sync_state(getattr(mailbox.domain, "sync", None), mailbox.revision)
    return {"mailbox": mailbox, "form": form, "state": state, "error": error}


@mailbox_required
def me(request: HttpRequest) -> HttpResponse:
    return render(request, "mail/me.html", _me_context(request.mailbox, NewPasswordForm()))


@require_POST
@mailbox_required
def me_password(request: HttpRequest) -> HttpResponse:
    form = NewPasswordForm(request.POST)
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
        address, old = form.cleaned_data["address"], form.cleaned_data["old_password"]
        try:
            mailbox = authenticate_mailbox(request, address, "", old)
        except TooManyAttempts:
            form.add_error(None, _("Too many failed attempts: wait a few minutes before trying again."))
        else:
            if mailbox is None:
                form.add_error(None, _("Invalid login."))
            else:
                try:
                    mailbox_set_password(
                        mailbox=mailbox, password=form.cleaned_data["new_password1"],
                        acting_user=mailbox,
                    )
                except ValidationError as error:
                    form.add_error("new_password1", error)
                else:
                    messages.success(request, _("Your password has been changed."))
                    return redirect("mail:login")
    status = 200 if not form.errors else 400
    return render(request, "mail/change_password.html", {"form": form}, status=status)


def domain_menu(request: HttpRequest, pk: int) -> HttpResponse:
    """The domain's main menu (QmailAdmin's "Menu principal")."""
    seat = seat_of(request)
    if role_of(seat) == Role.ANONYMOUS:
        return redirect("mail:login")
    domain = get_domain_for_user(seat, pk)
    pack = get_pack_for_user(seat, domain.pack_id)
    features = [f for f in pack_features(pack) if f.shown]
    state, error = sync_state(getattr(domain, "sync", None), domain.revision)
    return render(request, "mail/domain_menu.html", {
        "domain": domain, "pack": pack, "features": features, "state": state, "error": error,
    })
