"""The client area ("Espace Client") and a domain's main menu."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django_tables2 import RequestConfig

from hosting.access import get_domain_for_user, get_pack_for_user, seat_of
from hosting.models import Domain, Pack
from hosting.roles import STAFF_ROLES, Role, role_of
from hosting.tables import PackTable
from hosting.usage import pack_features
from mail.views import home_of_mailbox
from provisioning.models import SyncState


def home(request: HttpRequest) -> HttpResponse:
    """Send each seat to its own starting page; visitors to the mailbox login."""
    if request.mailbox is not None:
        return home_of_mailbox(request.mailbox)
    role = role_of(request.user)
    if role in STAFF_ROLES:
        return redirect("admin:index")
    if role == Role.CUSTOMER:
        return redirect("hosting:client")
    return redirect("mail:login")


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
    domains = Domain.objects.visible_to(request.user).filter(pack=pack).order_by("name")
    return render(
        request,
        "hosting/pack_detail.html",
        {"pack": pack, "features": pack_features(pack), "domains": domains},
    )


def domain_menu(request: HttpRequest, pk: int) -> HttpResponse:
    """The domain's main menu (QmailAdmin's "Menu principal")."""
    seat = seat_of(request)
    if role_of(seat) == Role.ANONYMOUS:
        return redirect("mail:login")
    domain = get_domain_for_user(seat, pk)
    pack = get_pack_for_user(seat, domain.pack_id)
    features = [f for f in pack_features(pack) if f.shown]
    sync = getattr(domain, "sync", None)
    state = sync.state_of(domain.revision) if sync else SyncState.PENDING
    return render(request, "hosting/domain_menu.html", {
        "domain": domain, "pack": pack, "features": features, "state": state,
        "error": sync.error if sync and state == SyncState.FAILED else "",
    })
