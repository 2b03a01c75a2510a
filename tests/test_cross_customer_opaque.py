"""Another customer's address is opaque (issue 15, item 8), through the real services.

Pointing at it (a forward, a forwarding mailbox, a robot's copy, a remote catch-all, the forward
a deleted mailbox leaves) is treated exactly as pointing at another server's address: nothing
about what it is (a forward, a robot that copies, a name its catch-all sends on) is revealed by a
refusal, and its owner stays free to rename it, make it forward, delete it, or set a catch-all
that sends on. Each case is run against a domain of the SAME customer too, where the chain rules
still hold (refused, as before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from hosting.models import Domain
from mail.models import CatchAll, Forward, Mailbox, Robot
from mail.services import (
    catchall_set,
    forward_create,
    mailbox_delete,
    mailbox_rename,
    mailbox_set_routing,
    robot_create,
)
from tests.factories import DomainFactory, MailboxFactory

ALPHA = "alpha-domain.test"


@pytest.fixture(autouse=True)
def english() -> Any:
    with translation.override("en"):
        yield


@pytest.fixture(params=["another customer", "same customer"])
def target(request: pytest.FixtureRequest, cast: Any) -> tuple[Domain, bool]:
    """The domain pointed at, and whether the chain rules hold (the same customer's domain)."""
    if request.param == "another customer":
        return cast.b.domain, False
    return DomainFactory(pack=cast.a.pack, name="alpha-second.test"), True


def outcome(act: Callable[[], Any]) -> str:
    """"accepted", or the refusal's code and message."""
    try:
        act()
    except ValidationError as error:
        return f"{error.error_list[0].code}: {error.messages[0]}"
    return "accepted"


# --- what an address is, never revealed to another customer ---------------------------------------

KINDS = {
    "a forward": lambda d: Forward.objects.create(domain=d, local_part="x", destinations=["far@elsewhere.test"]),
    "a forwarding mailbox": lambda d: MailboxFactory(domain=d, local_part="x", routing="forward",
                                                      forward_to=["far@elsewhere.test"]),
    "a robot that copies": lambda d: Robot.objects.create(domain=d, local_part="x", subject="s", message="m",
                                                          copy_to="far@elsewhere.test"),
    "an unknown name its catch-all sends on": lambda d: CatchAll.objects.create(
        domain=d, mode="remote", target="far@elsewhere.test"),
}
POINTERS = {
    "forward": lambda cast, address: forward_create(domain=cast.a.domain, local_part="sales",
                                                    destinations=[address], acting_user=None),
    "forwarding mailbox": lambda cast, address: mailbox_set_routing(
        mailbox=cast.mailbox_user, routing="forward", forward_to=[address], acting_user=None),
    "robot's copy": lambda cast, address: robot_create(domain=cast.a.domain, local_part="info", subject="Hi",
                                                       message="Hello", copy_to=address, acting_user=None),
    "remote catch-all": lambda cast, address: catchall_set(domain=cast.a.domain, mode="remote", target=address,
                                                           acting_user=None),
    "delete with redirect": lambda cast, address: mailbox_delete(mailbox=cast.mailbox_user, redirect_to=address,
                                                                 acting_user=None),
}


@pytest.mark.parametrize("pointer", sorted(POINTERS))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_pointing_at_an_address_that_sends_mail_on(cast, target, kind, pointer):
    domain, same_customer = target
    KINDS[kind](domain)
    address = f"x@{domain.name}"

    result = outcome(lambda: POINTERS[pointer](cast, address))

    if same_customer:
        assert result.startswith("chain: ") and address in result
    else:
        assert result == "accepted"  # exactly as for an address of another server


def test_a_domain_catchall_to_a_domain_whose_catchall_sends_on(cast, target):
    domain, same_customer = target
    CatchAll.objects.create(domain=domain, mode="remote", target="far@elsewhere.test")

    result = outcome(lambda: catchall_set(domain=cast.a.domain, mode="domain", target=domain.name, acting_user=None))

    assert result == (f"chain: The catch-all of {domain.name} itself sends mail on: choose the final domain instead."
                      if same_customer else "accepted")


def test_the_answer_for_another_customers_forward_is_the_answer_for_a_remote_address(cast):
    """Whatever bravo's address is, alpha sees what it would see for an address of another server."""
    Forward.objects.create(domain=cast.b.domain, local_part="fwd", destinations=["far@elsewhere.test"])
    MailboxFactory(domain=cast.b.domain, local_part="box")
    CatchAll.objects.create(domain=cast.b.domain, mode="remote", target="far@elsewhere.test")
    answers = {}
    for name in ("fwd", "box", "nobody"):
        answers[name] = outcome(lambda name=name: forward_create(
            domain=cast.a.domain, local_part=f"to-{name}", destinations=[f"{name}@bravo-domain.test"],
            acting_user=None))
    answers["remote"] = outcome(lambda: forward_create(
        domain=cast.a.domain, local_part="to-remote", destinations=["fwd@elsewhere.test"], acting_user=None))

    assert set(answers.values()) == {"accepted"}


# --- another customer's redirects pin nothing ---------------------------------------------------

ACTS = {
    "make it forward": lambda box: mailbox_set_routing(mailbox=box, routing="forward",
                                                       forward_to=["far@elsewhere.test"], acting_user=None),
    "rename it": lambda box: mailbox_rename(mailbox=box, new_local_part="renamed", acting_user=None),
    "delete it and keep it as a forward": lambda box: mailbox_delete(
        mailbox=box, redirect_to="far@elsewhere.test", acting_user=None),
    "delete it under a catch-all that sends on": lambda box: (
        CatchAll.objects.create(domain=box.domain, mode="remote", target="all@elsewhere.test"),
        mailbox_delete(mailbox=box, acting_user=None)),
}


@pytest.mark.parametrize("act", sorted(ACTS))
@pytest.mark.parametrize("pointer", sorted(POINTERS))
def test_an_address_pointed_at(cast, target, pointer, act):
    domain, same_customer = target
    box = MailboxFactory(domain=domain, local_part="x")
    POINTERS[pointer](cast, f"x@{domain.name}")

    result = outcome(lambda: ACTS[act](box))

    if same_customer:
        assert result.startswith("pointed_at: ") and "x@alpha-second.test" in result, result
    else:
        assert result == "accepted", result  # used to refuse: "an address of another customer..."


@pytest.mark.parametrize("pointer", ["forward", "forwarding mailbox", "robot's copy", "remote catch-all"])
@pytest.mark.parametrize("mode,catchall_target", [("remote", "all@elsewhere.test"), ("domain", "elsewhere.test")])
def test_a_catchall_that_sends_on_while_a_redirect_points_at_an_unknown_name(cast, target, pointer, mode,
                                                                             catchall_target):
    domain, same_customer = target
    POINTERS[pointer](cast, f"nobody@{domain.name}")

    result = outcome(lambda: catchall_set(domain=domain, mode=mode, target=catchall_target, acting_user=None))

    if same_customer:
        assert result.startswith("pointed_at: The catch-all cannot send mail on: mail forwarded by ")
    else:
        assert result == "accepted"


def test_the_rename_leaves_another_customers_redirect_alone(cast):
    box = MailboxFactory(domain=cast.b.domain, local_part="x")
    sales = forward_create(domain=cast.a.domain, local_part="sales", destinations=["x@bravo-domain.test"],
                           acting_user=None)

    mailbox_rename(mailbox=box, new_local_part="renamed", acting_user=None)

    assert Forward.objects.get(pk=sales.pk).destinations == ["x@bravo-domain.test"]  # not ours to rewrite
    assert Mailbox.objects.get(pk=box.pk).local_part == "renamed"
