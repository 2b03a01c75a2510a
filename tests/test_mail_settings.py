"""The page "Mail client settings" (issue 16, item 4): a mailbox user's own, and the domain's for
the people who manage it; the mail host's client fields as the operator edits them in the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django import forms
from django.test import Client
from django.urls import reverse

from hosting.models import MailHost
from tests.conftest import Cast, client_for, login_mailbox
from tests.factories import DomainFactory, MailboxFactory

pytestmark = pytest.mark.django_db

ME = reverse("screens:me_mail_settings")


def domain_page(cast: Cast) -> str:
    return reverse("screens:mail_settings", args=[cast.a.domain.pk])


def servers(body: str) -> str:
    """The servers' table of the page, where the ports and security are read."""
    start = body.index('id="servers"')
    return body[start:body.index("</table>", start)]


def row(body: str, label: str) -> str:
    """The table row of one service (its label opens the row)."""
    table = servers(body)
    start = table.index(f'<th scope="row">{label} ')
    return table[start:table.index("</tr>", start)]


def set_host(cast: Cast, **fields: Any) -> None:
    MailHost.objects.filter(pk=cast.host.pk).update(**fields)


# --- what the page shows, per seat ------------------------------------------------------------


def test_a_mailbox_user_sees_its_login_and_the_hosts_defaults_in_english(cast: Cast) -> None:
    response = client_for(cast, "mailbox_a").get(ME)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Mail client settings" in body
    assert '<code class="copy" id="login">alphauser@alpha-domain.test</code>' in body
    assert "(your full address)" in body
    imap, pop3, smtp = row(body, "IMAP"), row(body, "POP3"), row(body, "SMTP")
    for service, port, security in ((imap, 993, "SSL/TLS"), (pop3, 995, "SSL/TLS"), (smtp, 587, "STARTTLS")):
        assert '<code class="copy">mx1.hosting.test</code>' in service
        assert f'<code class="copy">{port}</code>' in service
        assert f"<td data-label=\"Security\">{security}</td>" in service
        assert "Not enabled for your account." not in service
    assert "Outlook, Thunderbird" in body
    assert 'id="webmail"' not in body  # no webmail on this host: nothing about it


def test_the_page_in_french_says_it_with_the_seeds_words(cast: Cast) -> None:
    set_host(cast, webmail_url="https://webmail.hosting.test/")
    body = client_for(cast, "mailbox_a", language="fr").get(ME).content.decode()
    assert '<html lang="fr">' in body
    assert "<h1>Paramètres de votre logiciel de messagerie</h1>" in body
    assert "votre logiciel de messagerie habituel (Outlook, Thunderbird ou autres)" in body
    assert "Nom d’utilisateur" in body or "Nom d'utilisateur" in body or "Nom d&#x27;utilisateur" in body
    assert "(votre adresse complète)" in body
    assert "le mot de passe de votre compte pop" in body
    assert "<th scope=\"col\">Serveur</th>" in body and "<th scope=\"col\">Sécurité</th>" in body
    assert "courrier entrant" in row(body, "IMAP") and "courrier sortant" in row(body, "SMTP")
    assert "notre WebMail" in body


def test_the_hosts_own_names_ports_and_security_replace_the_defaults(cast: Cast) -> None:
    set_host(cast, imap_host="imap.hosting.test", pop3_host="pop.hosting.test", smtp_host="smtp.hosting.test",
             smtp_port=465, smtp_security="tls", imap_port=1993)
    body = client_for(cast, "mailbox_a").get(ME).content.decode()
    assert '<code class="copy">imap.hosting.test</code>' in row(body, "IMAP")
    assert '<code class="copy">1993</code>' in row(body, "IMAP")
    assert '<code class="copy">pop.hosting.test</code>' in row(body, "POP3")
    smtp = row(body, "SMTP")
    assert '<code class="copy">smtp.hosting.test</code>' in smtp and '<code class="copy">465</code>' in smtp
    assert "SSL/TLS" in smtp and "STARTTLS" not in smtp
    assert "mx1.hosting.test" not in servers(body)


def test_the_webmail_link_is_shown_only_when_the_host_has_one(cast: Cast) -> None:
    set_host(cast, webmail_url="https://webmail.hosting.test/mail/")
    body = client_for(cast, "mailbox_a").get(ME).content.decode()
    assert ('<a href="https://webmail.hosting.test/mail/" rel="noopener noreferrer">'
            "https://webmail.hosting.test/mail/</a>") in body
    set_host(cast, webmail_url="")
    body = client_for(cast, "mailbox_a").get(ME).content.decode()
    assert 'id="webmail"' not in body and "WebMail" not in body


def test_a_service_the_account_may_not_use_is_marked_on_its_own_page(cast: Cast) -> None:
    mailbox = cast.mailbox_user
    mailbox.allow_imap = False
    mailbox.allow_smtp = False
    mailbox.save(update_fields=["allow_imap", "allow_smtp"])
    body = client_for(cast, "mailbox_a").get(ME).content.decode()
    assert "Not enabled for your account." in row(body, "IMAP")
    assert "Not enabled for your account." in row(body, "SMTP")
    assert "Not enabled for your account." not in row(body, "POP3")


def test_a_host_without_names_says_to_ask_the_provider(cast: Cast) -> None:
    set_host(cast, fqdn="", imap_host="imap.hosting.test")
    body = client_for(cast, "mailbox_a").get(ME).content.decode()
    assert "The name of a server is not set yet: ask your provider." in body
    assert '<code class="copy">—</code>' in row(body, "POP3")
    set_host(cast, pop3_host="pop.hosting.test", smtp_host="smtp.hosting.test")
    assert "not set yet" not in client_for(cast, "mailbox_a").get(ME).content.decode()


def test_the_login_of_an_internationalised_domain_is_its_ascii_address(cast: Cast) -> None:
    domain = DomainFactory(pack=cast.a.pack, name="xn--exmple-cua.test")
    mailbox = MailboxFactory(domain=domain, local_part="jean")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    login_mailbox(client, mailbox)
    body = client.get(ME).content.decode()
    assert '<code class="copy" id="login">jean@xn--exmple-cua.test</code>' in body


def test_the_domain_admin_sees_its_own_login_from_the_domains_menu(cast: Cast) -> None:
    client = client_for(cast, "domain_admin_a")
    menu = client.get(reverse("screens:domain", args=[cast.a.domain.pk])).content.decode()
    assert f'href="{domain_page(cast)}">Mail client settings</a>' in menu
    body = client.get(domain_page(cast)).content.decode()
    assert '<code class="copy" id="login">postmaster@alpha-domain.test</code>' in body
    assert "(each POP account logs in with its full address)" in body
    assert "Not enabled" not in body  # the domain's page speaks for every account


@pytest.mark.parametrize("role", ["customer_a", "reseller_a", "support", "operator"])
def test_the_people_who_manage_the_domain_see_an_accounts_login_as_the_example(cast: Cast, role: str) -> None:
    set_host(cast, webmail_url="https://webmail.hosting.test/")
    response = client_for(cast, role).get(domain_page(cast))
    assert response.status_code == 200
    body = response.content.decode()
    assert '<code class="copy" id="login">postmaster@alpha-domain.test</code>' in body
    assert '<code class="copy">993</code>' in row(body, "IMAP")
    assert 'href="https://webmail.hosting.test/"' in body
    assert f'href="{reverse("screens:domain", args=[cast.a.domain.pk])}">Main menu</a>' in body


def test_the_domain_page_in_french(cast: Cast) -> None:
    body = client_for(cast, "customer_a", language="fr").get(domain_page(cast)).content.decode()
    assert "<h1>Paramètres de votre logiciel de messagerie</h1>" in body
    assert "(chaque compte pop se connecte avec son adresse complète)" in body
    assert "le mot de passe du compte pop" in body
    menu = client_for(cast, "customer_a", language="fr").get(
        reverse("screens:domain", args=[cast.a.domain.pk])).content.decode()
    assert ">Paramètres de votre logiciel de messagerie</a>" in menu


def test_the_mailbox_users_own_page_links_to_its_settings(cast: Cast) -> None:
    body = client_for(cast, "mailbox_a").get(reverse("screens:me")).content.decode()
    assert f'<a href="{ME}">Mail client settings</a>' in body


@pytest.mark.parametrize("role", ["domain_admin_b", "customer_b", "reseller_b"])
def test_another_tenant_gets_404_for_the_domains_page(cast: Cast, role: str) -> None:
    response = client_for(cast, role).get(domain_page(cast))
    assert response.status_code == 404
    assert "alpha-domain" not in response.content.decode()


def test_the_own_page_shows_each_mailbox_its_own_tenant(cast: Cast) -> None:
    body = client_for(cast, "domain_admin_b").get(ME).content.decode()
    assert "postmaster@bravo-domain.test" in body and "alpha" not in body


def test_the_pages_queries_do_not_depend_on_the_domains_size(cast: Cast, django_assert_max_num_queries: Any) -> None:
    for index in range(20):
        MailboxFactory(domain=cast.a.domain, local_part=f"user{index}")
    client = client_for(cast, "customer_a")
    with django_assert_max_num_queries(12):
        assert client.get(domain_page(cast)).status_code == 200


# --- the admin's fields ------------------------------------------------------------------------


def admin_data(client: Client, path: str, **changes: Any) -> dict[str, Any]:
    """What the mail host's change form posts as shown, with `changes`."""
    form = client.get(path).context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else value
    return {**data, **changes}


def admin_change(cast: Cast, **changes: Any) -> Any:
    client = client_for(cast, "operator")
    path = reverse("admin:hosting_mailhost_change", args=[cast.host.pk])
    return client.post(path, admin_data(client, path, **changes))


def test_the_operator_edits_the_client_settings_in_the_admin(cast: Cast) -> None:
    response = admin_change(cast, imap_host="IMAP.Hosting.Test.", imap_port="143", imap_security="starttls",
                            smtp_port="465", smtp_security="tls", webmail_url="webmail.hosting.test/roundcube/")
    assert response.status_code == 302, response.content.decode()[:3000]
    host = MailHost.objects.get(pk=cast.host.pk)
    assert (host.imap_host, host.imap_port, host.imap_security) == ("imap.hosting.test", 143, "starttls")
    assert (host.smtp_port, host.smtp_security) == (465, "tls")
    assert host.webmail_url == "https://webmail.hosting.test/roundcube/"  # typed without a scheme: https


def test_the_change_form_shows_the_client_settings_with_their_defaults(cast: Cast) -> None:
    client = client_for(cast, "operator")
    body = client.get(reverse("admin:hosting_mailhost_change", args=[cast.host.pk])).content.decode()
    assert "The users&#x27; mail client settings" in body or "The users' mail client settings" in body
    for name, value in (("imap_port", 993), ("pop3_port", 995), ("smtp_port", 587)):
        assert f'name="{name}" value="{value}"' in body


@pytest.mark.parametrize("field, value, error", [
    ("webmail_url", "ftp://webmail.hosting.test/", "Enter a valid URL."),
    ("webmail_url", "javascript:alert(1)", "Enter a valid URL."),
    ("webmail_url", "https://", "Enter a valid URL."),
    ("imap_host", "not a host", "is not a valid domain name."),
    ("smtp_host", "smtp_hosting", "is not a valid domain name."),
    ("pop3_port", "0", "greater than or equal to 1"),
    ("smtp_port", "70000", "less than or equal to 65535"),
    ("imap_security", "none", "Select a valid choice."),
])
def test_the_admin_refuses_a_bad_client_setting(cast: Cast, field: str, value: str, error: str) -> None:
    before = MailHost.objects.filter(pk=cast.host.pk).values().get()
    response = admin_change(cast, **{field: value})
    assert response.status_code == 200
    assert error in str(response.context["adminform"].form.errors[field])
    assert MailHost.objects.filter(pk=cast.host.pk).values().get() == before


def test_the_refusal_in_french(cast: Cast) -> None:
    client = client_for(cast, "operator", language="fr")
    path = reverse("admin:hosting_mailhost_change", args=[cast.host.pk])
    response = client.post(path, admin_data(client, path, webmail_url="ftp://webmail.hosting.test/"))
    assert "Saisissez une URL valide." in str(response.context["adminform"].form.errors["webmail_url"])
    assert "Paramètres des logiciels de messagerie des utilisateurs" in response.content.decode()
