"""`{% domain_ownership domain %}`: whether a domain is proven its customer's and, until it is, the
record to publish, the last check and the "Check now" button (the Espace Client's pack page,
which is hosting's and cannot import provisioning, and the domain's menu)."""

from __future__ import annotations

from typing import Any

from django import template

from hosting.models import Domain
from provisioning.domains import proof_record

register = template.Library()


@register.inclusion_tag("includes/domain_ownership.html", takes_context=True)
def domain_ownership(context: dict[str, Any], domain: Domain, back: str = "menu",
                     check_url: str = "") -> dict[str, Any]:
    """`check_url`: where "Check now" posts (an alias domain's own: `screens:alias_domain_check`),
    else the domain's `screens:domain_check`."""
    name, text = proof_record(domain)
    return {
        "domain": domain,
        "record_name": name,
        "record_text": text,
        "mail_host": domain.pack.mail_host.fqdn if domain.verified_at is None else "",
        "back": back,
        "check_url": check_url,
        "csrf_token": context.get("csrf_token"),
    }
