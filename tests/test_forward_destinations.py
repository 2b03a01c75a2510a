"""The forwards' list says what each local destination is (issue 16, defect 9): a POP account as
itself, a mailing list, one of a list's command addresses, a robot, another forward; only a name
the domain does not have is flagged "no such account" ("compte inexistant"). Constant queries."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lists.models import MailingList
from mail.models import Forward, Robot
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db

FLAG = "no such account"


def cells(cast: Cast, language: str = "en") -> dict[str, str]:
    """Each forward's destination cell, as text, by the forward's name."""
    response = client_for(cast, "domain_admin_a", language).get(reverse("screens:forwards", args=[cast.a.domain.pk]))
    assert response.status_code == 200
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", response.content.decode(), re.S)
    found = {}
    for row in rows:
        texts = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if texts:
            found[texts[2]] = texts[3]
    return found


def forward(cast: Cast, name: str, *locals_: str) -> None:
    """A forward written as a row (the rules that refuse chains are not what this page shows)."""
    Forward.objects.create(domain=cast.a.domain, local_part=name,
                           destinations=[f"{local}@{cast.a.domain.name}" for local in locals_])


def test_a_list_and_its_addresses_robots_forwards_and_tags_are_not_flagged(cast: Cast) -> None:
    MailingList.objects.create(domain=cast.a.domain, name="news", owner="owner@remote.test")
    Robot.objects.create(domain=cast.a.domain, local_part="auto", subject="s", message="m")
    forward(cast, "other", "alphauser")
    forward(cast, "tolist", "news")
    forward(cast, "tocommands", "news-request", "news+subscribe", "news-digest-subscribe")
    forward(cast, "torobot", "auto")
    forward(cast, "toforward", "other")
    forward(cast, "totag", "alphauser+work")
    forward(cast, "tonobody", "ghost", "news-ghost")
    shown = cells(cast)
    assert shown["other"] == "alphauser@alpha-domain.test"  # a POP account: as it always was
    assert shown["tolist"] == "news@alpha-domain.test (mailing list)"
    assert shown["tocommands"] == ("news-request@alpha-domain.test (address of the list news), "
                                   "news+subscribe@alpha-domain.test (address of the list news), "
                                   "news-digest-subscribe@alpha-domain.test (address of the list news)")
    assert shown["torobot"] == "auto@alpha-domain.test (mail robot)"
    assert shown["toforward"] == "other@alpha-domain.test (forward)"
    assert shown["totag"] == "alphauser+work@alpha-domain.test"
    assert shown["tonobody"] == f"ghost@alpha-domain.test ({FLAG}), news-ghost@alpha-domain.test ({FLAG})"
    assert not any(FLAG in cell for name, cell in shown.items() if name != "tonobody")


def test_in_french_a_list_is_a_list_and_an_unknown_name_compte_inexistant(cast: Cast) -> None:
    MailingList.objects.create(domain=cast.a.domain, name="news", owner="owner@remote.test")
    forward(cast, "tolist", "news", "news-request", "ghost")
    assert cells(cast, "fr")["tolist"] == ("news@alpha-domain.test (liste de diffusion), "
                                           "news-request@alpha-domain.test (adresse de la liste news), "
                                           "ghost@alpha-domain.test (compte inexistant)")


def test_another_tenants_names_are_not_looked_at(cast: Cast) -> None:
    """The same name in bravo's domain does not make alpha's destination exist."""
    MailingList.objects.create(domain=cast.b.domain, name="news", owner="owner@remote.test")
    forward(cast, "tolist", "news")
    assert cells(cast)["tolist"] == f"news@alpha-domain.test ({FLAG})"


def count(cast: Cast) -> int:
    client = client_for(cast, "domain_admin_a")
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("screens:forwards", args=[cast.a.domain.pk])).status_code == 200
    return len(queries.captured_queries)


def test_the_forwards_list_queries_do_not_grow_with_its_destinations(cast: Cast) -> None:
    forward(cast, "first", "alphauser")
    before = count(cast)
    for n in range(6):
        MailingList.objects.create(domain=cast.a.domain, name=f"list{n}", owner="owner@remote.test")
        Robot.objects.create(domain=cast.a.domain, local_part=f"robot{n}", subject="s", message="m")
        forward(cast, f"fwd{n}", f"list{n}", f"robot{n}", f"list{n}-request", f"ghost{n}", "first")
    assert count(cast) == before
