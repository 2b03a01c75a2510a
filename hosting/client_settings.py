"""What a mail client is told: the servers (name, port, security) of a domain's mail host, one
source for the page "Mail client settings" and for the documents mail clients fetch by themselves
(Thunderbird's autoconfig, Outlook's autodiscover, Apple's .mobileconfig: screens/views/autoconfig.py).

`domain_for_clients` is the one lookup by name that no seat makes: mail clients ask before any
login. It answers only for a domain the panel serves (proven its customer's; an alias domain
whose target is proven too), and what it leads to is what the domain's DNS already says (its
mail host's public names and ports): nothing about its mailboxes.
"""

from __future__ import annotations

from dataclasses import dataclass

from hosting.models import ClientSecurity, Domain, MailHost

# The services a mail client is told about, in the order pages and documents show them.
SERVICE_KEYS = ("imap", "pop3", "smtp")


@dataclass(frozen=True)
class ClientServer:
    """One service of a mail host as a mail client connects to it."""

    key: str  # "imap", "pop3" or "smtp" (MailHost's field prefix)
    host: str  # empty: the mail host has no name yet
    port: int
    security: str  # a ClientSecurity value: "tls" (SSL/TLS from the first byte) or "starttls"

    @property
    def implicit_tls(self) -> bool:
        return self.security == ClientSecurity.TLS


def client_servers(mail_host: MailHost) -> dict[str, ClientServer]:
    """The host's IMAP, POP3 and SMTP submission services, by key, as the operator set them."""
    return {
        key: ClientServer(key=key, host=mail_host.client_host(key), port=getattr(mail_host, f"{key}_port"),
                          security=getattr(mail_host, f"{key}_security"))
        for key in SERVICE_KEYS
    }


@dataclass(frozen=True)
class ServedDomain:
    """A name mail clients asked about: the domain of that name, and the one whose mail host
    serves its mailboxes (the same, or an alias domain's target)."""

    asked: Domain
    served: Domain

    @property
    def mail_host(self) -> MailHost:
        return self.served.pack.mail_host


def domain_for_clients(ascii_name: str) -> ServedDomain | None:
    """The domain served under `ascii_name` (IDNA form) for a mail client, else None: unknown,
    not yet proven (its host does not serve it), or an alias of a domain not proven. One query."""
    domain = (
        Domain.objects.select_related("pack__mail_host", "alias_of__pack__mail_host")
        .filter(name=ascii_name, verified_at__isnull=False)
        .first()
    )
    if domain is None:
        return None
    target = domain.alias_of
    if target is None:
        return ServedDomain(asked=domain, served=domain)
    if target.verified_at is None:
        return None
    return ServedDomain(asked=domain, served=target)
