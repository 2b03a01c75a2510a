"""`{% dns_checks domain %}`: a domain's last DNS checks (MX, SPF, DKIM, DMARC: hosting.dnscheck),
each green, red or grey with what was found and, when red, the record to publish; the last
check's time and the "Check now" button. The domain's menu, an alias domain's page and the
Espace Client's pack page (`compact`: one line, the details folded) show it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import template
from django.conf import settings
from django.utils.translation import gettext as _

from hosting import dnscheck
from hosting.models import Domain
from provisioning.models import DnsCheck

register = template.Library()


@dataclass(frozen=True)
class Shown:
    title: str
    status: str
    label: str
    message: str
    found: list[str]
    publish: list[dict[str, str]]


def last_check(domain: Domain) -> DnsCheck | None:
    """The domain's stored check (select_related("dns_check") spares the query), or None."""
    try:
        return domain.dns_check
    except DnsCheck.DoesNotExist:
        return None


def _label(status: str) -> str:
    labels: dict[str, str] = {dnscheck.OK: _("OK"), dnscheck.BAD: _("To fix"),
                              dnscheck.UNKNOWN: _("Could not check"), dnscheck.NONE: _("No key yet")}
    return labels.get(status, _("Could not check"))


def _title(check: dict[str, Any]) -> str:
    if check.get("selector"):
        return _("DKIM (selector %(selector)s)") % {"selector": check["selector"]}
    return str(check.get("kind", "")).upper()


LOOKUP_REASONS = frozenset({"no_such_domain", "lookup_failed"})


def shown_checks(found: DnsCheck | None) -> list[Shown]:
    if found is None or dnscheck.summary(found.results) is None:
        return []
    shown = []
    for check in found.results.get("checks", []):
        status = str(check.get("status", dnscheck.UNKNOWN))
        code = str(check.get("reason", ""))
        reason = dnscheck.REASONS.get(code, "")
        # A failed lookup's "found" is the resolver's own sentence, in English: the reason, in the
        # user's language, says it; the sentence stays in the stored result for support.
        texts = [] if code in LOOKUP_REASONS else [str(text) for text in check.get("found", [])]
        shown.append(Shown(title=_title(check), status=status, label=_label(status), message=str(reason),
                           found=texts,
                           publish=[{k: str(v) for k, v in record.items()} for record in check.get("publish", [])]
                           if status == dnscheck.BAD else []))
    return shown


@register.inclusion_tag("includes/dns_checks.html", takes_context=True)
def dns_checks(context: dict[str, Any], domain: Domain, back: str = "menu", check_url: str = "",
               compact: bool = False) -> dict[str, Any]:
    """`check_url`: where "Check now" posts (an alias domain's: `screens:alias_dns_check`), else
    the domain's `screens:dns_check`; `back`: the page it comes back to ("pack" or "menu")."""
    found = last_check(domain)
    checks = shown_checks(found)
    return {
        "domain": domain,
        "found": found,
        "checks": checks,
        "summary": dnscheck.summary(found.results) if found is not None else None,
        "bad": sum(check.status == dnscheck.BAD for check in checks),
        "back": back,
        "check_url": check_url,
        "compact": compact,
        "every": max(1, settings.DNS_CHECK_SECONDS // 60),
        "csrf_token": context.get("csrf_token"),
    }
