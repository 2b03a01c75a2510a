"""Rules that `bin/mutants` found no test watching (issue 16: the mutation check over the whole
fast suite, the front's and the lists' files among its targets). Each test here fails when its
rule is taken away; the survivors left are listed, with why each is harmless, in BENCHMARKS.md's
neighbour, the issue's closing note."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from hosting.models import Domain
from lists import imports, moderation
from lists import reports as list_reports
from lists.models import ListMember, MailingList, MemberKind, Posting, ReplyTo
from lists.services import list_create, list_set_text, list_update
from mail.models import CatchAll, CatchAllMode, Forward
from mail.services import MAX_DESTINATIONS, catchall_set, mailbox_rename
from tests.conftest import Cast, client_for
from tests.factories import DomainFactory, MailboxFactory, UserFactory


@pytest.fixture
def news(cast: Cast) -> MailingList:
    return list_create(domain=cast.a.domain, name="news", owner="owner@remote.test", acting_user=cast.a.postmaster)


# --- lists/services.py ---------------------------------------------------------------------------


def test_a_reply_address_is_asked_for_in_words(news: MailingList, cast: Cast) -> None:
    with translation.override("en"), pytest.raises(ValidationError) as excinfo:
        list_update(mailing_list=news, reply_to=ReplyTo.ADDRESS, reply_to_address=" ", acting_user=cast.a.postmaster)
    assert excinfo.value.messages == ["Enter the address replies go to."]


def test_an_open_list_gets_no_moderator_and_a_moderated_one_keeps_its_own(news: MailingList, cast: Cast) -> None:
    list_update(mailing_list=news, prefix="[news]", acting_user=cast.a.postmaster)  # still open to its members
    assert not news.members.filter(kind=MemberKind.MODERATOR).exists()
    ListMember.objects.create(mailing_list=news, address="boss@remote.test", kind=MemberKind.MODERATOR)
    list_update(mailing_list=news, posting=Posting.MODERATED, acting_user=cast.a.postmaster)
    assert list(news.members.filter(kind=MemberKind.MODERATOR).values_list("address", flat=True)) == [
        "boss@remote.test"]  # its moderator kept, the owner not added beside it


def test_an_unknown_text_file_is_refused(news: MailingList, cast: Cast) -> None:
    with pytest.raises(ValidationError):
        list_set_text(mailing_list=news, name="../control/owner", text="x", acting_user=cast.a.postmaster)
    assert news.texts == {}


# --- lists/imports.py ----------------------------------------------------------------------------


def test_an_import_of_an_unknown_kind_or_source_is_refused(news: MailingList, cast: Cast) -> None:
    for kind, source in (("owner", "paste"), (MemberKind.SUBSCRIBER, "ldap")):
        with pytest.raises(ValidationError):
            imports.member_import(mailing_list=news, kind=kind, text="a@remote.test", source=source,
                                  acting_user=cast.a.postmaster)
    assert list(news.members.values_list("address", flat=True)) == ["owner@remote.test"]  # the owner alone


def test_an_import_into_a_list_without_a_member_limit(news: MailingList, cast: Cast) -> None:
    plan = cast.a.pack.plan
    plan.max_list_members = -1  # unlimited
    plan.save(update_fields=["max_list_members"])
    imports.member_import(mailing_list=news, kind=MemberKind.SUBSCRIBER, text="a@remote.test\nb@remote.test",
                          acting_user=cast.a.postmaster)
    assert set(news.members.filter(kind=MemberKind.SUBSCRIBER).values_list("address", flat=True)) == {
        "owner@remote.test", "a@remote.test", "b@remote.test"}  # the owner subscribed with the list


# --- lists/reports.py ----------------------------------------------------------------------------


def test_a_held_message_keeps_the_instant_its_host_gave(news: MailingList) -> None:
    list_reports.record_held(host=news.domain.pack.mail_host.name, complete=False, lists=[{
        "domain": news.domain.name, "list": "news", "items": [{
            "kind": "post", "key": "0123456789abcdef", "sender": "a@remote.test", "subject": "s",
            "received_at": "2026-01-02T10:00:00+02:00", "preview": "p"}]}])
    held = news.held.get()
    assert held.received_at == datetime(2026, 1, 2, 8, 0, tzinfo=UTC)


# --- mail/rename.py ------------------------------------------------------------------------------


def test_a_catch_all_to_another_account_stays_when_one_is_renamed(cast: Cast) -> None:
    MailboxFactory(domain=cast.a.domain, local_part="sales")
    catchall_set(domain=cast.a.domain, mode=CatchAllMode.MAILBOX, target="sales", acting_user=cast.a.postmaster)
    mailbox_rename(mailbox=cast.mailbox_user, new_local_part="renamed", acting_user=cast.a.postmaster)
    assert CatchAll.objects.get(domain=cast.a.domain).target == "sales"


# --- the front -----------------------------------------------------------------------------------


def test_the_hostmaster_confirmation_is_asked_of_a_fr_hostmaster_only(cast: Cast) -> None:
    domain = DomainFactory(pack=cast.a.pack, name="boulangerie-alpha.fr")
    hostmaster = MailboxFactory(domain=domain, local_part="hostmaster")
    other = MailboxFactory(domain=domain, local_part="contact")
    client = client_for(cast, "customer_a")
    for mailbox, asked in ((hostmaster, True), (other, False)):
        page = client.get(reverse("screens:mailbox_modify", kwargs={"pk": domain.pk, "obj": mailbox.pk}))
        assert page.status_code == 200
        assert ('name="confirm_hostmaster"' in page.content.decode()) is asked, mailbox


def test_a_signed_in_user_who_holds_no_seat_adds_no_domain(cast: Cast) -> None:
    nobody = UserFactory(email="nobody@remote.test")
    client = Client()
    client.force_login(nobody)
    before = Domain.objects.count()
    response = client.post(reverse("screens:domain_add", kwargs={"pk": cast.a.pack.pk}), {"name": "new-one.test"})
    assert response.status_code in (403, 404)
    assert Domain.objects.count() == before


def test_check_now_on_a_proven_domain_says_so_even_just_after_a_check(cast: Cast) -> None:
    Domain.objects.filter(pk=cast.a.domain.pk).update(verification_checked_at=timezone.now() - timedelta(seconds=1))
    client = client_for(cast, "customer_a")
    response = client.post(reverse("screens:domain_check", kwargs={"pk": cast.a.domain.pk}), follow=True)
    shown = [str(message) for message in response.context["messages"]]
    assert shown == [f"{cast.a.domain.name} is proven yours: its mail server now delivers its mail."], shown


def test_a_host_is_asked_what_a_list_holds_once_in_a_while(news: MailingList) -> None:
    cache.clear()
    assert moderation.ask_report(news) is True
    assert moderation.ask_report(news) is False  # asked a moment ago: the page shows what the panel has


def test_too_many_destinations_are_refused_on_their_field(cast: Cast) -> None:
    client = client_for(cast, "customer_a")
    many = "\n".join(f"d{n}@remote.test" for n in range(MAX_DESTINATIONS + 1))
    response = client.post(reverse("screens:forward_create", kwargs={"pk": cast.a.domain.pk}),
                           {"local_part": "many", "destinations": many})
    assert response.status_code == 400
    assert response.context["form"].errors["destinations"] == [f"At most {MAX_DESTINATIONS} destinations."]
    assert not Forward.objects.filter(domain=cast.a.domain, local_part="many").exists()


def test_too_many_forwarding_addresses_are_refused_on_their_field(cast: Cast) -> None:
    client = client_for(cast, "customer_a")
    mailbox = cast.mailbox_user
    many = "\n".join(f"d{n}@remote.test" for n in range(MAX_DESTINATIONS + 1))
    response = client.post(reverse("screens:mailbox_modify", kwargs={"pk": cast.a.domain.pk, "obj": mailbox.pk}), {
        "real_name": mailbox.real_name, "quota_mb": "", "enabled": "on", "allow_pop3": "on", "allow_imap": "on",
        "allow_smtp": "on", "routing": "forward", "forward_to": many, "vacation_subject": "", "vacation_message": ""})
    assert response.status_code == 400
    assert response.context["form"].errors["forward_to"] == [f"At most {MAX_DESTINATIONS} destinations."]
    mailbox.refresh_from_db()
    assert mailbox.forward_to == []


def test_a_forward_without_a_destination_is_refused_on_its_field(cast: Cast) -> None:
    response = client_for(cast, "customer_a").post(reverse("screens:forward_create", kwargs={"pk": cast.a.domain.pk}),
                                                    {"local_part": "none", "destinations": " \n ,"})
    assert response.status_code == 400
    assert response.context["form"].errors["destinations"] == ["Enter at least one destination."]
