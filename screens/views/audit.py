"""A domain's audit log, for the seats that may manage the domain, each seeing the events
`AuditEvent.objects.visible_to(seat)` gives it."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django_tables2 import RequestConfig

from hosting.access import get_domain_for_user, seat_of
from hosting.models import AuditEvent
from hosting.roles import Role, role_of
from screens.tables import AUDIT_PER_PAGE, AuditTable


def domain_audit(request: HttpRequest, pk: int) -> HttpResponse:
    """The domain's events, newest first, paged by the database (a constant number of queries)."""
    seat = seat_of(request)
    if role_of(seat) == Role.ANONYMOUS:
        return redirect_to_login(request.get_full_path(), reverse("screens:login"))
    domain = get_domain_for_user(seat, pk)
    events = AuditEvent.objects.visible_to(seat).filter(domain_id=domain.pk).order_by("-created_at", "-pk")
    table = AuditTable(events, caption=_("Events, newest first"))
    RequestConfig(request, paginate={"per_page": AUDIT_PER_PAGE}).configure(table)
    return render(request, "hosting/domain_audit.html", {"domain": domain, "table": table})
