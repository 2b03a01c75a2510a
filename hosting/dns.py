"""DNS lookups of the panel, through the resolver the settings name (`DNS_RESOLVER`).

A small reusable layer over dnspython: one resolver built from the setting ("127.0.0.1:5353", several
separated by commas; empty: the system's, /etc/resolv.conf), short timeouts, every lookup bounded
(`LIFETIME` seconds in all, whatever the number of servers and retries), and every failure turned
into `LookupFailed` with a short sentence of what was found, fit for a page and a log. The ownership
check of a domain uses it (`provisioning.domains.domain_check_ownership`), and so do the MX, SPF,
DKIM and DMARC checks (`hosting.dnscheck`), which tell a name that does not exist (`NoSuchName`)
from a server that did not answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.name
import dns.resolver
from django.conf import settings
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA

TIMEOUT = 2.0  # seconds per server asked
LIFETIME = 2.0  # seconds for one lookup in all (retries and servers included)
MAX_ANSWERS = 50  # records read from one answer: a hostile zone cannot make a check run long


class LookupFailed(Exception):  # noqa: N818 - what callers catch: "the lookup failed"
    """A lookup that gave no usable answer (timeout, no such name, server failure)."""


class NoSuchName(LookupFailed):
    """The name does not exist (NXDOMAIN): an answer, unlike a timeout (the DNS checks tell a
    missing `_dmarc` record from a server that did not answer)."""


@dataclass(frozen=True)
class Server:
    address: str
    port: int


def parse_servers(value: str) -> list[Server]:
    """The servers of a `DNS_RESOLVER` value: "ADDRESS[:PORT]" (an IPv6 address in brackets when it
    has a port: "[::1]:5353"), separated by commas; an empty value gives none (the system's)."""
    servers = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if item.startswith("["):
            address, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif item.count(":") == 1:
            address, port = item.split(":")
        else:
            address, port = item, "53"
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"DNS_RESOLVER: invalid port in {item!r}")
        servers.append(Server(address, int(port)))
    return servers


def resolver(servers: str | None = None) -> dns.resolver.Resolver:
    """A resolver for the servers named (default: the setting `DNS_RESOLVER`), with short timeouts."""
    chosen = parse_servers(settings.DNS_RESOLVER if servers is None else servers)
    if chosen:
        made = dns.resolver.Resolver(configure=False)
        made.nameservers = [server.address for server in chosen]
        made.nameserver_ports = {server.address: server.port for server in chosen}
        if len({server.address for server in chosen}) < len(chosen):
            raise ValueError("DNS_RESOLVER: one port per address")
    else:
        made = dns.resolver.Resolver()
    made.timeout = TIMEOUT
    made.lifetime = LIFETIME
    made.cache = None
    return made


def _answer(name: str, rdtype: str, using: dns.resolver.Resolver | None) -> list[object]:
    try:
        answer = (using or resolver()).resolve(name, rdtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        raise NoSuchName(f"{name}: no such name") from None
    except dns.resolver.LifetimeTimeout:
        raise LookupFailed(f"{name} {rdtype}: no answer within {LIFETIME:g} s") from None
    except dns.resolver.NoNameservers:
        raise LookupFailed(f"{name} {rdtype}: the DNS servers failed") from None
    except (dns.exception.DNSException, ValueError) as error:
        raise LookupFailed(f"{name} {rdtype}: {type(error).__name__}") from None
    return list(answer)[:MAX_ANSWERS]


def txt_records(name: str, *, using: dns.resolver.Resolver | None = None) -> list[str]:
    """The TXT records of `name`, each its strings joined (RFC 7208's reading), decoded as UTF-8
    with replacement; [] when the name has none."""
    return [b"".join(record.strings).decode("utf-8", "replace") for record in _answer(name, "TXT", using)
            if isinstance(record, TXT)]


def mx_records(name: str, *, using: dns.resolver.Resolver | None = None) -> list[tuple[int, str]]:
    """The MX records of `name` as (preference, target), the target lower-case without the final
    dot, by preference; [] when none."""
    records = sorted((r for r in _answer(name, "MX", using) if isinstance(r, MX)), key=lambda record: record.preference)
    return [(record.preference, record.exchange.to_text(omit_final_dot=True).lower()) for record in records]


def mx_hosts(name: str, *, using: dns.resolver.Resolver | None = None) -> list[str]:
    """The MX targets of `name`, lower-case without the final dot, by preference; [] when none."""
    return [host for _preference, host in mx_records(name, using=using)]


def addresses(name: str, *, using: dns.resolver.Resolver | None = None) -> list[str]:
    """The IPv4 then IPv6 addresses of `name` (A, then AAAA); [] when it has none."""
    found = [record.to_text() for record in _answer(name, "A", using) if isinstance(record, A)]
    return found + [record.to_text() for record in _answer(name, "AAAA", using) if isinstance(record, AAAA)]


def same_host(a: str, b: str) -> bool:
    """Whether two host names are the same (case and a final dot aside)."""
    return bool(a) and bool(b) and dns.name.from_text(a.rstrip(".") + ".") == dns.name.from_text(b.rstrip(".") + ".")
