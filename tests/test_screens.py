"""The QmailAdmin screens of a domain, through the test client: each flow and its refusals.

Who may open each URL is `test_access_matrix.py`'s; here, what each screen does for the seats
that may, and that a refused change writes nothing (the modify page's calls are one change)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from hosting.models import AuditEvent, Domain, Plan
from hostlink import reports as host_reports
from mail.models import CatchAll, CatchAllMode, Forward, Mailbox, Robot, Routing
from mail.services import catchall_set, forward_create, robot_create
from mailhost.passwords import verify_password
from provisioning.models import DomainSync
from tests.conftest import Cast, client_for, login_mailbox
from tests.factories import MAILBOX_PASSWORD, MailboxFactory

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "Nouveau-Mot-2026!"  # noqa: S105 - a test account's


def url(name: str, cast: Cast, *args: Any) -> str:
    return reverse(name, args=[cast.a.domain.pk, *args])


def text(response: Any) -> str:
    return response.content.decode()


# --- the main menu and the quick box -------------------------------------------------------------


def test_the_menu_links_every_list_and_new_page_and_hides_a_feature_at_zero(cast: Cast) -> None:
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_robots=0)
    page = text(client_for(cast, "domain_admin_a").get(url("screens:domain", cast)))
    for name in ("screens:mailboxes", "screens:mailbox_create", "screens:forwards", "screens:forward_create",
                 "screens:catchall"):
        assert f'href="{url(name, cast)}"' in page, name
    assert url("screens:robots", cast) not in page and "Robots" not in page
    assert "[Used in the pack: 2/5]" in page  # postmaster and alphauser


def test_the_menu_in_french_uses_the_seeds_words(cast: Cast) -> None:
    page = text(client_for(cast, "domain_admin_a", "fr").get(url("screens:domain", cast)))
    for words in ("Menu principal", "Comptes Pop", "Nouveau compte Pop", "Redirections", "Nouvelle redirection",
                  "Robots", "Nouvel E-mail robot", "[Utilisé dans le pack : 2/5]", "Liens rapides", "Déconnexion"):
        assert words in page, words


def test_the_quick_box_finds_what_holds_a_name(cast: Cast) -> None:
    forward = forward_create(domain=cast.a.domain, local_part="ventes", destinations=["x@elsewhere.test"],
                             acting_user=cast.operator)
    robot = robot_create(domain=cast.a.domain, local_part="robot", subject="Reçu", message="Merci",
                         acting_user=cast.operator)
    client = client_for(cast, "domain_admin_a")
    quick = url("screens:quick", cast)
    assert client.get(quick, {"name": "AlphaUser"})["Location"] == url("screens:mailbox_modify", cast,
                                                                       cast.mailbox_user.pk)
    assert client.get(quick, {"name": "ventes", "do": "delete"})["Location"] == url("screens:forward_delete", cast,
                                                                                    forward.pk)
    assert client.get(quick, {"name": "robot"})["Location"] == url("screens:robot_modify", cast, robot.pk)
    for name, message in (("nobody", "Nothing is called nobody@alpha-domain.test."), ("../x", "")):
        response = client.get(quick, {"name": name}, follow=True)
        assert response.redirect_chain[-1][0] == url("screens:domain", cast)
        assert message in text(response) and 'class="message error"' in text(response)


# --- POP accounts ------------------------------------------------------------------------------


def test_the_account_list_shows_usage_catchall_and_quota(cast: Cast) -> None:
    Mailbox.objects.filter(pk=cast.mailbox_user.pk).update(quota_mb=100, quota_used_bytes=50 * 1024 * 1024)
    page = text(client_for(cast, "domain_admin_a", "fr").get(url("screens:mailboxes", cast)))
    assert "alpha-domain.test Comptes Pop [Utilisé dans le pack : 2/5]" in page
    assert "E-mail inconnu : rejeté" in page
    assert "50.00 / 100" in page and 'value="50"' in page  # the usage bar
    assert "0.00 / illimité" in page  # postmaster: no quota


def test_the_index_and_the_search_fold_case_and_accents(cast: Cast) -> None:
    MailboxFactory(domain=cast.a.domain, local_part="helene", real_name="Hélène Dupré")
    MailboxFactory(domain=cast.a.domain, local_part="bob", real_name="Bob")
    client = client_for(cast, "domain_admin_a")
    rows = lambda **query: [m for m in ("helene", "bob", "postmaster", "alphauser")  # noqa: E731
                            if f">{m}</a>" in text(client.get(url("screens:mailboxes", cast), query))]
    assert rows(index="b") == ["bob"]
    assert rows(q="DUPRE") == ["helene"] and rows(q="hélène") == ["helene"] and rows(q="Lène") == ["helene"]
    assert rows(q="zzz") == []
    assert rows(index="*") == ["helene", "bob", "postmaster", "alphauser"]  # not an index letter: all


def test_the_account_list_pages_on_the_server_in_a_constant_number_of_queries(cast: Cast) -> None:
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_mailboxes=-1)
    client = client_for(cast, "domain_admin_a")
    counts = []
    for extra in (10, 120):
        Mailbox.objects.bulk_create([Mailbox(domain=cast.a.domain, local_part=f"u{len(counts)}x{i:03d}",
                                             password_hash="{X}y") for i in range(extra)])
        with CaptureQueriesContext(connection) as queries:
            page = text(client.get(url("screens:mailboxes", cast), {"page": 2}))
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert page.count('name="mailbox"') == 50  # page 2 of 132 accounts: 50 rows


def test_a_new_account_as_in_the_seed(cast: Cast) -> None:
    client = client_for(cast, "domain_admin_a")
    response = client.post(url("screens:mailbox_create", cast), {
        "local_part": "test", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "real_name": "Compte test"})
    assert response.status_code == 302 and response["Location"] == url("screens:mailboxes", cast)
    mailbox = Mailbox.objects.get(domain=cast.a.domain, local_part="test")
    assert mailbox.real_name == "Compte test" and mailbox.search_name == "test compte test"
    assert AuditEvent.objects.filter(action="mailbox.create", target_id=str(mailbox.pk),
                                     actor_label=cast.a.postmaster.address).exists()


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"local_part": "alphauser"}, "local_part", "Name already used."),
    ({"local_part": "../etc"}, "local_part", ""),
    ({"password2": "Autre-Chose-2026!"}, "password2", "Passwords don&#x27;t match."),
    ({"password1": "court", "password2": "court"}, "password1", ""),
    ({"quota_mb": "10 GB"}, "quota_mb", ""),
])
def test_a_refused_account_says_why_and_writes_nothing(cast: Cast, data: dict, field: str, message: str) -> None:
    before = Mailbox.objects.count(), AuditEvent.objects.count()
    response = client_for(cast, "domain_admin_a").post(url("screens:mailbox_create", cast), {
        "local_part": "test", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, **data})
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in text(response) and message in text(response)
    assert (Mailbox.objects.count(), AuditEvent.objects.count()) == before


def test_a_full_pack_says_so_before_the_form_is_filled(cast: Cast) -> None:
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_mailboxes=2, max_forwards=0, max_robots=1)
    robot_create(domain=cast.a.domain, local_part="robot", subject="s", message="m", acting_user=cast.operator)
    client = client_for(cast, "domain_admin_a", "fr")
    for name, message in (("screens:mailbox_create", "Nombre maximum de comptes Pop atteint."),
                          ("screens:robot_create", "Nombre maximum d&#x27;E-mails robots atteint.")):
        page = text(client.get(url(name, cast)))
        assert message in page and 'type="submit" class="button primary"' not in page, name
    menu = text(client.get(url("screens:domain", cast)))
    assert "Nouveau compte Pop — limite atteinte" in menu
    # A post made anyway (the page was open before the pack filled up) is refused by the service.
    response = client.post(url("screens:mailbox_create", cast), {
        "local_part": "test", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 400 and not Mailbox.objects.filter(local_part="test").exists()


def modify_data(mailbox: Mailbox, **changes: Any) -> dict[str, Any]:
    data = {"real_name": mailbox.real_name, "quota_mb": str(mailbox.quota_mb or ""), "enabled": "on",
            "allow_pop3": "on", "allow_imap": "on", "allow_smtp": "on", "routing": Routing.STANDARD,
            "forward_to": "", "vacation_subject": "", "vacation_message": ""}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_modify_an_account_every_field(cast: Cast) -> None:
    mailbox = cast.mailbox_user
    client = client_for(cast, "domain_admin_a")
    response = client.post(url("screens:mailbox_modify", cast, mailbox.pk), modify_data(
        mailbox, real_name="Alice Ébène", quota_mb="200", allow_pop3=None, routing=Routing.FORWARD,
        forward_to="alice@elsewhere.test\npostmaster", keep_copy="on", vacation_enabled="on",
        vacation_subject="Absente", vacation_message="De retour lundi.", vacation_start="2026-12-20",
        vacation_end="2027-01-03", password1=NEW_PASSWORD, password2=NEW_PASSWORD))
    assert response.status_code == 302, text(response)
    mailbox.refresh_from_db()
    assert (mailbox.real_name, mailbox.search_name, mailbox.quota_mb) == ("Alice Ébène", "alphauser alice ebene", 200)
    assert (mailbox.allow_pop3, mailbox.allow_imap, mailbox.routing, mailbox.keep_copy) == (
        False, True, Routing.FORWARD, True)
    assert mailbox.forward_to == ["alice@elsewhere.test", "postmaster@alpha-domain.test"]
    assert mailbox.vacation_enabled and str(mailbox.vacation_end) == "2027-01-03"
    assert mailbox.password_hash != cast.a.postmaster.password_hash  # changed
    actions = set(AuditEvent.objects.filter(target_id=str(mailbox.pk)).values_list("action", flat=True))
    assert {"mailbox.set_real_name", "mailbox.set_quota", "mailbox.set_access", "mailbox.set_routing",
            "mailbox.set_vacation", "mailbox.set_password"} <= actions


def test_a_refused_modification_changes_nothing_at_all(cast: Cast) -> None:
    """The routing refused (a loop: postmaster forwards here, here forwards to postmaster): the
    real name and the quota typed with it are not written either."""
    postmaster = cast.a.postmaster
    client = client_for(cast, "domain_admin_a")
    client.post(url("screens:mailbox_modify", cast, postmaster.pk), modify_data(
        postmaster, routing=Routing.FORWARD, forward_to="alphauser"))
    before = AuditEvent.objects.count()
    mailbox = cast.mailbox_user
    response = client.post(url("screens:mailbox_modify", cast, mailbox.pk), modify_data(
        mailbox, real_name="Changed", quota_mb="300", routing=Routing.FORWARD, forward_to="postmaster"))
    assert response.status_code == 400 and 'id="id_forward_to_error"' in text(response)
    assert "postmaster@alpha-domain.test" in text(response)  # the message names the loop
    mailbox.refresh_from_db()
    assert (mailbox.real_name, mailbox.quota_mb, mailbox.routing) == ("Alpha User", 0, Routing.STANDARD)
    assert AuditEvent.objects.count() == before


def test_delete_an_account_with_redirect(cast: Cast) -> None:
    client = client_for(cast, "domain_admin_a", "fr")
    page = text(client.get(url("screens:mailbox_delete", cast, cast.mailbox_user.pk)))
    assert "Supprimer l'utilisateur alphauser@alpha-domain.test ?" in page and "Oui, rediriger vers :" in page
    response = client.post(url("screens:mailbox_delete", cast, cast.mailbox_user.pk),
                           {"redirect": "on", "redirect_to": "postmaster"})
    assert response.status_code == 302
    assert not Mailbox.objects.filter(pk=cast.mailbox_user.pk).exists()
    assert Forward.objects.get(domain=cast.a.domain, local_part="alphauser").destinations == [
        "postmaster@alpha-domain.test"]


def test_postmaster_and_ones_own_account_are_not_deleted(cast: Cast) -> None:
    admin = MailboxFactory(domain=cast.a.domain, local_part="chef", is_admin=True)
    for seat, mailbox, message in ((cast.a.postmaster, cast.a.postmaster, "You cannot delete the postmaster account."),
                                   (admin, admin, "You cannot delete the account you are logged in with.")):
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        login_mailbox(client, seat)
        assert message in text(client.get(url("screens:mailbox_delete", cast, mailbox.pk)))
        response = client.post(url("screens:mailbox_delete", cast, mailbox.pk), {})
        assert response.status_code == 400 and message.replace("'", "&#x27;") in text(response)
        assert Mailbox.objects.filter(pk=mailbox.pk).exists()


# --- catch-all -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "mode", "target"), [
    ({"mode": "delete"}, CatchAllMode.DELETE, ""),
    ({"mode": "mailbox", "mailbox": "alphauser"}, CatchAllMode.MAILBOX, "alphauser"),
    ({"mailbox": "alphauser", "next": "mailboxes"}, CatchAllMode.MAILBOX, "alphauser"),  # the list's radio
    ({"mode": "remote", "remote": "Tout@Ailleurs.test"}, CatchAllMode.REMOTE, "tout@ailleurs.test"),
    ({"mode": "domain", "other_domain": "bravo-domain.test"}, CatchAllMode.DOMAIN, "bravo-domain.test"),
    ({"mode": "bounce"}, CatchAllMode.BOUNCE, ""),
])
def test_every_catchall_mode_from_the_page(cast: Cast, data: dict, mode: str, target: str) -> None:
    CatchAll.objects.create(domain=cast.a.domain, mode=CatchAllMode.DELETE if mode == "bounce" else "bounce")
    response = client_for(cast, "customer_a").post(url("screens:catchall", cast), data)
    assert response.status_code == 302, text(response)
    catchall = CatchAll.objects.get(domain=cast.a.domain)
    assert (catchall.mode, catchall.target) == (mode, target)


def test_a_refused_catchall_says_why(cast: Cast) -> None:
    client = client_for(cast, "domain_admin_a")
    for data in ({"mode": "mailbox", "mailbox": "nobody"}, {"mode": "remote", "remote": "pas une adresse"},
                 {"mode": "domain", "other_domain": "alpha-domain.test"}, {"mode": "weird"}):
        response = client.post(url("screens:catchall", cast), data)
        assert response.status_code == 400, data
    assert not CatchAll.objects.filter(domain=cast.a.domain).exists()


# --- forwards ------------------------------------------------------------------------------------


def test_a_forward_made_modified_and_deleted(cast: Cast) -> None:
    client = client_for(cast, "domain_admin_a")
    response = client.post(url("screens:forward_create", cast),
                           {"local_part": "test", "destinations": "commercial@trusttelecom.test"})
    assert response.status_code == 302
    forward = Forward.objects.get(domain=cast.a.domain, local_part="test")
    modify = url("screens:forward_modify", cast, forward.pk)
    assert client.post(modify, {"destination": "alphauser"}).status_code == 302
    forward.refresh_from_db()
    assert forward.destinations == ["commercial@trusttelecom.test", "alphauser@alpha-domain.test"]
    remove = url("screens:forward_remove_destination", cast, forward.pk)
    client.post(remove, {"destination": "commercial@trusttelecom.test"})
    forward.refresh_from_db()
    assert forward.destinations == ["alphauser@alpha-domain.test"]
    page = text(client.post(remove, {"destination": "alphauser@alpha-domain.test"}, follow=True))
    assert "Cannot delete the last destination" in page
    forward.refresh_from_db()
    assert forward.destinations == ["alphauser@alpha-domain.test"]
    assert client.post(url("screens:forward_delete", cast, forward.pk)).status_code == 302
    assert not Forward.objects.filter(pk=forward.pk).exists()


def test_the_forward_list_flags_a_local_destination_that_is_gone(cast: Cast) -> None:
    forward_create(domain=cast.a.domain, local_part="equipe", destinations=["alphauser", "x@elsewhere.test"],
                   acting_user=cast.operator)
    Mailbox.objects.filter(pk=cast.mailbox_user.pk).delete()  # behind the panel's back
    page = text(client_for(cast, "domain_admin_a", "fr").get(url("screens:forwards", cast)))
    assert "alpha-domain.test Comptes redirigés [Utilisé dans le pack : 1/10]" in page
    assert "alphauser@alpha-domain.test <strong" in page and "x@elsewhere.test</td>" in page


@pytest.mark.parametrize(("data", "message"), [
    ({"local_part": "postmaster"}, "Name already used."),
    ({"destinations": ""}, "This field is required."),
    ({"destinations": " , \n"}, "Enter at least one destination."),
    ({"destinations": "pas une adresse"}, ""),
    ({"destinations": "nobody"}, ""),  # no such account
])
def test_a_refused_forward_writes_nothing(cast: Cast, data: dict, message: str) -> None:
    response = client_for(cast, "domain_admin_a").post(url("screens:forward_create", cast),
                                                       {"local_part": "test", "destinations": "x@y.test", **data})
    assert response.status_code == 400 and message in text(response)
    assert not Forward.objects.exists()


def test_a_chain_of_forwards_is_refused_with_a_message_that_names_it(cast: Cast) -> None:
    forward_create(domain=cast.a.domain, local_part="un", destinations=["x@elsewhere.test"],
                   acting_user=cast.operator)
    response = client_for(cast, "domain_admin_a").post(url("screens:forward_create", cast),
                                                       {"local_part": "deux", "destinations": "un@alpha-domain.test"})
    assert response.status_code == 400 and "un@alpha-domain.test" in text(response)
    assert not Forward.objects.filter(local_part="deux").exists()


# --- robots --------------------------------------------------------------------------------------


def test_a_robot_as_in_the_seed(cast: Cast) -> None:
    client = client_for(cast, "domain_admin_a")
    response = client.post(url("screens:robot_create", cast), {
        "local_part": "robot", "copy_to": "commercial@trusttelecom.test", "subject": "Mail bien reçu",
        "message": "Bonjour,\nVotre demande est en cours de traitement.", "reply_hours": "24"})
    assert response.status_code == 302, text(response)
    robot = Robot.objects.get(domain=cast.a.domain, local_part="robot")
    assert (robot.copy_to, robot.subject, robot.reply_hours) == ("commercial@trusttelecom.test", "Mail bien reçu", 24)
    response = client.post(url("screens:robot_modify", cast, robot.pk), {
        "copy_to": "", "subject": "Reçu", "message": "Merci.", "reply_hours": "48"})
    assert response.status_code == 302
    robot.refresh_from_db()
    assert (robot.copy_to, robot.subject, robot.message, robot.reply_hours) == ("", "Reçu", "Merci.", 48)
    page = text(client.get(url("screens:robots", cast)))
    assert ">robot<" in page or "robot@" in page
    assert client.post(url("screens:robot_delete", cast, robot.pk)).status_code == 302
    assert not Robot.objects.exists()


def test_a_refused_robot_writes_nothing(cast: Cast) -> None:
    client = client_for(cast, "domain_admin_a")
    for data in ({"subject": "a\r\nBcc: x@y.test"}, {"reply_hours": "0"}, {"local_part": "alphauser"},
                 {"copy_to": "pas une adresse"}):
        response = client.post(url("screens:robot_create", cast), {
            "local_part": "robot", "subject": "s", "message": "m", "reply_hours": "24", **data})
        assert response.status_code == 400, data
    assert not Robot.objects.exists()


# --- a mailbox user's own account ------------------------------------------------------------


def test_a_user_changes_their_own_account(cast: Cast) -> None:
    client = client_for(cast, "mailbox_a")
    page = text(client.get(reverse("screens:me")))
    assert "Quota" in page and 'name="quota_mb"' not in page and 'name="allow_pop3"' not in page
    data = {"real_name": "Alpha Utilisatrice", "routing": Routing.STANDARD, "vacation_enabled": "on",
            "vacation_subject": "Absente", "vacation_message": "De retour lundi.", "forward_to": ""}
    assert client.post(reverse("screens:me"), data).status_code == 302
    mailbox = Mailbox.objects.get(pk=cast.mailbox_user.pk)
    assert mailbox.real_name == "Alpha Utilisatrice" and mailbox.vacation_enabled
    # A new password needs the current one.
    refused = client.post(reverse("screens:me"), {**data, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD,
                                               "current_password": "wrong"})
    assert refused.status_code == 400 and 'id="id_current_password_error"' in text(refused)
    assert Mailbox.objects.get(pk=mailbox.pk).password_hash == mailbox.password_hash
    accepted = client.post(reverse("screens:me"), {**data, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD,
                                                "current_password": MAILBOX_PASSWORD})
    assert accepted.status_code == 302
    assert Mailbox.objects.get(pk=mailbox.pk).password_hash != mailbox.password_hash
    assert client.get(reverse("screens:me")).status_code == 200  # this session kept


# --- the client area ---------------------------------------------------------------------------


def test_a_customer_adds_a_domain_within_the_packs_limit(cast: Cast) -> None:
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_domains=2, max_mailboxes=10)
    client = client_for(cast, "customer_a")
    page = text(client.get(reverse("screens:pack", args=[cast.a.pack.pk])))
    assert reverse("screens:domain_add", args=[cast.a.pack.pk]) in page and "being applied" in page
    response = client.post(reverse("screens:domain_add", args=[cast.a.pack.pk]),
                           {"name": "Exemple-Alpha.fr", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302, text(response)
    domain = cast.a.pack.domains.get(name="exemple-alpha.fr")
    assert sorted(domain.mailboxes.values_list("local_part", flat=True)) == ["hostmaster", "postmaster"]
    full = text(client.get(reverse("screens:domain_add", args=[cast.a.pack.pk])))
    assert "Maximum number of domains of this pack reached (2)." in full and 'name="name"' not in full
    refused = client.post(reverse("screens:domain_add", args=[cast.a.pack.pk]),
                          {"name": "autre.test", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert refused.status_code == 400 and not cast.a.pack.domains.filter(name="autre.test").exists()


def test_a_customer_resets_the_postmaster_password_shown_once(cast: Cast) -> None:
    before = Mailbox.objects.get(pk=cast.a.postmaster.pk).password_hash
    response = client_for(cast, "customer_a").post(reverse("screens:postmaster_reset", args=[cast.a.domain.pk]),
                                                   {"confirm": "yes"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    password = text(response).split("<code>")[1].split("</code>")[0]
    stored = Mailbox.objects.get(pk=cast.a.postmaster.pk).password_hash
    assert stored != before and verify_password(password, stored)
    assert AuditEvent.objects.filter(action="mailbox.set_password", actor_label="owner@alpha-customer.test").exists()


def test_rename_an_account_from_its_page(cast: Cast) -> None:
    client = client_for(cast, "domain_admin_a")
    modify = url("screens:mailbox_modify", cast, cast.mailbox_user.pk)
    assert url("screens:mailbox_rename", cast, cast.mailbox_user.pk) in text(client.get(modify))
    response = client.post(url("screens:mailbox_rename", cast, cast.mailbox_user.pk), {"new_local_part": "alicia"})
    assert response["Location"] == modify
    assert Mailbox.objects.get(pk=cast.mailbox_user.pk).local_part == "alicia"
    page = text(client.post(url("screens:mailbox_rename", cast, cast.mailbox_user.pk),
                            {"new_local_part": "postmaster"}, follow=True))
    assert 'class="message error"' in page
    assert Mailbox.objects.get(pk=cast.mailbox_user.pk).local_part == "alicia"
    assert url("screens:mailbox_rename", cast, cast.a.postmaster.pk) not in text(
        client.get(url("screens:mailbox_modify", cast, cast.a.postmaster.pk)))


def test_the_admins_domain_page_opens_the_domains_menu(cast: Cast) -> None:
    page = text(client_for(cast, "support").get(reverse("admin:hosting_domain_change", args=[cast.a.domain.pk])))
    assert f'href="{url("screens:domain", cast)}"' in page
    # Support acts on the domain under its own name.
    response = client_for(cast, "support").post(url("screens:mailbox_create", cast), {
        "local_part": "aide", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="mailbox.create", target_repr="aide@alpha-domain.test")
    assert (event.actor_label, event.actor_role) == ("agent@support.test", "support")


def test_the_own_password_card_asks_for_the_current_password(cast: Cast) -> None:
    client = client_for(cast, "mailbox_a")
    before = Mailbox.objects.get(pk=cast.mailbox_user.pk).password_hash
    for current in ("", "wrong"):
        response = client.post(reverse("screens:me_password"), {
            "current_password": current, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
        assert response.status_code == 400 and 'id="id_current_password_error"' in text(response)
    assert Mailbox.objects.get(pk=cast.mailbox_user.pk).password_hash == before


def test_a_refused_delete_says_why_and_keeps_the_robot(cast: Cast) -> None:
    """The domain's catch-all sends unknown names on, and a forward goes to the robot: once the
    robot is gone, its mail would go through the catch-all (a chain). The page says so."""
    robot = robot_create(domain=cast.a.domain, local_part="robot", subject="Reçu", message="Merci",
                         acting_user=cast.operator)
    forward_create(domain=cast.a.domain, local_part="accueil", destinations=["robot@alpha-domain.test"],
                   acting_user=cast.operator)
    catchall_set(domain=cast.a.domain, mode=CatchAllMode.REMOTE, target="tout@ailleurs.test",
                 acting_user=cast.operator)
    client = client_for(cast, "domain_admin_a")
    page = text(client.get(url("screens:robot_delete", cast, robot.pk)))
    assert "Delete the mail robot robot@alpha-domain.test?" in page
    response = client.post(url("screens:robot_delete", cast, robot.pk))
    assert response.status_code == 400 and "cannot be deleted" in text(response)
    assert Robot.objects.filter(pk=robot.pk).exists()



def test_deleting_hostmaster_of_a_fr_domain_asks_for_a_confirmation(cast: Cast) -> None:
    Domain.objects.filter(pk=cast.a.domain.pk).update(name="alpha-domain.fr")
    hostmaster = MailboxFactory(domain=cast.a.domain, local_part="hostmaster")
    client = client_for(cast, "domain_admin_a", "fr")
    delete = url("screens:mailbox_delete", cast, hostmaster.pk)
    page = text(client.get(delete))
    assert "obligatoire pour les .fr" in page and 'name="confirm_hostmaster"' in page
    refused = client.post(delete, {})
    assert refused.status_code == 400 and Mailbox.objects.filter(pk=hostmaster.pk).exists()
    assert client.post(delete, {"confirm_hostmaster": "on"}).status_code == 302
    assert not Mailbox.objects.filter(pk=hostmaster.pk).exists()
    # Elsewhere hostmaster is an account like another: no confirmation asked.
    other = MailboxFactory(domain=cast.b.domain, local_part="hostmaster")
    client_b = client_for(cast, "domain_admin_b")
    assert 'name="confirm_hostmaster"' not in text(client_b.get(reverse("screens:mailbox_delete",
                                                                        args=[cast.b.domain.pk, other.pk])))


def test_a_name_deleted_a_moment_ago_gets_no_new_account_until_the_host_removed_the_old_one(cast: Cast) -> None:
    """Its Maildir is still on the host until the host confirms the deletion: a new account there
    would read the deleted one's mail."""
    client = client_for(cast, "domain_admin_a")
    assert client.post(url("screens:mailbox_delete", cast, cast.mailbox_user.pk), {}).status_code == 302
    data = {"local_part": "alphauser", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    refused = client.post(url("screens:mailbox_create", cast), data)
    assert refused.status_code == 400 and "was deleted a moment ago" in text(refused)
    assert not Mailbox.objects.filter(domain=cast.a.domain, local_part="alphauser").exists()
    domain = Domain.objects.get(pk=cast.a.domain.pk)
    DomainSync.objects.update_or_create(domain=domain, defaults={"host": cast.host})  # as the push leaves it
    host_reports.record_report(host=cast.host.name, domain=domain.name, revision=domain.revision,
                                        state="present")
    assert client.post(url("screens:mailbox_create", cast), data).status_code == 302


def test_an_add_page_counts_no_further_than_the_limit(cast: Cast) -> None:
    """The add pages only need to know whether the feature is full: with an unlimited plan they count
    nothing, with a limit they read at most that many rows (the same cost at any domain size)."""
    client = client_for(cast, "domain_admin_a")
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_mailboxes=-1)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url("screens:mailbox_create", cast)).status_code == 200
    assert not [q["sql"] for q in queries if "COUNT" in q["sql"] and "mail_mailbox" in q["sql"]]
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_mailboxes=2)
    with CaptureQueriesContext(connection) as queries:
        page = text(client.get(url("screens:mailbox_create", cast)))
    [count] = [q["sql"] for q in queries if "COUNT" in q["sql"] and "mail_mailbox" in q["sql"]]
    assert "LIMIT 2" in count and "Maximum number of POP accounts reached." in page  # postmaster, alphauser
