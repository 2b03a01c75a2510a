"""DKIM with real mail: a mailbox sends through the stack's submission port (authenticated) to an
outside address; rspamd, Postfix's milter, signs it with the key the panel made and the agent
wrote; the message at the sink carries a DKIM-Signature d=<domain>, s=<selector> that verifies
(dkimpy) against the record published in a real DNS server (dnsmasq: tests/dnsserver.py), and no
longer verifies once its body is changed. An alias domain's mail is signed too. What the host only
re-sends (a forward of an outsider's message claiming a hosted From:) is never signed d=<domain>."""

from __future__ import annotations

from email.message import EmailMessage

import dkim as dkimpy  # type: ignore[import-untyped]
import dns.message
import dns.query
import dns.rdatatype
import pytest

from hosting import dkim as keys
from hosting.models import DkimKey, Domain
from mail.services import mailbox_set_vacation
from mailhost.stack import rspamd
from provisioning import dkim
from provisioning.domains import alias_domain_create, domain_verify
from tests.dnsserver import DnsServer, dns_server  # noqa: F401 - the fixture
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import send, sink_messages, wait_for, with_subject

pytestmark = pytest.mark.e2e


def dnsfunc_of(server: DnsServer):  # noqa: ANN201 - dkimpy's dnsfunc
    """dkimpy's DNS lookup, asked of the test's DNS server only."""

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        query = dns.message.make_query(name.decode(), dns.rdatatype.TXT)
        answer = dns.query.udp(query, "127.0.0.1", port=server.port, timeout=timeout)
        texts = [b"".join(rdata.strings) for rrset in answer.answer for rdata in rrset]
        return texts[0] if texts else b""

    return lookup


def rspamd_read_maps(e2e: E2E, *lines: str) -> None:
    """Wait until the agent's DKIM maps hold `lines` and rspamd has read them since their last
    change (its log names each map's new modification time, then the map read)."""
    root = e2e.stack.config.dkim_root
    wait_for(lambda: all(line in (root / "selectors.map").read_text() for line in lines), timeout=15)
    log = rspamd.log_file(e2e.stack.config)

    def read_since_change() -> bool:
        text = log.read_text(errors="replace")
        for name in ("selectors.map", "paths.map"):
            path = root / name
            changed = text.rfind(f"new mtime is {int(path.stat().st_mtime)} ")
            if changed < 0 or not any("read hash of" in line and line.endswith(f" {path}")
                                      for line in text[changed:].splitlines()):
                return False
        return True

    wait_for(read_since_change, timeout=30)


def publish(server: DnsServer, *domains: Domain) -> None:
    records: dict[str, list[str]] = {}
    for domain in domains:
        for key in dkim.published_keys(domain):
            records[keys.record_name(key.selector, domain.name)] = [keys.txt_value(key.public_key)]
    server.publish(txt=records)


def signed_with_key(e2e: E2E, domain: Domain) -> DkimKey:
    """The domain's key made (the panel's bulk task may have made it already) and on its host."""
    key = dkim.dkim_key_ensure(domain)
    assert key is not None
    domain.refresh_from_db()
    e2e.wait_applied(domain)
    return key


def raw(message: EmailMessage) -> bytes:
    return message.as_bytes()


def test_a_message_leaves_signed_and_verifies_against_the_published_record(
        e2e: E2E, dns_server: DnsServer) -> None:  # noqa: F811
    domain = e2e.domain("dkim")
    alice = e2e.mailbox(domain, "alice")
    key = signed_with_key(e2e, domain)
    rspamd_read_maps(e2e, f"{domain.name} {key.selector}\n")
    publish(dns_server, domain)

    address = f"alice@{domain.name}"
    send(e2e.stack, address, "friend@elsewhere.test", f"signed {domain.name}", "Hello from a signed domain.\n",
         port=e2e.stack.config.submission_port, login=(address, PASSWORD))
    message = wait_for(lambda: with_subject(sink_messages(e2e.stack, "friend@elsewhere.test"),
                                            f"signed {domain.name}"), timeout=20)[0]
    signature = str(message["DKIM-Signature"])
    tags = dict(part.strip().split("=", 1) for part in signature.replace("\r\n", "").replace("\n", "").split(";")
                if "=" in part)
    assert tags["d"] == domain.name and tags["s"] == key.selector and tags["a"] == "rsa-sha256"

    data = raw(message)
    lookup = dnsfunc_of(dns_server)
    assert dkimpy.verify(data, dnsfunc=lookup)
    tampered = data.replace(b"Hello from a signed domain.", b"Hello from a changed domain.")
    assert tampered != data and not dkimpy.verify(tampered, dnsfunc=lookup)
    # And against another key published under the same name: refused.
    other = keys.new_key()
    dns_server.publish(txt={keys.record_name(key.selector, domain.name): [keys.txt_value(other.public_b64)]})
    assert not dkimpy.verify(data, dnsfunc=lookup)
    assert alice.pk


def test_an_alias_domains_mail_is_signed(e2e: E2E, dns_server: DnsServer) -> None:  # noqa: F811
    domain = e2e.domain("dkimv")
    e2e.mailbox(domain, "bob")
    alias = alias_domain_create(domain=domain, name=f"alias-{domain.name}", acting_user=e2e.operator)
    domain_verify(domain=alias, acting_user=e2e.operator)
    alias.refresh_from_db()
    key = signed_with_key(e2e, domain)
    e2e.wait_applied(alias)
    rspamd_read_maps(e2e, f"{domain.name} {key.selector}\n", f"{alias.name} {key.selector}\n")
    publish(dns_server, domain, alias)
    lookup = dnsfunc_of(dns_server)

    # Bob writes from the alias domain's address: signed d=<alias>, with the same key.
    address = f"bob@{alias.name}"
    send(e2e.stack, address, "friend@elsewhere.test", f"alias {alias.name}", "From the alias.\n",
         port=e2e.stack.config.submission_port, login=(f"bob@{domain.name}", PASSWORD))
    message = wait_for(lambda: with_subject(sink_messages(e2e.stack, "friend@elsewhere.test"),
                                            f"alias {alias.name}"), timeout=20)[0]
    assert f"d={alias.name}" in str(message["DKIM-Signature"]).replace(" ", "")
    assert dkimpy.verify(raw(message), dnsfunc=lookup)


def test_a_forged_from_relayed_by_a_forward_is_not_signed(e2e: E2E, dns_server: DnsServer) -> None:  # noqa: F811
    """An outsider writes From: the boss of a hosted domain to that domain's forward: the host
    re-sends it from 127.0.0.1, and must not sign it d=<domain> (a forged From: would then pass
    DMARC). The vacation reply of a mailbox, sent the same way, is not signed either (for now)."""
    from mail.services import forward_create

    domain = e2e.domain("forge")
    bob = e2e.mailbox(domain, "bob")
    forward_create(domain=domain, local_part="relay", destinations=["victim@elsewhere.test"],
                   acting_user=e2e.operator)
    mailbox_set_vacation(mailbox=bob, enabled=True, subject="Away", message="Back on Monday.",
                         acting_user=e2e.operator)
    key = signed_with_key(e2e, domain)
    rspamd_read_maps(e2e, f"{domain.name} {key.selector}\n")
    publish(dns_server, domain)

    send(e2e.stack, f"boss@{domain.name}", f"relay@{domain.name}", f"forged {domain.name}", "Pay this.\n")
    forged = wait_for(lambda: with_subject(sink_messages(e2e.stack, "victim@elsewhere.test"),
                                           f"forged {domain.name}"), timeout=20)[0]
    assert f"d={domain.name}" not in str(forged.get("DKIM-Signature", "")).replace(" ", "")

    send(e2e.stack, "stranger@elsewhere.test", f"bob@{domain.name}", "are you there?", "Hi Bob.\n")
    reply = wait_for(lambda: sink_messages(e2e.stack, "stranger@elsewhere.test"), timeout=20)[0]
    assert f"d={domain.name}" not in str(reply.get("DKIM-Signature", "")).replace(" ", "")


def test_a_forwarded_message_still_passes_at_the_destination(e2e: E2E, dns_server: DnsServer) -> None:  # noqa: F811
    """Mail from elsewhere, DKIM-signed by its author's domain, to a forward of a hosted domain:
    at the destination (the sink) the author's signature still verifies (the host changed no byte
    of what it signs) and the host's ARC seal (d=<the forward's domain>) verifies: cv=pass."""
    from mail.services import forward_create

    domain = e2e.domain("arc")
    forward_create(domain=domain, local_part="team", destinations=["member@elsewhere.test"],
                   acting_user=e2e.operator)
    key = signed_with_key(e2e, domain)
    rspamd_read_maps(e2e, f"{domain.name} {key.selector}\n")
    author = keys.new_key()
    records = {keys.record_name(k.selector, domain.name): [keys.txt_value(k.public_key)]
               for k in dkim.published_keys(domain)}
    records[keys.record_name("out1", "outside.test")] = [keys.txt_value(author.public_b64)]
    dns_server.publish(txt=records)
    lookup = dnsfunc_of(dns_server)

    message = EmailMessage()
    message["From"] = "writer@outside.test"
    message["To"] = f"team@{domain.name}"
    message["Subject"] = f"forwarded {domain.name}"
    message["Date"] = "Tue, 08 Dec 2026 04:00:00 +0000"
    message["Message-ID"] = f"<forwarded.{domain.name}@outside.test>"
    message.set_content("A message its author signed.\n")
    data = message.as_bytes()
    signed = dkimpy.sign(data, b"out1", b"outside.test", author.private_pem.encode(),
                         include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + data
    import smtplib

    with smtplib.SMTP("127.0.0.1", e2e.stack.config.smtp_port, timeout=30) as smtp:
        smtp.sendmail("writer@outside.test", [f"team@{domain.name}"], signed)
    arrived = wait_for(lambda: with_subject(sink_messages(e2e.stack, "member@elsewhere.test"),
                                            f"forwarded {domain.name}"), timeout=20)[0]
    data = raw(arrived)
    assert dkimpy.verify(data, dnsfunc=lookup)  # the author's signature, untouched
    seal = str(arrived["ARC-Seal"]).replace(" ", "").replace("\n", "")
    assert f"d={domain.name}" in seal and f"s={key.selector}" in seal
    cv, _results, reason = dkimpy.arc_verify(data, dnsfunc=lookup)
    assert cv == b"pass", reason
