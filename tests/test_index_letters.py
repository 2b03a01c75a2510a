"""The index letters of the POP accounts' and forwards' lists (`?index=b`): read as a range of the
index on the domain and the name (`starting_with`), they still find exactly the names that start
with the letter, at the edges of the range too (digits before letters, the last letter)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from mail.models import Forward, Mailbox
from screens.views.mailboxes import INDEX
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db

NAMES = ["0", "09", "9", "9lives", "a", "a9", "az", "b", "b-c", "b.z", "by", "c", "y", "yz", "z", "z-9", "zz"]


@pytest.mark.parametrize(("page", "pattern"), [
    ("screens:mailboxes", r'name="mailbox" value="([^"]+)"'),
    ("screens:forwards", r'/forwards/\d+/">[^<]+</a></td><td[^>]*>([^<]+)</td>'),
])
def test_each_index_letter_finds_the_names_that_start_with_it(cast: Cast, page: str, pattern: str) -> None:
    domain = cast.a.domain
    if page == "screens:mailboxes":
        Mailbox.objects.bulk_create([Mailbox(domain=domain, local_part=n, password_hash="{X}y") for n in NAMES])
    else:
        Forward.objects.bulk_create([Forward(domain=domain, local_part=n, destinations=["x@remote.test"])
                                     for n in NAMES])
    client = client_for(cast, "domain_admin_a")
    every = NAMES + ["postmaster", "alphauser"] if page == "screens:mailboxes" else NAMES
    for letter in INDEX:
        html = client.get(reverse(page, args=[domain.pk]), {"index": letter}).content.decode()
        found = re.findall(pattern, re.sub(r">\s+<", "><", html))
        assert sorted(found) == sorted(n for n in every if n.startswith(letter)), letter
