"""The mailing lists' screens through the test client: each flow and its refusals.

Who may open each URL is `test_access_matrix.py`'s; here, what each screen does for the seats that
may, that a refused change writes nothing, and that the members' page costs the same queries at
any size."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hosting.models import AuditEvent, Plan
from lists.models import ListMember, MailingList, MemberKind, Posting, ReplyTo
from lists.services import list_create
from mail.models import Mailbox
from mail.services import forward_create
from tests.conftest import Cast, client_for
from tests.test_screens import NEW_PASSWORD, text, url

pytestmark = pytest.mark.django_db


def settings_data(**changes: Any) -> dict[str, Any]:
    """The list form as a browser posts it with the defaults (unchecked boxes are absent)."""
    data = {"owner": "owner@elsewhere.test", "prefix": "", "posting": Posting.SUBSCRIBERS,
            "reply_to": ReplyTo.SENDER, "reply_to_address": "", "trailer": "", "language": "fr",
            "request_address": "on", "sub_confirm": "on", "archive": "on", "archive_access": "subscribers"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def make_list(cast: Cast, name: str = "newsletter", **options: Any) -> MailingList:
    return list_create(domain=cast.a.domain, name=name, owner="owner@elsewhere.test", acting_user=cast.operator,
                       **options)


# --- the menu, the list of lists, the quick box ----------------------------------------------------


def test_the_menu_links_the_lists_in_french(cast: Cast) -> None:
    page = text(client_for(cast, "domain_admin_a", "fr").get(url("screens:domain", cast)))
    assert f'href="{url("screens:lists", cast)}"' in page and f'href="{url("screens:list_create", cast)}"' in page
    assert "Listes de diffusion" in page and "Nouvelle liste de diffusion" in page


def test_the_list_of_lists_counts_and_links_each_list(cast: Cast) -> None:
    news = make_list(cast)
    ListMember.objects.create(mailing_list=news, address="a@elsewhere.test")
    page = text(client_for(cast, "domain_admin_a", "fr").get(url("screens:lists", cast)))
    assert "Listes de diffusion [Utilisé dans le pack : 1/10]" in page
    assert url("screens:list_modify", cast, news.pk) in page and url("screens:members", cast, news.pk) in page
    assert ">2</a>" in page  # the owner and a@
    assert "Seulement les abonnés peuvent poster, tous les autres sont rejetés." in page


def test_the_quick_box_finds_a_list(cast: Cast) -> None:
    news = make_list(cast)
    client = client_for(cast, "domain_admin_a")
    response = client.get(url("screens:quick", cast), {"name": "newsletter", "do": "modify"})
    assert response["Location"] == url("screens:list_modify", cast, news.pk)
    response = client.get(url("screens:quick", cast), {"name": "newsletter", "do": "delete"})
    assert response["Location"] == url("screens:list_delete", cast, news.pk)


# --- create ---------------------------------------------------------------------------------------


def test_a_new_list_as_in_the_seed(cast: Cast) -> None:
    client = client_for(cast, "domain_admin_a", "fr")
    form = text(client.get(url("screens:list_create", cast)))
    assert "Qui peut écrire à la liste" in form and "Préfixe des sujets" in form
    assert f'value="postmaster@{cast.a.domain.name}"' in form  # the owner proposed
    response = client.post(url("screens:list_create", cast), settings_data(
        name="newsletter", posting=Posting.MODERATORS, prefix="[Lettre]"))
    news = MailingList.objects.get(domain=cast.a.domain, name="newsletter")
    assert response.status_code == 302 and response["Location"] == url("screens:list_modify", cast, news.pk)
    assert (news.posting, news.prefix, news.language, news.request_address) == (Posting.MODERATORS, "[Lettre]",
                                                                                "fr", True)
    assert set(news.members.values_list("kind", "address")) == {
        (MemberKind.SUBSCRIBER, "owner@elsewhere.test"), (MemberKind.MODERATOR, "owner@elsewhere.test")}
    assert AuditEvent.objects.filter(action="list.create", target_id=str(news.pk),
                                     actor_label=cast.a.postmaster.address).exists()


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"name": "alphauser"}, "name", "Name already used."),
    ({"name": "../etc"}, "name", ""),
    ({"owner": "pas une adresse"}, "owner", ""),
    ({"reply_to": ReplyTo.ADDRESS, "reply_to_address": ""}, "reply_to_address", ""),
    ({"prefix": "[a]\r\nBcc: x@evil.test"}, "prefix", ""),
    ({"posting": "everyone"}, "posting", ""),
])
def test_a_refused_list_says_why_and_writes_nothing(cast: Cast, data: dict, field: str, message: str) -> None:
    before = MailingList.objects.count(), ListMember.objects.count(), AuditEvent.objects.count()
    response = client_for(cast, "domain_admin_a").post(url("screens:list_create", cast),
                                                       settings_data(**{"name": "newsletter", **data}))
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in text(response) and message in text(response)
    assert (MailingList.objects.count(), ListMember.objects.count(), AuditEvent.objects.count()) == before


def test_a_list_name_cannot_take_a_forwards_name(cast: Cast) -> None:
    forward_create(domain=cast.a.domain, local_part="ventes", destinations=["x@elsewhere.test"],
                   acting_user=cast.operator)
    response = client_for(cast, "domain_admin_a").post(url("screens:list_create", cast), settings_data(name="ventes"))
    assert response.status_code == 400 and "Name already used." in text(response)


def test_a_full_pack_says_so_before_the_list_form_is_filled(cast: Cast) -> None:
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_lists=1)
    make_list(cast)
    client = client_for(cast, "domain_admin_a", "fr")
    page = text(client.get(url("screens:list_create", cast)))
    assert "Nombre maximum de listes de diffusion atteint." in page
    assert 'type="submit" class="button primary"' not in page
    response = client.post(url("screens:list_create", cast), settings_data(name="autre"))
    assert response.status_code == 400 and not MailingList.objects.filter(name="autre").exists()


def test_a_list_feature_at_zero_is_hidden(cast: Cast) -> None:
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_lists=0)
    client = client_for(cast, "domain_admin_a", "fr")
    assert "Listes de diffusion" not in text(client.get(url("screens:domain", cast)))
    assert 'name="lists"' not in text(client.get(url("screens:mailbox_create", cast)))


# --- modify, texts, delete ------------------------------------------------------------------------


def test_modify_changes_the_settings_and_audits_before_and_after(cast: Cast) -> None:
    news = make_list(cast)
    response = client_for(cast, "domain_admin_a").post(url("screens:list_modify", cast, news.pk), settings_data(
        posting=Posting.MODERATED, reply_to=ReplyTo.LIST, trailer="Se désabonner : newsletter+unsubscribe@",
        digest="on", private="on"))
    assert response.status_code == 302
    news.refresh_from_db()
    assert (news.posting, news.reply_to, news.digest, news.private) == (Posting.MODERATED, ReplyTo.LIST, True, True)
    assert news.members.filter(kind=MemberKind.MODERATOR, address="owner@elsewhere.test").exists()
    event = AuditEvent.objects.filter(action="list.update", target_id=str(news.pk)).get()
    assert event.detail["changes"]["posting"] == [Posting.SUBSCRIBERS, Posting.MODERATED]


def test_unsubscription_confirmation_cannot_be_turned_off_and_the_form_says_why(cast: Cast) -> None:
    news = make_list(cast)
    client = client_for(cast, "domain_admin_a", "fr")
    page = text(client.get(url("screens:list_modify", cast, news.pk)))
    assert 'name="unsub_confirm"' in page and "disabled" in page.split('name="unsub_confirm"')[1][:80]
    client.post(url("screens:list_modify", cast, news.pk), {**settings_data(), "unsub_confirm": ""})
    news.refresh_from_db()
    assert news.unsub_confirm is True


def test_a_refused_modify_writes_nothing(cast: Cast) -> None:
    news = make_list(cast)
    before = AuditEvent.objects.count()
    response = client_for(cast, "domain_admin_a").post(url("screens:list_modify", cast, news.pk),
                                                       settings_data(owner="x@y", prefix="nouveau"))
    assert response.status_code == 400
    news.refresh_from_db()
    assert news.prefix == "" and news.owner == "owner@elsewhere.test" and AuditEvent.objects.count() == before


def test_the_list_page_shows_both_address_styles(cast: Cast) -> None:
    news = make_list(cast)
    page = text(client_for(cast, "domain_admin_a").get(url("screens:list_modify", cast, news.pk)))
    at = f"@{cast.a.domain.name}"
    for address in ("newsletter+subscribe", "newsletter-subscribe", "newsletter+unsubscribe",
                    "newsletter-unsubscribe", "newsletter-digest-subscribe", "newsletter-request"):
        assert f"{address}{at}" in page, address


def test_a_text_file_is_edited_and_restored(cast: Cast) -> None:
    news = make_list(cast)
    client = client_for(cast, "domain_admin_a")
    response = client.post(url("screens:list_text", cast, news.pk, "finish-sub"), {"text": "Bienvenue au club !"})
    assert response.status_code == 302
    news.refresh_from_db()
    assert news.texts == {"finish-sub": "Bienvenue au club !"}
    assert "edited" in text(client.get(url("screens:list_modify", cast, news.pk)))
    client.post(url("screens:list_text", cast, news.pk, "finish-sub"), {"text": ""})
    news.refresh_from_db()
    assert news.texts == {}
    assert AuditEvent.objects.filter(action="list.update", target_id=str(news.pk)).count() == 2


def test_a_text_file_refuses_unknown_names_and_control_characters(cast: Cast) -> None:
    news = make_list(cast)
    client = client_for(cast, "domain_admin_a")
    assert client.get(url("screens:list_text", cast, news.pk, "listaddress")).status_code == 404
    response = client.post(url("screens:list_text", cast, news.pk, "help"), {"text": "a\x00b"})
    assert response.status_code == 400
    news.refresh_from_db()
    assert news.texts == {}


def test_delete_asks_then_deletes(cast: Cast) -> None:
    news = make_list(cast)
    client = client_for(cast, "domain_admin_a", "fr")
    assert "newsletter@" in text(client.get(url("screens:list_delete", cast, news.pk)))
    assert MailingList.objects.filter(pk=news.pk).exists()
    response = client.post(url("screens:list_delete", cast, news.pk))
    assert response.status_code == 302 and not MailingList.objects.filter(pk=news.pk).exists()


# --- members --------------------------------------------------------------------------------------


def test_members_are_added_shown_and_removed_by_kind(cast: Cast) -> None:
    news = make_list(cast)
    client = client_for(cast, "domain_admin_a")
    members = url("screens:members", cast, news.pk)
    response = client.post(members, {"address": "Marie@Example.COM", "kind": MemberKind.MODERATOR})
    assert response.status_code == 302 and response["Location"] == f"{members}?kind=moderator"
    assert news.members.filter(kind=MemberKind.MODERATOR, address="marie@example.com").exists()
    assert "marie@example.com" in text(client.get(members, {"kind": "moderator"}))
    assert "marie@example.com" not in text(client.get(members, {"kind": "subscriber"}))
    client.post(url("screens:member_remove", cast, news.pk), {"address": "marie@example.com", "kind": "moderator",
                                                               "confirm": "yes"})
    assert not news.members.filter(kind=MemberKind.MODERATOR).exists()
    assert AuditEvent.objects.filter(action="list.member_remove", target_id=str(news.pk)).exists()


def test_a_bad_member_address_says_why_and_writes_nothing(cast: Cast) -> None:
    news = make_list(cast)
    before = ListMember.objects.count()
    response = client_for(cast, "domain_admin_a").post(url("screens:members", cast, news.pk),
                                                       {"address": "a@b\r\nBcc: c@d"})
    assert response.status_code == 400 and 'id="id_address_error"' in text(response)
    assert ListMember.objects.count() == before


def test_the_members_page_searches_and_pages_with_the_same_queries_at_any_size(cast: Cast) -> None:
    news = make_list(cast)
    client = client_for(cast, "domain_admin_a")
    members = url("screens:members", cast, news.pk)
    counts = []
    for size in (60, 600):
        ListMember.objects.bulk_create([ListMember(mailing_list=news, address=f"m{size}-{i:04d}@example.com")
                                        for i in range(size)])
        with CaptureQueriesContext(connection) as queries:
            page = text(client.get(members, {"page": 2}))
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert page.count('form="remove-form"') == 50
    found = text(client.get(members, {"q": "M600-0042"}))
    assert "m600-0042@example.com" in found and found.count('form="remove-form"') == 1


# --- the new POP account subscribes to lists ------------------------------------------------------


def account(**changes: Any) -> dict[str, Any]:
    return {"local_part": "test", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "real_name": "Compte test",
            **changes}


def test_a_new_account_is_subscribed_to_the_lists_ticked(cast: Cast) -> None:
    news, club = make_list(cast), make_list(cast, "club")
    client = client_for(cast, "domain_admin_a", "fr")
    assert "Abonner à ces listes" in text(client.get(url("screens:mailbox_create", cast)))
    response = client.post(url("screens:mailbox_create", cast), account(lists=[str(news.pk)]))
    assert response.status_code == 302
    address = f"test@{cast.a.domain.name}"
    assert news.members.filter(address=address, kind=MemberKind.SUBSCRIBER).exists()
    assert not club.members.filter(address=address).exists()


def test_a_refused_account_leaves_no_subscription_behind(cast: Cast) -> None:
    news = make_list(cast)
    before = ListMember.objects.count()
    response = client_for(cast, "domain_admin_a").post(url("screens:mailbox_create", cast), account(
        local_part="alphauser", lists=[str(news.pk)]))
    assert response.status_code == 400 and "Name already used." in text(response)
    assert ListMember.objects.count() == before


def test_a_list_of_another_domain_cannot_be_ticked(cast: Cast) -> None:
    other = list_create(domain=cast.b.domain, name="secret", owner="o@elsewhere.test", acting_user=cast.operator)
    response = client_for(cast, "domain_admin_a").post(url("screens:mailbox_create", cast), account(
        lists=[str(other.pk)]))
    assert response.status_code == 400
    assert not Mailbox.objects.filter(domain=cast.a.domain, local_part="test").exists()
    assert not other.members.filter(address__startswith="test@").exists()
