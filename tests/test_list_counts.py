"""A list page of all a domain's POP accounts (or forwards) counts its rows once: the pack's
counter (`Utilisé : n/max`, hosting.usage.pack_feature) is read domain by domain, and the table's
pages take the domain's own count from it. A filtered list (index letter, search) counts its own."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from hosting.models import Plan
from mail.models import Forward, Mailbox
from screens import tables
from tests.conftest import Cast, client_for
from tests.factories import DomainFactory

pytestmark = pytest.mark.django_db


def counts_of(sqls: list[str], table: str) -> int:
    return len([sql for sql in sqls if "COUNT(" in sql and f'"{table}"' in sql])


@pytest.mark.parametrize(("page", "model", "table", "per_page"), [
    ("screens:mailboxes", Mailbox, "mail_mailbox", 50),
    ("screens:forwards", Forward, "mail_forward", 25),
])
def test_the_whole_list_counts_its_rows_once_and_pages_by_the_domains_own(cast: Cast, page, model, table,
                                                                         per_page) -> None:
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_mailboxes=-1, max_forwards=-1)
    domain, other = cast.a.domain, DomainFactory(pack=cast.a.pack)  # two domains in one pack
    fields = {"password_hash": "{X}y"} if model is Mailbox else {"destinations": ["x@remote.test"]}
    model.objects.bulk_create([model(domain=domain, local_part=f"a{i:03d}", **fields) for i in range(per_page + 3)])
    model.objects.bulk_create([model(domain=other, local_part=f"b{i:03d}", **fields) for i in range(3 * per_page)])
    own = model.objects.filter(domain=domain).count()
    client = client_for(cast, "domain_admin_a")
    with CaptureQueriesContext(connection) as queries:
        html = client.get(reverse(page, args=[domain.pk])).content.decode()
    assert counts_of([q["sql"] for q in queries], table) == 1
    assert re.search(rf"Used( in the pack)?: {own + 3 * per_page}/unlimited", html)
    pages = {int(n) for n in re.findall(r"\bpage=(\d+)", html)}
    assert max(pages) == 2  # the domain's own rows: two pages, not the pack's five
    with CaptureQueriesContext(connection) as queries:
        html = client.get(reverse(page, args=[domain.pk]), {"index": "a"}).content.decode()
    assert counts_of([q["sql"] for q in queries], table) == 2  # the pack's counter, the letter's rows
    assert max(int(n) for n in re.findall(r"\bpage=(\d+)", html)) == 2


@pytest.mark.parametrize("query", [{}, {"q": "u"}, {"per_page": "25"}, {"index": "u"}])
def test_a_page_far_down_is_read_from_its_first_name_with_the_same_rows(cast: Cast, monkeypatch, query) -> None:
    monkeypatch.setattr(tables, "SEEK_FROM", 10)  # from page 2 on, here
    domain = cast.a.domain
    Mailbox.objects.bulk_create([Mailbox(domain=domain, local_part=f"u{i:03d}", search_name=f"u{i:03d}",
                                         password_hash="{X}y") for i in range(130)])
    rows = Mailbox.objects.filter(domain=domain)
    if "q" in query:
        rows = rows.filter(search_name__contains="u")
    every = sorted(n for n in rows.values_list("local_part", flat=True) if n.startswith(query.get("index", "")))
    size = int(query.get("per_page", 50))
    client = client_for(cast, "domain_admin_a")
    for number in range(1, len(every) // size + 2):
        with CaptureQueriesContext(connection) as queries:
            html = client.get(reverse("screens:mailboxes", args=[domain.pk]), {**query, "page": number}).content
        names = re.findall(r'name="mailbox" value="([^"]+)"', html.decode())
        assert names == every[(number - 1) * size:number * size], number
        sought = [q["sql"] for q in queries if '"local_part" >= (SELECT' in q["sql"]]
        assert len(sought) == (1 if number > 1 else 0), number
