"""A domain claimed by a customer is served only once proven his, by real mail (issue 15, item 2).

A claimant adds a partner's domain on the mail host that another tenant uses, with a mailbox on
it. Until the domain is proven, the host does not take it for local: the other tenant's mail to
it (through the host's authenticated submission, and through that tenant's own forward) leaves
for the domain's real MX (the stack's sink, ROOT/sink/) and never reaches the claimant's box,
which cannot even log in. Once the TXT record the page shows is published in the DNS server the
panel asks (a real dnsmasq on 127.0.0.1) and "Check now" is pressed, the whole domain reaches
the host and mail to it is delivered there.
"""

from __future__ import annotations

import dataclasses
import poplib

import pytest
from django.test import Client
from django.urls import reverse

from hosting.models import Domain, Plan, VerifiedHow
from hosting.services import customer_create, pack_create
from mail.services import forward_create
from provisioning.domains import domain_create, proof_record
from tests.dnsserver import DnsServer, dns_server  # noqa: F401 - the fixture
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import pop3_messages, send, sink_messages, wait_for, with_subject

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def claimant_of(e2e: E2E) -> E2E:
    """Another customer with its own pack on the same mail host."""
    customer = customer_create(reseller=None, name="E2E claimant", acting_user=e2e.operator)
    pack = pack_create(customer=customer, plan=Plan.objects.get(pk=e2e.pack.plan_id), mail_host=e2e.host,
                       acting_user=e2e.operator)
    return dataclasses.replace(e2e, pack=pack)


def test_an_unproven_domain_is_not_served_until_its_txt_record_is_published(
        e2e: E2E, dns_server: DnsServer) -> None:  # noqa: F811
    tenant = e2e.domain("tenant")  # the other tenant's domain (proven by hand: E2E.domain)
    alice = e2e.mailbox(tenant, "alice")
    claimant = claimant_of(e2e)
    partner = domain_create(pack=claimant.pack, name=f"partner{tenant.name.removeprefix('tenant')}",
                            acting_user=e2e.operator)
    claimant.mailbox(partner, "boss")
    forward_create(domain=tenant, local_part="team", destinations=[f"boss@{partner.name}"], acting_user=e2e.operator)
    e2e.wait_applied(partner)
    e2e.wait_applied(tenant)
    boss = f"boss@{partner.name}"
    stack = e2e.stack

    # Before: alice's submission and a forward of her domain to boss@partner leave the host.
    send(stack, alice.address, boss, "submitted before", "to the partner\n", port=stack.config.submission_port,
         login=(alice.address, PASSWORD))
    send(stack, "someone@outside.test", f"team@{tenant.name}", "forwarded before", "through alice's forward\n")
    left = wait_for(lambda: len(sink_messages(stack, boss)) >= 2 and sink_messages(stack, boss), timeout=30)
    assert sorted(m["Subject"] for m in left) == ["forwarded before", "submitted before"]
    with pytest.raises(poplib.error_proto):  # the host knows no mailbox of the claimed domain
        pop3_messages(stack, boss, PASSWORD)

    # The page says what to publish; published, "Check now" proves the domain.
    name, text = proof_record(partner)
    client = Client()
    client.force_login(e2e.operator)
    page = client.get(reverse("screens:pack", args=[claimant.pack.pk])).content.decode()
    assert name in page and text in page
    dns_server.publish(txt={name: [text]})
    response = client.post(reverse("screens:domain_check", args=[partner.pk]), {"back": "pack"})
    assert response.status_code == 302
    assert Domain.objects.get(pk=partner.pk).verified_how == VerifiedHow.TXT
    e2e.wait_applied(partner)

    # After: the same mail is delivered on the host, in the claimant's (now proven) box.
    send(stack, alice.address, boss, "submitted after", "to the partner\n", port=stack.config.submission_port,
         login=(alice.address, PASSWORD))
    send(stack, "someone@outside.test", f"team@{tenant.name}", "forwarded after", "through alice's forward\n")
    got = wait_for(lambda: len(pop3_messages(stack, boss, PASSWORD)) >= 2 and pop3_messages(stack, boss, PASSWORD),
                   timeout=30)
    assert sorted(m["Subject"] for m in got) == ["forwarded after", "submitted after"]
    assert not with_subject(sink_messages(stack, boss), "submitted after")
