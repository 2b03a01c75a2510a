"""A list holds more names than its own: `news+anything` (mlmmj's commands) and the ezmlm-style
`news-subscribe`, `news-unsubscribe`, `news-digest-subscribe`, `news-digest-unsubscribe`,
`news-help`, `news-owner`, `news-request` (mailhost.render.LIST_SUFFIXES). Both directions are
refused with "Name already used.": such a name for a mailbox, forward, robot or list while the
list exists, and the list while one of its names is something else's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from hosting.models import Domain
from lists.models import MailingList
from lists.services import MAX_LIST_NAME, list_create
from mail.models import Forward, Mailbox, Robot
from mail.services import forward_create, mailbox_create, mailbox_rename, robot_create
from mailhost.render import LIST_SUFFIXES, list_sub_addresses
from tests.factories import MailboxFactory

pytestmark = pytest.mark.django_db
PASSWORD = "Correct-Horse-42-battery"
SUBS = [f"news-{suffix}" for suffix in LIST_SUFFIXES]

CREATE: dict[str, Callable[[Any, Domain, str], Any]] = {
    "mailbox": lambda user, domain, name: mailbox_create(domain=domain, local_part=name, password=PASSWORD,
                                                         acting_user=user),
    "forward": lambda user, domain, name: forward_create(domain=domain, local_part=name,
                                                         destinations=["x@remote.test"], acting_user=user),
    "robot": lambda user, domain, name: robot_create(domain=domain, local_part=name, subject="s", message="m",
                                                     acting_user=user),
    "list": lambda user, domain, name: list_create(domain=domain, name=name, owner="owner@remote.test",
                                                   acting_user=user),
}
EXISTING: dict[str, Callable[[Domain, str], Any]] = {
    "mailbox": lambda domain, name: MailboxFactory(domain=domain, local_part=name),
    "forward": lambda domain, name: Forward.objects.create(domain=domain, local_part=name,
                                                           destinations=["x@remote.test"]),
    "robot": lambda domain, name: Robot.objects.create(domain=domain, local_part=name, subject="s", message="m"),
    "list": lambda domain, name: MailingList.objects.create(domain=domain, name=name, owner="owner@remote.test"),
}


def refused(call: Callable[[], Any], code: str = "unique") -> None:
    lists, mailboxes = MailingList.objects.count(), Mailbox.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        call()
    assert [error.code for error in excinfo.value.error_list] == [code]
    if code == "unique":
        assert excinfo.value.messages[0].startswith(gettext("Name already used."))  # then what holds it
    assert (MailingList.objects.count(), Mailbox.objects.count()) == (lists, mailboxes)


@pytest.mark.parametrize("name", [*SUBS, "news+anything"])
@pytest.mark.parametrize("kind", list(CREATE))
def test_a_lists_addresses_are_refused_to_anything_else(cast: Any, kind: str, name: str) -> None:
    EXISTING["list"](cast.a.domain, "news")
    refused(lambda: CREATE[kind](cast.a.postmaster, cast.a.domain, name))


@pytest.mark.parametrize("name", [*SUBS, "news+old"])
@pytest.mark.parametrize("existing", ["mailbox", "forward", "robot"])
def test_a_list_is_refused_while_one_of_its_addresses_is_taken(cast: Any, existing: str, name: str) -> None:
    EXISTING[existing](cast.a.domain, name)
    refused(lambda: CREATE["list"](cast.a.postmaster, cast.a.domain, "news"))


@pytest.mark.parametrize(("existing", "new"), [
    ("news", "news-digest"),  # news-digest-subscribe is list news's address
    ("news-digest", "news"),
    ("news", "news-help"),
    ("news-help", "news"),
    ("news-digest-subscribe", "news"),
    ("news", "news-request"),
])
def test_two_lists_whose_addresses_overlap_are_refused(cast: Any, existing: str, new: str) -> None:
    EXISTING["list"](cast.a.domain, existing)
    refused(lambda: CREATE["list"](cast.a.postmaster, cast.a.domain, new))


def test_a_name_near_a_list_is_free(cast: Any) -> None:
    """Only the list's own addresses are held: `news-letter`, `newsy-help` and a list `news2`
    are someone else's to take; so is everything in another domain."""
    EXISTING["list"](cast.a.domain, "news")
    for kind, name in (("mailbox", "news-letter"), ("forward", "newsy-help"), ("robot", "news-digest"),
                       ("list", "news2"), ("list", "news-subscribe-help")):
        CREATE[kind](cast.a.postmaster, cast.a.domain, name)
    for kind, name in (("mailbox", "news-help"), ("list", "news-digest")):
        CREATE[kind](cast.b.postmaster, cast.b.domain, name)


def test_a_mailbox_cannot_be_renamed_to_a_lists_address(cast: Any) -> None:
    EXISTING["list"](cast.a.domain, "news")
    mailbox = MailboxFactory(domain=cast.a.domain, local_part="alice")
    refused(lambda: mailbox_rename(mailbox=mailbox, new_local_part="news-owner", acting_user=cast.a.postmaster))


def test_a_list_name_has_no_plus(cast: Any) -> None:
    refused(lambda: CREATE["list"](cast.a.postmaster, cast.a.domain, "news+x"), code="invalid")


def test_a_list_name_leaves_room_for_its_longest_address(cast) -> None:
    """Every sub-address of a list (name-digest-unsubscribe@...) fits in a 64-character local part."""
    longest = "a" * MAX_LIST_NAME
    assert max(len(sub) for sub in list_sub_addresses(longest)) <= 64
    with pytest.raises(ValidationError) as refused:
        list_create(domain=cast.a.domain, name=longest + "b", owner="o@elsewhere.test", acting_user=cast.operator)
    assert refused.value.code == "max_length"
    list_create(domain=cast.a.domain, name=longest, owner="o@elsewhere.test", acting_user=cast.operator)
