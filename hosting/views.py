"""The front door and the client area ("Espace Client"); a domain's main menu is mail's."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django_tables2 import RequestConfig

from hosting.access import get_pack_for_user
from hosting.models import Domain, Pack
from hosting.roles import STAFF_ROLES, Role, role_of
from hosting.tables import PackTable
from hosting.usage import pack_features


def home_of_mailbox(mailbox: Any) -> HttpResponse:
    """A domain admin's start page is its domain's menu, a mailbox user's its own account."""
    if role_of(mailbox) == Role.DOMAIN_ADMIN:
        return redirect("mail:domain", pk=mailbox.domain_id)
    return redirect("mail:me")


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
    domains = Domain.objects.visible_to(request.user).filter(pack=pack).select_related("sync").order_by("name")
    return render(
        request,
        "hosting/pack_detail.html",
        {"pack": pack, "features": pack_features(pack), "domains": domains},
    )
