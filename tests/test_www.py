"""Issue 15, item 13: a domain typed with `www.` is read the same way at every entry (Espace
Client, admin, services, login): a leading `www.` is dropped while two labels remain
(`hosting.validators.domain_as_typed`), so the postmaster of any domain the panel accepts logs in
at /login/ with what the customer typed, in both forms (the split form and `postmaster@domain`).
"""

from __future__ import annotations

import itertools

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hosting.models import Domain, Plan
from hosting.validators import DOMAIN_TYPED_MAX, domain_as_typed, normalize_domain, normalize_hosted_domain
from mail.accounts import domain_create_with_accounts
from mail.auth import parse_login
from mailhost.passwords import hash_password
from screens.forms.account import MailboxLoginForm
from tests.conftest import Cast, client_for
from tests.factories import MailboxFactory

PASSWORD = "Typed-Domain-Login-7"
LONG = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 56, "test"])  # 253 characters, the most there is
assert len(LONG) == 253

# What customers type, and the name the panel keeps.
TYPED = [
    ("www.shop-one.test", "shop-one.test"),
    ("WWW.Shop-Two.TEST", "shop-two.test"),
    ("www.shop-three.test.", "shop-three.test"),
    ("  www.shop-four.test  ", "shop-four.test"),
    ("www.www.shop-five.test", "shop-five.test"),  # dropped until the name has no www. (idempotent)
    ("ｗｗｗ．shop-six．test", "shop-six.test"),  # full-width letters and dots, as some keyboards type them
    ("www.Bücher-Sept.test", "xn--bcher-sept-9db.test"),
    ("Bücher-Huit.TEST.", "xn--bcher-huit-9db.test"),
    ("www.test", "www.test"),  # two labels: this is the domain itself
    ("www.shop.fr", "shop.fr"),  # a .fr: hostmaster made too
    ("www.日本語.test", "xn--wgv71a119e.test"),
    (LONG, LONG),
    (f"www.{LONG}.", LONG),  # 258 characters typed, 253 kept
]


@pytest.fixture(autouse=True)
def roomy(cast: Cast) -> None:
    """Pack A takes any number of domains and accounts."""
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_domains=-1, max_mailboxes=-1)
    cast.a.pack.refresh_from_db()


def login(client: Client, account: str, domain: str, ip: str) -> int | None:
    """Log in at /login/ and return the domain id of the menu it lands on (None: refused)."""
    response = client.post(reverse("screens:login"), {"account": account, "domain": domain, "password": PASSWORD},
                           REMOTE_ADDR=ip)
    if response.status_code != 302 or "/domains/" not in response["Location"]:
        return None
    return int(response["Location"].rstrip("/").rsplit("/", 1)[1])


def assert_postmaster_logs_in(domain: Domain, typed: str, ip: str) -> None:
    split = login(Client(HTTP_ACCEPT_LANGUAGE="en"), "postmaster", typed, ip)
    joined = login(Client(HTTP_ACCEPT_LANGUAGE="en"), f"postmaster@{typed.strip()}", "", ip)
    assert (split, joined) == (domain.pk, domain.pk), (typed, domain.name)


@pytest.mark.parametrize(("typed", "kept"), TYPED)
def test_the_postmaster_of_a_domain_typed_so_logs_in_with_what_was_typed(cast: Cast, typed: str, kept: str) -> None:
    domain = domain_create_with_accounts(pack=cast.a.pack, name=typed, password=PASSWORD, acting_user=cast.operator)
    assert domain.name == kept
    assert_postmaster_logs_in(domain, typed, ip="10.13.0.1")
    assert_postmaster_logs_in(domain, domain.unicode_name, ip="10.13.0.2")  # and by its own name


@pytest.mark.parametrize(("typed", "kept"), TYPED)
def test_every_entry_reads_the_name_the_same_way(typed: str, kept: str) -> None:
    assert domain_as_typed(typed) == kept
    assert domain_as_typed(kept) == kept  # idempotent: the kept name is read as itself
    assert parse_login("postmaster", typed) == ("postmaster", kept)
    assert parse_login(f"postmaster@{typed.strip()}", "") == ("postmaster", kept)


def test_addresses_keep_their_www() -> None:
    """Only a domain of one's own drops its www.: someone's address at www.example.test is theirs."""
    assert normalize_domain("www.example.test") == "www.example.test"


def test_a_domain_added_with_www_before_the_rule_still_opens(cast: Cast) -> None:
    """A domain stored with its www. (added before the panel dropped it) is still reached by its
    stored name; the rule's name comes first when both exist."""
    legacy = Domain.objects.create(pack=cast.a.pack, name="www.legacy.test")
    MailboxFactory(domain=legacy, local_part="postmaster", is_admin=True, password_hash=hash_password(PASSWORD))
    assert_postmaster_logs_in(legacy, "www.legacy.test", ip="10.13.0.3")
    plain = domain_create_with_accounts(pack=cast.a.pack, name="legacy.test", password=PASSWORD,
                                        acting_user=cast.operator)
    assert login(Client(), "postmaster", "www.legacy.test", "10.13.0.3") == plain.pk


# --- the pages ------------------------------------------------------------------------------------


def test_espace_client_keeps_the_name_without_www_and_says_so(cast: Cast) -> None:
    client = client_for(cast, "customer_a")
    page = client.get(reverse("screens:domain_add", kwargs={"pk": cast.a.pack.pk})).content.decode()
    assert "a leading www. is dropped: www.example.fr is example.fr" in page
    typed = f"www.{LONG}."
    response = client.post(reverse("screens:domain_add", kwargs={"pk": cast.a.pack.pk}),
                           {"name": typed, "password1": PASSWORD, "password2": PASSWORD}, follow=True)
    assert response.status_code == 200
    domain = Domain.objects.get(name=LONG)
    assert f"The domain {LONG} was added" in response.content.decode()
    assert_postmaster_logs_in(domain, typed, ip="10.13.0.4")


def test_the_admin_keeps_the_name_without_www(cast: Cast) -> None:
    client = client_for(cast, "reseller_a")
    response = client.post(reverse("admin:hosting_domain_add"), {
        "pack": cast.a.pack.pk, "name": "WWW.Admin-Added.test.", "postmaster_password": PASSWORD,
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    domain = Domain.objects.get(name="admin-added.test")
    assert_postmaster_logs_in(domain, "WWW.Admin-Added.test.", ip="10.13.0.5")


def test_the_login_form_takes_a_typed_name_longer_than_the_kept_one() -> None:
    assert MailboxLoginForm().fields["domain"].max_length == DOMAIN_TYPED_MAX
    form = MailboxLoginForm({"account": "postmaster", "domain": f"www.{LONG}.", "password": "x"})
    assert form.is_valid(), form.errors


# --- any name the panel accepts -------------------------------------------------------------------

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-éüßÉ"
label = st.text(alphabet=LETTERS, min_size=1, max_size=20)
www = st.sampled_from(["www", "WWW", "Www", "ｗｗｗ"])
typed_names = st.builds(
    lambda prefix, labels, tld, dot: ".".join([*prefix, *labels, tld]) + dot,
    st.lists(www, max_size=2), st.lists(label, min_size=1, max_size=3),
    st.sampled_from(["test", "TEST", "fr", "com", "xn--p1ai", "рф"]), st.sampled_from(["", "."]),
)
_addresses = (f"10.14.{n // 250}.{n % 250 + 1}" for n in itertools.count())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(typed=typed_names)
@example(typed="www.www.test")
@example(typed="WWW.X.TEST.")
def test_the_postmaster_of_any_accepted_domain_logs_in(cast: Cast, typed: str) -> None:
    with transaction.atomic():  # each example on its own: a name drawn twice is accepted twice
        try:
            domain = domain_create_with_accounts(pack=cast.a.pack, name=typed, password=PASSWORD,
                                                 acting_user=cast.operator)
        except ValidationError as error:
            transaction.set_rollback(True)
            if error.code not in ("unique", "parent"):  # not held by someone: refused by the name rule
                with pytest.raises(ValidationError):
                    normalize_hosted_domain(typed)
            return
        assert domain.name == domain_as_typed(typed) == domain_as_typed(domain.name)
        assert not domain.name.startswith("www.") or domain.name.count(".") == 1
        assert_postmaster_logs_in(domain, typed, ip=next(_addresses))
        transaction.set_rollback(True)
