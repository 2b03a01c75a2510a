"""`{{ domain|sync_state }}`: where a domain's last change stands on its mail host, for the pages of
the floors below provisioning (the client area's pack page), which cannot import it."""

from __future__ import annotations

from django import template

from hosting.models import Domain
from provisioning.models import SyncState
from provisioning.models import sync_state as state_of

register = template.Library()


@register.filter
def sync_state(domain: Domain) -> SyncState:
    """The state of the domain's last change (read `domain.sync` with select_related)."""
    return state_of(getattr(domain, "sync", None), domain.revision)[0]
