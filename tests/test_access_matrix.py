"""Every URL, requested from every seat of the cast.

`MATRIX` names, for each URL, who gets the page; everyone else must be turned away (a redirect
to a login page, 403, 404 or 405) and must never see tenant A's data. `test_every_url_is_in_the_matrix`
walks the URL configuration and fails when a URL has no entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from hosting import audit
from hosting.models import Domain
from lists.models import HeldMessage, MailingList, MemberImport
from mail.models import AccountImport, Forward, Robot
from provisioning.models import HostHealth, MailImport
from tests.conftest import ROLES, Cast, client_for

OPERATOR, SUPPORT = "operator", "support"
RA, RB = "reseller_a", "reseller_b"
CA, CB = "customer_a", "customer_b"
DA, DB, MA = "domain_admin_a", "domain_admin_b", "mailbox_a"
USERS = {OPERATOR, SUPPORT, RA, RB, CA, CB}
STAFF = {OPERATOR, SUPPORT, RA, RB}
MAILBOXES = {DA, DB, MA}
EVERYONE = set(ROLES)
# Seats outside tenant A: nothing of A may ever appear in what they are shown.
OUTSIDERS_OF_A = {RB, CB, DB}
MARK_A = "alpha-"


MANAGERS_OF_A = {OPERATOR, SUPPORT, RA, CA, DA}


def forward_of_a(cast: Cast) -> Forward:
    return Forward.objects.get_or_create(domain=cast.a.domain, local_part="alpha-fw",
                                         defaults={"destinations": ["someone@elsewhere.test"]})[0]


def robot_of_a(cast: Cast) -> Robot:
    return Robot.objects.get_or_create(domain=cast.a.domain, local_part="alpha-robot",
                                       defaults={"subject": "Re", "message": "Bien reçu"})[0]


def list_of_a(cast: Cast) -> MailingList:
    return MailingList.objects.get_or_create(domain=cast.a.domain, name="alpha-list",
                                             defaults={"owner": "owner@elsewhere.test"})[0]


def of_list_a(cast: Cast) -> dict[str, Any]:
    return {"pk": cast.a.domain.pk, "obj": list_of_a(cast).pk}


def alias_domain_of_a(cast: Cast) -> Domain:
    """A proven alias domain of domain A ("Check now" then looks nothing up)."""
    return Domain.objects.get_or_create(name="alpha-alias.test", defaults={
        "pack": cast.a.pack, "alias_of": cast.a.domain, "verified_at": timezone.now(), "verified_how": "hand"})[0]


def of_alias_a(cast: Cast) -> dict[str, Any]:
    return {"pk": cast.a.domain.pk, "obj": alias_domain_of_a(cast).pk}


def of_import_a(cast: Cast) -> dict[str, Any]:
    job = MemberImport.objects.get_or_create(mailing_list=list_of_a(cast), defaults={"state": "done"})[0]
    return {**of_list_a(cast), "job": job.pk}


def of_account_import_a(cast: Cast) -> dict[str, Any]:
    job = AccountImport.objects.get_or_create(domain=cast.a.domain, defaults={"kind": "forwards", "state": "done"})[0]
    return {"pk": cast.a.domain.pk, "job": job.pk}


def of_held_a(cast: Cast) -> dict[str, Any]:
    held = HeldMessage.objects.get_or_create(mailing_list=list_of_a(cast), key="0123456789abcdef",
                                             defaults={"kind": "post", "sender": "alpha-poster@elsewhere.test"})[0]
    return {**of_list_a(cast), "held": held.pk}


@dataclass
class Spec:
    ok: set[str]
    kwargs: Callable[[Cast], dict[str, Any]] = lambda cast: {}
    method: str = "get"
    ok_status: int = 200
    data: dict[str, Any] = field(default_factory=dict)
    sent_home: set[str] = field(default_factory=set)  # redirected to their own start page


PANEL: dict[str, Spec] = {
    "screens:client": Spec(ok=USERS),
    "screens:pack": Spec(ok={OPERATOR, SUPPORT, RA, CA}, kwargs=lambda c: {"pk": c.a.pack.pk}),
    "screens:domain": Spec(ok={OPERATOR, SUPPORT, RA, CA, DA}, kwargs=lambda c: {"pk": c.a.domain.pk}),
    "screens:domain_audit": Spec(ok={OPERATOR, SUPPORT, RA, CA, DA}, kwargs=lambda c: {"pk": c.a.domain.pk}),
    # Where a change stands on the mail host (the banner asks while it is pending; the pack page too).
    "screens:domain_state": Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk}),
    "screens:me_state": Spec(ok=MAILBOXES),
    "screens:mail_settings": Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk}),
    # A domain's screens: its admin, its customer, their reseller, support, operators.
    **{name: Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk}) for name in (
        "screens:mailboxes", "screens:mailbox_create", "screens:catchall", "screens:spam_filter", "screens:forwards",
        "screens:forward_create",
        "screens:robots", "screens:robot_create", "screens:lists", "screens:list_create")},
    "screens:list_modify": Spec(ok=MANAGERS_OF_A, kwargs=of_list_a),
    "screens:list_delete": Spec(ok=MANAGERS_OF_A, kwargs=of_list_a),
    "screens:list_text": Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {**of_list_a(c), "name": "help"}),
    "screens:members": Spec(ok=MANAGERS_OF_A, kwargs=of_list_a),
    # Removing an address that is not a member changes nothing: back to the members' page.
    "screens:member_remove": Spec(ok=MANAGERS_OF_A, method="post", ok_status=302, kwargs=of_list_a,
                                data={"address": "nobody@elsewhere.test", "confirm": "yes"}),
    "screens:member_import": Spec(ok=MANAGERS_OF_A, kwargs=of_list_a),
    "screens:member_import_status": Spec(ok=MANAGERS_OF_A, kwargs=of_import_a),
    "screens:member_export": Spec(ok=MANAGERS_OF_A, kwargs=of_list_a),
    # A domain's POP accounts and forwards as CSV: the export, the import's form, an import's report.
    **{name: Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk}) for name in (
        "screens:mailbox_export", "screens:mailbox_import", "screens:forward_export", "screens:forward_import")},
    "screens:account_import_status": Spec(ok=MANAGERS_OF_A, kwargs=of_account_import_a),
    # A domain's alias domains: whoever manages the domain (each fetched through its target).
    "screens:alias_domains": Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk}),
    "screens:alias_domain_add": Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk}),
    "screens:alias_domain": Spec(ok=MANAGERS_OF_A, kwargs=of_alias_a),
    "screens:alias_domain_delete": Spec(ok=MANAGERS_OF_A, kwargs=of_alias_a),
    "screens:alias_domain_state": Spec(ok=MANAGERS_OF_A, kwargs=of_alias_a),
    # "Check now" of a proven alias: nothing to look up, back to its page with a message.
    "screens:alias_domain_check": Spec(ok=MANAGERS_OF_A, method="post", ok_status=302, kwargs=of_alias_a),
    "screens:moderation": Spec(ok=MANAGERS_OF_A, kwargs=of_list_a),
    # The first decision is taken, the others are refused with a message: back to the queue each time.
    "screens:held_decide": Spec(ok=MANAGERS_OF_A, method="post", ok_status=302, kwargs=of_held_a,
                              data={"decision": "reject"}),
    # The client area's acts on a pack's mail: the people who see the pack, never a mailbox.
    "screens:domain_add": Spec(ok={OPERATOR, SUPPORT, RA, CA}, kwargs=lambda c: {"pk": c.a.pack.pk}),
    "screens:postmaster_reset": Spec(ok={OPERATOR, SUPPORT, RA, CA}, method="post", data={"confirm": "yes"},
                                  kwargs=lambda c: {"pk": c.a.domain.pk}),
    # "Check now" of a proven domain: nothing to look up, back to the menu with a message.
    "screens:domain_check": Spec(ok=MANAGERS_OF_A, method="post", ok_status=302,
                                 kwargs=lambda c: {"pk": c.a.domain.pk}),
    # "Check the DNS records now": queued (never looked up in the request), back to the page.
    "screens:dns_check": Spec(ok=MANAGERS_OF_A, method="post", ok_status=302, kwargs=lambda c: {"pk": c.a.domain.pk}),
    "screens:alias_dns_check": Spec(ok=MANAGERS_OF_A, method="post", ok_status=302, kwargs=of_alias_a),
    "screens:quick": Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk}, data={"name": "postmaster"},
                       ok_status=302),
    "screens:mailbox_modify": Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk, "obj": c.mailbox_user.pk}),
    "screens:mailbox_delete": Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk, "obj": c.mailbox_user.pk}),
    # A rename of the name it already has: nothing to do, back to the account's page.
    "screens:mailbox_rename": Spec(ok=MANAGERS_OF_A, method="post", ok_status=302, kwargs=lambda c: {
        "pk": c.a.domain.pk, "obj": c.mailbox_user.pk}, data={"new_local_part": "alphauser"}),
    "screens:forward_modify": Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk, "obj": forward_of_a(c).pk}),
    "screens:forward_delete": Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk, "obj": forward_of_a(c).pk}),
    # Removing the one destination is refused with a message: back to the forward's page.
    "screens:forward_remove_destination": Spec(ok=MANAGERS_OF_A, method="post", ok_status=302, kwargs=lambda c: {
        "pk": c.a.domain.pk, "obj": forward_of_a(c).pk}, data={"destination": "someone@elsewhere.test"}),
    "screens:robot_modify": Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk, "obj": robot_of_a(c).pk}),
    "screens:robot_delete": Spec(ok=MANAGERS_OF_A, kwargs=lambda c: {"pk": c.a.domain.pk, "obj": robot_of_a(c).pk}),
    "screens:me": Spec(ok=MAILBOXES),
    "screens:me_mail_settings": Spec(ok=MAILBOXES),  # each mailbox its own: no tenant's object in the URL
    "screens:me_mobileconfig": Spec(ok=MAILBOXES),  # its own Apple profile, the same way
    # An empty form: a logged-in mailbox gets its errors back (400), nobody else gets the form.
    "screens:me_password": Spec(ok=MAILBOXES, method="post", ok_status=400),
    # Public pages: the login (a mailbox already logged in is sent on), the password page.
    "screens:login": Spec(ok=EVERYONE - MAILBOXES, sent_home=MAILBOXES),
    "screens:change_password": Spec(ok=EVERYONE),
}

# The home page only dispatches: each seat is redirected to its own start page.
HOME_TARGETS: dict[str, Callable[[Cast], str]] = {
    "anonymous": lambda c: reverse("screens:login"),
    OPERATOR: lambda c: reverse("admin:index"),
    SUPPORT: lambda c: reverse("admin:index"),
    RA: lambda c: reverse("admin:index"),
    RB: lambda c: reverse("admin:index"),
    CA: lambda c: reverse("screens:client"),
    CB: lambda c: reverse("screens:client"),
    DA: lambda c: reverse("screens:domain", args=[c.a.domain.pk]),
    DB: lambda c: reverse("screens:domain", args=[c.b.domain.pk]),
    MA: lambda c: reverse("screens:me"),
}

# Admin pages of each model, with the object of tenant A (or the operator's) they are tried on.
ADMIN_OBJECTS: dict[str, Callable[[Cast], Any]] = {
    "hosting.mailhost": lambda c: c.host,
    "hosting.reseller": lambda c: c.a.reseller,
    "hosting.customer": lambda c: c.a.customer,
    "hosting.plan": lambda c: c.a.plan,
    "hosting.pack": lambda c: c.a.pack,
    "hosting.domain": lambda c: c.a.domain,
    "hosting.user": lambda c: c.a.customer_user,
    "hosting.auditevent": lambda c: audit.record(c.a.customer_user, "test.act", c.a.domain),
    "mail.mailbox": lambda c: c.mailbox_user,  # postmaster can never be deleted
    "auth.group": lambda c: Group.objects.get_or_create(name="support")[0],
    "account.emailaddress": lambda c: EmailAddress.objects.create(
        user=c.a.customer_user, email=c.a.customer_user.email, primary=True, verified=True
    ),
    "mfa.authenticator": lambda c: Authenticator.objects.create(
        user=c.a.customer_user, type=Authenticator.Type.RECOVERY_CODES, data={"seed": "00"}
    ),
    "provisioning.hosthealth": lambda c: HostHealth.objects.get_or_create(host=c.host)[0],
    "provisioning.mailimport": lambda c: MailImport.objects.create(
        domain=c.a.domain, revision=1, mailboxes=[[f"old@{c.a.domain.name}", "/srv/old/Maildir"]]),
}

OP_ONLY = {"changelist": {OPERATOR}, "add": {OPERATOR}, "change": {OPERATOR}, "history": {OPERATOR},
           "delete": {OPERATOR}}
SOLD_BY_RESELLERS = {  # customers, plans, packs: resellers sell them within their pool
    "changelist": STAFF, "add": {OPERATOR, RA, RB}, "change": {OPERATOR, SUPPORT, RA},
    "history": {OPERATOR, SUPPORT, RA}, "delete": {OPERATOR, RA},
}
ADMIN_ACCESS: dict[str, dict[str, set[str]]] = {
    "hosting.mailhost": {"changelist": {OPERATOR, SUPPORT}, "add": {OPERATOR},
                         "change": {OPERATOR, SUPPORT}, "history": {OPERATOR, SUPPORT},
                         "delete": {OPERATOR}},
    "hosting.reseller": {"changelist": STAFF, "add": {OPERATOR}, "change": {OPERATOR, SUPPORT, RA},
                         "history": {OPERATOR, SUPPORT, RA}, "delete": {OPERATOR}},
    "hosting.customer": SOLD_BY_RESELLERS,
    "hosting.plan": {**SOLD_BY_RESELLERS, "change": {OPERATOR, SUPPORT, RA}},
    "hosting.pack": SOLD_BY_RESELLERS,
    "hosting.domain": {"changelist": STAFF, "add": {OPERATOR, RA, RB}, "change": {OPERATOR, SUPPORT, RA},
                       "history": {OPERATOR, SUPPORT, RA}, "delete": {OPERATOR}},
    "hosting.user": {"changelist": STAFF, "add": {OPERATOR, RA, RB}, "change": {OPERATOR, SUPPORT, RA},
                     "history": {OPERATOR, SUPPORT, RA}, "delete": {OPERATOR}},
    "hosting.auditevent": {"changelist": {OPERATOR, SUPPORT}, "add": set(), "change": {OPERATOR, SUPPORT},
                           "history": {OPERATOR, SUPPORT}, "delete": set()},
    "mail.mailbox": {"changelist": STAFF, "add": set(), "change": {OPERATOR, SUPPORT, RA},
                     "history": {OPERATOR, SUPPORT, RA}, "delete": {OPERATOR}},
    "auth.group": OP_ONLY,
    "account.emailaddress": OP_ONLY,
    "mfa.authenticator": OP_ONLY,
    # The mail hosts' health: operators and support look; nobody types it in.
    "provisioning.hosthealth": {"changelist": {OPERATOR, SUPPORT}, "add": set(), "change": {OPERATOR, SUPPORT},
                                "history": {OPERATOR, SUPPORT}, "delete": set()},
    # Mail imported from an old server: operators and support look; the agents' reports write it.
    "provisioning.mailimport": {"changelist": {OPERATOR, SUPPORT}, "add": set(), "change": {OPERATOR, SUPPORT},
                                "history": {OPERATOR, SUPPORT}, "delete": set()},
}

ADMIN_SITE: dict[str, Spec] = {
    "admin:index": Spec(ok=STAFF),
    "admin:password_change": Spec(ok=STAFF),
    "admin:password_change_done": Spec(ok=STAFF),
    "admin:jsi18n": Spec(ok=STAFF),
    "admin:app_list": Spec(ok=STAFF, kwargs=lambda c: {"app_label": "hosting"}),
    # No admin model has a public page, and autocomplete is used by no form: nobody gets them.
    "admin:view_on_site": Spec(ok=set(), kwargs=lambda c: {
        "content_type_id": ContentType.objects.get_for_model(c.a.domain).pk, "object_id": c.a.domain.pk}),
    "admin:autocomplete": Spec(ok=set()),
    "admin:logout": Spec(ok=set()),  # POST only: GET is 405 for everyone, tested below
    # Setting a person's password: the operator, and a reseller for its customers' users.
    "admin:auth_user_password_change": Spec(ok={OPERATOR, RA}, kwargs=lambda c: {"id": c.a.customer_user.pk}),
}


def _no_object(cast: Cast) -> dict[str, Any]:
    return {}


def _object_of(label: str) -> Callable[[Cast], dict[str, Any]]:
    return lambda cast: {"object_id": ADMIN_OBJECTS[label](cast).pk}


def admin_specs() -> dict[str, Spec]:
    specs: dict[str, Spec] = {}
    for label, access in ADMIN_ACCESS.items():
        app, model = label.split(".")
        for action, ok in access.items():
            name = f"admin:{app}_{model}_{action}"
            kwargs = _no_object if action in ("changelist", "add") else _object_of(label)
            specs[name] = Spec(ok=ok, kwargs=kwargs)
    return specs


MATRIX: dict[str, Spec] = {**PANEL, **ADMIN_SITE, **admin_specs()}
# URLs with their own tests (below or in other files) rather than a row of the matrix.
SPECIAL = {
    "screens:home",  # test_home_sends_each_seat_to_its_page
    "screens:logout",  # test_logout_is_post_only
    "admin:login",  # test_admin_login_goes_through_allauth
    "set_language",  # test_language_switch_is_public_and_changes_only_on_post
    # What mail clients ask before any login: public by design, for the domains the panel serves
    # and the same for any local part (tests/test_autoconfig.py).
    "screens:autoconfig", "screens:autoconfig_well_known", "screens:autodiscover", "screens:autodiscover_capitalised",
}


def denied(response: Any, role: str) -> bool:
    """Turned away: to a login page, or 403/404/405, or (admin) back to the index."""
    if response.status_code in (403, 404, 405):
        return True
    if response.status_code == 302:
        target = response["Location"]
        return any(
            target.startswith(reverse(name))
            for name in ("account_login", "screens:login", "admin:login", "admin:index")
        )
    return False


@pytest.mark.parametrize("url_name", sorted(MATRIX))
def test_url_from_every_seat(cast: Cast, url_name: str) -> None:
    spec = MATRIX[url_name]
    url = reverse(url_name, kwargs=spec.kwargs(cast))
    problems = []
    for role in ROLES:
        client = client_for(cast, role)
        response = getattr(client, spec.method)(url, spec.data)
        if role in spec.sent_home:
            if response.get("Location") != HOME_TARGETS[role](cast):
                problems.append(f"{role}: expected to be sent home, got {response.status_code}")
        elif role in spec.ok:
            if response.status_code != spec.ok_status:
                problems.append(f"{role}: expected {spec.ok_status}, got {response.status_code}")
        elif not denied(response, role):
            problems.append(f"{role}: expected to be turned away, got {response.status_code} "
                            f"{response.get('Location', '')}")
        if role in OUTSIDERS_OF_A and MARK_A in response.content.decode(errors="replace"):
            problems.append(f"{role}: sees tenant A's data")
    assert not problems, f"{url}:\n" + "\n".join(problems)


def test_home_sends_each_seat_to_its_page(cast: Cast) -> None:
    for role in ROLES:
        response = client_for(cast, role).get(reverse("screens:home"))
        assert response.status_code == 302, role
        assert response["Location"] == HOME_TARGETS[role](cast), role


def test_logout_is_post_only(cast: Cast) -> None:
    for role in ROLES:
        client = client_for(cast, role)
        assert client.get(reverse("screens:logout")).status_code == 405, role
        assert client.post(reverse("screens:logout"))["Location"] == reverse("screens:login"), role
    assert client_for(cast, OPERATOR).get(reverse("admin:logout")).status_code == 405


def test_admin_login_goes_through_allauth(cast: Cast) -> None:
    response = client_for(cast, "anonymous").get(reverse("admin:login"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    response = client_for(cast, RA).get(reverse("admin:login"))
    assert response["Location"] == reverse("admin:index")


def test_language_switch_is_public_and_changes_only_on_post(cast: Cast) -> None:
    client = client_for(cast, "anonymous")
    response = client.post(reverse("set_language"), {"language": "en", "next": "/login/"})
    assert response.status_code == 302
    assert '<html lang="en">' in client.get("/login/").content.decode()
    client.get(reverse("set_language"), {"language": "fr", "next": "/login/"})  # GET changes nothing
    assert '<html lang="en">' in client.get("/login/").content.decode()


def test_outsider_lists_show_only_their_own_rows(cast: Cast) -> None:
    """Lists an outsider may open are scoped: B's own rows are there, A's are not."""
    for role, own in ((RB, "bravo-"), (CB, "bravo-")):
        client = client_for(cast, role)
        names = ["screens:client"] + (
            [f"admin:hosting_{m}_changelist" for m in ("customer", "plan", "pack", "domain", "user")]
            + ["admin:mail_mailbox_changelist"] if role == RB else []
        )
        for name in names:
            body = client.get(reverse(name)).content.decode()
            assert own in body, (role, name)
            assert MARK_A not in body, (role, name)


def walk(patterns: list[Any], namespace: str = "") -> list[tuple[str | None, Any]]:
    found: list[tuple[str | None, Any]] = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or ""
            child_ns = f"{namespace}:{ns}".strip(":") if ns else namespace
            found += walk(entry.url_patterns, child_ns)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}".strip(":") if entry.name else None
            found.append((name, entry.callback))
    return found


def is_third_party_account_page(callback: Any) -> bool:
    """django-allauth's own pages (sign-in, reset, 2FA): public by design, tested upstream."""
    module = getattr(callback, "__module__", "") or ""
    view_class = getattr(callback, "view_class", None)
    if view_class is not None:
        module = view_class.__module__
    return module.startswith("allauth.")


def test_every_url_is_in_the_matrix() -> None:
    names = set()
    for name, callback in walk(get_resolver().url_patterns):
        if is_third_party_account_page(callback):
            continue
        if name is None:
            # Only the admin has unnamed routes (its catch-all and the object-id shortcut).
            assert callback.__module__.startswith("django."), callback
            continue
        names.add(name)
    admin_models = {m._meta.label_lower for m in admin.site._registry}
    assert admin_models == set(ADMIN_ACCESS), "an admin model has no row in ADMIN_ACCESS"
    missing = names - set(MATRIX) - SPECIAL
    assert not missing, f"URLs without an access test: {sorted(missing)}"
    stale = (set(MATRIX) | SPECIAL) - names
    assert not stale, f"Access tests for URLs that no longer exist: {sorted(stale)}"
