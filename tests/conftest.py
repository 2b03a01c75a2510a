"""The fixed cast every test uses (healthchecks' alice/bob/charlie, for a hosting company).

Two resellers (A and B), each with a customer, a plan, a pack and a domain; on domain A a domain
admin (postmaster) and a plain mailbox user; a support agent; the operator. Every name carries a
marker ("alpha"/"bravo") so that a test can check that one tenant never sees the other's data.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client
from django.test.utils import override_settings

from hosting.models import Customer, Domain, MailHost, Pack, Plan, Reseller, User
from hosting.roles import SUPPORT_GROUP
from hostlink import push
from mail.auth import SESSION_HASH, SESSION_ID, session_hash
from mail.models import Mailbox
from mailhost import contract
from provisioning import revisions
from tests.factories import (
    CustomerFactory,
    DomainFactory,
    MailboxFactory,
    MailHostFactory,
    PackFactory,
    PlanFactory,
    ResellerFactory,
    UserFactory,
)


@pytest.fixture(autouse=True, scope="session")
def test_environment(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Plain static storage (no collectstatic manifest) and a cache namespace of this run only,
    on the configured cache backend (Redis in CI). Pushes the tests run by hand one after the
    other go at once (no PUSH_INTERVAL_MS: tests/test_provisioning.py tests it; the workers of
    the e2e tests keep the default)."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-{secrets.token_hex(4)}"
    if "filebased" in caches["default"]["BACKEND"]:
        caches["default"]["LOCATION"] = str(tmp_path_factory.mktemp("cache"))
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    fast_hashers = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # users' hashes only
    static_root = tmp_path_factory.mktemp("static")  # never the real var/static
    with override_settings(CACHES=caches, STORAGES=storages, PASSWORD_HASHERS=fast_hashers,
                           STATIC_ROOT=static_root, PUSH_INTERVAL_MS=0):
        yield


@dataclass
class Tenant:
    reseller: Reseller
    reseller_staff: User
    customer: Customer
    customer_user: User
    plan: Plan
    pack: Pack
    domain: Domain
    postmaster: Mailbox


@dataclass
class Cast:
    host: MailHost
    a: Tenant
    b: Tenant
    mailbox_user: Mailbox
    support: User
    operator: User

    def seat(self, role: str) -> Any:
        """The object that logs in for a role name used in the matrices."""
        return {
            "anonymous": None,
            "operator": self.operator,
            "support": self.support,
            "reseller_a": self.a.reseller_staff,
            "reseller_b": self.b.reseller_staff,
            "customer_a": self.a.customer_user,
            "customer_b": self.b.customer_user,
            "domain_admin_a": self.a.postmaster,
            "domain_admin_b": self.b.postmaster,
            "mailbox_a": self.mailbox_user,
        }[role]


ROLES = [
    "anonymous", "operator", "support", "reseller_a", "reseller_b", "customer_a", "customer_b",
    "domain_admin_a", "domain_admin_b", "mailbox_a",
]


def make_tenant(marker: str, host: MailHost) -> Tenant:
    reseller = ResellerFactory(name=f"{marker}-reseller")
    customer = CustomerFactory(reseller=reseller, name=f"{marker}-customer")
    plan = PlanFactory(reseller=reseller, name=f"{marker}-plan")
    pack = PackFactory(customer=customer, plan=plan, mail_host=host, label=f"{marker}-pack")
    domain = DomainFactory(pack=pack, name=f"{marker}-domain.test")
    postmaster = MailboxFactory(domain=domain, local_part="postmaster", is_admin=True)
    return Tenant(
        reseller=reseller,
        reseller_staff=UserFactory(email=f"staff@{marker}-reseller.test", is_staff=True, reseller=reseller),
        customer=customer,
        customer_user=UserFactory(email=f"owner@{marker}-customer.test", customer=customer),
        plan=plan,
        pack=pack,
        domain=domain,
        postmaster=postmaster,
    )


@pytest.fixture
def cast(db: Any) -> Cast:
    host = MailHostFactory(name="mx1")
    a = make_tenant("alpha", host)
    b = make_tenant("bravo", host)
    support = UserFactory(email="agent@support.test", is_staff=True)
    support.groups.add(Group.objects.get_or_create(name=SUPPORT_GROUP)[0])
    operator = UserFactory(email="root@operator.test", is_staff=True, is_superuser=True)
    mailbox_user = MailboxFactory(domain=a.domain, local_part="alphauser", real_name="Alpha User")
    return Cast(host=host, a=a, b=b, mailbox_user=mailbox_user, support=support, operator=operator)


def login_mailbox(client: Client, mailbox: Mailbox) -> None:
    """Open a QmailAdmin-style session for `mailbox` in a test client."""
    session = client.session
    session[SESSION_ID] = mailbox.pk
    session[SESSION_HASH] = session_hash(mailbox)
    session.save()


def client_for(cast: Cast, role: str, language: str = "en") -> Client:
    """A test client logged in as `role`, asking for pages in `language` (French is the default
    of the panel; tests read English unless they check the French)."""
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    seat = cast.seat(role)
    if isinstance(seat, User):
        client.force_login(seat)
    elif isinstance(seat, Mailbox):
        login_mailbox(client, seat)
    return client


@pytest.fixture
def client_as(cast: Cast):
    return lambda role: client_for(cast, role)


@pytest.fixture
def outbox(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> list[contract.Document]:
    """The documents the panel sends (pushes run by hand, in the test's transaction: see
    tests/test_delta.py's `push`). Domain A has had one change, as every real domain has (its
    postmaster's creation). tests/test_provisioning.py and test_pack_move.py have their own."""
    sent: list[contract.Document] = []
    monkeypatch.setattr("provisioning.revisions.enqueue_push", lambda domain_id, countdown=None: None)
    monkeypatch.setattr(push, "send", lambda host, document: sent.append(document))
    revisions.domain_changed(cast.a.domain)
    return sent
