"""Mail clients that set themselves up: Thunderbird's autoconfig, Outlook's autodiscover (POX),
and an Apple configuration profile a mailbox user downloads from its own settings page.

Every document carries the servers of the page "Mail client settings" (one source:
`hosting.client_settings.client_servers`), for the user name the full address. Thunderbird and
Outlook ask before any login, so those two answer anyone, but only for a domain the panel serves
(`domain_for_clients`: proven, an alias domain with its target's host), and the same for any
local part: nothing tells whether a mailbox exists. An unknown or pending domain is 404.

Documents are built with ElementTree and plistlib (every value escaped by the serializer); the
one XML document read here, Outlook's request, is parsed by expat with any DOCTYPE refused (no
entity can be declared, so neither an external entity nor an entity expansion gets in) and a
bounded size.

The `autoconfig.<domain>` and `autodiscover.<domain>` host names reach these views through
`screens.middleware.ClientAutoconfigHosts`, which answers those names for these paths only.
"""

from __future__ import annotations

import logging
import plistlib
import uuid
import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from hosting.client_settings import ClientServer, ServedDomain, client_servers, domain_for_clients
from hosting.validators import normalize_domain
from mail.auth import MailboxRequest
from mail.validators import split_address
from screens.views.account import mailbox_required

logger = logging.getLogger(__name__)

# The paths mail clients ask (Thunderbird: the autoconfig.<domain> form and the well-known one;
# Outlook: its own, which some versions capitalise).
THUNDERBIRD_PATHS = ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml")
OUTLOOK_PATHS = ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml")
# The host names a client derives from an address's domain (a CNAME to the panel: README).
HOST_PREFIXES = ("autoconfig.", "autodiscover.")

# Outlook's request is a few hundred bytes; anything past this is refused unread.
MAX_REQUEST_BYTES = 8 * 1024
AUTODISCOVER_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
REQUEST_PATH = ["Autodiscover", "Request", "EMailAddress"]  # local names: clients differ on namespaces

THUNDERBIRD_SOCKET = {"tls": "SSL", "starttls": "STARTTLS"}
OUTLOOK_ENCRYPTION = {"tls": "SSL", "starttls": "TLS"}
OUTLOOK_TYPES = (("imap", "IMAP"), ("smtp", "SMTP"), ("pop3", "POP3"))  # Outlook takes the first incoming one

XML_TYPE = "application/xml; charset=utf-8"
MOBILECONFIG_TYPE = "application/x-apple-aspen-config"


class BadRequest(Exception):
    """The request is not one a mail client sends: 400 (413 when too big)."""

    def __init__(self, status: int = 400) -> None:
        super().__init__(status)
        self.status = status


# --- who is asked about -------------------------------------------------------------------------


def raw_host(request: HttpRequest) -> str:
    """The host name the client asked for (as Django's get_host reads it, without its check
    against ALLOWED_HOSTS: the middleware checks these names against the served domains)."""
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in request.META:
        host = request.META["HTTP_X_FORWARDED_HOST"]
    else:
        host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
    return split_domain_port(host)[0]  # lower-cased, port dropped; "" when malformed


def domain_of_host(host: str) -> str | None:
    """The domain an `autoconfig.<domain>` or `autodiscover.<domain>` host name is for (IDNA
    form), else None."""
    for prefix in HOST_PREFIXES:
        if host.startswith(prefix):
            try:
                return normalize_domain(host.removeprefix(prefix))
            except ValidationError:
                return None
    return None


def _address(value: str) -> tuple[str, str]:
    """(local part, IDNA domain) of an address a client sends, or BadRequest: anything that is
    not a panel address (CR, LF, `<`, spaces, two @...) is refused whole, never echoed."""
    if len(value) > 320:
        raise BadRequest
    try:
        return split_address(value)
    except ValidationError:
        raise BadRequest from None


def _served(request: HttpRequest, address_domain: str | None) -> ServedDomain | None:
    """The domain to answer for: the address's, else the host name's (autoconfig.<domain>); an
    address of another domain than the host name's is not answered."""
    host_domain = domain_of_host(raw_host(request))
    if address_domain is not None and host_domain is not None and host_domain != address_domain:
        return None
    name = address_domain or host_domain
    if name is None:
        return None
    return domain_for_clients(name)


def _servers(served: ServedDomain) -> dict[str, ClientServer] | None:
    """The mail host's servers, or None when one has no name yet (nothing usable to tell)."""
    servers = client_servers(served.mail_host)
    if not all(server.host for server in servers.values()):
        logger.debug("mail host %s has no client name: no autoconfiguration for %s",
                       served.mail_host.name, served.asked.name)
        return None
    return servers


def _xml(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _sub(parent: ET.Element, tag: str, text: str | int | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = str(text)
    return element


# --- Thunderbird ---------------------------------------------------------------------------------


def thunderbird_config(served: ServedDomain, servers: dict[str, ClientServer]) -> bytes:
    """Thunderbird's clientConfig 1.1 (the format of its ISPDB): IMAP then POP3, SMTP; the user
    name is the whole address (%EMAILADDRESS%, which Thunderbird fills in)."""
    root = ET.Element("clientConfig", {"version": "1.1"})
    provider = _sub(root, "emailProvider", id=served.asked.name)
    _sub(provider, "domain", served.asked.name)  # never the target of an alias: anyone may ask
    _sub(provider, "displayName", served.asked.unicode_name)
    _sub(provider, "displayShortName", served.asked.unicode_name)
    for key, tag in (("imap", "incomingServer"), ("pop3", "incomingServer"), ("smtp", "outgoingServer")):
        server = servers[key]
        element = _sub(provider, tag, type=key)
        _sub(element, "hostname", server.host)
        _sub(element, "port", server.port)
        _sub(element, "socketType", THUNDERBIRD_SOCKET[server.security])
        _sub(element, "username", "%EMAILADDRESS%")
        _sub(element, "authentication", "password-cleartext")
    return _xml(root)


@require_safe
def thunderbird(request: HttpRequest) -> HttpResponse:
    """GET /mail/config-v1.1.xml?emailaddress=... (and the .well-known path)."""
    value = request.GET.get("emailaddress", "")
    try:
        address_domain = _address(value)[1] if value else None
    except BadRequest as refused:
        return HttpResponse(status=refused.status)
    served = _served(request, address_domain)
    servers = _servers(served) if served is not None else None
    if served is None or servers is None:
        return HttpResponse(status=404)
    return HttpResponse(thunderbird_config(served, servers), content_type=XML_TYPE)


# --- Outlook -------------------------------------------------------------------------------------


def autodiscover_address(body: bytes) -> str:
    """The EMailAddress of Outlook's autodiscover request (requestschema/2006), read by expat
    with DOCTYPE (hence any entity declaration) refused; BadRequest for anything else."""
    if len(body) > MAX_REQUEST_BYTES:
        raise BadRequest(413)
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    path: list[str] = []
    found: list[str] = []

    def refuse(*_args: Any) -> None:
        raise BadRequest

    def refuse_external(*_args: Any) -> int:
        raise BadRequest

    def start(name: str, _attributes: dict[str, str]) -> None:
        path.append(name.rpartition(" ")[2])
        if path == REQUEST_PATH:
            found.append("")

    def end(_name: str) -> None:
        path.pop()

    def text(data: str) -> None:
        if path == REQUEST_PATH:
            found[-1] += data

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse_external
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(body, True)
    except expat.ExpatError:
        raise BadRequest from None
    if len(found) != 1:
        raise BadRequest
    return found[0].strip()


def outlook_config(served: ServedDomain, servers: dict[str, ClientServer], login: str) -> bytes:
    """The POX answer of the outlook/responseschema/2006a: one Account, a Protocol each for IMAP,
    SMTP and POP3, the login the whole address, SPA off (a password over TLS, not NTLM)."""
    root = ET.Element("Autodiscover", {"xmlns": AUTODISCOVER_NS})
    response = _sub(root, "Response", xmlns=OUTLOOK_NS)
    account = _sub(response, "Account")
    _sub(account, "AccountType", "email")
    _sub(account, "Action", "settings")
    for key, kind in OUTLOOK_TYPES:
        server = servers[key]
        protocol = _sub(account, "Protocol")
        _sub(protocol, "Type", kind)
        _sub(protocol, "Server", server.host)
        _sub(protocol, "Port", server.port)
        _sub(protocol, "DomainRequired", "off")
        _sub(protocol, "LoginName", login)
        _sub(protocol, "SPA", "off")
        _sub(protocol, "SSL", "on")
        _sub(protocol, "Encryption", OUTLOOK_ENCRYPTION[server.security])
        _sub(protocol, "AuthRequired", "on")
        if key == "smtp":
            _sub(protocol, "UsePOPAuth", "on")
            _sub(protocol, "SMTPLast", "off")
    return _xml(root)


def _outlook_request_address(request: HttpRequest) -> str:
    if request.method == "POST":
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit():
            raise BadRequest
        if int(length) > MAX_REQUEST_BYTES:
            raise BadRequest(413)
        return autodiscover_address(request.read(MAX_REQUEST_BYTES + 1))
    for name in ("emailaddress", "EMailAddress", "email"):  # GET, as some clients ask
        if name in request.GET:
            return request.GET[name]
    raise BadRequest


@csrf_exempt  # a mail client's request: no session, no form, nothing changes
@require_http_methods(["GET", "HEAD", "POST"])
def outlook(request: HttpRequest) -> HttpResponse:
    """POST /autodiscover/autodiscover.xml (GET tolerated: ?emailaddress=...)."""
    try:
        local, domain = _address(_outlook_request_address(request))
    except BadRequest as refused:
        return HttpResponse(status=refused.status)
    served = _served(request, domain)
    servers = _servers(served) if served is not None else None
    if served is None or servers is None:
        return HttpResponse(status=404)
    return HttpResponse(outlook_config(served, servers, f"{local}@{domain}"), content_type="text/xml; charset=utf-8")


# --- Apple ---------------------------------------------------------------------------------------


def _reverse_dns(domain: str) -> str:
    return ".".join(reversed(domain.split(".")))


def apple_profile(*, login: str, real_name: str, domain: str, servers: dict[str, ClientServer],
                  incoming: str) -> bytes:
    """A configuration profile with one com.apple.mail.managed payload. No password: Mail asks
    for it when the profile is installed (README: why). The identifier is the same for each
    download of one address (installing again replaces the profile); the UUIDs are new."""
    inbox, outbox = servers[incoming], servers["smtp"]
    identifier = f"{_reverse_dns(domain)}.mailpanel.{uuid.uuid5(uuid.NAMESPACE_DNS, login)}"
    account: dict[str, Any] = {
        "EmailAccountDescription": login,
        "EmailAccountType": "EmailTypeIMAP" if incoming == "imap" else "EmailTypePOP",
        "EmailAddress": login,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerHostName": inbox.host,
        "IncomingMailServerPortNumber": inbox.port,
        # Apple's one switch for both: SSL/TLS on 993/995/465, STARTTLS on 143/110/587; never off.
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": login,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": outbox.host,
        "OutgoingMailServerPortNumber": outbox.port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": login,
        "OutgoingPasswordSameAsIncomingPassword": True,
        "PayloadDescription": _("The settings of your mail account %(address)s.") % {"address": login},
        "PayloadDisplayName": login,
        "PayloadIdentifier": f"{identifier}.account",
        "PayloadType": "com.apple.mail.managed",
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadVersion": 1,
        "PreventAppSheet": False,
        "PreventMove": False,
        "SMIMEEnabled": False,
    }
    if real_name:
        account["EmailAccountName"] = real_name
    profile = {
        "PayloadContent": [account],
        "PayloadDescription": _("Sets up Mail for %(address)s.") % {"address": login},
        "PayloadDisplayName": _("Mail: %(address)s") % {"address": login},
        "PayloadIdentifier": identifier,
        "PayloadRemovalDisallowed": False,
        "PayloadType": "Configuration",
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadVersion": 1,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)


@mailbox_required
@require_safe
def me_mobileconfig(request: MailboxRequest) -> HttpResponse:
    """The signed-in mailbox's own profile for iPhone, iPad and Mac (IMAP, or POP3 when only that
    is enabled for it; SMTP)."""
    mailbox = request.mailbox
    domain = mailbox.domain
    servers = client_servers(domain.pack.mail_host)
    if not all(server.host for server in servers.values()):
        return HttpResponse(status=404)
    login = f"{mailbox.local_part}@{domain.name}"
    incoming = "pop3" if mailbox.allow_pop3 and not mailbox.allow_imap else "imap"
    body = apple_profile(login=login, real_name=mailbox.real_name, domain=domain.name, servers=servers,
                         incoming=incoming)
    response = HttpResponse(body, content_type=MOBILECONFIG_TYPE)
    response["Content-Disposition"] = content_disposition_header(True, f"{login}.mobileconfig")
    return response
