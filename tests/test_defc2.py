"""Issue 16, defect 10 (second half), through the Django test client: /me/ has one password
block and no duplicate id; the audit log reads every stored name in the reader's language; the
login page and the mail to an unknown address offer no sign-up (it is closed); the admin names
the domain's Unicode column and allauth's authenticators in French."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from allauth.mfa.models import Authenticator
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import translation

from hosting.models import AuditEvent
from lists.services import list_create, list_set_text
from mail.models import CatchAllMode
from mail.services import catchall_set
from tests.conftest import Cast, client_for
from tests.factories import MAILBOX_PASSWORD

NEW_PASSWORD = "Another-strong-passw0rd"


def text(response: Any) -> str:
    return response.content.decode()


def visible(page: str) -> str:
    """The page's text without its tags (and so without class names and URLs)."""
    return re.sub(r"<[^>]+>", " ", page)


def duplicate_ids(page: str) -> list[str]:
    counts = Counter(re.findall(r'\sid="([^"]+)"', page))
    return sorted(name for name, count in counts.items() if count > 1)


# --- /me/ --------------------------------------------------------------------------------------


def test_the_own_page_has_one_password_block_and_no_duplicate_id(cast: Cast) -> None:
    page = text(client_for(cast, "mailbox_a").get(reverse("screens:me")))
    assert page.count('name="current_password"') == 1
    assert page.count('type="password"') == 3  # the current one, the new one twice
    assert page.count("<form") - page.count('class="lang"') - page.count('class="inline"') == 1
    assert duplicate_ids(page) == []


def test_the_own_page_refused_shows_its_one_form_again_without_duplicate_id(cast: Cast) -> None:
    client = client_for(cast, "mailbox_a")
    response = client.post(reverse("screens:me"), {
        "real_name": "A", "routing": "standard", "forward_to": "",
        "current_password": "wrong", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    page = text(response)
    assert response.status_code == 400 and 'id="id_current_password_error"' in page
    assert page.count('name="current_password"') == 1 and duplicate_ids(page) == []


def test_the_password_page_refused_shows_its_errors_on_its_own_page(cast: Cast) -> None:
    response = client_for(cast, "mailbox_a").post(reverse("screens:me_password"), {
        "current_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    page = text(response)
    assert response.status_code == 400 and 'id="id_current_password_error"' in page
    assert page.count('name="current_password"') == 1 and duplicate_ids(page) == []
    assert f'action="{reverse("screens:me_password")}"' in page


def test_the_own_page_still_changes_the_password_with_the_current_one(cast: Cast) -> None:
    client = client_for(cast, "mailbox_a")
    response = client.post(reverse("screens:me"), {
        "real_name": "A", "routing": "standard", "forward_to": "",
        "current_password": MAILBOX_PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="mailbox.set_password").exists()


# --- the audit log -----------------------------------------------------------------------------


def audit_page(cast: Cast, language: str) -> str:
    return text(client_for(cast, "domain_admin_a", language).get(
        reverse("screens:domain_audit", args=[cast.a.domain.pk])))


def test_a_catch_all_event_recorded_in_english_reads_in_french(cast: Cast) -> None:
    with translation.override("en"):
        catchall_set(domain=cast.a.domain, mode=CatchAllMode.BOUNCE, acting_user=cast.operator)
    event = AuditEvent.objects.get(action="catchall.set")
    assert "Unknown e-mail: bounced" in event.target_repr  # an old row: stored in the act's language

    french = audit_page(cast, "fr")
    assert "alpha-domain.test : E-mail inconnu : rejeté" in french
    assert "Unknown e-mail" not in french
    english = audit_page(cast, "en")
    assert "alpha-domain.test: Unknown e-mail: bounced" in english


def test_a_list_text_change_names_the_text_in_the_readers_language(cast: Cast) -> None:
    with translation.override("en"):
        mailing_list = list_create(domain=cast.a.domain, name="news", owner="postmaster@alpha-domain.test",
                                   acting_user=cast.operator)
        list_set_text(mailing_list=mailing_list, name="prologue", text="Bienvenue", acting_user=cast.operator)
        list_set_text(mailing_list=mailing_list, name="help", text="Écrivez-nous.", acting_user=cast.operator)
    assert sorted(name for event in AuditEvent.objects.filter(action="list.update")
                  for name in event.detail["changes"]) == ["text:help", "text:prologue"]  # names, never labels

    french = audit_page(cast, "fr")
    assert "En-tête des messages de la liste à un nouvel abonné : — → Bienvenue" in french
    assert "Aide (réponse à news+help@) : — → Écrivez-nous." in french
    assert "text:" not in french
    english = audit_page(cast, "en")
    assert "Top of the list&#x27;s messages to a new subscriber: — → Bienvenue" in english


def test_a_list_text_the_page_does_not_know_reads_in_the_readers_language(cast: Cast) -> None:
    """A text stored under a name no page labels (an old row): named by its file, in French."""
    with translation.override("en"):
        mailing_list = list_create(domain=cast.a.domain, name="news", owner="postmaster@alpha-domain.test",
                                   acting_user=cast.operator)
    AuditEvent.objects.create(action="list.update", target_type="lists.mailinglist",
                              target_id=str(mailing_list.pk), target_repr="news@alpha-domain.test",
                              domain_id=cast.a.domain.pk, domain_name=cast.a.domain.name,
                              actor_label="system", actor_role="system",
                              detail={"changes": {"text:retired": ["", "Adieu"]}})
    french = audit_page(cast, "fr")
    assert "texte de la liste « retired » : — → Adieu" in french and "text:" not in french


# --- sign-up is closed -------------------------------------------------------------------------


def test_the_login_page_offers_no_sign_up(cast: Cast) -> None:
    for language in ("fr", "en"):
        page = text(Client(HTTP_ACCEPT_LANGUAGE=language).get(reverse("account_login")))
        assert reverse("account_signup") not in page, language
        assert "sign up" not in page.lower() and "inscri" not in page.lower() and "enregistrer" not in page.lower()
        assert 'name="login"' in page and 'name="password"' in page  # the form is still there


def test_the_mail_to_an_unknown_address_offers_no_sign_up(cast: Cast) -> None:
    response = Client(HTTP_ACCEPT_LANGUAGE="fr").post(reverse("account_reset_password"),
                                                      {"email": "nobody@nowhere.test"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert reverse("account_signup") not in body
    assert "Les comptes sont créés par votre hébergeur" in body


# --- the admin in French -----------------------------------------------------------------------


def test_the_domain_admin_names_its_unicode_column_in_french(cast: Cast) -> None:
    page = visible(text(client_for(cast, "operator", "fr").get(reverse("admin:hosting_domain_changelist"))))
    assert "unicode name" not in page.lower()
    assert "Nom (Unicode)" in page


def test_the_authenticators_read_in_french_in_the_admin(cast: Cast) -> None:
    client = client_for(cast, "operator", "fr")
    index = visible(text(client.get(reverse("admin:index"))))
    assert "Authentificateurs" in index and "authenticator" not in index.lower()
    Authenticator.objects.create(user=cast.operator, type=Authenticator.Type.RECOVERY_CODES, data={})
    changelist = visible(text(client.get(reverse("admin:mfa_authenticator_changelist"))))
    assert "authentificateur" in changelist and "authenticator" not in changelist.lower()
    for header in ("Utilisateur", "Type", "Date de création", "Dernière utilisation"):
        assert header in changelist, header
