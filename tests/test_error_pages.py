"""The error pages (issue 16, defect 5): 400, 403, 404, 500 and the CSRF failure are the panel's
own pages, in the visitor's language (Accept-Language or the language cookie), with its look and
a way back; the 500 page renders without the request. DEBUG is off here (the test settings)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django.utils import translation

from screens.views.errors import server_error

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.error_pages_urls")]

STYLESHEET = '<link rel="stylesheet" href="/static/css/panel.css">'
HOME = '<a class="button" href="/">'
TEXTS = {
    404: {"fr": ("Page introuvable", "Cette page n'existe pas"), "en": ("Page not found", "This page does not exist")},
    403: {"fr": ("Accès refusé", "Vous ne pouvez pas ouvrir cette page"), "en": ("Access denied", "You may not open")},
    400: {"fr": ("Requête incorrecte", "Revenez en arrière"), "en": ("Bad request", "Go back and try again")},
    500: {"fr": ("Erreur du serveur", "Réessayez dans un instant"), "en": ("Server error", "Try again in a moment")},
}
PATHS = {404: "/no-such-page/", 403: "/test-errors/403/", 400: "/test-errors/400/", 500: "/test-errors/500/"}


def squash(response) -> str:
    return " ".join(response.content.decode().split())


def assert_page(text: str, language: str, status: int) -> None:
    title, sentence = TEXTS[status][language]
    assert f'<html lang="{language}">' in text
    assert f"<h1>{title}</h1>" in text and sentence in text
    assert STYLESHEET in text and '<section class="card narrow error-page">' in text
    assert HOME in text


def test_settings_are_the_production_ones() -> None:
    assert not settings.DEBUG
    assert settings.CSRF_FAILURE_VIEW == "screens.views.errors.csrf_failure"


@pytest.mark.parametrize("status", [404, 403, 400, 500])
@pytest.mark.parametrize("language", ["fr", "en"])
def test_each_error_page_is_styled_in_the_language_asked(status: int, language: str) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE=language, raise_request_exception=False)
    response = client.get(PATHS[status])
    assert response.status_code == status
    assert_page(squash(response), language, status)


@pytest.mark.parametrize("status", [404, 403, 400, 500])
def test_the_language_cookie_wins_over_the_browser(status: int) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="fr", raise_request_exception=False)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert_page(squash(client.get(PATHS[status])), "en", status)


def test_the_way_back_is_the_previous_page_when_it_is_the_panels() -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    came_from = "http://testserver/login/"
    text = squash(client.get("/no-such-page/", HTTP_REFERER=came_from))
    assert f'<a class="button primary" href="{came_from}">Revenir à la page précédente</a>' in text
    assert f"{HOME}Revenir à l'accueil</a>" in text
    for foreign in ("https://evil.test/phish", "javascript:alert(1)", "//evil.test/x"):
        assert "button primary" not in squash(client.get("/no-such-page/", HTTP_REFERER=foreign)), foreign


def test_a_signed_in_person_keeps_the_panels_header(client_as) -> None:
    client = client_as("customer_a")
    text = squash(client.get("/no-such-page/"))
    assert "owner@alpha-customer.test" in text and 'class="topbar"' in text


@pytest.mark.parametrize(("language", "words"), [
    ("fr", ("Le formulaire n'a pas pu être envoyé", "ouvert trop longtemps", "cookies", "Rien n'a été modifié",
            "Revenir au formulaire")),
    ("en", ("The form could not be sent", "open too long", "cookies", "Nothing was changed", "Back to the form")),
])
def test_a_csrf_failure_explains_and_offers_to_go_back_to_the_form(language: str, words: tuple) -> None:
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE=language)
    form = f"http://testserver{reverse('screens:login')}"
    response = client.post(reverse("screens:login"), {"username": "x", "password": "y"}, HTTP_REFERER=form)
    assert response.status_code == 403
    text = squash(response)
    assert all(word in text for word in words), text
    assert f'<a class="button primary" href="{form}">{words[-1]}</a>' in text
    assert STYLESHEET in text and HOME in text
    assert "CSRF" not in text and "Referer" not in text  # no developer text


class BrokenRequest:
    """A request whose every attribute fails, as when the session or the database is what broke."""

    def __getattr__(self, name: str):
        raise RuntimeError(f"request.{name} read by the 500 page")


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_500_page_renders_without_the_request(language: str) -> None:
    with translation.override(language):
        response = server_error(BrokenRequest())
    assert response.status_code == 500
    assert_page(squash(response), language, 500)


def test_the_500_page_falls_back_to_a_sentence_when_its_template_cannot_render() -> None:
    """Without the static files' manifest ({% static %} fails), a plain sentence, translated."""
    manifest = {"default": settings.STORAGES["default"],
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}
    with override_settings(STORAGES=manifest), translation.override("fr"):
        response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500 and response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == "Erreur du serveur. Réessayez dans un instant."
    assert not re.search(r"<\w", response.content.decode())


def test_a_refused_host_gets_the_400_page_not_a_server_error() -> None:
    """The Host header is what is wrong: the page reads nothing of the request."""
    client = Client(HTTP_ACCEPT_LANGUAGE="fr", raise_request_exception=False)
    response = client.get("/login/", HTTP_HOST="not-allowed.test", HTTP_REFERER="http://not-allowed.test/x")
    assert response.status_code == 400
    text = squash(response)
    assert_page(text, "fr", 400)
    assert "button primary" not in text  # no previous page from a host the panel does not serve


def broken_context(request):
    raise RuntimeError("the database is down")


@pytest.mark.parametrize("status", [404, 403])
def test_an_error_page_renders_in_the_bare_layout_when_base_html_cannot(status: int) -> None:
    templates = [{**settings.TEMPLATES[0], "OPTIONS": {**settings.TEMPLATES[0]["OPTIONS"], "context_processors": [
        *settings.TEMPLATES[0]["OPTIONS"]["context_processors"], "tests.test_error_pages.broken_context"]}}]
    with override_settings(TEMPLATES=templates):
        response = Client(HTTP_ACCEPT_LANGUAGE="en", raise_request_exception=False).get(PATHS[status])
    assert response.status_code == status
    text = squash(response)
    assert_page(text, "en", status)
    assert 'class="lang"' not in text  # base.html's language switch: not there, the bare layout is
