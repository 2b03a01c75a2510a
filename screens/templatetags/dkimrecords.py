"""`{% dkim_records domain %}`: the DKIM records a domain publishes (name, type, value), its alias
domains' too (the same key under their names); on an alias domain's page, its own (its target's
key). The signing key's record first; during a rotation, the next key's, to publish beside it.
The DNS checks (`{% dns_checks %}`) say whether they are published."""

from __future__ import annotations

from typing import Any

from django import template

from hosting.models import Domain
from provisioning import dkim

register = template.Library()


@register.inclusion_tag("includes/dkim_records.html")
def dkim_records(domain: Domain) -> dict[str, Any]:
    return {"domain": domain, "records": dkim.records(domain)}
