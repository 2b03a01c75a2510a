"""Issue 6, faults 5 and 6: one quota rule and one password rule, through the services, the
forms and the pages.

Quotas are whole MB, at most MAX_QUOTA_MB per mailbox (a plan's default too) and
MAX_TOTAL_QUOTA_MB for a pack's total: 1.9, NaN, 1e99 or "10 GB" are refused with a message, never
cut, never an OverflowError, and a huge default never reaches a host's document.

A new password keeps what is typed; it may not start or end with a space (mail programs often
drop them: such a password could be set but not used), nor be only spaces, nor hold a control
character, nor exceed MAX_PASSWORD_LENGTH; the login verifies exactly what is typed.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape

from hosting.models import AuditEvent, Plan
from hosting.services import plan_create
from hosting.validators import MAX_QUOTA_MB, MAX_TOTAL_QUOTA_MB, parse_quota_mb
from hostlink import snapshot
from mail.models import LoginThrottle, Mailbox
from mail.services import mailbox_create, mailbox_set_password, mailbox_set_quota
from mail.validators import MAX_PASSWORD_LENGTH, check_new_password
from mailhost import maps
from mailhost.apply import HostConfig, apply
from mailhost.passwords import verify_password
from mailhost.render import MAX_QUOTA_BYTES, RenderError
from tests.conftest import client_for, login_mailbox
from tests.factories import MAILBOX_PASSWORD, MailboxFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english_messages() -> Any:
    """The panel's default language is French; messages are compared in English unless a test
    asks for the French."""
    with translation.override("en"):
        yield

NOT_WHOLE = "The quota must be a whole number of MB (digits only, for example 1024)."
TOO_BIG = f"The quota cannot exceed {MAX_QUOTA_MB} MB."
NEGATIVE = "The quota cannot be negative."

BAD_QUOTAS = {
    "2**44 MB (the plan of the issue)": (17592186044416, "quota", TOO_BIG),
    "10**30": (10**30, "quota", TOO_BIG),
    "one more than the bound": (MAX_QUOTA_MB + 1, "quota", TOO_BIG),
    "5,000 digits": ("9" * 5000, "quota", TOO_BIG),
    "1e99 (a float)": (1e99, "quota", TOO_BIG),
    "'1e99'": ("1e99", "quota", NOT_WHOLE),
    "NaN": (float("nan"), "quota", NOT_WHOLE),
    "'NaN'": ("NaN", "quota", NOT_WHOLE),
    "infinity": (float("inf"), "quota", NOT_WHOLE),
    "1.9": (1.9, "quota", NOT_WHOLE),
    "'1.9'": ("1.9", "quota", NOT_WHOLE),
    "'10 GB'": ("10 GB", "quota", NOT_WHOLE),
    "Arabic-Indic digits": ("\u0661\u0662", "quota", NOT_WHOLE),
    "True": (True, "quota", NOT_WHOLE),
    "-1": (-1, "quota", NEGATIVE),
    "'-5'": ("-5", "quota", NEGATIVE),
    "30 digits, negative": ("-" + "9" * 30, "quota", NEGATIVE),
}
GOOD_QUOTAS = [(0, 0), (1024, 1024), ("1024", 1024), (" 512 ", 512), (2.0, 2), (MAX_QUOTA_MB, MAX_QUOTA_MB),
               ("007", 7)]


def only_error(excinfo: pytest.ExceptionInfo[ValidationError]) -> tuple[str, str]:
    (error,) = excinfo.value.error_list
    return error.code, str(error.message % error.params if error.params else error.message)


# --- the quota parser -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), GOOD_QUOTAS)
def test_whole_numbers_of_mb_are_read(value, expected):
    assert parse_quota_mb(value) == expected


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_blank_is_the_callers_default(blank):
    assert parse_quota_mb(blank) is None


@pytest.mark.parametrize(("value", "code", "message"), BAD_QUOTAS.values(), ids=BAD_QUOTAS.keys())
def test_bad_quotas_are_refused_by_the_parser(value, code, message):
    with pytest.raises(ValidationError) as excinfo:
        parse_quota_mb(value)
    assert only_error(excinfo) == (code, message)


def test_the_quota_messages_are_in_french():
    with pytest.raises(ValidationError) as excinfo:
        parse_quota_mb("10 GB")
    with pytest.raises(ValidationError) as too_big:
        parse_quota_mb(MAX_QUOTA_MB + 1)

    with translation.override("fr"):
        assert only_error(excinfo)[1] == (
            "Le quota doit être un nombre entier de Mo (des chiffres seulement, par exemple 1024)."
        )
        assert only_error(too_big)[1] == f"Le quota ne peut pas dépasser {MAX_QUOTA_MB} Mo."


# --- through the services ---------------------------------------------------------------------


@pytest.mark.parametrize(("value", "code", "message"), BAD_QUOTAS.values(), ids=BAD_QUOTAS.keys())
def test_mailbox_create_refuses_a_bad_quota_and_writes_nothing(cast, value, code, message):
    count, events = Mailbox.objects.count(), AuditEvent.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        mailbox_create(domain=cast.a.domain, local_part="newbox", password="Purple-Otter-5150",
                       quota_mb=value, acting_user=cast.operator)

    assert only_error(excinfo) == (code, message)
    assert (Mailbox.objects.count(), AuditEvent.objects.count()) == (count, events)


@pytest.mark.parametrize(("value", "code", "message"), BAD_QUOTAS.values(), ids=BAD_QUOTAS.keys())
def test_mailbox_set_quota_refuses_a_bad_quota_and_keeps_the_old_one(cast, value, code, message):
    events = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        mailbox_set_quota(mailbox=cast.mailbox_user, quota_mb=value, acting_user=cast.operator)

    assert only_error(excinfo) == (code, message)
    assert Mailbox.objects.get(pk=cast.mailbox_user.pk).quota_mb == 0
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(("value", "expected"), GOOD_QUOTAS)
def test_mailbox_set_quota_stores_whole_numbers(cast, value, expected):
    mailbox_set_quota(mailbox=cast.mailbox_user, quota_mb=value, acting_user=cast.operator)

    assert Mailbox.objects.get(pk=cast.mailbox_user.pk).quota_mb == expected


def test_a_blank_quota_is_the_plans_default(cast):
    Plan.objects.filter(pk=cast.a.plan.pk).update(default_quota_mb=300)

    mailbox = mailbox_create(domain=cast.a.domain, local_part="defaulted", password="Purple-Otter-5150",
                             quota_mb="", acting_user=cast.operator)

    assert mailbox.quota_mb == 300


def test_a_huge_default_stored_before_the_bound_never_reaches_a_document(cast):
    """The issue's plan: 17592186044416 MB became 18446744073709551616 bytes on the host (SQLite
    stored it; PostgreSQL's integer stops at 2147483647 MB, still far beyond the bound)."""
    huge = 17592186044416 if connection.vendor == "sqlite" else 2_147_483_647
    Plan.objects.filter(pk=cast.a.plan.pk).update(default_quota_mb=huge)

    with pytest.raises(ValidationError) as excinfo:
        mailbox_create(domain=cast.a.domain, local_part="huge", password="Purple-Otter-5150",
                       acting_user=cast.operator)

    assert only_error(excinfo) == ("quota", TOO_BIG)
    quotas = [m["quota_bytes"] for m in snapshot.build(cast.a.domain)["mailboxes"]]
    assert quotas and max(quotas) <= MAX_QUOTA_MB * 1024 * 1024


@pytest.mark.parametrize("field", ["default_quota_mb", "total_quota_mb"])
@pytest.mark.parametrize("value", [1.9, float("inf"), float("nan"), "10 GB", 10**30, -1])
def test_plan_create_refuses_a_bad_quota(cast, field, value):
    with pytest.raises(ValidationError) as excinfo:
        plan_create(reseller=cast.a.reseller, name="Broken", acting_user=cast.operator, **{field: value})

    assert set(excinfo.value.message_dict) == {field}
    assert not Plan.objects.filter(name="Broken").exists()


def test_a_packs_total_quota_may_go_beyond_one_mailbox_but_not_beyond_the_field(cast):
    plan = plan_create(reseller=cast.a.reseller, name="Large", total_quota_mb=MAX_TOTAL_QUOTA_MB,
                       acting_user=cast.operator)
    with pytest.raises(ValidationError) as excinfo:
        plan_create(reseller=cast.a.reseller, name="Larger", total_quota_mb=MAX_TOTAL_QUOTA_MB + 1,
                    acting_user=cast.operator)

    assert Plan.objects.get(pk=plan.pk).total_quota_mb == MAX_TOTAL_QUOTA_MB > MAX_QUOTA_MB
    assert excinfo.value.message_dict == {
        "total_quota_mb": [f"The quota cannot exceed {MAX_TOTAL_QUOTA_MB} MB."],
    }


# --- through the admin's plan form ------------------------------------------------------------


def plan_form(**quotas: Any) -> dict[str, Any]:
    return {"name": "Form plan", "max_domains": 1, "max_alias_domains": 2, "max_mailboxes": 10, "max_forwards": 0,
            "max_robots": 0,
            "max_lists": -1, "max_list_members": -1, "default_quota_mb": 500, "total_quota_mb": 0, **quotas}


PLAN_FORM_REFUSALS = {
    "huge default": ({"default_quota_mb": 17592186044416}, "default_quota_mb", TOO_BIG),
    "default one over": ({"default_quota_mb": MAX_QUOTA_MB + 1}, "default_quota_mb", TOO_BIG),
    "default 1.9": ({"default_quota_mb": "1.9"}, "default_quota_mb", NOT_WHOLE),
    "default NaN": ({"default_quota_mb": "NaN"}, "default_quota_mb", NOT_WHOLE),
    "default 1e99": ({"default_quota_mb": "1e99"}, "default_quota_mb", NOT_WHOLE),
    "default 10 GB": ({"default_quota_mb": "10 GB"}, "default_quota_mb", NOT_WHOLE),
    "default negative": ({"default_quota_mb": "-1"}, "default_quota_mb", NEGATIVE),
    "total beyond the field": ({"total_quota_mb": MAX_TOTAL_QUOTA_MB + 1}, "total_quota_mb",
                               f"The quota cannot exceed {MAX_TOTAL_QUOTA_MB} MB."),
    "total 10**30": ({"total_quota_mb": str(10**30)}, "total_quota_mb",
                     f"The quota cannot exceed {MAX_TOTAL_QUOTA_MB} MB."),
}


@pytest.mark.parametrize(("quotas", "field", "message"), PLAN_FORM_REFUSALS.values(), ids=PLAN_FORM_REFUSALS.keys())
def test_the_admin_plan_form_shows_the_quota_message(cast, quotas, field, message):
    client = client_for(cast, "reseller_a")

    response = client.post(reverse("admin:hosting_plan_add"), plan_form(**quotas))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {field: [message]}
    assert escape(message) in response.content.decode()
    assert not Plan.objects.filter(name="Form plan").exists()


def test_the_admin_plan_form_shows_the_quota_message_in_french(cast):
    client = client_for(cast, "reseller_a", language="fr")

    response = client.post(reverse("admin:hosting_plan_add"), plan_form(default_quota_mb="10 GB"))

    assert escape("Le quota doit être un nombre entier de Mo") in response.content.decode()


def test_the_admin_plan_form_accepts_the_bounds(cast):
    client = client_for(cast, "reseller_a")

    response = client.post(reverse("admin:hosting_plan_add"),
                           plan_form(default_quota_mb=MAX_QUOTA_MB, total_quota_mb=MAX_TOTAL_QUOTA_MB))

    assert response.status_code == 302
    plan = Plan.objects.get(name="Form plan")
    assert (plan.default_quota_mb, plan.total_quota_mb) == (MAX_QUOTA_MB, MAX_TOTAL_QUOTA_MB)


# --- the agent --------------------------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> HostConfig:
    config = HostConfig(name="t", root=tmp_path)
    (tmp_path / "db").mkdir()
    maps.create(config.maps_db)
    return config


def document_with_quota(cast, quota_bytes: int) -> dict[str, Any]:
    """The domain's real document, its first mailbox's quota replaced (a panel from before the bound)."""
    document = snapshot.build(cast.a.domain)
    document["mailboxes"][0]["quota_bytes"] = quota_bytes
    return document


@pytest.mark.parametrize("quota_bytes", [18446744073709551616, MAX_QUOTA_BYTES + 1, 10**99])
def test_the_agent_refuses_a_quota_beyond_64_bits_with_a_render_error(cast, host, quota_bytes):
    """The issue's document failed with OverflowError in the agent's SQLite insert, on every retry."""
    with pytest.raises(RenderError, match="quota out of range"):
        apply(document_with_quota(cast, quota_bytes), host)


def test_the_agent_stores_the_largest_quota_it_can(cast, host):
    apply(document_with_quota(cast, MAX_QUOTA_BYTES), host)

    with closing(sqlite3.connect(host.maps_db)) as db:
        stored = db.execute("SELECT max(quota_bytes) FROM mailboxes").fetchone()[0]
    assert stored == MAX_QUOTA_BYTES


# --- the password rule ------------------------------------------------------------------------

GOOD_PASSWORD = "Purple-Otter-5150"
LONGEST = "Purple-Otter-5150-" + "x" * (MAX_PASSWORD_LENGTH - 18)
BAD_PASSWORDS = {
    "empty": ("", "required", "Enter a password."),
    "None": (None, "required", "Enter a password."),
    "not a string": (12345678901, "required", "Enter a password."),
    "ten spaces": (" " * 10, "blank", "The password cannot consist of spaces only."),
    "non-breaking spaces": ("\xa0" * 10, "blank", "The password cannot consist of spaces only."),
    "leading space": (" " + GOOD_PASSWORD, "spaces",
                      "The password cannot start or end with a space: mail programs often drop it."),
    "trailing space": (GOOD_PASSWORD + " ", "spaces",
                       "The password cannot start or end with a space: mail programs often drop it."),
    "NUL": (GOOD_PASSWORD + "\x00", "invalid",
            "The password contains characters that are not allowed (control characters)."),
    "tab inside": ("Purple\tOtter-5150", "invalid",
                   "The password contains characters that are not allowed (control characters)."),
    "line break": ("Purple-Otter\n5150", "invalid",
                   "The password contains characters that are not allowed (control characters)."),
    "C1 control": ("Purple-Otter\x855150", "invalid",
                   "The password contains characters that are not allowed (control characters)."),
    "lone surrogate": ("Purple-Otter\ud8005150", "invalid",
                       "The password contains characters that are not allowed (control characters)."),
    "10 kB": ("Purple-Otter-" + "x" * 10_000, "max_length",
              f"The password is too long (at most {MAX_PASSWORD_LENGTH} characters)."),
    "one over the length": (LONGEST + "x", "max_length",
                            f"The password is too long (at most {MAX_PASSWORD_LENGTH} characters)."),
    "too short": ("Pur-5", "password_too_short",
                  "This password is too short. It must contain at least 8 characters."),
    "common": ("password", "password_too_common", "This password is too common."),
    "numeric": ("7391048265", "password_entirely_numeric", "This password is entirely numeric."),
}
GOOD_PASSWORDS = [GOOD_PASSWORD, "correct horse battery staple", LONGEST, "Mot-de-passe-été-2026"]


def all_errors(excinfo: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str, str]]:
    return [(e.code, str(e.message % e.params if e.params else e.message)) for e in excinfo.value.error_list]


@pytest.mark.parametrize(("password", "code", "message"), BAD_PASSWORDS.values(), ids=BAD_PASSWORDS.keys())
def test_bad_passwords_are_refused_by_the_rule(password, code, message):
    with pytest.raises(ValidationError) as excinfo:
        check_new_password(password)
    assert all_errors(excinfo)[0] == (code, message)


@pytest.mark.parametrize("password", GOOD_PASSWORDS)
def test_good_passwords_pass_the_rule(password):
    check_new_password(password)


def test_the_password_messages_are_in_french():
    with pytest.raises(ValidationError) as excinfo:
        check_new_password(" " * 10)

    with translation.override("fr"):
        assert all_errors(excinfo) == [("blank", "Le mot de passe ne peut pas être composé uniquement d'espaces.")]


@pytest.mark.parametrize(("password", "code", "message"), BAD_PASSWORDS.values(), ids=BAD_PASSWORDS.keys())
def test_mailbox_create_refuses_a_bad_password_and_writes_nothing(cast, password, code, message):
    count = Mailbox.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        mailbox_create(domain=cast.a.domain, local_part="newbox", password=password, acting_user=cast.operator)

    assert all_errors(excinfo)[0] == (code, message)
    assert Mailbox.objects.count() == count


@pytest.mark.parametrize(("password", "code", "message"), BAD_PASSWORDS.values(), ids=BAD_PASSWORDS.keys())
def test_mailbox_set_password_refuses_a_bad_password_and_keeps_the_hash(cast, password, code, message):
    before = Mailbox.objects.get(pk=cast.mailbox_user.pk).password_hash

    with pytest.raises(ValidationError) as excinfo:
        mailbox_set_password(mailbox=cast.mailbox_user, password=password, acting_user=cast.operator)

    assert all_errors(excinfo)[0] == (code, message)
    assert Mailbox.objects.get(pk=cast.mailbox_user.pk).password_hash == before


# --- through the pages: what is set is what logs in -------------------------------------------


def english() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en")


def log_in(address: str, password: str, ip: str) -> int:
    response = english().post(reverse("screens:login"), {"account": address, "domain": "", "password": password},
                              REMOTE_ADDR=ip)
    return response.status_code


def stored_hash(mailbox: Mailbox) -> str:
    return Mailbox.objects.get(pk=mailbox.pk).password_hash


PAGE_REFUSALS = {k: BAD_PASSWORDS[k] for k in ("ten spaces", "trailing space", "leading space", "10 kB", "tab inside")}
NUL_IN_A_FORM = "Null characters are not allowed."  # Django's own check of every form field, first


@pytest.mark.parametrize(("password", "code", "message"), PAGE_REFUSALS.values(), ids=PAGE_REFUSALS.keys())
def test_own_page_refuses_a_bad_new_password_with_its_message(cast, password, code, message):
    client = english()
    login_mailbox(client, cast.mailbox_user)
    before = stored_hash(cast.mailbox_user)

    response = client.post(reverse("screens:me_password"), {"current_password": MAILBOX_PASSWORD,
                                                          "new_password1": password, "new_password2": password})

    assert response.status_code == 400
    assert response.context["form"].errors == {"new_password1": [message]}
    assert stored_hash(cast.mailbox_user) == before


@pytest.mark.parametrize(("password", "code", "message"), PAGE_REFUSALS.values(), ids=PAGE_REFUSALS.keys())
def test_standalone_page_refuses_a_bad_new_password_with_its_message(cast, password, code, message):
    before = stored_hash(cast.mailbox_user)

    response = english().post(reverse("screens:change_password"), {
        "address": cast.mailbox_user.address, "old_password": MAILBOX_PASSWORD,
        "new_password1": password, "new_password2": password,
    }, REMOTE_ADDR="10.7.0.1")

    assert response.status_code == 400
    assert response.context["form"].errors == {"new_password1": [message]}
    assert stored_hash(cast.mailbox_user) == before
    assert not LoginThrottle.objects.exists()  # refused before the old password is even tried


def test_every_password_form_refuses_nul(cast):
    nul = GOOD_PASSWORD + "\x00"
    own = english()
    login_mailbox(own, cast.mailbox_user)
    admin = client_for(cast, "operator")

    answers = [
        own.post(reverse("screens:me_password"), {"new_password1": nul, "new_password2": nul}),
        english().post(reverse("screens:change_password"), {
            "address": cast.mailbox_user.address, "old_password": MAILBOX_PASSWORD,
            "new_password1": nul, "new_password2": nul}, REMOTE_ADDR="10.7.0.9"),
        admin.post(reverse("admin:hosting_domain_add"), {**domain_form(nul), "pack": cast.a.pack.pk}),
    ]

    own_errors, standalone_errors, admin_errors = (
        answers[0].context["form"].errors, answers[1].context["form"].errors,
        answers[2].context["adminform"].form.errors,
    )
    assert NUL_IN_A_FORM in own_errors["new_password1"]
    assert NUL_IN_A_FORM in standalone_errors["new_password1"]
    assert NUL_IN_A_FORM in admin_errors["postmaster_password"]
    assert not Mailbox.objects.filter(domain__name="new-domain.test").exists()


PASSPHRASE = "correct horse  battery staple"  # inner spaces, two in a row, are kept


def test_a_passphrase_set_on_the_own_page_logs_in_exactly_as_typed(cast):
    mailbox = MailboxFactory(domain=cast.a.domain, local_part="phrase")
    client = english()
    login_mailbox(client, mailbox)

    response = client.post(reverse("screens:me_password"), {"current_password": MAILBOX_PASSWORD,
                                                          "new_password1": PASSPHRASE, "new_password2": PASSPHRASE})

    assert response.status_code == 302
    assert verify_password(PASSPHRASE, stored_hash(mailbox))
    assert log_in("phrase@alpha-domain.test", PASSPHRASE, "10.7.0.2") == 302
    assert log_in("phrase@alpha-domain.test", "correct horse battery staple", "10.7.0.3") == 400


def test_a_passphrase_set_on_the_standalone_page_logs_in(cast):
    mailbox = MailboxFactory(domain=cast.a.domain, local_part="standalonephrase")

    response = english().post(reverse("screens:change_password"), {
        "address": "standalonephrase@alpha-domain.test", "old_password": MAILBOX_PASSWORD,
        "new_password1": PASSPHRASE, "new_password2": PASSPHRASE,
    }, REMOTE_ADDR="10.7.0.4")

    assert response.status_code == 302
    assert verify_password(PASSPHRASE, stored_hash(mailbox))
    assert log_in("standalonephrase@alpha-domain.test", PASSPHRASE, "10.7.0.5") == 302


def test_the_login_verifies_the_password_as_typed_without_stripping(cast):
    """A password with an end space, imported from elsewhere (it cannot be set here any more),
    still opens its mailbox, and the same password without the space does not."""
    mailbox = MailboxFactory(domain=cast.a.domain, local_part="imported")
    Mailbox.objects.filter(pk=mailbox.pk).update(password_hash=_hash(GOOD_PASSWORD + " "))

    assert log_in("imported@alpha-domain.test", GOOD_PASSWORD, "10.7.0.6") == 400
    assert log_in("imported@alpha-domain.test", GOOD_PASSWORD + " ", "10.7.0.7") == 302


def _hash(password: str) -> str:
    from mailhost.passwords import hash_password

    return hash_password(password)


# --- the admin's postmaster password ----------------------------------------------------------


def domain_form(password: str) -> dict[str, Any]:
    return {"pack": "", "name": "new-domain.test", "postmaster_password": password}


@pytest.mark.parametrize(("password", "code", "message"), PAGE_REFUSALS.values(), ids=PAGE_REFUSALS.keys())
def test_the_admin_refuses_a_bad_postmaster_password_with_its_message(cast, password, code, message):
    client = client_for(cast, "operator")
    data = {**domain_form(password), "pack": cast.a.pack.pk}

    response = client.post(reverse("admin:hosting_domain_add"), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"postmaster_password": [message]}
    assert not Mailbox.objects.filter(domain__name="new-domain.test").exists()


def test_the_admins_postmaster_password_is_kept_as_typed_and_logs_in(cast):
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_domains=5)
    client = client_for(cast, "operator")

    response = client.post(reverse("admin:hosting_domain_add"),
                           {**domain_form(PASSPHRASE), "pack": cast.a.pack.pk})

    assert response.status_code == 302
    postmaster = Mailbox.objects.get(domain__name="new-domain.test", local_part="postmaster")
    assert verify_password(PASSPHRASE, postmaster.password_hash)
    assert log_in("postmaster@new-domain.test", PASSPHRASE, "10.7.0.8") == 302
