"""The page "Mail client settings": what a user types in Outlook, Thunderbird or any other mail
client (login, the IMAP, POP3 and SMTP servers with their ports and security) and the webmail's
address, from the mail host of the domain's pack (`hosting.MailHost`, edited in the admin).

A mailbox user opens it from its own page (the services its account may not use are marked);
the people who manage a domain open it from the domain's menu.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from hosting.client_settings import client_servers
from hosting.models import ClientSecurity, Domain, MailHost
from hosting.roles import Role, role_of
from mail.auth import MailboxRequest
from screens.kit import DomainContext, domain_screen
from screens.views.account import mailbox_required

# The services a mail client is told about: key (MailHost's field prefix), protocol, what it is for.
SERVICES = [
    ("imap", "IMAP", _("incoming mail, kept on the server (recommended)")),
    ("pop3", "POP3", _("incoming mail, downloaded to your computer")),
    ("smtp", "SMTP", _("outgoing mail, with authentication (the same user name and password)")),
]


@dataclass(frozen=True)
class Service:
    label: Any
    purpose: Any
    host: str
    port: int
    security: str
    allowed: bool = True


def services_of(mail_host: MailHost, mailbox: Any = None) -> list[Service]:
    """The host's services as a client is told about them (`hosting.client_settings`, the source
    the autoconfiguration documents read too); those `mailbox` may not use are marked."""
    servers = client_servers(mail_host)
    return [
        Service(label=label, purpose=purpose, host=servers[key].host, port=servers[key].port,
                security=ClientSecurity(servers[key].security).label,
                allowed=mailbox is None or getattr(mailbox, f"allow_{key}"))  # the mailbox's switches
        for key, label, purpose in SERVICES
    ]


def _page(domain: Domain, login: str, mailbox: Any = None) -> dict[str, Any]:
    mail_host = domain.pack.mail_host
    services = services_of(mail_host, mailbox)
    return {"services": services, "complete": all(service.host for service in services), "login": login,
            "webmail_url": mail_host.webmail_url, "settings_domain": domain}


def login_of(mailbox: Any) -> str:
    """What the mail servers take as the user name: the full address, with the domain's ASCII name."""
    return f"{mailbox.local_part}@{mailbox.domain.name}"


@mailbox_required
def me_mail_settings(request: MailboxRequest) -> HttpResponse:
    """A mailbox user's own settings: its login, and which services its account may use."""
    mailbox = request.mailbox
    return render(request, "mail/mail_settings.html", _page(mailbox.domain, login_of(mailbox), mailbox))


@domain_screen
def mail_settings(request: HttpRequest, ctx: DomainContext) -> HttpResponse:
    """The settings for every account of the domain: the login of the domain admin who asks, else
    the form of any account's (postmaster@ as the example)."""
    seat = ctx.seat
    login = login_of(seat) if role_of(seat) == Role.DOMAIN_ADMIN else f"postmaster@{ctx.domain.name}"
    return render(request, "mail/mail_settings.html", ctx.page(**_page(ctx.domain, login), example=True))
