"""Every rule of the service functions, through the real functions (no mocks): each refusal names
its code and writes nothing (no row, no revision, no audit row); each success writes its row,
stamps it with the domain's new revision and writes exactly one audit row of its action.

tests/test_services.py proves the mailbox and domain limits, the order of QmailAdmin's checks, the
local-part syntax, quotas and passwords; tests/test_loops.py the loops and chains; this file the
rest: names taken across every kind, destinations, text, vacation, catch-all, robots, lists,
deletes, access, the tenant tree's remaining refusals; at the end, the admin's own rules that
bin/mutants found untested (who may send a domain again, audit rows of plain admin saves, fields
fixed after creation).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from django import forms
from django.contrib.auth.models import Group
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.urls import reverse

from hosting.admin import PlanForm, _form_error
from hosting.models import UNLIMITED, AuditEvent, Customer, Domain, MailHost, Pack, Plan, User
from hosting.roles import SUPPORT_GROUP
from hosting.services import customer_create, limit_allows, pack_create
from hostlink.admin import move_label
from lists.models import ListMember, MailingList, MemberKind, Posting, ReplyTo
from lists.services import list_create, list_delete, list_member_add, list_member_remove
from mail.models import CatchAll, CatchAllMode, Forward, Mailbox, Robot, Routing
from mail.services import (
    MAX_DESTINATIONS,
    catchall_set,
    forward_create,
    forward_delete,
    forward_set_destinations,
    mailbox_create,
    mailbox_delete,
    mailbox_set_access,
    mailbox_set_password,
    mailbox_set_quota,
    mailbox_set_routing,
    mailbox_set_vacation,
    robot_create,
    robot_delete,
)
from mailhost.passwords import verify_password
from provisioning.domains import domain_create, domain_delete, pack_move
from provisioning.models import DomainSync, RetiredDomain, SyncState, sync_state_label
from tests.conftest import client_for
from tests.factories import MAILBOX_PASSWORD, DomainFactory, MailboxFactory, MailHostFactory, PlanFactory, UserFactory

GOOD_PASSWORD = "Blue-Lantern-731"
MODELS = (Mailbox, Forward, Robot, CatchAll, MailingList, ListMember, Domain, Pack, Customer, Plan,
          RetiredDomain, AuditEvent)


# --- helpers ----------------------------------------------------------------------------------


def everything() -> dict[str, list[dict[str, Any]]]:
    """Every row of every model a service writes (revisions and audit rows included)."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS}


def refused(code: str, call: Callable[[], Any]) -> ValidationError:
    """`call` raises a ValidationError of exactly this code and leaves every row as it was."""
    before = everything()
    with pytest.raises(ValidationError) as excinfo:
        call()
    assert {error.code for error in excinfo.value.error_list} == {code}, excinfo.value
    assert everything() == before
    return excinfo.value


def revision(domain: Domain) -> int:
    return Domain.objects.values_list("revision", flat=True).get(pk=domain.pk)


def last_event_pk() -> int:
    return AuditEvent.objects.order_by("pk").values_list("pk", flat=True).last() or 0


def one_change(domain: Domain, action: str, call: Callable[[], Any]) -> tuple[Any, AuditEvent]:
    """`call` bumps the domain's revision by one and writes exactly one audit row, `action`."""
    before, last = revision(domain), last_event_pk()
    result = call()
    events = list(AuditEvent.objects.filter(pk__gt=last).order_by("pk"))
    assert [event.action for event in events] == [action]
    assert revision(domain) == before + 1
    return result, events[0]


def set_plan(plan: Plan, **fields: Any) -> None:
    Plan.objects.filter(pk=plan.pk).update(**fields)


@pytest.fixture
def a(cast):
    """Tenant alpha, its domain, its postmaster and plain mailbox (`alphauser`)."""
    return cast.a


def make_forward(domain: Domain, local: str, destinations: list[str] | None = None) -> Forward:
    return Forward.objects.create(domain=domain, local_part=local, destinations=destinations or ["x@remote.test"])


def make_robot(domain: Domain, local: str) -> Robot:
    return Robot.objects.create(domain=domain, local_part=local, subject="s", message="m")


def make_list(domain: Domain, name: str) -> MailingList:
    return MailingList.objects.create(domain=domain, name=name, owner="owner@remote.test")


# --- limit_allows -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "used", "allowed"),
    [(UNLIMITED, 10**6, True), (0, 0, False), (3, 2, True), (3, 3, False), (3, 4, False)],
)
def test_limit_allows(limit, used, allowed):
    assert limit_allows(limit, used) is allowed


# --- a name is free across mailboxes, forwards, robots and lists ------------------------------

EXISTING = {
    "mailbox": lambda domain: MailboxFactory(domain=domain, local_part="taken"),
    "forward": lambda domain: make_forward(domain, "taken"),
    "robot": lambda domain: make_robot(domain, "taken"),
    "list": lambda domain: make_list(domain, "taken"),
}
CREATE = {
    "mailbox": lambda cast, name: mailbox_create(domain=cast.a.domain, local_part=name, password=GOOD_PASSWORD,
                                                 acting_user=cast.a.postmaster),
    "forward": lambda cast, name: forward_create(domain=cast.a.domain, local_part=name,
                                                 destinations=["x@remote.test"], acting_user=cast.a.postmaster),
    "robot": lambda cast, name: robot_create(domain=cast.a.domain, local_part=name, subject="s", message="m",
                                             acting_user=cast.a.postmaster),
    "list": lambda cast, name: list_create(domain=cast.a.domain, name=name, owner="owner@remote.test",
                                           acting_user=cast.a.postmaster),
}


@pytest.mark.parametrize("kind", list(CREATE))
@pytest.mark.parametrize("existing", list(EXISTING))
def test_a_name_taken_by_any_kind_is_refused(cast, existing, kind):
    EXISTING[existing](cast.a.domain)

    refused("unique", lambda: CREATE[kind](cast, "Taken"))


@pytest.mark.parametrize("kind", list(CREATE))
def test_the_same_name_in_another_domain_is_free(cast, kind):
    for make in EXISTING.values():
        make(cast.b.domain)

    created, _event = one_change(cast.a.domain, f"{kind}.create", lambda: CREATE[kind](cast, "taken"))

    assert created.domain == cast.a.domain


@pytest.mark.parametrize("kind", ["forward", "robot", "list"])
@pytest.mark.parametrize(
    ("name", "code"),
    [("", "required"), (" ", "required"), ("a b", "invalid"), ("a..b", "invalid"), (".a", "invalid"),
     ("a.", "invalid"), ("é", "invalid"), ("a/b", "invalid"), ("a" * 65, "max_length")],
)
def test_forward_robot_and_list_names_follow_the_local_part_syntax(cast, kind, name, code):
    refused(code, lambda: CREATE[kind](cast, name))


# --- the plan's limits of forwards, robots and lists ------------------------------------------

LIMITS = {"forward": ("max_forwards", make_forward), "robot": ("max_robots", make_robot),
          "list": ("max_lists", make_list)}


@pytest.mark.parametrize("kind", list(LIMITS))
def test_the_plans_limit_is_checked_before_the_name(cast, kind):
    field, make = LIMITS[kind]
    set_plan(cast.a.plan, **{field: 2})
    make(cast.a.domain, "one")
    make(DomainFactory(pack=cast.a.pack, name="alpha-second.test"), "two")  # every domain of the pack counts
    make(cast.b.domain, "other")  # never another pack's

    refused("limit", lambda: CREATE[kind](cast, "not a valid name"))


@pytest.mark.parametrize("kind", list(LIMITS))
def test_the_plans_limit_may_be_reached_exactly(cast, kind):
    field, make = LIMITS[kind]
    set_plan(cast.a.plan, **{field: 2})
    make(cast.a.domain, "one")
    make(cast.b.domain, "other")

    one_change(cast.a.domain, f"{kind}.create", lambda: CREATE[kind](cast, "two"))


@pytest.mark.parametrize("kind", list(LIMITS))
def test_a_plan_limit_of_zero_allows_none_and_minus_one_any(cast, kind):
    field, make = LIMITS[kind]
    set_plan(cast.a.plan, **{field: 0})
    refused("limit", lambda: CREATE[kind](cast, "first"))

    set_plan(cast.a.plan, **{field: UNLIMITED})
    for n in range(12):
        make(cast.a.domain, f"n{n}")
    one_change(cast.a.domain, f"{kind}.create", lambda: CREATE[kind](cast, "first"))


# --- mailbox_create, mailbox_set_password, mailbox_set_quota ----------------------------------


def test_mailbox_create_stamps_the_new_revision_and_writes_one_audit_row(cast, a):
    mailbox, event = one_change(a.domain, "mailbox.create", lambda: mailbox_create(
        domain=a.domain, local_part="New.Box", password=GOOD_PASSWORD, real_name="  New Box ", quota_mb=300,
        is_admin=True, acting_user=cast.support,
    ))

    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert (stored.local_part, stored.real_name, stored.quota_mb, stored.is_admin) == ("new.box", "New Box", 300, True)
    assert stored.revision == revision(a.domain)
    assert verify_password(GOOD_PASSWORD, stored.password_hash)
    assert (event.target_type, event.target_id, event.actor) == ("mail.mailbox", str(mailbox.pk), cast.support)


@pytest.mark.parametrize(
    ("password", "code"),
    [("", "required"), ("Ab1-xyz", "password_too_short"), ("8234567890123", "password_entirely_numeric"),
     ("password1234", "password_too_common")],
)
def test_mailbox_set_password_refusals_write_nothing(cast, password, code):
    refused(code, lambda: mailbox_set_password(mailbox=cast.mailbox_user, password=password,
                                               acting_user=cast.a.postmaster))
    assert verify_password(MAILBOX_PASSWORD, Mailbox.objects.get(pk=cast.mailbox_user.pk).password_hash)


def test_mailbox_set_password_stamps_the_new_revision(cast, a):
    one_change(a.domain, "mailbox.set_password", lambda: mailbox_set_password(
        mailbox=cast.mailbox_user, password=GOOD_PASSWORD, acting_user=cast.mailbox_user))

    assert Mailbox.objects.get(pk=cast.mailbox_user.pk).revision == revision(a.domain)


def test_mailbox_set_quota_refusals_write_nothing(cast, a):
    set_plan(a.plan, total_quota_mb=1000)
    Mailbox.objects.filter(domain=a.domain).update(quota_mb=100)

    refused("quota", lambda: mailbox_set_quota(mailbox=cast.mailbox_user, quota_mb=901, acting_user=cast.operator))
    refused("quota", lambda: mailbox_set_quota(mailbox=cast.mailbox_user, quota_mb=0, acting_user=cast.operator))


def test_mailbox_set_quota_stamps_the_new_revision(cast, a):
    set_plan(a.plan, total_quota_mb=1000)
    Mailbox.objects.filter(domain=a.domain).update(quota_mb=100)

    _result, event = one_change(a.domain, "mailbox.set_quota", lambda: mailbox_set_quota(
        mailbox=cast.mailbox_user, quota_mb=900, acting_user=cast.operator))

    stored = Mailbox.objects.get(pk=cast.mailbox_user.pk)
    assert (stored.quota_mb, stored.revision) == (900, revision(a.domain))
    # before: the value of the object the caller passed (this one was loaded before the update above)
    assert event.detail == {"quota_mb": 900, "changes": {"quota_mb": [0, 900]}}


# --- mailbox_set_routing and forward destinations ---------------------------------------------


def set_routing(cast, routing: str, forward_to: list[str], keep_copy: bool = False) -> None:
    mailbox_set_routing(mailbox=cast.mailbox_user, routing=routing, forward_to=forward_to, keep_copy=keep_copy,
                        acting_user=cast.a.postmaster)


def test_mailbox_set_routing_refuses_an_unknown_routing(cast):
    refused("invalid", lambda: set_routing(cast, "elsewhere", ["x@remote.test"]))


@pytest.mark.parametrize(
    ("destinations", "code"),
    [
        ([], "required"),
        (["", "   "], "required"),
        (["nobody"], "destination"),  # a bare name is a mailbox of this domain, which must exist
        (["bravo-user"], "destination"),
        (["not valid"], "destination"),
        (["x@"], "destination"),
        (["x@remote"], "destination"),
        (["a@b@remote.test"], "destination"),
        ([f"d{n}@remote.test" for n in range(MAX_DESTINATIONS + 1)], "max_destinations"),
    ],
)
def test_forward_destinations_are_refused(cast, a, destinations, code):
    MailboxFactory(domain=cast.b.domain, local_part="bravo-user")
    forward = make_forward(a.domain, "sales")

    refused(code, lambda: set_routing(cast, Routing.FORWARD, destinations))
    refused(code, lambda: forward_create(domain=a.domain, local_part="new", destinations=destinations,
                                         acting_user=cast.a.postmaster))
    refused(code, lambda: forward_set_destinations(forward=forward, destinations=destinations,
                                                   acting_user=cast.a.postmaster))


def test_an_address_cannot_forward_to_itself(cast, a):
    """The basic loop and chain; tests/test_loops.py covers every other way round."""
    refused("loop", lambda: set_routing(cast, Routing.FORWARD, ["AlphaUser"]))
    refused("loop", lambda: set_routing(cast, Routing.FORWARD, ["x@remote.test", "alphauser@alpha-domain.test"]))
    refused("loop", lambda: forward_create(domain=a.domain, local_part="info", destinations=["info@alpha-domain.test"],
                                           acting_user=cast.a.postmaster))


def test_a_forward_of_the_domain_is_no_destination(cast, a):
    make_forward(a.domain, "sales")

    refused("chain", lambda: set_routing(cast, Routing.FORWARD, ["Sales@Alpha-Domain.test"]))
    refused("chain", lambda: forward_create(domain=a.domain, local_part="info",
                                            destinations=["sales@alpha-domain.test"], acting_user=cast.a.postmaster))


def test_a_mailbox_another_mailbox_forwards_to_cannot_start_forwarding(cast, a):
    set_routing(cast, Routing.FORWARD, ["postmaster"])

    refused("pointed_at", lambda: mailbox_set_routing(mailbox=a.postmaster, routing=Routing.FORWARD,
                                                      forward_to=["x@remote.test"], acting_user=a.postmaster))


def test_under_a_catchall_that_sends_on_only_the_unknown_names_are_chains(cast, a):
    second = DomainFactory(pack=a.pack, name="alpha-second.test")  # the customer's own: another's is opaque
    MailboxFactory(domain=second, local_part="postmaster")
    CatchAll.objects.create(domain=second, mode=CatchAllMode.REMOTE, target="all@remote.test")

    refused("chain", lambda: set_routing(cast, Routing.FORWARD, ["nobody@alpha-second.test"]))
    one_change(a.domain, "mailbox.set_routing",
               lambda: set_routing(cast, Routing.FORWARD, ["postmaster@alpha-second.test"]))


def test_forward_destinations_are_normalised_and_deduplicated(cast, a):
    make_forward(a.domain, "sales")  # a remote address of the same name is no chain
    destinations = [f"d{n}@remote.test" for n in range(MAX_DESTINATIONS - 3)]
    given = [" Postmaster ", "X@Remote.TEST", "x@remote.test", "sales@remote.test", "", *destinations]

    _result, event = one_change(a.domain, "mailbox.set_routing",
                                lambda: set_routing(cast, Routing.FORWARD, given, keep_copy=True))

    stored = Mailbox.objects.get(pk=cast.mailbox_user.pk)
    assert stored.forward_to == ["postmaster@alpha-domain.test", "x@remote.test", "sales@remote.test", *destinations]
    assert (stored.routing, stored.keep_copy, stored.revision) == (Routing.FORWARD, True, revision(a.domain))
    assert event.detail == {"routing": "forward", "changes": {
        "routing": ["standard", "forward"], "forward_to": [[], stored.forward_to], "keep_copy": [False, True]}}


@pytest.mark.parametrize("routing", [Routing.STANDARD, Routing.DELETE])
def test_a_routing_other_than_forward_keeps_no_destination_and_no_copy(cast, a, routing):
    Mailbox.objects.filter(pk=cast.mailbox_user.pk).update(routing=Routing.FORWARD, forward_to=["x@remote.test"],
                                                            keep_copy=True)
    cast.mailbox_user.refresh_from_db()

    one_change(a.domain, "mailbox.set_routing", lambda: set_routing(cast, routing, ["not valid"], keep_copy=True))

    stored = Mailbox.objects.get(pk=cast.mailbox_user.pk)
    assert (stored.routing, stored.forward_to, stored.keep_copy) == (routing, [], False)


def test_forward_create_stamps_the_new_revision_and_writes_one_audit_row(cast, a):
    forward, event = one_change(a.domain, "forward.create", lambda: forward_create(
        domain=a.domain, local_part="Sales", destinations=["alphauser", "Y@Remote.test"], acting_user=cast.support))

    stored = Forward.objects.get(pk=forward.pk)
    assert (stored.local_part, stored.destinations) == ("sales", ["alphauser@alpha-domain.test", "y@remote.test"])
    assert stored.revision == revision(a.domain)
    assert (event.target_type, event.target_id, event.actor) == ("mail.forward", str(forward.pk), cast.support)


def test_forward_set_destinations_stamps_the_new_revision(cast, a):
    forward = make_forward(a.domain, "sales")

    one_change(a.domain, "forward.change", lambda: forward_set_destinations(
        forward=forward, destinations=["z@remote.test", "postmaster"], acting_user=cast.a.postmaster))

    stored = Forward.objects.get(pk=forward.pk)
    assert stored.destinations == ["z@remote.test", "postmaster@alpha-domain.test"]
    assert stored.revision == revision(a.domain)


def test_forward_delete_removes_the_row_and_writes_one_audit_row(cast, a):
    forward = make_forward(a.domain, "sales")

    _result, event = one_change(a.domain, "forward.delete", lambda: forward_delete(
        forward=forward, acting_user=cast.a.postmaster))

    assert not Forward.objects.filter(pk=forward.pk).exists()
    assert event.target_repr == "sales@alpha-domain.test"


# --- text that goes into Sieve scripts and headers: clean_text --------------------------------

CONTROL = ["\x00", "\x07", "\x0b", "\x0c", "\r", "\x1b", "\x1f", "\x7f", "\x85", "\x9f"]


def set_vacation(cast, **kwargs: Any) -> None:
    values = {"enabled": True, "subject": "Away", "message": "Back on Monday.", **kwargs}
    mailbox_set_vacation(mailbox=cast.mailbox_user, acting_user=cast.mailbox_user, **values)


def make_robot_with(cast, **kwargs: Any) -> Robot:
    values = {"subject": "Thanks", "message": "We read every mail.", **kwargs}
    return robot_create(domain=cast.a.domain, local_part="robot", acting_user=cast.a.postmaster, **values)


def make_list_with(cast, **kwargs: Any) -> MailingList:
    return list_create(domain=cast.a.domain, name="news", owner="owner@remote.test", acting_user=cast.a.postmaster,
                       **kwargs)


TEXT_FIELDS = {  # field: (call with that field, its maximum length, single line)
    "vacation subject": (lambda cast, text: set_vacation(cast, subject=text), 200, True),
    "vacation message": (lambda cast, text: set_vacation(cast, message=text), 4000, False),
    "robot subject": (lambda cast, text: make_robot_with(cast, subject=text), 200, True),
    "robot message": (lambda cast, text: make_robot_with(cast, message=text), 4000, False),
    "list prefix": (lambda cast, text: make_list_with(cast, prefix=text), 64, True),
    "list trailer": (lambda cast, text: make_list_with(cast, trailer=text), 2000, False),
}


@pytest.mark.parametrize("char", CONTROL, ids=[f"{ord(c):#04x}" for c in CONTROL])
@pytest.mark.parametrize("field", list(TEXT_FIELDS))
def test_control_characters_are_refused_in_every_text(cast, field, char):
    call, _max, _single = TEXT_FIELDS[field]

    refused("invalid", lambda: call(cast, f"one{char}two"))


@pytest.mark.parametrize("field", [f for f, (_c, _m, single) in TEXT_FIELDS.items() if single])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_a_header_text_is_one_line(cast, field, newline):
    call, _max, _single = TEXT_FIELDS[field]

    refused("invalid", lambda: call(cast, f"one{newline}two"))


@pytest.mark.parametrize("field", list(TEXT_FIELDS))
def test_a_text_may_be_as_long_as_its_maximum_not_longer(cast, field):
    call, maximum, _single = TEXT_FIELDS[field]

    refused("max_length", lambda: call(cast, "x" * (maximum + 1)))
    call(cast, " " + "x" * maximum + "\n")  # surrounding blanks are not counted


def test_message_texts_keep_lines_and_tabs_with_crlf_made_lf(cast, a):
    text = "  Line one\r\n\tLine two\nLine three  "

    set_vacation(cast, subject="Tab\tok", message=text)
    robot = make_robot_with(cast, subject="Tab\tok", message=text)
    mailing_list = make_list_with(cast, trailer=text)

    stored = Mailbox.objects.get(pk=cast.mailbox_user.pk)
    expected = "Line one\n\tLine two\nLine three"
    assert (stored.vacation_subject, stored.vacation_message) == ("Tab\tok", expected)
    assert (robot.subject, robot.message) == ("Tab\tok", expected)
    assert MailingList.objects.get(pk=mailing_list.pk).trailer == expected


# --- mailbox_set_vacation ---------------------------------------------------------------------

DAY = datetime.date(2026, 12, 24)


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"message": ""}, "required"),
        ({"message": "  \r\n "}, "required"),
        ({"start": DAY, "end": DAY - datetime.timedelta(days=1)}, "dates"),
        ({"days": 0}, "days"),
        ({"days": 366}, "days"),
        ({"days": -1}, "days"),
    ],
)
def test_vacation_refusals_write_nothing(cast, values, code):
    refused(code, lambda: set_vacation(cast, **values))


@pytest.mark.parametrize("days", [1, 365])
def test_vacation_is_stored_with_its_dates_and_days(cast, a, days):
    _result, event = one_change(a.domain, "mailbox.set_vacation", lambda: set_vacation(
        cast, subject=" Away ", message="Back soon.", start=DAY, end=DAY, days=days))

    stored = Mailbox.objects.get(pk=cast.mailbox_user.pk)
    assert (stored.vacation_enabled, stored.vacation_subject, stored.vacation_message) == (True, "Away", "Back soon.")
    assert (stored.vacation_start, stored.vacation_end, stored.vacation_days) == (DAY, DAY, days)
    assert stored.revision == revision(a.domain)
    assert event.detail["enabled"] is True
    assert {name: event.detail["changes"][name] for name in ("vacation_enabled", "vacation_start")} == {
        "vacation_enabled": [False, True], "vacation_start": [None, DAY.isoformat()]}


def test_a_disabled_vacation_needs_no_message(cast, a):
    set_vacation(cast)  # on, so that turning it off is a change (a call that changes nothing is not audited)
    _result, event = one_change(a.domain, "mailbox.set_vacation",
                                lambda: set_vacation(cast, enabled=False, message="", subject=""))

    assert Mailbox.objects.get(pk=cast.mailbox_user.pk).vacation_enabled is False
    assert event.detail["enabled"] is False
    assert event.detail["changes"]["vacation_enabled"] == [True, False]


def test_a_vacation_with_only_a_start_or_an_end_is_kept(cast):
    set_vacation(cast, start=DAY)
    set_vacation(cast, end=DAY)

    assert Mailbox.objects.get(pk=cast.mailbox_user.pk).vacation_end == DAY


# --- mailbox_set_access -----------------------------------------------------------------------


def test_mailbox_set_access_changes_only_what_is_given(cast, a):
    _result, event = one_change(a.domain, "mailbox.set_access", lambda: mailbox_set_access(
        mailbox=cast.mailbox_user, allow_imap=False, acting_user=cast.a.postmaster))

    stored = Mailbox.objects.get(pk=cast.mailbox_user.pk)
    assert (stored.enabled, stored.allow_pop3, stored.allow_imap, stored.allow_smtp) == (True, True, False, True)
    assert stored.revision == revision(a.domain)
    assert event.detail == {"allow_imap": False, "changes": {"allow_imap": [True, False]}}


def test_mailbox_set_access_disables_and_enables_again(cast, a):
    mailbox_set_access(mailbox=cast.mailbox_user, enabled=False, allow_smtp=False, acting_user=cast.a.postmaster)
    assert Mailbox.objects.filter(pk=cast.mailbox_user.pk, enabled=False, allow_smtp=False).exists()

    one_change(a.domain, "mailbox.set_access", lambda: mailbox_set_access(
        mailbox=cast.mailbox_user, enabled=True, acting_user=cast.a.postmaster))

    assert Mailbox.objects.filter(pk=cast.mailbox_user.pk, enabled=True, allow_smtp=False).exists()


# --- mailbox_delete ---------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["postmaster", "support", "operator"])
def test_the_postmaster_cannot_be_deleted(cast, actor):
    seat = cast.a.postmaster if actor == "postmaster" else getattr(cast, actor)

    refused("postmaster", lambda: mailbox_delete(mailbox=cast.a.postmaster, acting_user=seat))


def test_a_mailbox_cannot_delete_itself(cast):
    admin = MailboxFactory(domain=cast.a.domain, local_part="second-admin", is_admin=True)

    refused("self", lambda: mailbox_delete(mailbox=admin, acting_user=admin))


def test_a_user_whose_id_is_the_mailboxs_may_delete_it(cast, a):
    """`self` is a mailbox deleting itself, never a staff user that happens to have the same id."""
    mailbox = MailboxFactory(domain=a.domain, local_part="same-id", pk=9001)
    staff = UserFactory(pk=9001, email="same-id@support.test", is_staff=True, is_superuser=True)

    one_change(a.domain, "mailbox.delete", lambda: mailbox_delete(mailbox=mailbox, acting_user=staff))

    assert not Mailbox.objects.filter(pk=9001).exists()


def test_mailbox_delete_removes_the_row_and_writes_one_audit_row(cast, a):
    _result, event = one_change(a.domain, "mailbox.delete", lambda: mailbox_delete(
        mailbox=cast.mailbox_user, acting_user=cast.a.postmaster))

    assert not Mailbox.objects.filter(pk=cast.mailbox_user.pk).exists()
    assert not Forward.objects.filter(domain=a.domain).exists()
    assert event.detail == {"redirect_to": ""}


def test_mailbox_delete_with_redirect_keeps_the_address_as_a_forward(cast, a):
    before, last = revision(a.domain), last_event_pk()

    mailbox_delete(mailbox=cast.mailbox_user, redirect_to="Postmaster", acting_user=cast.a.postmaster)

    forward = Forward.objects.get(domain=a.domain, local_part="alphauser")
    assert forward.destinations == ["postmaster@alpha-domain.test"]
    assert forward.revision == revision(a.domain) == before + 1
    events = AuditEvent.objects.filter(pk__gt=last).order_by("pk")
    assert [e.action for e in events] == ["mailbox.delete", "forward.create"]
    assert events[1].target_id == str(forward.pk)


@pytest.mark.parametrize(("redirect_to", "code"), [("nobody", "destination"), ("not valid", "destination"),
                                                   ("x@remote", "destination")])
def test_mailbox_delete_with_a_bad_redirect_deletes_nothing(cast, redirect_to, code):
    refused(code, lambda: mailbox_delete(mailbox=cast.mailbox_user, redirect_to=redirect_to,
                                         acting_user=cast.a.postmaster))


def test_mailbox_delete_with_redirect_counts_the_forward_limit(cast, a):
    set_plan(a.plan, max_forwards=1)
    make_forward(DomainFactory(pack=a.pack, name="alpha-second.test"), "sales")

    refused("limit", lambda: mailbox_delete(mailbox=cast.mailbox_user, redirect_to="x@remote.test",
                                            acting_user=cast.a.postmaster))

    one_change(a.domain, "mailbox.delete", lambda: mailbox_delete(  # without the redirect: no forward needed
        mailbox=cast.mailbox_user, acting_user=cast.a.postmaster))


# --- robot_create, robot_delete ---------------------------------------------------------------


def test_robot_create_stamps_the_new_revision_and_writes_one_audit_row(cast, a):
    robot, event = one_change(a.domain, "robot.create", lambda: robot_create(
        domain=a.domain, local_part="Info", subject=" Thanks ", message="We answer soon.", copy_to=" Copy@Remote.TEST ",
        acting_user=cast.a.postmaster))

    stored = Robot.objects.get(pk=robot.pk)
    assert (stored.local_part, stored.subject, stored.message) == ("info", "Thanks", "We answer soon.")
    assert (stored.copy_to, stored.revision) == ("copy@remote.test", revision(a.domain))
    assert (event.target_type, event.target_id) == ("mail.robot", str(robot.pk))


@pytest.mark.parametrize("copy_to", ["", "   "])
def test_a_robot_without_copy(cast, copy_to):
    assert make_robot_with(cast, copy_to=copy_to).copy_to == ""


@pytest.mark.parametrize("copy_to", ["not valid", "x@", "x@remote", "alphauser"])
def test_a_robots_copy_goes_to_a_full_address(cast, copy_to):
    refused("destination", lambda: make_robot_with(cast, copy_to=copy_to))


def test_robot_delete_removes_the_row_and_writes_one_audit_row(cast, a):
    robot = make_robot(a.domain, "info")

    one_change(a.domain, "robot.delete", lambda: robot_delete(robot=robot, acting_user=cast.a.postmaster))

    assert not Robot.objects.filter(pk=robot.pk).exists()


# --- catchall_set -----------------------------------------------------------------------------


def set_catchall(cast, mode: str, target: str = "") -> CatchAll:
    return catchall_set(domain=cast.a.domain, mode=mode, target=target, acting_user=cast.a.postmaster)


@pytest.mark.parametrize(
    ("mode", "target", "code"),
    [
        ("elsewhere", "", "invalid"),
        ("", "", "invalid"),
        (CatchAllMode.MAILBOX, "nobody", "target"),
        (CatchAllMode.MAILBOX, "", "required"),
        (CatchAllMode.MAILBOX, "not valid", "invalid"),
        (CatchAllMode.MAILBOX, "bravo-user", "target"),  # a mailbox of another domain
        (CatchAllMode.REMOTE, "", "invalid"),
        (CatchAllMode.REMOTE, "x@remote", "invalid"),
        (CatchAllMode.REMOTE, "remote.test", "invalid"),
        (CatchAllMode.DOMAIN, "", "required"),
        (CatchAllMode.DOMAIN, "localhost", "invalid"),
        (CatchAllMode.DOMAIN, "ALPHA-Domain.test", "target"),  # its own domain
    ],
)
def test_catchall_refusals_write_nothing(cast, mode, target, code):
    MailboxFactory(domain=cast.b.domain, local_part="bravo-user")
    set_catchall(cast, CatchAllMode.DELETE)

    refused(code, lambda: set_catchall(cast, mode, target))


@pytest.mark.parametrize(
    ("mode", "target", "stored"),
    [
        (CatchAllMode.MAILBOX, " AlphaUser ", "alphauser"),
        (CatchAllMode.MAILBOX, "alphauser@alpha-domain.test", "alphauser"),
        (CatchAllMode.REMOTE, " All@Remote.TEST ", "all@remote.test"),
        (CatchAllMode.DOMAIN, "Other-Domain.TEST", "other-domain.test"),
        (CatchAllMode.BOUNCE, "ignored@remote.test", ""),
        (CatchAllMode.DELETE, "ignored", ""),
    ],
)
def test_catchall_modes_and_their_targets(cast, a, mode, target, stored):
    catchall, event = one_change(a.domain, "catchall.set", lambda: set_catchall(cast, mode, target))

    row = CatchAll.objects.get(domain=a.domain)
    assert (row.pk, row.mode, row.target, row.revision) == (catchall.pk, mode, stored, revision(a.domain))
    assert event.detail == {"mode": mode, "catchall_target": stored}


def test_setting_the_catchall_again_keeps_one_row(cast, a):
    set_catchall(cast, CatchAllMode.REMOTE, "all@remote.test")

    one_change(a.domain, "catchall.set", lambda: set_catchall(cast, CatchAllMode.BOUNCE))

    assert list(CatchAll.objects.filter(domain=a.domain).values_list("mode", "target")) == [("bounce", "")]


# --- list_create ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"posting": "everyone"}, "invalid"),
        ({"reply_to": "nobody"}, "invalid"),
        ({"owner": "not valid"}, "invalid"),
        ({"owner": ""}, "invalid"),
        ({"reply_to": ReplyTo.ADDRESS, "reply_to_address": ""}, "invalid"),
        ({"reply_to": ReplyTo.ADDRESS, "reply_to_address": "x@remote"}, "invalid"),
    ],
)
def test_list_create_refusals_write_nothing(cast, values, code):
    values = {"owner": "owner@remote.test", **values}

    refused(code, lambda: list_create(domain=cast.a.domain, name="news", acting_user=cast.a.postmaster, **values))


def test_list_create_refuses_an_unknown_option_and_writes_nothing(cast):
    before = everything()

    with pytest.raises(TypeError, match="moderated_by_robots"):
        make_list_with(cast, moderated_by_robots=True)

    assert everything() == before


def test_list_create_stamps_the_new_revision_and_subscribes_its_owner(cast, a):
    mailing_list, event = one_change(a.domain, "list.create", lambda: list_create(
        domain=a.domain, name="News", owner=" Owner@Remote.TEST ", prefix=" [news] ", reply_to=ReplyTo.LIST,
        reply_to_address="ignored@remote.test", digest=1, private=True, archive=0, acting_user=cast.support))

    stored = MailingList.objects.get(pk=mailing_list.pk)
    assert (stored.name, stored.owner, stored.prefix) == ("news", "owner@remote.test", "[news]")
    assert (stored.reply_to, stored.reply_to_address, stored.posting) == (ReplyTo.LIST, "", Posting.SUBSCRIBERS)
    assert (stored.digest, stored.private, stored.archive) == (True, True, False)
    assert stored.revision == revision(a.domain)
    assert list(stored.members.values_list("address", "kind")) == [("owner@remote.test", MemberKind.SUBSCRIBER)]
    assert (event.target_type, event.target_id) == ("lists.mailinglist", str(mailing_list.pk))


def test_a_reply_address_is_kept_when_replies_go_to_it(cast):
    mailing_list = make_list_with(cast, reply_to=ReplyTo.ADDRESS, reply_to_address="Replies@Remote.test")

    assert MailingList.objects.get(pk=mailing_list.pk).reply_to_address == "replies@remote.test"


@pytest.mark.parametrize("posting", list(Posting.values))
def test_the_owner_moderates_a_moderated_list(cast, posting):
    mailing_list = make_list_with(cast, posting=posting)

    kinds = set(ListMember.objects.filter(mailing_list=mailing_list, address="owner@remote.test")
                .values_list("kind", flat=True))
    moderated = posting in (Posting.SUBSCRIBERS_MODERATED, Posting.MODERATORS, Posting.MODERATED)
    assert kinds == ({"subscriber", "moderator"} if moderated else {"subscriber"})


# --- list members, list_delete ----------------------------------------------------------------


@pytest.mark.parametrize(("address", "kind", "code"), [("not valid", MemberKind.SUBSCRIBER, "invalid"),
                                                       ("", MemberKind.SUBSCRIBER, "invalid"),
                                                       ("x@remote.test", "owner", "invalid")])
def test_list_member_add_refusals_write_nothing(cast, address, kind, code):
    mailing_list = make_list(cast.a.domain, "news")

    refused(code, lambda: list_member_add(mailing_list=mailing_list, address=address, kind=kind,
                                          acting_user=cast.a.postmaster))


@pytest.mark.parametrize("kind", list(MemberKind.values))
def test_list_member_add_stamps_the_new_revision(cast, a, kind):
    mailing_list = make_list(a.domain, "news")

    member, event = one_change(a.domain, "list.member_add", lambda: list_member_add(
        mailing_list=mailing_list, address=" Reader@Remote.TEST ", kind=kind, acting_user=cast.a.postmaster))

    assert (member.address, member.kind) == ("reader@remote.test", kind)
    assert ListMember.objects.filter(mailing_list=mailing_list).count() == 1
    assert MailingList.objects.get(pk=mailing_list.pk).revision == revision(a.domain)
    assert event.detail == {"address": "reader@remote.test", "kind": kind}


def test_list_member_remove_removes_only_that_membership(cast, a):
    mailing_list = make_list(a.domain, "news")
    for kind in (MemberKind.SUBSCRIBER, MemberKind.MODERATOR):
        ListMember.objects.create(mailing_list=mailing_list, address="reader@remote.test", kind=kind)

    one_change(a.domain, "list.member_remove", lambda: list_member_remove(
        mailing_list=mailing_list, address=" Reader@Remote.test ", kind=MemberKind.MODERATOR,
        acting_user=cast.a.postmaster))

    assert list(mailing_list.members.values_list("kind", flat=True)) == [MemberKind.SUBSCRIBER]
    assert MailingList.objects.get(pk=mailing_list.pk).revision == revision(a.domain)


def test_list_delete_removes_the_list_and_its_members(cast, a):
    mailing_list = make_list_with(cast)

    one_change(a.domain, "list.delete", lambda: list_delete(mailing_list=mailing_list, acting_user=cast.a.postmaster))

    assert not MailingList.objects.filter(pk=mailing_list.pk).exists()
    assert not ListMember.objects.filter(mailing_list_id=mailing_list.pk).exists()


# --- the tenant tree: customers, packs, domains, moves ----------------------------------------


def test_refused_customer_create_writes_nothing(cast):
    cast.a.reseller.max_customers = 1
    cast.a.reseller.save()

    refused("limit", lambda: customer_create(reseller=cast.a.reseller, name="Second",
                                             acting_user=cast.a.reseller_staff))


def test_a_customer_of_the_operator_has_no_pool_limit(cast):
    customer = customer_create(reseller=None, name="Direct", acting_user=cast.operator)

    assert customer.reseller is None


@pytest.mark.parametrize("case", ["other reseller's plan", "operator's plan", "reseller's plan, direct customer"])
def test_pack_create_refuses_a_plan_not_sold_to_the_customer(cast, case):
    direct = Customer.objects.create(name="Direct")
    customer, plan = {
        "other reseller's plan": (cast.a.customer, cast.b.plan),
        "operator's plan": (cast.a.customer, PlanFactory(reseller=None, name="operator-plan")),
        "reseller's plan, direct customer": (direct, cast.a.plan),
    }[case]

    refused("plan", lambda: pack_create(customer=customer, plan=plan, mail_host=cast.host, acting_user=cast.operator))


def test_pack_create_refusals_write_no_audit_row(cast):
    retired = MailHostFactory(name="mx-retired", active=False)

    refused("host", lambda: pack_create(customer=cast.a.customer, plan=cast.a.plan, mail_host=retired,
                                        acting_user=cast.operator))


def test_a_direct_customer_takes_an_operator_plan(cast):
    direct = Customer.objects.create(name="Direct")
    plan = PlanFactory(reseller=None, name="operator-plan")

    pack = pack_create(customer=direct, plan=plan, mail_host=cast.host, acting_user=cast.operator)

    assert (pack.customer, pack.plan) == (direct, plan)


def test_domain_create_refusals_write_nothing(cast, a):
    refused("limit", lambda: domain_create(pack=a.pack, name="alpha-two.test", acting_user=cast.operator))
    set_plan(a.plan, max_domains=5)
    refused("unique", lambda: domain_create(pack=a.pack, name="Bravo-Domain.test", acting_user=cast.operator))
    refused("invalid", lambda: domain_create(pack=a.pack, name="not a domain", acting_user=cast.operator))


def test_domain_create_writes_its_first_revision_and_one_audit_row(cast, a):
    set_plan(a.plan, max_domains=2)
    before = AuditEvent.objects.count()

    domain = domain_create(pack=a.pack, name="alpha-two.test", acting_user=cast.operator)

    assert revision(domain) == 1
    assert list(AuditEvent.objects.filter(pk__gt=before).values_list("action", flat=True)) == ["domain.create"]


def test_a_domain_created_again_continues_the_revisions_of_its_removed_self(cast, a):
    set_plan(a.plan, max_domains=2)
    RetiredDomain.objects.create(name="alpha-two.test", host=cast.host, revision=41)

    domain = domain_create(pack=a.pack, name="alpha-two.test", acting_user=cast.operator)

    assert revision(domain) == 42


def test_domain_delete_retires_the_domain_on_its_host(cast, a):
    Domain.objects.filter(pk=a.domain.pk).update(revision=7)
    RetiredDomain.objects.create(name=a.domain.name, host=cast.host, revision=3, confirmed=True, error="old")
    before = AuditEvent.objects.count()

    domain_delete(domain=a.domain, acting_user=cast.support)

    assert not Domain.objects.filter(pk=a.domain.pk).exists()
    assert not Mailbox.objects.filter(domain_id=a.domain.pk).exists()
    retired = RetiredDomain.objects.get(name=a.domain.name, host=cast.host)
    assert (retired.revision, retired.confirmed, retired.error) == (8, False, "")
    events = AuditEvent.objects.filter(pk__gt=before)
    assert [(e.action, e.target_id) for e in events] == [("domain.delete", str(a.domain.pk))]


def test_pack_move_to_an_inactive_host_writes_nothing(cast, a):
    retired = MailHostFactory(name="mx-retired", active=False)

    refused("host", lambda: pack_move(pack=a.pack, mail_host=retired, acting_user=cast.operator))


def test_pack_move_to_its_own_host_changes_nothing(cast, a):
    before = everything()

    pack_move(pack=a.pack, mail_host=cast.host, acting_user=cast.operator)

    assert everything() == before


def test_pack_move_bumps_every_domain_and_writes_one_audit_row(cast, a):
    set_plan(a.plan, max_domains=2)
    second = DomainFactory(pack=a.pack, name="alpha-second.test")
    new_host = MailHostFactory(name="mx2")
    revisions = {d.pk: revision(d) for d in (a.domain, second, cast.b.domain)}

    _result, event = one_change(a.domain, "pack.move", lambda: pack_move(
        pack=a.pack, mail_host=new_host, acting_user=cast.operator))

    assert Pack.objects.get(pk=a.pack.pk).mail_host == new_host
    assert revision(second) == revisions[second.pk] + 1
    assert revision(cast.b.domain) == revisions[cast.b.domain.pk]
    assert MailHost.objects.get(pk=cast.host.pk).active
    assert (event.detail["old_host"], event.detail["new_host"]) == ("mx1", "mx2")


# --- the admin's own rules (what bin/mutants found no test for) -------------------------------


def admin_form_data(client: Any, path: str, **changes: Any) -> dict[str, Any]:
    """What the admin form at `path` posts as shown, with `changes` (split date-times included)."""
    form = client.get(path).context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field.widget, forms.MultiWidget):
            for index, part in enumerate(field.widget.decompress(value)):
                data[f"{name}_{index}"] = "" if part is None else part
        elif isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    data.update(changes)
    return data


def new_events(last: int) -> list[tuple[str, str]]:
    return [(e.action, e.target_id) for e in AuditEvent.objects.filter(pk__gt=last).order_by("pk")]


@pytest.mark.parametrize(("seat", "offered"), [("operator", True), ("support", True), ("reseller_a", False)])
def test_only_support_and_the_operator_may_send_a_domain_again(cast, seat, offered):
    response = client_for(cast, seat).get(reverse("admin:hosting_domain_changelist"))

    assert response.status_code == 200
    assert ('value="retry_provisioning"' in response.content.decode()) is offered


def test_sending_domains_again_writes_one_audit_row_each(cast, monkeypatch, django_capture_on_commit_callbacks):
    pushed: list[int] = []
    monkeypatch.setattr("provisioning.revisions.enqueue_push", pushed.append)
    last = last_event_pk()

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(cast, "support").post(reverse("admin:hosting_domain_changelist"), {
            "action": "retry_provisioning", "_selected_action": [cast.a.domain.pk, cast.b.domain.pk],
        })

    assert response.status_code == 302
    assert sorted(new_events(last)) == sorted([("domain.retry", str(cast.a.domain.pk)),
                                               ("domain.retry", str(cast.b.domain.pk))])
    assert sorted(pushed) == sorted([cast.a.domain.pk, cast.b.domain.pk])


def test_mail_hosts_added_changed_and_deleted_in_the_admin_are_audited(cast):
    client = client_for(cast, "operator")
    last = last_event_pk()
    add = reverse("admin:hosting_mailhost_add")

    response = client.post(add, admin_form_data(client, add, name="mx7", fqdn="mx7.hosting.test", active="on"))
    assert response.status_code == 302, response.content.decode()[:2000]
    host = MailHost.objects.get(name="mx7")
    change = reverse("admin:hosting_mailhost_change", args=[host.pk])
    response = client.post(change, admin_form_data(client, change, fqdn="seven.hosting.test"))
    assert response.status_code == 302, response.content.decode()[:2000]
    response = client.post(reverse("admin:hosting_mailhost_delete", args=[host.pk]), {"post": "yes"})
    assert response.status_code == 302

    assert new_events(last) == [("mailhost.create", str(host.pk)), ("mailhost.change", str(host.pk)),
                                ("mailhost.delete", str(host.pk))]
    change_event = AuditEvent.objects.get(action="mailhost.change")
    assert change_event.detail == {"via": "admin", "fields": ["fqdn"]}
    assert not MailHost.objects.filter(pk=host.pk).exists()


def test_the_operator_puts_a_user_in_the_support_group(cast):
    group = Group.objects.get(name=SUPPORT_GROUP)
    client = client_for(cast, "operator")
    path = reverse("admin:hosting_user_change", args=[cast.a.customer_user.pk])

    response = client.post(path, admin_form_data(client, path, groups=[group.pk]))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(User.objects.get(pk=cast.a.customer_user.pk).groups.all()) == [group]


def test_the_operator_adds_a_staff_user_to_a_reseller(cast):
    response = client_for(cast, "operator").post(reverse("admin:hosting_user_add"), {
        "email": "new-staff@alpha-reseller.test", "reseller": cast.a.reseller.pk, "is_staff": "on",
        "password1": "A-Good-Passw0rd", "password2": "A-Good-Passw0rd", "usable_password": "true",
    })

    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(email="new-staff@alpha-reseller.test")
    assert (user.reseller, user.customer, user.is_staff) == (cast.a.reseller, None, True)


def test_the_operator_places_a_new_customer_and_plan_under_a_reseller(cast):
    client = client_for(cast, "operator")

    response = client.post(reverse("admin:hosting_customer_add"), {
        "reseller": cast.a.reseller.pk, "name": "Placed SARL", "email": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    add = reverse("admin:hosting_plan_add")
    response = client.post(add, admin_form_data(client, add, reseller=cast.a.reseller.pk, name="Placed plan"))
    assert response.status_code == 302, response.content.decode()[:2000]

    assert Customer.objects.get(name="Placed SARL").reseller == cast.a.reseller
    assert Plan.objects.get(name="Placed plan").reseller == cast.a.reseller


def test_the_admin_shows_a_failed_domain_with_its_error(cast):
    sync = DomainSync.objects.create(domain=cast.a.domain, error="OverflowError", error_revision=5)

    assert sync_state_label(sync, 5) == f"{SyncState.FAILED.label}: OverflowError"
    assert sync_state_label(sync, 6) == str(SyncState.PENDING.label)
    assert sync_state_label(None, 1) == str(SyncState.PENDING.label)
    assert move_label(None) == "-"


def test_a_service_error_naming_fields_of_the_form_shows_on_those_fields():
    form = PlanForm()
    on_fields = ValidationError({"name": "Taken.", NON_FIELD_ERRORS: "Also this."})
    elsewhere = ValidationError({"reseller_pool": "Full."})

    assert _form_error(form, on_fields) is on_fields
    assert _form_error(form, elsewhere) == ["Full."]
    assert _form_error(form, ValidationError("Plain.")) == ["Plain."]


@pytest.mark.parametrize(
    ("account", "status"),
    [("operator", 302), ("support", 302),  # not even shown to a reseller: "does not exist"
     ("staff account of alpha", 403), ("staff user of an alpha customer", 403)],
)
def test_a_reseller_never_edits_a_staff_account(cast, account, status):
    user = {
        "operator": cast.operator, "support": cast.support,
        "staff account of alpha": UserFactory(email="former@alpha-reseller.test", reseller=cast.a.reseller),
        "staff user of an alpha customer": UserFactory(email="promoted@alpha.test", customer=cast.a.customer,
                                                       is_staff=True),
    }[account]
    path = reverse("admin:hosting_user_change", args=[user.pk])

    response = client_for(cast, "reseller_a").post(path, {  # a valid post of the reseller's user form
        "email": "taken-over@alpha.test", "customer": cast.a.customer.pk, "is_active": "on"})

    assert response.status_code == status
    assert User.objects.get(pk=user.pk).email == user.email


def test_the_operator_edits_a_resellers_staff_account(cast):
    client = client_for(cast, "operator")
    path = reverse("admin:hosting_user_change", args=[cast.a.reseller_staff.pk])

    response = client.post(path, admin_form_data(client, path, first_name="Alice"))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(pk=cast.a.reseller_staff.pk).first_name == "Alice"


def test_a_reseller_edits_its_customers_users_with_that_same_post(cast):
    path = reverse("admin:hosting_user_change", args=[cast.a.customer_user.pk])

    response = client_for(cast, "reseller_a").post(path, {
        "email": "renamed@alpha.test", "customer": cast.a.customer.pk, "is_active": "on"})

    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(pk=cast.a.customer_user.pk).email == "renamed@alpha.test"


# --- gaps the mutation check's review found ------------------------------------------------------

@pytest.mark.parametrize("message", ["", "   ", "\n\n"])
def test_a_robot_needs_a_message(cast, message: str) -> None:
    refused("required", lambda: make_robot_with(cast, message=message))


def test_a_robot_without_subject_is_accepted(cast) -> None:
    assert make_robot_with(cast, subject="").subject == ""


def test_the_catchall_mailbox_must_be_of_this_domain(cast) -> None:
    refused("target", lambda: catchall_set(domain=cast.a.domain, mode=CatchAllMode.MAILBOX,
                                           target="alphauser@bravo-domain.test", acting_user=cast.a.postmaster))


def test_the_catchall_mailbox_may_be_named_with_its_own_domain(cast) -> None:
    catchall = catchall_set(domain=cast.a.domain, mode=CatchAllMode.MAILBOX,
                            target="alphauser@alpha-domain.test", acting_user=cast.a.postmaster)
    assert catchall.target == "alphauser"


@pytest.mark.parametrize("days", ["abc", "1.5", 1.5, "", None, True, "٣", "0", 366, -1])
def test_vacation_days_must_be_a_whole_number_from_1_to_365(cast, days: Any) -> None:
    refused("days", lambda: set_vacation(cast, days=days))


@pytest.mark.parametrize(("days", "stored"), [("7", 7), (365, 365), (" 3 ", 3)])
def test_vacation_days_as_typed(cast, days: Any, stored: int) -> None:
    set_vacation(cast, days=days)
    cast.mailbox_user.refresh_from_db()
    assert cast.mailbox_user.vacation_days == stored
