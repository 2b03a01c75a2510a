"""Bulk work cannot starve provisioning (issue 15, item 4), the parts a test process can show:
the import's address parser is linear (the hostile paste gives the right result; its time is
in bench/import_bench.py, not timed here), imports go to their own queue, a customer has at most
IMPORTS_IN_FLIGHT imports queued or running, and no panel path grows a list past its plan's
max_list_members. The isolation itself, through real workers: tests/e2e/test_bulk_queue_e2e.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from config.celery import app as panel_app
from hosting.audit import Action
from hosting.models import AuditEvent, Plan
from hosting.services import plan_update
from lists import imports, tasks
from lists.models import ImportState, ListMember, MailingList, MemberImport, MemberKind
from lists.reports import record_list_changes
from lists.services import list_member_add
from mailhost import contract
from tests.conftest import Cast, client_for

DA = "domain_admin_a"
# The pattern the parser used before: quadratic on a run of spaces (the two stars share them).
OLD_ANGLE = re.compile(r'^(?:"[^"]*"|[^"<>]*)\s*<([^<>]*)>$')


@pytest.fixture
def news(cast: Cast) -> MailingList:
    return MailingList.objects.create(domain=cast.a.domain, name="news", owner=f"postmaster@{cast.a.domain.name}")


def members(news: MailingList) -> set[str]:
    return set(ListMember.objects.filter(mailing_list=news, kind=MemberKind.SUBSCRIBER).values_list("address",
                                                                                                     flat=True))


# --- the parser ----------------------------------------------------------------------------------


@hypothesis_settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('a@."<> \t,é\u00a0')), max_size=16))
def test_the_angle_form_is_read_as_the_old_pattern_read_it(text: str) -> None:
    match = OLD_ANGLE.match(text)
    assert imports.angle_address(text) == (match.group(1) if match else None)


@pytest.mark.parametrize("source", ["paste", "csv"])
def test_the_hostile_paste_is_read_whole_and_only_its_addresses_are_added(cast: Cast, news: MailingList,
                                                                          source: str) -> None:
    """2,000 lines of `a`, spaces and `b` (8.1 s in the request with the old pattern), with a
    few real addresses among them, in both forms: every hostile line is reported invalid, every
    address is added."""
    hostile = "a" + " " * 990 + "b"
    lines = [hostile] * imports.INLINE_LINES
    lines[10] = "reader@example.test"
    lines[500] = "Jean   Dupont    <jean@example.test>"
    lines[1999] = '"Dupont, Jean"      <jean2@example.test>'
    job = imports.member_import(mailing_list=news, kind="subscriber", text="\n".join(lines), source=source,
                                acting_user=cast.operator)
    assert members(news) == {"reader@example.test", "jean@example.test", "jean2@example.test"}
    header = 1 if source == "csv" else 0  # a CSV's first row without an address is its header
    assert (job.total, job.added, job.present) == (imports.INLINE_LINES - header, 3, 0)
    assert job.done - job.added - job.present == imports.INLINE_LINES - header - 3
    assert job.invalid[0] == [1 + header, hostile[:imports.SHOWN_TEXT]]


def test_the_hostile_paste_through_the_page(cast: Cast, news: MailingList) -> None:
    text = "\n".join(["a" + " " * 990 + "b"] * imports.INLINE_LINES + ["x@example.test"])
    response = client_for(cast, DA).post(
        f"/domains/{news.domain_id}/lists/{news.pk}/members/import/", {"kind": "subscriber", "text": text})
    assert response.status_code == 302
    (job,) = MemberImport.objects.filter(mailing_list=news)
    assert job.total == imports.INLINE_LINES + 1


# --- the bulk queue ------------------------------------------------------------------------------


def test_imports_go_to_the_bulk_queue_and_pushes_stay_on_the_panels() -> None:
    router = panel_app.amqp.router
    assert router.route({}, imports.TASK)["queue"].name == contract.BULK_QUEUE == "panel.bulk"
    for task in contract.PANEL_TASKS:
        assert router.route({}, task)["queue"].name == contract.PANEL_QUEUE


def long_paste(prefix: str, lines: int = imports.INLINE_LINES + 1) -> str:
    return "\n".join(f"{prefix}{n}@example.test" for n in range(lines))


def test_a_customer_has_at_most_imports_in_flight_and_a_further_one_is_refused(cast: Cast, news: MailingList,
                                                                              settings: Any) -> None:
    """Long imports queued or running per customer: IMPORTS_IN_FLIGHT (2); the third is refused
    in the user's language while the others run, and writes nothing; another customer's are not
    counted; one that ends makes room."""
    assert settings.IMPORTS_IN_FLIGHT == 2
    other = MailingList.objects.create(domain=cast.a.domain, name="other", owner=f"postmaster@{cast.a.domain.name}")
    first = imports.member_import(mailing_list=news, kind="subscriber", text=long_paste("a"), acting_user=cast.operator)
    imports.member_import(mailing_list=other, kind="subscriber", text=long_paste("b"), acting_user=cast.operator)
    assert MemberImport.objects.filter(state=ImportState.RUNNING).count() == 2
    with pytest.raises(ValidationError) as refused:
        imports.member_import(mailing_list=news, kind="digest", text=long_paste("c"), acting_user=cast.operator)
    assert refused.value.code == "busy"
    page = client_for(cast, DA, "fr").post(f"/domains/{news.domain_id}/lists/{news.pk}/members/import/",
                                           {"kind": "subscriber", "text": long_paste("d")})
    assert page.status_code == 400
    assert "2 imports sont déjà en cours pour vos domaines et vos listes" in page.content.decode()
    assert MemberImport.objects.count() == 2 and not ListMember.objects.exists()
    # A short import runs in the request: never refused for this.
    assert imports.member_import(mailing_list=news, kind="subscriber", text="x@example.test",
                                 acting_user=cast.operator).added == 1
    # Another customer's imports are not held back by these.
    bravo = MailingList.objects.create(domain=cast.b.domain, name="news", owner=f"postmaster@{cast.b.domain.name}")
    imports.member_import(mailing_list=bravo, kind="subscriber", text=long_paste("e"), acting_user=cast.operator)
    # One of alpha's ends: room for one more.
    MemberImport.objects.filter(pk=first.pk).update(state=ImportState.DONE)
    third = imports.member_import(mailing_list=news, kind="digest", text=long_paste("f"), acting_user=cast.operator)
    with pytest.raises(ValidationError):
        imports.member_import(mailing_list=news, kind="digest", text=long_paste("g"), acting_user=cast.operator)
    # One whose task was lost (still "running" an hour on) holds no slot.
    MemberImport.objects.filter(pk=third.pk).update(created_at=timezone.now() - imports.STALE_AFTER)
    imports.member_import(mailing_list=news, kind="digest", text=long_paste("h"), acting_user=cast.operator)


# --- the list's size -----------------------------------------------------------------------------


def set_limit(cast: Cast, limit: int) -> None:
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_list_members=limit)


def test_a_member_added_past_the_plans_limit_is_refused_with_the_seeds_wording(cast: Cast, news: MailingList) -> None:
    set_limit(cast, 3)
    list_member_add(mailing_list=news, address="one@example.test", acting_user=cast.operator)
    list_member_add(mailing_list=news, address="one@example.test", kind=MemberKind.MODERATOR, acting_user=cast.operator)
    list_member_add(mailing_list=news, address="two@example.test", kind=MemberKind.DIGEST, acting_user=cast.operator)
    with pytest.raises(ValidationError) as refused:  # every kind counts
        list_member_add(mailing_list=news, address="three@example.test", acting_user=cast.operator)
    assert refused.value.code == "limit"
    # Adding who is there already is no addition: no refusal.
    list_member_add(mailing_list=news, address="ONE@example.test", acting_user=cast.operator)
    page = client_for(cast, DA, "fr").post(f"/domains/{news.domain_id}/lists/{news.pk}/members/?kind=subscriber",
                                           {"address": "four@example.test"})
    assert page.status_code == 400 and "Nombre maximum d&#x27;abonnés atteint." in page.content.decode()
    assert members(news) == {"one@example.test"} and ListMember.objects.filter(mailing_list=news).count() == 3
    set_limit(cast, -1)  # unlimited
    list_member_add(mailing_list=news, address="three@example.test", acting_user=cast.operator)


def test_a_full_list_says_so_on_its_members_page_before_the_form_is_filled(cast: Cast, news: MailingList) -> None:
    set_limit(cast, 2)
    client = client_for(cast, DA, "fr")
    url = f"/domains/{news.domain_id}/lists/{news.pk}/members/"
    list_member_add(mailing_list=news, address="one@example.test", acting_user=cast.operator)
    page = client.get(url).content.decode()
    assert 'id="id_address"' in page and "Nombre maximum d'abonnés atteint." not in page
    list_member_add(mailing_list=news, address="two@example.test", kind=MemberKind.MODERATOR,
                    acting_user=cast.operator)
    for kind in ("subscriber", "moderator", "digest"):  # every kind counts towards the one limit
        page = client.get(url, {"kind": kind}).content.decode()
        assert "Nombre maximum d'abonnés atteint." in page and 'id="id_address"' not in page, kind


def test_an_import_stops_at_the_limit_and_says_how_many_lines_were_not_added(cast: Cast, news: MailingList) -> None:
    set_limit(cast, 5)
    ListMember.objects.create(mailing_list=news, address="old@example.test")
    pasted = "\n".join(["a@example.test", "not an address", "old@example.test", "b@example.test", "a@example.test",
                        "c@example.test", "d@example.test", "e@example.test", "f@example.test", "g@example.test"])
    client = client_for(cast, DA, "fr")
    response = client.post(f"/domains/{news.domain_id}/lists/{news.pk}/members/import/",
                           {"kind": "subscriber", "text": pasted})
    job = MemberImport.objects.get(mailing_list=news)
    assert members(news) == {"old@example.test", "a@example.test", "b@example.test", "c@example.test",
                             "d@example.test"}
    assert (job.state, job.total, job.done, job.added, job.present) == (ImportState.DONE, 10, 7, 4, 2)
    page = client.get(response["Location"]).content.decode()
    assert "Nombre maximum d'abonnés atteint." in page and "Les 3 dernières lignes n'ont pas été ajoutées." in page
    (event,) = AuditEvent.objects.filter(action=Action.LIST_MEMBER_IMPORT)
    assert event.detail["not_read"] == 3 and event.detail["added"] == 4


def test_a_long_import_stops_at_the_limit_in_its_task(cast: Cast, news: MailingList, monkeypatch: pytest.MonkeyPatch,
                                                      django_capture_on_commit_callbacks: Any) -> None:
    set_limit(cast, 2500)
    sent: list[list[Any]] = []
    monkeypatch.setattr(imports.panel_app, "send_task", lambda name, args: sent.append(args))
    monkeypatch.setattr(imports, "BATCH", 1000)
    with django_capture_on_commit_callbacks(execute=True):
        imports.member_import(mailing_list=news, kind="subscriber", text=long_paste("r", 4000),
                              acting_user=cast.operator)
    tasks.import_members(*sent[0])
    job = MemberImport.objects.get(mailing_list=news)
    assert (job.state, job.total, job.done, job.added) == (ImportState.DONE, 4000, 2500, 2500)
    assert ListMember.objects.filter(mailing_list=news).count() == 2500


def test_members_the_host_reports_past_the_limit_are_kept(cast: Cast, news: MailingList) -> None:
    """Subscriptions by mail are the host's: the panel keeps them all (and shows them), it only
    refuses its own additions past the limit."""
    set_limit(cast, 2)
    record_list_changes(host="mx1", changes=[{"domain": news.domain.name, "list": "news", "kind": "subscriber",
                                              "added": [f"bymail{n}@example.test" for n in range(5)]}])
    assert len(members(news)) == 5
    with pytest.raises(ValidationError):
        list_member_add(mailing_list=news, address="panel@example.test", acting_user=cast.operator)


def test_the_plan_admin_shows_and_sets_members_per_list(cast: Cast) -> None:
    client = client_for(cast, "operator", "fr")
    listing = client.get(reverse("admin:hosting_plan_changelist")).content.decode()
    assert "abonnés par liste de diffusion" in listing.lower()
    page = client.get(reverse("admin:hosting_plan_change", args=[cast.a.plan.pk])).content.decode()
    assert 'name="max_list_members"' in page
    plan_update(plan=cast.a.plan, name=cast.a.plan.name, max_list_members=50_000, acting_user=cast.operator)
    assert Plan.objects.get(pk=cast.a.plan.pk).max_list_members == 50_000
