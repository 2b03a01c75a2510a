"""A service call that changes nothing returns early: no revision bump, no push queued on commit,
no audit row. The same call with a real change still does all three."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from hosting.models import AuditEvent, Domain
from hosting.services import customer_update, pack_update, plan_update
from lists.services import list_create, list_member_add, list_member_remove
from mail import services
from mail.models import CatchAllMode, Routing
from provisioning.models import DomainSync
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def mailbox(cast: Cast) -> Any:
    return cast.mailbox_user


def forward(cast: Cast) -> Any:
    return services.forward_create(domain=cast.a.domain, local_part="sales", destinations=["x@remote.test"],
                                   acting_user=cast.operator)


def mailing_list(cast: Cast) -> Any:
    return list_create(domain=cast.a.domain, name="news", owner="owner@remote.test", acting_user=cast.operator)


VACATION = {"enabled": True, "subject": "Away", "message": "Back soon.", "start": date(2026, 12, 1),
            "end": date(2026, 12, 24), "days": 3}

# name: (make the object, the call (object, cast, changed?) -> None); the first call sets the
# state, the second repeats it (a no-op); with changed=True the call changes something.
CALLS: dict[str, tuple[Callable[[Cast], Any], Callable[[Any, Cast, bool], Any]]] = {
    "mailbox_set_routing": (mailbox, lambda mb, cast, changed: services.mailbox_set_routing(
        mailbox=mb, routing=Routing.FORWARD, forward_to=["y@remote.test" if changed else "x@remote.test"],
        keep_copy=True, acting_user=cast.operator)),
    "mailbox_set_vacation": (mailbox, lambda mb, cast, changed: services.mailbox_set_vacation(
        mailbox=mb, acting_user=cast.operator, **{**VACATION, "days": 4 if changed else 3})),
    "mailbox_set_quota": (mailbox, lambda mb, cast, changed: services.mailbox_set_quota(
        mailbox=mb, quota_mb=120 if changed else 100, acting_user=cast.operator)),
    "mailbox_set_access": (mailbox, lambda mb, cast, changed: services.mailbox_set_access(
        mailbox=mb, allow_imap=not changed, acting_user=cast.operator)),
    "mailbox_set_real_name": (mailbox, lambda mb, cast, changed: services.mailbox_set_real_name(
        mailbox=mb, real_name="Other" if changed else "Jane", acting_user=cast.operator)),
    "mailbox_set_admin": (mailbox, lambda mb, cast, changed: services.mailbox_set_admin(
        mailbox=mb, is_admin=changed, acting_user=cast.operator)),
    "forward_set_destinations": (forward, lambda fw, cast, changed: services.forward_set_destinations(
        forward=fw, destinations=["y@remote.test" if changed else "z@remote.test"], acting_user=cast.operator)),
    "catchall_set": (lambda cast: cast.a.domain, lambda domain, cast, changed: services.catchall_set(
        domain=domain, mode=CatchAllMode.REMOTE, target="y@remote.test" if changed else "all@remote.test",
        acting_user=cast.operator)),
    "list_member_add": (mailing_list, lambda ml, cast, changed: list_member_add(
        mailing_list=ml, address="y@remote.test" if changed else "reader@remote.test", acting_user=cast.operator)),
}


def revision(cast: Cast) -> int:
    """The domain's revision, once its push is taken (as the push task does): a change queues one again."""
    DomainSync.objects.filter(domain=cast.a.domain).update(queued=False)
    return Domain.objects.get(pk=cast.a.domain.pk).revision


@pytest.mark.parametrize("name", list(CALLS))
def test_a_call_that_changes_nothing_leaves_no_trace(cast: Cast, name: str, django_capture_on_commit_callbacks
                                                      ) -> None:
    make, call = CALLS[name]
    obj = make(cast)
    call(obj, cast, False)  # the state the next call repeats
    before, audited = revision(cast), AuditEvent.objects.count()
    with django_capture_on_commit_callbacks() as pushes:
        call(obj, cast, False)
    assert (revision(cast), AuditEvent.objects.count(), len(pushes)) == (before, audited, 0)
    with django_capture_on_commit_callbacks() as pushes:
        call(obj, cast, True)
    assert (revision(cast), AuditEvent.objects.count(), len(pushes)) == (before + 1, audited + 1, 1)


def test_removing_an_absent_member_leaves_no_trace(cast: Cast, django_capture_on_commit_callbacks) -> None:
    news = mailing_list(cast)
    before, audited = revision(cast), AuditEvent.objects.count()
    with django_capture_on_commit_callbacks() as pushes:
        list_member_remove(mailing_list=news, address="nobody@remote.test", acting_user=cast.operator)
    assert (revision(cast), AuditEvent.objects.count(), len(pushes)) == (before, audited, 0)
    list_member_add(mailing_list=news, address="reader@remote.test", acting_user=cast.operator)
    before = revision(cast)
    list_member_remove(mailing_list=news, address="reader@remote.test", acting_user=cast.operator)
    assert revision(cast) == before + 1


# The tenant tree's updates (no revision: nothing of them reaches a mail host) write an audit row
# only when something changed.
TREE_CALLS: dict[str, Callable[[Cast, bool], Any]] = {
    "customer_update": lambda cast, changed: customer_update(
        customer=cast.a.customer, name="Other name" if changed else cast.a.customer.name,
        email=cast.a.customer.email, acting_user=cast.operator),
    "pack_update": lambda cast, changed: pack_update(
        pack=cast.a.pack, plan=cast.a.plan, label="other-pack" if changed else cast.a.pack.label,
        acting_user=cast.operator),
    "plan_update": lambda cast, changed: plan_update(
        plan=cast.a.plan, name=cast.a.plan.name, max_mailboxes=cast.a.plan.max_mailboxes + changed,
        acting_user=cast.operator),
}


@pytest.mark.parametrize("name", list(TREE_CALLS))
def test_an_update_of_the_tenant_tree_that_changes_nothing_writes_no_audit_row(cast: Cast, name: str) -> None:
    audited = AuditEvent.objects.count()
    TREE_CALLS[name](cast, False)
    assert AuditEvent.objects.count() == audited
    TREE_CALLS[name](cast, True)
    assert AuditEvent.objects.count() == audited + 1
