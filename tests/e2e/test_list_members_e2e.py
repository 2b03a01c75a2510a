"""A list's members on the real stack: imported in the panel (inline and through the panel's
worker), subscribed by mail, removed by mlmmj for bouncing; both sides hold the same set."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from celery import current_app

from lists.imports import INLINE_LINES, member_import
from lists.models import ImportState, ListMember, MailingList, MemberImport
from lists.services import list_create
from mailhost import contract
from mailhost.list_members import read_members
from mailhost.lists import MLMMJ
from tests.e2e.conftest import E2E
from tests.e2e.mailclient import send, sink_messages, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def list_path(e2e: E2E, mailing_list: MailingList) -> Path:
    return e2e.stack.config.mlmmj_root / mailing_list.domain.name / mailing_list.name


def panel_members(mailing_list: MailingList, kind: str = "subscriber") -> set[str]:
    return set(ListMember.objects.filter(mailing_list=mailing_list, kind=kind).values_list("address", flat=True))


def mlmmj_list(path: Path) -> set[str]:
    out = subprocess.run([str(MLMMJ / "mlmmj-list"), "-L", str(path)], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


def maintain(e2e: E2E) -> None:
    current_app.send_task(contract.MAINTAIN, queue=e2e.host.queue)  # what the agent's beat runs


HOSTILE = "\n".join([
    '=HYPERLINK("http://evil.test")', "victim@evil.test\rBcc: everyone@evil.test", "x" * 5000 + "@evil.test",
    "a@b@evil.test", "\x00nul@evil.test", "Évelyne <évelyne@evil.test>",
])


def test_members_imported_and_subscribed_by_mail_are_the_same_set_on_both_sides(e2e: E2E) -> None:
    domain = e2e.domain("imp")
    e2e.mailbox(domain, "owner")
    club = list_create(domain=domain, name="club", owner=f"owner@{domain.name}", sub_confirm=False,
                       acting_user=e2e.operator)
    few = [f"reader{n}@outside{n % 5}.test" for n in range(300)]
    job = member_import(mailing_list=club, kind="subscriber", text="\n".join(few) + "\n" + HOSTILE,
                        acting_user=e2e.operator)
    assert (job.state, job.added) == (ImportState.DONE, 301)  # victim@ before its CR, not the Bcc after
    assert panel_members(club) == {*few, f"owner@{domain.name}", "victim@evil.test"}
    many = [f"crowd{n}@far{n % 9}.test" for n in range(INLINE_LINES + 100)]
    job = member_import(mailing_list=club, kind="subscriber", text="\n".join(many), source="csv",
                        acting_user=e2e.operator)
    assert job.state == ImportState.RUNNING  # the panel's worker runs it
    wait_for(lambda: MemberImport.objects.get(pk=job.pk).state == ImportState.DONE, timeout=60)
    assert MemberImport.objects.get(pk=job.pk).added == len(many)
    e2e.wait_applied(domain)
    path = list_path(e2e, club)
    assert read_members(path, "subscriber") == panel_members(club) == mlmmj_list(path)
    for newcomer in ("newcomer@outside.test", "second@outside.test"):
        send(e2e.stack, newcomer, f"club+subscribe@{domain.name}", "subscribe", "")
        wait_for(lambda newcomer=newcomer: sink_messages(e2e.stack, newcomer), timeout=30)  # the welcome
    maintain(e2e)
    wait_for(lambda: {"newcomer@outside.test", "second@outside.test"} <= panel_members(club), timeout=30)
    e2e.wait_applied(domain)
    assert read_members(path, "subscriber") == panel_members(club) == mlmmj_list(path)
    assert len(panel_members(club)) == 300 + len(many) + 4  # the owner, victim@ and the two by mail
    for address in mlmmj_list(path):  # the hostile lines left nothing odd in mlmmj's files
        assert address.isascii() and "\r" not in address and "=" not in address and len(address) < 100


def test_a_bounce_that_removes_an_address_shows_in_the_panel(e2e: E2E) -> None:
    domain = e2e.domain("bnc")
    e2e.mailbox(domain, "owner")
    news = list_create(domain=domain, name="news", owner=f"owner@{domain.name}", acting_user=e2e.operator)
    member_import(mailing_list=news, kind="subscriber", text=f"ghost@{domain.name}\nfriend@outside.test",
                  acting_user=e2e.operator)
    e2e.wait_applied(domain)
    path = list_path(e2e, news)
    send(e2e.stack, f"owner@{domain.name}", f"news@{domain.name}", "to all", "hello")
    wait_for(lambda: sink_messages(e2e.stack, "friend@outside.test"), timeout=30)
    # Postfix refuses ghost@ (no such mailbox): mlmmj-send records the bounce.
    bounce = path / "bounce" / f"ghost={domain.name}"
    wait_for(bounce.exists, timeout=30)
    assert panel_members(news) >= {f"ghost@{domain.name}"}
    # As if bouncelife and mlmmj's probe wait had passed since that first bounce.
    first, _sep, rest = bounce.read_text().partition("\n")
    index, _colon, stamp_and_note = first.partition(":")
    note = stamp_and_note.split(" ", 1)[1] if " " in stamp_and_note else "#"
    bounce.write_text(f"{index}:{int(time.time()) - 30 * 86400} {note}\n{rest}")
    maintain(e2e)  # mlmmj-maintd unsubscribes it; the agent reports the change
    wait_for(lambda: f"ghost@{domain.name}" not in panel_members(news), timeout=30)
    assert panel_members(news) == {f"owner@{domain.name}", "friend@outside.test"}
    e2e.wait_applied(domain)
    assert read_members(path, "subscriber") == panel_members(news)
