"""A forward without destination (`forward_create(discard=True)`: vpopmail's `.qmail-NAME` of
comments only, which the import brings in; the mail host accepts its mail and drops it) on the
screens: the forwards table and its modify page say so, in English and French; the modify page
turns it into an ordinary forward when a destination is added, and refuses an empty one."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from mail.models import Forward
from mail.services import forward_create
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def void(cast: Cast) -> Forward:
    return forward_create(domain=cast.a.domain, local_part="void", destinations=[], acting_user=None, discard=True)


def page(client: Client, name: str, cast: Cast, *args: Any) -> str:
    response = client.get(reverse(name, args=[cast.a.domain.pk, *args]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_forwards_table_says_a_forward_without_destination_deletes_its_mail(cast: Cast, void: Forward,
                                                                                client_as: Any) -> None:
    listed = page(client_as("domain_admin_a"), "screens:forwards", cast)
    assert '<span class="muted">Accepted and deleted</span>' in listed
    french = page(client_for(cast, "domain_admin_a", "fr"), "screens:forwards", cast)
    assert '<span class="muted">Messages acceptés puis supprimés</span>' in french
    forward_create(domain=cast.a.domain, local_part="team", destinations=["x@elsewhere.test"], acting_user=None)
    assert page(client_as("domain_admin_a"), "screens:forwards", cast).count("Accepted and deleted") == 1


def test_the_modify_page_of_a_forward_without_destination(cast: Cast, void: Forward, client_as: Any) -> None:
    client = client_as("domain_admin_a")
    shown = page(client, "screens:forward_modify", cast, void.pk)
    assert "Accepted and deleted" in shown and "it has no destination" in shown
    french = page(client_for(cast, "domain_admin_a", "fr"), "screens:forward_modify", cast, void.pk)
    assert "Messages acceptés puis supprimés" in french and "elle n'a pas de destination" in french

    modify = reverse("screens:forward_modify", args=[cast.a.domain.pk, void.pk])
    empty = client.post(modify, {"destination": ""})
    assert empty.status_code == 400 and empty.context["form"].errors["destination"]
    void.refresh_from_db()
    assert void.destinations == []

    assert client.post(modify, {"destination": "alphauser"}).status_code == 302
    void.refresh_from_db()
    assert void.destinations == ["alphauser@alpha-domain.test"]  # an ordinary forward now
    shown = page(client, "screens:forward_modify", cast, void.pk)
    assert "Accepted and deleted" not in shown and "alphauser@alpha-domain.test" in shown
