"""Loops and chains are refused in every direction (issue 6, fault 8), through the real services.

A redirect (forward, forwarding mailbox, the forward a deleted mailbox leaves, a robot's copy, a
catch-all that sends mail on) must reach a final address. Each case is tried in both orders,
across two domains: the second act is refused with its code and a message naming the address,
and nothing is written (no row changed, no revision bump, no audit row).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import translation

from hosting.models import AuditEvent, Domain
from lists.models import MailingList
from lists.services import list_create, list_delete
from mail.models import CatchAll, Forward, Mailbox, Robot
from mail.services import (
    catchall_set,
    forward_create,
    forward_delete,
    forward_set_destinations,
    mailbox_delete,
    mailbox_set_routing,
    robot_create,
    robot_delete,
)
from tests.factories import DomainFactory, MailboxFactory
from tests.test_race import race

ALPHA = "alpha-domain.test"
BRAVO = "bravo-domain.test"  # another customer's domain
SECOND = "alpha-second.test"  # alpha's customer's second domain


@pytest.fixture(autouse=True)
def english() -> Any:
    """Messages read in English here (French is the panel's default); the last test reads French."""
    with translation.override("en"):
        yield


@pytest.fixture
def second(cast: Any) -> Domain:
    return DomainFactory(pack=cast.a.pack, name=SECOND)


def state() -> tuple:
    """Everything a refused act must leave as it was."""
    return (
        list(Forward.objects.order_by("pk").values_list("pk", "local_part", "destinations", "revision")),
        list(Mailbox.objects.order_by("pk").values_list("pk", "routing", "forward_to", "revision")),
        list(Robot.objects.order_by("pk").values_list("pk", "copy_to")),
        list(CatchAll.objects.order_by("pk").values_list("pk", "mode", "target", "revision")),
        list(MailingList.objects.order_by("pk").values_list("pk", "revision")),
        list(Domain.objects.order_by("pk").values_list("pk", "revision")),
        AuditEvent.objects.count(),
    )


def refused(act: Callable[[], Any], code: str) -> str:
    """Run `act`, check it is refused with `code` and wrote nothing; return the message."""
    before = state()
    with pytest.raises(ValidationError) as excinfo:
        act()
    assert [e.code for e in excinfo.value.error_list] == [code]
    assert state() == before
    return excinfo.value.messages[0]


def forward(domain: Domain, name: str, *destinations: str) -> Any:
    return lambda: forward_create(domain=domain, local_part=name, destinations=list(destinations), acting_user=None)


def forwards(mailbox: Mailbox, *destinations: str) -> Any:
    return lambda: mailbox_set_routing(mailbox=mailbox, routing="forward", forward_to=list(destinations),
                                       acting_user=None)


def catchall(domain: Domain, mode: str, target: str = "") -> Any:
    return lambda: catchall_set(domain=domain, mode=mode, target=target, acting_user=None)


# --- two mailboxes forwarding to each other -------------------------------------------------------


@pytest.mark.parametrize("first", ["alpha", "second"])
def test_two_mailboxes_cannot_forward_to_each_other(cast, second, first):
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")
    bob = MailboxFactory(domain=second, local_part="bob")
    acts = {"alpha": (ann, f"bob@{SECOND}"), "second": (bob, f"ann@{ALPHA}")}
    mailbox, target = acts[first]
    other_mailbox, other_target = acts["second" if first == "alpha" else "alpha"]
    forwards(mailbox, target)()

    message = refused(forwards(other_mailbox, other_target), "chain")

    assert message == (f"{mailbox.address} is itself a forward: forward to the final address instead.")


def test_a_loop_across_customers_is_left_to_the_mail_servers(cast):
    """Another customer's address is opaque (issue 15, item 8): refusing Bea's forward would tell
    her that Ann's address forwards. The mail servers' loop detection bounces such a loop
    (tests/e2e/test_cross_customer_loop_e2e.py)."""
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")
    bea = MailboxFactory(domain=cast.b.domain, local_part="bea")
    forwards(ann, f"bea@{BRAVO}")()

    forwards(bea, f"ann@{ALPHA}")()

    assert Mailbox.objects.get(pk=bea.pk).forward_to == [f"ann@{ALPHA}"]


def test_a_mailbox_cannot_forward_to_its_own_tagged_address(cast):
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")

    assert refused(forwards(ann, f"ann+news@{ALPHA}"), "loop") == "An address cannot forward to itself."


# --- a forward to a name that starts to redirect later -------------------------------------------


def test_a_forward_to_a_forwarding_mailbox_is_refused(cast, second):
    bob = MailboxFactory(domain=second, local_part="bob")
    forwards(bob, "bob@elsewhere.test")()

    message = refused(forward(cast.a.domain, "sales", f"bob@{SECOND}"), "chain")

    assert message == f"bob@{SECOND} is itself a forward: forward to the final address instead."
    assert not Forward.objects.filter(local_part="sales").exists()


def test_a_mailbox_a_forward_points_at_cannot_start_forwarding(cast, second):
    bob = MailboxFactory(domain=second, local_part="bob")
    forward(cast.a.domain, "sales", f"bob@{SECOND}")()

    message = refused(forwards(bob, "bob@elsewhere.test"), "pointed_at")

    assert message == (f"bob@{SECOND} cannot forward its mail: it receives mail forwarded by sales@{ALPHA}. "
                       "Change those first (no chains).")


def test_another_customers_forward_pins_nothing(cast):
    """It used to refuse with "an address of another customer already forwards to it" (issue 15, item 8)."""
    bea = MailboxFactory(domain=cast.b.domain, local_part="bea")
    forward(cast.a.domain, "secret-name", f"bea@{BRAVO}")()

    forwards(bea, "bea@elsewhere.test")()

    assert Mailbox.objects.get(pk=bea.pk).forward_to == ["bea@elsewhere.test"]


def test_a_forward_to_a_forward_of_another_domain_is_refused(cast, second):
    forward(second, "team", "x@elsewhere.test")()

    assert f"team@{SECOND} is itself a forward" in refused(forward(cast.a.domain, "sales", f"team@{SECOND}"), "chain")


def test_a_name_a_forward_points_at_cannot_become_a_forward(cast, second):
    forward(cast.a.domain, "sales", f"team@{SECOND}")()  # no such name yet: bounced

    message = refused(forward(second, "team", "x@elsewhere.test"), "pointed_at")

    assert message.startswith(f"team@{SECOND} cannot forward its mail: it receives mail forwarded by sales@{ALPHA}.")


def test_a_forward_through_a_tagged_address_counts(cast, second):
    bob = MailboxFactory(domain=second, local_part="bob")
    forward(cast.a.domain, "sales", f"bob+sales@{SECOND}")()

    assert "sales@" in refused(forwards(bob, "bob@elsewhere.test"), "pointed_at")


def test_a_forward_to_a_tagged_address_of_a_forwarding_mailbox_is_refused(cast, second):
    bob = MailboxFactory(domain=second, local_part="bob")
    forwards(bob, "bob@elsewhere.test")()

    assert f"bob+sales@{SECOND} is itself a forward" in refused(
        forward(cast.a.domain, "sales", f"bob+sales@{SECOND}"), "chain"
    )


def test_changing_a_forwards_destinations_is_checked(cast, second):
    sales = forward(cast.a.domain, "sales", "x@elsewhere.test")()
    forward(second, "team", "y@elsewhere.test")()

    act = lambda: forward_set_destinations(forward=sales, destinations=[f"team@{SECOND}"], acting_user=None)  # noqa: E731
    assert f"team@{SECOND} is itself a forward" in refused(act, "chain")


# --- deleting a mailbox with "yes, redirect to" --------------------------------------------------


def test_delete_with_redirect_refused_when_a_forward_points_at_the_mailbox(cast, second):
    bob = MailboxFactory(domain=second, local_part="bob")
    forward(cast.a.domain, "sales", f"bob@{SECOND}")()

    message = refused(lambda: mailbox_delete(mailbox=bob, redirect_to="x@elsewhere.test", acting_user=None),
                      "pointed_at")

    assert f"sales@{ALPHA}" in message
    assert Mailbox.objects.filter(pk=bob.pk).exists()


def test_delete_with_redirect_to_a_forward_is_refused(cast, second):
    bob = MailboxFactory(domain=second, local_part="bob")
    forward(cast.a.domain, "sales", "x@elsewhere.test")()

    message = refused(lambda: mailbox_delete(mailbox=bob, redirect_to=f"sales@{ALPHA}", acting_user=None), "chain")

    assert f"sales@{ALPHA} is itself a forward" in message


# --- catch-all with a remote target ----------------------------------------------------------------


def test_a_remote_catchall_to_a_forward_is_refused(cast, second):
    forward(second, "team", "x@elsewhere.test")()

    assert f"team@{SECOND} is itself a forward" in refused(catchall(cast.a.domain, "remote", f"team@{SECOND}"),
                                                          "chain")


def test_a_name_a_remote_catchall_points_at_cannot_become_a_forward(cast, second):
    catchall(cast.a.domain, "remote", f"team@{SECOND}")()

    message = refused(forward(second, "team", "x@elsewhere.test"), "pointed_at")

    assert f"the catch-all of {ALPHA}" in message


def test_a_remote_catchall_to_a_name_of_its_own_domain_that_does_not_exist_is_a_loop(cast):
    assert refused(catchall(cast.a.domain, "remote", f"nobody@{ALPHA}"), "loop")


# --- catch-all forwarding x@ to x@ another domain -------------------------------------------------


@pytest.mark.parametrize("first", ["alpha", "second"])
def test_two_domains_cannot_send_their_unknown_names_to_each_other(cast, second, first):
    domains = {"alpha": cast.a.domain, "second": second}
    one, other = domains[first], domains["second" if first == "alpha" else "alpha"]
    catchall(one, "domain", other.name)()

    message = refused(catchall(other, "domain", one.name), "chain")

    assert message == f"The catch-all of {one.name} itself sends mail on: choose the final domain instead."


def test_a_domain_catchall_to_a_domain_whose_catchall_sends_on_is_refused_in_both_orders(cast, second):
    third = DomainFactory(pack=cast.a.pack, name="alpha-third.test")
    catchall(second, "domain", third.name)()
    assert "The catch-all of alpha-second.test" in refused(catchall(cast.a.domain, "domain", SECOND), "chain")

    catchall(second, "bounce")()
    catchall(cast.a.domain, "domain", SECOND)()
    message = refused(catchall(second, "domain", third.name), "pointed_at")
    assert message == (f"The catch-all cannot send mail on: mail forwarded by the catch-all of {ALPHA} goes to "
                       "names of this domain that do not exist. Change those first (no chains).")


def test_a_forward_to_an_unknown_name_of_a_domain_whose_catchall_sends_on_is_refused(cast, second):
    catchall(second, "remote", "all@elsewhere.test")()

    message = refused(forward(cast.a.domain, "sales", f"nobody@{SECOND}"), "chain")

    assert message == (f"nobody@{SECOND} is not an address of {SECOND}: its catch-all sends it on. "
                       "Forward to the final address instead.")


@pytest.mark.parametrize("mode,target", [("remote", "all@elsewhere.test"), ("domain", "elsewhere.test")])
def test_a_catchall_cannot_send_on_while_a_forward_points_at_an_unknown_name(cast, second, mode, target):
    forward(cast.a.domain, "sales", f"nobody@{SECOND}")()

    assert f"forwarded by sales@{ALPHA} goes" in refused(catchall(second, mode, target), "pointed_at")


def test_a_remote_catchall_pointing_at_an_unknown_name_blocks_a_sending_catchall_of_the_same_customer(cast, second):
    catchall(cast.a.domain, "remote", f"nobody@{SECOND}")()

    message = refused(catchall(second, "domain", "elsewhere.test"), "pointed_at")

    assert message == (f"The catch-all cannot send mail on: mail forwarded by the catch-all of {ALPHA} goes to "
                       "names of this domain that do not exist. Change those first (no chains).")


def test_another_customers_remote_catchall_blocks_no_catchall(cast):
    """It used to refuse with "an address of another customer already forwards..." (issue 15, item 8)."""
    catchall(cast.a.domain, "remote", f"nobody@{BRAVO}")()

    catchall(cast.b.domain, "domain", "elsewhere.test")()

    assert CatchAll.objects.get(domain=cast.b.domain).mode == "domain"


def test_names_that_exist_do_not_block_a_catchall(cast, second):
    MailboxFactory(domain=second, local_part="bob")
    forward(cast.a.domain, "sales", f"bob@{SECOND}")()

    catchall(second, "remote", "all@elsewhere.test")()

    assert CatchAll.objects.get(domain=second).mode == "remote"


def test_deleting_a_name_that_a_forward_points_at_is_refused_when_the_catchall_sends_on(cast, second):
    bob = MailboxFactory(domain=second, local_part="bob")
    forward(cast.a.domain, "sales", f"bob@{SECOND}")()
    catchall(second, "remote", "all@elsewhere.test")()

    message = refused(lambda: mailbox_delete(mailbox=bob, acting_user=None), "pointed_at")

    assert message == (f"bob@{SECOND} cannot be deleted: it receives mail forwarded by sales@{ALPHA}, which the "
                       "catch-all would send on (no chains).")
    catchall(second, "bounce")()
    mailbox_delete(mailbox=bob, acting_user=None)  # bounced from now on: no chain


def test_deleting_a_robot_or_a_list_a_forward_points_at_is_checked_too(cast, second):
    robot = robot_create(domain=second, local_part="info", subject="Hi", message="Hello", acting_user=None)
    mailing_list = list_create(domain=second, name="news", owner="boss@elsewhere.test", acting_user=None)
    forward(cast.a.domain, "sales", f"info@{SECOND}", f"news@{SECOND}")()  # both final: accepted
    catchall(second, "domain", "elsewhere.test")()  # they exist: accepted

    assert "info@" in refused(lambda: robot_delete(robot=robot, acting_user=None), "pointed_at")
    assert "news@" in refused(lambda: list_delete(mailing_list=mailing_list, acting_user=None), "pointed_at")


def test_deleting_a_forward_nothing_points_at_is_fine_under_a_sending_catchall(cast):
    sales = forward(cast.a.domain, "sales", "x@elsewhere.test")()
    catchall(cast.a.domain, "remote", "all@elsewhere.test")()

    forward_delete(forward=sales, acting_user=None)

    assert not Forward.objects.filter(pk=sales.pk).exists()


# --- catch-all to a mailbox of the domain ----------------------------------------------------------


def test_a_catchall_to_a_forwarding_mailbox_is_refused_in_both_orders(cast):
    ann = MailboxFactory(domain=cast.a.domain, local_part="ann")
    forwards(ann, "ann@elsewhere.test")()
    assert f"ann@{ALPHA} is itself a forward" in refused(catchall(cast.a.domain, "mailbox", "ann"), "chain")

    mailbox_set_routing(mailbox=ann, routing="standard", acting_user=None)
    catchall(cast.a.domain, "mailbox", "ann")()
    assert f"the catch-all of {ALPHA}" in refused(forwards(ann, "ann@elsewhere.test"), "pointed_at")


# --- robots' copies -----------------------------------------------------------------------------


def test_a_robots_copy_to_a_forward_is_refused_and_its_address_cannot_forward_later(cast, second):
    forward(second, "team", "x@elsewhere.test")()
    act = lambda: robot_create(domain=cast.a.domain, local_part="info", subject="Hi", message="Hello",  # noqa: E731
                               copy_to=f"team@{SECOND}", acting_user=None)
    assert f"team@{SECOND} is itself a forward" in refused(act, "chain")

    bob = MailboxFactory(domain=second, local_part="bob")
    robot_create(domain=cast.a.domain, local_part="info", subject="Hi", message="Hello", copy_to=f"bob@{SECOND}",
                 acting_user=None)
    assert f"info@{ALPHA}" in refused(forwards(bob, "x@elsewhere.test"), "pointed_at")


def test_a_forward_to_a_robot_that_sends_a_copy_on_is_refused(cast, second):
    robot_create(domain=second, local_part="info", subject="Hi", message="Hello", copy_to="boss@elsewhere.test",
                 acting_user=None)
    robot_create(domain=second, local_part="faq", subject="Hi", message="Hello", acting_user=None)

    assert f"info@{SECOND} is itself a forward" in refused(forward(cast.a.domain, "sales", f"info@{SECOND}"), "chain")
    forward(cast.a.domain, "help", f"faq@{SECOND}")()  # a robot without copy is final


# --- what stays allowed -------------------------------------------------------------------------


def test_final_destinations_are_accepted(cast, second):
    MailboxFactory(domain=second, local_part="bob")
    list_create(domain=second, name="news", owner="boss@elsewhere.test", acting_user=None)
    catchall(cast.b.domain, "mailbox", "postmaster")()

    sales = forward(cast.a.domain, "sales", f"bob@{SECOND}", f"news@{SECOND}", f"nobody@{BRAVO}",
                    f"nobody@{SECOND}", "someone@elsewhere.test")()
    catchall(cast.a.domain, "domain", SECOND)()  # second's catch-all bounces: final

    assert len(sales.destinations) == 5


def test_the_refusal_reads_in_french(cast, second):
    forward(second, "team", "x@elsewhere.test")()

    with translation.override("fr"):
        message = refused(forward(cast.a.domain, "sales", f"team@{SECOND}"), "chain")

    assert message == f"team@{SECOND} est elle-même une redirection : redirigez plutôt vers l'adresse finale."


def test_the_pointed_at_refusal_reads_in_french(cast, second):
    bob = MailboxFactory(domain=second, local_part="bob")
    forward(cast.a.domain, "sales", f"bob@{SECOND}")()

    with translation.override("fr"):
        message = refused(forwards(bob, "bob@elsewhere.test"), "pointed_at")

    assert message == (f"bob@{SECOND} ne peut pas être redirigée : elle reçoit le courrier redirigé par "
                       f"sales@{ALPHA}. Modifiez d'abord ces redirections (pas de redirection en chaîne).")


# --- two requests at the same time ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs real row locks (set DATABASE_URL)")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_requests_at_once_cannot_make_a_loop():
    """Ann and Bea (two domains of one customer: the rules hold within a customer's own domains)
    each forward to the other at the same moment, ten times over: each time exactly one of the
    two is refused."""
    for round_ in range(10):
        ann = MailboxFactory(domain=DomainFactory(name=f"ann{round_}.test"), local_part="ann")
        bea = MailboxFactory(domain=DomainFactory(pack=ann.domain.pack, name=f"bea{round_}.test"), local_part="bea")
        pair = [(ann, f"bea@bea{round_}.test"), (bea, f"ann@ann{round_}.test")]

        done, refusals = race(2, lambda i, pair=pair: forwards(*pair[i])())

        assert len(done) == 1
        assert [e.code for e in refusals] == ["chain"]
