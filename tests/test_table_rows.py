"""Every table of the front writes its rows in Python (`PanelTable.rows_html`, one string per
row) instead of django-tables2's template (the template engine for each cell: most of a list
page's CPU). The pages must not change: each table is compared, page by page, with what
django-tables2's own template writes for the same rows."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from hosting.audit import Action, record
from lists.models import ListMember, MailingList, MemberKind
from mail.models import CatchAll, CatchAllMode, Forward, Mailbox, Robot
from screens.tables import PanelTable
from tests.conftest import Cast, client_for

pytestmark = pytest.mark.django_db

TABLES2_TEMPLATE = "django_tables2/table.html"  # django-tables2's own, which renders each cell


def table_of(html: str) -> str:
    """The page's table and its pagination, whitespace between tags left out."""
    start = html.index('<div class="table-container">')
    end = html.index("</div>", html.index("</table>", start))
    return re.sub(r">\s+<", "><", html[start:end]).strip()


def fill(cast: Cast) -> MailingList:
    """Rows of every kind a cell may show: disabled, unlimited, without comment, the catch-all's
    account, a forward to an account that no longer exists, markup to escape, dates, audit rows."""
    domain = cast.a.domain
    Mailbox.objects.bulk_create([
        Mailbox(domain=domain, local_part=f"user{i:02d}", password_hash="{X}y", real_name=f"<b>Nom {i}</b>" * (i % 2),
                search_name=f"user{i:02d} nom {i}" * (i % 2), quota_mb=(i % 3) * 100, quota_used_bytes=i * 300_000,
                enabled=bool(i % 4))
        for i in range(60)])
    CatchAll.objects.update_or_create(domain=domain, defaults={"mode": CatchAllMode.MAILBOX, "target": "user07"})
    Forward.objects.create(domain=domain, local_part="fwd", destinations=[f"gone@{domain.name}", "x@remote.test"])
    Forward.objects.create(domain=domain, local_part="fwd2", destinations=[f"user01@{domain.name}"])
    Robot.objects.create(domain=domain, local_part="robot", subject="<i>Absent</i>", message="m")
    Robot.objects.create(domain=domain, local_part="robot2", copy_to="copy@remote.test", subject="s", message="m")
    mailing_list = MailingList.objects.create(domain=domain, name="news", owner="owner@remote.test")
    ListMember.objects.bulk_create([
        ListMember(mailing_list=mailing_list, address=f"m{i:02d}@remote.test", kind=MemberKind.SUBSCRIBER)
        for i in range(55)])
    ListMember.objects.filter(address="m03@remote.test").update(created_at=timezone.now() - timedelta(days=400))
    mailbox = Mailbox.objects.get(domain=domain, local_part="user01")
    record(cast.a.postmaster, Action.MAILBOX_CREATE, mailbox)
    record(cast.operator, Action.MAILBOX_DELETE, mailbox, changes={"real_name": ["<x>", ""]})
    record(None, Action.MAILBOX_SET_PASSWORD, mailbox)
    return mailing_list


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_table_writes_the_rows_django_tables2s_template_writes(cast: Cast, monkeypatch, language) -> None:
    mailing_list = fill(cast)
    pk = cast.a.domain.pk
    pages = [
        ("domain_admin_a", reverse("screens:mailboxes", args=[pk]), {}),
        ("domain_admin_a", reverse("screens:mailboxes", args=[pk]), {"page": 2}),
        ("domain_admin_a", reverse("screens:mailboxes", args=[pk]), {"q": "nom"}),
        ("domain_admin_a", reverse("screens:forwards", args=[pk]), {}),
        ("domain_admin_a", reverse("screens:robots", args=[pk]), {}),
        ("domain_admin_a", reverse("screens:lists", args=[pk]), {}),
        ("domain_admin_a", reverse("screens:members", args=[pk, mailing_list.pk]), {"page": 2}),
        ("domain_admin_a", reverse("screens:members", args=[pk, mailing_list.pk]), {"kind": "digest"}),  # empty
        ("domain_admin_a", reverse("screens:domain_audit", args=[pk]), {}),
        ("customer_a", reverse("screens:client"), {}),
    ]
    for role, url, query in pages:
        client = client_for(cast, role, language)
        ours = table_of(client.get(url, query).content.decode())
        with monkeypatch.context() as patch:
            patch.setattr(PanelTable, "template_name", property(lambda table: TABLES2_TEMPLATE, lambda table, v: None))
            theirs = table_of(client.get(url, query).content.decode())
        assert ours == theirs, (url, query)
        assert ("<tr" in ours.partition("<tbody")[2]) == (query != {"kind": "digest"}), (url, query)
