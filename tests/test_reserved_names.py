"""Issue 15, item 1: the names a mail host uses are never a tenant's domain.

A list's mail goes through `<domain>.mlmmj.invalid` and catch-all "delete" through
`discard.invalid` inside Postfix (mailhost/render.py); the host answers to its own name
(MailHost.fqdn, the test stack's `mail.panel.test`), `localhost` and `localhost.localdomain`; and
the special-use names of RFC 6761/6762 and the like never belong to anyone. The panel refuses
them at the one rule every entry uses (`hosting.validators.normalize_hosted_domain`: the service
`domain_create`, the Espace Client's page, the admin's form), and the agent refuses a document
for one (`render.rows`), so a panel that let one through still changes nothing on the host.
Real mail through the real stack: tests/e2e/test_reserved_names_e2e.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from hosting.models import AuditEvent, Domain, Plan
from hosting.validators import STACK_HOSTNAME, normalize_domain, normalize_hosted_domain
from mail.accounts import domain_create_with_accounts
from mailhost import contract, render
from mailhost.apply import HostConfig, apply
from mailhost.contract import DocumentError
from provisioning.domains import domain_create
from tests.conftest import Cast, client_for
from tests.factories import MailHostFactory
from tests.test_apply import cfg, document, dump, mailbox  # noqa: F401 - cfg is a fixture

PASSWORD = "Reserved-Names-2026"

SPECIAL_USE = [
    "alpha-domain.test.mlmmj.invalid",  # domain A's lists' internal routing
    "Bravo-Domain.Test.MLMMJ.invalid.",
    "discard.invalid",  # catch-all "delete"
    "www.discard.invalid",  # www. dropped, still refused
    "mlmmj.invalid",
    "localhost.localdomain",
    "mail.localhost",
    "printer.local",
    "shop.example",
    "abcdefghijklmnop.onion",
    "home.arpa",
    "1.0.0.127.in-addr.arpa",
    "router.internal",
    "x.alt",
    "nas.home",
    "intranet.corp",
    "box.mail",
]
HOST_NAMES = [
    "mx1.hosting.test",  # the cast's mail host (MailHost.fqdn)
    "MX1.Hosting.Test.",
    "www.mx1.hosting.test",
    "lists.mx1.hosting.test",  # under it
    STACK_HOSTNAME,  # Postfix's myhostname on the test stack
]
HOSTABLE = [
    "hosting.test",  # above a host's name: someone's domain
    "invalid.test", "local.fr", "localhost.fr", "mail.fr", "example.com", "arpa.fr",
    "discard-invalid.test", "panel.test",
]


@pytest.fixture(autouse=True)
def roomy(cast: Cast) -> None:
    Plan.objects.filter(pk__in=[cast.a.plan.pk, cast.b.plan.pk]).update(max_domains=-1, max_mailboxes=-1)


@pytest.mark.parametrize("name", SPECIAL_USE + HOST_NAMES)
def test_the_rule_refuses_the_hosts_names(cast: Cast, name: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        normalize_hosted_domain(name)
    assert excinfo.value.code == "reserved"


@pytest.mark.parametrize("name", HOSTABLE)
def test_the_rule_takes_names_that_only_look_alike(cast: Cast, name: str) -> None:
    assert normalize_hosted_domain(name) == name


def test_an_address_may_still_be_at_such_a_name() -> None:
    """Only a hosted domain is refused: a forward to someone at the host's name is an address."""
    assert normalize_domain("mx1.hosting.test") == "mx1.hosting.test"


def test_the_messages_say_why_in_french(cast: Cast) -> None:
    with translation.override("fr"), pytest.raises(ValidationError) as excinfo:
        normalize_hosted_domain("bravo-domain.test.mlmmj.invalid")
    with translation.override("fr"):
        assert excinfo.value.messages == [
            "« bravo-domain.test.mlmmj.invalid » se termine par .invalid, un nom réservé à des usages "
            "particuliers qui n'appartient à personne (RFC 6761 et semblables) : ce ne peut pas être un "
            "domaine hébergé."
        ]
    with translation.override("fr"), pytest.raises(ValidationError) as excinfo:
        normalize_hosted_domain("mx1.hosting.test")
    with translation.override("fr"):
        assert excinfo.value.messages == [
            "« mx1.hosting.test » est le nom d'un de nos serveurs de messagerie : ce ne peut pas être un "
            "domaine hébergé."
        ]


@pytest.mark.parametrize("name", SPECIAL_USE + HOST_NAMES)
def test_the_service_refuses_and_writes_nothing(cast: Cast, name: str) -> None:
    domains, events = Domain.objects.count(), AuditEvent.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        domain_create_with_accounts(pack=cast.b.pack, name=name, password=PASSWORD, acting_user=cast.operator)
    assert excinfo.value.code == "reserved"
    with pytest.raises(ValidationError):
        domain_create(pack=cast.b.pack, name=name, acting_user=cast.operator)
    assert (Domain.objects.count(), AuditEvent.objects.count()) == (domains, events)


def test_every_mail_hosts_name_is_refused(cast: Cast) -> None:
    MailHostFactory(name="mx7", fqdn="Smtp7.Provider.Test.")
    MailHostFactory(name="mx8", fqdn="192.0.2.8")  # an address names no domain
    with pytest.raises(ValidationError):
        normalize_hosted_domain("smtp7.provider.test")
    assert normalize_hosted_domain("provider.test") == "provider.test"


def test_the_names_mail_clients_are_given_are_refused(cast: Cast) -> None:
    """The IMAP, POP3, SMTP and webmail names a host gives its users' mail clients are its own too."""
    MailHostFactory(name="mx7", fqdn="mx7.provider.test", imap_host="imap.provider.test", pop3_host="Pop.Provider.Test",
                    smtp_host="smtp.provider.test", webmail_url="https://webmail.provider.test/roundcube/")
    for name in ("imap.provider.test", "pop.provider.test", "smtp.provider.test", "webmail.provider.test",
                 "www.imap.provider.test"):
        with pytest.raises(ValidationError):
            normalize_hosted_domain(name)
    assert normalize_hosted_domain("provider.test") == "provider.test"


@pytest.mark.parametrize("name", ["bravo-domain.test.mlmmj.invalid", "discard.invalid", "localhost.localdomain",
                                  "mx1.hosting.test"])
def test_the_espace_client_page_refuses_in_french(cast: Cast, name: str) -> None:
    client = client_for(cast, "customer_a", language="fr")
    before = Domain.objects.count()
    response = client.post(reverse("screens:domain_add", kwargs={"pk": cast.a.pack.pk}),
                           {"name": name, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 400
    errors = response.context["form"].errors["name"]
    assert len(errors) == 1 and "ce ne peut pas être un domaine hébergé" in errors[0], errors
    assert Domain.objects.count() == before


@pytest.mark.parametrize("name", ["discard.invalid", "www.mx1.hosting.test"])
def test_the_admin_refuses(cast: Cast, name: str) -> None:
    before = Domain.objects.count()
    response = client_for(cast, "reseller_a").post(reverse("admin:hosting_domain_add"), {
        "pack": cast.a.pack.pk, "name": name, "postmaster_password": PASSWORD,
    })
    assert response.status_code == 200
    assert "it cannot be a hosted domain" in response.content.decode()
    assert Domain.objects.count() == before


# --- the agent, whatever the panel sends ------------------------------------------------------


def test_the_contract_list_covers_the_hosts_routing() -> None:
    assert contract.reserved_suffix(render.DISCARD_DOMAIN) == "invalid"
    assert contract.reserved_suffix(f"bravo.test.{render.LIST_INTERNAL_DOMAIN}") == "invalid"
    assert render.DISCARD_ADDRESS == "discard@discard.invalid"
    assert contract.reserved_suffix("bravo.test") is None
    assert contract.reserved_suffix("invalid.test") is None


@pytest.mark.parametrize("name", ["bravo.test.mlmmj.invalid", "discard.invalid", "localhost.localdomain",
                                  "printer.local"])
def test_the_agent_refuses_a_document_for_such_a_domain(cfg: HostConfig, name: str) -> None:  # noqa: F811
    lists = [{"name": "news", "owner": "owner@bravo.test", "request_address": True}]
    apply(document("bravo.test", lists=lists, catchall={"mode": "delete", "target": ""}), cfg)
    before = dump(cfg)
    thief = document(name, mailboxes=[mailbox("thief")], catchall={"mode": "remote", "target": "thief@evil.test"},
                     forwards=[{"local_part": "news", "destinations": ["thief@evil.test"]},
                               {"local_part": "discard", "destinations": ["thief@evil.test"]}])
    with pytest.raises(DocumentError, match="reserved domain name"):
        apply(thief, cfg)
    assert dump(cfg) == before
    assert not (cfg.vmail_root / name).exists()


def test_the_agent_still_removes_such_a_domain(cfg: HostConfig, tmp_path: Path) -> None:  # noqa: F811
    """A domain hosted before the rule can still be deleted: an absent document is applied."""
    outcome = apply(document("printer.local", revision=2, state="absent"), cfg)
    assert outcome is not None
