"""The seed (the French QmailAdmin guide, /work/shared/seed/qmailadmin-guide-fr.txt) followed in
French in Debian's Chromium against the live server: what a person reads on each screen (headings,
labels, counters, messages) and then what is stored. Every page visited is watched for
Content-Security-Policy reports: there must be none."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hosting.models import Domain
from mail.models import CatchAll, CatchAllMode, Forward, Mailbox, Robot, Routing
from tests.browser.conftest import Watched, save_screenshot
from tests.factories import MAILBOX_PASSWORD, USER_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DOMAIN = "alpha-domain.test"
COMMERCIAL = "commercial@trusttelecom.fr"  # the seed's addresses
BENOIT = "benoit@trusttelecom.fr"
TEST_PASSWORD = "Sksk-sksk-2009"  # the seed's "sksksksk", made strong enough for the rules
ROBOT_MESSAGE = (
    "Bonjour,\n\nVotre demande est en cours de traitement, merci de bien vouloir patienter nous vous "
    "contacterons dans les plus bref délais.\n\nCordialement."
)
VACATION_SUBJECT = "Absent jusqu'au 15 août"
VACATION_MESSAGE = "Je suis en congés. Vos e-mails sont transmis à un collègue."


class Person(Watched):
    """A browser page used by one person, every page checked for CSP reports after each step."""

    def click(self, locator: Any) -> None:
        """Click a link or a submit button and wait for the page it leads to."""
        with self.page.expect_navigation():
            locator.click()
        self.check(self.page.url)

    # What a person reads.
    def h1(self) -> str:
        return squash(self.page.locator("main h1").inner_text())

    def main_text(self) -> str:
        return squash(self.page.locator("main").inner_text())

    def messages(self) -> list[str]:
        return [squash(text) for text in self.page.locator("main ul.messages li").all_inner_texts()]

    def label(self, for_id: str) -> str:
        return squash(self.page.locator(f"label[for='{for_id}']").inner_text())

    def field(self, label: str) -> Any:
        """The one form control of <main> with this exact label."""
        control = self.page.locator("main").get_by_label(label, exact=True)
        assert control.count() == 1, f"{control.count()} controls labelled {label!r}"
        return control

    def link(self, name: str, *, where: str = "main") -> Any:
        return self.page.locator(where).get_by_role("link", name=name, exact=True)

    def button(self, name: str, *, where: str = "main") -> Any:
        return self.page.locator(where).get_by_role("button", name=name, exact=True)

    def column(self, header: str) -> list[str]:
        """The cells of the column of <main>'s table under this header, top to bottom."""
        headers = [squash(h) for h in self.page.locator("main table thead th").all_inner_texts()]
        assert header in headers, f"{header!r} not among {headers}"
        index = headers.index(header) + 1
        return [squash(t) for t in self.page.locator(f"main table tbody tr td:nth-child({index})").all_inner_texts()]

    def headers(self) -> list[str]:
        return [squash(h) for h in self.page.locator("main table thead th").all_inner_texts()]

    def row(self, cell_text: str) -> Any:
        """The table row of <main> with a cell of exactly this text."""
        return self.page.locator("main table tbody tr").filter(
            has=self.page.get_by_role("cell", name=cell_text, exact=True))


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def log_in(person: Person, account: str, domain: str, password: str) -> None:
    """The seed's login: Compte (postmaster), Nom de domaine (without www), Mot de passe."""
    page = person.page
    person.open("/login/")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert person.label("id_account") == "Compte"
    assert person.label("id_domain") == "Nom de domaine"
    assert person.label("id_password") == "Mot de passe"
    person.field("Compte").fill(account)
    person.field("Nom de domaine").fill(domain)
    person.field("Mot de passe").fill(password)
    person.click(person.button("Connexion"))


def menu_line(person: Person, name: str) -> str:
    """A line of the main menu's "Gérer" half: "Comptes Pop [Utilisé dans le pack : 2/5]"."""
    item = person.page.locator("main ul.menu li").filter(
        has=person.page.get_by_role("link", name=name, exact=True))
    assert item.count() == 1, f"{item.count()} menu lines for {name!r}"
    return squash(item.inner_text())


def go_to_menu(person: Person) -> None:
    person.click(person.link("Menu principal", where="footer"))
    assert person.h1() == f"Menu principal de {DOMAIN}"


def test_the_seed_in_french_as_postmaster(transactional_db: Any, cast: Any, live_server: Any, page: Any):
    person = Person(page, live_server.url)
    domain = cast.a.domain

    # 1) Log in as postmaster: the "Menu principal" with its two halves and the counters.
    log_in(person, "postmaster", DOMAIN, MAILBOX_PASSWORD)
    assert page.url == f"{live_server.url}/domains/{domain.pk}/"
    assert person.h1() == f"Menu principal de {DOMAIN}"
    assert page.title().startswith("Menu principal")
    # QmailAdmin's three parts, then the domain's DNS state and the DKIM records to publish (issue 18).
    assert [squash(t) for t in page.locator("main h2").all_inner_texts()] == [
        "Gérer", "Créer", "Liens rapides", "Vérifications DNS", "DKIM : les enregistrements à publier"]
    assert menu_line(person, "Comptes Pop") == "Comptes Pop [Utilisé dans le pack : 2/5]"
    assert menu_line(person, "Redirections") == "Redirections [Utilisé dans le pack : 0/10]"
    assert menu_line(person, "Robots") == "Robots [Utilisé dans le pack : 0/5]"
    for new in ("Nouveau compte Pop", "Nouvelle redirection", "Nouvel E-mail robot"):
        assert person.link(new).count() == 1, new
    assert person.link("Déconnexion", where="footer").count() == 0  # a button in a form (POST)
    assert person.button("Déconnexion", where="footer").count() == 1
    save_screenshot(page, "seed-1-menu-principal")

    # 2) "Nouveau compte Pop": test / password twice / "Compte test" / "Ajouter".
    person.click(person.link("Nouveau compte Pop"))
    assert person.h1() == "Ajouter un compte Pop"
    person.field("Compte Pop").fill("test")
    person.field("Mot de passe").fill(TEST_PASSWORD)
    person.field("Mot de passe (à nouveau)").fill(TEST_PASSWORD)
    person.field("Nom complet").fill("Compte test")
    assert f"@{DOMAIN}" in person.main_text()
    assert person.label("id_quota_mb") == "Quota (Mo)"
    assert str(cast.a.plan.default_quota_mb) in squash(page.locator("#id_quota_mb_helptext").inner_text())
    save_screenshot(page, "seed-2-nouveau-compte-pop")
    person.click(person.button("Ajouter"))
    assert page.url == f"{live_server.url}/domains/{domain.pk}/accounts/"
    assert person.messages() == [f"Le compte Pop test@{DOMAIN} a été créé."]
    assert person.h1() == f"{DOMAIN} Comptes Pop [Utilisé dans le pack : 3/5]"
    assert person.headers() == ["Compte Pop", "Commentaire", "Utilisé / Quota (Mo)", "Modifier l'utilisateur",
                                "Supprimer le compte", "Récupérer tous les e-mails sur ce compte"]
    assert person.column("Compte Pop") == ["alphauser", "postmaster", "test"]
    test_row = person.row("test")
    assert squash(test_row.locator("td").nth(1).inner_text()) == "Compte test"
    # The pack's default quota (the seed's pack had none: "0.00 / illimité").
    assert squash(test_row.locator("td").nth(2).inner_text()) == f"0.00 / {cast.a.plan.default_quota_mb}"
    assert "E-mail inconnu : rejeté" in person.main_text()
    save_screenshot(page, "seed-2-comptes-pop")
    # The search finds it by its full name, folded ("compte" finds "Compte test").
    person.field("Rechercher").fill("compte")
    person.click(person.button("Rechercher"))
    assert person.column("Compte Pop") == ["test"]
    # The index letter "t" shows it (and only the names starting with t).
    person.click(person.link("t", where="main nav.index"))
    assert person.column("Compte Pop") == ["test"]
    person.click(person.link("a", where="main nav.index"))
    assert person.column("Compte Pop") == ["alphauser"]
    person.click(person.link("tous", where="main nav.index"))
    assert person.column("Compte Pop") == ["alphauser", "postmaster", "test"]

    # 3) Modify test: "Rediriger le mail vers" with "Conserver une copie", vacation on.
    person.click(person.row("test").get_by_role("link", name="Modifier", exact=True))
    assert person.h1() == f"Modifier l'utilisateur : test@{DOMAIN}"
    assert person.field("Nom complet").input_value() == "Compte test"
    main = page.locator("main")
    assert main.get_by_role("radio", name="Standard (pas de redirection)", exact=True).is_checked()
    for label in ("Nouveau mot de passe", "Nouveau mot de passe (à nouveau)", "Routage", "Conserver une copie",
                  "Activer la notification d'absence", "Sujet de la notification",
                  "Message de la notification d'absence"):
        assert main.get_by_text(label, exact=True).count() >= 1, label
    main.get_by_role("radio", name="Rediriger le mail vers", exact=True).check()
    main.get_by_role("textbox", name="Adresses de redirection", exact=True).fill(COMMERCIAL)
    person.field("Conserver une copie").check()
    person.field("Activer la notification d'absence").check()
    person.field("Sujet de la notification").fill(VACATION_SUBJECT)
    person.field("Message de la notification d'absence").fill(VACATION_MESSAGE)
    person.click(person.button("Modifier l'utilisateur"))
    assert person.messages() == [f"test@{DOMAIN} a été modifié."]
    assert person.h1() == f"Modifier l'utilisateur : test@{DOMAIN}"
    assert main.get_by_role("radio", name="Rediriger le mail vers", exact=True).is_checked()
    assert main.get_by_role("textbox", name="Adresses de redirection", exact=True).input_value() == COMMERCIAL
    assert person.field("Conserver une copie").is_checked()
    assert person.field("Activer la notification d'absence").is_checked()
    assert person.field("Sujet de la notification").input_value() == VACATION_SUBJECT
    assert person.field("Message de la notification d'absence").input_value() == VACATION_MESSAGE
    save_screenshot(page, "seed-3-modifier-l-utilisateur")
    test = Mailbox.objects.get(domain=domain, local_part="test")
    assert (test.routing, test.forward_to, test.keep_copy) == (Routing.FORWARD, [COMMERCIAL], True)
    assert (test.vacation_enabled, test.vacation_subject, test.vacation_message) == (
        True, VACATION_SUBJECT, VACATION_MESSAGE)
    assert test.real_name == "Compte test"

    # 4) "Nouvelle redirection": test2 -> commercial@...; then a second destination.
    go_to_menu(person)
    person.click(person.link("Nouvelle redirection"))
    assert person.h1() == "Ajout d'un compte de redirection"
    person.field("Nom").fill("test2")
    person.field("Destination").fill(COMMERCIAL)
    assert "user@domain.com" in person.main_text()
    person.click(person.button("Ajouter"))
    assert person.messages() == [f"La redirection test2@{DOMAIN} a été créée."]
    assert person.h1() == f"{DOMAIN} Comptes redirigés [Utilisé dans le pack : 1/10]"
    assert person.headers() == ["Supprimer", "Modifier", "Nom", "Destination"]
    assert person.column("Nom") == ["test2"]
    assert person.column("Destination") == [COMMERCIAL]
    person.click(person.row("test2").get_by_role("link", name="Modifier", exact=True))
    assert person.h1() == f"Modifier test2@{DOMAIN}"
    assert person.column("Destination") == [COMMERCIAL]
    assert person.button("Supprimer").count() == 0  # the last destination cannot be deleted
    person.field("Ajouter l'adresse email").fill(BENOIT)
    person.click(person.button("Ajouter"))
    assert person.messages() == [f"test2@{DOMAIN} a été modifié."]
    assert person.column("Destination") == [COMMERCIAL, BENOIT]
    assert person.button("Supprimer").count() == 2
    save_screenshot(page, "seed-4-modifier-redirection")
    assert Forward.objects.get(domain=domain, local_part="test2").destinations == [COMMERCIAL, BENOIT]

    # 5) "Nouvel E-mail robot": robot, "Envoyer la copie à", "Mail bien reçus", the seed's message.
    go_to_menu(person)
    person.click(person.link("Nouvel E-mail robot"))
    assert person.h1() == "Ajouter un robot"
    person.field("Nom du robot").fill("robot")
    person.field("Envoyer la copie à").fill(COMMERCIAL)
    person.field("Sujet").fill("Mail bien reçus")
    person.field("Message").fill(ROBOT_MESSAGE)
    save_screenshot(page, "seed-5-nouvel-e-mail-robot")
    person.click(person.button("Ajouter"))
    assert person.messages() == [f"Le robot robot@{DOMAIN} a été créé."]
    assert person.h1() == f"{DOMAIN} Robots [Utilisé dans le pack : 1/5]"
    assert person.column("Nom du robot") == ["robot"]
    assert person.column("Envoyer la copie à") == [COMMERCIAL]
    assert person.column("Sujet") == ["Mail bien reçus"]
    robot = Robot.objects.get(domain=domain, local_part="robot")
    assert (robot.copy_to, robot.subject, robot.message) == (COMMERCIAL, "Mail bien reçus", ROBOT_MESSAGE)
    person.click(person.row("robot").get_by_role("link", name="Modifier", exact=True))
    assert person.h1() == f"Modifier le robot robot@{DOMAIN}"
    assert person.field("Message").input_value() == ROBOT_MESSAGE

    # The quick box of the menu finds a name whatever holds it, and says when nothing does.
    go_to_menu(person)
    person.field("Liens rapides").fill("Robot")
    person.click(person.button("Modifier", where="main form.quick"))
    assert person.h1() == f"Modifier le robot robot@{DOMAIN}"
    go_to_menu(person)
    person.field("Liens rapides").fill("inconnu")
    person.click(person.button("Supprimer", where="main form.quick"))
    assert person.messages() == [f"Aucune adresse ne s'appelle inconnu@{DOMAIN}."]

    # 6) Catch-all: the radio of the accounts list, then back to "rejeté" from the catch-all page.
    assert menu_line(person, "Redirections") == "Redirections [Utilisé dans le pack : 1/10]"
    assert menu_line(person, "Robots") == "Robots [Utilisé dans le pack : 1/5]"
    person.click(person.link("Comptes Pop"))
    assert squash(page.locator("main .catchall-status strong").inner_text()) == "E-mail inconnu : rejeté"
    # An account that forwards its mail with a copy (test, step 3) still delivers it: it may take the
    # catch-all (issue 16, defect 6; a pure forward may not: tests/test_copy_redirects.py).
    page.locator("main").get_by_role("radio", name="test", exact=True).check()
    person.click(person.button("Récupérer tous les e-mails sur le compte choisi"))
    assert person.messages() == ["E-mail inconnu : remis à test"]
    assert CatchAll.objects.filter(domain=domain).values_list("mode", "target").get() == (CatchAllMode.MAILBOX, "test")
    page.locator("main").get_by_role("radio", name="alphauser", exact=True).check()
    person.click(person.button("Récupérer tous les e-mails sur le compte choisi"))
    assert page.url == f"{live_server.url}/domains/{domain.pk}/accounts/"
    assert person.messages() == ["E-mail inconnu : remis à alphauser"]
    assert squash(page.locator("main .catchall-status strong").inner_text()) == "E-mail inconnu : remis à alphauser"
    assert page.locator("main").get_by_role("radio", name="alphauser", exact=True).is_checked()
    catchall = CatchAll.objects.get(domain=domain)
    assert (catchall.mode, catchall.target) == (CatchAllMode.MAILBOX, "alphauser")
    save_screenshot(page, "seed-6-catch-all-compte")
    person.click(person.link("Changer ce que deviennent les e-mails inconnus"))
    assert person.h1() == "E-mails inconnus (catch-all)"
    assert page.locator("main").get_by_role("radio", name="Récupérer tous les e-mails sur un compte Pop du domaine",
                                            exact=True).is_checked()
    page.locator("main").get_by_role("radio", name="E-mail inconnu : rejeté", exact=True).check()
    person.click(person.button("Modifier"))
    assert person.messages() == ["E-mail inconnu : rejeté"]
    assert squash(page.locator("main section p strong").first.inner_text()) == "E-mail inconnu : rejeté"
    assert page.locator("main").get_by_role("radio", name="E-mail inconnu : rejeté", exact=True).is_checked()
    assert CatchAll.objects.filter(domain=domain).exclude(mode=CatchAllMode.BOUNCE).count() == 0

    # 7) A full pack: the plan allows as many accounts as exist; the add page says so, no form.
    plan = cast.a.plan
    plan.max_mailboxes = Mailbox.objects.filter(domain__pack=cast.a.pack).count()
    plan.save(update_fields=["max_mailboxes"])
    assert plan.max_mailboxes == 3
    go_to_menu(person)
    assert menu_line(person, "Comptes Pop") == "Comptes Pop [Utilisé dans le pack : 3/3]"
    assert person.link("Nouveau compte Pop").count() == 0
    assert "Nouveau compte Pop — limite atteinte" in person.main_text()
    person.click(person.link("Comptes Pop"))
    person.click(person.link("Nouveau compte Pop").first)
    assert person.h1() == "Ajouter un compte Pop"
    alert = page.locator("main").get_by_role("alert")
    assert squash(alert.inner_text()).startswith("Nombre maximum de comptes Pop atteint.")
    assert "Utilisé dans le pack : 3/3" in alert.inner_text()
    assert page.locator("main form").count() == 0
    assert page.locator("main input").count() == 0
    save_screenshot(page, "seed-7-maximum-atteint")

    # 8) Delete test with "Oui, rediriger vers :"; the redirect is listed among the forwards.
    person.click(person.link("Comptes Pop", where="footer"))
    person.click(person.row("test").get_by_role("link", name="Supprimer", exact=True))
    assert person.h1() == f"Supprimer l'utilisateur test@{DOMAIN} ?"
    person.field("Redirection de l'email").check()
    person.field("Oui, rediriger vers :").fill(COMMERCIAL)
    save_screenshot(page, "seed-8-supprimer-l-utilisateur")
    person.click(person.button("Confirmer la suppression"))
    assert person.messages() == [f"Le compte Pop test@{DOMAIN} a été supprimé."]
    assert person.h1() == f"{DOMAIN} Comptes Pop [Utilisé dans le pack : 2/3]"
    assert person.column("Compte Pop") == ["alphauser", "postmaster"]
    go_to_menu(person)
    person.click(person.link("Redirections"))
    assert person.h1() == f"{DOMAIN} Comptes redirigés [Utilisé dans le pack : 2/10]"
    assert person.column("Nom") == ["test", "test2"]
    assert person.column("Destination") == [COMMERCIAL, f"{COMMERCIAL}, {BENOIT}"]
    save_screenshot(page, "seed-8-redirections")
    assert not Mailbox.objects.filter(domain=domain, local_part="test").exists()
    assert Forward.objects.get(domain=domain, local_part="test").destinations == [COMMERCIAL]


def test_a_mailbox_user_sees_only_their_account_and_sets_their_vacation(
    transactional_db: Any, cast: Any, live_server: Any, page: Any
):
    person = Person(page, live_server.url)
    me = cast.mailbox_user
    log_in(person, me.local_part, DOMAIN, MAILBOX_PASSWORD)
    assert page.url == f"{live_server.url}/me/"
    assert person.h1() == f"Compte Pop alphauser@{DOMAIN}"
    assert [squash(t) for t in page.locator("main h2").all_inner_texts()] == ["Mon compte", "Modifier le mot de passe"]
    text = squash(page.locator("body").inner_text())
    assert "Alpha User" in text
    assert "postmaster" not in text and "Menu principal" not in text and "Comptes Pop" not in text
    assert person.link("Menu principal", where="body").count() == 0
    save_screenshot(page, "seed-9-mon-compte")

    account = page.locator("main form[action='/me/']")
    account.get_by_label("Activer la notification d'absence", exact=True).check()
    account.get_by_label("Sujet de la notification", exact=True).fill(VACATION_SUBJECT)
    account.get_by_label("Message de la notification d'absence", exact=True).fill(VACATION_MESSAGE)
    person.click(account.get_by_role("button", name="Modifier", exact=True))
    assert page.url == f"{live_server.url}/me/"
    assert person.messages() == ["Votre compte a été modifié."]
    account = page.locator("main form[action='/me/']")
    assert account.get_by_label("Activer la notification d'absence", exact=True).is_checked()
    assert account.get_by_label("Sujet de la notification", exact=True).input_value() == VACATION_SUBJECT
    assert account.get_by_label("Message de la notification d'absence", exact=True).input_value() == VACATION_MESSAGE
    save_screenshot(page, "seed-9-notification-d-absence")
    me.refresh_from_db()
    assert (me.vacation_enabled, me.vacation_subject, me.vacation_message) == (
        True, VACATION_SUBJECT, VACATION_MESSAGE)

    # Nothing of the domain: its menu and its accounts are not there for them.
    for path in (f"/domains/{cast.a.domain.pk}/", f"/domains/{cast.a.domain.pk}/accounts/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 404, path
    person.check("the domain's pages")


def test_the_client_area_adds_a_domain_and_gives_a_new_postmaster_password(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, new_context: Any
):
    """The seed's "Espace Client": the pack's table, then a domain added (trusttelecom.info, the
    seed's example) whose postmaster logs in, then a new postmaster password shown once."""
    plan = cast.a.plan
    plan.max_domains = 2
    plan.save(update_fields=["max_domains"])
    person = Person(page, live_server.url)
    person.open("/accounts/login/")
    page.locator("input[name='login']").fill(cast.a.customer_user.email)
    page.locator("input[name='password']").fill(USER_PASSWORD)
    person.click(page.locator("form:has(input[name='login']) button[type='submit']"))
    person.open(f"/client/packs/{cast.a.pack.pk}/")
    assert person.h1() == f"Pack {cast.a.pack}"
    facts = page.locator("main table.facts-table")
    assert squash(facts.locator("caption").inner_text()) == "Caractéristiques du pack"
    assert squash(facts.locator("tr:has(th:text-is('Comptes Pop')) td").inner_text()) == "Utilisé dans le pack : 2/5"
    assert squash(facts.locator("tr:has(th:text-is('Domaines')) td").inner_text()) == "Utilisé dans le pack : 1/2"
    save_screenshot(page, "seed-client-pack")

    person.click(person.link("Ajouter un domaine"))
    assert person.h1() == "Ajouter un domaine"
    person.field("Nom de domaine").fill("trusttelecom.info")
    person.field("Mot de passe du compte postmaster").fill(TEST_PASSWORD)
    person.field("Mot de passe (à nouveau)").fill(TEST_PASSWORD)
    person.click(person.button("Ajouter"))
    assert person.messages() == ["Le domaine trusttelecom.info a été ajouté avec son compte postmaster."]
    assert squash(facts.locator("tr:has(th:text-is('Domaines')) td").inner_text()) == "Utilisé dans le pack : 2/2"
    assert "trusttelecom.info" in squash(page.locator("main ul.domain-list").inner_text())
    added = Domain.objects.get(name="trusttelecom.info")
    assert Mailbox.objects.filter(domain=added, local_part="postmaster").exists()

    # Its postmaster logs in as the seed says, and lands on its main menu.
    postmaster = Person(new_context().new_page(), live_server.url)
    log_in(postmaster, "postmaster", "trusttelecom.info", TEST_PASSWORD)
    assert postmaster.h1() == "Menu principal de trusttelecom.info"
    # The counters are the pack's: alpha-domain.test's two accounts and this postmaster.
    assert menu_line(postmaster, "Comptes Pop") == "Comptes Pop [Utilisé dans le pack : 3/5]"

    # A new postmaster password, shown once; the old one no longer logs in, the new one does.
    line = page.locator("main ul.domain-list li").filter(has_text="trusttelecom.info")
    person.click(line.get_by_role("link", name="Nouveau mot de passe postmaster", exact=True))
    # It asks first: the password in use stays until the replacement is confirmed.
    assert person.h1() == "Donner un nouveau mot de passe à postmaster@trusttelecom.info ?"
    person.click(person.button("Oui, remplacer le mot de passe"))
    assert person.h1() == "Nouveau mot de passe de postmaster@trusttelecom.info"
    new_password = squash(page.locator("main .password-once code").inner_text())
    assert len(new_password) >= 20
    assert ("Notez-le maintenant : il n'est affiché qu'une fois. L'ancien mot de passe ne fonctionne plus, "
            "ni dans le panel ni dans les logiciels de messagerie.") in person.main_text()
    again = Person(new_context().new_page(), live_server.url)
    log_in(again, "postmaster", "trusttelecom.info", TEST_PASSWORD)
    assert squash(again.page.get_by_role("alert").inner_text()) == "Identifiant ou mot de passe incorrect."
    log_in(again, "postmaster", "trusttelecom.info", new_password)
    assert again.h1() == "Menu principal de trusttelecom.info"


def test_the_accounts_list_fits_a_phone(transactional_db: Any, cast: Any, live_server: Any, new_context: Any):
    person = Person(new_context(locale="fr-FR", viewport=PHONE).new_page(), live_server.url)
    log_in(person, "postmaster", DOMAIN, MAILBOX_PASSWORD)
    person.open(f"/domains/{cast.a.domain.pk}/accounts/")
    assert person.h1() == f"{DOMAIN} Comptes Pop [Utilisé dans le pack : 2/5]"
    scroll_width, inner_width = person.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width
    save_screenshot(person.page, "seed-comptes-pop-phone")
