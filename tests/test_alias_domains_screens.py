"""Alias domains on the screens (issue 17): the domain's menu and its "Alias domains" page with the
pack's counter, an alias added and deleted through the forms, an alias's own page (what it is an
alias of, its proof and what to publish), its domain screens closed (404, its menu sends to its
page), the pack page and the client area counting aliases apart, the admin showing and filtering
them; a hostile tenant gets 404 everywhere."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from hosting.models import AuditEvent, Domain
from provisioning.domains import alias_domain_create, proof_record
from tests.conftest import Cast, client_for

ALIAS = "alpha-alias.test"


@pytest.fixture
def alias(cast: Cast) -> Domain:
    return alias_domain_create(domain=cast.a.domain, name=ALIAS, acting_user=None)


def page(cast: Cast, role: str, name: str, *args: Any, language: str = "en") -> str:
    response = client_for(cast, role, language).get(reverse(name, args=args))
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_the_menu_links_the_alias_domains_with_the_packs_counter(cast, alias):
    assert "Alias domains</a> <span class=\"usage\">[Used in the pack: 1/2]" in page(
        cast, "domain_admin_a", "screens:domain", cast.a.domain.pk)
    assert "Domaines alias</a> <span class=\"usage\">[Utilisé dans le pack : 1/2]" in page(
        cast, "customer_a", "screens:domain", cast.a.domain.pk, language="fr")


def test_a_plan_without_alias_domains_shows_no_link(cast):
    cast.a.plan.max_alias_domains = 0
    cast.a.plan.save()

    assert reverse("screens:alias_domains", args=[cast.a.domain.pk]) not in page(
        cast, "customer_a", "screens:domain", cast.a.domain.pk)


def test_an_alias_is_added_through_its_form_and_its_page_says_what_to_publish(cast):
    client = client_for(cast, "domain_admin_a")

    response = client.post(reverse("screens:alias_domain_add", args=[cast.a.domain.pk]), {"name": "Alpha-Alias.test"})

    alias = Domain.objects.get(name=ALIAS)
    assert alias.alias_of_id == cast.a.domain.pk
    assert response["Location"] == reverse("screens:alias_domain", args=[cast.a.domain.pk, alias.pk])
    html = client.get(response["Location"]).content.decode()
    record_name, record_text = proof_record(alias)
    assert f"{ALIAS} is an alias domain of alpha-domain.test" in html
    assert record_name in html and record_text in html
    assert reverse("screens:alias_domain_check", args=[cast.a.domain.pk, alias.pk]) in html
    assert AuditEvent.objects.filter(action="domain.alias_create", actor_label=str(cast.a.postmaster)).exists()


def test_the_add_form_shows_the_services_refusal_on_the_name(cast, alias):
    response = client_for(cast, "customer_a").post(reverse("screens:alias_domain_add", args=[cast.a.domain.pk]),
                                                   {"name": ALIAS})

    assert response.status_code == 400
    assert response.context["form"].errors == {"name": ["This domain is already hosted."]}


def test_a_full_pack_says_so_on_the_add_page(cast, alias):
    cast.a.plan.max_alias_domains = 1
    cast.a.plan.save()

    html = page(cast, "customer_a", "screens:alias_domain_add", cast.a.domain.pk)

    assert "Maximum number of alias domains of this pack reached." in html and "<form method=\"post\"" not in html
    assert "limit reached" in page(cast, "customer_a", "screens:alias_domains", cast.a.domain.pk)


def test_the_list_shows_each_alias_and_its_proof(cast, alias):
    proven = alias_domain_create(domain=cast.a.domain, name="alpha-proven.test", acting_user=None,
                                 verified_how="hand")

    html = page(cast, "reseller_a", "screens:alias_domains", cast.a.domain.pk)

    assert "Alias domains of alpha-domain.test [Used in the pack: 2/2]" in html
    assert ALIAS in html and "not yet: see what to publish" in html
    assert proven.unicode_name in html and "yes (by hand)" in html


def test_an_alias_is_deleted_after_its_confirmation(cast, alias):
    client = client_for(cast, "customer_a")
    url = reverse("screens:alias_domain_delete", args=[cast.a.domain.pk, alias.pk])

    assert f"Delete the alias domain {ALIAS}?" in client.get(url).content.decode()
    assert Domain.objects.filter(pk=alias.pk).exists()
    response = client.post(url)

    assert response["Location"] == reverse("screens:alias_domains", args=[cast.a.domain.pk])
    assert not Domain.objects.filter(pk=alias.pk).exists()


def test_an_alias_domains_menu_is_its_page_and_its_object_pages_are_404(cast, alias):
    client = client_for(cast, "operator")

    response = client.get(reverse("screens:domain", args=[alias.pk]))

    assert response["Location"] == reverse("screens:alias_domain", args=[cast.a.domain.pk, alias.pk])
    for name in ("screens:mailboxes", "screens:mailbox_create", "screens:forwards", "screens:forward_create",
                 "screens:robots", "screens:robot_create", "screens:lists", "screens:list_create",
                 "screens:catchall", "screens:quick", "screens:mailbox_import", "screens:alias_domains",
                 "screens:alias_domain_add", "screens:mail_settings"):
        assert client.get(reverse(name, args=[alias.pk])).status_code == 404, name


def test_a_hostile_tenant_gets_404_on_every_alias_page(cast, alias):
    bravo_alias = alias_domain_create(domain=cast.b.domain, name="bravo-alias.test", acting_user=None)
    urls = [reverse("screens:alias_domains", args=[cast.a.domain.pk]),
            reverse("screens:alias_domain_add", args=[cast.a.domain.pk])]
    urls += [reverse(name, args=[cast.a.domain.pk, alias.pk])
             for name in ("screens:alias_domain", "screens:alias_domain_delete")]
    for role in ("reseller_b", "customer_b", "domain_admin_b"):
        client = client_for(cast, role)
        for url in urls:
            assert client.get(url).status_code == 404, (role, url)
            assert client.post(url, {"name": "bravo-sneaky.test"}).status_code in (404, 405), (role, url)
        assert client.post(reverse("screens:alias_domain_check", args=[cast.a.domain.pk, alias.pk])).status_code == 404
    # Another domain's alias under this domain's URL: not this domain's.
    client = client_for(cast, "operator")
    assert client.get(reverse("screens:alias_domain", args=[cast.a.domain.pk, bravo_alias.pk])).status_code == 404
    assert client.post(reverse("screens:alias_domain_delete", args=[cast.a.domain.pk, bravo_alias.pk])
                       ).status_code == 404
    assert Domain.objects.filter(pk__in=[alias.pk, bravo_alias.pk]).count() == 2
    assert not Domain.objects.filter(name="bravo-sneaky.test").exists()


def test_the_pack_page_shows_an_alias_as_alias_of_its_domain_counted_apart(cast, alias):
    html = page(cast, "customer_a", "screens:pack", cast.a.pack.pk)

    assert "alias of alpha-domain.test" in html
    assert reverse("screens:alias_domain", args=[cast.a.domain.pk, alias.pk]) in html
    assert reverse("screens:postmaster_reset", args=[alias.pk]) not in html
    assert "Alias domains</th><td>Used in the pack: 1/2" in html
    assert "Domains</th><td>Used in the pack: 1/" in html


def test_the_client_area_counts_aliases_apart(cast, alias):
    html = page(cast, "customer_a", "screens:client")

    assert "Alias domains" in html and "1/2" in html


def test_the_admin_shows_and_filters_alias_domains(cast, alias):
    client = client_for(cast, "operator")

    only_aliases = client.get(reverse("admin:hosting_domain_changelist"), {"alias": "yes"}).content.decode()
    no_aliases = client.get(reverse("admin:hosting_domain_changelist"), {"alias": "no"}).content.decode()
    change = client.get(reverse("admin:hosting_domain_change", args=[alias.pk])).content.decode()

    assert ALIAS in only_aliases and "bravo-domain.test" not in only_aliases
    assert ALIAS not in no_aliases and "bravo-domain.test" in no_aliases
    assert 'name="alias_of"' not in change and "alpha-domain.test" in change  # read-only: shown, never typed


def test_the_admin_deletes_a_domain_with_its_aliases(cast, alias):
    client = client_for(cast, "operator")
    url = reverse("admin:hosting_domain_delete", args=[cast.a.domain.pk])

    confirm = client.get(url).content.decode()
    response = client.post(url, {"post": "yes"})

    assert ALIAS in confirm
    assert response.status_code == 302
    assert not Domain.objects.filter(pk__in=[cast.a.domain.pk, alias.pk]).exists()


def test_the_admins_bulk_delete_of_a_domain_and_its_alias_deletes_both(cast, alias):
    client = client_for(cast, "operator")

    response = client.post(reverse("admin:hosting_domain_changelist"), {
        "action": "delete_selected", "_selected_action": [alias.pk, cast.a.domain.pk], "post": "yes"})

    assert response.status_code == 302
    assert not Domain.objects.filter(pk__in=[cast.a.domain.pk, alias.pk]).exists()


def test_check_now_of_an_alias_goes_back_where_it_was_pressed(cast, alias):
    Domain.objects.filter(pk=alias.pk).update(verified_at=timezone.now(), verified_how="hand")  # nothing looked up
    url = reverse("screens:alias_domain_check", args=[cast.a.domain.pk, alias.pk])

    from_pack = client_for(cast, "customer_a").post(url, {"back": "pack"})
    from_its_page = client_for(cast, "domain_admin_a").post(url, {"back": "pack"})

    assert from_pack["Location"] == reverse("screens:pack", args=[cast.a.pack.pk])
    assert from_its_page["Location"] == reverse("screens:alias_domain", args=[cast.a.domain.pk, alias.pk])


def test_an_alias_pages_state_is_asked_through_its_target(cast, alias):
    url = reverse("screens:alias_domain_state", args=[cast.a.domain.pk, alias.pk])

    assert f"{url}?revision={alias.revision}" in page(cast, "domain_admin_a", "screens:alias_domain",
                                                      cast.a.domain.pk, alias.pk)
    assert client_for(cast, "domain_admin_a").get(url).json() == {"state": "pending", "error": ""}
    assert client_for(cast, "domain_admin_b").get(url).status_code == 404
