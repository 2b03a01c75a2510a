"""A POP account that forwards with "keep a copy" delivers its mail (issue 16, defect 6): it is
accepted as the target of delete-with-redirect, of the catch-all, of a forward; it may forward
while something points at it. A pure forward keeps the rules of tests/test_loops.py, and a loop
through mailboxes that keep a copy (or a catch-all) is still refused, in both orders."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation

from hosting.models import Domain
from mail.models import CatchAll, Forward, Mailbox
from mail.services import mailbox_delete, mailbox_set_routing, robot_create
from tests.factories import DomainFactory, MailboxFactory
from tests.test_loops import ALPHA, SECOND, catchall, forward, refused

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english() -> Any:
    with translation.override("en"):
        yield


@pytest.fixture
def second(cast: Any) -> Domain:
    return DomainFactory(pack=cast.a.pack, name=SECOND)


def forwards(mailbox: Mailbox, *destinations: str, copy: bool = True) -> Any:
    return lambda: mailbox_set_routing(mailbox=mailbox, routing="forward", forward_to=list(destinations),
                                       keep_copy=copy, acting_user=None)


def test_delete_with_redirect_to_an_account_that_keeps_a_copy_is_accepted(cast, second):
    ann = MailboxFactory(domain=second, local_part="ann")
    forwards(ann, "ann@elsewhere.test")()
    bob = MailboxFactory(domain=cast.a.domain, local_part="bob")

    mailbox_delete(mailbox=bob, redirect_to=f"ann@{SECOND}", acting_user=None)

    assert Forward.objects.get(domain=cast.a.domain, local_part="bob").destinations == [f"ann@{SECOND}"]


def test_the_catchall_to_an_account_that_keeps_a_copy_is_accepted_in_both_orders(cast):
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")
    forwards(ann, "ann@elsewhere.test")()
    catchall(cast.a.domain, "mailbox", "ann")()
    assert CatchAll.objects.get(domain=cast.a.domain).target == "ann"

    forwards(ann, "ann@elsewhere.test", "ann@other.test")()  # pointed at, it may still forward with a copy
    assert Mailbox.objects.get(pk=ann.pk).forward_to == ["ann@elsewhere.test", "ann@other.test"]


def test_a_forward_and_a_remote_catchall_to_an_account_that_keeps_a_copy_are_accepted(cast, second):
    ann = MailboxFactory(domain=second, local_part="ann")
    forwards(ann, "ann@elsewhere.test")()

    forward(cast.a.domain, "sales", f"ann@{SECOND}")()
    catchall(cast.a.domain, "remote", f"ann@{SECOND}")()


def test_a_pure_forward_is_refused_as_before(cast, second):
    """Without the copy nothing changes: the target is refused, and a pointed-at mailbox cannot
    become a pure forward."""
    ann = MailboxFactory(domain=second, local_part="ann")
    forwards(ann, "ann@elsewhere.test", copy=False)()
    bob = MailboxFactory(domain=cast.a.domain, local_part="bob")
    message = refused(lambda: mailbox_delete(mailbox=bob, redirect_to=f"ann@{SECOND}", acting_user=None), "chain")
    assert message == f"ann@{SECOND} is itself a forward: forward to the final address instead."
    assert f"ann@{SECOND} is itself a forward" in refused(catchall(second, "mailbox", "ann"), "chain")

    forwards(ann, "ann@elsewhere.test")()
    catchall(second, "mailbox", "ann")()
    assert f"the catch-all of {SECOND}" in refused(forwards(ann, "ann@elsewhere.test", copy=False), "pointed_at")


def test_two_accounts_that_keep_a_copy_cannot_forward_to_each_other(cast, second):
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")
    bob = MailboxFactory(domain=second, local_part="bob")
    forwards(ann, f"bob@{SECOND}")()

    message = refused(forwards(bob, f"ann@{ALPHA}"), "loop")

    assert message == f"Mail forwarded to ann@{ALPHA} would come back to bob@{SECOND}: that would be a loop."


def test_a_longer_loop_through_accounts_that_keep_a_copy_is_refused(cast, second):
    ann, bob, cid = (MailboxFactory(domain=cast.a.domain, local_part=name) for name in ("ann", "bob", "cid"))
    forwards(ann, f"bob+x@{ALPHA}")()
    forwards(bob, f"cid@{ALPHA}", "b@elsewhere.test")()

    assert refused(forwards(cid, "c@elsewhere.test", f"ann@{ALPHA}"), "loop")
    forwards(cid, "c@elsewhere.test")()  # no loop: fine


def test_a_catchall_to_an_account_that_keeps_a_copy_cannot_loop_in_either_order(cast):
    """ann forwards (with a copy) to a name of the domain that does not exist: giving the
    catch-all to ann would send that mail round for ever; and the other way round."""
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")
    forwards(ann, f"nobody@{ALPHA}")()
    message = refused(catchall(cast.a.domain, "mailbox", "ann"), "loop")
    assert message == (f"Mail forwarded to ann@{ALPHA} would come back to the catch-all of {ALPHA}: "
                       "that would be a loop.")

    forwards(ann, "ann@elsewhere.test")()
    catchall(cast.a.domain, "mailbox", "ann")()
    assert refused(forwards(ann, f"nobody@{ALPHA}"), "loop")


def test_a_domain_catchall_to_a_domain_whose_catchall_keeps_a_copy_cannot_loop(cast, second):
    bob = MailboxFactory(domain=second, local_part="bob")
    forwards(bob, f"nobody@{ALPHA}")()
    catchall(second, "mailbox", "bob")()

    assert refused(catchall(cast.a.domain, "domain", SECOND), "loop")


def test_a_robots_copy_to_an_account_that_keeps_a_copy_is_accepted_but_cannot_come_back(cast, second):
    ann = MailboxFactory(domain=second, local_part="ann")
    forwards(ann, "ann@elsewhere.test")()
    robot_create(domain=cast.a.domain, local_part="info", subject="Hi", message="Hello", copy_to=f"ann@{SECOND}",
                 acting_user=None)

    assert refused(forwards(ann, f"info@{ALPHA}"), "chain")  # the robot sends its copy on: a redirect


def test_the_loop_refusal_reads_in_french(cast, second):
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")
    bob = MailboxFactory(domain=second, local_part="bob")
    forwards(ann, f"bob@{SECOND}")()

    with translation.override("fr"):
        message = refused(forwards(bob, f"ann@{ALPHA}"), "loop")

    assert message == (f"Le courrier redirigé vers ann@{ALPHA} reviendrait à bob@{SECOND} : "
                       "ce serait une boucle.")
