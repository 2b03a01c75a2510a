"""Every response carries the strict Content-Security-Policy (django-csp), whoever asks and
whatever the answer: pages, redirects, errors, admin pages, static files."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.test import Client, override_settings
from django.urls import reverse

from tests.conftest import client_for

STRICT = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}


def policy(response: Any) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']} ({response.status_code})"
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: values for name, *values in directives}


def admin_urls(cast: Any) -> list[str]:
    """The changelist and add page of every admin model, and the change page of the cast's host."""
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        opts = model._meta
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    urls.append(reverse("admin:hosting_mailhost_change", args=[cast.host.pk]))
    urls.append(reverse("admin:hosting_domain_change", args=[cast.a.domain.pk]))
    return urls


def test_every_page_of_every_seat_carries_the_policy(cast):
    pages = {
        "anonymous": ["/", reverse("screens:login"), reverse("screens:change_password"), "/accounts/login/",
                      "/accounts/password/reset/", "/no-such-page/", reverse("admin:index")],
        "operator": ["/", *admin_urls(cast), "/accounts/2fa/", "/accounts/2fa/totp/activate"],
        "customer_a": [reverse("screens:client"), reverse("screens:pack", args=[cast.a.pack.pk]),
                       reverse("screens:pack", args=[cast.b.pack.pk])],
        "domain_admin_a": [reverse("screens:domain", args=[cast.a.domain.pk])],
        "mailbox_a": [reverse("screens:me")],
    }
    seen = set()
    for role, urls in pages.items():
        client = client_for(cast, role)
        for url in urls:
            response = client.get(url)
            seen.add(response.status_code)
            assert policy(response) == STRICT, (role, url)
    assert {200, 302, 404} <= seen  # pages, redirects and errors alike


def test_form_errors_carry_the_policy_too(cast):
    response = Client().post(reverse("screens:login"), {"account": "postmaster", "domain": "", "password": ""})

    assert response.status_code in (200, 400)
    assert policy(response) == STRICT


@override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True)
def test_static_files_carry_the_policy_too(db):
    css = Client().get("/static/css/panel.css")  # served by WhiteNoise, inside the CSP middleware

    assert css.status_code == 200
    assert policy(css) == STRICT


@pytest.mark.parametrize("url", ["/login/", "/accounts/login/"])
def test_the_pages_have_no_inline_script_or_style(db, url):
    """What the policy would block is not in the markup (the browser test runs the pages)."""
    html = Client().get(url).content.decode()
    assert "<script>" not in html and " style=" not in html and " onclick=" not in html
