"""The DNS checks of a domain (issue 18, item 2): MX, SPF, DKIM and DMARC, each ok, not ok or
"could not check", with what was found and, when not ok, the exact record to publish.

Pure functions over a resolver (`hosting.dns`): no database, no Django model. The caller gives
what the panel knows (`DomainFacts`: the name, the pack's mail host, its addresses, the DKIM keys
to look for) and stores the answer (`provisioning.dnscheck`). What the checks say, and why:

- MX: the domain's most preferred MX is the pack's mail host (the ownership proof's comparison,
  `hosting.dns.same_host`); the host only as a backup MX is not ok (mail goes elsewhere first).
- SPF: exactly one `v=spf1` TXT record at the apex (two are a permanent error for receivers), and
  it allows the mail host. The record is evaluated as a receiver would for the host's addresses
  (RFC 7208 order, qualifiers, `all`, `a`, `mx`, `ip4`, `ip6`, `include` and `redirect` followed
  up to the RFC's 10 lookups); what cannot be evaluated honestly here (macros, `exists`, `ptr`,
  a lookup that failed) makes it "could not tell" unless the answer does not depend on it.
- DKIM: for each key the mail host signs with or will sign with, the TXT record at
  `<selector>._domainkey.<name>` carries its `p=` (whitespace aside). An alias domain publishes
  its target's keys under its own name. No key yet: "none" (neither green nor red).
- DMARC: `_dmarc.<name>` has exactly one `v=DMARC1` record.

A domain that does not exist (NXDOMAIN at the apex) or a server that does not answer gives
"could not check" for what depends on it; a missing `_dmarc` or DKIM name (NXDOMAIN) is simply a
missing record. Every text found is kept short and without control characters
(`shown`): a hostile zone cannot fill the database or the page.
"""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import dns.resolver
from django.utils.translation import gettext_lazy as _

from hosting import dns as lookups
from hosting.dkim import record_name, txt_value

Status = Literal["ok", "bad", "unknown", "none"]
OK: Status = "ok"
BAD: Status = "bad"
UNKNOWN: Status = "unknown"
NONE: Status = "none"

FORMAT = 1  # the shape of the stored results (`results` below)
SHOWN_CHARS = 255  # of one text found
SHOWN_RECORDS = 5  # texts found kept per check
SPF_LOOKUPS = 10  # RFC 7208 4.6.4: DNS-querying terms of one evaluation, includes included
DOMAIN_BUDGET_SECONDS = 12.0  # one domain's lookups in all; later ones are given up ("could not check")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# What each reason means, for the page (stored as its code, shown in the reader's language).
REASONS: dict[str, Any] = {
    "mx_ok": _("The MX record names the mail host: mail for the domain arrives there."),
    "mx_missing": _("The domain has no MX record: mail for it does not reach the mail host."),
    "mx_elsewhere": _("The MX records name other mail servers: mail for the domain does not reach the mail host."),
    "mx_backup": _("The mail host is only a backup MX: mail goes first to another server."),
    "no_host_name": _("The pack's mail host has no host name yet: there is nothing to compare with."),
    "no_such_domain": _("The domain does not exist in DNS (no such name)."),
    "lookup_failed": _("The DNS servers gave no answer: the panel checks again later."),
    "spf_ok": _("The SPF record allows the mail host to send the domain's mail."),
    "spf_missing": _("The domain has no SPF record: receivers cannot tell its mail from forgeries."),
    "spf_several": _("The domain has several SPF records, which receivers treat as an error: keep one."),
    "spf_not_allowed": _("The SPF record does not allow the mail host: its mail may be refused or filed as spam."),
    "spf_cannot_tell": _("The SPF record depends on parts the panel does not evaluate (macros, exists, ptr, "
                         "more than 10 lookups, a lookup that failed): check it with your DNS provider."),
    "dkim_ok": _("The DKIM record carries the key the mail host signs with."),
    "dkim_no_key": _("No DKIM key yet: the record to publish is shown here once the key is made."),
    "dkim_missing": _("The DKIM record is not published."),
    "dkim_mismatch": _("The DKIM record carries another key than the mail host's."),
    "dmarc_ok": _("A DMARC record is published."),
    "dmarc_missing": _("The domain has no DMARC record: large mail providers may file its mail as spam."),
    "dmarc_several": _("The domain has several DMARC records, which receivers ignore: keep one."),
}


@dataclass(frozen=True)
class KeyFacts:
    id: int
    selector: str
    public_key: str  # base64, the p= tag


@dataclass(frozen=True)
class DomainFacts:
    """What the checks of one domain need from the panel."""

    id: int
    name: str  # IDNA, no final dot
    host: str  # the pack's mail host's fqdn ("" when it has none)
    host_addresses: tuple[str, ...] = ()  # its A/AAAA, when known
    keys: tuple[KeyFacts, ...] = ()  # the DKIM keys to find published under `name`
    own_keys: bool = True  # the keys are this domain's (an alias domain publishes its target's)


@dataclass
class Outcome:
    """One domain's checks: the stored results, and the DKIM keys seen at their own domain."""

    checks: list[dict[str, Any]]
    seen_keys: list[int] = field(default_factory=list)

    @property
    def results(self) -> dict[str, Any]:
        return {"format": FORMAT, "checks": self.checks}


def shown(text: str) -> str:
    """A text found in DNS as the database and the page may hold it: its start, control characters
    (NUL included, which PostgreSQL refuses) as U+FFFD."""
    cut = text[:SHOWN_CHARS]
    return CONTROL.sub("\ufffd", cut) + ("…" if len(text) > SHOWN_CHARS else "")


def check_entry(kind: str, status: Status, reason: str, *, found: list[str] | None = None,
           publish: list[tuple[str, str, str]] | None = None, selector: str = "") -> dict[str, Any]:
    return {
        "kind": kind, "status": status, "reason": reason, "selector": selector,
        "found": [shown(text) for text in (found or [])[:SHOWN_RECORDS]],
        "publish": [{"name": name, "type": rtype, "value": value} for name, rtype, value in publish or []],
    }


class Lookups:
    """One domain's lookups: through one resolver, given up once the domain's budget is spent."""

    def __init__(self, using: dns.resolver.Resolver, budget: float = DOMAIN_BUDGET_SECONDS) -> None:
        self.using = using
        self.deadline = time.monotonic() + budget

    def _left(self, name: str) -> None:
        if time.monotonic() > self.deadline:
            raise lookups.LookupFailed(f"{name}: not asked, the domain's check took too long")

    def txt(self, name: str) -> list[str]:
        self._left(name)
        return lookups.txt_records(name, using=self.using)

    def mx(self, name: str) -> list[tuple[int, str]]:
        self._left(name)
        return lookups.mx_records(name, using=self.using)

    def addresses(self, name: str) -> list[str]:
        self._left(name)
        return lookups.addresses(name, using=self.using)


# --------------------------------------------------------------------------------------------------
# MX
# --------------------------------------------------------------------------------------------------


def check_mx(facts: DomainFacts, mx: list[tuple[int, str]] | lookups.LookupFailed) -> dict[str, Any]:
    publish = [(facts.name, "MX", f"10 {facts.host}.")] if facts.host else []
    if isinstance(mx, lookups.NoSuchName):
        return check_entry("mx", UNKNOWN, "no_such_domain", found=[str(mx)])
    if isinstance(mx, lookups.LookupFailed):
        return check_entry("mx", UNKNOWN, "lookup_failed", found=[str(mx)])
    found = [f"{preference} {host}" for preference, host in mx]
    if not facts.host:
        return check_entry("mx", UNKNOWN, "no_host_name", found=found)
    if not mx:
        return check_entry("mx", BAD, "mx_missing", publish=publish)
    best = mx[0][0]
    if any(lookups.same_host(host, facts.host) for preference, host in mx if preference == best):
        return check_entry("mx", OK, "mx_ok", found=found)
    if any(lookups.same_host(host, facts.host) for _preference, host in mx):
        return check_entry("mx", BAD, "mx_backup", found=found, publish=publish)
    return check_entry("mx", BAD, "mx_elsewhere", found=found, publish=publish)


# --------------------------------------------------------------------------------------------------
# SPF
# --------------------------------------------------------------------------------------------------

QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MODIFIER = re.compile(r"^[a-z][a-z0-9_.-]*=", re.IGNORECASE)


def is_spf(text: str) -> bool:
    lowered = text.strip().lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


class SpfEvaluation:
    """Whether an SPF record allows the mail host, as far as it can be told honestly: "pass",
    "fail", "softfail", "neutral" (a receiver's results for mail from the host), or "unknown"."""

    def __init__(self, facts: DomainFacts, look: Lookups, apex_mx: list[tuple[int, str]] | None) -> None:
        self.host = facts.host
        self.networks = [ipaddress.ip_address(address) for address in facts.host_addresses]
        self.look = look
        self.apex = (facts.name, apex_mx)
        self.lookups = 0

    def _count(self) -> bool:
        self.lookups += 1
        return self.lookups <= SPF_LOOKUPS

    def _addresses_match(self, names: list[str], cidr4: int, cidr6: int) -> bool | None:
        if any(lookups.same_host(name, self.host) for name in names):
            return True
        if not self.networks:
            return None
        for name in names[:10]:
            try:
                found = self.look.addresses(name)
            except lookups.LookupFailed:
                return None
            for address in found:
                network = ipaddress.ip_network(f"{address}/{cidr4 if ':' not in address else cidr6}", strict=False)
                if any(ip in network for ip in self.networks):
                    return True
        return False

    def _mechanism(self, name: str, argument: str, domain: str, depth: int) -> bool | None:
        """Whether the host matches the mechanism: True, False, or None (cannot tell)."""
        if "%" in argument:
            return None  # a macro: depends on the message
        target, _slash, cidr = argument.partition("/")
        target = target or domain
        cidr4, _slashes, cidr6 = cidr.partition("//")
        try:
            prefix4 = int(cidr4) if cidr4 else 32
            prefix6 = int(cidr6) if cidr6 else 128
        except ValueError:
            return None
        if not (0 <= prefix4 <= 32 and 0 <= prefix6 <= 128):
            return None  # "a/99": no such network; a receiver's permerror, here "cannot tell"
        if name == "all":
            return True
        if name in ("ip4", "ip6"):
            if not self.networks:
                return None
            try:
                network = ipaddress.ip_network(argument, strict=False)
            except ValueError:
                return None
            return any(ip.version == network.version and ip in network for ip in self.networks)
        if name == "a":
            if not self._count():
                return None
            return self._addresses_match([target], prefix4, prefix6)
        if name == "mx":
            if not self._count():
                return None
            if target == self.apex[0] and self.apex[1] is not None:
                mx = self.apex[1]
            else:
                try:
                    mx = self.look.mx(target)
                except lookups.LookupFailed:
                    return None
            return self._addresses_match([host for _preference, host in mx], prefix4, prefix6)
        if name == "include":
            if not self._count():
                return None
            result = self.evaluate_name(argument, depth + 1)
            return None if result == "unknown" else result == "pass"
        return None  # exists, ptr, or a mechanism this evaluation does not know

    def evaluate_name(self, domain: str, depth: int) -> str:
        if depth > SPF_LOOKUPS:
            return "unknown"
        try:
            records = [text for text in self.look.txt(domain) if is_spf(text)]
        except lookups.LookupFailed:
            return "unknown"
        if len(records) != 1:
            return "unknown"  # none or several: a permanent error of the included record
        return self.evaluate(records[0], domain, depth)

    def evaluate(self, record: str, domain: str, depth: int = 0) -> str:
        uncertain: set[str] = set()  # the results an earlier term that could not be told might give
        redirect = ""
        for term in record.split()[1:]:
            if MODIFIER.match(term):
                key, _eq, value = term.partition("=")
                if key.lower() == "redirect":
                    redirect = value
                continue
            qualifier = term[0] if term[0] in QUALIFIERS else "+"
            mechanism = term[1:] if term[0] in QUALIFIERS else term
            name, _sep, argument = mechanism.partition(":")
            if "/" in name:  # "a/24", "mx/24//64"
                name, _slash, cidr = name.partition("/")
                argument = f"{argument}/{cidr}" if argument else f"/{cidr}"
            matched = self._mechanism(name.lower(), argument, domain, depth)
            if matched is None:
                uncertain.add(QUALIFIERS[qualifier])
            elif matched:
                result = QUALIFIERS[qualifier]
                return result if uncertain <= {result} else "unknown"
        if redirect:
            if "%" in redirect or not self._count():
                return "unknown"
            result = self.evaluate_name(redirect, depth + 1)
        else:
            result = "neutral"
        return result if uncertain <= {result} else "unknown"


def spf_with_host(record: str, host: str) -> str:
    """The record with the mail host allowed: `a:HOST` before its `all` or `redirect=`, else at
    its end."""
    terms = record.split()
    for index, term in enumerate(terms[1:], start=1):
        lowered = term.lower().lstrip("+-~?")
        if lowered == "all" or lowered.startswith("redirect="):
            return " ".join([*terms[:index], f"a:{host}", *terms[index:]])
    return " ".join([*terms, f"a:{host}"])


def check_spf(facts: DomainFacts, look: Lookups, apex_mx: list[tuple[int, str]] | None) -> dict[str, Any]:
    suggested = [(facts.name, "TXT", f"v=spf1 a:{facts.host} ~all")] if facts.host else []
    try:
        records = look.txt(facts.name)
    except lookups.NoSuchName as error:
        return check_entry("spf", UNKNOWN, "no_such_domain", found=[str(error)])
    except lookups.LookupFailed as error:
        return check_entry("spf", UNKNOWN, "lookup_failed", found=[str(error)])
    spf = [text for text in records if is_spf(text)]
    if not spf:
        return check_entry("spf", BAD, "spf_missing", publish=suggested)
    if len(spf) > 1:
        return check_entry("spf", BAD, "spf_several", found=spf, publish=suggested)
    if not facts.host:
        return check_entry("spf", UNKNOWN, "no_host_name", found=spf)
    result = SpfEvaluation(facts, look, apex_mx).evaluate(spf[0], facts.name)
    if result == "pass":
        return check_entry("spf", OK, "spf_ok", found=spf)
    if result == "unknown":
        return check_entry("spf", UNKNOWN, "spf_cannot_tell", found=spf)
    return check_entry("spf", BAD, "spf_not_allowed", found=spf,
                  publish=[(facts.name, "TXT", spf_with_host(spf[0], facts.host))])


# --------------------------------------------------------------------------------------------------
# DKIM and DMARC
# --------------------------------------------------------------------------------------------------


def dkim_p(text: str) -> str | None:
    """The p= tag of a DKIM key record, whitespace removed; None when it has none."""
    for tag in text.split(";"):
        key, eq, value = tag.partition("=")
        if eq and key.strip().lower() == "p":
            return re.sub(r"\s+", "", value)
    return None


def check_dkim(facts: DomainFacts, look: Lookups) -> tuple[list[dict[str, Any]], list[int]]:
    if not facts.keys:
        return [check_entry("dkim", NONE, "dkim_no_key")], []
    checks, seen = [], []
    for key in facts.keys:
        name = record_name(key.selector, facts.name)
        publish = [(name, "TXT", txt_value(key.public_key))]
        try:
            records = look.txt(name)
        except lookups.NoSuchName:
            records = []
        except lookups.LookupFailed as error:
            checks.append(check_entry("dkim", UNKNOWN, "lookup_failed", found=[str(error)], selector=key.selector))
            continue
        if any(dkim_p(text) == re.sub(r"\s+", "", key.public_key) for text in records):
            checks.append(check_entry("dkim", OK, "dkim_ok", selector=key.selector))
            if facts.own_keys:
                seen.append(key.id)
        elif records:
            checks.append(check_entry("dkim", BAD, "dkim_mismatch", found=records, publish=publish,
                                      selector=key.selector))
        else:
            checks.append(check_entry("dkim", BAD, "dkim_missing", publish=publish, selector=key.selector))
    return checks, seen


def dmarc_record(name: str) -> str:
    """The DMARC record the panel suggests (README: quarantine, reports to the domain's postmaster)."""
    return f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{name}"


def is_dmarc(text: str) -> bool:
    lowered = text.strip().lower()
    return lowered == "v=dmarc1" or re.match(r"v=dmarc1\s*;", lowered) is not None


def check_dmarc(facts: DomainFacts, look: Lookups) -> dict[str, Any]:
    name = f"_dmarc.{facts.name}"
    publish = [(name, "TXT", dmarc_record(facts.name))]
    try:
        records = look.txt(name)
    except lookups.NoSuchName:
        records = []
    except lookups.LookupFailed as error:
        return check_entry("dmarc", UNKNOWN, "lookup_failed", found=[str(error)])
    dmarc = [text for text in records if is_dmarc(text)]
    if not dmarc:
        return check_entry("dmarc", BAD, "dmarc_missing", publish=publish)
    if len(dmarc) > 1:
        return check_entry("dmarc", BAD, "dmarc_several", found=dmarc, publish=publish)
    return check_entry("dmarc", OK, "dmarc_ok", found=dmarc)


# --------------------------------------------------------------------------------------------------
# A domain
# --------------------------------------------------------------------------------------------------


def check_domain(facts: DomainFacts, using: dns.resolver.Resolver | None = None,
                 budget: float = DOMAIN_BUDGET_SECONDS) -> Outcome:
    """Every check of one domain. Never raises for what DNS answers (or does not)."""
    look = Lookups(using or lookups.resolver(), budget)
    mx: list[tuple[int, str]] | lookups.LookupFailed
    try:
        mx = look.mx(facts.name)
    except lookups.LookupFailed as error:
        mx = error
    checks = [check_mx(facts, mx)]
    checks.append(check_spf(facts, look, mx if isinstance(mx, list) else None))
    dkim, seen = check_dkim(facts, look)
    checks += dkim
    checks.append(check_dmarc(facts, look))
    return Outcome(checks=checks, seen_keys=seen)


def host_addresses(host: str, using: dns.resolver.Resolver | None = None) -> tuple[str, ...]:
    """The mail host's addresses as DNS gives them (() when unknown: ip4/ip6 terms cannot be told)."""
    if not host:
        return ()
    try:
        return tuple(lookups.addresses(host, using=using))
    except lookups.LookupFailed:
        return ()


def summary(results: dict[str, Any] | None) -> Status | None:
    """One state for a domain's checks: bad if any is, else unknown if any is, else ok."""
    if not results or results.get("format") != FORMAT:
        return None
    statuses = {check.get("status") for check in results.get("checks", [])}
    for status in (BAD, UNKNOWN):
        if status in statuses:
            return status
    return OK
