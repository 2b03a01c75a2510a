"""Alias domains in Chromium, under the strict Content-Security-Policy: a domain admin (logged in
at the alias address, with the domain's password) adds an alias domain from the menu's "Domaines
alias", reads what to publish on its page, and deletes it after the confirmation."""

from __future__ import annotations

from typing import Any

import pytest

from hosting.models import Domain
from provisioning.domains import alias_domain_create
from tests.browser.conftest import Watched, save_screenshot
from tests.factories import MAILBOX_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_alias_domain_is_added_and_deleted_from_the_menu(transactional_db: Any, cast: Any, live_server: Any,
                                                             page: Any):
    alias_domain_create(domain=cast.a.domain, name="alpha-login.test", acting_user=None)
    watched = Watched(page, live_server.url)
    watched.open("/login/")
    page.locator("input[name='account']").fill("postmaster@alpha-login.test")  # the alias's address
    page.locator("input[name='password']").fill(MAILBOX_PASSWORD)
    page.locator("form:has(input[name='account']) button[type='submit']").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/domains/{cast.a.domain.pk}/")

    page.get_by_role("link", name="Domaines alias").click()
    page.wait_for_load_state()
    assert "[Utilisé dans le pack : 1/2]" in page.locator("h1").inner_text()
    page.get_by_role("link", name="Nouveau domaine alias").click()
    page.wait_for_load_state()
    page.locator("input[name='name']").fill("alpha-browser.test")
    page.locator("form:has(input[name='name']) button[type='submit']").click()
    page.wait_for_load_state()
    watched.check("the alias's page")
    alias = Domain.objects.get(name="alpha-browser.test")
    assert page.url.endswith(f"/domains/{cast.a.domain.pk}/aliases/{alias.pk}/")
    assert f"mailpanel-verify={alias.verification_token}" in page.content()
    save_screenshot(page, "alias-domain-page")

    page.get_by_role("link", name="Supprimer le domaine alias").click()
    page.wait_for_load_state()
    page.get_by_role("button", name="Confirmer la suppression").click()
    page.wait_for_load_state()
    watched.check("after the delete")
    assert not Domain.objects.filter(name="alpha-browser.test").exists()
