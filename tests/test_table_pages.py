"""Every table of the panel holds `?per_page=` to its fixed sizes (screens.tables.PAGE_SIZES) and
answers a bad `?page=` or `?per_page=` with a real page, never a 500 (issue 15, item 3): each of
the seven tables is given more rows than the largest size, then asked for every hostile value."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse

from hosting.models import AuditEvent, Pack
from lists.models import ListMember, MailingList, MemberKind
from mail.models import Forward, Mailbox, Robot
from screens.tables import PAGE_SIZES
from tests.conftest import Cast, client_for
from tests.factories import MAILBOX_PASSWORD_HASH

ROWS = max(PAGE_SIZES) + 30  # more than any page may show


def _mailboxes(cast: Cast) -> str:
    Mailbox.objects.bulk_create([Mailbox(domain=cast.a.domain, local_part=f"user{n:04d}",
                                         password_hash=MAILBOX_PASSWORD_HASH) for n in range(ROWS)])
    return reverse("screens:mailboxes", args=[cast.a.domain.pk])


def _forwards(cast: Cast) -> str:
    Forward.objects.bulk_create([Forward(domain=cast.a.domain, local_part=f"fwd{n:04d}",
                                         destinations=["far@remote.test"]) for n in range(ROWS)])
    return reverse("screens:forwards", args=[cast.a.domain.pk])


def _robots(cast: Cast) -> str:
    Robot.objects.bulk_create([Robot(domain=cast.a.domain, local_part=f"bot{n:04d}", subject="Away",
                                     message="Back soon") for n in range(ROWS)])
    return reverse("screens:robots", args=[cast.a.domain.pk])


def _lists(cast: Cast) -> str:
    MailingList.objects.bulk_create([MailingList(domain=cast.a.domain, name=f"list{n:04d}",
                                                 owner=f"postmaster@{cast.a.domain.name}") for n in range(ROWS)])
    return reverse("screens:lists", args=[cast.a.domain.pk])


def _members(cast: Cast) -> str:
    news = MailingList.objects.create(domain=cast.a.domain, name="news", owner=f"postmaster@{cast.a.domain.name}")
    ListMember.objects.bulk_create([ListMember(mailing_list=news, address=f"m{n:04d}@remote.test",
                                               kind=MemberKind.SUBSCRIBER) for n in range(ROWS)])
    return reverse("screens:members", args=[cast.a.domain.pk, news.pk])


def _audit(cast: Cast) -> str:
    a = cast.a
    AuditEvent.objects.bulk_create([AuditEvent(
        actor_label="root@operator.test", actor_role="operator", action="test.act", target_type="domain",
        target_id=str(a.domain.pk), target_repr=a.domain.name, domain_id=a.domain.pk, domain_name=a.domain.name,
        pack_id=a.pack.pk, customer_id=a.customer.pk, reseller_id=a.reseller.pk) for _n in range(ROWS)])
    return reverse("screens:domain_audit", args=[cast.a.domain.pk])


def _packs(cast: Cast) -> str:
    a = cast.a
    Pack.objects.bulk_create([Pack(customer=a.customer, plan=a.plan, mail_host=cast.host, label=f"pack{n:04d}")
                              for n in range(ROWS)])
    return reverse("screens:client")


# The seven tables: how to fill one past the largest page, who opens it, its default page size.
TABLES: dict[str, tuple[Callable[[Cast], str], str, int]] = {
    "mailboxes": (_mailboxes, "domain_admin_a", 50),
    "forwards": (_forwards, "domain_admin_a", 25),
    "robots": (_robots, "domain_admin_a", 25),
    "lists": (_lists, "domain_admin_a", 25),
    "members": (_members, "domain_admin_a", 50),
    "audit": (_audit, "domain_admin_a", 50),
    "packs": (_packs, "customer_a", 25),
}
BAD = [
    ("per_page", "-1"), ("per_page", "0"), ("per_page", "abc"), ("per_page", "1000000"), ("per_page", "201"),
    ("per_page", "1e3"), ("page", "-1"), ("page", "0"), ("page", "abc"), ("page", "999999"),
    ("page", "9" * 40), ("page", ""), ("per_page", ""),
]


def tbody(response: Any) -> str:
    assert response.status_code == 200
    return response.content.decode().split("<tbody", 1)[1].split("</tbody>", 1)[0]


def body_rows(response: Any) -> int:
    """The rows of the table's body on the page."""
    return len(re.findall(r"<tr[\s>]", tbody(response)))


@pytest.mark.parametrize("table", TABLES)
def test_every_table_caps_its_page_and_answers_a_bad_page_with_a_real_one(cast: Cast, table: str) -> None:
    fill, role, default = TABLES[table]
    url = fill(cast)
    client = client_for(cast, role)
    assert body_rows(client.get(url)) == default
    for size in PAGE_SIZES:
        assert body_rows(client.get(url, {"per_page": size})) == size, (table, size)
    for name, value in BAD:
        response = client.get(url, {name: value})
        assert response.status_code == 200, (table, name, value)
        rows = body_rows(response)
        assert 0 < rows <= max(PAGE_SIZES), (table, name, value, rows)
        if name == "per_page":
            assert rows == default, (table, value, rows)  # not an allowed size: the table's own
    # Beyond the last page: the last one (its rows are the remainder); below the first: the first.
    assert tbody(client.get(url, {"per_page": 200, "page": 999999})) == tbody(client.get(url, {"per_page": 200,
                                                                                             "page": 2}))
    assert tbody(client.get(url, {"per_page": 200, "page": -5})) == tbody(client.get(url, {"per_page": 200}))
    # Both hostile at once.
    assert client.get(url, {"per_page": -1, "page": -1}).status_code == 200
