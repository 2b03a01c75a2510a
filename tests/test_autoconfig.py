"""Mail clients set themselves up (issue 18, item 4): Thunderbird's autoconfig, Outlook's
autodiscover and Apple's configuration profile, each read the way the client reads it
(ElementTree with the namespaces, plistlib) and compared with the page "Mail client settings";
only for the domains the panel serves, the same for any local part, hostile requests refused.
The real logins with these settings: tests/e2e/test_autoconfig_e2e.py."""

from __future__ import annotations

import plistlib
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hosting.models import Domain, MailHost
from tests.conftest import Cast, client_for, login_mailbox
from tests.factories import DomainFactory, MailboxFactory

pytestmark = pytest.mark.django_db

THUNDERBIRD = "/.well-known/autoconfig/mail/config-v1.1.xml"
THUNDERBIRD_SUB = "/mail/config-v1.1.xml"  # the autoconfig.<domain> form
OUTLOOK = "/autodiscover/autodiscover.xml"
AUTODISCOVER_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
NS = {"a": AUTODISCOVER_NS, "o": OUTLOOK_NS}
SOCKET = {"SSL/TLS": "SSL", "STARTTLS": "STARTTLS"}


def outlook_request(address: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
        f"<Request><EMailAddress>{address}</EMailAddress>"
        f"<AcceptableResponseSchema>{OUTLOOK_NS}</AcceptableResponseSchema></Request></Autodiscover>"
    ).encode()


def page_servers(cast: Cast) -> dict[str, tuple[str, int, str]]:
    """Each service's (server, port, security) as the mailbox user's settings page shows it."""
    body = client_for(cast, "mailbox_a").get(reverse("screens:me_mail_settings")).content.decode()
    rows = re.findall(r'<th scope="row">(IMAP|POP3|SMTP) .*?<code class="copy">([^<]+)</code>.*?'
                      r'<code class="copy">(\d+)</code>.*?data-label="Security">([^<]+)</td>', body, re.S)
    return {service: (host, int(port), security) for service, host, port, security in rows}


def thunderbird_servers(body: bytes) -> dict[str, dict[str, str]]:
    """Thunderbird's reading of a clientConfig: each server's fields by its type."""
    root = parse(body)
    assert root.tag == "clientConfig"
    assert root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider is not None
    return {
        server.get("type", ""): {child.tag: child.text or "" for child in server}
        for server in [*provider.findall("incomingServer"), *provider.findall("outgoingServer")]
    }


def outlook_protocols(body: bytes) -> dict[str, dict[str, str]]:
    root = parse(body)
    assert root.tag == f"{{{AUTODISCOVER_NS}}}Autodiscover"
    account = root.find("o:Response/o:Account", NS)
    assert account is not None
    assert account.findtext("o:AccountType", namespaces=NS) == "email"
    assert account.findtext("o:Action", namespaces=NS) == "settings"
    return {
        protocol.findtext("o:Type", namespaces=NS) or "": {
            child.tag.removeprefix(f"{{{OUTLOOK_NS}}}"): child.text or "" for child in protocol
        }
        for protocol in account.findall("o:Protocol", NS)
    }


def parse(body: bytes) -> ET.Element:
    """The panel's answer read as the clients read it (our own output: no hostile entity in it)."""
    return ET.fromstring(body)  # noqa: S314


def anonymous() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en")


# --- Thunderbird ---------------------------------------------------------------------------------


def test_thunderbird_gets_the_servers_of_the_settings_page(cast: Cast) -> None:
    MailHost.objects.filter(pk=cast.host.pk).update(imap_host="imap.hosting.test", smtp_port=465,
                                                    smtp_security="tls", pop3_port=110, pop3_security="starttls")
    page = page_servers(cast)
    response = anonymous().get(THUNDERBIRD, {"emailaddress": "alphauser@alpha-domain.test"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/xml")
    root = parse(response.content)
    provider = root.find("emailProvider")
    assert provider is not None and provider.get("id") == "alpha-domain.test"
    assert [d.text for d in provider.findall("domain")] == ["alpha-domain.test"]
    servers = thunderbird_servers(response.content)
    assert list(servers) == ["imap", "pop3", "smtp"]  # IMAP first: Thunderbird offers the first
    for kind, service in (("imap", "IMAP"), ("pop3", "POP3"), ("smtp", "SMTP")):
        host, port, security = page[service]
        assert servers[kind] == {"hostname": host, "port": str(port), "socketType": SOCKET[security],
                                 "username": "%EMAILADDRESS%", "authentication": "password-cleartext"}
    assert servers["imap"]["hostname"] == "imap.hosting.test"
    assert servers["smtp"]["port"] == "465" and servers["smtp"]["socketType"] == "SSL"
    assert servers["pop3"]["socketType"] == "STARTTLS"


def test_the_answer_is_the_same_for_any_local_part(cast: Cast) -> None:
    """Whether a mailbox exists is never told: the answer of a stranger's address is the same."""
    client = anonymous()
    answers = {client.get(THUNDERBIRD, {"emailaddress": f"{local}@alpha-domain.test"}).content
               for local in ("alphauser", "postmaster", "nobody-here", "Alphauser")}
    assert len(answers) == 1
    outlook = {outlook_protocols(client.post(OUTLOOK, outlook_request(f"{local}@alpha-domain.test"),
                                             content_type="text/xml").content)["IMAP"]["Server"]
               for local in ("alphauser", "nobody-here")}
    assert outlook == {"mx1.hosting.test"}


def test_the_autoconfig_host_name_answers_for_its_domain_only(cast: Cast) -> None:
    client = anonymous()
    with_address = client.get(THUNDERBIRD_SUB, {"emailaddress": "x@alpha-domain.test"},
                              HTTP_HOST="autoconfig.alpha-domain.test")
    assert with_address.status_code == 200
    without = client.get(THUNDERBIRD_SUB, HTTP_HOST="autoconfig.alpha-domain.test:443")
    assert without.status_code == 200 and without.content == with_address.content
    assert without["X-Content-Type-Options"] == "nosniff"
    # Another domain's address under this name, a name the panel does not serve: nothing.
    assert client.get(THUNDERBIRD_SUB, {"emailaddress": "x@bravo-domain.test"},
                      HTTP_HOST="autoconfig.alpha-domain.test").status_code == 404
    assert client.get(THUNDERBIRD_SUB, HTTP_HOST="autoconfig.unknown.test").status_code == 404
    assert client.get(THUNDERBIRD_SUB, HTTP_HOST="autoconfig..test").status_code == 400  # not a name
    # Under those names nothing else of the panel opens; a host name of no one is Django's 400.
    assert client.get("/login/", HTTP_HOST="autoconfig.alpha-domain.test").status_code == 400
    assert client.get(THUNDERBIRD_SUB, {"emailaddress": "x@alpha-domain.test"},
                      HTTP_HOST="evil.test").status_code == 400


def test_unknown_pending_and_alias_domains(cast: Cast) -> None:
    pending = DomainFactory(pack=cast.a.pack, name="pending-alpha.test", verified_at=None, verified_how="")
    alias = Domain.objects.create(name="alias-alpha.test", pack=cast.a.pack, alias_of=cast.a.domain,
                                  verified_at=timezone.now(), verified_how="hand")
    unproven_target = DomainFactory(pack=cast.b.pack, name="unproven-target.test", verified_at=None, verified_how="")
    Domain.objects.create(name="alias-of-unproven.test", pack=cast.b.pack, alias_of=unproven_target,
                          verified_at=timezone.now(), verified_how="hand")
    client = anonymous()
    for name in ("unknown.test", pending.name, "alias-of-unproven.test"):
        assert client.get(THUNDERBIRD, {"emailaddress": f"a@{name}"}).status_code == 404, name
        assert client.post(OUTLOOK, outlook_request(f"a@{name}"), content_type="text/xml").status_code == 404, name
    response = client.get(THUNDERBIRD, {"emailaddress": f"alphauser@{alias.name}"})
    assert response.status_code == 200
    provider = parse(response.content).find("emailProvider")
    assert provider is not None and provider.get("id") == alias.name
    assert [d.text for d in provider.findall("domain")] == [alias.name]  # the target not revealed
    assert thunderbird_servers(response.content)["imap"]["hostname"] == "mx1.hosting.test"


def test_an_international_domain_is_answered_in_its_ascii_form(cast: Cast) -> None:
    DomainFactory(pack=cast.a.pack, name="xn--caf-dma.test")
    response = anonymous().get(THUNDERBIRD, {"emailaddress": "jean@CAFÉ.test"})
    assert response.status_code == 200
    provider = parse(response.content).find("emailProvider")
    assert provider is not None and provider.get("id") == "xn--caf-dma.test"
    assert provider.findtext("displayName") == "café.test"
    login = outlook_protocols(anonymous().post(OUTLOOK, outlook_request("Jean@café.test"),
                                               content_type="text/xml").content)["SMTP"]["LoginName"]
    assert login == "jean@xn--caf-dma.test"


@pytest.mark.parametrize("address", [
    "a\r\nX-Injected: yes@alpha-domain.test", "<script>@alpha-domain.test", "a@alpha-domain.test\r\nx",
    "a b@alpha-domain.test", "a@@alpha-domain.test", "a@alpha-domain.test<", "x" * 5000 + "@alpha-domain.test",
    "no-at-sign",
])
def test_a_hostile_address_is_refused_and_never_echoed(cast: Cast, address: str) -> None:
    client = anonymous()
    response = client.get(THUNDERBIRD, {"emailaddress": address})
    assert response.status_code == 400
    assert response.content == b""
    response = client.get(OUTLOOK, {"emailaddress": address})
    assert response.status_code == 400
    assert response.content == b""


def test_values_from_the_host_are_escaped_by_the_serializer(cast: Cast) -> None:
    """A name that is not one (the admin normalises them; this one is put in the row directly)
    still comes out as text, never as markup."""
    hostile = 'mx"<&>.test</hostname><hostname>evil'
    MailHost.objects.filter(pk=cast.host.pk).update(imap_host=hostile, smtp_host=hostile)
    body = anonymous().get(THUNDERBIRD, {"emailaddress": "a@alpha-domain.test"}).content
    assert thunderbird_servers(body)["imap"]["hostname"] == hostile
    protocols = outlook_protocols(anonymous().post(OUTLOOK, outlook_request("a@alpha-domain.test"),
                                                   content_type="text/xml").content)
    assert protocols["SMTP"]["Server"] == hostile
    profile = plistlib.loads(client_for(cast, "mailbox_a").get(reverse("screens:me_mobileconfig")).content)
    assert profile["PayloadContent"][0]["IncomingMailServerHostName"] == hostile


def test_a_host_without_a_name_answers_nothing(cast: Cast) -> None:
    MailHost.objects.filter(pk=cast.host.pk).update(fqdn="")
    assert anonymous().get(THUNDERBIRD, {"emailaddress": "a@alpha-domain.test"}).status_code == 404
    assert anonymous().post(OUTLOOK, outlook_request("a@alpha-domain.test"),
                            content_type="text/xml").status_code == 404
    assert client_for(cast, "mailbox_a").get(reverse("screens:me_mobileconfig")).status_code == 404


def test_thunderbird_asks_with_get_only(cast: Cast) -> None:
    assert anonymous().post(THUNDERBIRD, {"emailaddress": "a@alpha-domain.test"}).status_code == 405
    assert anonymous().head(THUNDERBIRD, {"emailaddress": "a@alpha-domain.test"}).status_code == 200


# --- Outlook -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [OUTLOOK, "/Autodiscover/Autodiscover.xml"])
def test_outlook_gets_the_servers_of_the_settings_page(cast: Cast, path: str) -> None:
    page = page_servers(cast)
    client = Client(enforce_csrf_checks=True)  # Outlook has no CSRF token
    response = client.post(path, outlook_request("AlphaUser@Alpha-Domain.test"), content_type="text/xml")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    protocols = outlook_protocols(response.content)
    assert list(protocols) == ["IMAP", "SMTP", "POP3"]
    for kind in ("IMAP", "SMTP", "POP3"):
        host, port, security = page[kind]
        protocol = protocols[kind]
        assert (protocol["Server"], int(protocol["Port"])) == (host, port)
        assert protocol["Encryption"] == {"SSL/TLS": "SSL", "STARTTLS": "TLS"}[security]
        assert protocol["LoginName"] == "alphauser@alpha-domain.test"
        assert (protocol["SPA"], protocol["SSL"], protocol["AuthRequired"], protocol["DomainRequired"]) == (
            "off", "on", "on", "off")
    assert protocols["SMTP"]["UsePOPAuth"] == "on"


def test_outlook_at_the_autodiscover_host_name_and_by_get(cast: Cast) -> None:
    client = anonymous()
    by_name = client.post(OUTLOOK, outlook_request("a@alpha-domain.test"), content_type="text/xml",
                          HTTP_HOST="autodiscover.alpha-domain.test")
    assert by_name.status_code == 200
    by_get = client.get(OUTLOOK, {"emailaddress": "a@alpha-domain.test"})
    assert by_get.status_code == 200 and by_get.content == by_name.content
    assert client.post(OUTLOOK, outlook_request("a@alpha-domain.test"), content_type="text/xml",
                       HTTP_HOST="autodiscover.bravo-domain.test").status_code == 404
    assert client.put(OUTLOOK, outlook_request("a@alpha-domain.test")).status_code == 405


XXE = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
    "<Request><EMailAddress>&x;@alpha-domain.test</EMailAddress></Request></Autodiscover>"
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    "<Autodiscover><Request><EMailAddress>&d;@alpha-domain.test</EMailAddress></Request></Autodiscover>"
)
# A harmless internal entity that spells a valid address: refused all the same (any DOCTYPE is).
INTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "a">]>'
    "<Autodiscover><Request><EMailAddress>&x;@alpha-domain.test</EMailAddress></Request></Autodiscover>"
)
BARE_DOCTYPE = outlook_request("a@alpha-domain.test").decode().replace(
    "<Autodiscover", "<!DOCTYPE Autodiscover><Autodiscover", 1)
PARAMETER_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>'
    "<Autodiscover><Request><EMailAddress>a@alpha-domain.test</EMailAddress></Request></Autodiscover>"
)


@pytest.mark.parametrize("body", [
    XXE, LAUGHS, INTERNAL_ENTITY, PARAMETER_ENTITY, BARE_DOCTYPE,
    "not xml at all", "", "<Autodiscover><Request></Request></Autodiscover>",
    # Two addresses, an address made of entities that spell a CRLF or a `<`, an undeclared entity.
    outlook_request("a@alpha-domain.test").decode().replace("</Request>",
                                                            "<EMailAddress>b@alpha-domain.test</EMailAddress></Request>"),
    outlook_request("a&#13;&#10;Bcc: x@alpha-domain.test").decode(),
    outlook_request("a&lt;b@alpha-domain.test").decode(),
    outlook_request("&undeclared;@alpha-domain.test").decode(),
])
def test_outlook_hostile_requests_are_refused(cast: Cast, body: str) -> None:
    response = anonymous().post(OUTLOOK, body.encode(), content_type="text/xml")
    assert response.status_code == 400
    assert response.content == b""


def test_outlook_huge_body_is_refused_unread(cast: Cast) -> None:
    padding = "<Pad>" + "x" * 200_000 + "</Pad>"
    body = outlook_request("a@alpha-domain.test").decode().replace("<Request>", f"<Request>{padding}")
    response = anonymous().post(OUTLOOK, body.encode(), content_type="text/xml")
    assert response.status_code == 413
    assert response.content == b""


# --- Apple ---------------------------------------------------------------------------------------


def profile_of(client: Client) -> tuple[Any, dict[str, Any]]:
    response = client.get(reverse("screens:me_mobileconfig"))
    assert response.status_code == 200
    return response, plistlib.loads(response.content)


def test_a_mailbox_user_downloads_its_apple_profile(cast: Cast) -> None:
    page = page_servers(cast)
    response, profile = profile_of(client_for(cast, "mailbox_a"))
    assert response["Content-Type"] == "application/x-apple-aspen-config"
    assert response["Content-Disposition"] == 'attachment; filename="alphauser@alpha-domain.test.mobileconfig"'
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadVersion"] == 1
    (account,) = profile["PayloadContent"]
    assert account["PayloadType"] == "com.apple.mail.managed"
    assert account["EmailAccountType"] == "EmailTypeIMAP"
    assert account["EmailAddress"] == "alphauser@alpha-domain.test"
    assert account["EmailAccountName"] == "Alpha User"
    assert (account["IncomingMailServerHostName"], account["IncomingMailServerPortNumber"]) == page["IMAP"][:2]
    assert (account["OutgoingMailServerHostName"], account["OutgoingMailServerPortNumber"]) == page["SMTP"][:2]
    login = "alphauser@alpha-domain.test"
    assert account["IncomingMailServerUsername"] == account["OutgoingMailServerUsername"] == login
    assert account["IncomingMailServerUseSSL"] is True and account["OutgoingMailServerUseSSL"] is True
    assert account["IncomingMailServerAuthentication"] == "EmailAuthPassword"
    # No password inside: Mail asks for it when the profile is installed.
    assert not [key for key in account if "Password" in key and key != "OutgoingPasswordSameAsIncomingPassword"]
    assert b"Panel-" not in response.content
    # UUIDs unique within and across downloads; the identifier stays (installing again replaces).
    _again, second = profile_of(client_for(cast, "mailbox_a"))
    uuids = {profile["PayloadUUID"], account["PayloadUUID"], second["PayloadUUID"],
             second["PayloadContent"][0]["PayloadUUID"]}
    assert len(uuids) == 4
    assert profile["PayloadIdentifier"] == second["PayloadIdentifier"]
    assert profile["PayloadIdentifier"].startswith("test.alpha-domain.")
    assert account["PayloadIdentifier"].startswith(profile["PayloadIdentifier"] + ".")


def test_a_pop_only_mailbox_gets_a_pop_profile_in_its_language(cast: Cast) -> None:
    mailbox = MailboxFactory(domain=cast.a.domain, local_part="popper", allow_imap=False)
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    login_mailbox(client, mailbox)
    _response, profile = profile_of(client)
    account = profile["PayloadContent"][0]
    assert account["EmailAccountType"] == "EmailTypePOP"
    assert account["IncomingMailServerPortNumber"] == 995
    assert profile["PayloadDisplayName"] == "Messagerie : popper@alpha-domain.test"


def test_the_profile_is_a_mailbox_users_own(cast: Cast) -> None:
    url = reverse("screens:me_mobileconfig")
    for role in ("anonymous", "customer_a", "operator", "reseller_a"):
        response = client_for(cast, role).get(url)
        assert response.status_code == 302 and response["Location"] == reverse("screens:login"), role
    _response, other = profile_of(client_for(cast, "domain_admin_b"))
    assert other["PayloadContent"][0]["EmailAddress"] == "postmaster@bravo-domain.test"
    assert b"alpha" not in plistlib.dumps(other)


def test_the_settings_page_links_the_profile_for_the_user_only(cast: Cast) -> None:
    body = client_for(cast, "mailbox_a").get(reverse("screens:me_mail_settings")).content.decode()
    assert f'href="{reverse("screens:me_mobileconfig")}"' in body
    assert "It holds no password" in body
    manager = client_for(cast, "customer_a").get(reverse("screens:mail_settings", args=[cast.a.domain.pk]))
    assert reverse("screens:me_mobileconfig") not in manager.content.decode()
