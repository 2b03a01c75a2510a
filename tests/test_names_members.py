"""Issue 16 (defect 10, first half), through the services and the test client: a name already
used says what holds it (within the customer's own domain only), a name too long is refused and
never cut, the members' search says when nothing matches, an address already on the list is not
reported "added", a member is removed only once confirmed; and a list's options are named once
(`lists.options`), read by the service, the form and the document for the mail host."""

from __future__ import annotations

import html
import typing
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from hosting.models import AuditEvent
from hostlink.snapshot import build
from lists import options
from lists.models import ListMember, MailingList, MemberKind
from lists.services import list_create, list_update
from mail.models import Forward, Mailbox, Robot
from mail.services import forward_create, mailbox_create, robot_create
from mailhost import contract
from screens.forms.lists import ListForm
from tests.conftest import Cast, client_for
from tests.factories import MailboxFactory
from tests.test_screens import NEW_PASSWORD, url

pytestmark = pytest.mark.django_db

D = "alpha-domain.test"
HOLDERS = {
    "mailbox": (lambda cast: MailboxFactory(domain=cast.a.domain, local_part="contact"),
                f"Ce nom existe déjà. contact@{D} est déjà un compte Pop."),
    "forward": (lambda cast: Forward.objects.create(domain=cast.a.domain, local_part="contact",
                                                    destinations=["x@remote.test"]),
                f"Ce nom existe déjà. contact@{D} est déjà une redirection."),
    "robot": (lambda cast: Robot.objects.create(domain=cast.a.domain, local_part="contact", subject="s",
                                                message="m"),
              f"Ce nom existe déjà. contact@{D} est déjà un robot."),
    "list": (lambda cast: MailingList.objects.create(domain=cast.a.domain, name="contact", owner="o@remote.test"),
             f"Ce nom existe déjà. contact@{D} est déjà une liste de diffusion."),
}
MAKERS = {
    "mailbox": lambda cast, name: mailbox_create(domain=cast.a.domain, local_part=name, password=NEW_PASSWORD,
                                                 acting_user=cast.operator),
    "forward": lambda cast, name: forward_create(domain=cast.a.domain, local_part=name,
                                                 destinations=["x@remote.test"], acting_user=cast.operator),
    "robot": lambda cast, name: robot_create(domain=cast.a.domain, local_part=name, subject="s", message="m",
                                             acting_user=cast.operator),
    "list": lambda cast, name: list_create(domain=cast.a.domain, name=name, owner="o@remote.test",
                                           acting_user=cast.operator),
}


def text(response: Any) -> str:
    """The page's text, its entities read (the French apostrophe is escaped)."""
    return html.unescape(response.content.decode())


def refusal(call: Any) -> str:
    with translation.override("fr"), pytest.raises(ValidationError) as excinfo:
        call()
    assert [error.code for error in excinfo.value.error_list] == ["unique"]
    return excinfo.value.messages[0]


# --- "Ce nom existe déjà" says what holds the name --------------------------------------------------


@pytest.mark.parametrize("maker", list(MAKERS))
@pytest.mark.parametrize("holder", list(HOLDERS))
def test_a_name_already_used_says_what_holds_it(cast: Cast, holder: str, maker: str) -> None:
    make, message = HOLDERS[holder]
    make(cast)
    assert refusal(lambda: MAKERS[maker](cast, "contact")) == message


@pytest.mark.parametrize("maker", ["mailbox", "forward", "robot"])
def test_a_lists_address_says_which_list_holds_it(cast: Cast, maker: str) -> None:
    list_create(domain=cast.a.domain, name="news", owner="o@remote.test", acting_user=cast.operator)
    assert refusal(lambda: MAKERS[maker](cast, "news-subscribe")) == (
        f"Ce nom existe déjà. news-subscribe@{D} est une adresse de la liste de diffusion news@{D}.")


@pytest.mark.parametrize(("holder", "kind"), [("mailbox", "un compte Pop"), ("forward", "une redirection"),
                                            ("robot", "un robot")])
def test_a_list_whose_address_is_taken_says_which_and_by_what(cast: Cast, holder: str, kind: str) -> None:
    {"mailbox": lambda: MailboxFactory(domain=cast.a.domain, local_part="news-help"),
     "forward": lambda: Forward.objects.create(domain=cast.a.domain, local_part="news-help", destinations=["x@r.test"]),
     "robot": lambda: Robot.objects.create(domain=cast.a.domain, local_part="news-help", subject="s", message="m"),
     }[holder]()
    assert refusal(lambda: MAKERS["list"](cast, "news")) == (
        f"Ce nom existe déjà. La liste aurait besoin de news-help@{D}, qui est déjà {kind}.")


def test_a_list_overlapping_another_lists_addresses_names_that_list(cast: Cast) -> None:
    list_create(domain=cast.a.domain, name="news", owner="o@remote.test", acting_user=cast.operator)
    assert refusal(lambda: MAKERS["list"](cast, "news-digest")) == (  # news-digest-subscribe@ is news's
        f"Ce nom existe déjà. La liste de diffusion news@{D} utilise déjà des adresses dont cette liste aurait "
        "besoin.")


def test_another_customers_names_are_never_looked_at(cast: Cast) -> None:
    """The check reads the domain's own objects: the same name in tenant B's domain is no refusal
    in A's (and so tells A nothing of B)."""
    MailboxFactory(domain=cast.b.domain, local_part="contact")
    MailingList.objects.create(domain=cast.b.domain, name="news", owner="o@remote.test")
    MAKERS["mailbox"](cast, "contact")
    MAKERS["list"](cast, "news")


def test_the_screen_shows_what_holds_the_name_in_french(cast: Cast) -> None:
    Forward.objects.create(domain=cast.a.domain, local_part="contact", destinations=["x@remote.test"])
    response = client_for(cast, "domain_admin_a", "fr").post(url("screens:mailbox_create", cast), {
        "local_part": "contact", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 400
    assert f"Ce nom existe déjà. contact@{D} est déjà une redirection." in text(response)


# --- a name too long is refused, never cut -----------------------------------------------------------


@pytest.mark.parametrize(("name", "field", "limit"), [
    ("screens:mailbox_create", "local_part", 64), ("screens:forward_create", "local_part", 64),
    ("screens:robot_create", "local_part", 64), ("screens:list_create", "name", 45),
])
def test_a_name_too_long_is_refused_with_its_limit_and_its_box_cuts_nothing(
    cast: Cast, name: str, field: str, limit: int
) -> None:
    client = client_for(cast, "domain_admin_a", "fr")
    page = text(client.get(url(name, cast)))
    box = page[page.index(f'name="{field}"'):]
    assert "maxlength" not in box[:box.index(">")]  # the browser would silently drop what goes past it
    data = {field: "a" * (limit + 1), "owner": f"postmaster@{D}", "destinations": "x@remote.test",
            "subject": "s", "message": "m", "reply_hours": "24", "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD, "posting": "subscribers", "reply_to": "sender", "language": "fr",
            "archive_access": "subscribers"}
    counts = (Mailbox.objects.count(), Forward.objects.count(), Robot.objects.count(), MailingList.objects.count())
    response = client.post(url(name, cast), data)
    assert response.status_code == 400
    assert (f"Ce nom est trop long : au plus {limit} caractères (il en a {limit + 1})." in text(response))
    assert counts == (Mailbox.objects.count(), Forward.objects.count(), Robot.objects.count(),
                      MailingList.objects.count())


# --- the members' page ---------------------------------------------------------------------------------


def news_of_a(cast: Cast) -> MailingList:
    return list_create(domain=cast.a.domain, name="news", owner="owner@remote.test", acting_user=cast.operator)


@pytest.mark.parametrize(("kind", "said"), [
    (MemberKind.SUBSCRIBER, "Aucun abonné ne correspond à « zzz »."),
    (MemberKind.MODERATOR, "Aucun modérateur ne correspond à « zzz »."),
])
def test_a_search_that_finds_nobody_says_so(cast: Cast, kind: str, said: str) -> None:
    news = news_of_a(cast)
    page = text(client_for(cast, "domain_admin_a", "fr").get(url("screens:members", cast, news.pk),
                                                            {"kind": kind, "q": "zzz"}))
    assert said in page
    found = text(client_for(cast, "domain_admin_a", "fr").get(url("screens:members", cast, news.pk),
                                                             {"kind": "subscriber", "q": "owner"}))
    assert "owner@remote.test" in found and "ne correspond" not in found


def test_an_address_already_there_is_not_reported_added(cast: Cast) -> None:
    news = news_of_a(cast)
    client = client_for(cast, "domain_admin_a", "fr")
    members = url("screens:members", cast, news.pk)
    before = AuditEvent.objects.count()
    response = client.post(members, {"kind": "subscriber", "address": " Owner@Remote.TEST "}, follow=True)
    page = text(response)
    assert "owner@remote.test est déjà abonné : rien n'a été ajouté." in page
    assert "owner@remote.test a été ajouté" not in page
    assert AuditEvent.objects.count() == before and news.members.filter(kind="subscriber").count() == 1
    # As a moderator it is new: added, and said so.
    page = text(client.post(members, {"kind": "moderator", "address": "owner@remote.test"}, follow=True))
    assert "owner@remote.test a été ajouté." in page


def test_a_member_is_removed_only_once_confirmed(cast: Cast) -> None:
    news = news_of_a(cast)
    ListMember.objects.create(mailing_list=news, address="marie@example.com")
    client = client_for(cast, "domain_admin_a", "fr")
    remove = url("screens:member_remove", cast, news.pk)
    assert client.get(remove, {"address": "marie@example.com"}).status_code == 405  # a GET never deletes
    asked = client.post(remove, {"address": "marie@example.com", "kind": "subscriber"})
    assert asked.status_code == 200
    assert f"Retirer l'abonné marie@example.com de la liste news@{D} ?" in text(asked)
    assert 'name="confirm" value="yes"' in text(asked)
    assert news.members.filter(address="marie@example.com").exists()
    done = client.post(remove, {"address": "marie@example.com", "kind": "subscriber", "confirm": "yes"})
    assert done.status_code == 302 and not news.members.filter(address="marie@example.com").exists()


# --- a list's options named once -------------------------------------------------------------------------

NOT_OPTIONS = {"name", "texts", "subscribers", "moderators", "digest_subscribers", "nomail_subscribers"}


def test_each_option_is_a_column_a_form_field_a_section_and_a_field_of_the_document(cast: Cast) -> None:
    columns = {field.name for field in MailingList._meta.get_fields()}
    form = ListForm(mailing_list=None)
    in_sections = [field.name for _legend, fields, _note in form.sections() for field in fields]
    agent_fields = set(typing.get_type_hints(contract.MailingList)) - NOT_OPTIONS
    for option in options.OPTIONS:
        assert option.name in columns and option.name in form.fields and option.name in in_sections, option
    assert {option.field for option in options.OPTIONS} == agent_fields
    news = news_of_a(cast)
    entry = next(ml for ml in build(cast.a.domain)["lists"] if ml["name"] == "news")
    assert set(entry) == agent_fields | NOT_OPTIONS
    assert {option.field: entry[option.field] for option in options.OPTIONS} == {
        option.field: getattr(news, option.name) for option in options.OPTIONS}


def test_the_service_takes_the_options_by_their_one_name(cast: Cast) -> None:
    news = news_of_a(cast)
    list_update(mailing_list=news, prefix="[news]", digest=True, acting_user=cast.operator)
    news.refresh_from_db()
    assert (news.prefix, news.digest, news.owner) == ("[news]", True, "owner@remote.test")  # others kept
    with pytest.raises(TypeError):
        list_update(mailing_list=news, subject_prefix="[x]", acting_user=cast.operator)
    with pytest.raises(ValidationError):
        list_update(mailing_list=news, posting="nobody", acting_user=cast.operator)
