"""Issue 16, defects 1, 2, 3 and 7: a password in use is replaced only once confirmed; a change's
state is asked again by its page (the state URLs); a refusal lands on the field it is about; a
weak password typed twice is refused for its weakness only."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from hosting.models import AuditEvent, Domain, Plan
from hostlink import reports as host_reports
from mail.models import CatchAllMode, Forward, Mailbox, Robot
from mail.services import catchall_set, forward_create, mailbox_set_real_name, robot_create
from provisioning.models import DomainSync
from provisioning.revisions import domain_changed
from tests.conftest import Cast, client_for
from tests.factories import MAILBOX_PASSWORD

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "Nouveau-Mot-2026!"  # noqa: S105 - a test account's
WEAK = "password"  # noqa: S105 - too common: the strength rules refuse it
MISMATCH_EN, MISMATCH_FR = "Passwords don&#x27;t match.", "Les mots de passe ne sont pas identiques."


def text(response: Any) -> str:
    return response.content.decode()


def url(name: str, cast: Cast, *args: Any) -> str:
    return reverse(name, args=[cast.a.domain.pk, *args])


def field_errors(page: str, field: str) -> list[str]:
    """The errors shown under a field (templates/includes/field.html)."""
    marker = f'<p class="error" id="id_{field}_error">'
    return [part.split("</p>")[0] for part in page.split(marker)[1:]]


def confirm(domain: Domain, host: Any, revision: int, error: str = "") -> None:
    """The domain's host reports `revision` applied (or failed with `error`), as its agent does."""
    DomainSync.objects.update_or_create(domain=domain, defaults={"host": host})  # as the push leaves it
    host_reports.record_report(host=host.name, domain=domain.name, revision=revision, state="present", error=error)


# --- 1. the postmaster's password in use is replaced only once confirmed ----------------------------------


def postmaster_hash(cast: Cast) -> str:
    return Mailbox.objects.get(pk=cast.a.postmaster.pk).password_hash


@pytest.mark.parametrize(("language", "words"), [
    ("en", ["Give postmaster@alpha-domain.test a new password?", "stops working at once",
            "every mail program that uses it", 'name="confirm" value="yes"', "Yes, replace the password"]),
    ("fr", ["Donner un nouveau mot de passe à postmaster@alpha-domain.test ?", "cesse de fonctionner aussitôt",
            "chaque logiciel de messagerie", "Oui, remplacer le mot de passe"]),
])
def test_the_postmaster_password_asks_first_and_says_what_happens(cast: Cast, language: str, words: list) -> None:
    before = postmaster_hash(cast)
    client = client_for(cast, "customer_a", language)
    page = text(client.get(reverse("screens:postmaster_reset", args=[cast.a.domain.pk])))
    for word in words:
        assert word in page, word
    assert "<code>" not in page and postmaster_hash(cast) == before  # GET changes nothing
    unconfirmed = client.post(reverse("screens:postmaster_reset", args=[cast.a.domain.pk]))
    assert unconfirmed.status_code == 200 and words[-1] in text(unconfirmed)  # asked again, nothing done
    assert postmaster_hash(cast) == before
    assert not AuditEvent.objects.filter(action="mailbox.set_password").exists()
    done = client.post(reverse("screens:postmaster_reset", args=[cast.a.domain.pk]), {"confirm": "yes"})
    assert done.status_code == 200 and "<code>" in text(done) and postmaster_hash(cast) != before


def test_the_pack_page_links_the_confirmation_never_a_one_click_form(cast: Cast) -> None:
    page = text(client_for(cast, "customer_a").get(reverse("screens:pack", args=[cast.a.pack.pk])))
    target = reverse("screens:postmaster_reset", args=[cast.a.domain.pk])
    assert f'href="{target}"' in page and f'action="{target}"' not in page


@pytest.mark.parametrize("role", ["customer_b", "reseller_b", "domain_admin_a", "mailbox_a"])
def test_no_outsider_sees_or_confirms_the_postmaster_password(cast: Cast, role: str) -> None:
    before = postmaster_hash(cast)
    client = client_for(cast, role)
    target = reverse("screens:postmaster_reset", args=[cast.a.domain.pk])
    turned_away = {404} if role.endswith("_b") else {302, 403, 404}  # a mailbox is no person: to the login
    assert client.get(target).status_code in turned_away
    assert client.post(target, {"confirm": "yes"}).status_code in turned_away
    assert postmaster_hash(cast) == before


def test_the_admin_page_of_an_account_says_a_new_password_replaces_the_one_in_use(cast: Cast) -> None:
    page = text(client_for(cast, "domain_admin_a", "fr").get(url("screens:mailbox_modify", cast, cast.mailbox_user.pk)))
    assert "donnez-le à chaque logiciel de messagerie" in page


# --- 2. the state of a change, asked again by its page ------------------------------------------------


def state_of(client: Any, address: str) -> dict:
    response = client.get(address)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store", response.status_code
    return response.json()


def test_the_domain_state_follows_the_host(cast: Cast) -> None:
    domain = cast.a.domain
    revision = domain_changed(domain)
    client = client_for(cast, "domain_admin_a")
    address = f"{url('screens:domain_state', cast)}?revision={revision}"
    assert state_of(client, address) == {"state": "pending", "error": ""}
    confirm(domain, cast.host, revision - 1)  # an earlier one: still pending
    assert state_of(client, address)["state"] == "pending"
    later = domain_changed(domain)
    confirm(domain, cast.host, revision)
    assert state_of(client, address) == {"state": "applied", "error": ""}
    assert state_of(client, url("screens:domain_state", cast))["state"] == "pending"  # its last one: `later`
    host_reports.record_report(host=cast.host.name, domain=domain.name, revision=later, state="present",
                               error="disk full")
    assert state_of(client, url("screens:domain_state", cast)) == {"state": "failed", "error": "disk full"}
    assert state_of(client, f"{url('screens:domain_state', cast)}?revision=x")["state"] == "failed"  # its last


def test_the_own_page_state_follows_the_host(cast: Cast) -> None:
    client = client_for(cast, "mailbox_a")
    mailbox = Mailbox.objects.get(pk=cast.mailbox_user.pk)
    assert state_of(client, reverse("screens:me_state"))["state"] == "pending"
    confirm(cast.a.domain, cast.host, Domain.objects.get(pk=cast.a.domain.pk).revision)
    assert state_of(client, f"{reverse('screens:me_state')}?revision={mailbox.revision}")["state"] == "applied"


def test_the_state_costs_the_same_few_queries_whatever_the_domain(cast: Cast) -> None:
    client = client_for(cast, "customer_a")
    address = url("screens:domain_state", cast)
    client.get(address)
    with CaptureQueriesContext(connection) as small:
        client.get(address)
    for n in range(5):
        forward_create(domain=cast.a.domain, local_part=f"f{n}", destinations=["x@elsewhere.test"],
                       acting_user=cast.operator)
    with CaptureQueriesContext(connection) as large:
        client.get(address)
    assert len(small) == len(large) <= 6, [q["sql"] for q in large.captured_queries]


def test_a_pending_banner_carries_its_state_url_and_the_script(cast: Cast) -> None:
    domain = cast.a.domain
    mailbox = Mailbox.objects.get(pk=cast.mailbox_user.pk)
    mailbox_set_real_name(mailbox=mailbox, real_name="Alpha Renamed", acting_user=cast.operator)
    client = client_for(cast, "domain_admin_a")
    page = text(client.get(url("screens:mailbox_modify", cast, mailbox.pk)))
    assert f'data-sync-url="{url("screens:domain_state", cast)}?revision={mailbox.revision}"' in page
    assert 'role="status"' in page and "/static/js/sync.js" in page and "data-text-applied=" in page
    confirm(domain, cast.host, mailbox.revision)
    applied = text(client.get(url("screens:mailbox_modify", cast, mailbox.pk)))
    assert "All changes are live" in applied and "data-sync-url" not in applied and "sync.js" not in applied
    pack = text(client_for(cast, "customer_a").get(reverse("screens:pack", args=[cast.a.pack.pk])))
    assert "data-sync-url" not in pack
    domain_changed(domain)
    pack = text(client_for(cast, "customer_a").get(reverse("screens:pack", args=[cast.a.pack.pk])))
    assert f'data-sync-url="{url("screens:domain_state", cast)}?revision=' in pack and "sync.js" in pack


# --- 3. a refusal on the field it is about -----------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_wrong_forwarding_address_is_refused_on_its_field(cast: Cast, language: str) -> None:
    client = client_for(cast, "domain_admin_a", language)
    about_address = {"en": "is not a valid e-mail address", "fr": "n&#x27;est pas une adresse e-mail valide"}[language]
    about_name = {"en": "account name", "fr": "nom du compte"}[language]
    page = text(client.post(url("screens:forward_create", cast),
                            {"local_part": "ventes", "destinations": "jean dupont"}))
    assert any(about_address in e for e in field_errors(page, "destinations")), field_errors(page, "destinations")
    assert field_errors(page, "local_part") == [] and about_name not in page
    assert not Forward.objects.filter(local_part="ventes").exists()
    forward = forward_create(domain=cast.a.domain, local_part="equipe", destinations=["x@elsewhere.test"],
                             acting_user=cast.operator)
    for bad in ("jean dupont", "jean@@exemple.fr", "é@exemple.fr"):
        page = text(client.post(url("screens:forward_modify", cast, forward.pk), {"destination": bad}))
        assert any(about_address in e for e in field_errors(page, "destination")), (bad, page)
        assert about_name not in page
    page = text(client.post(url("screens:mailbox_modify", cast, cast.mailbox_user.pk), {
        "real_name": "Alpha User", "routing": "forward", "forward_to": "jean dupont", "enabled": "on",
        "allow_pop3": "on", "allow_imap": "on", "allow_smtp": "on"}))
    assert any(about_address in e for e in field_errors(page, "forward_to")) and about_name not in page


def test_refusals_of_a_forward_land_on_their_fields(cast: Cast) -> None:
    client = client_for(cast, "domain_admin_a")
    forward_create(domain=cast.a.domain, local_part="equipe", destinations=["x@elsewhere.test"],
                   acting_user=cast.operator)
    chained = text(client.post(url("screens:forward_create", cast), {"local_part": "ventes",
                                                                      "destinations": "equipe@alpha-domain.test"}))
    assert any("is itself a forward" in e for e in field_errors(chained, "destinations"))
    taken = text(client.post(url("screens:forward_create", cast), {"local_part": "equipe",
                                                                    "destinations": "y@elsewhere.test"}))
    assert any("Name already used." in e for e in field_errors(taken, "local_part"))


def test_refusals_of_a_robot_land_on_their_fields(cast: Cast) -> None:
    client = client_for(cast, "domain_admin_a")
    data = {"local_part": "absent", "subject": "Absent", "message": "Je suis absent.", "reply_hours": "24"}
    page = text(client.post(url("screens:robot_create", cast), {**data, "copy_to": "jean dupont"}))
    assert any("is not a valid e-mail address" in e for e in field_errors(page, "copy_to"))
    assert field_errors(page, "local_part") == [] and not Robot.objects.exists()
    page = text(client.post(url("screens:robot_create", cast), {**data, "reply_hours": "0"}))
    assert field_errors(page, "reply_hours") and field_errors(page, "local_part") == []
    robot = robot_create(domain=cast.a.domain, local_part="absent", subject="Absent", message="Parti.",
                         acting_user=cast.operator)
    page = text(client.post(url("screens:robot_modify", cast, robot.pk), {**data, "copy_to": "jean dupont"}))
    assert any("is not a valid e-mail address" in e for e in field_errors(page, "copy_to"))


def test_a_text_with_a_control_character_is_refused_on_its_field(cast: Cast) -> None:
    client = client_for(cast, "domain_admin_a")
    data = {"local_part": "absent", "subject": "Absent", "message": "Je suis absent.", "reply_hours": "24"}
    for field in ("subject", "message"):
        page = text(client.post(url("screens:robot_create", cast), {**data, field: "Absent\x07 bip"}))
        assert field_errors(page, field) == ["This text contains characters that are not allowed."], field
        assert field_errors(page, "local_part") == [] and not Robot.objects.exists()
    modify = {"real_name": "Alpha User", "routing": "standard", "enabled": "on", "vacation_enabled": "on",
              "vacation_subject": "Parti", "vacation_message": "Parti."}
    for field in ("vacation_subject", "vacation_message"):
        page = text(client.post(url("screens:mailbox_modify", cast, cast.mailbox_user.pk),
                                {**modify, field: "Parti\x07 bip"}))
        assert field_errors(page, field) == ["This text contains characters that are not allowed."], field


def test_an_account_forwarded_to_is_not_deleted_and_says_so_on_the_form_not_on_the_redirect(cast: Cast) -> None:
    forward_create(domain=cast.a.domain, local_part="equipe", destinations=["alphauser"], acting_user=cast.operator)
    catchall_set(domain=cast.a.domain, mode=CatchAllMode.REMOTE, target="x@elsewhere.test", acting_user=cast.operator)
    page = text(client_for(cast, "domain_admin_a").post(url("screens:mailbox_delete", cast, cast.mailbox_user.pk),
                                                        {}))
    alert = page.split('<div class="alert error" role="alert">')[1].split("</div>")[0]
    assert "cannot be deleted: it receives mail forwarded by" in alert
    assert field_errors(page, "redirect_to") == [] and Mailbox.objects.filter(pk=cast.mailbox_user.pk).exists()


@pytest.mark.parametrize(("mode", "field", "value", "message"), [
    ("remote", "remote", "jean dupont", "Invalid e-mail address."),
    ("domain", "other_domain", "alpha-domain.test", "Choose another domain."),
    ("domain", "other_domain", "pas un domaine", "is not a valid domain name"),
])
def test_a_refused_catch_all_target_is_shown_on_its_field(cast: Cast, mode: str, field: str, value: str,
                                                          message: str) -> None:
    page = text(client_for(cast, "domain_admin_a").post(url("screens:catchall", cast), {"mode": mode, field: value}))
    assert any(message in e for e in field_errors(page, field)), (field_errors(page, field), page)
    assert 'class="alert error"' not in page


def test_vacation_dates_refused_on_the_end_date(cast: Cast) -> None:
    page = text(client_for(cast, "domain_admin_a").post(url("screens:mailbox_modify", cast, cast.mailbox_user.pk), {
        "real_name": "Alpha User", "routing": "standard", "enabled": "on", "vacation_enabled": "on",
        "vacation_message": "Parti", "vacation_start": "2026-08-10", "vacation_end": "2026-08-01"}))
    assert any("cannot end before it starts" in e for e in field_errors(page, "vacation_end"))
    assert field_errors(page, "vacation_message") == []


# --- 7. a weak password typed twice: its weakness only -------------------------------------------------


def weak_posts(cast: Cast) -> dict[str, tuple[str, str, dict, str]]:
    """Each password form: (seat, URL, data with WEAK typed twice, the field its error goes on)."""
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_domains=5)  # room for the new domain
    return {
        "new account": ("domain_admin_a", url("screens:mailbox_create", cast),
                        {"local_part": "nouveau", "password1": WEAK, "password2": WEAK}, "password1"),
        "modify": ("domain_admin_a", url("screens:mailbox_modify", cast, cast.mailbox_user.pk),
                   {"real_name": "Alpha User", "routing": "standard", "enabled": "on", "password1": WEAK,
                    "password2": WEAK}, "password1"),
        "own page": ("mailbox_a", reverse("screens:me"),
                     {"real_name": "Alpha User", "routing": "standard", "current_password": MAILBOX_PASSWORD,
                      "password1": WEAK, "password2": WEAK}, "password1"),
        "own password": ("mailbox_a", reverse("screens:me_password"),
                         {"current_password": MAILBOX_PASSWORD, "new_password1": WEAK, "new_password2": WEAK},
                         "new_password1"),
        "public password page": ("anonymous", reverse("screens:change_password"),
                                 {"address": "alphauser@alpha-domain.test", "old_password": MAILBOX_PASSWORD,
                                  "new_password1": WEAK, "new_password2": WEAK}, "new_password1"),
        "new domain": ("customer_a", reverse("screens:domain_add", args=[cast.a.pack.pk]),
                       {"name": "alpha-new.test", "password1": WEAK, "password2": WEAK}, "password1"),
    }


@pytest.mark.parametrize("form", ["new account", "modify", "own page", "own password", "public password page",
                                  "new domain"])
@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_weak_password_typed_twice_is_refused_for_its_weakness_only(cast: Cast, form: str, language: str) -> None:
    role, address, data, field = weak_posts(cast)[form]
    before = Mailbox.objects.get(pk=cast.mailbox_user.pk).password_hash
    page = text(client_for(cast, role, language).post(address, data))
    assert MISMATCH_EN not in page and MISMATCH_FR not in page
    weak = {"en": "This password is too common.", "fr": "Ce mot de passe est trop courant."}[language]
    assert field_errors(page, field) == [weak], field_errors(page, field)
    assert Mailbox.objects.get(pk=cast.mailbox_user.pk).password_hash == before


@pytest.mark.parametrize("form", ["new account", "modify", "own password", "public password page", "new domain"])
def test_two_different_passwords_are_still_a_mismatch_on_the_second(cast: Cast, form: str) -> None:
    role, address, data, field = weak_posts(cast)[form]
    second = field.replace("1", "2")
    page = text(client_for(cast, role).post(address, {**data, field: NEW_PASSWORD, second: NEW_PASSWORD + "x"}))
    assert field_errors(page, second) == [MISMATCH_EN] and field_errors(page, field) == []
