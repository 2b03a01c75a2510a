"""What a customer does from the client area ("Espace Client") on the mail of a pack: add a domain
within the pack's limit (with its required accounts), reset a domain's postmaster password. The
people who sell and support packs (resellers, support, operators) may do it too; a mailbox, even
a domain's admin, may not."""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from hosting.access import get_domain_for_user, get_pack_for_user
from hosting.roles import Role, role_of
from hosting.usage import pack_features
from mail import services
from mail.accounts import domain_create_with_accounts
from mail.models import POSTMASTER, Mailbox
from mail.screen_forms import DomainAddForm
from mail.views.domain import apply_changes

PEOPLE = {Role.CUSTOMER, Role.RESELLER, Role.SUPPORT, Role.OPERATOR}


def new_password() -> str:
    """A password to give once: 20 characters of letters and digits, and the classes the strength
    rules ask for."""
    return f"{secrets.token_urlsafe(15)}-7aA"


def _person(request: HttpRequest) -> None:
    if request.mailbox is not None or role_of(request.user) not in PEOPLE:
        raise PermissionDenied


@require_http_methods(["GET", "POST"])
@login_required
def domain_add(request: HttpRequest, pk: int) -> HttpResponse:
    _person(request)
    pack = get_pack_for_user(request.user, pk)
    form = DomainAddForm(request.POST if request.method == "POST" else None)
    full = pack.plan.max_domains != -1 and pack.used_domains >= pack.plan.max_domains
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if apply_changes(form, [({"": "name", "required": "password1", "invalid": "name"},
                                 lambda: domain_create_with_accounts(
            pack=pack, name=data["name"], password=data["password1"], acting_user=request.user))]):
            messages.success(request, _("The domain %(name)s was added with its postmaster account.") % {
                "name": data["name"].strip().lower()})
            return redirect("hosting:pack", pk=pack.pk)
    return render(request, "mail/domain_add.html", {"pack": pack, "form": form, "full": full,
                                                    "features": pack_features(pack)},
                  status=400 if form.errors else 200)


@require_POST
@login_required
def postmaster_reset(request: HttpRequest, pk: int) -> HttpResponse:
    """A new password for the domain's postmaster, shown once on this page (never stored in
    clear, never sent by mail)."""
    _person(request)
    domain = get_domain_for_user(request.user, pk)
    postmaster = Mailbox.objects.visible_to(request.user).filter(domain=domain, local_part=POSTMASTER).first()
    if postmaster is None:
        messages.error(request, _("This domain has no postmaster account."))
        return redirect("hosting:pack", pk=domain.pack_id)
    password = new_password()
    services.mailbox_set_password(mailbox=postmaster, password=password, acting_user=request.user)
    response = render(request, "mail/postmaster_reset.html", {"domain": domain, "mailbox": postmaster,
                                                              "password": password})
    response["Cache-Control"] = "no-store"
    return response
