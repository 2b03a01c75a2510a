"""The front door (each seat to its own start page) and the client area ("Espace Client"): the
customer's packs with their limits and usage, a pack's domains; what a customer does there on the
mail of a pack: add a domain
within the pack's limit (with its required accounts), reset a domain's postmaster password. The
people who sell and support packs (resellers, support, operators) may do it too; a mailbox, even
a domain's admin, may not."""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_tables2 import RequestConfig

from hosting.access import get_domain_for_user, get_pack_for_user
from hosting.models import Domain, Pack
from hosting.roles import STAFF_ROLES, Role, Seat, role_of
from hosting.usage import pack_features, usage_label
from mail import services
from mail.accounts import domain_create_with_accounts
from mail.auth import PanelRequest
from mail.models import POSTMASTER, Mailbox
from provisioning.domains import CHECK_AGAIN_AFTER, domain_check_ownership
from screens.forms.domain import DomainAddForm
from screens.kit import DomainContext, apply_changes, domain_screen, serves_alias_domains
from screens.tables import PackTable

PEOPLE = {Role.CUSTOMER, Role.RESELLER, Role.SUPPORT, Role.OPERATOR}


def home_of_mailbox(mailbox: Mailbox) -> HttpResponse:
    """A domain admin's start page is its domain's menu, a mailbox user's its own account."""
    if role_of(mailbox) == Role.DOMAIN_ADMIN:
        return redirect("screens:domain", pk=mailbox.domain_id)
    return redirect("screens:me")


def home(request: PanelRequest) -> HttpResponse:
    """Send each seat to its own starting page; visitors to the mailbox login."""
    if request.mailbox is not None:
        return home_of_mailbox(request.mailbox)
    role = role_of(request.user)
    if role in STAFF_ROLES:
        return redirect("admin:index")
    if role == Role.CUSTOMER:
        return redirect("screens:client")
    return redirect("screens:login")


@login_required
def client_area(request: HttpRequest) -> HttpResponse:
    packs = (
        Pack.objects.visible_to(request.user)
        .select_related("plan", "customer", "mail_host")
        .with_usage()
        .order_by("customer__name", "pk")
    )
    table = PackTable(packs)
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    return render(request, "hosting/client_area.html", {"table": table})


@login_required
def pack_detail(request: HttpRequest, pk: int) -> HttpResponse:
    pack = get_pack_for_user(request.user, pk)
    # Its domains, each alias domain after the domain it is an alias of ("alias of X", counted apart).
    domains = (Domain.objects.visible_to(request.user).filter(pack=pack)
               .select_related("sync", "pack__mail_host", "alias_of", "dns_check")
               .order_by(Coalesce("alias_of__name", "name"), F("alias_of").asc(nulls_first=True), "name"))
    return render(
        request,
        "hosting/pack_detail.html",
        {"pack": pack, "features": pack_features(pack), "domains": domains,
         "alias_usage": usage_label(pack.used_alias_domains, pack.plan.max_alias_domains)},
    )


def new_password() -> str:
    """A password to give once: 20 characters of letters and digits, and the classes the strength
    rules ask for."""
    return f"{secrets.token_urlsafe(15)}-7aA"


def _person(request: PanelRequest) -> None:
    if request.mailbox is not None or role_of(request.user) not in PEOPLE:
        raise PermissionDenied


@require_http_methods(["GET", "POST"])
@login_required
def domain_add(request: PanelRequest, pk: int) -> HttpResponse:
    _person(request)
    pack = get_pack_for_user(request.user, pk)
    form = DomainAddForm(request.POST if request.method == "POST" else None)
    full = pack.plan.max_domains != -1 and pack.used_domains >= pack.plan.max_domains
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        password = services.prepare_password(data["password1"])  # hashed before the change's transaction
        added: list[Domain] = []  # the name as the service read it (www. dropped), for the message
        if apply_changes(form, [({"": "name", "required": "password1", "invalid": "name"},
                                 lambda: added.append(domain_create_with_accounts(
            pack=pack, name=data["name"], password=password, acting_user=request.user)))]):
            messages.success(request, _("The domain %(name)s was added with its postmaster account.") % {
                "name": added[0].unicode_name})
            return redirect("screens:pack", pk=pack.pk)
    return render(request, "mail/domain_add.html", {"pack": pack, "form": form, "full": full,
                                                    "features": pack_features(pack)},
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@login_required
def postmaster_reset(request: PanelRequest, pk: int) -> HttpResponse:
    """A new password for the domain's postmaster, shown once on this page (never stored in
    clear, never sent by mail). The password replaced is in use in mail programs: GET (and a POST
    without the confirmation) asks first, saying so; only the confirmed POST replaces it."""
    _person(request)
    domain = get_domain_for_user(request.user, pk)
    postmaster = Mailbox.objects.visible_to(request.user).filter(domain=domain, local_part=POSTMASTER).first()
    if postmaster is None:
        messages.error(request, _("This domain has no postmaster account."))
        return redirect("screens:pack", pk=domain.pack_id)
    if request.method != "POST" or request.POST.get("confirm") != "yes":
        return render(request, "mail/postmaster_confirm.html", {"domain": domain, "mailbox": postmaster})
    password = new_password()
    services.mailbox_set_password(mailbox=postmaster, password=password, acting_user=request.user)
    response = render(request, "mail/postmaster_reset.html", {"domain": domain, "mailbox": postmaster,
                                                              "password": password})
    response["Cache-Control"] = "no-store"
    return response


def check_now(request: HttpRequest, domain: Domain, seat: Seat) -> None:
    """"Check now": whether DNS proves the domain (an alias domain too) its customer's, asked at
    once (outside any transaction, a few seconds at most: hosting.dns), unless it was a moment
    ago; the answer is the page's message."""
    name = domain.unicode_name
    checked = domain.verification_checked_at
    if domain.verified_at is None and checked is not None and timezone.now() - checked < CHECK_AGAIN_AFTER:
        messages.info(request, _("%(name)s was checked a moment ago. Try again in a few seconds.") % {"name": name})
    elif domain.verified_at is not None or domain_check_ownership(domain=domain, acting_user=seat):
        messages.success(request, _("%(name)s is proven yours: its mail server now delivers its mail.") % {
            "name": name})
    else:
        domain.refresh_from_db(fields=["verification_error"])
        messages.error(request, _("%(name)s is not proven yet. The DNS check found: %(found)s") % {
            "name": name, "found": domain.verification_error})


@require_POST
@domain_screen
@serves_alias_domains
def domain_check(request: PanelRequest, ctx: DomainContext) -> HttpResponse:
    """"Check now" (`check_now`): the Espace Client's pack page and the domain's menu (any seat
    that manages the domain) have the button; an alias domain's page has its own
    (`screens:alias_domain_check`)."""
    domain = ctx.domain
    check_now(request, domain, ctx.seat)
    if request.POST.get("back") == "pack" and request.mailbox is None:
        return redirect("screens:pack", pk=domain.pack_id)
    return redirect("screens:domain", pk=domain.pk)
