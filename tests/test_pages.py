"""The client area, a pack and a domain's main menu: what they show, and a constant number of
queries whatever the size of the tenant."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lists.models import MailingList
from mail.models import Forward, Robot
from tests.conftest import Cast, client_for
from tests.factories import DomainFactory, MailboxFactory, PackFactory

pytestmark = pytest.mark.django_db


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def grow(cast: Cast, packs: int, mailboxes: int) -> None:
    for _ in range(packs):
        pack = PackFactory(customer=cast.a.customer, plan=cast.a.plan, mail_host=cast.host)
        DomainFactory(pack=pack)
    for _ in range(mailboxes):
        MailboxFactory(domain=cast.a.domain)


@pytest.mark.parametrize("role", ["customer_a", "reseller_a", "operator", "support"])
def test_client_area_queries_do_not_grow_with_packs(cast: Cast, role: str) -> None:
    client = client_for(cast, role)
    before = count_queries(client, reverse("screens:client"))
    grow(cast, packs=12, mailboxes=10)
    assert count_queries(client, reverse("screens:client")) == before


def test_pack_and_domain_pages_queries_do_not_grow(cast: Cast) -> None:
    for role, url in (
        ("customer_a", reverse("screens:pack", args=[cast.a.pack.pk])),
        ("domain_admin_a", reverse("screens:domain", args=[cast.a.domain.pk])),
    ):
        client = client_for(cast, role)
        before = count_queries(client, url)
        cast.a.plan.max_domains = 10
        cast.a.plan.save()
        DomainFactory(pack=cast.a.pack)
        for _ in range(4):
            MailboxFactory(domain=cast.a.domain)
        add_rows(cast, forwards=3, robots=2, lists=2, prefix=role)
        assert count_queries(client, url) == before, role


def add_rows(cast: Cast, *, forwards: int = 0, robots: int = 0, lists: int = 0, prefix: str = "") -> None:
    """Forwards, robots and lists in alpha's domain, written as rows (no service, no limit check)."""
    domain = cast.a.domain
    for n in range(forwards):
        Forward.objects.create(domain=domain, local_part=f"{prefix}fwd{n}", destinations=["x@remote.test"])
    for n in range(robots):
        Robot.objects.create(domain=domain, local_part=f"{prefix}robot{n}", subject="s", message="m")
    for n in range(lists):
        MailingList.objects.create(domain=domain, name=f"{prefix}list{n}", owner="owner@remote.test")


def set_limits(cast: Cast, **limits: int) -> None:
    for field, value in limits.items():
        setattr(cast.a.plan, field, value)
    cast.a.plan.save()


def test_domain_menu_and_pack_page_count_forwards_robots_and_lists(cast: Cast) -> None:
    set_limits(cast, max_forwards=10, max_robots=5, max_lists=-1)
    add_rows(cast, forwards=3, robots=2, lists=4)
    other = PackFactory(customer=cast.a.customer, plan=cast.a.plan, mail_host=cast.host)
    Forward.objects.create(domain=DomainFactory(pack=other), local_part="elsewhere", destinations=["x@remote.test"])
    for role, url in (
        ("domain_admin_a", reverse("screens:domain", args=[cast.a.domain.pk])),
        ("customer_a", reverse("screens:pack", args=[cast.a.pack.pk])),
    ):
        client = client_for(cast, role)
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
        body = client.get(url).content.decode()
        assert all(f"Used in the pack: {usage}" in body for usage in ("3/10", "2/5", "4/unlimited")), role


def test_domain_menu_says_when_a_forward_robot_or_list_limit_is_reached(cast: Cast) -> None:
    set_limits(cast, max_forwards=2, max_robots=1, max_lists=3)
    add_rows(cast, forwards=2, robots=1, lists=2)
    client = client_for(cast, "domain_admin_a")
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    body = client.get(reverse("screens:domain", args=[cast.a.domain.pk])).content.decode()
    assert "New forward — limit reached" in body and "New mail robot — limit reached" in body
    assert "New mailing list — limit reached" not in body and "Used in the pack: 2/3" in body


def test_client_area_shows_packs_with_usage(cast: Cast) -> None:
    MailboxFactory(domain=cast.a.domain)  # postmaster + alphauser + this one
    body = client_for(cast, "customer_a").get(reverse("screens:client")).content.decode()
    assert "alpha-pack" in body and "alpha-plan" in body and "mx1" in body
    assert "3/5" in body


def test_client_area_pages_on_the_server(cast: Cast) -> None:
    grow(cast, packs=30, mailboxes=0)
    client = client_for(cast, "customer_a")
    first = client.get(reverse("screens:client")).content.decode()
    assert first.count('href="/client/packs/') == 25
    second = client.get(reverse("screens:client"), {"page": 2}).content.decode()
    assert second.count('href="/client/packs/') == 6


def test_pack_page_shows_limits_host_and_domains(cast: Cast) -> None:
    body = client_for(cast, "customer_a").get(reverse("screens:pack", args=[cast.a.pack.pk])).content.decode()
    assert "alpha-domain.test" in body
    assert reverse("screens:domain", args=[cast.a.domain.pk]) in body
    assert "2/5" in body  # POP accounts: postmaster and alphauser
    assert "mx1.hosting.test" in body


def test_domain_menu_hides_features_the_pack_does_not_include(cast: Cast) -> None:
    cast.a.plan.max_robots = 0
    cast.a.plan.max_lists = -1
    cast.a.plan.save()
    client = client_for(cast, "domain_admin_a")
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    body = client.get(reverse("screens:domain", args=[cast.a.domain.pk])).content.decode()
    assert "Robots" not in body and "New mail robot" not in body
    assert "Mailing lists" in body and "0/unlimited" in body
    assert "POP accounts" in body and "2/5" in body


def test_domain_menu_says_when_a_limit_is_reached(cast: Cast) -> None:
    cast.a.plan.max_mailboxes = 2
    cast.a.plan.save()
    client = client_for(cast, "domain_admin_a")
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    body = client.get(reverse("screens:domain", args=[cast.a.domain.pk])).content.decode()
    assert "limit reached" in body


def test_unicode_domain_is_shown_in_unicode(cast: Cast) -> None:
    cast.a.domain.name = "xn--caf-exemple-dbb.fr"
    cast.a.domain.save()
    body = client_for(cast, "customer_a").get(reverse("screens:pack", args=[cast.a.pack.pk])).content.decode()
    assert "café-exemple.fr" in body


def test_header_says_who_is_logged_in_and_where(cast: Cast) -> None:
    body = client_for(cast, "domain_admin_a").get(reverse("screens:me")).content.decode()
    assert "postmaster@alpha-domain.test" in body
    assert reverse("screens:logout") in body and 'method="post"' in body
