"""The seed's chapter 5 ("Les listes de diffusion") followed in French in Debian's Chromium: a
newsletter where only moderators post, its page, its members added and removed. Every page is
watched for Content-Security-Policy reports: there must be none."""

from __future__ import annotations

from typing import Any

import pytest

from lists.models import ListMember, MailingList, MemberKind, Posting
from tests.browser.conftest import save_screenshot
from tests.browser.test_seed_browser import DOMAIN, Person, go_to_menu, log_in, menu_line
from tests.factories import MAILBOX_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_seeds_newsletter_in_french(transactional_db: Any, cast: Any, live_server: Any, page: Any) -> None:
    person = Person(page, live_server.url)
    log_in(person, "postmaster", DOMAIN, MAILBOX_PASSWORD)
    assert menu_line(person, "Listes de diffusion") == "Listes de diffusion [Utilisé dans le pack : 0/10]"

    # "Pour créer la liste, il suffit de cliquer sur « Nouvelle liste de diffusion »".
    person.click(person.link("Nouvelle liste de diffusion"))
    assert person.h1() == "Ajouter une liste de diffusion"
    legends = [t.strip() for t in page.locator("main fieldset legend").all_inner_texts()]
    assert legends == ["Qui peut écrire à la liste", "Liste des options", "Administration à distance",
                       "Demandes d'abonnement", "Demandes de désabonnement", "Archives des messages"]
    person.field("Nom de la liste de diffusion").fill("newsletter")
    person.field("E-mail du responsable").fill(f"postmaster@{DOMAIN}")
    person.field("Préfixe des sujets").fill("[Lettre]")
    # "Pour une newsletter vous devez choisir le 4eme choix".
    choices = page.locator("main input[name=posting]")
    assert choices.count() == 5
    page.get_by_label("Seulement les modérateurs peuvent poster, tous les autres sont rejetés.", exact=True).check()
    # The seed's warning is on the page, and mlmmj's own rule is said, not pretended.
    assert page.locator("main input[name=unsub_confirm]").is_disabled()
    assert "personne ne peut désabonner une autre personne" in person.main_text()
    save_screenshot(page, "lists-1-nouvelle-liste")
    person.click(person.button("Ajouter"))

    news = MailingList.objects.get(domain=cast.a.domain, name="newsletter")
    assert news.posting == Posting.MODERATORS and news.prefix == "[Lettre]"
    assert person.h1() == f"Modifier la liste de diffusion newsletter@{DOMAIN}"
    assert person.messages() == [f"La liste de diffusion newsletter@{DOMAIN} a été créée."]
    text = person.main_text()
    for address in ("newsletter+subscribe@", "newsletter-subscribe@", "newsletter-unsubscribe@",
                    "newsletter-request@"):
        assert f"{address}{DOMAIN}" in text, address
    save_screenshot(page, "lists-2-la-liste")

    # The seed's list of lists: its counter and its links to each kind of member.
    person.click(person.link("Listes de diffusion", where="footer"))
    assert person.h1() == f"{DOMAIN} Listes de diffusion [Utilisé dans le pack : 1/10]"
    assert person.column("Nom de la liste de diffusion") == ["newsletter"]
    assert "Afficher les modérateurs" in person.headers()

    # "ajouter un abonné manuellement": the subscribers' page, add one, remove one.
    person.click(person.link("1"))  # the owner, subscribed when the list was made
    assert person.h1() == f"Abonnés de newsletter@{DOMAIN} (1)"
    person.field("Adresse e-mail").fill("Benoit@TrustTelecom.fr")
    person.click(person.button("Ajouter"))
    assert person.h1() == f"Abonnés de newsletter@{DOMAIN} (2)"
    assert "benoit@trusttelecom.fr" in person.column("Adresse e-mail")
    person.click(person.row("benoit@trusttelecom.fr").get_by_role("button"))
    person.click(person.button("Supprimer"))  # the confirmation (issue 16)
    assert person.messages() == ["benoit@trusttelecom.fr a été retiré."]
    assert not ListMember.objects.filter(mailing_list=news, address="benoit@trusttelecom.fr").exists()
    assert ListMember.objects.filter(mailing_list=news, kind=MemberKind.MODERATOR,
                                     address=f"postmaster@{DOMAIN}").exists()
    save_screenshot(page, "lists-3-abonnes")
    go_to_menu(person)
    assert menu_line(person, "Listes de diffusion") == "Listes de diffusion [Utilisé dans le pack : 1/10]"
