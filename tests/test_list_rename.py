"""A renamed POP account keeps its place in its domain's lists: its subscriptions of every kind,
the lists it owns and the lists whose replies go to it follow the new name, with the rename's
revision (so the host gets the new membership with the rename itself)."""

from __future__ import annotations

import pytest

from hosting.models import AuditEvent
from hostlink import snapshot
from lists.models import ListMember, MailingList, MemberKind, Posting, ReplyTo
from lists.services import list_create, list_member_add
from mail.services import mailbox_rename
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def test_subscriptions_ownership_and_replies_follow_a_rename(cast: Cast) -> None:
    domain, user = cast.a.domain, cast.mailbox_user
    old, new = f"{user.local_part}@{domain.name}", f"renamed@{domain.name}"
    news = list_create(domain=domain, name="news", owner=old, posting=Posting.MODERATED, reply_to=ReplyTo.ADDRESS,
                       reply_to_address=old, acting_user=cast.operator)
    list_member_add(mailing_list=news, address=old, kind=MemberKind.DIGEST, acting_user=cast.operator)
    other = list_create(domain=domain, name="other", owner="someone@elsewhere.test", acting_user=cast.operator)

    renamed = mailbox_rename(mailbox=user, new_local_part="renamed", acting_user=cast.operator)

    news.refresh_from_db()
    assert (news.owner, news.reply_to_address, news.revision) == (new, new, renamed.revision)
    assert set(news.members.values_list("kind", "address")) == {
        (MemberKind.SUBSCRIBER, new), (MemberKind.MODERATOR, new), (MemberKind.DIGEST, new)}
    other.refresh_from_db()
    assert other.revision < renamed.revision  # untouched
    document = snapshot.build_delta(domain, base=renamed.revision - 1)
    [sent] = [ml for ml in document["lists"] if ml["name"] == "news"]
    assert sent["owner"] == new and new in sent["subscribers"] and old not in sent["subscribers"]
    event = AuditEvent.objects.get(action="mailbox.rename")
    assert f"news@{domain.name}" in event.detail["redirects_updated"]


def test_a_member_already_there_under_the_new_name_is_kept_once(cast: Cast) -> None:
    domain, user = cast.a.domain, cast.mailbox_user
    old, new = f"{user.local_part}@{domain.name}", f"renamed@{domain.name}"
    news = list_create(domain=domain, name="news", owner="o@elsewhere.test", acting_user=cast.operator)
    for address in (old, new):
        list_member_add(mailing_list=news, address=address, acting_user=cast.operator)
    mailbox_rename(mailbox=user, new_local_part="renamed", acting_user=cast.operator)
    assert list(news.members.filter(kind=MemberKind.SUBSCRIBER).values_list("address", flat=True).order_by(
        "address")) == ["o@elsewhere.test", new]


def test_the_lists_of_other_domains_are_not_touched(cast: Cast) -> None:
    user = cast.mailbox_user
    old = f"{user.local_part}@{cast.a.domain.name}"
    theirs = list_create(domain=cast.b.domain, name="theirs", owner="o@elsewhere.test", acting_user=cast.operator)
    list_member_add(mailing_list=theirs, address=old, acting_user=cast.operator)
    mailbox_rename(mailbox=user, new_local_part="renamed", acting_user=cast.operator)
    assert ListMember.objects.filter(mailing_list=theirs, address=old).exists()
    assert MailingList.objects.get(pk=theirs.pk).owner == "o@elsewhere.test"
