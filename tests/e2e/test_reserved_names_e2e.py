"""Issue 15, item 1, by real mail: whatever domain a customer tries to add, a list's post and a
"delete" catch-all of another customer keep working.

The mail host routes `news@bravo` through `news@bravo.mlmmj.invalid` (mlmmj's transport) and
catch-all "delete" through `discard@discard.invalid`. A thief who could host
`bravo.mlmmj.invalid` or `discard.invalid` and put a forward `news` or `discard` there would take
bravo's list posts and every "deleted" mail of the host (seen before the fix). The thief tries
through the Espace Client's page and through the service, the names the host uses and its own
names; each is refused, and mail flows as before. Should one be accepted, the test goes on as the
thief would (proven by hand, the forwards made) so that the mail shows what was at stake.
"""

from __future__ import annotations

import secrets

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from hosting.models import Domain, User
from hosting.services import customer_create, pack_create
from lists.services import list_create, list_member_add
from mail.accounts import domain_create_with_accounts
from mail.services import catchall_set, forward_create
from provisioning.domains import domain_verify
from tests.e2e.conftest import E2E, PASSWORD
from tests.e2e.mailclient import pop3_messages, send, sink_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def subjects(e2e: E2E, address: str) -> list[str]:
    return [str(m["Subject"]) for m in pop3_messages(e2e.stack, address, PASSWORD)]


def received(e2e: E2E, address: str, subject: str) -> list[str]:
    """The subjects of the messages that left the host for `address` (the stack's sink) with `subject`."""
    return [str(m["Subject"]) for m in sink_messages(e2e.stack, address) if subject in str(m["Subject"])]


def postfix_log(e2e: E2E) -> str:
    return e2e.stack.config.postfix_log.read_text(errors="replace")


def test_a_list_post_and_a_delete_catch_all_survive_any_domain_a_customer_adds(e2e: E2E) -> None:
    # bravo: a list with a local and an outside subscriber, unknown names deleted.
    bravo = e2e.domain("bravo")
    e2e.mailbox(bravo, "owner")
    e2e.mailbox(bravo, "reader")
    news = list_create(domain=bravo, name="news", owner=f"owner@{bravo.name}", sub_confirm=False,
                       acting_user=e2e.operator)
    friend = f"friend{secrets.token_hex(3)}@outside.test"
    for address in (f"reader@{bravo.name}", friend):
        list_member_add(mailing_list=news, address=address, acting_user=e2e.operator)
    catchall_set(domain=bravo, mode="delete", acting_user=e2e.operator)
    e2e.wait_applied(bravo)

    # The thief: another customer of the same mail host, in the Espace Client.
    thief_customer = customer_create(reseller=None, name="Thief", acting_user=e2e.operator)
    thief_pack = pack_create(customer=thief_customer, plan=e2e.pack.plan, mail_host=e2e.host, acting_user=e2e.operator)
    thief_user = User.objects.create_user(email=f"thief{secrets.token_hex(3)}@people.test", password=None,
                                          customer=thief_customer)
    page = Client(HTTP_ACCEPT_LANGUAGE="fr")
    page.force_login(thief_user)
    thief = f"thief{secrets.token_hex(3)}@outside.test"
    attempts = [
        f"{bravo.name}.mlmmj.invalid", f"WWW.{bravo.name.upper()}.MLMMJ.INVALID.", "discard.invalid",
        "mlmmj.invalid", e2e.stack.config.hostname, "localhost.localdomain",
    ]
    accepted: list[str] = []
    for name in attempts:
        response = page.post(reverse("screens:domain_add", kwargs={"pk": thief_pack.pk}),
                             {"name": name, "password1": PASSWORD, "password2": PASSWORD})
        if response.status_code == 400:
            assert "ce ne peut pas être un domaine hébergé" in response.content.decode(), name
        else:
            accepted.append(name)
        try:
            domain_create_with_accounts(pack=thief_pack, name=name, password=PASSWORD, acting_user=e2e.operator)
            accepted.append(name)
        except ValidationError as error:
            assert error.code in ("reserved", "unique"), (name, error)
    # What an accepted name would let the thief do: prove it, and forward the host's names to him.
    for domain in Domain.objects.filter(pack=thief_pack):
        domain_verify(domain=domain, acting_user=e2e.operator)
        for local in ("news", "discard"):
            forward_create(domain=domain, local_part=local, destinations=[thief], acting_user=e2e.operator)
        catchall_set(domain=domain, mode="remote", target=thief, acting_user=e2e.operator)
        e2e.wait_applied(domain)

    # A subscriber's post reaches both subscribers; a "deleted" mail is discarded; the thief gets nothing.
    post, lost = f"post {secrets.token_hex(3)}", f"lost {secrets.token_hex(3)}"
    send(e2e.stack, f"reader@{bravo.name}", f"news@{bravo.name}", post, "to the list")
    unknown = f"nobody{secrets.token_hex(3)}@{bravo.name}"
    send(e2e.stack, "someone@outside.test", unknown, lost, "to an unknown name")
    wait_for(lambda: received(e2e, friend, post) or received(e2e, thief, post), timeout=30)
    delivery = wait_for(lambda: [line for line in postfix_log(e2e).splitlines()
                                 if f"orig_to=<{unknown}>" in line and "status=sent" in line], timeout=30)
    stolen = [str(m["Subject"]) for m in sink_messages(e2e.stack, thief)]
    assert stolen == [], f"the thief got {stolen} through {accepted}"
    assert received(e2e, friend, post)
    wait_for(lambda: any(post in s for s in subjects(e2e, f"reader@{bravo.name}")), timeout=30)
    assert all("to=<discard@discard.invalid>" in line for line in delivery), delivery
    assert accepted == [], f"accepted: {accepted}"
    assert not Domain.objects.filter(pack=thief_pack).exists()
