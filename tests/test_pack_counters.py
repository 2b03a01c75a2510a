"""A counter `[Utilisé : n/max]` counts the whole pack, not the domain it is shown on (issue 16,
defect 8): every such counter says so ("Utilisé dans le pack : 7/80" / "Used in the pack: 7/80"),
on the domain's menu, its lists, its full add pages and the Espace Client's pack page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from lists.models import MailingList
from mail.models import Forward, Robot
from tests.conftest import Cast, client_for
from tests.factories import DomainFactory, MailboxFactory

pytestmark = pytest.mark.django_db


def two_domains(cast: Cast) -> None:
    """Alpha's pack: its domain holds 2 POP accounts (postmaster, alphauser), 1 forward, 1 robot,
    1 list; another domain of the same pack 5 accounts, 1 forward, 1 robot, 1 list."""
    plan = cast.a.plan
    plan.max_domains, plan.max_mailboxes, plan.max_forwards, plan.max_robots, plan.max_lists = 2, 80, 10, 10, 10
    plan.save()
    other = DomainFactory(pack=cast.a.pack, name="alpha-other.test")
    for n in range(5):
        MailboxFactory(domain=other, local_part=f"user{n}")
    for domain in (cast.a.domain, other):
        Forward.objects.create(domain=domain, local_part="fwd", destinations=["x@remote.test"])
        Robot.objects.create(domain=domain, local_part="robot", subject="s", message="m")
        MailingList.objects.create(domain=domain, name="news", owner="owner@remote.test")


def page(cast: Cast, name: str, language: str, role: str = "domain_admin_a", pk: int | None = None) -> str:
    response = client_for(cast, role, language).get(reverse(name, args=[pk or cast.a.domain.pk]))
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


@pytest.mark.parametrize(("language", "used"), [("en", "Used in the pack: "), ("fr", "Utilisé dans le pack : ")])
def test_the_lists_and_the_menu_say_the_count_is_the_packs(cast: Cast, language: str, used: str) -> None:
    two_domains(cast)
    accounts = page(cast, "screens:mailboxes", language)
    assert f"[{used}7/80]" in accounts and "alphauser" in accounts and "user0" not in accounts
    assert f"[{used}2/10]" in page(cast, "screens:forwards", language)
    assert f"[{used}2/10]" in page(cast, "screens:robots", language)
    assert f"[{used}2/10]" in page(cast, "screens:lists", language)
    menu = page(cast, "screens:domain", language)
    assert f'<span class="usage">[{used}7/80]</span>' in menu
    assert menu.count(f'<span class="usage">[{used}2/10]</span>') == 3


@pytest.mark.parametrize(("language", "used"), [("en", "Used in the pack: "), ("fr", "Utilisé dans le pack : ")])
def test_a_full_add_page_and_the_pack_page_say_whose_count_it_is(cast: Cast, language: str, used: str) -> None:
    two_domains(cast)
    cast.a.plan.max_mailboxes = 7
    cast.a.plan.save()
    assert f"{used}7/7." in page(cast, "screens:mailbox_create", language)
    pack = page(cast, "screens:pack", language, role="customer_a", pk=cast.a.pack.pk)
    assert f"{used}7/7" in pack and f"{used}2/2" in pack and f"{used}2/10" in pack
    assert "Used: " not in pack and "Utilisé : " not in pack
